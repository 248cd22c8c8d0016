"""A data file of examples, one per row, bound to a graph's inputs by column name (`cg run --data`).

Formats, by the file's suffix:
- `.csv`: a header row of column names, then one example per row, one number per cell;
- `.npz`: one array per column, its first axis the rows (never unpickled: Python objects are
  refused, headers are checked first by cg/graph/arrays.py);
- `.parquet`: through pyarrow, an optional extra (`pip install cg-graphs[data]`); numeric
  columns, or list columns holding a whole vector (or nested lists: a matrix) per row.

Columns bind to inputs by name. A scalar input `x` takes the column `x`. A vector input `x` of
shape [n] takes the columns `x_0, ..., x_{n-1}`; a matrix `W` of shape [m, n] takes `W_0_0, W_0_1,
..., W_{m-1}_{n-1}` (row-major: the last index varies fastest); in `.npz` and `.parquet` one column
named `x` may instead hold the whole value of each row (an array [rows, *shape], or a list column).
An input given with --inputs must not also be in the data; an input with no default and no
--inputs value must be. A column that is no input's is refused (with the list of inputs) unless
`ignore_columns`.

Rows are numbered as a spreadsheet shows them: the header is row 1, the first example row 2 (the
same numbers for .npz and .parquet, as if they had a header row). Every problem with the data is
a DataError (CG150, exit code 1) naming the file, the row and the column: an empty cell, a cell
that is not a number, NaN or infinity, a float for an integer input, a row of a list column of the
wrong length; a column that is no input's is CG151. The file is at most --max-bytes long (CG004).
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cg.errors import CgError, Diagnostic, Pos, UsageError, did_you_mean
from cg.graph.arrays import ArrayFileError, check_kind, read_header
from cg.graph.ir import Graph, Input
from cg.limits import Limits
from cg.limits import current as current_limits

FORMATS = (".csv", ".npz", ".parquet")
INSTALL = "pip install cg-graphs[data]"
_INT64 = np.iinfo(np.int64)


class DataError(CgError):
    """A data file whose contents cannot be used (exit code 1)."""


@dataclass(frozen=True)
class Data:
    """The examples of a data file: `columns` maps each input taken from the data to its values,
    an array [rows, *shape of the input]."""

    file: str
    rows: int
    columns: dict[str, np.ndarray]


def row_of(example: int) -> int:
    """The spreadsheet row of the example at 0-based index `example` (the header is row 1)."""
    return example + 2


# ---- reading: column name -> raw column ----------------------------------------------------------
# A raw column is a 1-d array of str (CSV cells, not yet numbers) or a numeric array [rows, ...]
# (NaN and Inf not yet checked), with its 1-based position in the file for messages.


@dataclass(frozen=True)
class _Column:
    name: str
    number: int  # 1-based position among the columns
    cells: np.ndarray
    text: bool = False  # from CSV: cells as float64, with the first bad cell noted (never raised unless used)
    problem: tuple[int, str] | None = None  # (example, what is wrong) of the first cell that is no number
    nonint: tuple[int, str] | None = None  # (example, text) of the first cell that is no integer


def _error(file: str, message: str, row: int | None = None, col: _Column | None = None,
           code: str = "CG150") -> DataError:
    where = []
    if row is not None:
        where.append(f"row {row}")
    if col is not None:
        where.append(f"column {_q(col.name)}")
    text = (", ".join(where) + ": " if where else "") + message
    pos = Pos(row, col.number) if row is not None and col is not None else None
    return DataError([Diagnostic(code, text, file, pos)])


def _q(name: str) -> str:
    from cg.printable import printable

    shown = printable(name)
    return f"'{shown}'" if len(shown) <= 40 else f"'{shown[:37]}...'"


def read_columns(path: str) -> list[_Column]:
    """The columns of a data file, read within the limits."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in FORMATS:
        raise UsageError.one("CG300", f"--data: expected a .csv, .npz or .parquet file, got {_q(path)}")
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UsageError.one("CG152", f"--data {_q(path)}: reading Parquet needs pyarrow: {INSTALL}") from None
    raw = _read_bytes(path)
    if suffix == ".csv":
        return _csv_columns(path, raw)
    if suffix == ".npz":
        return _npz_columns(path, raw)
    return _parquet_columns(path, raw)


