"""Elementwise ops. Each is one line of forward rule and one of partial derivatives."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from functools import reduce

import numpy as np

from cg.ops.base import BINARY_CASES, ONE, Array, Case, Op, elementwise, unary
from cg.ops.code import Helper

_F64 = np.dtype(np.float64)
NARY_CASES = (*BINARY_CASES, Case(((2, 3), (3,), (2, 1))), Case(((), (4,), (), (4,))))


def _sigmoid(x: Array) -> Array:
    # exp of -|x| never overflows, so sigmoid(+-1000) is exact and warning-free.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _prod_of_others(xs: Sequence[Array], y: Array = None) -> Sequence[Array]:
    """For mul: the partial with respect to x_i is the product of the other inputs.

    Computed without dividing by x_i, so zeros are handled exactly.
    """
    if len(xs) == 2:
        return (xs[1], xs[0])
    return [reduce(np.multiply, [*xs[:i], *xs[i + 1 :]], 1.0) for i in range(len(xs))]


def _add(*xs: Array) -> Array:
    # operator.add: on numpy scalars (the scalar graphs) several times cheaper than np.add.
    return xs[0] + xs[1] if len(xs) == 2 else reduce(operator.add, xs)


def _mul(*xs: Array) -> Array:
    return xs[0] * xs[1] if len(xs) == 2 else reduce(operator.mul, xs)


def _pow(a: Array, b: Array) -> Array:
    # Integers are raised as float64 (an int to a negative power fails); floats keep their dtype.
    is_float = getattr(a, "dtype", None) is not None and a.dtype.kind == "f"
    return np.power(a if is_float else np.asarray(a, np.float64), b)


def _pow_dexp(a: Array, y: Array) -> Array:
    # d(a**b)/db = a**b * log(a): real only for a > 0; 0 at a == 0; undefined (NaN) below.
    # The 0 and NaN in y's dtype, so that float32 stays float32.
    safe = np.where(a > 0, a, 1.0)
    f = getattr(y, "dtype", _F64).type
    return np.where(a > 0, y * np.log(safe), np.where(a == 0, f(0.0), f(np.nan)))


def _tie(a: Array, b: Array) -> Array:
    # On a tie maximum/minimum split the gradient evenly between the two inputs; a half of the
    # input's float dtype, so that float32 stays float32 (a bare 0.5 times a bool is float64).
    dt = getattr(a, "dtype", None)
    return (a == b) * (dt.type(0.5) if dt is not None and dt.kind == "f" else 0.5)


# ---- cg compile: the same rules as source templates ({m} is np, or math on float scalars) ----

SIGMOID_HELPER = Helper("sigmoid", '''def sigmoid(x):
    """1 / (1 + exp(-x)), computed stably: exp(-|x|) never overflows."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
''')
POW_DEXP_HELPER = Helper("pow_dexp", '''def pow_dexp(a, y):
    """d(a**b)/db = a**b * log(a): real for a > 0, 0 at a == 0, NaN below."""
    safe = np.where(a > 0, a, 1.0)
    return np.where(a > 0, y * np.log(safe), np.where(a == 0, 0.0, np.nan))
