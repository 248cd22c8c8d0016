"""The edge view: local derivatives on edges and the gradients flowing back along them
(lecture notes 000 and 001: fan-out streams add up to the gradient)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import GRAPHS

import cg
from cg.eval.edges import JACOBIAN_LIMIT, Edge, compute_edges, formula_text, stream_sums
from cg.eval.interp import Result
from cg.render.reports import edges_json, plain_edges, rich_edges

# logreg.yaml has no default for its features.
INPUTS = {"logreg.yaml": {"x": 2.0, "y": 3.0}}
EXAMPLES = sorted(p.name for p in GRAPHS.glob("*.yaml"))


def _run(name: str, **options: object) -> Result:
    return cg.run(cg.load(GRAPHS / name), INPUTS.get(name), **options)


def _edge(edges: list[Edge], src: str, dst: str, arg: int | None = None) -> Edge:
    (found,) = [e for e in edges if e.src == src and e.dst == dst and arg in (None, e.arg)]
    return found


def test_log3x2p5xy_fan_out_of_x() -> None:
    edges = compute_edges(_run("log3x2p5xy.yaml"))
    out_of_x = [e for e in edges if e.src == "x"]
    assert [(e.dst, e.arg) for e in out_of_x] == [("a", 0), ("c", 0)]
    xa, xc = out_of_x
    assert xa.local == pytest.approx(4.0) and xc.local == pytest.approx(3.0)  # 2x and y
    assert xa.flow == pytest.approx(12 / 42) and xc.flow == pytest.approx(15 / 42)  # 6x/e and 5y/e
    assert f"{float(xa.flow):.4f}" == "0.2857" and f"{float(xc.flow):.4f}" == "0.3571"
    assert float(stream_sums(edges)["x"]) == pytest.approx(27 / 42)
    assert f"{float(stream_sums(edges)['x']):.4f}" == "0.6429"


def test_order_shapes_and_no_constant_edges() -> None:
    edges = compute_edges(_run("log3x2p5xy.yaml"))
    assert [(e.src, e.dst, e.arg) for e in edges] == [
        ("x", "a", 0), ("a", "b", 1), ("x", "c", 0), ("y", "c", 1),
        ("c", "d", 1), ("b", "e", 0), ("d", "e", 1), ("e", "z", 0),
    ]  # the constants 3 and 5 have no edge
    assert all(e.src_shape == () and e.dst_shape == () for e in edges)
    assert all(e.local is not None and e.local.shape == () for e in edges)
    assert _edge(edges, "e", "z").local == pytest.approx(1 / 42)


def test_mul_x_x_gives_two_edges() -> None:
    graph = cg.loads("cg: 1\ninputs: {x: 3.0}\nnodes:\n  a: {op: mul, in: [x, x]}\n  z: {op: sin, in: [a]}\n"
                     "outputs: [z]\n")
    result = cg.run(graph)
    edges = compute_edges(result)
    first, second = (e for e in edges if e.dst == "a")
    assert (first.arg, second.arg) == (0, 1)
    # Each edge's local derivative is the partial for its own argument position: the other x.
    assert first.local == pytest.approx(3.0) and second.local == pytest.approx(3.0)
    assert first.flow == pytest.approx(3.0 * math.cos(9.0)) and second.flow == pytest.approx(3.0 * math.cos(9.0))
    assert stream_sums(edges)["x"] == pytest.approx(result.grads["x"])  # 2x cos(x^2)


def test_tensor_edge_is_dense() -> None:
    result = _run("multiclass_logreg.yaml")
    edges = compute_edges(result)
    w = _edge(edges, "W", "Wx")
    assert (w.src_shape, w.dst_shape) == ((3, 4), (3,))
    assert w.local is not None and w.local.shape == (3, 3, 4) and w.local.size <= JACOBIAN_LIMIT
    x = result.values["x"]
    # d(Wx)_i / dW_jk = [i == j] x_k
    assert np.array_equal(w.local, np.einsum("ij,k->ijk", np.eye(3), x))
    assert np.array_equal(_edge(edges, "x", "Wx").local, result.values["W"])  # type: ignore[arg-type]
    assert w.flow is not None and w.flow.shape == (3, 4)
    assert np.allclose(w.flow, result.grads["W"])  # type: ignore[arg-type]
    assert "[3, 3, 4] min" in plain_edges(edges)


def test_big_edge_shows_no_dense_matrix() -> None:
    text = """\
cg: 1
inputs:
  W: {shape: [5, 4]}
  x: [1.0, 2.0, 3.0, 4.0]