def _read_bytes(path: str) -> bytes:
    from cg.files import read_regular

    if not os.path.lexists(path):
        raise UsageError.one("CG001", f"--data: no such file: {_q(path)}")
    most = current_limits().max_bytes
    raw = read_regular(path, most, path, DataError, what="data file")
    if len(raw) > most:
        raise DataError.one("CG004", f"data file larger than {most:,} bytes ({Limits().hint('max_bytes')})",
                            file=path)
    return raw


def _csv_columns(path: str, raw: bytes) -> list[_Column]:
    # Decoded as read, a line at a time: a whole-text copy (StringIO holds 4 bytes a character) or a
    # list of lines would take several times the file's size.
    reader = csv.reader(io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8-sig", newline=""))
    example = 0
    try:
        header = next(reader, None)
        if not header or all(not h.strip() for h in header):
            raise _error(path, "the first row must be a header of column names", 1)
        names = [h.strip() for h in header]
        for k, name in enumerate(names):
            if not name:
                raise _error(path, f"column {k + 1} of the header has no name", 1)
            if name in names[:k]:
                raise _error(path, f"column {_q(name)} named twice in the header", 1)
        width = len(names)
        cols = [array("d") for _ in names]  # 8 bytes a cell: a 50 MB file of "1,1,1..." stays ~200 MB
        problems: list[tuple[int, str] | None] = [None] * width
        nonints: list[tuple[int, str] | None] = [None] * width
        for example, row in enumerate(reader):
            if len(row) != width:
                raise _error(path, f"{len(row)} cells, but the header has {width} columns", row_of(example))
            for k, cell in enumerate(row):
                cols[k].append(_cell(cell, k, example, problems, nonints))
    except csv.Error as e:
        raise _error(path, f"not valid CSV ({e})", row_of(example)) from None
    except UnicodeDecodeError:
        raise DataError.one("CG002", "not UTF-8 text", file=path) from None
    return [_Column(name, k + 1, np.frombuffer(cols[k], dtype=np.float64) if len(cols[k]) else np.zeros(0),
                    True, problems[k], nonints[k]) for k, name in enumerate(names)]


def text_columns(names: Sequence[str], cells: Sequence[Sequence[Any]]) -> list[_Column]:
    """CSV columns whose cells another reader split (Dask's, as strings): every cell checked as
    read_columns checks it (a missing cell, not a string, is an empty one)."""
    problems: list[tuple[int, str] | None] = [None] * len(names)
    nonints: list[tuple[int, str] | None] = [None] * len(names)
    out = []
    for k, (name, column) in enumerate(zip(names, cells)):
        numbers = array("d", (_cell(c if isinstance(c, str) else "", k, i, problems, nonints)
                              for i, c in enumerate(column)))
        out.append(_Column(name, k + 1, np.frombuffer(numbers, dtype=np.float64) if len(numbers) else np.zeros(0),
                           True, problems[k], nonints[k]))
    return out


def _cell(cell: str, k: int, example: int, problems: list[tuple[int, str] | None],
          nonints: list[tuple[int, str] | None]) -> float:
    """The number in a CSV cell; NaN where there is none, the first such cell of each column noted."""
    try:
        x = float(cell)  # also takes "1_0", "nan", "inf" and non-ASCII digits: refused below
    except ValueError:
        if problems[k] is None:
            text = cell.strip()
            problems[k] = (example, "empty cell" if not text else f"not a number: {_q(text)}")
        return math.nan
    if not math.isfinite(x) or "_" in cell or not cell.isascii():
        if problems[k] is None:
            text = cell.strip()
            low = text.lower().lstrip("+-")
            why = ("NaN and infinity are not allowed" if low in ("nan", "inf", "infinity") else
                   f"{_q(text)} is too large for float64" if cell.isascii() and "_" not in cell else
                   f"not a number: {_q(text)}")
            problems[k] = (example, why)
        return math.nan
    if nonints[k] is None and (not cell.strip().lstrip("+-").isdigit() or abs(x) > 2**53):
        nonints[k] = (example, cell.strip())
    return x


def _npz_columns(path: str, raw: bytes) -> list[_Column]:
    import zipfile

    columns: list[_Column] = []
    most, total = current_limits().max_total, 0
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            for k, info in enumerate(archive.infolist()):
                name = info.filename.removesuffix(".npy")
                with archive.open(info) as f:
                    try:  # each array within --max-elements (read_header), all of them within --max-total
                        header = read_header(f, info.file_size, "array")
                        check_kind(header)
                    except ArrayFileError as e:
                        raise _error(path, f"array {_q(name)}: {e}") from None
                    total += header.size
                    if total > most:
                        raise DataError.one("CG004", f"the arrays hold more than {most:,} numbers"
                                            f" ({Limits().hint('max_total')})", file=path)
                    data = f.read(header.nbytes)
                arr = np.frombuffer(data, dtype=header.dtype, count=header.size)
                arr = arr.reshape(header.shape[::-1]).T if header.fortran else arr.reshape(header.shape)
                if arr.ndim == 0:
                    raise _error(path, f"array {_q(name)} is a single number; a column has one value per row")
                if header.dtype.kind in "iu":
                    if header.dtype.kind == "u" and arr.size and int(arr.max()) > _INT64.max:
                        raise _error(path, f"array {_q(name)}: values do not fit in int64")
                    arr = arr.astype(np.int64)
                else:
                    with np.errstate(over="ignore"):
                        arr = arr.astype(np.float64)
                columns.append(_Column(name, k + 1, arr))
    except DataError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, RuntimeError, NotImplementedError, OSError) as e:
        raise _error(path, f"not a valid .npz archive ({e})") from None
    except Exception as e:  # zlib and lzma errors of a damaged member
        if type(e).__module__ in ("zlib", "_lzma", "lzma", "_bz2", "bz2"):
            raise _error(path, f"not a valid .npz archive ({e})") from None
        raise
    _same_length(path, columns)
    return columns