''')
# On floats: the same two branches as _sigmoid, so math.exp never overflows either.
SIGMOID_MATH = "1.0 / (1.0 + math.exp(-{x})) if {x} >= 0.0 else math.exp({x}) / (1.0 + math.exp({x}))"
POW_DEXP_MATH = "{y} * math.log({a}) if {a} > 0.0 else 0.0 if {a} == 0.0 else math.nan"


def _joined(sep: str) -> Callable[[int], str]:
    """`{0} + {1} + ...` for n arguments."""
    return lambda n: sep.join(f"{{{i}}}" for i in range(n))


def _others(n: int) -> list[str]:
    """mul's partials as templates: the product of the other arguments, in order."""
    return [" * ".join(f"{{{j}}}" for j in range(n) if j != i) for i in range(n)]


ELEMENTWISE: tuple[Op, ...] = (
    unary("neg", "-x", np.negative, lambda x, y: -1.0, "-{x}", "-1.0", keeps_int=True),
    unary("exp", "e**x", np.exp, lambda x, y: y, "{m}.exp({x})", "{y}"),
    unary("log", "natural logarithm", np.log, lambda x, y: 1.0 / x, "{m}.log({x})", "1.0 / {x}",
          domain="positive"),
    unary("sqrt", "square root", np.sqrt, lambda x, y: 0.5 / y, "{m}.sqrt({x})", "0.5 / {y}", domain="positive"),
    unary("square", "x**2", np.square, lambda x, y: 2.0 * x, "{x} ** 2", "2.0 * {x}", keeps_int=True),
    unary("abs", "|x|; gradient 0 at x = 0", np.abs, lambda x, y: np.sign(x),
          ("np.abs({x})", "abs({x})"), ("np.sign({x})", "({x} > 0.0) - ({x} < 0.0)"), keeps_int=True),
    unary("sin", "sine", np.sin, lambda x, y: np.cos(x), "{m}.sin({x})", "{m}.cos({x})"),
    unary("cos", "cosine", np.cos, lambda x, y: -np.sin(x), "{m}.cos({x})", "-{m}.sin({x})"),
    unary("tanh", "hyperbolic tangent", np.tanh, lambda x, y: 1.0 - y * y, "{m}.tanh({x})", "1.0 - {y} * {y}"),
    unary(
        "sigmoid",
        "1 / (1 + e**-x), one fused gate with local gradient s(1 - s)",
        _sigmoid,
        lambda x, y: y * (1.0 - y),
        ("sigmoid({x})", SIGMOID_MATH),
        "{y} * (1.0 - {y})",
        helpers=(SIGMOID_HELPER,),
    ),
    unary(
        "relu",
        "max(x, 0); gradient 0 at x = 0",
        lambda x: np.maximum(x, 0),
        lambda x, y: x > 0,  # a bool: multiplying by it keeps the cotangent's dtype
        ("np.maximum({x}, 0)", "max({x}, 0.0)"),
        ("({x} > 0)", "({x} > 0.0)"),
        keeps_int=True,
    ),
    elementwise(
        "add",
        "x1 + x2 + ...: distributes the gradient unchanged to every input",
        _add,
        lambda xs, y: [ONE] * len(xs),
        _joined(" + "),
        lambda n: ["1.0"] * n,
        arity=(2, None),
        cases=NARY_CASES,
        keeps_int=True,
    ),
    elementwise(
        "mul",
        "x1 * x2 * ...: each input's gradient is the product of the others",
        _mul,
        _prod_of_others,
        _joined(" * "),
        _others,
        arity=(2, None),
        cases=NARY_CASES,
        keeps_int=True,
    ),
    elementwise(
        "sub",
        "a - b",
        np.subtract,
        lambda xs, y: (ONE, -1.0),
        "{a} - {b}",
        ("1.0", "-1.0"),
        arity=(2, 2),
        keeps_int=True,
    ),
    elementwise(
        "div",
        "a / b",
        np.true_divide,
        lambda xs, y: (1.0 / xs[1], -y / xs[1]),
        "{a} / {b}",
        ("1.0 / {b}", "-{y} / {b}"),
        arity=(2, 2),
        domain=("real", "nonzero"),
    ),
    elementwise(
        "pow",
        "a ** b, differentiable in both (in b only where a > 0)",
        _pow,
        lambda xs, y: (xs[1] * np.power(xs[0], xs[1] - 1.0), _pow_dexp(xs[0], y)),
        ("np.power({a}, {b}, dtype={f})", "math.pow({a}, {b})"),
        (("{b} * np.power({a}, {b} - 1.0)", "{b} * math.pow({a}, {b} - 1.0)"), ("pow_dexp({a}, {y})", POW_DEXP_MATH)),
        arity=(2, 2),
        domain=("positive", "real"),
        helpers=(POW_DEXP_HELPER,),
        keeps_dtype=False,  # pow_dexp's NaN and 0 are float64
    ),
    elementwise(
        "maximum",
        "the max gate: routes the gradient to the larger input; on a tie each gets half",
        np.maximum,
        lambda xs, y: ((xs[0] > xs[1]) + _tie(*xs), (xs[1] > xs[0]) + _tie(*xs)),
        ("np.maximum({a}, {b})", "max({a}, {b})"),
        ("({a} > {b}) + 0.5 * ({a} == {b})", "({b} > {a}) + 0.5 * ({a} == {b})"),
        keeps_dtype=False,  # 0.5 * a bool array is float64
        arity=(2, 2),
        keeps_int=True,
    ),
    elementwise(
        "minimum",
        "routes the gradient to the smaller input; on a tie each gets half",
        np.minimum,
        lambda xs, y: ((xs[0] < xs[1]) + _tie(*xs), (xs[1] < xs[0]) + _tie(*xs)),
        ("np.minimum({a}, {b})", "min({a}, {b})"),
        ("({a} < {b}) + 0.5 * ({a} == {b})", "({b} < {a}) + 0.5 * ({a} == {b})"),
        keeps_dtype=False,
        arity=(2, 2),
        keeps_int=True,
    ),
)
