"""Inputs whose default value is an array saved by numpy in a file beside the graph:

```yaml
inputs:
  W1: {file: weights.npz, key: W1}            # an array of an .npz archive (numpy.savez)
  b1: {file: b1.npy, shape: [4], doc: bias}   # a .npy file (numpy.save); shape, dtype, doc beside it
```

The array becomes the input's default value, exactly as if it had been written inline; a value
given at run time (`--inputs W1=...`) still replaces it. Paths are relative to the folder of the
graph file and may not leave it, nor the folders allowed with `cg --allow-path DIR` (the rule of
imports: cg/graph/folders.py). Nothing is unpickled (an array of Python objects is refused), and
the header is read and checked before any data: the element limit, the declared shape and dtype,
and, in an .npz archive, the member's declared size against what its header needs (a zip bomb
cannot inflate past it). A float input takes float arrays and integer arrays (as float64, as an
inline [1, 2] is); `dtype: int` needs an integer array; booleans, complex numbers, strings,
records and dates are refused. Each problem is one diagnostic at the input's entry (CG140-CG144,
CG004 for the limits, CG120 for a shape, CG007 for NaN or Inf); the numbers of all the input
files of a graph count against the total limit (--max-total) as they are read."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from cg.files import kind
from cg.graph.arrays import ArrayFileError, Header, check_kind, read_data, read_header
from cg.graph.folders import folder_of, unusable
from cg.graph.parts import Builder
from cg.graph.scope import Scope
from cg.graph.shapes import short_lists
from cg.limits import Limits
from cg.limits import current as current_limits
from cg.schema.messages import quote

if TYPE_CHECKING:  # zipfile (with bz2 and lzma) is imported only when an .npz is read
    import zipfile

SUFFIXES = (".npy", ".npz")
# What an ArrayFileError's kind becomes: corrupt -> file-corrupt, limit -> over-limit, ...
CODES = {"corrupt": "CG143", "limit": "CG004", "dims": "CG120", "dtype": "CG144", "values": "CG007"}


class InputFileError(Exception):
    """One problem with an input's file: its code, its message, and the key of the input's
    mapping it is reported at (file, key, shape or dtype)."""

    def __init__(self, code: str, message: str, at: str = "file") -> None:
        super().__init__(message)
        self.code, self.message, self.at = code, message, at


@dataclass
class Weights:
    """The loader of one graph file's input files (Builder.files): each array read and checked."""

    scope: Scope  # its folders: where files may come from
    file: str  # the graph file, whose folder the paths start from
    total: int = 0  # numbers read so far from all the files, against --max-total

    def __call__(self, b: Builder, name: str, spec: dict[str, Any]) -> np.ndarray | None:
        try:
            return self.load(spec)
        except InputFileError as e:
            at = e.at if e.at in spec else "file"
            b.error(e.code, e.message, ("inputs", name, at), name)
            return None

    def load(self, spec: dict[str, Any]) -> np.ndarray:
        entry, key = str(spec["file"]), spec.get("key")
        whole = f"cannot load {quote(entry)}"
        suffix = os.path.splitext(entry)[1].lower()
        if suffix not in SUFFIXES:
            raise InputFileError("CG141", f"{whole}: expected a .npy file (numpy.save) or an .npz archive"
                                 " (numpy.savez)")
        if (why := unusable(entry)) is not None:
            raise InputFileError("CG141", f"{whole}: {why}")
        if suffix == ".npy" and key is not None:
            raise InputFileError("CG142", f"{whole} with a key: a .npy file holds one array; `key` names an array of"
                                 " an .npz archive", "key")
        path = os.path.normpath(os.path.join(folder_of(self.file), entry))
        real = self.scope.folders.admit(path)  # before the file is looked at
        if real is None:
            raise InputFileError("CG140", f"{whole}: {self.scope.folders.outside()}")
        one = whole if key is None else f"cannot load {quote(key)} of {quote(entry)}"
        with _opened(real, path, whole) as f:
            try:
                if suffix == ".npy":
                    return self._array(f, os.fstat(f.fileno()).st_size, spec, one, "file")
                return self._member(f, spec, whole, one)
            except OSError as e:
                if e.errno is None and suffix == ".npz":  # bz2's word for data that is not bz2
                    raise InputFileError("CG143", f"{whole}: not a valid .npz archive ({_short(e)})") from None
                raise InputFileError("CG141", f"{whole}: {e.strerror or e}") from None

    def _member(self, f: IO[bytes], spec: dict[str, Any], whole: str, one: str) -> np.ndarray:
        import zipfile

        try:
            with zipfile.ZipFile(f) as archive:
                info = _find(archive, spec.get("key"), whole, one)
                with archive.open(info) as member:
                    return self._array(member, info.file_size, spec, one, "member")
        except _zip_errors() as e:
            raise InputFileError("CG143", f"{whole}: not a valid .npz archive ({_short(e)})") from None

    def _array(self, f: IO[bytes], total: int, spec: dict[str, Any], one: str, what: str) -> np.ndarray:
        """The array of a .npy file or member: its header checked against the limits and the
        declaration, then its data (never before)."""
        try:
            header = read_header(f, total, what)
            _exact(header, what)
            _declared(header, spec, one)
            self._count(header, one)
            array = read_data(f, header, what)
        except ArrayFileError as e:
            raise InputFileError(CODES[e.kind], f"{one}: {e}") from None
        return array.astype(np.float64, copy=False) if spec.get("dtype", "float") == "float" else array

    def _count(self, header: Header, one: str) -> None:
        self.total += header.size
        if self.total > (most := current_limits().max_total):
            raise InputFileError("CG004", f"{one}: the input files hold more than {most:,} numbers in all;"
                                 f" {Limits().hint('max_total')}")


