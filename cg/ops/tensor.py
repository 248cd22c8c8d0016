"""Reductions, matmul, transpose and reshape (broadcast_to and sum_to: cg/ops/broadcasting.py; the
softmax family, index and onehot: cg/ops/nn.py), each with its batching rule (cg/eval/batch.py). Their
maths is in cg/ops/kernels.py; the code rules write the same kernels with the shapes and axes
that a graph fixes before the run."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

import cg.ops.kernels as k
from cg.ops.base import Array, Attr, Batching, Case, Op, Shape, ShapeMismatch, Tangent, add_tangents, pad_rank
from cg.ops.broadcasting import BROADCAST_TO, SUM_TO
from cg.ops.code import CodeRule, Site
from cg.ops.formula import Formula, Formulas

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


def _count(shape: Shape, axes: tuple[int, ...]) -> int:
    """The number of entries a mean averages (at least 1: the mean of nothing has gradient 0)."""
    return max(math.prod(shape[a] for a in axes), 1)


def _grad(kind: str, g: Array, x: Array, y: Array, axes: tuple[int, ...], keepdims: bool) -> Array:
    """The VJP of sum, mean or max, by its kernel."""
    if kind == "sum":
        return k.sum_grad(g, x.shape, axes, keepdims)
    if kind == "mean":
        return k.mean_grad(g, x.shape, axes, keepdims, _count(x.shape, axes))
    return k.max_grad(g, x, y, axes, keepdims)


def _reduction_code(kind: str, fn: Callable[..., Array]) -> CodeRule:
    """sum, mean and max as source: the same kernels, with static axes (one axis written as an int)."""

    def parts(site: Site) -> tuple[Shape, tuple[int, ...], bool, Any]:
        shape = site.shapes[0]
        axes = _axes(site.attrs.get("axis"), len(shape))
        return shape, axes, bool(site.attrs.get("keepdims")), axes[0] if len(axes) == 1 else axes

    def forward(site: Site) -> str:
        shape, axes, keep, axis = parts(site)
        if axes == tuple(range(len(shape))) and not keep:
            return site.call(fn, site.args[0])
        return site.call(fn, site.args[0], axis=axis, **({"keepdims": True} if keep else {}))

    def vjp(site: Site) -> list[str | None]:
        shape, axes, keep, axis = parts(site)
        if kind == "sum":
            return [site.call(k.sum_grad, site.g, shape, axis, keep)]
        if kind == "mean":
            return [site.call(k.mean_grad, site.g, shape, axis, keep, _count(shape, axes))]
        return [site.call(k.max_grad, site.g, site.args[0], site.y, axis, keep)]

    return CodeRule(forward, vjp, fresh=kind == "max")


# The VJPs of the reductions: g spread back over the reduced axes (divided by the count n for a
# mean, to the maxima only for a max).
REDUCTION_FORMULAS = {"sum": "expand(g)", "mean": "expand(g / n)", "max": "expand(g) * argmax(x)"}


def reduction(name: str, doc: str, fn: Callable[..., Array], kind: str) -> Op:
    def forward(x: Array, axis: Any = None, keepdims: bool = False) -> Array:
        return fn(x, axis=_axes(axis, np.ndim(x)), keepdims=keepdims)

    def vjp(g: Array, y: Array, xs: Sequence[Array], axis: Any = None, keepdims: bool = False) -> list[Array]:
        x = xs[0]
        return [_grad(kind, g, x, y, _axes(axis, x.ndim), keepdims)]

    def jvp(ts: Sequence[Tangent], y: Array, xs: Sequence[Array], axis: Any = None, keepdims: bool = False) -> Array:
        x, t = xs[0], ts[0]
        if t is None:
            return np.zeros_like(y)
        axes = _axes(axis, np.ndim(x))
        if kind == "mean":
            t = t * (1.0 / _count(np.shape(x), axes))
        elif kind == "max":
            t = t * k.max_share(x, _expand(y, x, axes, keepdims), axes)
        return np.sum(t, axis=axes, keepdims=keepdims)

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
    formula = Formula(REDUCTION_FORMULAS[kind], "vjp")
    return Op(name, doc, (1, 1), forward, vjp, jvp, shape, cases, attrs=REDUCE_ATTRS,
              keeps_int=kind != "mean", code=_reduction_code(kind, fn), formulas=Formulas((formula,)),
              batch=batch_axis, reads=None if kind == "max" else frozenset())


# ---- batching rules (cg/eval/batch.py): the batch axis is axis 0 in front of each row ----------------


def shift_axis(axis: Any, rank: int) -> Any:
    """An axis attribute of a row, for the batched value: None -> every row axis; a >= 0 -> a + 1
    (a negative axis counts from the end: unchanged); lists likewise."""
    if axis is None:
        return list(range(1, rank + 1))
    if isinstance(axis, int):
        return axis + 1 if axis >= 0 else axis
    return [a + 1 if a >= 0 else a for a in axis]


def batch_axis(rows: Sequence[Shape], attrs: Mapping[str, Any]) -> Batching:
    """Reductions and the softmax family: the same call with the axis moved past the batch axis."""
    return Batching((None,), {**attrs, "axis": shift_axis(attrs.get("axis"), len(rows[0]))}, loose=False)


def _batch_matmul(rows: Sequence[Shape], attrs: Mapping[str, Any]) -> Batching:
    """A 1-D row operand becomes [1, n] (first) or [n, 1] (second); both are padded to one rank, so
    that the batch axes line up; a result made from a 1-D operand is reshaped to numpy's row shape."""
    a, b = rows
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    rank = max(len(a2), len(b2))
    pads = tuple(None if p == r else p for p, r in zip((pad_rank(a2, rank), pad_rank(b2, rank)), rows))
    result = _matmul_shape(rows) if 1 in (len(a), len(b)) else None
    return Batching(pads, dict(attrs), result)


