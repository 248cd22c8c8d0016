"""Renderers of a run result: a table (rich on a terminal, plain text otherwise) and JSON.

Tables: a cell never holds a raw control character (cg.printable). A terminal gets the first
and last rows of a huge result (max_rows=TERMINAL_ROWS; only those rows are formatted), pipes
and files every row. JSON: iter_json writes the document in pieces of bounded size."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from cg.eval.interp import Result
from cg.graph.composite import shown_nodes
from cg.graph.ir import Arg, Const
from cg.printable import printable

COLUMNS = ("id", "op", "in", "shape", "value", "grad")
SMALL = 6  # tensors with at most this many entries are shown in full in the table
# Rows of the table drawn on a terminal: rich takes ~0.3 ms a row, and nobody reads 100,000 rows
# there; the first and last TERMINAL_ROWS // 2 are shown (pipes and files get every row).
TERMINAL_ROWS = 200


def fmt_number(v: float | int, precision: int) -> str:
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if v == 0:
        v = 0.0  # never print "-0.0000"
    if v == 0 or 1e-4 <= abs(v) < 1e7:
        return f"{v:.{precision}f}"
    return f"{v:.{precision}e}"


def is_number(text: str | None) -> bool:
    """Whether a formula's text is a plain number ("1", "−1"): then "∂e/∂b = 1", not "= 1 = 1.0000"."""
    try:
        float(str(text).replace("−", "-"))
    except ValueError:
        return False
    return True


def fmt_value(v: np.ndarray | None, precision: int) -> str:
    """A scalar with `precision` decimals; a small tensor in full; a big one as a summary."""
    if v is None:
        return "-"
    if v.ndim == 0:
        return fmt_number(v.item(), precision)
    if v.size <= SMALL:
        return np.array2string(
            v, separator=", ", formatter={"all": lambda x: fmt_number(x.item(), precision)},  # type: ignore[arg-type]
        ).replace("\n", "")
    finite = v[np.isfinite(v)] if v.dtype.kind == "f" else v
    if finite.size == 0:
        return f"all {fmt_number(v.flat[0].item(), precision)}"
    stats = (("min", np.min), ("mean", np.mean), ("max", np.max))
    parts = [f"{k} {fmt_number(f(finite).item(), precision)}" for k, f in stats]
    extra = f", {v.size - finite.size} not finite" if finite.size < v.size else ""
    return ", ".join(parts) + extra


def arg_text(arg: str | Const) -> str:
    """Constants as they would be written in the file: 3, 0.5, [1, 2]."""
    if isinstance(arg, str):
        return arg
    v = arg.value
    if v.size > SMALL:
        return f"<constant {list(v.shape)}>"
    return np.array2string(v, separator=", ", formatter={"all": lambda x: f"{x.item():.6g}"})  # type: ignore[arg-type]


def derivative_column(result: Result) -> str:
    """"grad" (reverse mode: d of / d node) or "tangent" (forward mode: d node / d wrt)."""
    return "tangent" if result.tangents is not None else "grad"


def derivative(result: Result, name: str) -> np.ndarray | None:
    return (result.tangents if result.tangents is not None else result.grads).get(name)


def _derivative_text(result: Result, name: str, precision: int) -> str:
    d = derivative(result, name)
    text = fmt_value(d, precision)
    if d is None or name in result.on_path:
        return text
    # A zero that means "no path", not a derivative that happens to vanish.
    if result.tangents is not None:
        return f"{text} (no path from {', '.join(result.wrt)})"
    return f"{text} (no path to {result.of})" if result.of else text


# (id, op, arguments) of a row: an input has the op "input" and no arguments.
_Entry = tuple[str, str, tuple[Arg, ...]]


def _entries(result: Result) -> list[_Entry]:
    g = result.graph
    return [(i.name, "input", ()) for i in g.inputs] + [(n.id, n.op.name, n.args) for n in shown_nodes(g)]


def _row(result: Result, entry: _Entry, precision: int) -> tuple[str, ...]:
    # Ids and ops are checked names, but a cell never trusts that: printable is a search on clean text.
    name, op, args = entry
    value = result.values[name]
    ins = ", ".join(arg_text(a) for a in args).replace("\n", "")  # a matrix constant on one line
    return (printable(name), printable(op), printable(ins), str(list(value.shape)), fmt_value(value, precision),
            _derivative_text(result, name, precision))


def rows(result: Result, precision: int = 4) -> Iterator[tuple[str, ...]]:
    """One row per input and node, in topological order; a composite is one row (its function as
    the op, its value and gradient at its boundary) unless the graph is shown expanded."""
    for entry in _entries(result):
        yield _row(result, entry, precision)


_T = TypeVar("_T")
ALL_ROWS = "pipe the output or use -f csv / -f json / -o FILE"  # how to see every row of a run


def head_and_tail(items: Sequence[_T], max_rows: int | None) -> tuple[list[_T], int, list[_T]]:
    """All the items, or (over max_rows) the first and last max_rows // 2 and how many are between."""
    if max_rows is None or len(items) <= max_rows:
        return list(items), 0, []
    half = max_rows // 2
    return list(items[:half]), len(items) - 2 * half, list(items[len(items) - half:])


