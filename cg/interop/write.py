"""`cg export`: a cg graph (composites inlined) as an ONNX model (opset 18, float64) that passes
`onnx.checker.check_model(full_check=True)`. Node and value names are cg ids; inputs with a
default value are also initializers (so the model runs as the graph does); constants are Constant
nodes. With a run, each node's value and gradient go in its `metadata_props` (Netron shows them).

Each cg op is written by one rule in EXPORT; tests/interop/test_onnx_export.py checks that every op of
the registry has one, so a new op cannot be left out silently. Helper values a rule needs (axes,
a shape) are named `<id>::<what>`: `::` never appears in a cg id."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from cg.eval.interp import Result
from cg.graph.ir import Const, Graph, Node
from cg.interop.need import onnx_module
from cg.ops.kernels import summed_axes

OPSET = 18  # Reduce* take their axes as an input from 18 on
IR_VERSION = 10  # nodes carry metadata_props from IR 10 (onnx 1.16)
FLOAT = 11  # TensorProto.DOUBLE: cg computes in float64, and the export keeps it bit for bit
INT = 7  # TensorProto.INT64


class Exporter:
    """The ONNX nodes and initializers of a graph, built one cg node at a time."""

    def __init__(self, graph: Graph, onnx: Any) -> None:
        self.graph, self.onnx, self.helper = graph, onnx, onnx.helper
        self.nodes: list[Any] = []

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.graph.avals[name].shape)

    def const(self, name: str, value: np.ndarray) -> str:
        value = np.asarray(value, np.int64 if value.dtype.kind in "iub" else np.float64)
        tensor = self.onnx.numpy_helper.from_array(value, name)
        self.nodes.append(self.helper.make_node("Constant", [], [name], name=name, value=tensor))
        return name

    def add(self, op_type: str, inputs: list[str], output: str, name: str | None = None, **attrs: Any) -> str:
        self.nodes.append(self.helper.make_node(op_type, inputs, [output], name=name or output, **attrs))
        return output


ExportRule = Callable[[Exporter, Node, list[str]], None]


def _same(op_type: str) -> ExportRule:
    def rule(ex: Exporter, node: Node, args: list[str]) -> None:
        ex.add(op_type, args, node.id)
    return rule


def _square(ex: Exporter, node: Node, args: list[str]) -> None:
    ex.add("Mul", [args[0], args[0]], node.id)


def _add(ex: Exporter, node: Node, args: list[str]) -> None:
    ex.add("Add" if len(args) == 2 else "Sum", args, node.id)  # ONNX Sum: variadic and elementwise


def _mul(ex: Exporter, node: Node, args: list[str]) -> None:
    acc = args[0]
    for k, a in enumerate(args[1:-1], 1):
        acc = ex.add("Mul", [acc, a], f"{node.id}::{k}")
    ex.add("Mul", [acc, args[-1]], node.id)


def _reduce(op_type: str) -> ExportRule:
    def rule(ex: Exporter, node: Node, args: list[str]) -> None:
        axis = node.attrs.get("axis")
        if axis is not None:  # none: every axis (ONNX reduces all when axes is left out)
            args = [*args, ex.const(f"{node.id}::axes", np.atleast_1d(np.asarray(axis, np.int64)))]
        ex.add(op_type, args, node.id, keepdims=int(bool(node.attrs.get("keepdims"))))
    return rule


def _axis(op_type: str) -> ExportRule:
    def rule(ex: Exporter, node: Node, args: list[str]) -> None:
        ex.add(op_type, args, node.id, axis=int(node.attrs["axis"]))
    return rule


def _transpose(ex: Exporter, node: Node, args: list[str]) -> None:
    axes = node.attrs.get("axes")
    rank = len(ex.shape(node.args[0])) if isinstance(node.args[0], str) else np.ndim(node.args[0].value)
    ex.add("Transpose", args, node.id, perm=list(axes) if axes is not None else list(range(rank))[::-1])


def _reshape(ex: Exporter, node: Node, args: list[str]) -> None:
    """To the shape cg inferred (no -1 left); allowzero=1 where it has a 0, which ONNX would read as "copy"."""
    shape = ex.shape(node.id)
    target = ex.const(f"{node.id}::shape", np.asarray(shape, np.int64))
    ex.add("Reshape", [args[0], target], node.id, allowzero=int(0 in shape))


def _index(ex: Exporter, node: Node, args: list[str]) -> None:
    """v[..., i]: Gather on the last axis for a scalar i, GatherElements for one index per row."""
    v, i = node.args
    axis = (np.ndim(v.value) if isinstance(v, Const) else len(ex.shape(v))) - 1  # ONNX's reference evaluator
    if (np.ndim(i.value) if isinstance(i, Const) else len(ex.shape(i))) == 0:  # misreads GatherElements' -1
        ex.add("Gather", args, node.id, axis=axis)
        return
    last = ex.const(f"{node.id}::last", np.asarray([axis], np.int64))
    rows = ex.add("Unsqueeze", [args[1], last], f"{node.id}::rows")
    picked = ex.add("GatherElements", [args[0], rows], f"{node.id}::picked", axis=axis)
    ex.add("Squeeze", [picked, last], node.id)


def _arg_shape(ex: Exporter, node: Node, k: int) -> tuple[int, ...]:
    a = node.args[k]
    return tuple(np.shape(a.value)) if isinstance(a, Const) else ex.shape(a)


def _step(ex: Exporter, node: Node, args: list[str]) -> None:
    """[x > 0] as a float: Greater, then a Cast of its booleans to DOUBLE."""
    zero = ex.const(f"{node.id}::zero", np.asarray(0.0))
    above = ex.add("Greater", [args[0], zero], f"{node.id}::above")
    ex.add("Cast", [above], node.id, to=FLOAT)


def _broadcast_to(ex: Exporter, node: Node, args: list[str]) -> None:
    shape = ex.const(f"{node.id}::shape", np.asarray(ex.shape(node.id), np.int64))
    ex.add("Expand", [args[0], shape], node.id)


def _sum_to(ex: Exporter, node: Node, args: list[str]) -> None:
    """ReduceSum over the axes broadcasting would add (leading ones, and those where the target has
    1, kept), then a Reshape that drops the leading ones; one ReduceSum when only one kind goes."""
    have, want = _arg_shape(ex, node, 0), ex.shape(node.id)
    axes = summed_axes(have, want)
    if not axes:  # nothing to sum: the target is x's shape
        ex.add("Identity", args, node.id)
        return
    lead = len(have) - len(want)
    given = ex.const(f"{node.id}::axes", np.asarray(axes, np.int64))
    if lead == 0 or all(a < lead for a in axes):  # size-1 axes only (kept), or leading ones only (dropped)
        ex.add("ReduceSum", [args[0], given], node.id, keepdims=int(lead == 0))
        return
    summed = ex.add("ReduceSum", [args[0], given], f"{node.id}::summed", keepdims=1)
    target = ex.const(f"{node.id}::shape", np.asarray(want, np.int64))
    ex.add("Reshape", [summed, target], node.id)


def _onehot(ex: Exporter, node: Node, args: list[str]) -> None:
    """ONNX OneHot on the last axis, with off and on values 0.0 and 1.0 (it counts a negative i from
    the end too; cg refuses an i out of range where ONNX would give a row of zeros). The values are
    FLOAT, cast to DOUBLE after (0 and 1 are exact in both; onnxruntime has no OneHot that writes
    doubles). ONNX wants indices with at least one axis: a scalar i is made [1], the result [n] again."""
    n = int(node.attrs["n"])
    depth = ex.const(f"{node.id}::n", np.asarray(n, np.int64))
    values = ex.onnx.numpy_helper.from_array(np.asarray([0.0, 1.0], np.float32), f"{node.id}::values")
    ex.nodes.append(ex.helper.make_node("Constant", [], [values.name], name=values.name, value=values))
    i = args[0]
    first = ex.const(f"{node.id}::first", np.asarray([0], np.int64)) if not _arg_shape(ex, node, 0) else None
    if first is not None:
        i = ex.add("Unsqueeze", [i, first], f"{node.id}::row")
    picked = ex.add("OneHot", [i, depth, values.name], f"{node.id}::onehot", axis=-1)
    if first is not None:
        picked = ex.add("Squeeze", [picked, first], f"{node.id}::squeezed")
    ex.add("Cast", [picked], node.id, to=FLOAT)


EXPORT: dict[str, ExportRule] = {
    **{op: _same(t) for op, t in (("neg", "Neg"), ("exp", "Exp"), ("log", "Log"), ("sqrt", "Sqrt"), ("abs", "Abs"),
                                  ("sin", "Sin"), ("cos", "Cos"), ("tanh", "Tanh"), ("sigmoid", "Sigmoid"),
                                  ("relu", "Relu"), ("sub", "Sub"), ("div", "Div"), ("pow", "Pow"),
                                  ("matmul", "MatMul"), ("maximum", "Max"), ("minimum", "Min"), ("sign", "Sign"))},
    "square": _square,
    "add": _add,
    "mul": _mul,
    **{op: _reduce(t) for op, t in (("sum", "ReduceSum"), ("mean", "ReduceMean"), ("max", "ReduceMax"),
                                    ("logsumexp", "ReduceLogSumExp"))},
    "softmax": _axis("Softmax"),
    "log_softmax": _axis("LogSoftmax"),
    "transpose": _transpose,
    "reshape": _reshape,
    "index": _index,
    "step": _step,
    "broadcast_to": _broadcast_to,
    "sum_to": _sum_to,
    "onehot": _onehot,
}


def _args(ex: Exporter, node: Node) -> list[str]:
    """The ONNX names of a node's arguments: an id, or a Constant node made for a literal. ONNX
    does not promote types: an integer argument of a float op is cast (a literal made a float)."""
    floats = ex.graph.avals[node.id].dtype == "float"
    names = []
    for k, a in enumerate(node.args):
        keep_int = not floats or k in node.op.int_args  # index's i, onehot's i
        if isinstance(a, Const):
            names.append(ex.const(f"{node.id}::in{k}", a.value if keep_int else a.value.astype(np.float64)))
        elif ex.graph.avals[a].dtype == "int" and not keep_int:
            names.append(ex.add("Cast", [a], f"{node.id}::float{k}", to=FLOAT))
        else:
            names.append(a)
    return names


def _value_info(helper: Any, graph: Graph, name: str) -> Any:
    aval = graph.avals[name]
    return helper.make_tensor_value_info(name, FLOAT if aval.dtype == "float" else INT, list(aval.shape))


def _metadata(result: Result, key: str, precision: int) -> dict[str, str]:
    """A node's value and gradient as text, for Netron's sidebar."""
    def text(v: Any) -> str:
        return np.array2string(np.asarray(v), precision=precision, threshold=64, max_line_width=10**6)
    found = {"cg.value": text(result.values[key])}
    grad = result.grads.get(key)
    if grad is not None:
        found[f"cg.grad d{result.of}/d{key}"] = text(grad)
    return found


def to_model(graph: Graph, result: Result | None = None, precision: int = 6) -> Any:
    """The ModelProto, checked with the full ONNX checker (shape inference included)."""
    onnx = onnx_module("cg export")
    helper = onnx.helper
    ex = Exporter(graph, onnx)
    for node in graph.nodes:
        EXPORT[node.op.name](ex, node, _args(ex, node))
        made = ex.nodes[-1]
        made.doc_string = node.doc
        if result is not None:
            made.metadata_props.extend(onnx.StringStringEntryProto(key=k, value=v)
                                       for k, v in _metadata(result, node.id, precision).items())
    inits = [onnx.numpy_helper.from_array(np.asarray(i.default, np.float64 if i.aval.dtype == "float" else np.int64),
                                          i.name) for i in graph.inputs if i.default is not None]
    body = helper.make_graph(ex.nodes, graph.name, [_value_info(helper, graph, i.name) for i in graph.inputs],
                             [_value_info(helper, graph, o) for o in graph.outputs], initializer=inits,
                             doc_string=graph.doc)
    model = helper.make_model(body, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                              producer_name="cg", doc_string=graph.doc)
    onnx.checker.check_model(model, full_check=True)
    return model


def agree(model: Any, graph: Graph, result: Result) -> str:
    """Run the exported model in ONNX's reference evaluator at the run's inputs: its outputs must be
    cg's (a CgError naming the output that differs), said in a line for the user."""
    from onnx.reference import ReferenceEvaluator

    from cg.errors import CgError

    feeds = {i.name: np.asarray(result.values[i.name], np.float64 if i.aval.dtype == "float" else np.int64)
             for i in graph.inputs}
    worst = 0.0
    for name, got in zip(graph.outputs, ReferenceEvaluator(model).run(None, feeds)):
        want = np.asarray(result.values[name], np.float64)
        diff = float(np.max(np.abs(np.asarray(got, np.float64) - want), initial=0.0))
        if not diff <= 1e-12 * max(1.0, float(np.max(np.abs(want), initial=0.0))):
            raise CgError.one("CG714", f"the exported model's output {name!r} differs from cg's by {diff:.3g} in "
                              "ONNX's reference evaluator", file=graph.file, node=name)
        worst = max(worst, diff)
    return f"ONNX's reference evaluator gives cg's outputs (largest difference {worst:.2g})"
