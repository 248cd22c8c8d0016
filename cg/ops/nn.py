"""The softmax family (softmax, log_softmax, logsumexp) and index: the ops of classifiers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from cg.ops.base import Array, Case, Op, OpFailure, Shape, ShapeMismatch, Tangent
from cg.ops.code import CodeRule, Helper, Site
from cg.ops.tensor import AXIS, KEEPDIMS, _axes, _expand, _reduced_shape

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


def _max(x: Array, axis: int) -> Array:
    """The max along axis (kept), to subtract first so that logits of 1000 do not overflow;
    an infinite or NaN max is replaced by 0, so that inf - inf does not make a NaN where the
    answer is inf."""
    m = x.max(axis=axis, keepdims=True)
    if not (math.isfinite(m.item()) if m.size == 1 else np.isfinite(m).all()):
        m = np.where(np.isfinite(m), m, 0.0)
    return m


def _logsumexp(x: Array, axis: int, keepdims: bool = True) -> Array:
    m = _max(x, axis)
    out = m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))
    return out if keepdims else out.squeeze(axis)


def _log_softmax(x: Array, axis: int = -1) -> Array:
    s = x - _max(x, axis)  # x - logsumexp(x), with the max subtracted once
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def _softmax(x: Array, axis: int = -1) -> Array:
    return np.exp(x - _logsumexp(x, axis))


def _sum(v: Array, axis: int) -> Array:
    return v.sum(axis=axis, keepdims=True)


SOFTMAX_CASES = (Case(((4,),)), Case(((2, 3),)), Case(((3, 2),), {"axis": 0}))
AXIS_ATTRS = {"axis": AXIS}
LSE_ATTRS = {"axis": AXIS, "keepdims": KEEPDIMS}


def _tangent_or_zero(f: Any) -> Any:
    def jvp(ts: Sequence[Tangent], y: Array, xs: Sequence[Array], **attrs: Any) -> Array:
        return np.zeros_like(y) if ts[0] is None else f(ts[0], y, xs[0], **attrs)

    return jvp


LOGSUMEXP_HELPER = Helper("logsumexp", '''def logsumexp(x, axis, keepdims=True):
    """log(sum(exp(x))) along axis, computed stably: the max is subtracted first."""
    m = x.max(axis=axis, keepdims=True)
    if not np.isfinite(m).all():
        m = np.where(np.isfinite(m), m, 0.0)
    out = m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))
    return out if keepdims else out.squeeze(axis)
''')
SOFTMAX_HELPER = Helper("softmax", '''def softmax(x, axis):
    """exp(x) / sum(exp(x)) along axis, computed stably."""
    return np.exp(x - logsumexp(x, axis))
''')


def _lse_grad(site: Site) -> str:
    axis, keep = site.attrs.get("axis", -1), site.attrs.get("keepdims")
    g = site.g if keep else f"np.expand_dims({site.g}, {axis % len(site.shapes[0])})"
    return f"{g} * softmax({site.args[0]}, {axis})"


SOFTMAX = Op(
    "softmax",
    "exp(x) / sum(exp(x)) along axis, computed stably",
    (1, 1),
    _softmax,
    lambda g, y, xs, axis=-1: [y * (g - _sum(g * y, axis))],
    _tangent_or_zero(lambda t, y, x, axis=-1: y * (t - _sum(t * y, axis))),
    _axis_shape,
    SOFTMAX_CASES,
    attrs=AXIS_ATTRS,
    code=CodeRule(
        lambda s: f"softmax({s.args[0]}, {s.attrs['axis']})",
        lambda s: [f"{s.y} * ({s.g} - np.sum({s.g} * {s.y}, axis={s.attrs['axis']}, keepdims=True))"],
        helpers=(LOGSUMEXP_HELPER, SOFTMAX_HELPER),
    ),
)
LOG_SOFTMAX = Op(
    "log_softmax",
    "x - logsumexp(x) along axis, computed stably",
    (1, 1),
    _log_softmax,
    lambda g, y, xs, axis=-1: [g - np.exp(y) * _sum(g, axis)],
    _tangent_or_zero(lambda t, y, x, axis=-1: t - _sum(np.exp(y) * t, axis)),
    _axis_shape,
    SOFTMAX_CASES,
    attrs=AXIS_ATTRS,
    code=CodeRule(
        lambda s: f"{s.args[0]} - logsumexp({s.args[0]}, {s.attrs['axis']})",
        lambda s: [f"{s.g} - np.exp({s.y}) * np.sum({s.g}, axis={s.attrs['axis']}, keepdims=True)"],
        helpers=(LOGSUMEXP_HELPER,),
    ),
)
LOGSUMEXP = Op(
    "logsumexp",
    "log(sum(exp(x))) along axis, computed stably",
    (1, 1),
    lambda x, axis=-1, keepdims=False: _logsumexp(x, axis, keepdims),
    lambda g, y, xs, axis=-1, keepdims=False: [
        _expand(g, xs[0], (axis % np.ndim(xs[0]),), keepdims) * _softmax(xs[0], axis)
    ],
    _tangent_or_zero(
        lambda t, y, x, axis=-1, keepdims=False: np.sum(t * _softmax(x, axis), axis=axis, keepdims=keepdims)
    ),
    lambda shapes, axis=-1, keepdims=False: _axis_shape(shapes, axis, keepdims),
    (*SOFTMAX_CASES, Case(((2, 3),), {"keepdims": True})),
    attrs=LSE_ATTRS,
    code=CodeRule(
        lambda s: f"logsumexp({s.args[0]}, {s.attrs['axis']}, keepdims={bool(s.attrs['keepdims'])})",
        lambda s: [_lse_grad(s)],
        helpers=(LOGSUMEXP_HELPER, SOFTMAX_HELPER),
    ),
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
        k = int(i)
        if not -n <= k < n:
            raise OpFailure(f"index {k} is out of range for a last axis of size {n}")
        return v[..., k]
    if np.any((i < -n) | (i >= n)):
        bad = np.asarray(i)[(i < -n) | (i >= n)].flat[0]
        raise OpFailure(f"index {bad} is out of range for a last axis of size {n}")
    return np.take_along_axis(v, np.asarray(i)[..., None], -1)[..., 0]


def _index_vjp(g: Array, y: Array, xs: Sequence[Array]) -> list[Array | None]:
    v, i = xs
    dt = getattr(g, "dtype", None)  # the cotangent's float dtype: float32 stays float32
    gv = np.zeros(v.shape, dtype=dt if dt is not None and dt.kind == "f" else np.float64)
    if not getattr(i, "ndim", 0):
        gv[..., int(i)] = g
    else:
        np.put_along_axis(gv, np.asarray(i)[..., None], np.asarray(g)[..., None], -1)
    return [gv, None]


INDEX_GRAD_HELPER = Helper("index_grad", '''def index_grad(g, i, shape):
    """The gradient of v[..., i]: g at the picked entries of the last axis, 0 elsewhere."""
    gv = np.zeros(shape, dtype=getattr(g, "dtype", np.float64))  # float32 g: float32 gradient
    if np.ndim(i) == 0:
        gv[..., i] = g
    else:
        np.put_along_axis(gv, np.asarray(i)[..., None], np.asarray(g)[..., None], -1)
    return gv
''')


def _index_code(site: Site) -> str:
    v, i = site.args
    if site.shapes[1] == ():
        return f"{v}[..., {i}]"
    return f"np.take_along_axis({v}, {i}[..., None], -1)[..., 0]"


INDEX = Op(
    "index",
    "v[..., i]: picks entry i along the last axis (one per row when i has one entry per row)",
    (2, 2),
    _index,
    _index_vjp,
    lambda ts, y, xs: np.zeros_like(y) if ts[0] is None else _index(ts[0], xs[1]),
    _index_shape,
    (Case(((4,), ())), Case(((3, 5), (3,))), Case(((2, 3, 4), ())), Case(((2, 3, 4), (2, 3)))),
    domain=("real", "index"),
    int_args=frozenset({1}),
    keeps_int=True,
    code=CodeRule(
        _index_code,
        lambda s: [f"index_grad({s.g}, {s.args[1]}, {s.shapes[0]})", None],
        helpers=(INDEX_GRAD_HELPER,),
    ),
)


NN: tuple[Op, ...] = (SOFTMAX, LOG_SOFTMAX, LOGSUMEXP, INDEX)