def _same_length(path: str, columns: list[_Column]) -> None:
    if columns and len({len(c.cells) for c in columns}) > 1:
        first = columns[0]
        other = next(c for c in columns if len(c.cells) != len(first.cells))
        raise _error(path, f"column {_q(first.name)} has {len(first.cells):,} rows but {_q(other.name)} has"
                     f" {len(other.cells):,}")


def _parquet_columns(path: str, raw: bytes) -> list[_Column]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    most = current_limits().max_total
    try:
        meta = pq.ParquetFile(pa.BufferReader(raw)).metadata  # sizes before anything is decompressed
        size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if size > 8 * most:
            raise DataError.one("CG004", f"the columns hold {size:,} bytes uncompressed, more than {most:,} numbers"
                                f" ({Limits().hint('max_total')})", file=path)
        table = pq.read_table(pa.BufferReader(raw))
    except (pa.ArrowException, OSError, ValueError) as e:
        raise _error(path, f"not a valid Parquet file ({str(e)[:200]})") from None
    columns: list[_Column] = []
    for k, name in enumerate(table.column_names):
        col = _Column(name, k + 1, np.empty(0))
        chunked = table.column(k)
        kind = chunked.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            if chunked.null_count:
                first = next(i for i, v in enumerate(chunked.is_null().to_pylist()) if v)
                raise _error(path, "empty cell", row_of(first), col)
            arr = chunked.to_numpy()
            if arr.dtype.kind == "u" and arr.size and int(arr.max()) > _INT64.max:  # would wrap to negative
                raise _error(path, "values do not fit in int64", None, col)
            arr = arr.astype(np.int64) if arr.dtype.kind in "iu" else arr.astype(np.float64)
        elif pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
            arr = _list_column(path, col, chunked.to_pylist(), most)
        else:
            raise _error(path, f"holds {kind}, not numbers", None, col)
        columns.append(_Column(name, k + 1, arr))
    return columns


def array_column(path: str, name: str, number: int, cells: np.ndarray) -> _Column:
    """A column another reader decoded (Dask's read_parquet, as pandas): numbers, NaN for a null
    (an empty cell), or a whole list per row (object cells), checked as read_columns checks them."""
    col = _Column(name, number, np.empty(0))
    if cells.dtype == object:
        listed = [None if c is None or (np.ndim(c) == 0 and c != c) else np.asarray(c).tolist() for c in cells]
        return _Column(name, number, _list_column(path, col, listed, current_limits().max_total))
    if cells.dtype.kind not in "iuf":
        raise _error(path, f"holds {cells.dtype}, not numbers", None, col)
    if cells.dtype.kind == "f" and np.isnan(cells).any():
        raise _error(path, "empty cell", row_of(int(np.flatnonzero(np.isnan(cells))[0])), col)
    return _Column(name, number, cells.astype(np.int64) if cells.dtype.kind in "iu" else cells.astype(np.float64))


