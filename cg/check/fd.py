"""Central finite differences: the one checker of derivatives. `cg check` uses it for the
gradients of whole graphs and (--per-node) for each node's rules at the values of the run; the op
tests (tests/ops/test_ops.py) use it for every op's rules at sampled points. So the tests and the
command agree on what "correct" means.

A number passes when |actual - reference| <= atol + rtol * |reference| + noise (numpy's
`allclose` rule, the reference on the right), where noise is what rounding alone can do to a
finite difference: NOISE ulps of |f| divided by the step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cg.ops import Array, Op, Shape

# Central differences err by ~h^2 (truncation) plus ~eps/h (rounding); h = eps^(1/3) balances them.
# The step is relative, h * max(1, |x|), so large values move by an amount they can represent.
EPS = float(np.finfo(np.float64).eps)
STEP = EPS ** (1 / 3)
NOISE = 100.0  # f goes through many roundings: allow this many ulps of |f| in each difference
MAX_ELEMENTS = 200  # per input, node or argument; bigger ones are sampled at random


@dataclass(frozen=True)
class Tolerance:
    """How closely derivatives must agree, and how many elements of a tensor are compared."""

    rtol: float = 1e-5
    atol: float = 1e-7
    max_elements: int = MAX_ELEMENTS


@dataclass(frozen=True)
class Differences:
    """Finite-difference derivatives at some elements (axis 0): central, one-sided, rounding noise."""

    central: np.ndarray
    left: np.ndarray
    right: np.ndarray
    noise: np.ndarray

    def take(self, rows: np.ndarray, other: Differences) -> Differences:
        """These differences with `rows` replaced by `other`'s (which has only those rows)."""
        out = [np.array(a) for a in (self.central, self.left, self.right, self.noise)]
        for a, b in zip(out, (other.central, other.left, other.right, other.noise)):
            a[rows] = b
        return Differences(*out)


def differences(f: Callable[[np.ndarray], Array], x: np.ndarray, index: np.ndarray, h: np.ndarray) -> Differences:
    """d f / d x.flat[k] for each k in index, with step h[k]; f of any shape (results stack on axis 0)."""
    f0 = np.asarray(f(x), dtype=np.float64)
    out: list[list[np.ndarray]] = [[], [], [], []]
    for k, step in zip(index, h):
        plus, minus = x.copy(), x.copy()
        plus.flat[k] += step
        minus.flat[k] -= step
        hp, hm = plus.flat[k] - x.flat[k], x.flat[k] - minus.flat[k]  # the steps as represented
        fp, fm = np.asarray(f(plus), dtype=np.float64), np.asarray(f(minus), dtype=np.float64)
        noise = NOISE * EPS * np.maximum(np.maximum(np.abs(fp), np.abs(fm)), np.abs(f0)) / step
        for acc, v in zip(out, ((fp - fm) / (hp + hm), (f0 - fm) / hm, (fp - f0) / hp, noise)):
            acc.append(v)
    return Differences(*(np.array(v, dtype=np.float64).reshape(len(index), *f0.shape) for v in out))


@dataclass(frozen=True)
class Compared:
    """Derivatives from a rule against central differences, per element."""

    central: np.ndarray
    err: np.ndarray
    allowed: np.ndarray
    skipped: np.ndarray  # at a kink, or where f is not defined on both sides: cannot be checked

    @property
    def ok(self) -> bool:
        return bool(np.all(self.err <= self.allowed))  # NaN fails


