"""`cg import`: each ONNX op cg imports, in a model built with onnx.helper, becomes cg nodes whose
values equal ONNX's reference evaluator's (the import's own cross-check); what cannot be imported is
refused with the node's name and op type, and nothing is written (cg/interop/read.py, rules.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install 'cg-graphs[onnx]')")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from cg.errors import CgError  # noqa: E402
from cg.interop import rules  # noqa: E402
from cg.interop.crosscheck import cross_check  # noqa: E402
from cg.interop.read import read_model  # noqa: E402

F = TensorProto.FLOAT


def model(nodes: list[Any], inputs: dict[str, list[int]], outputs: list[str], *, inits: dict[str, np.ndarray] | None
          = None, opset: int = 18) -> bytes:
    """A model of `nodes` with float inputs of the given shapes; its outputs' types are found by
    running it once (the checker wants them, as exporters write them)."""
    def make(types: list[Any]) -> Any:
        graph = helper.make_graph(
            nodes, "test", [helper.make_tensor_value_info(k, F, s) for k, s in inputs.items()], types,
            initializer=[numpy_helper.from_array(v, k) for k, v in (inits or {}).items()])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)

    from onnx.reference import ReferenceEvaluator

    feeds = {k: np.ones(s, np.float32) for k, s in inputs.items()}
    try:
        found = ReferenceEvaluator(make([helper.make_tensor_value_info(o, F, None) for o in outputs])).run(None, feeds)
    except Exception:  # a model the tests expect to be refused: any output type will do
        found = [np.zeros((), np.float32) for _ in outputs]
    types = [helper.make_tensor_value_info(o, helper.np_dtype_to_tensor_dtype(np.asarray(v).dtype), np.shape(v))
             for o, v in zip(outputs, found)]
    return make(types).SerializeToString()


def one(op_type: str, n_in: int = 1, shape: tuple[int, ...] = (2, 3), **attrs: Any) -> bytes:
    names = [f"a{k}" for k in range(n_in)]
    return model([helper.make_node(op_type, names, ["y"], name=f"the_{op_type}", **attrs)],
                 {n: list(shape) for n in names}, ["y"])


def const(name: str, value: Any) -> Any:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value), name))


def onehot_model(depth: Any = 4, values: Any = (0.0, 1.0), axis: int = -1) -> bytes:
    """OneHot of an int64 input i [2, 3] (model() makes float inputs)."""
    nodes = [const("n", np.asarray(depth, np.int64)), const("v", np.asarray(values, np.float32)),
             helper.make_node("OneHot", ["i", "n", "v"], ["y"], name="the_OneHot", axis=axis)]
    out = [2, 3, int(depth)] if axis == -1 else [int(depth), 2, 3]
    graph = helper.make_graph(nodes, "test", [helper.make_tensor_value_info("i", TensorProto.INT64, [2, 3])],
                              [helper.make_tensor_value_info("y", F, out)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8).SerializeToString()


I64 = np.int64
W = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
MODELS: dict[str, Callable[[], bytes]] = {
    **{t: (lambda t=t: one(t)) for t in ("Neg", "Exp", "Abs", "Sin", "Cos", "Tanh", "Sigmoid", "Relu", "Sign")},
    **{t: (lambda t=t, attrs=attrs: model([helper.make_node("Relu", ["a"], ["r"]),  # an output must be computed
                                           helper.make_node(t, ["r"], ["y"], **attrs)], {"a": [2, 3]}, ["y"]))
       for t, attrs in (("Identity", {}), ("Dropout", {}), ("Cast", {"to": TensorProto.DOUBLE}))},
    "Log": lambda: model([helper.make_node("Exp", ["a"], ["e"]), helper.make_node("Log", ["e"], ["y"])],
                         {"a": [2, 3]}, ["y"]),
    "Sqrt": lambda: model([helper.make_node("Exp", ["a"], ["e"]), helper.make_node("Sqrt", ["e"], ["y"])],
                          {"a": [2, 3]}, ["y"]),
    **{t: (lambda t=t: one(t, 2)) for t in ("Add", "Sub", "Mul", "Div")},
    "Pow": lambda: model([helper.make_node("Exp", ["a"], ["e"]), helper.make_node("Pow", ["e", "b"], ["y"])],
                         {"a": [2, 3], "b": [3]}, ["y"]),
    "MatMul": lambda: model([helper.make_node("MatMul", ["a", "b"], ["y"])], {"a": [2, 3], "b": [3, 4]}, ["y"]),
    "Sum": lambda: one("Sum", 3),
    "Max": lambda: one("Max", 3),
    "Min": lambda: one("Min", 2),
    "Softmax": lambda: one("Softmax", axis=0),
    "LogSoftmax": lambda: one("LogSoftmax"),
    "ReduceSum": lambda: model([const("ax", np.asarray([1], I64)), helper.make_node("ReduceSum", ["a", "ax"], ["y"])],
                               {"a": [2, 3]}, ["y"]),
    "ReduceMean": lambda: model([helper.make_node("ReduceMean", ["a"], ["y"], axes=[0], keepdims=0)],
                                {"a": [2, 3]}, ["y"], opset=13),
    "ReduceMax": lambda: one("ReduceMax", keepdims=0),
    "ReduceLogSumExp": lambda: model([const("ax", np.asarray([0, 2], I64)),
                                      helper.make_node("ReduceLogSumExp", ["a", "ax"], ["y"])], {"a": [2, 3, 2]},
                                     ["y"]),
    "Reshape": lambda: model([const("s", np.asarray([0, -1], I64)), helper.make_node("Reshape", ["a", "s"], ["y"])],
                             {"a": [2, 3, 2]}, ["y"]),
    "Flatten": lambda: one("Flatten", shape=(2, 3, 2), axis=1),
    "Squeeze": lambda: model([const("ax", np.asarray([1], I64)), helper.make_node("Squeeze", ["a", "ax"], ["y"])],
                             {"a": [2, 1, 3]}, ["y"]),
    "Unsqueeze": lambda: model([const("ax", np.asarray([0], I64)), helper.make_node("Unsqueeze", ["a", "ax"], ["y"])],
                               {"a": [2, 3]}, ["y"]),
    "Transpose": lambda: one("Transpose", shape=(2, 3, 4), perm=[1, 0, 2]),
    "Gemm": lambda: model([helper.make_node("Gemm", ["a", "W", "b"], ["y"], transB=1, alpha=0.5, beta=2.0)],
                          {"a": [2, 3]}, ["y"], inits={"W": W, "b": np.ones(4, np.float32)}),
    "Gather": lambda: model([const("i", np.asarray(2, I64)), helper.make_node("Gather", ["a", "i"], ["y"], axis=1)],
                            {"a": [2, 3]}, ["y"]),
    "GatherElements": lambda: model([const("i", np.asarray([[2], [0]], I64)),
                                     helper.make_node("GatherElements", ["a", "i"], ["y"], axis=1)],
                                    {"a": [2, 3]}, ["y"]),
    "Expand": lambda: model([const("s", np.asarray([3, 2, 4], I64)), helper.make_node("Expand", ["a", "s"], ["y"])],
                            {"a": [2, 1]}, ["y"]),
    "Greater": lambda: model([helper.make_node("Greater", ["a", "b"], ["c"]),
                              helper.make_node("Cast", ["c"], ["y"], to=TensorProto.FLOAT)], {"a": [2, 3], "b": [3]},
                             ["y"]),
    "OneHot": onehot_model,
}


def test_every_imported_op_has_a_model_here() -> None:
    assert sorted(MODELS) == sorted(rules.RULES)


@pytest.mark.parametrize("op_type", sorted(MODELS))
def test_each_op_imports_and_agrees_with_onnx(op_type: str) -> None:
    imported = read_model(MODELS[op_type](), "m.onnx", {})
    agreement = cross_check(imported, "m.onnx")
    assert agreement.compared >= 1 and agreement.worst <= 1e-4
    assert imported.outputs == [imported.onnx_ids["y"]]


def test_gemm_is_transpose_matmul_scale_add() -> None:
    nodes = read_model(MODELS["Gemm"](), "m.onnx", {}).nodes
    assert [n["op"] for n in nodes.values()] == ["transpose", "matmul", "mul", "mul", "add"]
    assert all(n["doc"] == "ONNX Gemm" for n in nodes.values())


def test_greater_is_a_step_of_the_difference_or_of_a_itself_against_0() -> None:
    nodes = read_model(MODELS["Greater"](), "m.onnx", {}).nodes
    assert [n["op"] for n in nodes.values()] == ["sub", "step"]  # the Cast to float changes nothing
    data = model([const("z", np.asarray(0.0, np.float32)), helper.make_node("Greater", ["a", "z"], ["c"]),
                  helper.make_node("Cast", ["c"], ["y"], to=TensorProto.DOUBLE)], {"a": [2, 3]}, ["y"])
    imported = read_model(data, "m.onnx", {"a": np.asarray([[1.0, -1.0, 0.0], [2.0, 0.5, -3.0]], np.float32)})
    assert [(n["op"], n["in"]) for n in imported.nodes.values()] == [("step", ["a"])]
    assert cross_check(imported, "m.onnx").compared == 2  # Greater's booleans and the Cast's floats


def test_expand_is_broadcast_to_the_shape_the_model_produced() -> None:
    nodes = read_model(MODELS["Expand"](), "m.onnx", {}).nodes
    assert [(n["op"], n["shape"]) for n in nodes.values()] == [("broadcast_to", [3, 2, 4])]
    both_ways = model([const("s", np.asarray([3, 1], I64)), helper.make_node("Expand", ["a", "s"], ["e"]),
                       helper.make_node("Relu", ["e"], ["y"])], {"a": [1, 4]}, ["y"])  # [1, 4] and [3, 1]: [3, 4]
    imported = read_model(both_ways, "m.onnx", {})
    assert next(iter(imported.nodes.values()))["shape"] == [3, 4] and cross_check(imported, "m.onnx").compared == 2


def test_onehot_with_negative_indices_imports_and_agrees() -> None:
    imported = read_model(MODELS["OneHot"](), "m.onnx", {"i": np.asarray([[0, -1, 3], [2, 1, -4]])})
    assert [(n["op"], n["n"]) for n in imported.nodes.values()] == [("onehot", 4)]
    assert cross_check(imported, "m.onnx").worst == 0.0


@pytest.mark.parametrize(("data", "words"), [
    (lambda: onehot_model(values=(-1.0, 1.0)), "writes 0 and 1 (its off and on values), not [-1.0, 1.0]"),
    (lambda: onehot_model(axis=0), "cg's onehot adds a last axis"),
    (lambda: model([helper.make_node("Greater", ["a", "a"], ["c"]),
                    helper.make_node("Cast", ["c"], ["y"], to=TensorProto.INT64)], {"a": [2]}, ["y"]),
     "a cast from bool to int64 changes values"),
])
def test_what_the_new_rules_cannot_import_is_refused(data: Callable[[], bytes], words: str) -> None:
    with pytest.raises(CgError) as e:
        read_model(data(), "m.onnx", {})
    d = e.value.diagnostics[0]
    assert d.code == "CG712" and words in d.message, d.message


def test_greater_of_integers_is_refused() -> None:
    nodes = [helper.make_node("Greater", ["i", "j"], ["y"], name="the_Greater")]
    graph = helper.make_graph(nodes, "test", [helper.make_tensor_value_info(k, TensorProto.INT64, [2]) for k in "ij"],
                              [helper.make_tensor_value_info("y", TensorProto.BOOL, [2])])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8).SerializeToString()
    with pytest.raises(CgError) as e:
        read_model(data, "m.onnx", {})
    assert "cg imports comparisons of floats" in e.value.diagnostics[0].message


def test_shape_arithmetic_folds_into_constants() -> None:
    """An exporter's Shape -> Gather -> Concat -> Reshape becomes one cg reshape."""
    data = model([helper.make_node("Shape", ["a"], ["s"]), const("k", np.asarray(0, I64)),
                  helper.make_node("Gather", ["s", "k"], ["n"], axis=0), const("m", np.asarray([-1], I64)),
                  const("ax", np.asarray([0], I64)), helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
                  helper.make_node("Concat", ["n1", "m"], ["target"], axis=0),
                  helper.make_node("Reshape", ["a", "target"], ["y"])], {"a": [2, 3, 2]}, ["y"])
    imported = read_model(data, "m.onnx", {})
    assert list(imported.nodes.values()) == [{"op": "reshape", "in": ["a"], "shape": [2, 6], "doc": "ONNX Reshape"}]


