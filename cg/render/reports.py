"""Edges, Jacobians and paths as text: plain, rich and JSON (the numbers come from cg/eval/edges.py,
cg/eval/jacobian.py and cg/eval/paths.py, which know nothing of how they are shown)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from cg.eval.edges import JACOBIAN_LIMIT, Edge, edge_objects, formula_text, stream_sums
from cg.eval.jacobian import JacobianResult, label
from cg.eval.paths import Path, PathReport
from cg.printable import printable
from cg.render.table import (
    SMALL,
    Rows,
    _jsonable,
    aligned,
    fmt_number,
    fmt_value,
    head_and_tail,
    plain_rows,
    rich_rows,
)

COLUMNS = ("from", "to", "arg", "formula", "local", "flow")
EDGE_ROWS = "pipe the output or use -f json / -o FILE"  # how to see every edge (csv has no edges)

# ---- edges -------------------------------------------------------------------------------------


def edges_json(edges: list[Edge]) -> list[dict[str, Any]]:
    """One object per edge at full precision; NaN and Inf as strings, as in `cg run -f json`."""
    objects = edge_objects(edges)
    return [{k: _jsonable(v) if isinstance(v, np.ndarray) else v for k, v in obj.items()} for obj in objects]


def _tensor_text(v: np.ndarray | None, precision: int) -> str:
    """Small tensors in full; bigger ones get their shape in front of the summary; None is '-'."""
    text = fmt_value(v, precision)
    return text if v is None or v.size <= SMALL else f"{list(v.shape)} {text}"


def _local_text(e: Edge, precision: int) -> str:
    if e.local is not None:
        return _tensor_text(e.local, precision)
    shape = e.dst_shape + e.src_shape
    n = math.prod(shape)
    # A small edge without a Jacobian comes from an integer, which has no derivative.
    return f"{list(shape)} ({n} entries, over {JACOBIAN_LIMIT}: not shown)" if n > JACOBIAN_LIMIT else "-"


def _formula_text(e: Edge, precision: int) -> str:
    """The local derivative as the notes write it, in the node's names, with its value on a
    scalar edge: "2x = 4.0000", "1/e = 0.0238"."""
    text = formula_text(e, safe=printable)
    if text is None:
        return "-"
    return text if e.formula_value is None else f"{text} = {fmt_number(e.formula_value, precision)}"


def edge_rows(edges: list[Edge], precision: int = 4) -> list[tuple[str, ...]]:
    """One row of cells per edge: from, to, arg, formula, local, flow."""
    return [
        (printable(e.src), printable(e.dst), str(e.arg), _formula_text(e, precision), _local_text(e, precision),
         _tensor_text(e.flow, precision))
        for e in edges
    ]


def fan_out_lines(edges: list[Edge], precision: int = 4) -> list[str]:
    """For each name with several outgoing edges, its streams and their sum: the gradient
    (the fan-out sum of the notes), e.g. `x: 0.2857 + 0.3571 = 0.6429`."""
    flows: dict[str, list[np.ndarray]] = {}
    for e in edges:  # grouped in one pass: a 100,000-edge chain is not 10^10 comparisons
        if e.flow is not None:
            flows.setdefault(e.src, []).append(e.flow)
    sums = stream_sums(edges)
    return [f"{printable(src)}: {' + '.join(fmt_value(f, precision) for f in parts)} = "
            f"{fmt_value(sums[src], precision)}" for src, parts in flows.items() if len(parts) > 1]


def _shown(edges: list[Edge], precision: int, max_rows: int | None) -> Rows:
    head, hidden, tail = head_and_tail(edges, max_rows)
    return Rows(edge_rows(head, precision), hidden, edge_rows(tail, precision))


def _fan_out(edges: list[Edge], precision: int, max_rows: int | None) -> list[str]:
    head, hidden, tail = head_and_tail(fan_out_lines(edges, precision), max_rows)
    return [*head, f"\u2026 {hidden:,} more", *tail] if hidden else head


def plain_edges(edges: list[Edge], precision: int = 4, max_rows: int | None = None) -> str:
    """Aligned plain text with a header line, no colour; cells are never cut. Then the
    fan-out sums, when some name feeds several edges. max_rows as in cg.render.table.plain_table."""
    text = plain_rows(COLUMNS, _shown(edges, precision, max_rows), EDGE_ROWS)
    sums = _fan_out(edges, precision, max_rows)
    return text + ("\nfan-out: the streams leaving a name add up to its gradient\n" + "\n".join(sums) + "\n"
                   if sums else "")


def rich_edges(edges: list[Edge], precision: int = 4, max_rows: int | None = None) -> Any:
    """A rich Table of the edges, for a terminal (max_rows: TERMINAL_ROWS there)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text("edges: local derivative d to / d from, and the gradient flowing back"),
                  title_justify="left")
    for col in COLUMNS:
        table.add_column(col, justify="right" if col in ("arg", "local", "flow") else "left", overflow="fold")
    shown = _shown(edges, precision, max_rows)
    rich_rows(table, shown, EDGE_ROWS)
    sums = _fan_out(edges, precision, max_rows)
    if sums:  # below the note of the rows left out, if any
        note = shown.note(EDGE_ROWS) + "\n" if shown.hidden else ""
        table.caption = Text(note + "fan-out sums (= gradients): " + "; ".join(sums))
        table.caption_justify = "left"
    return table


# ---- jacobian ----------------------------------------------------------------------------------


def labels(name: str, shape: tuple[int, ...]) -> list[str]:
    """One label per element, in C order (the order of the flattened rows or columns)."""
    return [label(name, tuple(int(k) for k in idx)) for idx in np.ndindex(*shape)]


