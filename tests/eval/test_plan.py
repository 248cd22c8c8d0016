"""The compiled passes (cg/eval/plan.py) and the lean entry point cg.value_and_grad (cg/eval/grad.py):
they give what cg.run gives, in float64 and float32, cut the backward pass to what is asked,
and never recurse. No test here times anything."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import cg
from cg.errors import NumericError, UsageError
from cg.eval.plan import plan_for
from cg.graph.ir import Graph
from cg.ops import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p.name for p in (ROOT / "graphs").glob("*.yaml"))
MLP = """
cg: 1
inputs:
  X: {shape: [4, 3]}
  y: {shape: [4], dtype: int}
  W: {shape: [3, 5]}
  b: {shape: [5]}
  V: {shape: [5, 2]}
nodes:
  h: {op: matmul, in: [X, W]}
  a: {op: add, in: [h, b]}
  r: {op: relu, in: [a]}
  z: {op: matmul, in: [r, V]}
  lp: {op: log_softmax, in: [z]}
  p: {op: index, in: [lp, y]}
  m: {op: mean, in: [p]}
  s: {op: mul, in: [-1.5, m]}
outputs: [s]
"""


def mlp_inputs(dtype: Any = np.float64) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {"X": rng.normal(size=(4, 3)).astype(dtype), "y": np.array([0, 1, 1, 0]),
            "W": rng.normal(size=(3, 5)).astype(dtype), "b": rng.normal(size=5).astype(dtype),
            "V": rng.normal(size=(5, 2)).astype(dtype)}


def given(graph: Graph) -> dict[str, Any]:
    """Values for the inputs that have no default."""
    return {i.name: np.full(i.aval.shape, 0.7) for i in graph.inputs if i.default is None}


@pytest.mark.parametrize("name", EXAMPLES)
def test_value_and_grad_gives_what_run_gives(name: str) -> None:
    graph = cg.load(ROOT / "graphs" / name)
    result = cg.run(graph, given(graph))
    f = cg.value_and_grad(graph)
    value, grads = f(given(graph))
    assert np.array_equal(value, result.value(graph.outputs[0]))
    floats = [i.name for i in graph.inputs if i.aval.dtype == "float"]
    assert sorted(grads) == sorted(floats)
    for k in floats:
        assert np.allclose(grads[k], result.grad(k), rtol=1e-13, atol=0), k
    assert np.array_equal(f(given(graph))[0], value)  # a second call gives the same


@pytest.mark.parametrize("name", EXAMPLES)
def test_float32_stays_float32_and_matches_float64(name: str) -> None:
    graph = cg.load(ROOT / "graphs" / name)
    r64, r32 = cg.run(graph, given(graph)), cg.run(graph, given(graph), dtype="float32")
    for k, v in r32.values.items():
        if graph.avals[k].dtype == "float":
            assert v.dtype == np.float32, k
            assert np.allclose(v, r64.values[k], rtol=1e-4, atol=1e-5), k
            assert r32.grads[k] is not None and r32.grads[k].dtype == np.float32, k  # type: ignore[union-attr]
            assert np.allclose(r32.grads[k], r64.grads[k], rtol=1e-3, atol=1e-4), k  # type: ignore[arg-type]
        else:
            assert v.dtype == np.int64
    first = next(i.name for i in graph.inputs if i.aval.dtype == "float")
    t = cg.run(graph, given(graph), tangents={first: np.ones(graph.avals[first].shape)}, dtype="float32").tangents
    assert t is not None and all(v is None or v.dtype == np.float32 for v in t.values())


def test_float32_mlp_through_value_and_grad() -> None:
    graph = cg.loads(MLP)
    want_loss, want = cg.value_and_grad(graph)(mlp_inputs())
    loss, grads = cg.value_and_grad(graph, dtype="float32")(mlp_inputs(np.float32))
    assert loss.dtype == np.float32 and np.allclose(loss, want_loss, rtol=1e-5)
    for k, g in grads.items():
        assert g.dtype == np.float32 and np.allclose(g, want[k], rtol=1e-4, atol=1e-6), k
    # float64 values given to a float32 function are cast, and the other way round
    loss2, _ = cg.value_and_grad(graph, dtype="float32")(mlp_inputs(np.float64))
    assert loss2.dtype == np.float32 and loss2 == loss
    assert cg.value_and_grad(graph)(mlp_inputs(np.float32))[0].dtype == np.float64


def test_wrt_cuts_the_backward_pass() -> None:
    graph = cg.loads(MLP)
    full = cg.run(graph, mlp_inputs())
    f = cg.value_and_grad(graph, wrt=["W", "V"])
    _, grads = f(mlp_inputs())
    assert sorted(grads) == ["V", "W"]
    assert all(np.allclose(grads[k], full.grad(k)) for k in grads)
    # Nodes between of and W or V only: b's edge is never followed, X's cotangent never wanted.
    names = set(f.steps.names)
    assert {"W", "V", "h", "a", "r", "z"} <= names and not {"X", "b"} & names


def test_gradient_of_a_name_with_no_path_is_zero() -> None:
    graph = cg.loads("cg: 1\ninputs: {x: 1.0, w: [1.0, 2.0]}\nnodes: {y: {op: exp, in: [x]}}\noutputs: [y]")
    value, grads = cg.value_and_grad(graph, wrt=["x", "w"])({"x": 0.0})
    assert value == 1.0 and grads["x"] == 1.0 and grads["w"].tolist() == [0.0, 0.0]
    assert list(cg.value_and_grad(graph, wrt="w")()[1]) == ["w"]  # one name as a string


def test_value_and_grad_errors_are_run_errors() -> None:
    graph = cg.loads(MLP)
    with pytest.raises(UsageError, match="unknown name 'Q'"):
        cg.value_and_grad(graph, wrt=["Q"])
    with pytest.raises(UsageError, match="'y' is an integer"):
        cg.value_and_grad(graph, wrt=["y"])
    with pytest.raises(UsageError, match="dtype must be one of"):
        cg.value_and_grad(graph, dtype="float16")
    f = cg.value_and_grad(graph)
    with pytest.raises(UsageError, match="missing value for input"):
        f({"X": np.ones((4, 3))})
    with pytest.raises(UsageError, match=r"has shape \[4, 3\], got a value of shape \[3\]"):
        f({**mlp_inputs(), "X": np.ones(3)})
    with pytest.raises(UsageError, match="did you mean 'X'"):
        f({**mlp_inputs(), "x": np.ones((4, 3))})
    with pytest.raises(NumericError, match="out of range"):
        f({**mlp_inputs(), "y": np.array([0, 1, 2, 0])})
    vector = cg.loads("cg: 1\ninputs: {v: [1.0, 2.0]}\nnodes: {s: {op: square, in: [v]}}\noutputs: [s]")
    with pytest.raises(UsageError, match="op: sum"):
        cg.value_and_grad(vector)()
    assert cg.value_and_grad(vector)(seed=np.array([0.0, 1.0]))[1]["v"].tolist() == [0.0, 4.0]


def test_inputs_in_any_form_and_new_shapes() -> None:
    graph = cg.loads("cg: 1\ninputs: {x: [1.0, 1.0]}\nnodes: {s: {op: sum, in: [x]}}\noutputs: [s]")
    f = cg.value_and_grad(graph)
    assert f({"x": [1, 2, 3]})[0] == 6.0  # a list of ints, another shape: the slow path re-checks
    assert f({"x": np.arange(2.0)})[1]["x"].tolist() == [1.0, 1.0]
    assert f()[0] == 2.0


def _with_needs(graph: Graph, seen: list[tuple[bool, ...]]) -> Graph:
    """The graph with matmul's VJP swapped for one that takes `needs` and records it."""
    base = REGISTRY["matmul"].vjp

    def vjp(g: Any, y: Any, xs: Sequence[Any], needs: tuple[bool, ...] = (True, True)) -> list[Any]:
        seen.append(needs)
        out = base(g, y, xs)
        return [c if need else None for c, need in zip(out, needs)]

    op = dataclasses.replace(REGISTRY["matmul"], vjp=vjp)
    nodes = tuple(dataclasses.replace(n, op=op) if n.op.name == "matmul" else n for n in graph.nodes)
    return dataclasses.replace(graph, nodes=nodes)


