"""broadcast_to and sum_to: numpy's broadcasting and its inverse, as ops (with their batching rules)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

import cg.ops.kernels as k
from cg.ops.base import Attr, Batching, Case, Op, Shape, ShapeMismatch, pad_rank
from cg.ops.code import CodeRule, sum_to
from cg.ops.formula import Formula, Formulas


def _batch_broadcast_to(rows: Sequence[Shape], attrs: Mapping[str, Any]) -> Batching:
    x, shape = rows[0], list(attrs["shape"])
    return Batching((None if len(x) == len(shape) else pad_rank(x, len(shape)),), {**attrs, "shape": shape},
                    loose=False, shape_attrs=("shape",))


def _batch_sum_to(rows: Sequence[Shape], attrs: Mapping[str, Any]) -> Batching:
    """sum_to sums the leading axes of x that `shape` lacks; the batch axis must stay: the target
    gets 1s for those axes (summed with keepdims), and the result is reshaped to the row's shape."""
    rank, shape = len(rows[0]), tuple(attrs["shape"])
    full = pad_rank(shape, rank)
    return Batching((None,), {**attrs, "shape": list(full)}, None if full == shape else shape, loose=False,
                    shape_attrs=("shape",))


# ---- broadcast_to and sum_to: broadcasting and its inverse, as ops ----------------------------

TARGET = Attr({"type": "array", "items": {"type": "integer", "minimum": 0}}, "the shape of the result", required=True)
NUMPY_RULES = "numpy's rules: no more axes than the larger shape, and each, matched from the end, 1 or equal"


def _target(op: str, shape: Sequence[int]) -> Shape:
    if any(n < 0 for n in shape):
        raise ShapeMismatch(f"{op}: the target shape {list(shape)} has a negative size")
    return tuple(int(n) for n in shape)


def _fits(small: Shape, big: Shape) -> bool:
    """`small` broadcasts to `big`: no more axes, and each of them (from the end) 1 or big's."""
    return len(small) <= len(big) and all(a in (1, b) for a, b in zip(reversed(small), reversed(big)))


def _broadcast_to_shape(shapes: Sequence[Shape], shape: Sequence[int]) -> Shape:
    x, want = shapes[0], _target("broadcast_to", shape)
    if not _fits(x, want):
        raise ShapeMismatch(f"broadcast_to: cannot broadcast {list(x)} to {list(want)} ({NUMPY_RULES})")
    return want


def _sum_to_shape(shapes: Sequence[Shape], shape: Sequence[int]) -> Shape:
    x, want = shapes[0], _target("sum_to", shape)
    if not _fits(want, x):
        raise ShapeMismatch(f"sum_to: cannot sum {list(x)} to {list(want)}: the target must broadcast to the "
                            f"input's shape ({NUMPY_RULES})")
    return want


BROADCAST_TO = Op(
    "broadcast_to",
    "x broadcast to `shape` with numpy's rules (a new array); its gradient is summed back to x's shape",
    (1, 1),
    lambda x, shape: k.broadcast(x, tuple(shape)),
    lambda g, y, xs, shape: [k.unbroadcast(g, np.shape(xs[0]))],
    lambda ts, y, xs, shape: np.zeros_like(y) if ts[0] is None else k.broadcast(ts[0], tuple(shape)),
    _broadcast_to_shape,
    (
        Case(((3,),), {"shape": [2, 3]}),  # a leading axis
        Case(((2, 1),), {"shape": [2, 4]}),  # a size-1 axis
        Case(((1, 3),), {"shape": [4, 2, 3]}),  # both
        Case(((),), {"shape": [2, 2]}),
    ),
    attrs={"shape": TARGET},
    keeps_int=True,
    code=CodeRule(lambda s: s.call(k.broadcast, s.args[0], s.shape), lambda s: [sum_to(s.g, s.shape, s.shapes[0])],
                  fresh=False),
    formulas=Formulas((Formula("unbroadcast(g)", "vjp"),)),
    batch=_batch_broadcast_to,
    reads=frozenset(),
)
SUM_TO = Op(
    "sum_to",
    "x summed down to `shape`, which broadcasts to x's shape (the inverse of broadcast_to: leading axes and the "
    "axes where `shape` has 1 are summed)",
    (1, 1),
    lambda x, shape: k.unbroadcast(x, tuple(shape)),
    lambda g, y, xs, shape: [np.broadcast_to(g, np.shape(xs[0]))],  # a read-only view, never updated in place
    lambda ts, y, xs, shape: np.zeros_like(y) if ts[0] is None else k.unbroadcast(ts[0], tuple(shape)),
    _sum_to_shape,
    (
        Case(((2, 3),), {"shape": [3]}),  # a leading axis
        Case(((2, 3),), {"shape": [2, 1]}),  # a size-1 axis
        Case(((4, 2, 3),), {"shape": [1, 3]}),  # both
        Case(((2, 3),), {"shape": []}),
    ),
    attrs={"shape": TARGET},
    keeps_int=True,
    code=CodeRule(lambda s: sum_to(s.args[0], s.shapes[0], s.shape),
                  lambda s: [s.call(np.broadcast_to, s.g, s.shapes[0])], fresh=False),
    formulas=Formulas((Formula("spread(g)", "vjp"),)),
    batch=_batch_sum_to,
    reads=frozenset(),
)
