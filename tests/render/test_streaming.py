"""Big results. `cg run -f json`, `-f csv` and `--edges -f json` written in pieces
(cg.render.table.iter_json, cg.render.export.iter_csv): byte for byte the text of one json.dumps /
csv.writer over the whole document, and the memory of a piece, not of the whole text, however
big the result. And the terminal's tables of 100,000 rows: the first and last rows only."""

from __future__ import annotations

import csv
import io
import json
import math
import tracemalloc
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from conftest import GRAPHS

import cg
from cg.eval.edges import compute_edges, edge_objects
from cg.eval.interp import Result
from cg.graph.composite import expanded, shown_nodes
from cg.render import export
from cg.render import table as render
from cg.render.export import csv_rows, iter_csv, to_csv
from cg.render.reports import edges_json
from cg.render.table import iter_json, to_json

SHAPES = """cg: 1
inputs:
  s: 2.0
  e: {shape: [0]}
  e2: {shape: [2, 0]}
  e3: {shape: [0, 3]}
  v: [1.0, -2.0, 0.5]
  m: {shape: [2, 3, 4]}
  k: {dtype: int, value: [3, 1, 2]}
nodes:
  t: {op: transpose, in: [m]}
  l: {op: log, in: [t]}
  d: {op: div, in: [1, v]}
  w: {op: mul, in: [d, [[1.0], [2.0]], s]}
  q: {op: sum, in: [l]}
  es: {op: sum, in: [e]}
  r: {op: add, in: [q, w, es]}
  z: {op: sum, in: [r]}
outputs: [z]
"""


def _values() -> dict[str, Any]:
    m = np.linspace(-3, 3, 24).reshape(2, 3, 4)  # negative entries: log gives NaN
    return {"e": np.zeros(0), "e2": np.zeros((2, 0)), "e3": np.zeros((0, 3)), "m": m,
            "v": np.array([1.0, 0.0, -0.5])}  # 1 / 0: inf


# ---- the document as json.dumps writes it whole (cg.render.table.to_json before it streamed) -------------------


def _jsonable(v: np.ndarray | None) -> Any:
    if v is None:
        return None
    out = v.tolist()
    return _strings(out) if v.dtype.kind == "f" else out


def _strings(x: Any) -> Any:
    if isinstance(x, list):
        return [_strings(e) for e in x]
    if isinstance(x, float) and not math.isfinite(x):
        return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")
    return x


def whole_json(result: Result, edges: list[dict[str, Any]] | None = None) -> str:
    g = result.graph
    entries: list[tuple[str, str, list[Any]]] = [(i.name, "input", []) for i in g.inputs]
    entries += [(n.id, n.op.name, [a if isinstance(a, str) else _jsonable(a.value) for a in n.args])
                for n in shown_nodes(g)]
    nodes = []
    for name, op, args in entries:
        entry = {"id": name, "op": op, "in": args, "shape": list(result.values[name].shape),
                 "value": _jsonable(result.values[name]), "grad": _jsonable(result.grads.get(name)),
                 "on_path": name in result.on_path}
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


def whole_csv(result: Result) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(csv_rows(result))
    return out.getvalue()


def _results() -> Iterator[tuple[str, Result]]:
    shapes = cg.loads(SHAPES, "shapes.yaml")
    yield "shapes", cg.run(shapes, _values(), on_nonfinite="keep")
    yield "shapes-float32", cg.run(shapes, _values(), on_nonfinite="keep", dtype="float32")
    yield "forward", cg.run(shapes, _values(), on_nonfinite="keep", tangents={"s": 1.0})
    for path in sorted(GRAPHS.glob("*.yaml")):
        if path.name in ("mlp.yaml", "log3x2p5xy.yaml", "multiclass_loss.yaml", "staged.yaml"):
            result = cg.run(cg.load(path))
            yield path.stem, result
            yield path.stem + "-expanded", Result(**{**result.__dict__, "graph": expanded(result.graph)})


RESULTS = dict(_results())


