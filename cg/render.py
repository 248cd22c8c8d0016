"""Renderers of a run result: a table (rich on a terminal, plain text otherwise) and JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from cg.composite import shown_nodes
from cg.graph import Const
from cg.interp import Result

COLUMNS = ("id", "op", "in", "shape", "value", "grad")
SMALL = 6  # tensors with at most this many entries are shown in full in the table


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
    text = fmt_value(derivative(result, name), precision)
    if name in result.on_path or derivative(result, name) is None:
        return text
    # A zero that means "no path", not a derivative that happens to vanish.
    if result.tangents is not None:
        return f"{text} (no path from {', '.join(result.wrt)})"
    return f"{text} (no path to {result.of})" if result.of else text


def rows(result: Result, precision: int = 4) -> Iterator[tuple[str, ...]]:
    """One row per input and node, in topological order; a composite is one row (its function as
    the op, its value and gradient at its boundary) unless the graph is shown expanded."""
    g = result.graph
    for inp in g.inputs:
        yield (inp.name, "input", "", str(list(result.values[inp.name].shape)),
               fmt_value(result.values[inp.name], precision), _derivative_text(result, inp.name, precision))
    for node in shown_nodes(g):
        ins = ", ".join(arg_text(a) for a in node.args)
        yield (node.id, node.op.name, ins, str(list(result.values[node.id].shape)),
               fmt_value(result.values[node.id], precision), _derivative_text(result, node.id, precision))


def _columns(result: Result) -> tuple[str, ...]:
    return (*COLUMNS[:-1], derivative_column(result))


def plain_table(result: Result, precision: int = 4) -> str:
    """Aligned columns with no colour and no box characters, for pipes and files; cells are
    never cut."""
    return aligned([_columns(result), *rows(result, precision)])


def aligned(table: list[tuple[str, ...]]) -> str:
    """Rows of cells as left-aligned plain-text columns (the first row is the header)."""
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in table]
    return "\n".join(lines) + "\n"


def rich_table(result: Result, precision: int = 4) -> Any:
    from rich.table import Table
    from rich.text import Text

    if result.tangents is not None:
        what = f"forward mode, d node / d {', '.join(result.wrt)}"
    else:
        what = f"d {result.of} / d node" if result.of else "no gradient"
    title = Text(f"{result.graph.name}: value and derivative ({what})")
    table = Table(title=title, title_justify="left")
    for col in _columns(result):
        table.add_column(col, justify="right" if col in ("value", "grad", "tangent") else "left", overflow="fold")
    for row in rows(result, precision):
        # Text cells: user text is never read as rich markup.
        table.add_row(*(Text(cell) for cell in row))
    return table


def _jsonable(v: np.ndarray | None) -> Any:
    """Nested lists at full precision; NaN and Inf become the strings "NaN", "Infinity",
    "-Infinity", since strict JSON has no such numbers."""
    if v is None:
        return None
    out = v.tolist()
    if v.dtype.kind == "f" and not np.all(np.isfinite(v)):
        out = _strings(out)
    return out


def _strings(x: Any) -> Any:
    if isinstance(x, list):
        return [_strings(e) for e in x]
    if isinstance(x, float) and not math.isfinite(x):
        return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")
    return x


def to_json(result: Result, edges: list[dict[str, Any]] | None = None) -> str:
    g = result.graph
    entries: list[tuple[str, str, list[Any], list[int]]] = [
        (i.name, "input", [], list(result.values[i.name].shape)) for i in g.inputs
    ]
    entries += [
        (n.id, n.op.name, [a if isinstance(a, str) else _jsonable(a.value) for a in n.args],
         list(result.values[n.id].shape))
        for n in shown_nodes(g)
    ]
    nodes: list[dict[str, Any]] = []
    for name, op, args, shape in entries:
        entry = {"id": name, "op": op, "in": args, "shape": shape, "value": _jsonable(result.values[name]),
                 "grad": _jsonable(result.grads.get(name)), "on_path": name in result.on_path}
        if result.tangents is not None:
            entry["tangent"] = _jsonable(result.tangents.get(name))
        nodes.append(entry)
    doc: dict[str, Any] = {
        "graph": g.name, "file": g.file, "mode": "forward" if result.tangents is not None else "reverse",
        "of": result.of, "wrt": list(result.wrt), "outputs": list(g.outputs), "nodes": nodes,
        "nonfinite": list(result.nonfinite),
    }
    if edges is not None:
        doc["edges"] = edges
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"