def test_ids_are_valid_and_unique() -> None:
    data = model([helper.make_node("Relu", ["0.in"], ["/l/Relu_0"], name="/l/Relu"),
                  helper.make_node("Neg", ["/l/Relu_0"], ["l.Relu_0"])], {"0.in": [2]}, ["l.Relu_0"])
    imported = read_model(data, "m.onnx", {})
    assert list(imported.inputs) == ["_0_in"] and list(imported.nodes) == ["l_Relu_0", "l_Relu_0_2"]


@pytest.mark.parametrize(("data", "code", "words"), [
    (b"not a model at all", "CG711", "not a valid ONNX model"),
    (one("Conv", 2, shape=(1, 1, 3, 3)), "CG712", "'the_Conv' (Conv): not an op cg imports. cg imports: Abs, Add"),
    (model([helper.make_node("Relu", ["a"], ["y"])], {"a": [2]}, ["y"], opset=12), "CG712",
     "opset 12; cg imports opset 13 and later"),
    (model([helper.make_node("Identity", ["a"], ["y"])], {"a": [2]}, ["y"]), "CG712", "is one of its inputs"),
    (one("Cast", to=TensorProto.INT64), "CG712", "a cast from float32 to int64 changes values"),
    (model([helper.make_node("Gather", ["a", "i"], ["y"], axis=0)], {"a": [3, 2]}, ["y"],
           inits={"i": np.asarray([0, 2], I64)}), "CG712", "one entry along the last axis"),
])
def test_what_cannot_be_imported_is_refused(data: bytes, code: str, words: str) -> None:
    with pytest.raises(CgError) as e:
        read_model(data, "m.onnx", {})
    d = e.value.diagnostics[0]
    assert d.code == code and words in d.message, d.message