def check_derivative(actual: np.ndarray, f: Callable[[np.ndarray], Array], x: Array, index: np.ndarray,
                     tol: Tolerance) -> Compared:
    """The rule's d f / d x.flat[k] (`actual`, stacked on axis 0) against central differences.

    The step is STEP * max(1, |x|). Where that fails at a small |x| (log at 1e-5: the step would be
    as large as x), STEP * |x| is tried too and the better kept. Where it still fails, the element
    is skipped as a kink (relu at 0, |x| at 0, a near-tie of max) if its one-sided derivatives
    differ by a gap that does not shrink with the step and the rule's value lies between them, or
    as a jump (sign at 0) if its differences grow as the step shrinks (f changes by a fixed amount
    over any step: there is no derivative to check). Elements where f is not finite on both sides
    cannot be checked and are skipped too."""
    x = np.array(x, dtype=np.float64)
    ax = np.abs(x.reshape(-1)[index])
    h = STEP * np.maximum(ax, 1.0)
    d = differences(f, x, index, h)
    for r in np.flatnonzero(_bad_rows(actual, d, tol) & (ax > 0) & (ax < 1)):
        small = differences(f, x, index[r : r + 1], STEP * ax[r : r + 1])
        if np.max(_error(actual[r], small.central[0])) < np.max(_error(actual[r], d.central[r])):
            d, h[r] = d.take(np.array([r]), small), STEP * ax[r]
    allowed = tol.atol + tol.rtol * np.abs(d.central) + d.noise
    err = _error(actual, d.central)
    skipped = ~np.isfinite(d.central)
    rows = _bad_rows(actual, d, tol)
    if rows.any():
        quarter = differences(f, x, index[rows], h[rows] / 4)
        gap, gap4 = np.abs(d.left[rows] - d.right[rows]), np.abs(quarter.left - quarter.right)
        lo, hi = np.minimum(d.left[rows], d.right[rows]), np.maximum(d.left[rows], d.right[rows])
        loose = 1e-6 + 1e-3 * np.maximum(np.abs(lo), np.abs(hi))
        between = (actual[rows] >= lo - loose) & (actual[rows] <= hi + loose)
        kink = (gap > allowed[rows]) & (gap4 > 0.5 * gap) & between
        jump = (np.abs(quarter.central) > 2 * np.abs(d.central[rows])) & (np.abs(d.central[rows]) > allowed[rows])
        skipped[rows] |= (err[rows] > allowed[rows]) & (kink | jump)
    return Compared(d.central, np.where(skipped, 0.0, err), allowed, skipped)


def _error(actual: np.ndarray, central: np.ndarray) -> np.ndarray:
    return np.asarray(np.nan_to_num(np.abs(actual - central), nan=np.inf))


def _bad_rows(actual: np.ndarray, d: Differences, tol: Tolerance) -> np.ndarray:
    bad = _error(actual, d.central) > tol.atol + tol.rtol * np.abs(d.central) + d.noise
    return np.asarray(bad.reshape(len(bad), -1).any(axis=1))


def elements(size: int, tol: Tolerance, rng: np.random.Generator) -> np.ndarray:
    """The flat indices compared: all of them, or max_elements drawn at random."""
    if size <= tol.max_elements:
        return np.arange(size)
    return np.sort(rng.choice(size, tol.max_elements, replace=False))


def worst(actual: np.ndarray, c: Compared) -> str:
    """The worst element, in words: the error, the rule's value and the finite difference."""
    k = int(np.argmax(c.err - c.allowed))
    a, fd = actual.reshape(-1)[k], c.central.reshape(-1)[k]
    return f"max error {float(np.max(c.err)):.3g}; the rule gives {a:.6g}, finite differences {fd:.6g}"


# ---- an op's rules at one point ---------------------------------------------------------------


@dataclass(frozen=True)
class RuleCheck:
    """An op's shape rule, VJP and JVP at one point: the first disagreement (None if none), how
    many elements were skipped at a kink, and the largest errors (for a report or a test)."""

    problem: str | None
    kinks: int = 0
    vjp_error: float = 0.0
    jvp_error: float = 0.0


