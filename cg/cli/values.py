"""Parse values given on the command line: numbers, bracketed lists, @file.npy and @file.json.

Every problem is a UsageError with code CG300 (exit code 2) whose message names what was being
parsed (e.g. "input 'x'") and says what was expected.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from collections.abc import Sequence
from typing import BinaryIO

import numpy as np

from cg.errors import Diagnostic, UsageError
from cg.files import kind
from cg.limits import Limits
from cg.limits import current as current_limits

CODE = "CG300"
# json.loads recurses once per bracket and raises RecursionError near 1,000 levels; no real input
# needs more than a few dimensions, so deeper text is refused before json ever sees it.
MAX_DEPTH = 32
# A value of 10^8 numbers is 800 MB as float64 before a single op runs; no graph cg is for needs
# more than ten million (80 MB), and bigger ones are refused before they are read.
MAX_ELEMENTS = Limits.max_elements  # the default; the one in force is limits.current().max_elements
EXPECTED = "expected a number or a bracketed list like [1, 2, 3]"

# JSON's number grammar exactly: a token that passes here is one json.loads accepts.
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
# Brackets and commas are single tokens; anything else up to the next separator is one "word".
_TOKEN = re.compile(r"[\[\],]|[^\s\[\],]+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INT64 = np.iinfo(np.int64)


def _usage(message: str) -> UsageError:
    return UsageError([Diagnostic(CODE, message)])


def _show(text: str, limit: int = 40) -> str:
    """Quote user text, shortened so a 5,000-bracket mistake does not flood the terminal."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def parse_value(text: str, *, what: str) -> np.ndarray:
    """Parse a number, a bracketed nested list of numbers, or '@path' to a .npy or .json file.

    Integers come back as int64, anything containing a float as float64; NaN and Inf are refused.
    """
    text = text.strip()
    if text.startswith("@"):
        return _load_file(text[1:].strip(), what=what)
    return _parse_literal(text, what=what)


def _parse_literal(text: str, *, what: str) -> np.ndarray:
    _check_tokens(text, what=what)
    try:  # the hooks see each number as written, before it can silently become inf or an object
        obj = json.loads(text, parse_int=lambda s: _to_int(s, what), parse_float=lambda s: _to_float(s, what))
    except json.JSONDecodeError as e:  # the tokens were fine but their order was not, e.g. '[1 2]'
        raise _usage(f"{what}: {EXPECTED}, got {_show(text)} ({e.msg} at column {e.colno})") from None
    try:
        arr = np.asarray(obj)
        if arr.dtype == object:  # ragged; numpy >= 1.24 raises ValueError itself, older made objects
            raise ValueError
    except ValueError:
        raise _usage(f"{what}: {EXPECTED}, got {_show(text)}: rows have different lengths") from None
    # Pin the width: numpy's default int is platform-dependent (int32 on Windows before 2.0).
    return arr.astype(np.int64 if arr.dtype.kind in "iu" else np.float64, copy=False)


def _check_tokens(text: str, *, what: str) -> None:
    """Allow only brackets, commas and JSON numbers, so json.loads can only yield numbers and lists.

    This also rules out NaN and Infinity, which json.loads would otherwise accept.
    """
    bad = f"{what}: {EXPECTED}, got {_show(text)}"
    if not text:
        raise _usage(bad)
    depth = numbers = 0
    for match in _TOKEN.finditer(text):  # not findall: a list of every token of a big file is gigabytes
        tok = match.group()
        if tok == "[":
            depth += 1
            if depth > MAX_DEPTH:
                raise _usage(f"{bad}: lists nested more than {MAX_DEPTH} levels deep")
        elif tok == "]":
            depth -= 1
            if depth < 0:
                raise _usage(f"{bad}: unmatched ']'")
        elif tok != "," and _NUMBER.fullmatch(tok):
            numbers += 1
            if numbers > (most := current_limits().max_elements):
                raise _usage(f"{what}: more than {most:,} numbers; cg refuses values this big"
                             f" ({Limits().hint('max_elements')})")
        elif tok != ",":
            # "got 'abc': 'abc' is not a number" would say the same thing twice
            why = _why_not_number(tok) or ("" if tok == text else f"{_show(tok)} is not a number")
            raise _usage(f"{bad}: {why}" if why else bad)
    if depth > 0:
        raise _usage(f"{bad}: missing ']'")


def _why_not_number(tok: str) -> str:
    """Name the kind of thing written, because "not a number" alone is a poor hint for 'nan'; or ''."""
    low = tok.lower().lstrip("+-")
    if low in ("nan", "inf", "infinity"):
        return "NaN and infinity are not allowed"
    if low in ("true", "false", "null", "none"):
        return "booleans and null are not allowed"
    kinds = {"'": "strings", '"': "strings", "{": "objects"}
    return f"{kinds[tok[0]]} are not allowed" if tok[0] in kinds else ""


