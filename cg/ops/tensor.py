"""Reductions, matmul, transpose and reshape (the softmax family and index: cg/ops/nn.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from cg.ops.base import Array, Attr, Case, Op, Shape, ShapeMismatch, Tangent, unbroadcast
from cg.ops.code import CodeRule, Helper, Site, axes_text, sum_to

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
    dt = x.dtype if x.dtype.kind == "f" else None  # float32 stays float32 (a bool count is an int)
    return mask / mask.sum(axis=axes, keepdims=True, dtype=dt)




MAX_GRAD_HELPER = Helper("max_grad", '''def max_grad(g, x, y, axis, keepdims):
    """The max gate: g goes to the maximal entries of x along axis; tied maxima share it."""
    if not keepdims:
        g, y = np.expand_dims(g, axis), np.expand_dims(y, axis)
    mask = x == y
    return g * (mask / np.sum(mask, axis=axis, keepdims=True))
''')


def _reduction_code(kind: str) -> CodeRule:
    """sum, mean and max as source: static axes; the VJP broadcasts g back over them."""

    def parts(site: Site) -> tuple[tuple[int, ...], bool, str]:
        axes = _axes(site.attrs.get("axis"), len(site.shapes[0]))
        keep = bool(site.attrs.get("keepdims"))
        full = axes == tuple(range(len(site.shapes[0]))) and not keep
        return axes, keep, "" if full else f", axis={axes_text(axes)}" + ", keepdims=True" * keep

    def forward(site: Site) -> str:
        return f"np.{kind}({site.args[0]}{parts(site)[2]})"

    def vjp(site: Site) -> list[str | None]:
        axes, keep, _ = parts(site)
        shape = site.shapes[0]
        if kind == "max":
            return [f"max_grad({site.g}, {site.args[0]}, {site.y}, {axes_text(axes)}, {keep})"]
        leading = axes == tuple(range(len(axes)))  # g broadcasts as it is
        g = site.g if keep or leading else f"np.expand_dims({site.g}, {axes_text(axes)})"
        if kind == "mean":
            g = f"{g} * (1 / {max(math.prod(shape[a] for a in axes), 1)})"
        return [f"np.broadcast_to({g}, {shape})"]

    return CodeRule(forward, vjp, fresh=kind == "max", helpers=(MAX_GRAD_HELPER,) * (kind == "max"),
                    keeps_dtype=kind != "max")  # max_grad's mask / count is float64


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
              keeps_int=kind != "mean", code=_reduction_code(kind))


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


def _matmul_vjp(g: Array, y: Array, xs: Sequence[Array],
                needs: tuple[bool, bool] = (True, True)) -> list[Array | None]:
    """g b^T and a^T g, in numpy's matmul rules. `needs` (passed by the plan when an argument
    needs no cotangent, such as the data of a layer) skips the product nobody wants: None."""
    a, b = xs
    na, nb = a.ndim, b.ndim
    if na == 2 and nb == 2:  # the layer's case
        return [g @ b.T if needs[0] else None, a.T @ g if needs[1] else None]
    if na == 2 and nb == 1:  # matrix times vector: g is a vector
        return [np.multiply.outer(g, b) if needs[0] else None, g @ a if needs[1] else None]
    if na == 1 and nb == 2:
        return [b @ g if needs[0] else None, np.multiply.outer(a, g) if needs[1] else None]
    out = _matmul_vjp_general(g, a, b)
    return [c if need else None for c, need in zip(out, needs)]


def _matmul_vjp_general(g: Array, a: Array, b: Array) -> list[Array]:
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


def _swap(x: str, ndim: int) -> str:
    return f"{x}.T" if ndim == 2 else f"np.swapaxes({x}, -1, -2)"


def _matmul_code_vjp(site: Site) -> list[str | None]:
    """_matmul_vjp with static shapes: the plain forms for 1-D and 2-D operands, else the
    general one (1-D operands as matrices, broadcast batch axes summed back)."""
    (a, b), (sa, sb), g = site.args, site.shapes, site.g
    na, nb = len(sa), len(sb)
    if (na, nb) == (2, 2):
        return [f"{g} @ {b}.T", f"{a}.T @ {g}"]
    if (na, nb) == (1, 2):
        return [f"{b} @ {g}", f"np.outer({a}, {g})"]
    if (na, nb) == (2, 1):
        return [f"np.outer({g}, {b})", f"{a}.T @ {g}"]
    if (na, nb) == (1, 1):
        return [f"{b} * {g}", f"{a} * {g}"]
    a2 = f"{a}[None, :]" if na == 1 else a
    b2 = f"{b}[:, None]" if nb == 1 else b
    g2 = f"np.expand_dims({g}, {-2 if nb >= 2 else 0})" if na == 1 else g
    g2 = f"np.expand_dims({g2}, -1)" if nb == 1 else g2
    ga = f"({g2} @ {_swap(b2, max(nb, 2))})[..., 0, :]" if na == 1 else f"{g2} @ {_swap(b2, max(nb, 2))}"
    gb = f"({_swap(a2, max(na, 2))} @ {g2})[..., :, 0]" if nb == 1 else f"{_swap(a2, max(na, 2))} @ {g2}"
    return [sum_to(ga, _matmul_grad_shape(sa, sb, 0), sa), sum_to(gb, _matmul_grad_shape(sa, sb, 1), sb)]


def _matmul_grad_shape(sa: Shape, sb: Shape, k: int) -> Shape:
    """The shape of the k-th gradient of the general form above, before it is summed back."""
    a2 = (1, *sa) if len(sa) == 1 else sa
    b2 = (*sb, 1) if len(sb) == 1 else sb
    batch = tuple(np.broadcast_shapes(a2[:-2], b2[:-2]))
    if k == 0:
        return batch + a2[-2:] if len(sa) >= 2 else batch + a2[-1:]
    return batch + b2[-2:] if len(sb) >= 2 else batch + b2[-2:-1]




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
    code=CodeRule(lambda site: f"{site.args[0]} @ {site.args[1]}", _matmul_code_vjp),
)

# ---- transpose and reshape ------------------------------------------------------------


def _perm(axes: Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    if axes is None:
        return tuple(reversed(range(ndim)))
    if sorted(a % ndim if ndim else a for a in axes) != list(range(ndim)) or len(axes) != ndim:
        raise ShapeMismatch(f"axes {list(axes)} is not a permutation of the {ndim} axes of the input")
    return tuple(a % ndim for a in axes)


def _transpose_code(site: Site, grad: bool = False) -> str:
    perm = _perm(site.attrs.get("axes"), len(site.shapes[0]))
    if grad:
        perm = tuple(int(k) for k in np.argsort(perm))
    x = site.g if grad else site.args[0]
    return f"{x}.T" if perm == (1, 0) else f"np.transpose({x}, {perm})"


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
    code=CodeRule(_transpose_code, lambda site: [_transpose_code(site, grad=True)], fresh=False),
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
        lambda site: f"np.reshape({site.args[0]}, {site.shape})",
        lambda site: [f"np.reshape({site.g}, {site.shapes[0]})"],
        fresh=False,
    ),
)


TENSOR: tuple[Op, ...] = (
    reduction("sum", "sum over axis (default all)", np.sum, "sum"),
    reduction("mean", "mean over axis (default all)", np.mean, "mean"),
    reduction("max", "max over axis (default all); the gradient goes to the maximum, ties share it", np.max, "max"),
    MATMUL,
    TRANSPOSE,
    RESHAPE,
)