def _list_column(path: str, col: _Column, cells: list[Any], most: int) -> np.ndarray:
    """A list column's rows as one array [rows, *shape]: every row of one shape (else: ragged)."""
    shape: tuple[int, ...] | None = None
    out: list[np.ndarray] = []
    total = 0
    for i, cell in enumerate(cells):
        if cell is None:
            raise _error(path, "empty cell", row_of(i), col)
        try:
            arr = np.array(cell)
            if arr.dtype == object:
                raise ValueError
        except ValueError:
            raise _error(path, "a ragged list (its inner lists differ in length)", row_of(i), col) from None
        if arr.dtype.kind not in "iuf":
            raise _error(path, "a list with empty or non-numeric entries", row_of(i), col)
        if shape is None:
            shape = arr.shape
        elif arr.shape != shape:
            raise _error(path, f"a list of shape {list(arr.shape)}; the rows before have shape {list(shape)}"
                         " (a ragged list column)", row_of(i), col)
        total += arr.size
        if total > most:
            raise DataError.one("CG004", f"column {_q(col.name)}: more than {most:,} numbers"
                                f" ({Limits().hint('max_total')})", file=path)
        out.append(arr)
    if not out:
        return np.zeros((0,))
    stacked = np.stack(out)
    return stacked.astype(np.int64) if stacked.dtype.kind in "iu" else stacked.astype(np.float64)


# ---- binding: columns -> inputs ------------------------------------------------------------------

_SPLIT = re.compile(r"(.+?)((?:_\d+)+)")


def bind(graph: Graph, path: str, columns: list[_Column], given: Mapping[str, Any], *,
         ignore_columns: bool = False) -> Data:
    """The values of the inputs the data holds, checked (see the module's docstring)."""
    by_name = {c.name: c for c in columns}
    inputs = {i.name: i for i in graph.inputs}
    rows = len(columns[0].cells) if columns else 0
    used: set[str] = set()
    out: dict[str, np.ndarray] = {}
    for inp in graph.inputs:
        whole = by_name.get(inp.name)
        parts = _split_columns(inp, by_name, inputs)
        if (whole is not None or parts) and inp.name in given:
            what = _q(whole.name) if whole is not None else f"{_q(parts[0].name)}..."
            raise UsageError.one("CG300", f"input '{inp.name}' is given with --inputs and is also column {what} of"
                                 f" {_q(path)}: give it once", file=graph.file)
        if whole is not None:
            used.add(whole.name)
            out[inp.name] = _whole(path, inp, whole)
        elif parts:
            used.update(c.name for c in parts)
            out[inp.name] = _from_parts(path, inp, parts, by_name)
    missing = [i for i in graph.inputs if i.name not in out and i.name not in given and i.default is None]
    if missing:
        i = missing[0]
        want = _wanted(i)
        raise _error(path, f"no column for input '{i.name}' (it has no default and no --inputs value): expected"
                     f" {want}; the columns are {_list([c.name for c in columns])}")
    extra = [c for c in columns if c.name not in used]
    if extra and not ignore_columns:
        c = extra[0]
        names = [i.name for i in graph.inputs]
        hint = did_you_mean(_SPLIT.sub(r"\1", c.name) if _SPLIT.fullmatch(c.name) else c.name, names)
        raise _error(path, f"not an input of the graph{hint}; the inputs are {_list(names)}"
                     " (--ignore-columns skips such columns)", 1, c, code="CG151")
    for name, arr in out.items():
        if len(arr) != rows:
            raise _error(path, f"input '{name}' has {len(arr):,} rows, the data {rows:,}")
    return Data(path, rows, out)


def _list(names: list[str]) -> str:
    shown = ", ".join(_q(n) for n in names[:12])
    return shown + (f", ... ({len(names)} in all)" if len(names) > 12 else "") if names else "(none)"