@pytest.fixture(params=[None, 5, 1], ids=["chunk-default", "chunk-5", "chunk-1"])
def chunk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Small pieces too, so that every way of cutting a tensor is compared."""
    size = request.param or render.CHUNK
    monkeypatch.setattr(render, "CHUNK", size)
    monkeypatch.setattr(export, "CHUNK", size)
    return int(size)


@pytest.mark.parametrize("name", RESULTS)
def test_json_is_byte_for_byte_the_whole_document(name: str, chunk: int) -> None:
    result = RESULTS[name]
    expected = whole_json(result)
    assert to_json(result) == expected
    pieces = list(iter_json(result))
    assert "".join(pieces) == expected
    json.loads(expected)  # strict JSON


@pytest.mark.parametrize("name", RESULTS)
def test_edges_json_is_byte_for_byte(name: str, chunk: int) -> None:
    result = RESULTS[name]
    if result.tangents is not None:
        pytest.skip("edges carry flows in reverse mode")
    edges = compute_edges(result)
    expected = whole_json(result, edges_json(edges))
    assert "".join(iter_json(result, edge_objects(edges))) == expected
    assert to_json(result, edges_json(edges)) == expected


@pytest.mark.parametrize("name", RESULTS)
def test_csv_is_byte_for_byte_what_the_csv_module_writes(name: str, chunk: int) -> None:
    result = RESULTS[name]
    expected = whole_csv(result)
    assert to_csv(result) == expected == "".join(iter_csv(result))


def test_the_shapes_example_has_what_it_promises() -> None:
    doc = json.loads(to_json(RESULTS["shapes"]))
    by_id = {n["id"]: n for n in doc["nodes"]}
    assert by_id["s"]["value"] == 2.0 and by_id["e"]["value"] == [] and by_id["e2"]["value"] == [[], []]
    assert by_id["k"]["value"] == [3, 1, 2] and by_id["k"]["grad"] is None
    assert by_id["t"]["shape"] == [4, 3, 2] and "NaN" in json.dumps(by_id["l"]["value"])
    assert "Infinity" in json.dumps(by_id["d"]["value"])
    assert "tangent" in json.loads(to_json(RESULTS["forward"]))["nodes"][0]


# ---- memory -------------------------------------------------------------------------------------------


def _peak(pieces: Iterator[str]) -> tuple[int, int, int]:
    """(tracemalloc peak, total length, longest piece) of consuming the pieces one by one."""
    total = longest = 0
    tracemalloc.start()
    try:
        for piece in pieces:
            total += len(piece)
            longest = max(longest, len(piece))
        return tracemalloc.get_traced_memory()[1], total, longest
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def big() -> Result:
    n = 60_000
    graph = cg.loads(f"cg: 1\ninputs: {{x: {{shape: [{n // 400}, 400]}}}}\nnodes:\n  y: {{op: mul, in: [x, 0.5]}}\n"
                     "  s: {op: sum, in: [y]}\noutputs: [s]\n")
    return cg.run(graph, {"x": np.arange(n, dtype=np.float64).reshape(-1, 400) * 0.25})


@pytest.mark.parametrize("fmt", ["json", "csv", "edges"])
def test_memory_is_a_piece_not_the_text(big: Result, fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "CHUNK", 1024)
    monkeypatch.setattr(export, "CHUNK", 1024)
    if fmt == "edges":
        edges = edge_objects(compute_edges(big))
        pieces = iter_json(big, edges)
    else:
        pieces = iter_json(big) if fmt == "json" else iter_csv(big)
    peak, total, longest = _peak(pieces)
    assert total > 3_000_000  # 240,000 numbers: the values and gradients of x and y
    assert longest < 100_000  # 1024 numbers (or CSV lines) a piece
    assert peak < min(1_000_000, total // 4), f"{fmt}: peak {peak:,} bytes for {total:,} characters of text"


# ---- the terminal's table of a huge result --------------------------------------------------------------


def _chain(n: int) -> Result:
    nodes = {"n0": {"op": "sin", "in": ["x"]}} | {f"n{i}": {"op": "sin", "in": [f"n{i - 1}"]} for i in range(1, n)}
    return cg.run(cg.loads(json.dumps({"cg": 1, "name": "chain", "inputs": {"x": 0.5}, "nodes": nodes,
                                       "outputs": [f"n{n - 1}"]})))


@pytest.fixture(scope="module")
def chain() -> Result:
    return _chain(20_000)


def test_plain_table_shows_the_first_and_last_rows(chain: Result) -> None:
    every = render.plain_table(chain).splitlines()
    assert len(every) == 20_002  # the header, x and 20,000 nodes
    short = render.plain_table(chain, max_rows=10).splitlines()
    assert len(short) == 12
    assert short[6] == "\u2026 19,991 rows not shown: pipe the output or use -f csv / -f json / -o FILE for all of them"
    cells = [line.split() for line in every]
    assert [line.split() for line in short[:6] + short[7:]] == cells[:6] + cells[-5:]
    few = _chain(3)
    assert render.plain_table(few, max_rows=4) == render.plain_table(few)  # within the limit: all of it


def test_only_the_rows_shown_are_formatted(chain: Result, monkeypatch: pytest.MonkeyPatch) -> None:
    made = []
    row = render._row
    monkeypatch.setattr(render, "_row", lambda *a: made.append(a[1]) or row(*a))
    shown = render.summary_rows(chain, 4, render.TERMINAL_ROWS)
    assert len(made) == render.TERMINAL_ROWS and shown.hidden == 20_001 - render.TERMINAL_ROWS
    assert shown.head[0][0] == "x" and shown.tail[-1][0] == "n19999"


def test_rich_table_of_a_huge_result(chain: Result) -> None:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(render.rich_table(chain, 4, max_rows=render.TERMINAL_ROWS))
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert render.TERMINAL_ROWS < len(lines) < render.TERMINAL_ROWS + 12
    data = [line.split()[1] for line in lines if line.startswith("\u2502")]  # the id column
    assert data[:2] == ["x", "n0"] and data[-2:] == ["n19998", "n19999"] and "\u2026" in data
    assert len(data) == render.TERMINAL_ROWS + 1
    assert "19,801 rows not shown" in " ".join(lines)


def test_edges_tables_of_a_huge_result(chain: Result) -> None:
    from cg.render.reports import fan_out_lines, plain_edges

    edges = compute_edges(_chain(200))
    text = plain_edges(edges, max_rows=4).splitlines()
    assert len(text) == 6 and text[3].startswith("\u2026 196 rows not shown") and "-f json" in text[3]
    assert text[-1].split()[:2] == ["n198", "n199"]
    fan = cg.run(cg.loads("cg: 1\ninputs: {x: 2.0}\nnodes: {a: {op: mul, in: [x, x]}, b: {op: add, in: [a, x]}}\n"
                          "outputs: [b]\n"))
    assert fan_out_lines(compute_edges(fan)) == ["x: 2.0000 + 2.0000 + 1.0000 = 5.0000"]