def test_the_cross_check_names_the_node_whose_rule_is_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(rules.RULES, "Tanh", rules._unary("sigmoid"))
    data = model([helper.make_node("Relu", ["a"], ["r"], name="first"),
                  helper.make_node("Tanh", ["r"], ["y"], name="second")], {"a": [4]}, ["y"])
    imported = read_model(data, "m.onnx", {"a": np.asarray([1.0, 2, 3, 4], np.float32)})
    with pytest.raises(CgError) as e:
        cross_check(imported, "m.onnx")
    [d] = e.value.diagnostics
    assert d.code == "CG713" and d.node == "y" and "node 'second', Tanh" in d.message


def test_weights_in_another_file_are_refused_never_read(tmp_path: Any) -> None:
    t = numpy_helper.from_array(np.ones(3, np.float32), "W")
    t.data_location = TensorProto.EXTERNAL
    t.ClearField("raw_data")
    t.external_data.add(key="location", value="/etc/passwd")
    graph = helper.make_graph([helper.make_node("Add", ["a", "W"], ["y"])], "g",
                              [helper.make_tensor_value_info("a", F, [3])],
                              [helper.make_tensor_value_info("y", F, [3])], initializer=[t])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()
    with pytest.raises(CgError) as e:
        read_model(data, "m.onnx", {})
    assert "'W' keeps its values in another file" in str(e.value)