nodes:
  Wx: {op: matmul, in: [W, x]}
  l: {op: sum, in: [Wx]}
outputs: [l]
"""
    result = cg.run(cg.loads(text), {"W": np.arange(20.0).reshape(5, 4)})
    edges = compute_edges(result)
    big = _edge(edges, "W", "Wx")
    assert big.local is None  # 5 x (5 x 4) = 100 entries > 64
    assert big.flow is not None and np.allclose(big.flow, np.outer(np.ones(5), [1, 2, 3, 4]))
    assert _edge(edges, "x", "Wx").local is not None  # 5 x 4 = 20 entries
    line = next(ln for ln in plain_edges(edges).splitlines() if ln.startswith("W "))
    assert "[5, 5, 4] (100 entries, over 64: not shown)" in line
    assert "[5, 4] min 1.0000, mean 2.5000, max 4.0000" in line  # the flow, summarised
    assert edges_json(edges)[0]["local"] is None


def test_integer_edge_has_no_derivative() -> None:
    edges = compute_edges(_run("multiclass_logreg.yaml"))
    y = _edge(edges, "y", "l")
    assert (y.arg, y.local, y.flow) == (1, None, None)
    assert "y" not in stream_sums(edges)
    row = plain_edges(edges).splitlines()[-1].split()
    assert row == ["y", "l", "1", "-", "-", "-"]  # no formula, local derivative or flow


@pytest.mark.parametrize("name", EXAMPLES)
def test_stream_sums_are_the_gradients(name: str) -> None:
    result = _run(name)
    sums = stream_sums(compute_edges(result))
    for node, grad in result.grads.items():
        if grad is None:
            assert node not in sums
            continue
        # The output's gradient also holds the seed 1 that starts the backward pass.
        expected = grad - 1.0 if node == result.of else grad
        assert np.allclose(sums.get(node, np.zeros_like(grad)), expected, rtol=1e-12, atol=1e-15), node


@pytest.mark.parametrize("name", EXAMPLES)
def test_local_jacobians_match_finite_differences(name: str) -> None:
    result = _run(name)
    graph = result.graph
    for e in compute_edges(result):
        if e.local is None:
            continue
        node = graph.node(e.dst)
        assert node is not None
        xs = [result.values[a] if isinstance(a, str) else a.value for a in node.args]
        for j in np.ndindex(*e.src_shape):
            h = 1e-6 * (abs(float(xs[e.arg][j])) or 1.0)  # relative: log(p) at p ~ 2e-5 needs a tiny step
            up, down = [x.copy() for x in xs], [x.copy() for x in xs]
            up[e.arg][j] += h
            down[e.arg][j] -= h
            column = (node.op.forward(*up, **node.attrs) - node.op.forward(*down, **node.attrs)) / (2 * h)
            entry = (..., *j)  # a name: mypy reads x[(..., *j)] as 3.11's x[..., *j]
            assert np.allclose(e.local[entry], column, rtol=1e-5, atol=1e-6), (e.src, e.dst, j)


def test_forward_mode_has_locals_but_no_flows() -> None:
    edges = compute_edges(_run("log3x2p5xy.yaml", tangents={"x": 1.0}))
    assert all(e.flow is None for e in edges) and all(e.local is not None for e in edges)
    assert stream_sums(edges) == {}
    assert edges_json(edges)[0]["flow"] is None


def test_nodes_off_the_path_send_nothing_back() -> None:
    result = _run("binary_logreg.yaml")  # outputs [l, nll]; nll is not on the path to l
    nll = _edge(compute_edges(result), "l", "nll")
    assert nll.local == pytest.approx(-1.0) and nll.flow == pytest.approx(0.0)


def test_edges_json_full_precision_and_nonfinite() -> None:
    edges = compute_edges(_run("log3x2p5xy.yaml"))
    doc = json.loads(json.dumps(edges_json(edges), allow_nan=False))
    assert doc[0] == {"from": "x", "to": "a", "arg": 0, "from_shape": [], "to_shape": [], "formula": "2x",
                      "formula_latex": "2 x", "formula_kind": "local", "local": 4.0,
                      "flow": pytest.approx(12 / 42, rel=1e-15)}
    assert doc[-1]["local"] == 1 / 42 and (doc[-1]["formula"], doc[-1]["formula_latex"]) == ("1/e", r"\frac{1}{e}")
    graph = cg.loads("cg: 1\ninputs: {x: 0.0}\nnodes:\n  a: {op: log, in: [x]}\n  z: {op: mul, in: [2, a]}\n"
                     "outputs: [z]\n")
    bad = edges_json(compute_edges(cg.run(graph, on_nonfinite="keep")))
    assert bad[0]["local"] == "Infinity" and bad[0]["flow"] == "Infinity"
    json.dumps(bad, allow_nan=False)  # strict JSON


def test_plain_and_rich_tables() -> None:
    edges = compute_edges(_run("log3x2p5xy.yaml"))
    lines = plain_edges(edges).splitlines()
    assert lines[0].split() == ["from", "to", "arg", "formula", "local", "flow"]
    # The local derivatives as the notes write them (000): da/dx = 2x, dc/dx = y, dz/de = 1/e.
    assert lines[1].split() == ["x", "a", "0", "2x", "=", "4.0000", "4.0000", "0.2857"]
    assert lines[3].split() == ["x", "c", "0", "y", "=", "3.0000", "3.0000", "0.3571"]
    assert lines[8].split() == ["e", "z", "0", "1/e", "=", "0.0238", "0.0238", "0.0238"]
    assert "\x1b" not in plain_edges(edges)
    assert plain_edges(edges, precision=2).splitlines()[1].split()[-1] == "0.29"

    from rich.console import Console

    console = Console(record=True, width=100, color_system=None)
    console.print(rich_edges(edges))
    shown = console.export_text()
    assert "0.2857" in shown and "0.3571" in shown and sum(line.startswith("│ x ") for line in shown.splitlines()) == 2
    assert "2x = 4.0000" in shown and "1/e = 0.0238" in shown


def test_no_recursion_on_a_long_chain(tmp_path: Path) -> None:
    n = 3000  # deeper than Python's default recursion limit
    body = "".join(f"  n{i}: {{op: sin, in: [{'x' if i == 0 else f'n{i - 1}'}]}}\n" for i in range(n))
    graph = cg.loads(f"cg: 1\ninputs: {{x: 0.5}}\nnodes:\n{body}outputs: [n{n - 1}]\n")
    result = cg.run(graph)
    edges = compute_edges(result)
    assert len(edges) == n
    assert stream_sums(edges)["x"] == pytest.approx(result.grads["x"])


def test_tensor_edges_show_the_formula_in_the_nodes_names() -> None:
    edges = compute_edges(_run("multiclass_logreg.yaml"))
    by_op = {(e.formula.kind if e.formula else None, e.formula_value) for e in edges}
    assert ("vjp", None) in by_op  # a VJP formula (in terms of g) has no value of its own: the flow is it
    lines = plain_edges(edges)
    assert "g" in lines and "-" in lines
    for e in edges:
        if e.formula is not None and e.src_shape == e.dst_shape == ():
            assert e.formula_value is None or e.formula_value == pytest.approx(float(e.local))


def test_a_division_by_a_zero_constant_shows_inf_not_an_error() -> None:
    graph = cg.loads("cg: 1\ninputs: {x: 1.0}\nnodes:\n  z: {op: div, in: [x, 0.0]}\noutputs: [z]\n")
    (e,) = compute_edges(cg.run(graph, on_nonfinite="keep"))
    assert e.formula is not None and e.formula_value == math.inf and "1/0 = inf" in plain_edges([e])


def test_formula_names_are_escaped_in_latex() -> None:
    graph = cg.loads("cg: 1\ninputs: {w_1: 2.0}\nnodes:\n  hidden: {op: log, in: [w_1]}\n"
                     "  z: {op: square, in: [hidden]}\noutputs: [z]\n")
    edges = compute_edges(cg.run(graph))
    doc = edges_json(edges)
    assert (doc[0]["formula"], doc[0]["formula_latex"]) == ("1/w_1", r"\frac{1}{\mathrm{w\_1}}")
    assert (doc[1]["formula"], doc[1]["formula_latex"]) == ("2·hidden", r"2 \mathrm{hidden}")
    assert "2·hidden = 1.3863" in plain_edges(edges)


def test_a_name_from_inside_a_function_is_bracketed_in_a_formula() -> None:
    edges = compute_edges(_run("mlp.yaml"))
    assert formula_text(_edge(edges, "loss/q", "loss/log_q")) == "1/(loss/q)"
    assert formula_text(_edge(edges, "loss/log_p", "loss/t1")) == "y"
    assert formula_text(_edge(edges, "y", "loss/t1")) == "loss/log_p"  # alone: no brackets needed
