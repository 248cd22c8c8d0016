"""`cg grad`: the backward pass as a graph file (cg/eval/gradgraph.py). Run, it gives exactly the
gradients cg gives on the original: every example graph, and every op case of the registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import GRAPHS, cg

import cg as cglib
from cg.check.fd import sample
from cg.eval.gradgraph import grad_document, grad_graph, hessian
from cg.ops import REGISTRY, Case, Op

EXAMPLES = [p.name for p in sorted(GRAPHS.glob("*.yaml")) if "\noutputs:" in p.read_text(encoding="utf-8")]


def point(graph: cglib.Graph) -> dict[str, np.ndarray]:  # type: ignore[name-defined]
    from cg.check.gradients import draw_inputs

    given = dict(graph.expect.inputs) if graph.expect else {}
    return draw_inputs(graph, given, np.random.default_rng(0))[0]


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_gradient_graph_gives_cgs_gradients(name: str) -> None:
    graph = cglib.load(GRAPHS / name)
    given = point(graph)
    want = cglib.run(graph, given)
    grads = grad_graph(graph)
    got = cglib.run(grads, {k: v for k, v in given.items() if grads.input(k) is not None}, seed=None)
    wrt = [i.name for i in graph.inputs if i.aval.dtype == "float"]
    assert got.values[grads.outputs[0]] == pytest.approx(want.values[graph.outputs[0]], rel=1e-12)
    for name_, out in zip(wrt, grads.outputs[1:]):
        np.testing.assert_allclose(got.values[out], want.grads[name_], rtol=1e-12, atol=1e-15, err_msg=name_)


CASES = [pytest.param(op, case, id=f"{op.name}-{'x'.join(str(list(s)) for s in case.shapes)}-{case.attrs or ''}")
         for op in REGISTRY.values() for case in op.cases]


@pytest.mark.parametrize(("op", "case"), CASES)
def test_every_op_case(op: Op, case: Case) -> None:
    """z = sum(c * op(x...)) with a random constant c: dz/dx is the VJP of op with g = c."""
    rng = np.random.default_rng(0)
    xs = sample(op, case.shapes, rng, case.attrs)
    attrs = {k: a.default for k, a in op.attrs.items()} | case.attrs
    y = op.forward(*xs, **attrs)
    c = rng.standard_normal(np.shape(y))
    inputs = {f"x{k}": {"value": np.asarray(x).tolist(), **({"dtype": "int"} if np.asarray(x).dtype.kind in "iu"
                                                             else {})} for k, x in enumerate(xs)}
    doc = {"cg": 1, "inputs": inputs, "nodes": {"y": {"op": op.name, "in": list(inputs), **case.attrs},
                                                "w": {"op": "mul", "in": ["y", c.tolist()]},
                                                "z": {"op": "sum", "in": ["w"]}}, "outputs": ["z"]}
    graph = cglib.loads(json.dumps(doc), f"{op.name}.json")
    want = cglib.run(graph)
    grads = grad_graph(graph)
    got = cglib.run(grads)
    floats = [i.name for i in graph.inputs if i.aval.dtype == "float"]
    for name_, out in zip(floats, grads.outputs[1:]):
        np.testing.assert_allclose(got.values[out], want.grads[name_], rtol=1e-12, atol=1e-14, err_msg=name_)


def test_the_textbook_backward_pass_reads_like_the_notes(tmp_path: Path) -> None:
    r = cg("grad", "graphs/log3x2p5xy.yaml", "-o", str(tmp_path / "g.yaml"))
    assert r.code == 0, r.err
    text = (tmp_path / "g.yaml").read_text(encoding="utf-8")
    assert "dz_e: {op: div, in: [1, e], doc: dz/de = dz/dz * 1/e  (log)}" in text
    assert "da_dx: {op: mul, in: [2, x], doc: da/dx = 2x  (square)}" in text
    assert "dz_x: {op: add, in: [dz_x_from_c, dz_x_from_a]" in text and "outputs: [z, dz_x, dz_y]" in text
    r = cg("run", str(tmp_path / "g.yaml"), "--inputs", "x=2,y=3", "-f", "json")
    values = {row["id"]: row["value"] for row in r.json()["nodes"]}
    assert round(values["dz_x"], 4) == 0.6429 and round(values["dz_y"], 4) == 0.2381


def test_wrt_of_and_refusals() -> None:
    graph = cglib.load(GRAPHS / "log3x2p5xy.yaml")
    doc = grad_document(graph, of="c", wrt=["y"])
    assert doc["outputs"] == ["c", "dc_y"]
    assert not any(k.startswith("dc_e") for k in doc["nodes"])  # only what lies between y and c
    r = cg("grad", "graphs/log3x2p5xy.yaml", "--wrt", "q")
    assert r.code == 2 and "--wrt q: not a float input" in r.err
    r = cg("grad", "graphs/multiclass_loss.yaml", "--of", "logits")
    assert r.code == 2 and "differentiates a scalar" in r.err


def hand_hessian_textbook(x: float, y: float) -> np.ndarray:
    """z = log(3x² + 5xy): by hand, with e = 3x² + 5xy, z_x = (6x + 5y)/e, z_y = 5x/e."""
    e = 3 * x * x + 5 * x * y
    ex, ey = 6 * x + 5 * y, 5 * x
    return np.array([[(6 * e - ex * ex) / e**2, (5 * e - ex * ey) / e**2],
                     [(5 * e - ey * ex) / e**2, -ey * ey / e**2]])


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_the_hessian_of_the_textbook_graph(mode: str) -> None:
    graph = cglib.load(GRAPHS / "log3x2p5xy.yaml")
    hand = hand_hessian_textbook(2.0, 3.0)
    for j, wrt in enumerate(("x", "y")):
        row = hessian(graph, {"x": 2.0, "y": 3.0}, wrt=wrt, mode=mode).matrix
        np.testing.assert_allclose(row, hand[j, j], rtol=1e-12)


def sig(z: float) -> float:
    return 1 / (1 + np.exp(-z))


def hand_hessians() -> list[tuple[str, str, dict[str, np.ndarray], np.ndarray]]:
    """(graph, wrt, inputs, d²/dwrt² derived by hand) for five small graphs."""
    out = [("log3x2p5xy.yaml", "x", {"x": 2.0, "y": 3.0}, hand_hessian_textbook(2.0, 3.0)[0, 0])]
    out.append(("square3x.yaml", "x", {}, np.asarray(18.0)))  # f = 9x²
    out.append(("sincos.yaml", "x", {}, np.asarray(-2 * np.sin(4.0))))  # f = sin(2x)/2 at x = 2
    w, x, b = np.array([0.4, -0.6, 0.2]), np.array([1.0, 0.5, -2.0]), 0.5
    s = sig(w @ x + b)
    out.append(("binary_logreg.yaml", "w", {}, -s * (1 - s) * np.outer(x, x)))  # l = y log s + (1 - y) log(1 - s)
    logits = np.array([8.35, 3.15, -2.5])
    p = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    out.append(("multiclass_loss.yaml", "b", {}, np.diag(p) - np.outer(p, p)))  # softmax cross-entropy
    return out


@pytest.mark.parametrize(("name", "wrt", "given", "hand"), hand_hessians(), ids=lambda v: v if isinstance(v, str)
                         else None)
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_hessians_match_a_hand_derivation_and_differences(name: str, wrt: str, given: dict[str, np.ndarray],
                                                          hand: np.ndarray, mode: str) -> None:
    graph = cglib.load(GRAPHS / name)
    found = hessian(graph, given, wrt=wrt, mode=mode).matrix
    np.testing.assert_allclose(found, hand, rtol=1e-9, atol=1e-12)
    report = cglib.check(graph, given, order=2)  # H·v against differences of the gradients
    assert report.passed and any(r.name.endswith("(H·v)") for r in report.rows), str(report)


@pytest.mark.parametrize("name", EXAMPLES)
def test_compiling_the_gradient_graph_gives_the_backward_code(name: str) -> None:
    """`cg compile` of the gradient graph: straight-line code whose forward() computes what the
    original module's backward() does."""
    from cg.compile.module import compile_module

    graph = cglib.load(GRAPHS / name)
    given = point(graph)
    original = compile_module(graph)
    values = original.forward(**given)
    want = original.backward(values)
    grads = grad_graph(graph)
    module = compile_module(grads, name=f"{graph.name}_grad")
    got = module.forward(**{k: v for k, v in given.items() if grads.input(k) is not None})
    floats = [i.name for i in graph.inputs if i.aval.dtype == "float"]
    for name_, out in zip(floats, grads.outputs[1:]):
        np.testing.assert_allclose(getattr(got, out), getattr(want, name_), rtol=1e-12, atol=1e-15, err_msg=name_)
