"""The maths of the ops, written once: numpy functions that the op rules call (cg/ops/*.py) and
that `cg compile` writes into the module it generates (cg/ops/source.py reads them).

Two kinds, declared by a decorator:

- @inline: the body is one `return` of an expression. cg compile writes the expression in place
  of the call, with the node's names for the parameters (`de = (1.0 / e) * dz`); on Python
  floats it writes numpy's calls with their math equivalents (np.log -> math.log).
- @helper: any body. cg compile calls it by name and copies its source into the module
  (`inspect.getsource`), translated the same way when the module works on Python floats.

So every function here must stand alone in a generated module: it may use numpy (as np), math
and other kernels, and its annotations only numpy's and builtin types. Nothing else.
"""

# numpy's stubs give many results as Any; the annotations here say what the kernels take and give
# in words a generated module can evaluate (np.ndarray), so returning numpy's Any is expected:
# mypy: disable-error-code="no-any-return"

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import numpy as np

F = TypeVar("F", bound=Callable[..., object])
KERNELS: dict[str, Callable[..., object]] = {}  # name -> kernel, in the order of this file
INLINE: set[str] = set()  # the names of the @inline kernels


def helper(fn: F) -> F:
    """Declares a kernel that generated code calls by name (its source is copied)."""
    KERNELS[fn.__name__] = fn
    return fn


def inline(fn: F) -> F:
    """Declares a kernel whose one `return` expression generated code writes in place."""
    INLINE.add(fn.__name__)
    return helper(fn)


@helper
def like(c: float, *xs: np.ndarray) -> np.generic:
    """The number c in the float dtype that xs compute in: float32 stays float32 (a bare 0.5 times
    a bool array is float64)."""
    return np.result_type(*xs, c).type(c)


# ---- one-input elementwise ops: forward rules and derivatives df(x, y) --------------------------


@inline
def square(x: np.ndarray) -> np.ndarray:
    return x ** 2


@inline
def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)  # 0, not 0.0: an integer input stays an integer


@helper
def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), computed stably: exp(-|x|) never overflows."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@inline
def d_neg(x: np.ndarray, y: np.ndarray) -> float:
    return -1.0