def _zip_errors() -> tuple[type[Exception], ...]:
    """What zipfile and its decompressors raise for an archive that is not one, or is damaged."""
    import lzma
    import zipfile
    import zlib

    # RuntimeError: an encrypted member; NotImplementedError: a compression zipfile does not know
    return zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, lzma.LZMAError, EOFError, RuntimeError


@contextlib.contextmanager
def _opened(real: str, path: str, whole: str) -> Iterator[IO[bytes]]:
    """The file, open for reading, if it is a regular file (a FIFO is refused, never waited on)."""
    if not os.path.lexists(path):
        raise InputFileError("CG141", f"{whole}: no such file ({_path_text(path)})")
    try:
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise InputFileError("CG141", f"{whole}: {e.strerror or e}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise InputFileError("CG141", f"{whole}: it is {kind(mode)}, not a regular file")
    with os.fdopen(fd, "rb") as f:
        yield f


def _find(archive: zipfile.ZipFile, key: Any, whole: str, one: str) -> zipfile.ZipInfo:
    """The member that holds `key` (saved by numpy.savez as key.npy; the member's own name works too)."""
    names = archive.namelist()
    if key is None:
        raise InputFileError("CG142", f"{whole}: an .npz archive: name its array with `key:` ({_holds(names)})")
    for name in (f"{key}.npy", str(key)):
        if name in names:
            return archive.getinfo(name)
    raise InputFileError("CG142", f"{one}: no such array ({_holds(names)})", "key")


def _holds(names: list[str]) -> str:
    keys = [quote(n.removesuffix(".npy")) for n in names[:10]]
    if not keys:
        return "it holds no arrays"
    more = f", ... ({len(names):,} in all)" if len(names) > 10 else ""
    return f"it holds {', '.join(keys)}{more}"


def _exact(header: Header, what: str) -> None:
    """A member must be as long as its header says (it is never inflated past that)."""
    if what == "member" and header.left != header.nbytes:
        need = header.offset + header.nbytes
        raise ArrayFileError("corrupt", f"the member declares {header.offset + header.left:,} bytes but its header"
                             f" needs {need:,} ({header.size:,} numbers of {header.dtype.itemsize} bytes)")


def _declared(header: Header, spec: dict[str, Any], one: str) -> None:
    """The header against the input's declared shape and dtype."""
    if "shape" in spec and tuple(spec["shape"]) != header.shape:
        message = f"{one}: the array has shape {list(header.shape)} but shape says {list(spec['shape'])}"
        raise InputFileError("CG120", short_lists(message), "shape")
    check_kind(header)
    if spec.get("dtype") == "int" and header.dtype.kind == "f":
        raise InputFileError("CG144", f"{one}: the array holds {header.dtype} numbers but dtype says int (save it"
                             " with .astype(np.int64))", "dtype")


def _path_text(path: str) -> str:
    """A path, quoted; a long one keeps its end, where the file's name is."""
    return quote(path, 80) if len(path) <= 80 else quote("..." + path[-77:], 80)


def _short(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text if len(text) <= 80 else text[:77] + "..."
