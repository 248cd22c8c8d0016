"""How each ONNX op becomes cg nodes (`cg import`): one short rule per op type, in the table RULES.

A rule reads its node's inputs through the Importer (a cg id, or a constant folded at import time)
and emits cg nodes. Shapes are known: the import runs the model once with ONNX's reference
evaluator, so Reshape, Flatten, Squeeze and Unsqueeze become a cg `reshape` to the shape the model
really produced, and the shape arithmetic exporters write (Shape, Gather, Concat on shapes) folds
away into constants.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cg.errors import CgError
from cg.interop.names import Namer

Arg = str | int | float | list[Any]  # a cg id, or a constant as it is written in a graph file
LITERAL_MOST = 64  # a constant with more numbers than this becomes an input read from the sidecar


@dataclass
class Importer:
    """What an import has made so far: ONNX value name -> cg id, the folded constants, the cg nodes."""

    values: dict[str, np.ndarray]  # every ONNX value of the model at the import's sample point
    namer: Namer
    known: dict[str, str] = field(default_factory=dict)  # ONNX value name -> cg id
    consts: dict[str, np.ndarray] = field(default_factory=dict)  # values that do not depend on the inputs
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)  # cg id -> {op, in, attrs..., doc}
    big_consts: dict[str, np.ndarray] = field(default_factory=dict)  # cg id -> a constant made an input
    doc: str = ""  # the doc of the nodes being emitted: which ONNX node they come from
    file: str = ""  # the model's file, for messages

    def arg(self, name: str) -> Arg:
        """An ONNX value as a cg argument: the id of its node or input, or the constant itself."""
        if name in self.known:
            return self.known[name]
        value = self.consts[name]
        if value.size <= LITERAL_MOST:
            return value.tolist()  # type: ignore[no-any-return]
        key = self.namer.id(name)
        self.big_consts[key] = value
        self.known[name] = key
        return key

    def const(self, name: str, what: str, node: Any) -> np.ndarray:
        """A value the rule needs at import time (axes, a shape, an index): it must be a constant."""
        if name not in self.consts:
            raise unsupported(node, f"its {what} ({name!r}) is computed from the model's inputs; cg needs it "
                              "constant", self.file)
        return self.consts[name]

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(np.shape(self.values[name]))

    def emit(self, op: str, args: list[Arg], out: str | None = None, suffix: str = "", **attrs: Any) -> str:
        """A cg node; `out` is the ONNX value it computes (its id comes from that name), else an
        inner node of a rule gets an id from the node's output name and `suffix`."""
        key = self.namer.id(out) if out is not None else self.namer.fresh(suffix)
        self.nodes[key] = {"op": op, "in": args, **{k: v for k, v in attrs.items() if v is not None}, "doc": self.doc}
        if out is not None:
            self.known[out] = key
        return key

    def alias(self, out: str, name: str) -> None:
        """An op that changes nothing cg can see (Identity, Dropout at inference, a float Cast)."""
        if name in self.known:
            self.known[out] = self.known[name]
        else:
            self.consts[out] = self.consts[name]


Rule = Callable[[Importer, Any, dict[str, Any]], None]


def unsupported(node: Any, why: str, file: str = "") -> CgError:
    return CgError.one("CG712", f"ONNX node {node.name or '(unnamed)'!r} ({node.op_type}): {why}", file=file or None)


def _unary(op: str) -> Rule:
    def rule(imp: Importer, node: Any, attrs: dict[str, Any]) -> None:
        imp.emit(op, [imp.arg(node.input[0])], node.output[0])
    return rule


def _binary(op: str) -> Rule:
    def rule(imp: Importer, node: Any, attrs: dict[str, Any]) -> None:
        imp.emit(op, [imp.arg(node.input[0]), imp.arg(node.input[1])], node.output[0])
    return rule


def _variadic(op: str, pairwise: bool) -> Rule:
    """ONNX Sum, Max and Min take any number of inputs, elementwise (not reductions)."""
    def rule(imp: Importer, node: Any, attrs: dict[str, Any]) -> None:
        args, out = [imp.arg(n) for n in node.input], node.output[0]
        if len(args) == 1:
            imp.alias(out, node.input[0])
        elif not pairwise or len(args) == 2:
            imp.emit(op, args, out)
        else:  # maximum and minimum take two: a chain
            acc = args[0]
            for k, a in enumerate(args[1:-1], 1):
                acc = imp.emit(op, [acc, a], suffix=f"{out}_{k}")
            imp.emit(op, [acc, args[-1]], out)
    return rule


def _axis_op(op: str) -> Rule:
    def rule(imp: Importer, node: Any, attrs: dict[str, Any]) -> None:
        imp.emit(op, [imp.arg(node.input[0])], node.output[0], axis=int(attrs.get("axis", -1)))
    return rule