@dataclass(frozen=True)
class Rows:
    """The rows a table shows: all of them, or the first and last when there are too many."""

    head: list[tuple[str, ...]]
    hidden: int  # rows left out between head and tail
    tail: list[tuple[str, ...]]

    def note(self, ways: str = ALL_ROWS) -> str:
        return f"\u2026 {self.hidden:,} row{'s' * (self.hidden != 1)} not shown: {ways} for all of them"


def summary_rows(result: Result, precision: int = 4, max_rows: int | None = None) -> Rows:
    """Every row, or (over max_rows) the first and last max_rows // 2: only those are formatted."""
    head, hidden, tail = head_and_tail(_entries(result), max_rows)
    return Rows([_row(result, e, precision) for e in head], hidden, [_row(result, e, precision) for e in tail])


def plain_rows(header: tuple[str, ...], shown: Rows, ways: str = ALL_ROWS) -> str:
    """aligned() of the rows, with a line that says how many are left out where they are."""
    if not shown.hidden:
        return aligned([header, *shown.head])
    lines = aligned([header, *shown.head, *shown.tail]).splitlines(keepends=True)
    cut = len(shown.head) + 1
    return "".join([*lines[:cut], shown.note(ways) + "\n", *lines[cut:]])


def rich_rows(table: Any, shown: Rows, ways: str = ALL_ROWS) -> None:
    """The rows into a rich Table, with a row of "\u2026" and a caption where some are left out."""
    from rich.text import Text

    for row in shown.head:
        table.add_row(*(Text(cell) for cell in row))  # Text cells: user text is never read as rich markup
    if shown.hidden:
        table.add_row(*(Text("\u2026", style="dim") for _ in table.columns))
        for row in shown.tail:
            table.add_row(*(Text(cell) for cell in row))
        table.caption, table.caption_justify = Text(shown.note(ways), style="dim"), "left"


def _columns(result: Result) -> tuple[str, ...]:
    return (*COLUMNS[:-1], derivative_column(result))


def plain_table(result: Result, precision: int = 4, max_rows: int | None = None) -> str:
    """Aligned columns with no colour and no box characters, for pipes and files; cells are
    never cut. With max_rows, a longer table shows its first and last rows and a line between."""
    return plain_rows(_columns(result), summary_rows(result, precision, max_rows))


def aligned(table: list[tuple[str, ...]]) -> str:
    """Rows of cells as left-aligned plain-text columns (the first row is the header)."""
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in table]
    return "\n".join(lines) + "\n"


def rich_table(result: Result, precision: int = 4, max_rows: int | None = None) -> Any:
    """A rich Table; with max_rows (TERMINAL_ROWS on a terminal), a longer result shows its first
    and last rows, a row of "\u2026" between them, and a caption that says how to see them all."""
    from rich.table import Table
    from rich.text import Text

    if result.tangents is not None:
        what = f"forward mode, d node / d {', '.join(result.wrt)}"
    else:
        what = f"d {result.of} / d node" if result.of else "no gradient"
    title = Text(f"{printable(result.graph.name)}: value and derivative ({what})")
    table = Table(title=title, title_justify="left")
    for col in _columns(result):
        table.add_column(col, justify="right" if col in ("value", "grad", "tangent") else "left", overflow="fold")
    rich_rows(table, summary_rows(result, precision, max_rows))
    return table


def _jsonable(v: np.ndarray | None) -> Any:
    """Nested lists at full precision; NaN and Inf become the strings "NaN", "Infinity",
    "-Infinity", since strict JSON has no such numbers."""
    if v is None:
        return None
    out = v.tolist()
    if v.dtype.kind == "f" and not np.all(np.isfinite(v)):
        out = json_strings(out)
    return out


def json_strings(x: Any) -> Any:
    """NaN and the infinities as the strings "NaN", "Infinity", "-Infinity", as `cg run -f json` writes them."""
    if isinstance(x, list):
        return [json_strings(e) for e in x]
    if isinstance(x, float) and not math.isfinite(x):
        return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")
    return x


# ---- JSON, written in pieces --------------------------------------------------------------
#
# `cg run -f json` of two 9M-entry nodes would be 3.7 GB of text built at once (and more as the
# lists of Python floats json.dumps walks). iter_json writes the same text piece by piece: the
# document's small parts through json.dumps, a tensor CHUNK numbers at a time through the C
# encoder (compact), whose separators are then replaced by the indented ones with str.replace.

CHUNK = 1 << 15  # numbers per piece: ~1 MB of text, ~1 MB of Python floats
_NONFINITE = re.compile(r"-?Infinity|NaN")  # the C encoder's words; numbers hold no other letters but e/E


def _pad(level: int) -> str:
    return "\n" + "  " * level


def _scalar_text(v: np.ndarray) -> str:
    x = v.item()
    if isinstance(x, float) and not math.isfinite(x):
        x = "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")
    return json.dumps(x)


