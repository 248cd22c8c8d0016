"""Central finite differences, to check an op's VJP and JVP against its forward rule."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cg.ops import Array, Op, Shape

EPS = 1e-6


def sample(op: Op, shapes: Sequence[Shape], rng: np.random.Generator) -> list[Array]:
    """Random arguments for `op` inside its sampling domain."""
    xs: list[Array] = []
    for i, shape in enumerate(shapes):
        domain = op.domain_of(i)
        if domain == "index":
            xs.append(rng.integers(0, shapes[0][-1], size=shape))
        elif domain == "positive":
            xs.append(rng.uniform(0.5, 2.0, size=shape))
        elif domain == "nonzero":
            xs.append(rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.5, 2.0, size=shape))
        else:
            xs.append(rng.normal(size=shape))
    return xs


def numerical_vjp(f: Callable[..., Array], xs: Sequence[Array], g: Array, i: int) -> Array:
    """d<g, f(xs)>/d xs[i] by central differences, one element at a time."""
    x = np.array(xs[i], dtype=np.float64)
    out = np.zeros_like(x)
    for k in range(x.size):
        plus, minus = x.copy(), x.copy()
        plus.flat[k] += EPS
        minus.flat[k] -= EPS
        hi = f(*[plus if j == i else a for j, a in enumerate(xs)])
        lo = f(*[minus if j == i else a for j, a in enumerate(xs)])
        out.flat[k] = np.sum(g * (hi - lo)) / (2 * EPS)
    return out


def numerical_jvp(f: Callable[..., Array], xs: Sequence[Array], ts: Sequence[Array | None]) -> Array:
    """(f(x + eps t) - f(x - eps t)) / 2 eps, moving every argument along its tangent."""

    def moved(sign: float) -> list[Array]:
        return [x if t is None else x + sign * EPS * t for x, t in zip(xs, ts)]

    return (f(*moved(1.0)) - f(*moved(-1.0))) / (2 * EPS)


@dataclass(frozen=True)
class OpCheck:
    """Largest absolute errors of an op's rules at one point."""

    shape_ok: bool
    vjp_error: float
    jvp_error: float
    transpose_error: float  # |<g, J t> - <J^T g, t>|: VJP and JVP describe the same Jacobian

    def worst(self) -> float:
        return max(self.vjp_error, self.jvp_error, self.transpose_error)


def check_op(op: Op, xs: Sequence[Array], attrs: dict[str, Any], rng: np.random.Generator) -> OpCheck:
    """Compare an op's VJP and JVP with central differences at xs."""
    full = {name: a.default for name, a in op.attrs.items()} | attrs

    def f(*args: Array) -> Array:
        return np.asarray(op.forward(*args, **full), dtype=np.float64)

    y = f(*xs)
    shape_ok = op.shape([np.shape(x) for x in xs], **full) == np.shape(y)
    diff = [i for i in range(len(xs)) if i not in op.int_args]
    g = rng.normal(size=np.shape(y))
    cotangents = op.vjp(g, y, xs, **full)
    vjp_error = max(
        (float(np.max(np.abs(cotangents[i] - numerical_vjp(f, xs, g, i)), initial=0.0)) for i in diff),
        default=0.0,
    )
    ts = [rng.normal(size=np.shape(x)) if i in diff else None for i, x in enumerate(xs)]
    tangent = op.jvp(ts, y, xs, **full)
    jvp_error = float(np.max(np.abs(tangent - numerical_jvp(f, xs, ts)), initial=0.0))
    lhs = float(np.sum(g * tangent))
    rhs = 0.0
    for i in diff:
        ct, t = cotangents[i], ts[i]
        assert ct is not None and t is not None
        rhs += float(np.sum(ct * t))
    return OpCheck(shape_ok, vjp_error, jvp_error, abs(lhs - rhs))
