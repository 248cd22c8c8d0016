"""Reductions, matmul, transpose, reshape, softmax family and index."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from cg.ops.base import Array, Attr, Case, Op, OpFailure, Shape, ShapeMismatch, Tangent, unbroadcast

# ---- attributes -----------------------------------------------------------------------

AXES = Attr(
    {
        "oneOf": [
            {"type": "integer"},
            {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
            {"type": "null"},
        ]
    },
    "axis or list of axes to reduce over (negative counts from the end); default all",
)
KEEPDIMS = Attr({"type": "boolean"}, "keep reduced axes with size 1", default=False)
AXIS = Attr({"type": "integer"}, "the axis to normalise over", default=-1)
REDUCE_ATTRS = {"axis": AXES, "keepdims": KEEPDIMS}


def _axes(axis: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    """Normalise an `axis` attribute to sorted non-negative axes, or raise ShapeMismatch."""
    if axis is None:
        return tuple(range(ndim))
    listed = [axis] if isinstance(axis, int) else list(axis)
    for a in listed:
        if not -ndim <= a < ndim:
            raise ShapeMismatch(f"axis {a} is out of range for an input with {ndim} dimension{'s' * (ndim != 1)}")
    axes = sorted(a % ndim for a in listed)
    if len(set(axes)) != len(axes):
        raise ShapeMismatch(f"axis {listed} names the same axis twice")
    return tuple(axes)


def _reduced_shape(shape: Shape, axis: Any, keepdims: bool) -> Shape:
    axes = _axes(axis, len(shape))
    if keepdims:
        return tuple(1 if i in axes else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def _expand(g: Array, x: Array, axes: tuple[int, ...], keepdims: bool) -> Array:
    """Put back the reduced axes of a cotangent so it broadcasts against x."""
    return g if keepdims else np.expand_dims(g, axes)


def _count(x: Array, axes: tuple[int, ...]) -> int:
    return math.prod(np.shape(x)[a] for a in axes)


def _max_mask(x: Array, y: Array, axes: tuple[int, ...], keepdims: bool) -> Array:
    # The gradient goes to the maximal entries; tied maxima share it evenly.
    mask = x == _expand(y, x, axes, keepdims)
    return mask / np.sum(mask, axis=axes, keepdims=True)


def reduction(name: str, doc: str, fn: Any, kind: str) -> Op:
    def forward(x: Array, axis: Any = None, keepdims: bool = False) -> Array:
        return fn(x, axis=_axes(axis, np.ndim(x)), keepdims=keepdims)

    def weights(x: Array, y: Array, axes: tuple[int, ...], keepdims: bool) -> Array:
        if kind == "sum":
            return 1.0
        if kind == "mean":
            return 1.0 / max(_count(x, axes), 1)
        return _max_mask(x, y, axes, keepdims)

    def vjp(g: Array, y: Array, xs: Sequence[Array], axis: Any = None, keepdims: bool = False) -> list[Array]:
        x = xs[0]
        axes = _axes(axis, np.ndim(x))
        w = weights(x, y, axes, keepdims)
        return [np.broadcast_to(_expand(g, x, axes, keepdims) * w, np.shape(x))]

    def jvp(ts: Sequence[Tangent], y: Array, xs: Sequence[Array], axis: Any = None, keepdims: bool = False) -> Array:
        x, t = xs[0], ts[0]
        if t is None:
            return np.zeros_like(y)
        axes = _axes(axis, np.ndim(x))
        return np.sum(t * weights(x, y, axes, keepdims), axis=axes, keepdims=keepdims)

    def shape(shapes: Sequence[Shape], axis: Any = None, keepdims: bool = False) -> Shape:
        if kind == "max" and any(shapes[0][a] == 0 for a in _axes(axis, len(shapes[0]))):
            raise ShapeMismatch(f"max of {list(shapes[0])}: an axis it reduces has no entries")
        return _reduced_shape(shapes[0], axis, keepdims)

    cases = (
        Case(((4,),)),
        Case(((2, 3),), {"axis": 0}),
        Case(((2, 3, 4),), {"axis": [0, 2], "keepdims": True}),
        Case(((2, 3),), {"axis": -1}),
    )
    return Op(name, doc, (1, 1), forward, vjp, jvp, shape, cases, attrs=REDUCE_ATTRS,
              keeps_int=kind != "mean")


# ---- matmul ---------------------------------------------------------------------------


def _matmul_shape(shapes: Sequence[Shape]) -> Shape:
    a, b = shapes
    if len(a) == 0 or len(b) == 0:
        raise ShapeMismatch("matmul needs inputs with at least one dimension (use mul for scalars)")
    a2 = a if len(a) >= 2 else (1, *a)
    b2 = b if len(b) >= 2 else (*b, 1)
    if a2[-1] != b2[-2]:
        raise ShapeMismatch(
            f"matmul of {list(a)} by {list(b)}: inner dimensions differ ({a2[-1]} vs {b2[-2]})"
        )
    try:
        batch = tuple(np.broadcast_shapes(a2[:-2], b2[:-2]))
    except ValueError:
        raise ShapeMismatch(f"matmul of {list(a)} by {list(b)}: batch dimensions do not broadcast") from None
    return batch + a2[-2:-1] * (len(a) >= 2) + b2[-1:] * (len(b) >= 2)


def _matmul_vjp(g: Array, y: Array, xs: Sequence[Array]) -> list[Array]:
    a, b = xs
    # Treat 1-D operands as matrices, as numpy does, and drop the added axes afterwards.
    a2 = a[None, :] if np.ndim(a) == 1 else a
    b2 = b[:, None] if np.ndim(b) == 1 else b
    g2 = np.asarray(g)
    if np.ndim(a) == 1:
        g2 = np.expand_dims(g2, -2 if np.ndim(b) >= 2 else 0)
    if np.ndim(b) == 1:
        g2 = np.expand_dims(g2, -1)
    ga = g2 @ np.swapaxes(b2, -1, -2)
    gb = np.swapaxes(a2, -1, -2) @ g2
    if np.ndim(a) == 1:
        ga = ga[..., 0, :]
    if np.ndim(b) == 1:
        gb = gb[..., :, 0]
    return [unbroadcast(ga, np.shape(a)), unbroadcast(gb, np.shape(b))]


def _matmul_jvp(ts: Sequence[Tangent], y: Array, xs: Sequence[Array]) -> Array:
    out = np.zeros_like(y)
    if ts[0] is not None:
        out = out + ts[0] @ xs[1]
    if ts[1] is not None:
        out = out + xs[0] @ ts[1]
    return out


MATMUL = Op(
    "matmul",
    "matrix product with numpy's rules (1-D operands and batch dimensions included)",
    (2, 2),
    np.matmul,
    _matmul_vjp,
    _matmul_jvp,
    _matmul_shape,
    (
        Case(((2, 3), (3, 4))),
        Case(((3,), (3, 4))),
        Case(((2, 3), (3,))),
        Case(((3,), (3,))),
        Case(((5, 2, 3), (3, 4))),
        Case(((2, 1, 2, 3), (4, 3, 2))),
    ),
)

# ---- transpose and reshape ------------------------------------------------------------


def _perm(axes: Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    if axes is None:
        return tuple(reversed(range(ndim)))
    if sorted(a % ndim if ndim else a for a in axes) != list(range(ndim)) or len(axes) != ndim:
        raise ShapeMismatch(f"axes {list(axes)} is not a permutation of the {ndim} axes of the input")
    return tuple(a % ndim for a in axes)


TRANSPOSE = Op(
    "transpose",
    "permute axes (default: reverse them)",
    (1, 1),
    lambda x, axes=None: np.transpose(x, _perm(axes, np.ndim(x))),
    lambda g, y, xs, axes=None: [np.transpose(g, np.argsort(_perm(axes, np.ndim(xs[0]))))],
    lambda ts, y, xs, axes=None: (
        np.zeros_like(y) if ts[0] is None else np.transpose(ts[0], _perm(axes, np.ndim(xs[0])))
    ),
    lambda shapes, axes=None: tuple(shapes[0][a] for a in _perm(axes, len(shapes[0]))),
    (Case(((2, 3),)), Case(((2, 3, 4),), {"axes": [1, 2, 0]}), Case(((4,),))),
    attrs={
        "axes": Attr(
            {"oneOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}]},
            "the new order of the axes",
        )
    },
    keeps_int=True,
)


def _reshape_shape(shapes: Sequence[Shape], shape: Sequence[int]) -> Shape:
    # math.prod: exact Python ints, where np.prod would overflow int64 on huge declared shapes.
    size = math.prod(shapes[0])
    known = math.prod(n for n in shape if n != -1)
    if list(shape).count(-1) > 1 or any(n < -1 for n in shape):
        raise ShapeMismatch(f"reshape target {list(shape)}: sizes are >= 0, with at most one -1")
    if -1 in shape:
        if known == 0 or size % known:
            raise ShapeMismatch(f"cannot reshape {list(shapes[0])} ({size} values) to {list(shape)}")
        return tuple(size // known if n == -1 else n for n in shape)
    if known != size:
        raise ShapeMismatch(f"cannot reshape {list(shapes[0])} ({size} values) to {list(shape)} ({known})")
    return tuple(shape)


RESHAPE = Op(
    "reshape",
    "same values in a new shape (one -1 is inferred)",
    (1, 1),
    lambda x, shape: np.reshape(x, shape),
    lambda g, y, xs, shape: [np.reshape(g, np.shape(xs[0]))],
    lambda ts, y, xs, shape: np.zeros_like(y) if ts[0] is None else np.reshape(ts[0], np.shape(y)),
    _reshape_shape,
    (Case(((2, 3),), {"shape": [3, 2]}), Case(((6,),), {"shape": [2, -1]}), Case(((),), {"shape": [1]})),
    attrs={"shape": Attr({"type": "array", "items": {"type": "integer"}}, "the new shape", required=True)},
    keeps_int=True,
)

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


def _logsumexp(x: Array, axis: int, keepdims: bool = True) -> Array:
    # Subtract the max first: logits of 1000 must not overflow.
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    out = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    return out if keepdims else np.squeeze(out, axis)


def _softmax(x: Array, axis: int = -1) -> Array:
    return np.exp(x - _logsumexp(x, axis))


def _sum(v: Array, axis: int) -> Array:
    return np.sum(v, axis=axis, keepdims=True)


SOFTMAX_CASES = (Case(((4,),)), Case(((2, 3),)), Case(((3, 2),), {"axis": 0}))
AXIS_ATTRS = {"axis": AXIS}
LSE_ATTRS = {"axis": AXIS, "keepdims": KEEPDIMS}


def _tangent_or_zero(f: Any) -> Any:
    def jvp(ts: Sequence[Tangent], y: Array, xs: Sequence[Array], **attrs: Any) -> Array:
        return np.zeros_like(y) if ts[0] is None else f(ts[0], y, xs[0], **attrs)

    return jvp


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
)
LOG_SOFTMAX = Op(
    "log_softmax",
    "x - logsumexp(x) along axis, computed stably",
    (1, 1),
    lambda x, axis=-1: x - _logsumexp(x, axis),
    lambda g, y, xs, axis=-1: [g - np.exp(y) * _sum(g, axis)],
    _tangent_or_zero(lambda t, y, x, axis=-1: t - _sum(np.exp(y) * t, axis)),
    _axis_shape,
    SOFTMAX_CASES,
    attrs=AXIS_ATTRS,
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
    n = np.shape(v)[-1]
    if np.any((i < -n) | (i >= n)):
        bad = np.asarray(i)[(i < -n) | (i >= n)].flat[0]
        raise OpFailure(f"index {bad} is out of range for a last axis of size {n}")
    if np.ndim(i) == 0:
        return v[..., int(i)]
    return np.take_along_axis(v, np.asarray(i)[..., None], -1)[..., 0]


def _index_vjp(g: Array, y: Array, xs: Sequence[Array]) -> list[Array | None]:
    v, i = xs
    gv = np.zeros(np.shape(v), dtype=np.result_type(g, np.float64))
    if np.ndim(i) == 0:
        gv[..., int(i)] = g
    else:
        np.put_along_axis(gv, np.asarray(i)[..., None], np.asarray(g)[..., None], -1)
    return [gv, None]


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
)

TENSOR: tuple[Op, ...] = (
    reduction("sum", "sum over axis (default all)", np.sum, "sum"),
    reduction("mean", "mean over axis (default all)", np.mean, "mean"),
    reduction("max", "max over axis (default all); the gradient goes to the maximum, ties share it", np.max, "max"),
    MATMUL,
    TRANSPOSE,
    RESHAPE,
    SOFTMAX,
    LOG_SOFTMAX,
    LOGSUMEXP,
    INDEX,
)