def summary(r: JacobianResult) -> list[tuple[str, str]]:
    shapes = f"{list(r.of_shape)} by {list(r.wrt_shape)}"
    lines = [("jacobian", f"d {r.of} / d {r.wrt} in {printable(r.graph)}, shape {shapes}"), ("mode", r.mode),
             ("reason", r.reason), ("passes", f"{r.passes:,}")]
    if not r.connected:  # a zero that means "no path", not a derivative that happens to vanish
        lines.append(("note", f"no path from {r.wrt} to {r.of}: {r.of} does not depend on {r.wrt}, every entry is 0"))
    return lines


def cells(r: JacobianResult, precision: int = 4) -> list[list[str]]:
    """The matrix as a 2-D table: a header row of wrt labels, then one row per element of
    `of`, led by its label (higher ranks are flattened in C order, labels show the indices)."""
    flat = r.matrix.reshape(math.prod(r.of_shape), math.prod(r.wrt_shape))
    table = [[f"d {r.of} / d {r.wrt}", *labels(r.wrt, r.wrt_shape)]]
    for name, row in zip(labels(r.of, r.of_shape), flat):
        table.append([name, *(fmt_number(float(v), precision) for v in row)])
    return table


def plain_jacobian(r: JacobianResult, precision: int = 4) -> str:
    """The summary lines, a blank line, then the matrix as aligned columns (labels to the left,
    numbers to the right), with no colour, never cut or wrapped."""
    width = max(len(k) for k, _ in summary(r))
    lines = [f"{k.ljust(width)}  {v}" for k, v in summary(r)]
    if r.matrix.size == 0:
        return "\n".join([*lines, "", "(no entries)"]) + "\n"
    table = cells(r, precision)
    widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
    lines.append("")
    for row in table:
        first = row[0].ljust(widths[0])
        lines.append("  ".join([first, *(cell.rjust(w) for cell, w in zip(row[1:], widths[1:]))]).rstrip())
    return "\n".join(lines) + "\n"


def rich_jacobian(r: JacobianResult, precision: int = 4) -> list[Any]:
    """Renderables for a terminal: the summary, then the matrix as a rich table."""
    from rich.table import Table
    from rich.text import Text

    out: list[Any] = [Text.assemble((f"{k}: ", "bold"), v) for k, v in summary(r)]
    if r.matrix.size == 0:
        return [*out, Text("(no entries)")]
    table = cells(r, precision)
    grid = Table()
    for c, head in enumerate(table[0]):
        grid.add_column(Text(head), justify="left" if c == 0 else "right")
    for row in table[1:]:
        grid.add_row(*(Text(cell) for cell in row))  # Text: names are never read as markup
    return [*out, grid]


def jacobian_json(r: JacobianResult) -> str:
    """Full float64 precision; NaN and Inf as "NaN", "Infinity", "-Infinity" (as cg run)."""
    doc = {
        "graph": r.graph, "file": r.file, "of": r.of, "wrt": r.wrt, "mode": r.mode, "passes": r.passes,
        "reason": r.reason, "connected": r.connected, "of_shape": list(r.of_shape), "wrt_shape": list(r.wrt_shape),
        "jacobian": _jsonable(r.matrix), "nonfinite": list(r.nonfinite), "nonfinite_entries": r.nonfinite_entries,
    }
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


# ---- paths -------------------------------------------------------------------------------------


def _path_text(p: Path, repeated: bool) -> str:
    # Paths through both arguments of mul(x, x) have the same names: the argument positions tell them apart.
    text = " -> ".join(p.names)
    return f"{text} (args {', '.join(map(str, p.args))})" if repeated else text


def plain_paths(report: PathReport, precision: int = 4) -> str:
    """The paths as aligned plain text, then the sum over paths and reverse mode's derivative."""
    src, dst = report.src, report.dst
    seen: dict[tuple[str, ...], int] = {}
    for p in report.paths:
        seen[p.names] = seen.get(p.names, 0) + 1
    lines = []
    if report.paths:
        plural = "path" if report.count == 1 else "paths"
        lines.append(f"{report.count} {plural} from {src} to {dst} in {printable(report.graph)}\n")
        rows = [
            (_path_text(p, seen[p.names] > 1), " * ".join(fmt_number(d, precision) for d in p.locals) or "(none)",
             fmt_number(p.product, precision))
            for p in report.paths
        ]
        lines.append(aligned([("path", "local derivatives", "product"), *rows]))
    else:
        lines.append(f"no path from {src} to {dst} in {printable(report.graph)}: {dst} does not depend on {src}\n")
    names = ("sum over paths", f"d{dst}/d{src} (reverse mode)")
    width = max(map(len, names))
    for name, v in zip(names, (report.total, report.reverse)):
        lines.append(f"{name.ljust(width)} = {fmt_number(v, precision)}\n")
    return "".join(lines)


def _number(v: float) -> Any:
    return _jsonable(np.asarray(v))


def paths_json(report: PathReport) -> str:
    """The report as JSON, at full precision (NaN and Inf as strings, as in `cg run -f json`)."""
    doc = {
        "graph": report.graph, "file": report.file, "from": report.src, "to": report.dst, "count": report.count,
        "paths": [
            {"names": list(p.names), "args": list(p.args), "locals": [_number(d) for d in p.locals],
             "product": _number(p.product)}
            for p in report.paths
        ],
        "total": _number(report.total), "reverse": _number(report.reverse),
    }
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"
