"""Each op's VJP written in cg ops: the graph form, derived from the op's formula (cg/ops/formula.py).

An op's formula is its local derivative written once; the formula module evaluates it (checked
against the numeric VJP by tests/ops/test_formulas.py) and prints it. This module reads the same
formula a third way: as cg nodes that compute the cotangent, so that the backward pass can be
written out as a graph (`cg grad`, cg/eval/gradgraph.py) and differentiated again. Because all
three come from one source, the graph form cannot disagree with the formula, and
tests/ops/test_graphform.py checks it against the numeric VJP over the registry.

A "local" formula ∂y/∂xᵢ becomes g · formula, summed back to xᵢ's shape where it was broadcast
(`sum_to`); a "vjp" formula is the cotangent itself. Comparisons become `step`: [a > b] is
step(a − b), [a = b] is 1 − step(a − b) − step(b − a). Shapes are static in cg, so reductions,
transposes and reshapes are written with concrete shapes.

Formula trees are a few nodes deep: walking them recursively costs nothing that grows with a graph.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cg.ops.base import Op, Shape

Literal = float | int | list[Any]


@dataclass(frozen=True)
class Val:
    """A value of the graph being written: a name (an input or node), or a constant."""

    ref: str | None  # the name; None for a constant
    shape: Shape
    const: np.ndarray | None = None

    @property
    def arg(self) -> str | Literal:
        """As a graph file writes it in `in`."""
        if self.ref is not None:
            return self.ref
        assert self.const is not None
        value: Literal = self.const.tolist()
        return value

    @property
    def scalar(self) -> float | None:
        """The number, for a scalar constant; else None."""
        return float(self.const) if self.const is not None and self.const.ndim == 0 else None

    def is_const(self, number: float | None = None) -> bool:
        if self.const is None:
            return False
        return number is None or bool(np.all(self.const == number))


def const(value: Any) -> Val:
    array = np.asarray(value, dtype=np.float64 if np.asarray(value).dtype.kind == "f" else None)
    return Val(None, tuple(array.shape), array)


# emit(op name, arguments, attributes) -> the name of the new node; shape_of(op name, shapes, attrs).
Emit = Callable[[str, list[Any], dict[str, Any]], str]


class Writer:
    """Writes nodes through `emit`, knowing each one's shape from the registry's shape rules, and
    folding what is constant (1 - 1, 2 * 3) so that the written graph stays readable."""

    def __init__(self, registry: Mapping[str, Op], emit: Emit) -> None:
        self.registry, self.emit = registry, emit
        self.local: Val | None = None  # the last local derivative ∂y/∂xᵢ written, for its writer to name

    def op(self, name: str, *args: Val, **attrs: Any) -> Val:
        op = self.registry[name]
        full = {k: a.default for k, a in op.attrs.items()} | attrs
        shape = op.shape([a.shape for a in args], **full)
        if all(a.const is not None for a in args):
            return const(op.forward(*(a.const for a in args), **full))
        return Val(self.emit(name, [a.arg for a in args], attrs), tuple(shape))

    # The arithmetic of formulas, with the identities that keep the graph short.
    def add(self, a: Val, b: Val) -> Val:
        return b if a.is_const(0) and a.shape == b.shape else a if b.is_const(0) and a.shape == b.shape else \
            self.op("add", a, b)

    def sub(self, a: Val, b: Val) -> Val:
        return self.neg(b) if a.is_const(0) and a.shape == b.shape else a if b.is_const(0) and a.shape == b.shape \
            else self.op("sub", a, b)

    def mul(self, a: Val, b: Val) -> Val:
        for one, other in ((a, b), (b, a)):
            if one.scalar == 1.0:
                return other
            if one.scalar == -1.0:
                return self.neg(other)
        return self.op("mul", a, b)

    def neg(self, a: Val) -> Val:
        return self.op("neg", a)

    def sum_to(self, v: Val, shape: Shape) -> Val:
        return v if v.shape == tuple(shape) else self.op("sum_to", v, shape=list(shape))

    def reshape(self, v: Val, shape: Shape) -> Val:
        return v if v.shape == tuple(shape) else self.op("reshape", v, shape=list(shape))


@dataclass
class Site:
    """What a formula sees at one node: its arguments, output and cotangent, and its attributes."""

    op: Op
    i: int  # the argument whose cotangent is written
    args: Sequence[Val]
    y: Val
    g: Val
    attrs: dict[str, Any]


def vjp_graph(w: Writer, site: Site) -> Val | None:
    """The cotangent of argument `site.i`, written as nodes; None where it has none (an integer)."""
    formulas = site.op.formulas
    assert formulas is not None, f"op {site.op.name} has no formula"
    rule = formulas.rule(site.i)
    if rule is None:
        return None
    w.local = None
    env = _env(w, site)
    if formulas.matrices:
        return _matrices(w, site, env, rule.tree)
    value = _walk(w, rule.tree, env, site)
    x = site.args[site.i]
    if rule.kind == "vjp":
        return w.sum_to(value, x.shape)
    w.local = value
    # g times the local derivative, summed over broadcast axes. A constant derivative (add's 1, sub's
    # -1) is still a product node: "dz_d = dz_e · 1" is the chain rule's step, as the notes write it.
    product = w.op("mul", site.g, value) if value.scalar is not None else w.mul(site.g, value)
    return w.sum_to(product, x.shape)


def _env(w: Writer, site: Site) -> dict[str, Val]:
    names = site.op.formulas.names if site.op.formulas is not None else ("x",)
    env = dict(zip(names, site.args))
    env.update(x=site.args[site.i], y=site.y, g=site.g)
    if len(site.args) > 1:
        rest = [a for k, a in enumerate(site.args) if k != site.i]
        env["others"] = rest[0] if len(rest) == 1 else w.op("mul", *rest)
    size_x, size_y = math.prod(site.args[site.i].shape), math.prod(site.y.shape)
    env["n"] = const(float(max(size_x // max(size_y, 1), 1)))
    return env


def _matrices(w: Writer, site: Site, env: dict[str, Val], tree: ast.expr) -> Val:
    """matmul: numpy makes a 1-D operand a row (first) or column (second) matrix, and g with it;
    only the operands the formula names are reshaped (dA uses B, dB uses A)."""
    a, b = site.args
    if len(a.shape) == 1 and len(b.shape) == 1:  # a dot product: each cotangent is g times the other vector
        return w.mul(site.g, b if site.i == 0 else a)
    g = site.g
    g_shape = g.shape
    if len(a.shape) == 1:
        g_shape = (*g_shape[:-1], 1, g_shape[-1]) if len(b.shape) >= 2 else (1, *g_shape)
    if len(b.shape) == 1:
        g_shape = (*g_shape, 1)
    names = site.op.formulas.names if site.op.formulas is not None else ("A", "B")
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    env = {**env, "g": w.reshape(g, g_shape)}
    if names[0] in used:
        env[names[0]] = w.reshape(a, (1, *a.shape)) if len(a.shape) == 1 else a
    if names[1] in used:
        env[names[1]] = w.reshape(b, (*b.shape, 1)) if len(b.shape) == 1 else b
    value = _walk(w, tree, env, site)
    x = site.args[site.i]
    if len(x.shape) == 1:  # back from the row or column, then over the batch axes
        value = w.reshape(value, (*value.shape[:-2], value.shape[-1] if site.i == 0 else value.shape[-2]))
    return w.sum_to(value, x.shape)


BINARY = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow", ast.MatMult: "matmul"}


def _walk(w: Writer, node: ast.expr, env: dict[str, Val], site: Site) -> Val:
    if isinstance(node, ast.Constant):
        return const(node.value)
    if isinstance(node, ast.Name):
        return env[node.id]
    if isinstance(node, ast.UnaryOp):
        return w.neg(_walk(w, node.operand, env, site))
    if isinstance(node, ast.BinOp):
        a, b = _walk(w, node.left, env, site), _walk(w, node.right, env, site)
        kind = BINARY[type(node.op)]
        if kind == "add":
            return w.add(a, b)
        if kind == "sub":
            return w.sub(a, b)
        if kind == "mul":
            return w.mul(a, b)
        if kind == "pow" and b.scalar in (1.0, 2.0):
            return a if b.scalar == 1.0 else w.op("square", a)  # a ** (2 - 1) is a
        return w.op(kind, a, b)
    if isinstance(node, ast.Compare):
        return _compare(w, type(node.ops[0]), _walk(w, node.left, env, site), _walk(w, node.comparators[0], env, site))
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)  # the formula module's allow-list
    return CALLS[node.func.id](w, [_walk(w, a, env, site) for a in node.args], site)


def _compare(w: Writer, kind: type, a: Val, b: Val) -> Val:
    """Iverson brackets as steps: [a > b] = step(a − b), [a = b] = 1 − step(a − b) − step(b − a)."""
    if kind is ast.Gt:
        return w.op("step", w.sub(a, b))
    if kind is ast.Lt:
        return w.op("step", w.sub(b, a))
    return w.sub(w.sub(const(1.0), w.op("step", w.sub(a, b))), w.op("step", w.sub(b, a)))


def _reduced_axes(site: Site) -> tuple[int, ...]:
    rank = len(site.args[0].shape)
    axis = site.attrs.get("axis")
    if axis is None:
        return tuple(range(rank))
    return tuple(sorted(a % rank for a in ([axis] if isinstance(axis, int) else axis)))


def _expand(w: Writer, v: Val, site: Site) -> Val:
    """A reduction's cotangent with the reduced axes put back, broadcast to x's shape."""
    x = site.args[0]
    if not site.attrs.get("keepdims"):
        axes = _reduced_axes(site)
        v = w.reshape(v, tuple(1 if k in axes else n for k, n in enumerate(x.shape)))
    return v if v.shape == x.shape else w.op("broadcast_to", v, shape=list(x.shape))


def _argmax(w: Writer, site: Site) -> Val:
    """1 at the maxima of x along the reduced axes, shared among ties."""
    x = site.args[0]
    mask = _compare(w, ast.Eq, x, _expand(w, site.y, site))
    count = w.op("sum", mask, axis=list(_reduced_axes(site)), keepdims=True)
    return w.op("div", mask, count if count.shape == x.shape else w.op("broadcast_to", count, shape=list(x.shape)))


def _transpose_last(w: Writer, v: Val) -> Val:
    perm = list(range(len(v.shape)))
    perm[-2:] = perm[-1], perm[-2]
    return w.op("transpose", v, axes=perm)


def _unpermute(w: Writer, v: Val, site: Site) -> Val:
    axes = site.attrs.get("axes")
    rank = len(v.shape)
    perm = list(reversed(range(rank))) if axes is None else [a % rank for a in axes]
    return w.op("transpose", v, axes=[int(k) for k in np.argsort(perm)])


def _axis(site: Site) -> int:
    return int(site.attrs["axis"])


def _elementwise(name: str) -> Callable[[Writer, list[Val], Site], Val]:
    return lambda w, a, s: w.op(name, a[0])


CALLS: dict[str, Callable[[Writer, list[Val], Site], Val]] = {
    **{f: _elementwise(f) for f in ("exp", "log", "sqrt", "sin", "cos", "sign")},
    "T": lambda w, a, s: _transpose_last(w, a[0]),
    "expand": lambda w, a, s: _expand(w, a[0], s),
    "argmax": lambda w, a, s: _argmax(w, s),
    "total": lambda w, a, s: w.op("sum", a[0], axis=_axis(s), keepdims=True),
    "inner": lambda w, a, s: w.op("sum", w.mul(a[0], a[1]), axis=_axis(s), keepdims=True),
    "softmax": lambda w, a, s: w.op("softmax", a[0], axis=_axis(s)),
    "onehot": lambda w, a, s: w.op("onehot", a[0], n=s.args[0].shape[-1]),
    "col": lambda w, a, s: w.reshape(a[0], (*a[0].shape, 1)),
    "unpermute": lambda w, a, s: _unpermute(w, a[0], s),
    "unshape": lambda w, a, s: w.reshape(a[0], s.args[0].shape),
    "unbroadcast": lambda w, a, s: w.sum_to(a[0], s.args[0].shape),
    "spread": lambda w, a, s: a[0] if a[0].shape == s.args[0].shape else w.op("broadcast_to", a[0],
                                                                              shape=list(s.args[0].shape)),
}