def check_rules(op: Op, xs: Sequence[np.ndarray], attrs: dict[str, Any], diff: Sequence[int], tol: Tolerance,
                rng: np.random.Generator, names: Sequence[str] | None = None) -> RuleCheck:
    """The VJP and JVP of `op` at xs against central differences, and against each other
    (<g, J t> = <J^T g, t>), for the arguments in `diff` (those that get a gradient); `names`
    label the arguments in the message (a node's argument names)."""
    y = np.asarray(op.forward(*xs, **attrs), dtype=np.float64)
    shape = op.shape([np.shape(x) for x in xs], **attrs)
    if tuple(shape) != y.shape:
        return RuleCheck(f"the shape rule gives {list(shape)}, the forward rule {list(y.shape)}")
    g = rng.normal(size=y.shape)
    cts = op.vjp(g, y, xs, **attrs)
    kinks, vjp_error = 0, 0.0
    for k in diff:
        index = elements(xs[k].size, tol, rng)
        actual = np.asarray(cts[k], dtype=np.float64).reshape(-1)[index]

        def inner(v: np.ndarray, k: int = k) -> float:
            return float(np.sum(g * op.forward(*[v if j == k else x for j, x in enumerate(xs)], **attrs)))

        c = check_derivative(actual, inner, xs[k], index, tol)
        kinks, vjp_error = kinks + int(c.skipped.sum()), max(vjp_error, float(np.max(c.err, initial=0.0)))
        if not c.ok:
            label = f"input {k + 1}" + (f" '{names[k]}'" if names else "")
            return RuleCheck(f"VJP disagrees with finite differences ({worst(actual, c)}, {label})", kinks, vjp_error)
    # Tangents scaled by |x| (1 where x is 0): a step along them is relative for every element, so
    # an entry of 1e-5 next to one of 1 (a softmax tail) is not moved by more than its own size.
    ts = [rng.normal(size=x.shape) * np.where(x == 0, 1.0, np.abs(x)) if k in diff else None
          for k, x in enumerate(xs)]  # fmt: skip
    tangent = np.asarray(op.jvp(ts, y, xs, **attrs), dtype=np.float64).reshape(1, -1)

    def along(s: np.ndarray) -> Array:
        return np.reshape(op.forward(*[x if t is None else x + s * t for x, t in zip(xs, ts)], **attrs), -1)

    c = check_derivative(tangent, along, np.zeros(()), np.zeros(1, dtype=np.int64), tol)
    kinks, jvp_error = kinks + int(c.skipped.sum()), float(np.max(c.err, initial=0.0))
    if not c.ok:
        return RuleCheck(f"JVP disagrees with finite differences ({worst(tangent, c)})", kinks, vjp_error, jvp_error)
    lhs = float(np.sum(g.reshape(-1) * tangent))
    terms = [np.asarray(cts[k]) * ts[k] for k in diff]
    rhs = float(sum(np.sum(t) for t in terms))
    size = sum(float(np.sum(np.abs(t))) for t in terms) + float(np.sum(np.abs(g.reshape(-1) * tangent)))
    # Near the top of float64 both sides can overflow to the same infinity: equal, not a disagreement.
    if lhs != rhs and not abs(lhs - rhs) <= tol.atol + tol.rtol * abs(rhs) + NOISE * EPS * size:
        return RuleCheck(f"VJP and JVP disagree (<g, J t> = {lhs:.6g}, <J^T g, t> = {rhs:.6g})",
                         kinks, vjp_error, jvp_error)
    return RuleCheck(None, kinks, vjp_error, jvp_error)


def sample(op: Op, shapes: Sequence[Shape], rng: np.random.Generator,
           attrs: Mapping[str, Any] | None = None) -> list[Array]:
    """Random arguments for `op` inside its sampling domain (`attrs`: the case's attributes, which
    the domain "class" reads its n from)."""
    xs: list[Array] = []
    for i, shape in enumerate(shapes):
        domain = op.domain_of(i)
        if domain == "index":
            xs.append(rng.integers(0, shapes[0][-1], size=shape))
        elif domain == "class":  # onehot's i: from -n to n - 1 (a negative one counts from the end)
            n = int((attrs or {})["n"])
            xs.append(rng.integers(-n, n, size=shape))
        elif domain == "positive":
            xs.append(rng.uniform(0.5, 2.0, size=shape))
        elif domain == "nonzero":
            xs.append(rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.5, 2.0, size=shape))
        else:
            xs.append(rng.normal(size=shape))
    return xs


def check_op(op: Op, xs: Sequence[Array], attrs: dict[str, Any], rng: np.random.Generator,
             tol: Tolerance | None = None) -> RuleCheck:
    """An op's rules at xs (attributes not given take their defaults), every float argument differentiated."""
    full = {name: a.default for name, a in op.attrs.items()} | attrs
    arrays = [np.asarray(x) for x in xs]
    diff = [i for i, x in enumerate(arrays) if i not in op.int_args and x.dtype.kind == "f"]
    return check_rules(op, arrays, full, diff, tol or Tolerance(), rng)