def test_a_vjp_that_takes_needs_is_told_which_cotangents_are_wanted() -> None:
    seen: list[tuple[bool, ...]] = []
    graph = _with_needs(cg.loads(MLP), seen)
    want = cg.run(graph, mlp_inputs())
    _, grads = cg.value_and_grad(graph, wrt=["W", "V"])(mlp_inputs())
    assert seen[-2:] == [(True, True), (False, True)]  # z = r V: both lead to W or V; h = X W: X does not
    assert all(np.allclose(grads[k], want.grad(k)) for k in grads)
    seen.clear()
    cg.value_and_grad(graph)(mlp_inputs())
    assert seen == [(True, True), (True, True)]


def test_plan_is_made_once_per_graph_and_dtype() -> None:
    graph = cg.loads(MLP)
    assert plan_for(graph) is plan_for(graph) and plan_for(graph, "float32") is not plan_for(graph)
    assert dataclasses.replace(graph).__dict__.get("_plans") is None


def test_deep_chain_runs_with_a_tiny_recursion_limit() -> None:
    n = 3000
    text = "cg: 1\ninputs: {x: 0.5}\nnodes:\n  n0: {op: tanh, in: [x]}\n"
    text += "".join(f"  n{i}: {{op: tanh, in: [n{i - 1}]}}\n" for i in range(1, n)) + f"outputs: [n{n - 1}]\n"
    graph = cg.loads(text)
    f = cg.value_and_grad(graph)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        value, grads = f()
        result = cg.run(graph, tangents={"x": 1.0})
    finally:
        sys.setrecursionlimit(limit)
    assert result.tangents is not None and np.isclose(result.tangents[f"n{n - 1}"], grads["x"])
    assert np.isclose(value, result.value(f"n{n - 1}"))