def _wanted(inp: Input) -> str:
    shape = inp.aval.shape
    if not shape:
        return f"column '{inp.name}'"
    first = inp.name + "".join("_0" for _ in shape)
    last = inp.name + "".join(f"_{n - 1}" for n in shape)
    return f"columns {first} ... {last} (shape {list(shape)}, row-major) or one column '{inp.name}' of whole values"


def _split_columns(inp: Input, by_name: Mapping[str, _Column], inputs: Mapping[str, Input]) -> list[_Column]:
    """The columns `name_i` (`name_i_j`...) of a vector (matrix) input that the data holds."""
    prefix = inp.name + "_"
    found = []
    for name, col in by_name.items():
        if name.startswith(prefix) and name not in inputs and re.fullmatch(r"(_\d+)+", name[len(inp.name):]):
            found.append(col)
    return found


def _from_parts(path: str, inp: Input, parts: list[_Column], by_name: Mapping[str, _Column]) -> np.ndarray:
    shape = inp.aval.shape
    if not shape:
        raise _error(path, f"input '{inp.name}' is a scalar: its column is '{inp.name}'", 1, parts[0])
    wanted = [inp.name + "".join(f"_{k}" for k in idx) for idx in np.ndindex(shape)]
    missing = [w for w in wanted if w not in by_name]
    if missing:
        raise _error(path, f"input '{inp.name}' has shape {list(shape)}: columns {wanted[0]} ... {wanted[-1]}"
                     f" (row-major); missing {_list(missing)}")
    stray = [c for c in parts if c.name not in wanted]
    if stray:
        raise _error(path, f"no element of input '{inp.name}', which has shape {list(shape)} (columns"
                     f" {wanted[0]} ... {wanted[-1]})", 1, stray[0])
    cols = [_numbers(path, inp, by_name[w]) for w in wanted]
    for c, arr in zip(wanted, cols):
        if arr.ndim != 1:
            raise _error(path, "holds a whole value per row; element columns hold one number", 1, by_name[c])
    rows = len(cols[0])
    return np.stack(cols, axis=1).reshape((rows, *shape)) if rows else np.zeros((0, *shape), cols[0].dtype)


def _whole(path: str, inp: Input, col: _Column) -> np.ndarray:
    arr = _numbers(path, inp, col)
    shape = inp.aval.shape
    if col.text and shape:
        raise _error(path, f"input '{inp.name}' has shape {list(shape)}: a CSV cell holds one number; give the"
                     f" columns {_wanted(inp).removeprefix('columns ').split(' (')[0]}", 1, col)
    if arr.shape[1:] != shape and (inp.shape_given or inp.default is not None or shape):
        raise _error(path, f"holds values of shape {list(arr.shape[1:])}, but input '{inp.name}' has shape"
                     f" {list(shape)}", None, col)
    return arr


def _numbers(path: str, inp: Input, col: _Column) -> np.ndarray:
    """A column as numbers of the input's dtype, every row checked."""
    cells = col.cells
    integer = inp.aval.dtype == "int"
    if col.text:
        if col.problem is not None:
            raise _error(path, col.problem[1], row_of(col.problem[0]), col)
        if integer and col.nonint is not None:
            example, text = col.nonint
            big = text.lstrip("+-").isdigit()
            raise _error(path, f"{_q(text)} is {'too large for' if big else 'not'} an integer, but input"
                         f" '{inp.name}' is an integer", row_of(example), col)
        arr = cells
    elif integer and cells.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(cells).reshape(len(cells), -1).all(axis=1) |
                             (cells != np.round(cells)).reshape(len(cells), -1).any(axis=1))
        first = int(bad[0]) if bad.size else 0
        raise _error(path, f"floats (dtype float64), but input '{inp.name}' is an integer", row_of(first), col)
    else:
        arr = cells
    if arr.dtype.kind == "f":
        bad_rows = ~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1) if arr.size else np.zeros(0, bool)
        if bad_rows.any():
            first = int(np.flatnonzero(bad_rows)[0])
            raise _error(path, "NaN and infinity are not allowed", row_of(first), col)
    return arr.astype(np.int64 if integer else np.float64, copy=False)


def load_data(graph: Graph, path: str, given: Mapping[str, Any], *, ignore_columns: bool = False) -> Data:
    """Read a data file and bind its columns to the graph's inputs."""
    return bind(graph, path, read_columns(path), given, ignore_columns=ignore_columns)