@inline
def d_exp(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return y


@inline
def d_log(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return 1.0 / x


@inline
def d_sqrt(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return 0.5 / y


@inline
def d_square(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return 2.0 * x


@inline
def d_abs(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.sign(x)  # 0 at 0


@inline
def d_sin(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.cos(x)


@inline
def d_cos(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return -np.sin(x)


@inline
def d_tanh(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return 1.0 - y * y


@inline
def d_sigmoid(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return y * (1.0 - y)


@inline
def d_relu(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return x > 0  # a bool (0 at 0): multiplying by it keeps the cotangent's dtype


@inline
def step(x: np.ndarray) -> np.ndarray:
    return (x > 0) * like(1.0, x)  # [x > 0] in x's float dtype (float64 for an integer x)


@inline
def d_zero(x: np.ndarray, y: np.ndarray) -> float:
    return 0.0  # sign and step: piecewise constant (the jump at 0 has no derivative)


# ---- two-input elementwise ops: forward rules and partials(a, b, y) -----------------------------


@inline
def power(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # An integer base is raised as a float (an int to a negative power fails); floats keep their dtype.
    return np.power(a, b, dtype=np.result_type(a, b, 1.0))


@helper
def pow_dexp(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """d(a**b)/db = a**b * log(a): real for a > 0, 0 at a == 0, NaN below (in y's float dtype)."""
    safe = np.where(a > 0, a, 1.0)
    return np.where(a > 0, y * np.log(safe), np.where(a == 0, like(0.0, y), like(np.nan, y)))


@inline
def sub_partials(a: np.ndarray, b: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    return 1.0, -1.0


@inline
def div_partials(a: np.ndarray, b: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return 1.0 / b, -y / b


@inline
def pow_partials(a: np.ndarray, b: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return b * np.power(a, b - 1.0), pow_dexp(a, y)


@inline
def maximum_partials(a: np.ndarray, b: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # The max gate routes the gradient to the larger input; on a tie each gets half.
    return (a > b) + like(0.5, a, b) * (a == b), (b > a) + like(0.5, a, b) * (a == b)


@inline
def minimum_partials(a: np.ndarray, b: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (a < b) + like(0.5, a, b) * (a == b), (b < a) + like(0.5, a, b) * (a == b)


@helper
def summed_axes(have: tuple[int, ...], want: tuple[int, ...]) -> tuple[int, ...]:
    """The axes along which a gradient of shape `have`, broadcast from an input of shape `want`,
    is summed back to it."""
    lead = len(have) - len(want)
    return tuple(range(lead)) + tuple(lead + i for i, n in enumerate(want) if n == 1 and have[lead + i] != 1)


@helper
def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """g summed back to the shape of the input that was broadcast to make it."""
    try:
        gshape = g.shape  # arrays and numpy scalars; np.shape is a Python-level wrapper
    except AttributeError:  # a Python number
        gshape = ()
    if gshape == shape:
        return g
    return np.sum(g, axis=summed_axes(gshape, shape), keepdims=True).reshape(shape)


@inline
def broadcast(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return np.broadcast_to(x, shape).copy()  # a new array, not numpy's read-only view


# ---- reductions ---------------------------------------------------------------------------------


@inline
def sum_grad(g: np.ndarray, shape: tuple[int, ...], axis: tuple[int, ...], keepdims: bool) -> np.ndarray:
    # g spread back over the summed axes: a read-only view, never updated in place
    return np.broadcast_to(g if keepdims else np.expand_dims(g, axis), shape)


@inline
def mean_grad(g: np.ndarray, shape: tuple[int, ...], axis: tuple[int, ...], keepdims: bool,
              count: int) -> np.ndarray:
    return sum_grad(g * (1.0 / count), shape, axis, keepdims)


@helper
def max_share(x: np.ndarray, y: np.ndarray, axis: tuple[int, ...]) -> np.ndarray:
    """The share of the gradient of max(x) (y, axes kept) of each entry of x: 1 / the number of
    maxima at the maxima, 0 elsewhere, in x's float dtype."""
    mask = x == y
    return mask / mask.sum(axis=axis, keepdims=True, dtype=x.dtype if x.dtype.kind == "f" else np.float64)


@helper
def max_grad(g: np.ndarray, x: np.ndarray, y: np.ndarray, axis: tuple[int, ...], keepdims: bool) -> np.ndarray:
    """The max gate: g goes to the maximal entries of x along axis; tied maxima share it."""
    if not keepdims:
        g, y = np.expand_dims(g, axis), np.expand_dims(y, axis)
    return g * max_share(x, y, axis)


# ---- matmul: the gradients of a @ b, by the dimensions of a and b ------------------------------


@inline
def matmul_da_mm(g: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return g @ b.T


@inline
def matmul_db_mm(g: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a.T @ g


@inline
def matmul_da_mv(g: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.multiply.outer(g, b)


@inline
def matmul_db_mv(g: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return g @ a


@inline
def matmul_da_vm(g: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return b @ g


@inline
def matmul_db_vm(g: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.multiply.outer(a, g)


@inline
def matmul_da_vv(g: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return b * g


@inline
def matmul_db_vv(g: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a * g


@helper
def as_matrices(g: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """g, a and b of a @ b with 1-D operands made matrices, as numpy's matmul treats them."""
    if a.ndim == 1:
        g = np.expand_dims(g, -2 if b.ndim >= 2 else 0)
    if b.ndim == 1:
        g = np.expand_dims(g, -1)
    return g, a[None, :] if a.ndim == 1 else a, b[:, None] if b.ndim == 1 else b


@helper
def matmul_da(g: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The gradient of a @ b for a, with batch dimensions (summed back) and 1-D operands."""
    g2, _, b2 = as_matrices(g, a, b)
    ga = g2 @ np.swapaxes(b2, -1, -2)
    return unbroadcast(ga[..., 0, :] if a.ndim == 1 else ga, a.shape)


@helper
def matmul_db(g: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The gradient of a @ b for b, with batch dimensions (summed back) and 1-D operands."""
    g2, a2, _ = as_matrices(g, a, b)
    gb = np.swapaxes(a2, -1, -2) @ g2
    return unbroadcast(gb[..., :, 0] if b.ndim == 1 else gb, b.shape)


# ---- the softmax family -------------------------------------------------------------------------


@helper
def shifted_max(x: np.ndarray, axis: int) -> np.ndarray:
    """The max along axis (kept), to subtract before exp so that logits of 1000 do not overflow; a
    max that is not finite counts as 0, so that inf - inf makes no NaN where the answer is inf."""
    m = x.max(axis=axis, keepdims=True)
    if not (math.isfinite(m.item()) if m.size == 1 else np.isfinite(m).all()):
        m = np.where(np.isfinite(m), m, 0.0)
    return m


@helper
def logsumexp(x: np.ndarray, axis: int, keepdims: bool = True) -> np.ndarray:
    """log(sum(exp(x))) along axis, computed stably."""
    m = shifted_max(x, axis)
    out = m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))
    return out if keepdims else out.squeeze(axis)


@helper
def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(x) / sum(exp(x)) along axis, computed stably."""
    return np.exp(x - logsumexp(x, axis))


@helper
def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """x - logsumexp(x) along axis, computed stably (the max subtracted once)."""
    s = x - shifted_max(x, axis)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


@inline
def softmax_grad(g: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
    # The Jacobian of softmax, diag(y) - y y^T, is symmetric: this is its JVP too.
    return y * (g - (g * y).sum(axis=axis, keepdims=True))


@inline
def log_softmax_grad(g: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
    return g - np.exp(y) * g.sum(axis=axis, keepdims=True)


@inline
def logsumexp_grad(g: np.ndarray, x: np.ndarray, axis: int, keepdims: bool) -> np.ndarray:
    return (g if keepdims else np.expand_dims(g, axis)) * softmax(x, axis)


# ---- index: v[..., i] ---------------------------------------------------------------------------


@inline
def pick(v: np.ndarray, i: int) -> np.ndarray:
    return v[..., i]


@inline
def pick_rows(v: np.ndarray, i: np.ndarray) -> np.ndarray:
    return np.take_along_axis(v, i[..., None], -1)[..., 0]


@helper
def index_grad(g: np.ndarray, i: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The gradient of v[..., i]: g at the picked entries of the last axis, 0 elsewhere (in g's
    float dtype)."""
    dt = getattr(g, "dtype", None)  # (not np.result_type: several times slower, in a hot VJP)
    gv = np.zeros(shape, dtype=dt if dt is not None and dt.kind == "f" else np.float64)
    if getattr(i, "ndim", 0) == 0:
        gv[..., int(i)] = g
    else:
        np.put_along_axis(gv, np.asarray(i)[..., None], np.asarray(g)[..., None], -1)
    return gv


@helper
def log_softmax_index_grad(g: np.ndarray, lp: np.ndarray, i: np.ndarray) -> np.ndarray:
    """The gradient of index(log_softmax(x), i) for x (log_softmax along the last axis; lp its
    value): g times (onehot(i) - softmax(x)), with no one-hot built and g never summed back (the
    index's gradient has g at one entry per row: its sum is g)."""
    if getattr(i, "ndim", 0) == 0:
        dx = np.exp(lp) * -(g if getattr(g, "ndim", 0) == 0 else g[..., None])
        if dx.ndim == 1:  # (dx[..., j] += g is ten times slower on a vector)
            dx[int(i)] += g
        else:
            dx[..., int(i)] += g
        return dx
    ii, gg = np.asarray(i)[..., None], np.asarray(g)[..., None]
    dx = np.exp(lp) * -gg
    np.put_along_axis(dx, ii, np.take_along_axis(dx, ii, -1) + gg, -1)
    return dx


@helper
def onehot(i: np.ndarray, n: int) -> np.ndarray:
    """1.0 at entry i (a negative i counts from the end) of a new last axis of size n, 0.0 elsewhere;
    an IndexError for an i outside -n..n-1."""
    i = np.asarray(i)
    bad = (i < -n) | (i >= n)
    if bad.any():
        raise IndexError(f"index {i[bad].flat[0]} is out of range for onehot with n = {n} (from {-n} to {n - 1})")
    return (np.arange(n) == np.where(i < 0, i + n, i)[..., None]).astype(np.float64)
