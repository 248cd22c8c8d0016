"""The softmax family (softmax, log_softmax, logsumexp), index and onehot: the ops of classifiers. Their
maths is in cg/ops/kernels.py, called by the numeric rules and written out by the code rules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

import cg.ops.kernels as k
from cg.ops.base import Array, Attr, Batching, Case, Op, OpFailure, Shape, ShapeMismatch, Tangent
from cg.ops.code import CodeRule, Site
from cg.ops.formula import Formula, Formulas
from cg.ops.tensor import AXIS, KEEPDIMS, _axes, _reduced_shape, batch_axis

# ---- softmax family -------------------------------------------------------------------


def _axis_shape(shapes: Sequence[Shape], axis: int = -1, keepdims: bool | None = None) -> Shape:
    shape = shapes[0]
    if len(shape) == 0:
        raise ShapeMismatch("needs an input with at least one dimension")
    if shape[_axes(axis, len(shape))[0]] == 0:
        raise ShapeMismatch(f"input of shape {list(shape)} has no entries along axis {axis}")
    if keepdims is None:  # softmax, log_softmax: same shape
        return shape
    return _reduced_shape(shape, axis, keepdims)


def _sum(v: Array, axis: int) -> Array:
    return v.sum(axis=axis, keepdims=True)


SOFTMAX_CASES = (Case(((4,),)), Case(((2, 3),)), Case(((3, 2),), {"axis": 0}))
AXIS_ATTRS = {"axis": AXIS}
LSE_ATTRS = {"axis": AXIS, "keepdims": KEEPDIMS}


def _tangent_or_zero(f: Any) -> Any:
    def jvp(ts: Sequence[Tangent], y: Array, xs: Sequence[Array], **attrs: Any) -> Array:
        return np.zeros_like(y) if ts[0] is None else f(ts[0], y, xs[0], **attrs)

    return jvp


def _axis(site: Site) -> Any:
    return site.attrs["axis"]


SOFTMAX = Op(
    "softmax",
    "exp(x) / sum(exp(x)) along axis, computed stably",
    (1, 1),
    k.softmax,
    lambda g, y, xs, axis=-1: [k.softmax_grad(g, y, axis)],
    _tangent_or_zero(lambda t, y, x, axis=-1: k.softmax_grad(t, y, axis)),  # its Jacobian is symmetric
    _axis_shape,
    SOFTMAX_CASES,
    attrs=AXIS_ATTRS,
    code=CodeRule(lambda s: s.call(k.softmax, s.args[0], _axis(s)),
                  lambda s: [s.call(k.softmax_grad, s.g, s.y, _axis(s))]),
    formulas=Formulas((Formula("y * (g - inner(g, y))", "vjp"),)),  # (diag(y) - y yᵀ) g
    batch=batch_axis,
    reads=frozenset({"y"}),
)
LOG_SOFTMAX = Op(
    "log_softmax",
    "x - logsumexp(x) along axis, computed stably",
    (1, 1),
    k.log_softmax,
    lambda g, y, xs, axis=-1: [k.log_softmax_grad(g, y, axis)],
    _tangent_or_zero(lambda t, y, x, axis=-1: t - _sum(np.exp(y) * t, axis)),
    _axis_shape,
    SOFTMAX_CASES,
    attrs=AXIS_ATTRS,
    code=CodeRule(lambda s: s.call(k.log_softmax, s.args[0], _axis(s)),
                  lambda s: [s.call(k.log_softmax_grad, s.g, s.y, _axis(s))]),
    formulas=Formulas((Formula("g - exp(y) * total(g)", "vjp"),)),
    batch=batch_axis,
    reads=frozenset({"y"}),
)
LOGSUMEXP = Op(
    "logsumexp",
    "log(sum(exp(x))) along axis, computed stably",
    (1, 1),
    lambda x, axis=-1, keepdims=False: k.logsumexp(x, axis, keepdims),
    lambda g, y, xs, axis=-1, keepdims=False: [k.logsumexp_grad(g, xs[0], axis, keepdims)],
    _tangent_or_zero(
        lambda t, y, x, axis=-1, keepdims=False: np.sum(t * k.softmax(x, axis), axis=axis, keepdims=keepdims)
    ),
    lambda shapes, axis=-1, keepdims=False: _axis_shape(shapes, axis, keepdims),
    (*SOFTMAX_CASES, Case(((2, 3),), {"keepdims": True})),
    attrs=LSE_ATTRS,
    code=CodeRule(
        lambda s: s.call(k.logsumexp, s.args[0], _axis(s), keepdims=bool(s.attrs["keepdims"])),
        lambda s: [s.call(k.logsumexp_grad, s.g, s.args[0], _axis(s), bool(s.attrs["keepdims"]))],
    ),
    formulas=Formulas((Formula("expand(g) * softmax(x)", "vjp"),)),
    batch=batch_axis,
    reads=frozenset({0}),
)

# ---- index ----------------------------------------------------------------------------


def _index_shape(shapes: Sequence[Shape]) -> Shape:
    v, i = shapes
    if len(v) == 0 or v[-1] == 0:
        raise ShapeMismatch(f"index of {list(v)}: needs a value with entries along its last axis")
    if i != () and i != v[:-1]:
        raise ShapeMismatch(
            f"index of {list(v)} by {list(i)}: the index must be a scalar or have shape {list(v[:-1])}"
            " (one entry per row)"
        )
    return v[:-1]


def _index(v: Array, i: Array) -> Array:
    n = v.shape[-1]
    if not getattr(i, "ndim", 0):  # one index (the classifier's label): plain int checks
        j = int(i)
        if not -n <= j < n:
            raise OpFailure(f"index {j} is out of range for a last axis of size {n}")
        return k.pick(v, j)
    if np.any((i < -n) | (i >= n)):
        bad = np.asarray(i)[(i < -n) | (i >= n)].flat[0]
        raise OpFailure(f"index {bad} is out of range for a last axis of size {n}")
    return k.pick_rows(v, np.asarray(i))


def _index_code(site: Site) -> str:
    v, i = site.args
    return site.call(k.pick if site.shapes[1] == () else k.pick_rows, v, i)


def _index_log_softmax_vjp(g: Array, y: Array, xs: Sequence[Array]) -> list[Array]:
    return [k.log_softmax_index_grad(g, xs[0], xs[1])]


def _fuse_log_softmax(attrs: Mapping[str, Any], ndim: int) -> Any:
    """index(log_softmax(x), i) as one VJP, when the softmax is along the last axis (the one index picks in)."""
    return _index_log_softmax_vjp if attrs.get("axis", -1) % ndim == ndim - 1 else None


def _batch_index(rows: Sequence[Shape], attrs: Mapping[str, Any]) -> Batching:
    """i (one entry per row of v, or one for all) becomes exactly v's row shape minus its last axis
    (padded, then broadcast): batched, v[..., i] then picks one entry per row, in each row of the batch."""
    v, i = rows
    return Batching((None, None if i == v[:-1] else v[:-1]), dict(attrs), loose=False)


INDEX = Op(
    "index",
    "v[..., i]: picks entry i along the last axis (one per row when i has one entry per row)",
    (2, 2),
    _index,
    lambda g, y, xs: [k.index_grad(g, xs[1], xs[0].shape), None],
    lambda ts, y, xs: np.zeros_like(y) if ts[0] is None else _index(ts[0], xs[1]),
    _index_shape,
    (Case(((4,), ())), Case(((3, 5), (3,))), Case(((2, 3, 4), ())), Case(((2, 3, 4), (2, 3)))),
    domain=("real", "index"),
    int_args=frozenset({1}),
    keeps_int=True,
    code=CodeRule(_index_code, lambda s: [s.call(k.index_grad, s.g, s.args[1], s.shapes[0]), None]),
    formulas=Formulas((Formula("col(g) * onehot(i)", "vjp"), None), ("v", "i")),  # i: an integer, no derivative
    batch=_batch_index,
    reads=frozenset({1}),
    fuses={"log_softmax": _fuse_log_softmax},
)


# ---- onehot ---------------------------------------------------------------------------


def _onehot(i: Array, n: int) -> Array:
    try:
        return k.onehot(i, n)
    except IndexError as e:  # the kernel's own check, so that compiled code refuses it too
        raise OpFailure(str(e)) from None


def _onehot_shape(shapes: Sequence[Shape], n: int) -> Shape:
    if n < 1:
        raise ShapeMismatch(f"onehot: n = {n}; the new last axis needs at least 1 entry")
    return (*shapes[0], n)


ONEHOT = Op(
    "onehot",
    "1.0 at entry i of a new last axis of size n, 0.0 elsewhere (i: integers of any shape; a negative i counts "
    "from the end, as in index; one outside -n..n-1 is an error)",
    (1, 1),
    _onehot,
    lambda g, y, xs, n: [None],  # i is an integer: no gradient
    lambda ts, y, xs, n: np.zeros_like(y),
    _onehot_shape,
    (Case(((),), {"n": 3}), Case(((4,),), {"n": 3}), Case(((2, 3),), {"n": 5}), Case(((2,),), {"n": 1})),
    attrs={"n": Attr({"type": "integer", "minimum": 1}, "the number of classes: the size of the new last axis",
                     required=True)},
    domain=("class",),
    int_args=frozenset({0}),
    code=CodeRule(lambda s: s.call(k.onehot, s.args[0], int(s.attrs["n"])), lambda s: [None]),
    formulas=Formulas((None,), ("i",)),  # i: an integer, no derivative
    batch=lambda rows, attrs: Batching((None,), dict(attrs), loose=False),  # a new last axis: nothing moves
    reads=frozenset(),
)


NN: tuple[Op, ...] = (SOFTMAX, LOG_SOFTMAX, LOGSUMEXP, INDEX, ONEHOT)
