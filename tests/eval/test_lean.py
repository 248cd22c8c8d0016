"""The lean passes of cg.value_and_grad (cg/eval/lean.py): the same numbers as cg.run, with each
array freed after its last use. Tracked from 1 element here (LIMIT is 1024), so that every
example graph and every op case goes through the frees and the NaN stand-ins."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import GRAPHS, TANH_MLP

import cg
from cg.check.fd import sample
from cg.eval import lean as lean_module
from cg.eval.grad import value_and_grad
from cg.eval.lean import lean
from cg.ops import REGISTRY, Case, Op

EXAMPLES = [p.name for p in sorted(GRAPHS.glob("*.yaml")) if "\noutputs:" in p.read_text(encoding="utf-8")]


@pytest.fixture(autouse=True)
def track_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lean_module, "LIMIT", 1)


def same_as_run(graph: cg.Graph, given: dict[str, np.ndarray]) -> None:
    f = value_and_grad(graph)
    assert f.lean is not None
    want = cg.run(graph, given)
    for _ in range(2):  # twice: nothing of the first call may leak into the second
        out, grads = f(given)
        assert out == pytest.approx(want.values[f.of], rel=1e-13)
        for name, d in grads.items():
            np.testing.assert_allclose(d, want.grads[name], rtol=1e-13, atol=1e-15, err_msg=name)


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_graph(name: str) -> None:
    from cg.check.gradients import draw_inputs

    graph = cg.load(GRAPHS / name)
    given = dict(graph.expect.inputs) if graph.expect else {}
    same_as_run(graph, draw_inputs(graph, given, np.random.default_rng(0))[0])


CASES = [pytest.param(op, case, id=f"{op.name}-{'x'.join(str(list(s)) for s in case.shapes)}-{case.attrs or ''}")
         for op in REGISTRY.values() for case in op.cases]


@pytest.mark.parametrize(("op", "case"), CASES)
def test_every_op_case(op: Op, case: Case) -> None:
    """z = sum(c * op(u...)) with each float argument a node u = 1 * x, so that the arguments too
    are values the passes free (inputs are the caller's)."""
    rng = np.random.default_rng(0)
    xs = sample(op, case.shapes, rng, case.attrs)
    inputs, nodes, args = {}, {}, []
    for k, x in enumerate(xs):
        x = np.asarray(x)
        if x.dtype.kind in "iu":
            inputs[f"x{k}"] = {"value": x.tolist(), "dtype": "int"}
            args.append(f"x{k}")
        else:
            inputs[f"x{k}"] = {"value": x.tolist()}
            nodes[f"u{k}"] = {"op": "mul", "in": [f"x{k}", 1.0]}
            args.append(f"u{k}")
    y = op.forward(*xs, **case.attrs)
    c = rng.standard_normal(np.shape(y))
    nodes |= {"y": {"op": op.name, "in": args, **case.attrs}, "w": {"op": "mul", "in": ["y", c.tolist()]},
              "z": {"op": "sum", "in": ["w"]}}
    graph = cg.loads(json.dumps({"cg": 1, "inputs": inputs, "nodes": nodes, "outputs": ["z"]}), f"{op.name}.json")
    same_as_run(graph, {})




def test_what_dies_where() -> None:
    """The forward pass frees z (add reads only its shape: a stand-in) and a (tanh's VJP reads its
    output): the layer outputs h, which tanh's and matmul's VJPs read, live into the backward pass
    and die there, after the last step that reads them; so do the gradients of nodes."""
    graph = cg.loads(TANH_MLP, "mlp.yaml")
    f = value_and_grad(graph)
    plan, passes = f.plan, f.lean
    assert passes is not None
    name = plan.names.__getitem__
    dead_fwd = {name(s): stand_in is not None for step in passes.forward for s, stand_in in step[-1]}
    assert dead_fwd == {"z1": True, "a1": True, "z2": True, "a2": True}
    dead_bwd = {name(s) for step in passes.backward for s in step[-2]}
    assert dead_bwd == {"h1", "h2"}
    dropped = {name(step[2]) for step in passes.backward if step[-1]}
    assert dropped == {"h2", "a2", "z2", "h1", "a1", "z1"}
    rng = np.random.default_rng(1)
    given = {i.name: rng.normal(size=i.aval.shape) for i in graph.inputs}
    same_as_run(graph, given)


def test_inputs_of_other_shapes_take_the_plain_passes() -> None:
    rows = ", ".join(["[" + ", ".join(["0.5"] * 8) + "]"] * 4)
    graph = cg.loads(TANH_MLP.replace("X: {shape: [4, 8]}", f"X: [{rows}]"), "mlp.yaml")  # shape from the default
    f = value_and_grad(graph)
    rng = np.random.default_rng(2)
    given = {i.name: rng.normal(size=i.aval.shape) for i in graph.inputs} | {"X": rng.normal(size=(3, 8))}
    _out, grads = f(given)  # 3 rows, not the declared 4: the stand-ins would have the wrong shape
    want = cg.run(graph, given)
    np.testing.assert_allclose(grads["W1"], want.grads["W1"], rtol=1e-13)


def test_small_graphs_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lean_module, "LIMIT", 1024)
    graph = cg.loads(TANH_MLP, "mlp.yaml")
    f = value_and_grad(graph)
    assert f.lean is None and lean(f.plan, f.steps, frozenset(), frozenset(), limit=32) is not None