def test_gradients_passed_through_are_not_shared() -> None:
    # add passes its cotangent through unchanged: value_and_grad still returns distinct arrays,
    # none of them the caller's seed, and cg.run agrees.
    graph = cg.loads("cg: 1\ninputs: {x: [1.0, 2.0], y: [3.0, 4.0]}\nnodes: {z: {op: add, in: [x, y]}}\noutputs: [z]")
    seed = np.array([1.0, 2.0])
    _, grads = cg.value_and_grad(graph)(seed=seed)
    assert grads["x"] is not grads["y"] and grads["x"] is not seed and grads["y"] is not seed
    grads["x"] *= 10.0
    assert grads["y"].tolist() == [1.0, 2.0] and seed.tolist() == [1.0, 2.0]


def test_a_replaced_vjp_is_used_even_where_the_plan_would_call_df() -> None:
    # The plan multiplies by a one-input op's df (Op.df) in place of its VJP; an op whose VJP is
    # of another make has none (a VJP replaced beside a df is refused: tests/ops/test_ops.py).
    graph = cg.loads("cg: 1\ninputs: {x: 0.5}\nnodes: {a: {op: sin, in: [x]}, b: {op: sin, in: [a]}}\noutputs: [b]")
    op = REGISTRY["sin"]
    wrong = dataclasses.replace(op, vjp=lambda g, y, xs: [2.0 * g * np.cos(xs[0])], df=None)
    nodes = tuple(dataclasses.replace(n, op=wrong) for n in graph.nodes)
    _, right = cg.value_and_grad(graph)()
    _, doubled = cg.value_and_grad(dataclasses.replace(graph, nodes=nodes))()
    assert np.isclose(doubled["x"], 4.0 * right["x"])


def test_scalar_elementwise_nodes_of_two_inputs_take_the_pair_fast_path() -> None:
    """add, sub, mul, div of scalars multiply the cotangent by Op.partials directly (PAIR); the
    numbers are those of the ops' VJPs, mul(x, x) included."""
    from cg.eval.backplan import FAN, PAIR

    graph = cg.loads("cg: 1\ninputs: {x: 1.5, y: -0.5}\nnodes:\n  a: {op: add, in: [x, y]}\n"
                     "  b: {op: mul, in: [a, x]}\n  c: {op: sub, in: [b, y]}\n  d: {op: div, in: [c, a]}\n"
                     "  e: {op: mul, in: [d, d]}\n  s: {op: sum, in: [e]}\noutputs: [s]\n", "pair.yaml")
    plan = plan_for(graph)
    kinds = {plan.names[out]: kind for kind, _, out, _, _ in plan.backward_plan("s").steps}
    assert kinds == {"s": FAN, "e": PAIR, "d": PAIR, "c": PAIR, "b": PAIR, "a": PAIR}  # sum: not elementwise
    x, y = 1.5, -0.5
    a = x + y
    d = (a * x - y) / a
    dd = 2 * d  # de/dd
    dx = dd * ((a + x) / a - (a * x - y) / a**2)
    dy = dd * ((x - 1) / a - (a * x - y) / a**2)
    result = cg.run(graph)
    assert result.grads["x"] == pytest.approx(dx, rel=1e-13) and result.grads["y"] == pytest.approx(dy, rel=1e-13)


def test_a_pair_step_given_arrays_at_run_time_sums_back() -> None:
    """x's shape comes from its default (a number), so a vector may be given: the PAIR step then
    sees an array cotangent and takes the VJP, which sums y's gradient back to a number."""
    graph = cg.loads("cg: 1\ninputs: {x: 1.0, y: 2.0}\nnodes:\n  a: {op: mul, in: [x, y]}\n"
                     "  s: {op: sum, in: [a]}\noutputs: [s]\n", "pair.yaml")
    result = cg.run(graph, {"x": np.array([1.0, 2.0, 3.0])})
    assert result.grads["y"] == pytest.approx(6.0) and np.shape(result.grads["y"]) == ()
    np.testing.assert_array_equal(result.grads["x"], [2.0, 2.0, 2.0])
    f = cg.value_and_grad(graph)
    _, grads = f({"x": np.array([1.0, 2.0, 3.0])})
    assert grads["y"] == pytest.approx(6.0) and np.shape(grads["y"]) == ()


def test_a_vjp_of_another_make_beside_partials_is_refused() -> None:
    add = cg.ops.REGISTRY["add"]
    with pytest.raises(ValueError, match="made from its partials"):
        dataclasses.replace(add, vjp=lambda g, y, xs: [g, g])
    assert dataclasses.replace(add, vjp=lambda g, y, xs: [g, g], partials=None).partials is None