def _batch_transpose(rows: Sequence[Shape], attrs: Mapping[str, Any]) -> Batching:
    perm = _perm(attrs.get("axes"), len(rows[0]))
    return Batching((None,), {**attrs, "axes": [0, *(a + 1 for a in perm)]}, loose=False)


def _batch_reshape(rows: Sequence[Shape], attrs: Mapping[str, Any]) -> Batching:
    shape = _reshape_shape(rows, attrs["shape"])  # -1 resolved: [B, -1] cannot hold a row of size 0
    return Batching((None,), {**attrs, "shape": list(shape)}, loose=False, shape_attrs=("shape",))


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


# The gradients of a @ b for each argument, by (a.ndim, b.ndim): plain forms for vectors and
# matrices, the general one (batches, 1-D by N-D) otherwise. One table for the VJP and the code.
MATMUL_GRADS = {
    (2, 2): (k.matmul_da_mm, k.matmul_db_mm),
    (2, 1): (k.matmul_da_mv, k.matmul_db_mv),
    (1, 2): (k.matmul_da_vm, k.matmul_db_vm),
    (1, 1): (k.matmul_da_vv, k.matmul_db_vv),
}
MATMUL_GENERAL = (k.matmul_da, k.matmul_db)


def _matmul_vjp(g: Array, y: Array, xs: Sequence[Array],
                needs: tuple[bool, bool] = (True, True)) -> list[Array | None]:
    """The gradients nobody needs (the data of a layer: the plan passes `needs`) are skipped: None."""
    a, b = xs
    da, db = MATMUL_GRADS.get((a.ndim, b.ndim), MATMUL_GENERAL)
    return [da(g, a, b) if needs[0] else None, db(g, a, b) if needs[1] else None]


def _matmul_jvp(ts: Sequence[Tangent], y: Array, xs: Sequence[Array]) -> Array:
    """A constant operand (no tangent) adds nothing: no zeros to start from."""
    out: Tangent = None
    if ts[0] is not None:
        out = ts[0] @ xs[1]
    if ts[1] is not None:
        out = add_tangents(out, xs[0] @ ts[1])
    return np.zeros_like(y) if out is None else out


def _matmul_code_vjp(site: Site) -> list[str | None]:
    (a, b), (sa, sb) = site.args, site.shapes
    grads = MATMUL_GRADS.get((len(sa), len(sb)), MATMUL_GENERAL)
    return [site.call(grad, site.g, a, b) for grad in grads]


MATMUL = Op(
    "matmul",
    "matrix product with numpy's rules (1-D operands and batch dimensions included)",
    (2, 2),
    operator.matmul,
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
    code=CodeRule(lambda site: site.call(operator.matmul, *site.args), _matmul_code_vjp),
    needs=True,
    formulas=Formulas((Formula("g @ T(B)", "vjp"), Formula("T(A) @ g", "vjp")), ("A", "B"), matrices=True),
    batch=_batch_matmul,
    reads=frozenset({0, 1}),
)

# ---- transpose and reshape ------------------------------------------------------------


def _perm(axes: Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    if axes is None:
        return tuple(reversed(range(ndim)))
    if sorted(a % ndim if ndim else a for a in axes) != list(range(ndim)) or len(axes) != ndim:
        raise ShapeMismatch(f"axes {list(axes)} is not a permutation of the {ndim} axes of the input")
    return tuple(a % ndim for a in axes)


def _inverse(perm: Sequence[int]) -> tuple[int, ...]:
    """The permutation that undoes perm: the transpose of a transpose's gradient."""
    return tuple(int(a) for a in np.argsort(perm))


TRANSPOSE = Op(
    "transpose",
    "permute axes (default: reverse them)",
    (1, 1),
    lambda x, axes=None: np.transpose(x, _perm(axes, np.ndim(x))),
    lambda g, y, xs, axes=None: [np.transpose(g, _inverse(_perm(axes, np.ndim(xs[0]))))],
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
    code=CodeRule(
        lambda s: s.call(np.transpose, s.args[0], _perm(s.attrs.get("axes"), len(s.shapes[0]))),
        lambda s: [s.call(np.transpose, s.g, _inverse(_perm(s.attrs.get("axes"), len(s.shapes[0]))))],
        fresh=False,
    ),
    formulas=Formulas((Formula("unpermute(g)", "vjp"),)),
    batch=_batch_transpose,
    reads=frozenset(),
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
    code=CodeRule(
        lambda site: site.call(np.reshape, site.args[0], site.shape),
        lambda site: [site.call(np.reshape, site.g, site.shapes[0])],
        fresh=False,
    ),
    formulas=Formulas((Formula("unshape(g)", "vjp"),)),
    batch=_batch_reshape,
    reads=frozenset(),
)


TENSOR: tuple[Op, ...] = (
    reduction("sum", "sum over axis (default all)", np.sum, "sum"),
    reduction("mean", "mean over axis (default all)", np.mean, "mean"),
    reduction("max", "max over axis (default all); the gradient goes to the maximum, ties share it", np.max, "max"),
    MATMUL,
    TRANSPOSE,
    RESHAPE,
    BROADCAST_TO,
    SUM_TO,
)