def _to_int(s: str, what: str) -> int:
    n = int(s) if len(s) <= 20 else _INT64.max + 1  # skip int() on huge strings (4,300-digit limit)
    if not _INT64.min <= n <= _INT64.max:
        raise _usage(f"{what}: integer {_show(s)} does not fit in int64")
    return n


def _to_float(s: str, what: str) -> float:
    x = float(s)
    if not math.isfinite(x):  # '1e999' parses to inf
        raise _usage(f"{what}: number {_show(s)} is too large for float64")
    return x


def _load_file(path: str, *, what: str) -> np.ndarray:
    if not path:
        raise _usage(f"{what}: expected a file path after '@', like @values.npy or @values.json")
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in (".npy", ".json"):
        raise _usage(f"{what}: expected a .npy or .json file after '@', got {_show(path)}")
    where = f"{what} (file {_show(path)})"
    full = os.path.expanduser(path)  # the shell does not expand '~' after 'x=@'
    try:
        # O_NONBLOCK: a FIFO is refused below instead of waited on.
        fd = os.open(full, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise _usage(f"{what}: cannot read file {_show(path)}: {e.strerror or e}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise _usage(f"{what}: cannot read file {_show(path)}: it is {kind(mode)}, not a regular file")
    with os.fdopen(fd, "rb") as f:
        try:
            return _load_npy(f, where) if suffix == ".npy" else _load_json(f, where)
        except OSError as e:
            raise _usage(f"{what}: cannot read file {_show(path)}: {e.strerror or e}") from None


def _load_json(f: BinaryIO, where: str) -> np.ndarray:
    most = current_limits().max_bytes  # as a graph file: a .json value is read whole, as text
    raw = f.read(most + 1)  # one byte over is enough to know it is too big
    if len(raw) > most:
        raise UsageError.one("CG004", f"{where}: larger than {most:,} bytes; give big values as .npy,"
                             f" or {Limits().hint('max_bytes')}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _usage(f"{where}: not UTF-8 text") from None
    return _parse_literal(text.strip(), what=where)


def _load_npy(f: BinaryIO, where: str) -> np.ndarray:
    """The array of a .npy file, its header checked before any data (cg/graph/arrays.py)."""
    from cg.graph.arrays import ArrayFileError, read_data, read_header

    try:
        return read_data(f, read_header(f, os.fstat(f.fileno()).st_size))
    except ArrayFileError as e:
        raise _usage(f"{where}: {e}") from None


def parse_assignments(text: str) -> list[tuple[str, str]]:
    """Split 'x=2,v=[1,2],W=[[1,2],[3,4]]' into (name, value) pairs, in order.

    Commas split only outside brackets, so list values need no quoting.
    """
    if not text.strip():
        return []
    pairs: dict[str, str] = {}
    for item in _split_top_level(text):
        name, value = _split_item(item)
        if name in pairs:
            raise _usage(f"name {name!r} given twice in {_show(text)}")
        pairs[name] = value
    return list(pairs.items())


def _split_top_level(text: str) -> list[str]:
    items: list[str] = []
    depth = start = 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise _usage(f"unbalanced brackets: unmatched ']' in {_show(text[start : i + 1].strip())}")
        elif ch == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    if depth > 0:
        raise _usage(f"unbalanced brackets: missing ']' in {_show(text[start:].strip())}")
    items.append(text[start:].strip())
    if "" in items:
        raise _usage(
            f"expected name=value items separated by single commas, got an empty item in {_show(text)}"
        )
    return items


def _split_item(item: str) -> tuple[str, str]:
    name, eq, value = (part.strip() for part in item.partition("="))
    bad = f"expected name=value, got {_show(item)}"
    if not eq:
        raise _usage(f"{bad} (missing '=')")
    if not name:
        raise _usage(f"{bad} (missing name)")
    if not _NAME.fullmatch(name):
        raise _usage(f"{bad}: a name is a letter or '_' followed by letters, digits or '_'")
    if not value:
        raise _usage(f"{bad} (missing value)")
    return name, value


def parse_inputs(texts: Sequence[str], *, option: str = "--inputs", what: str = "input") -> dict[str, np.ndarray]:
    """Parse every --inputs option (or another NAME=VALUE option) into one name -> array
    mapping, in the order given."""
    values: dict[str, np.ndarray] = {}
    for text in texts:
        try:
            pairs = parse_assignments(text)
        except UsageError as e:
            raise _usage(f"{option}: {e.diagnostics[0].message}") from None
        for name, raw in pairs:
            if name in values:
                raise _usage(f"{what} {name!r} given more than once")
            values[name] = parse_value(raw, what=f"{what} {name!r}")
    return values
