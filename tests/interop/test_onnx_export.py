"""`cg export`: every op of the registry at every test case, every example graph: the ONNX model
passes the full checker, ONNX's reference evaluator gives cg's values, and importing it back gives
the same values and gradients (cg/interop/write.py, read.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import GRAPHS, cg

import cg as cglib
from cg.check.fd import sample
from cg.ops import REGISTRY, Case, Op

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install 'cg-graphs[onnx]')")
from onnx.reference import ReferenceEvaluator  # noqa: E402

from cg.interop.crosscheck import cross_check  # noqa: E402
from cg.interop.read import read_model  # noqa: E402
from cg.interop.write import EXPORT, to_model  # noqa: E402

CASES = [pytest.param(op, case, id=f"{op.name}-{'x'.join(str(list(s)) for s in case.shapes)}-{case.attrs or ''}")
         for op in REGISTRY.values() for case in op.cases]


def one_node(op: Op, case: Case, xs: list[np.ndarray]) -> cglib.Graph:  # type: ignore[name-defined]
    inputs = {f"x{k}": {"shape": list(np.shape(x)), **({"dtype": "int"} if np.asarray(x).dtype.kind in "iu" else {})}
              for k, x in enumerate(xs)}
    doc = {"cg": 1, "inputs": inputs, "nodes": {"y": {"op": op.name, "in": list(inputs), **case.attrs}},
           "outputs": ["y"]}
    return cglib.loads(json.dumps(doc), f"{op.name}.json")


def test_every_op_has_an_export_rule() -> None:
    assert sorted(REGISTRY) == sorted(EXPORT), "add the new op's rule to EXPORT in cg/interop/write.py"


@pytest.mark.parametrize(("op", "case"), CASES)
def test_each_op_exports_and_comes_back(op: Op, case: Case) -> None:
    xs = sample(op, case.shapes, np.random.default_rng(0), case.attrs)
    graph = one_node(op, case, xs)
    given = {f"x{k}": x for k, x in enumerate(xs)}
    out = graph.avals["y"].shape
    result = cglib.run(graph, given, seed=np.ones(out) if out else None)
    model = to_model(graph, result)  # the full checker runs inside
    got = ReferenceEvaluator(model).run(None, {k: np.asarray(v) for k, v in given.items()})[0]
    np.testing.assert_allclose(got, result.values["y"], rtol=1e-12, atol=1e-300)
    names = {p.key for p in model.graph.node[-1].metadata_props}
    assert "cg.value" in names and any(n.startswith("cg.grad") for n in names)
    imported = read_model(model.SerializeToString(), "model.onnx", given)
    assert cross_check(imported, "model.onnx").compared >= 1  # the import agrees with ONNX, node by node
    again = cglib.run(cglib.loads(imported.text(), "again.json"), imported.arrays, seed=np.ones(out) if out else None)
    for k in given:
        if result.grads.get(k) is not None:
            np.testing.assert_allclose(again.grads[k], result.grads[k], rtol=1e-12, atol=1e-300)


NEW_OPS = ("sign", "step", "broadcast_to", "sum_to", "onehot")  # issue 14's, exported with care for onnxruntime


@pytest.mark.parametrize(("op", "case"), [p for p in CASES if p.values[0].name in NEW_OPS])
def test_the_new_ops_exports_run_in_onnxruntime_too(op: Op, case: Case) -> None:
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    xs = sample(op, case.shapes, np.random.default_rng(0), case.attrs)
    data = to_model(one_node(op, case, xs)).SerializeToString()
    imported = read_model(data, "model.onnx", {f"x{k}": x for k, x in enumerate(xs)})
    agreement = cross_check(imported, "model.onnx", data)  # with the model's bytes: onnxruntime as well
    assert agreement.engines[1] == f"onnxruntime {ort.__version__}" and agreement.worst == 0.0


def test_onehot_exports_onnx_onehot_and_comes_back_as_onehot() -> None:
    op = REGISTRY["onehot"]
    i = np.asarray([[0, -1, 2], [1, -3, 0]])
    model = to_model(one_node(op, Case(((2, 3),), {"n": 3}), [i]))
    assert [n.op_type for n in model.graph.node if n.op_type != "Constant"] == ["OneHot", "Cast"]
    got = ReferenceEvaluator(model).run(None, {"x0": i})[0]
    assert got.dtype == np.float64 and np.array_equal(got, op.forward(i, n=3))
    imported = read_model(model.SerializeToString(), "model.onnx", {"x0": i})
    assert [n["op"] for n in imported.nodes.values()] == ["onehot"]


EXAMPLES = [p.name for p in sorted(GRAPHS.glob("*.yaml")) if "functions:" not in p.read_text(encoding="utf-8")
            or "outputs:" in p.read_text(encoding="utf-8")]


def example(name: str) -> tuple[Any, dict[str, np.ndarray]]:
    from cg.check.gradients import draw_inputs

    graph = cglib.load(GRAPHS / name)
    given = dict(graph.expect.inputs) if graph.expect else {}
    missing = {i.name for i in graph.inputs if i.default is None and i.name not in given}
    if missing:
        given.update({k: v for k, v in draw_inputs(graph, given, np.random.default_rng(0))[0].items() if k in missing})
    return graph, given


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_graph_round_trips(name: str, tmp_path: Path) -> None:
    graph, given = example(name)
    out = tmp_path / "model.onnx"
    values = [a for k, v in given.items() for a in ("--inputs", f"{k}={json.dumps(np.asarray(v).tolist())}")]
    r = cg("export", str(GRAPHS / name), "-o", str(out), *values)
    assert r.code == 0, r.err
    assert "ONNX's reference evaluator gives cg's outputs" in r.err
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    assert [n.name for n in model.graph.node if "::" not in n.name] == [n.id for n in graph.nodes]
    before = cglib.run(graph, given)
    imported = read_model(out.read_bytes(), str(out), {k: v for k, v in given.items()
                                                       if k not in {t.name for t in model.graph.initializer}})
    cross_check(imported, str(out))
    after = cglib.run(cglib.loads(imported.text(), "again.json"), imported.arrays)
    for name_, key in imported.onnx_ids.items():
        if name_ in before.values:
            np.testing.assert_allclose(after.values[key], before.values[name_], rtol=1e-12, err_msg=name_)
            if before.grads.get(name_) is not None:
                np.testing.assert_allclose(after.grads[key], before.grads[name_], rtol=1e-12, atol=1e-300,
                                           err_msg=name_)