def _cost(v: np.ndarray) -> int:
    """Numbers and brackets of a tensor's text (a [10**7, 0] tensor is ten million brackets)."""
    return max(v.size, math.prod(v.shape[:-1]))


def _array_text(v: np.ndarray, level: int) -> str:
    """A small tensor (ndim >= 1) as json.dumps(v.tolist(), indent=2) writes it `level` deep."""
    if v.size == 0:  # brackets only: the Python encoder, indented
        return json.dumps(v.tolist(), indent=2).replace("\n", _pad(level))
    text = json.dumps(v.tolist())  # "[[1.0, 2.0], [3.0, 4.0]]"
    if v.dtype.kind == "f" and not np.isfinite(v).all():
        text = _NONFINITE.sub(r'"\g<0>"', text)
    n = v.ndim
    # A rectangular tensor: siblings r levels up from the numbers are separated by "]"*r + ", " + "["*r.
    for r in range(n - 1, -1, -1):  # the longest first: a shorter one is inside it
        closes = "".join(_pad(level + d - 1) + "]" for d in range(n, n - r, -1))
        opens = "".join("[" + _pad(level + d) for d in range(n - r + 1, n + 1))
        text = text.replace("]" * r + ", " + "[" * r, closes + "," + _pad(level + n - r) + opens)
    head = "".join("[" + _pad(level + d) for d in range(1, n + 1))
    tail = "".join(_pad(level + d - 1) + "]" for d in range(n, 0, -1))
    return head + text[n:-n] + tail


def _iter_array(v: np.ndarray, level: int) -> Iterator[str]:
    """A tensor's text `level` deep, in pieces of about CHUNK numbers: slices along the first
    axis, or each row in pieces when one row is bigger than that."""
    if v.ndim == 0:
        yield _scalar_text(v)
        return
    if _cost(v) <= CHUNK:
        yield _array_text(v, level)
        return
    row = _cost(v[0])
    yield "[" + _pad(level + 1)
    if row > CHUNK:
        for i in range(len(v)):  # rows, each over CHUNK numbers: the loop is short
            yield from ([] if i == 0 else ["," + _pad(level + 1)])
            yield from _iter_array(v[i], level + 1)
    else:
        step = CHUNK // max(row, 1)
        opening, closing = len("[" + _pad(level + 1)), len(_pad(level) + "]")
        for start in range(0, len(v), step):
            text = _array_text(v[start:start + step], level)
            yield ("," + _pad(level + 1) if start else "") + text[opening:-closing]
    yield _pad(level) + "]"


def _iter_value(x: Any, level: int) -> Iterator[str]:
    """json.dumps(x, indent=2, allow_nan=False) `level` deep, for dicts, lists, iterators (as
    lists), scalars and numpy arrays (as their nested lists, NaN and Inf as strings)."""
    if isinstance(x, np.ndarray):
        yield from _iter_array(x, level)
    elif isinstance(x, dict) and x:
        for k, (key, value) in enumerate(x.items()):
            yield ("{" if k == 0 else ",") + _pad(level + 1) + json.dumps(key) + ": "
            yield from _iter_value(value, level + 1)
        yield _pad(level) + "}"
    elif isinstance(x, (list, tuple, Iterator)):
        empty = True
        for item in x:
            yield ("[" if empty else ",") + _pad(level + 1)
            yield from _iter_value(item, level + 1)
            empty = False
        yield "[]" if empty else _pad(level) + "]"
    else:
        yield json.dumps(x, allow_nan=False)


def _node_objects(result: Result) -> Iterator[dict[str, Any]]:
    """The entries of "nodes", with their tensors as arrays (written when their turn comes)."""
    for name, op, args in _entries(result):
        value = result.values[name]
        entry = {"id": name, "op": op, "in": [a if isinstance(a, str) else a.value for a in args],
                 "shape": list(value.shape), "value": value, "grad": result.grads.get(name),
                 "on_path": name in result.on_path}
        if result.tangents is not None:
            entry["tangent"] = result.tangents.get(name)
        yield entry


def iter_json(result: Result, edges: list[dict[str, Any]] | None = None) -> Iterator[str]:
    """The text of to_json in pieces, none much over CHUNK numbers: written to a file one by one,
    a result of any size takes no more memory than a piece. `edges`: cg.eval.edges.edge_objects
    (tensors as arrays, written in pieces too) or cg.render.reports.edges_json (lists)."""
    g = result.graph
    doc: dict[str, Any] = {
        "graph": g.name, "file": g.file, "mode": "forward" if result.tangents is not None else "reverse",
        "of": result.of, "wrt": list(result.wrt), "outputs": list(g.outputs), "nodes": _node_objects(result),
        "nonfinite": list(result.nonfinite),
    }
    if edges is not None:
        doc["edges"] = edges
    yield from _iter_value(doc, 0)
    yield "\n"


def to_json(result: Result, edges: list[dict[str, Any]] | None = None) -> str:
    """The run as one JSON document (schema: `cg schema --result`), at full precision."""
    return "".join(iter_json(result, edges))