def _reduce(op: str) -> Rule:
    """Reduce*: axes from the attribute (before opset 18) or the second input; keepdims defaults to 1."""
    def rule(imp: Importer, node: Any, attrs: dict[str, Any]) -> None:
        axes: list[int] | None = [int(a) for a in attrs["axes"]] if "axes" in attrs else None
        if len(node.input) > 1 and node.input[1]:
            axes = [int(a) for a in np.ravel(imp.const(node.input[1], "axes", node))]
        if not axes and attrs.get("noop_with_empty_axes", 0):
            imp.alias(node.output[0], node.input[0])
            return
        keep, rank = bool(attrs.get("keepdims", 1)), len(imp.shape(node.input[0]))
        if op == "logsumexp" and axes and len(axes) > 1:  # cg's takes one axis: one after another
            if sorted(a % rank for a in axes) == list(range(rank)):
                axes = None
            else:
                x = imp.arg(node.input[0])
                for a in sorted((a % rank for a in axes), reverse=True):
                    x = imp.emit(op, [x], suffix=f"{node.output[0]}_{a}", axis=a, keepdims=True)
                imp.emit("reshape", [x], node.output[0], shape=list(imp.shape(node.output[0])))
                return
        axis: int | list[int] | None = None if not axes else axes[0] if len(axes) == 1 else axes
        imp.emit(op, [imp.arg(node.input[0])], node.output[0], axis=axis, keepdims=keep)
    return rule


def _reshape(imp: Importer, node: Any, attrs: dict[str, Any]) -> None:
    """Reshape, Flatten, Squeeze, Unsqueeze: the shape the model produced (Reshape's 0 already read)."""
    out = node.output[0]
    if imp.shape(out) == imp.shape(node.input[0]):
        imp.alias(out, node.input[0])
    else:
        imp.emit("reshape", [imp.arg(node.input[0])], out, shape=list(imp.shape(out)))


def _transpose(imp: Importer, node: Any, attrs: dict[str, Any]) -> None:
    perm = attrs.get("perm")
    imp.emit("transpose", [imp.arg(node.input[0])], node.output[0], axes=None if perm is None else list(perm))


def _same(imp: Importer, node: Any, attrs: dict[str, Any]) -> None:
    """Identity; Dropout at inference (its mask output unused); a Cast between float types."""
    if node.op_type == "Dropout" and len(node.input) > 2 and node.input[2] and imp.consts.get(node.input[2], 0):
        raise unsupported(node, "dropout in training mode changes values at random", imp.file)
    if node.op_type == "Cast":
        was, now = np.asarray(imp.values[node.input[0]]).dtype.kind, np.asarray(imp.values[node.output[0]]).dtype.kind
        # Booleans to floats changes nothing either: cg holds a comparison's (Greater's) as 1.0 and 0.0.
        if was != now and not (was in "iu" and now in "iu") and not (was == "b" and now == "f"):
            raise unsupported(node, f"a cast from {np.asarray(imp.values[node.input[0]]).dtype} to "
                              f"{np.asarray(imp.values[node.output[0]]).dtype} changes values; cg computes in float64",
                              imp.file)
    imp.alias(node.output[0], node.input[0])


def _gemm(imp: Importer, node: Any, attrs: dict[str, Any]) -> None:
    """Y = alpha A' B' + beta C (PyTorch's linear layers: transB=1): transpose, matmul, scale, add."""
    out = node.output[0]
    a, b = imp.arg(node.input[0]), imp.arg(node.input[1])
    if attrs.get("transA", 0):
        a = imp.emit("transpose", [a], suffix=f"{out}_At")
    if attrs.get("transB", 0):
        b = imp.emit("transpose", [b], suffix=f"{out}_Bt")
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    has_c = len(node.input) > 2 and bool(node.input[2])
    if not has_c and alpha == 1.0:
        imp.emit("matmul", [a, b], out)
        return
    ab = imp.emit("matmul", [a, b], suffix=f"{out}_AB")
    if alpha != 1.0:
        ab = imp.emit("mul", [alpha, ab], out if not has_c else None, suffix=f"{out}_alphaAB")
    if has_c:
        c = imp.arg(node.input[2])
        if beta != 1.0:
            c = imp.emit("mul", [beta, c], suffix=f"{out}_betaC")
        imp.emit("add", [ab, c], out)


def _gather(imp: Importer, node: Any, attrs: dict[str, Any]) -> None:
    """Gather of one entry along the last axis: cg's `index` with a scalar index."""
    rank = len(imp.shape(node.input[0]))
    if int(attrs.get("axis", 0)) % max(rank, 1) != rank - 1 or imp.shape(node.input[1]) != ():
        raise unsupported(node, "cg's index picks one entry along the last axis (a scalar index on the last axis)",
                          imp.file)
    imp.emit("index", [imp.arg(node.input[0]), imp.arg(node.input[1])], node.output[0])