def test_the_element_limit_applies_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    from cg.limits import raised, set_current

    set_current(raised(max_elements=5))
    try:
        with pytest.raises(CgError) as e:
            read_model(MODELS["Gemm"](), "m.onnx", {})
        assert e.value.diagnostics[0].code == "CG004" and "'W' has shape [4, 3]" in str(e.value)
    finally:
        set_current(None)


def test_control_characters_in_names_are_escaped_on_the_terminal(tmp_path: Any) -> None:
    from conftest import cg

    path = tmp_path / "evil.onnx"
    path.write_bytes(model([helper.make_node("Erf", ["a"], ["y"], name="x\x1b[31mred")], {"a": [2]}, ["y"]))
    r = cg("import", str(path), "-o", str(tmp_path / "evil.yaml"))
    assert r.code == 1 and "\x1b" not in r.err and "Erf" in r.err


def test_a_constant_kept_in_another_file_is_refused_before_the_checker(tmp_path: Any) -> None:
    value = numpy_helper.from_array(np.ones(3, np.float32), "c")
    value.data_location = TensorProto.EXTERNAL
    value.ClearField("raw_data")
    value.external_data.add(key="location", value="secret.bin")
    graph = helper.make_graph([helper.make_node("Constant", [], ["c"], value=value),
                               helper.make_node("Add", ["a", "c"], ["y"])], "g",
                              [helper.make_tensor_value_info("a", F, [3])],
                              [helper.make_tensor_value_info("y", F, [3])])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString()
    with pytest.raises(CgError) as e:
        read_model(data, "m.onnx", {})
    assert e.value.diagnostics[0].code == "CG712" and "'c' keeps its values in another file" in str(e.value)
