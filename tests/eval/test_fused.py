"""index(log_softmax(x), i) differentiated as one step (Op.fuses, cg/eval/plan.py): the same numbers as
the two VJPs one after the other, in float64 and float32, in the plain and the lean passes; used
only where it is exact (the log-softmax used once, its gradient not asked for, along the last axis)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import pytest

import cg
from cg.errors import NumericError
from cg.eval import lean as lean_module
from cg.eval.grad import value_and_grad
from cg.ops import REGISTRY, installed

INDEX_CASES = [case.shapes for case in REGISTRY["index"].cases]


def graph_for(v: tuple[int, ...], i: tuple[int, ...], *, extra: dict[str, Any] | None = None,
              axis: int = -1) -> tuple[cg.Graph, dict[str, np.ndarray]]:
    """z = sum(c * index(log_softmax(1 * x), i)), x and i drawn (i with negative entries too)."""
    rng = np.random.default_rng(0)
    x = 3 * rng.standard_normal(v)
    idx = rng.integers(-v[-1], v[-1], size=i)
    c = rng.standard_normal(v[:-1]) if i != () or len(v) > 1 else 0.7
    nodes: dict[str, Any] = {
        "u": {"op": "mul", "in": ["x", 1.0]},
        "lp": {"op": "log_softmax", "in": ["u"], "axis": axis},
        "y": {"op": "index", "in": ["lp", "i"]},
        "w": {"op": "mul", "in": ["y", np.asarray(c).tolist()]},
        "z": {"op": "sum", "in": ["w"]},
    }
    nodes |= extra or {}
    doc = {"cg": 1, "inputs": {"x": {"shape": list(v)}, "i": {"shape": list(i), "dtype": "int"}},
           "nodes": nodes, "outputs": [list(nodes)[-1]]}
    return cg.loads(json.dumps(doc), "fused.json"), {"x": x, "i": idx}


def fused(f: Any) -> bool:
    return bool(f.steps.fused)


@pytest.mark.parametrize("lean_limit", [None, 1], ids=["plain", "lean"])
@pytest.mark.parametrize(("v", "i"), INDEX_CASES, ids=[f"{list(v)}-{list(i)}" for v, i in INDEX_CASES])
def test_same_numbers_as_the_two_vjps(v: tuple[int, ...], i: tuple[int, ...], lean_limit: int | None,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    if lean_limit is not None:  # every array tracked: the fused step's reads must keep lp alive
        monkeypatch.setattr(lean_module, "LIMIT", lean_limit)
    graph, given = graph_for(v, i)
    f = value_and_grad(graph, wrt=["x", "u"])
    assert fused(f) and (f.lean is not None) == (lean_limit is not None)
    want = cg.run(graph, given)  # cg.run reports every gradient: the two VJPs
    for _ in range(2):
        out, grads = f(given)
        assert out == pytest.approx(want.values["z"], rel=1e-13)
        for name in ("x", "u"):
            np.testing.assert_allclose(grads[name], want.grads[name], rtol=1e-13, atol=1e-15, err_msg=name)


def test_one_step_fewer() -> None:
    graph, _ = graph_for((3, 5), (3,))
    plan = value_and_grad(graph, wrt=["x"]).plan
    with_lp = plan.backward_plan("z", frozenset({"x", "lp"}), fuse=True)
    without = plan.backward_plan("z", frozenset({"x"}), fuse=True)
    assert not with_lp.fused and without.fused == {plan.index["y"]}
    assert len(without.steps) == len(with_lp.steps) - 1
    assert "lp" not in without.names
    # only when asked: the Jacobian's strict passes name the node that sent a NaN, from every gradient
    assert not plan.backward_plan("z", frozenset({"x"})).fused


@pytest.mark.parametrize(("v", "i"), INDEX_CASES, ids=[f"{list(v)}-{list(i)}" for v, i in INDEX_CASES])
def test_neither_vjp_is_called(v: tuple[int, ...], i: tuple[int, ...]) -> None:
    def boom(g: Any, y: Any, xs: Any, **kw: Any) -> Any:
        raise AssertionError("an unfused VJP ran")

    ops = (dataclasses.replace(REGISTRY["index"], vjp=boom), dataclasses.replace(REGISTRY["log_softmax"], vjp=boom))
    graph, given = graph_for(v, i)
    want = value_and_grad(graph, wrt=["x"])(given)
    with installed(*ops):
        g2, _ = graph_for(v, i)
        out, grads = value_and_grad(g2, wrt=["x"])(given)
        with pytest.raises(AssertionError, match="unfused"):
            value_and_grad(g2, wrt=["x", "lp"])(given)
    assert out == want[0]
    np.testing.assert_array_equal(grads["x"], want[1]["x"])


@pytest.mark.parametrize(("v", "i"), INDEX_CASES, ids=[f"{list(v)}-{list(i)}" for v, i in INDEX_CASES])
def test_float32_stays_float32(v: tuple[int, ...], i: tuple[int, ...]) -> None:
    graph, given = graph_for(v, i)
    f32 = value_and_grad(graph, wrt=["x"], dtype="float32")
    assert fused(f32)
    out, grads = f32({"x": given["x"].astype(np.float32), "i": given["i"]})
    assert np.asarray(out).dtype == np.float32 and grads["x"].dtype == np.float32
    want = value_and_grad(graph, wrt=["x"])(given)
    np.testing.assert_allclose(grads["x"], want[1]["x"], rtol=1e-4, atol=1e-5)


def test_skipped_where_inexact() -> None:
    # lp used twice: its gradient has another contribution
    more = {"s": {"op": "sum", "in": ["lp"]}, "t": {"op": "add", "in": ["z", "s"]}}
    twice, given = graph_for((3, 5), (3,), extra=more)
    f = value_and_grad(twice, wrt=["x"])
    assert not fused(f)
    want = cg.run(twice, given)
    np.testing.assert_allclose(f(given)[1]["x"], want.grads["x"], rtol=1e-13, atol=1e-15)
    # lp's gradient asked for: given, equal to cg.run's
    graph, given = graph_for((3, 5), (3,))
    f = value_and_grad(graph, wrt=["x", "lp"])
    assert not fused(f)
    want = cg.run(graph, given)
    for name in ("x", "lp"):
        np.testing.assert_allclose(f(given)[1][name], want.grads[name], rtol=1e-13, atol=1e-15)
    # a log-softmax along another axis than the one index picks in
    other, given = graph_for((3, 5), (3,), axis=0)
    f = value_and_grad(other, wrt=["x"])
    assert not fused(f)
    np.testing.assert_allclose(f(given)[1]["x"], cg.run(other, given).grads["x"], rtol=1e-13, atol=1e-15)
    # cg.run reports every gradient: its plan never fuses
    assert not graph._plans["float64"].backward_plan("z").fused  # type: ignore[attr-defined]


def test_errors_unchanged() -> None:
    graph, given = graph_for((4,), ())
    f = value_and_grad(graph, wrt=["x"])
    assert fused(f)
    with pytest.raises(NumericError) as fused_error:
        f({"x": given["x"], "i": np.array(9)})
    with pytest.raises(NumericError) as plain_error:
        value_and_grad(graph, wrt=["x", "lp"])({"x": given["x"], "i": np.array(9)})
    assert str(fused_error.value) == str(plain_error.value)
    inf = {"x": np.array([np.inf, 0.0, 1.0, 2.0]), "i": np.array(1)}  # NaN, as before, with numpy's warnings
    with np.errstate(invalid="ignore"):
        out, grads = f(inf)
        out2, grads2 = value_and_grad(graph, wrt=["x", "lp"])(inf)
    np.testing.assert_array_equal(out, out2)
    np.testing.assert_array_equal(grads["x"], grads2["x"])


@pytest.mark.parametrize(("v", "i"), INDEX_CASES, ids=[f"{list(v)}-{list(i)}" for v, i in INDEX_CASES])
def test_batched_jacobian(v: tuple[int, ...], i: tuple[int, ...]) -> None:
    """The Jacobian's batched passes run cg.value_and_grad on the batched graph (fused there too):
    the same rows as one unfused backward pass per row."""
    from cg.eval import jacbatch
    from cg.eval.interp import bind_inputs, forward
    from cg.eval.jacobian import _by_rows

    graph, given = graph_for(v, i, extra={"e": {"op": "mul", "in": ["y", 2.0]}})  # e: y's shape, several rows
    env = forward(graph, bind_inputs(graph, given))
    rows, cols = int(np.size(env["e"])), int(np.size(env["x"]))
    batched = jacbatch.by_rows(graph, env, "e", "x", rows, cols)
    assert batched is not None
    np.testing.assert_allclose(batched, _by_rows(graph, env, "e", "x", rows, cols, True), rtol=1e-13, atol=1e-15)
