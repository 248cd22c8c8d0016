"""One array from a .npy file or from a member of an .npz archive, read so that a file cannot
run code, exhaust memory or hang: the header first, checked (Python objects, which would be
unpickled, are refused; so are shapes over the element limit, and a header that promises more
data than there is) before a byte of data is read. Shared by the inputs' `file:` of a graph
(cg/graph/weights.py) and `--inputs x=@file.npy` (cg/cli/values.py).

Problems are ArrayFileError, whose `kind` tells the caller which code to give: corrupt (not an
.npy file, a header that lies, cut off), limit (too many numbers), dims (too many dimensions),
dtype (objects, booleans, complex numbers, strings, records, dates), values (NaN or Inf, an
unsigned integer beyond int64)."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from cg.graph.ir import MAX_DIMS
from cg.graph.shapes import size_text, too_big
from cg.limits import Limits
from cg.limits import current as current_limits

MAX_HEADER = 100_000  # bytes: numpy writes headers of a few hundred (and refuses over 10,000 by default)
_MAGIC = b"\x93NUMPY"
_ZIP = b"PK\x03\x04"
_INT64 = np.iinfo(np.int64)


class ArrayFileError(ValueError):
    """What is wrong with an array file, in words for the end of a message, and its kind."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # corrupt | limit | dims | dtype | values


@dataclass(frozen=True)
class Header:
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    fortran: bool
    offset: int  # bytes before the data
    left: int  # bytes after the header, in the file or member

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize


def read_header(f: IO[bytes], total: int, what: str = "file") -> Header:
    """The checked header of the .npy data that starts at f's position and runs `total` bytes; f is
    left at the first byte of data. `what` names the whole in messages (file, or array for a member)."""
    raw = _raw_header(f, total)
    try:
        shape, fortran, dtype = _parse(raw)
    except (ValueError, OSError, SyntaxError, TypeError) as e:
        raise ArrayFileError("corrupt", f"not a valid .npy file ({_short(str(e))})") from None
    if dtype.hasobject:
        raise ArrayFileError("dtype", "holds Python objects, which cg refuses to unpickle")
    if type(shape) is not tuple or not all(type(n) is int and n >= 0 for n in shape):  # (-1,), (True,)
        raise ArrayFileError("corrupt", f"not a valid .npy file (its shape {_short(str(shape))} is not a list"
                             " of sizes)")
    if too_big(shape, most := current_limits().max_elements):  # before the data: a 144-byte file may claim 10^10
        raise ArrayFileError("limit", f"{size_text(shape)}; cg refuses values of more than {most:,}"
                             f" ({Limits().hint('max_elements')})")
    if len(shape) > MAX_DIMS:
        raise ArrayFileError("dims", f"{len(shape)} dimensions is too many; at most {MAX_DIMS}")
    header = Header(shape, dtype, fortran, len(raw), total - len(raw))
    if header.nbytes > header.left:
        raise ArrayFileError("corrupt", f"the header says {header.size:,} numbers of {dtype.itemsize} bytes, but the"
                             f" {what} holds only {header.left:,} bytes of data (cut off?)")
    return header


def _raw_header(f: IO[bytes], total: int) -> bytes:
    """The magic, version, length and header text, read up to the length it claims (bounded)."""
    magic = f.read(len(_MAGIC))
    if magic[:4] == _ZIP:
        raise ArrayFileError("corrupt", "an .npz archive, not a .npy array file; save one array with numpy.save")
    if magic != _MAGIC:
        raise ArrayFileError("corrupt", "not a .npy file (it does not start with numpy's magic bytes \\x93NUMPY)")
    version = f.read(2)
    size = 2 if version[:1] == b"\x01" else 4  # the header's length: 2 bytes (version 1) or 4, little-endian
    prefix = f.read(size)
    length = int.from_bytes(prefix, "little")
    if len(version) < 2 or len(prefix) < size or length > MAX_HEADER or length > total:
        raise ArrayFileError("corrupt", f"not a valid .npy file (its header claims {length:,} bytes)")
    text = f.read(length)
    if len(text) < length:
        raise ArrayFileError("corrupt", f"not a valid .npy file (its header claims {length:,} bytes)")
    return magic + version + prefix + text


def _parse(raw: bytes) -> tuple[Any, bool, np.dtype[Any]]:
    """numpy's own reading of a header (a literal, never code), from the bytes already read."""
    from numpy.lib import format as npy

    buf = io.BytesIO(raw)
    version = npy.read_magic(buf)
    if version not in ((1, 0), (2, 0), (3, 0)):  # 3.0 differs from 2.0 only for non-latin-1 field names
        raise ValueError(f"format version {version[0]}.{version[1]}")
    read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
    shape, fortran, dtype = read(buf)
    return shape, bool(fortran), dtype


def check_kind(header: Header) -> None:
    """Integers and floats only: what a graph computes with."""
    if header.dtype.kind not in "iuf":
        raise ArrayFileError("dtype", f"expected integer or float numbers, got dtype {header.dtype}")


def read_data(f: IO[bytes], header: Header, what: str = "file") -> np.ndarray:
    """The numbers after the header: int64 for integers, float64 for floats (NaN and Inf refused)."""
    check_kind(header)
    data = f.read(header.nbytes)  # exactly what the header says, checked to be there
    if len(data) < header.nbytes:
        raise ArrayFileError("corrupt", f"the header says {header.size:,} numbers of {header.dtype.itemsize} bytes,"
                             f" but the {what} holds only {len(data):,} bytes of data (cut off?)")
    arr = np.frombuffer(data, dtype=header.dtype, count=header.size)
    arr = arr.reshape(header.shape[::-1]).T if header.fortran else arr.reshape(header.shape)
    if header.dtype.kind == "u" and arr.size and int(arr.max()) > _INT64.max:
        raise ArrayFileError("values", "values do not fit in int64")
    if header.dtype.kind in "iu":
        return arr.astype(np.int64)
    with np.errstate(over="ignore"):  # float128 beyond float64's range becomes inf, refused next
        out = arr.astype(np.float64)
    if not np.isfinite(out).all():
        raise ArrayFileError("values", "NaN and infinity are not allowed")
    return out


def _short(text: str, limit: int = 80) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """An .npz archive of plain arrays (np.savez's layout, written member by member: a key such as
    `allow_pickle` cannot be mistaken for one of np.savez's options, and nothing is pickled)."""
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as npz:
        for key, value in arrays.items():
            with npz.open(f"{key}.npy", "w") as member:
                np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)
    return buffer.getvalue()