def _gather_elements(imp: Importer, node: Any, attrs: dict[str, Any]) -> None:
    """GatherElements along the last axis with one index per row: cg's `index`, then back to [..., 1]."""
    data, out = imp.shape(node.input[0]), node.output[0]
    if int(attrs.get("axis", 0)) % max(len(data), 1) != len(data) - 1 or imp.shape(node.input[1]) != (*data[:-1], 1):
        raise unsupported(node, "cg's index picks one entry per row along the last axis (indices [..., 1])",
                          imp.file)
    i = imp.arg(node.input[1])
    rows = list(data[:-1])
    if isinstance(i, str):
        i = imp.emit("reshape", [i], suffix=f"{out}_i", shape=rows)
    else:
        i = np.reshape(np.asarray(i), rows).tolist()
    picked = imp.emit("index", [imp.arg(node.input[0]), i], suffix=f"{out}_picked")
    imp.emit("reshape", [picked], out, shape=list(imp.shape(out)))


def _expand(imp: Importer, node: Any, attrs: dict[str, Any]) -> None:
    """Expand broadcasts both ways (the result has the broadcast of both shapes): cg's broadcast_to
    to the shape the model produced, from a constant target."""
    imp.const(node.input[1], "shape", node)
    out = node.output[0]
    if imp.shape(out) == imp.shape(node.input[0]):
        imp.alias(out, node.input[0])
    else:
        imp.emit("broadcast_to", [imp.arg(node.input[0])], out, shape=list(imp.shape(out)))


def _greater(imp: Importer, node: Any, attrs: dict[str, Any]) -> None:
    """Greater(a, b) of floats: cg holds its booleans as 1.0 and 0.0, step(a - b) (exact: a float
    a - b is > 0 exactly when a > b), or step(a) when b is 0. Only a Cast (to a float) or an Identity
    can use them in cg; the other ops that take booleans are not imported."""
    a, b, out = node.input[0], node.input[1], node.output[0]
    if np.asarray(imp.values[a]).dtype.kind != "f":
        raise unsupported(node, "cg imports comparisons of floats (a comparison of integers could overflow in a - b)")
    if b in imp.consts and not np.any(imp.consts[b]) and imp.shape(out) == imp.shape(a):
        imp.emit("step", [imp.arg(a)], out)
        return
    difference = imp.emit("sub", [imp.arg(a), imp.arg(b)], suffix=f"{out}_difference")
    imp.emit("step", [difference], out)


def _onehot(imp: Importer, node: Any, attrs: dict[str, Any]) -> None:
    """OneHot of integer indices on the last axis with off and on values 0 and 1: cg's onehot. (ONNX
    gives a row of zeros for an index out of range, where cg's run stops with an error.)"""
    i, out = node.input[0], node.output[0]
    depth = np.ravel(imp.const(node.input[1], "depth", node))
    values = np.ravel(imp.const(node.input[2], "values", node)).tolist()
    if int(attrs.get("axis", -1)) not in (-1, len(imp.shape(i))):
        raise unsupported(node, "cg's onehot adds a last axis (axis -1)")
    if values != [0, 1]:
        raise unsupported(node, f"cg's onehot writes 0 and 1 (its off and on values), not {values}")
    if np.asarray(imp.values[i]).dtype.kind not in "iu":
        raise unsupported(node, "cg's onehot takes integer indices")
    if int(depth[0]) < 1:
        raise unsupported(node, f"its depth is {int(depth[0])}; cg's onehot needs at least 1")
    imp.emit("onehot", [imp.arg(i)], out, n=int(depth[0]))


RULES: dict[str, Rule] = {
    **{t: _unary(op) for t, op in (("Neg", "neg"), ("Exp", "exp"), ("Log", "log"), ("Sqrt", "sqrt"), ("Abs", "abs"),
                                   ("Sin", "sin"), ("Cos", "cos"), ("Tanh", "tanh"), ("Sigmoid", "sigmoid"),
                                   ("Relu", "relu"), ("Sign", "sign"))},
    **{t: _binary(op) for t, op in (("Add", "add"), ("Sub", "sub"), ("Mul", "mul"), ("Div", "div"), ("Pow", "pow"),
                                    ("MatMul", "matmul"))},
    "Sum": _variadic("add", pairwise=False),
    "Max": _variadic("maximum", pairwise=True),
    "Min": _variadic("minimum", pairwise=True),
    "Softmax": _axis_op("softmax"),
    "LogSoftmax": _axis_op("log_softmax"),
    **{t: _reduce(op) for t, op in (("ReduceSum", "sum"), ("ReduceMean", "mean"), ("ReduceMax", "max"),
                                    ("ReduceLogSumExp", "logsumexp"))},
    **dict.fromkeys(("Reshape", "Flatten", "Squeeze", "Unsqueeze"), _reshape),
    "Transpose": _transpose,
    **dict.fromkeys(("Identity", "Dropout", "Cast"), _same),
    "Gemm": _gemm,
    "Gather": _gather,
    "GatherElements": _gather_elements,
    "Expand": _expand,
    "Greater": _greater,
    "OneHot": _onehot,
}
# Ops that fold away when their inputs are constants (shape arithmetic), and only then.
FOLDABLE = frozenset({"Constant", "Shape", "Concat", "Slice", "ConstantOfShape", "Range", "Equal", "Where", "Size",
                      *RULES})
