"""Elementwise ops: each is one line naming its forward rule and its derivative (one input) or
partials (two inputs), kernels of cg/ops/kernels.py or numpy's own functions; add and mul fold
an operator over any number of inputs."""

from __future__ import annotations

import operator

import numpy as np

import cg.ops.kernels as k
from cg.ops.base import BINARY_CASES, Case, Op, binary, fold, unary

NARY_CASES = (*BINARY_CASES, Case(((2, 3), (3,), (2, 1))), Case(((), (4,), (), (4,))))

ELEMENTWISE: tuple[Op, ...] = (
    unary("neg", "-x", operator.neg, k.d_neg, "-1", keeps_int=True),
    unary("exp", "e**x", np.exp, k.d_exp, "exp(x)"),
    unary("log", "natural logarithm", np.log, k.d_log, "1 / x", domain="positive"),
    unary("sqrt", "square root", np.sqrt, k.d_sqrt, "1 / (2 * sqrt(x))", domain="positive"),
    unary("square", "x**2", k.square, k.d_square, "2 * x", keeps_int=True),
    unary("abs", "|x|; gradient 0 at x = 0", np.abs, k.d_abs, "sign(x)", keeps_int=True),
    unary("sin", "sine", np.sin, k.d_sin, "cos(x)"),
    unary("cos", "cosine", np.cos, k.d_cos, "-sin(x)"),
    unary("tanh", "hyperbolic tangent", np.tanh, k.d_tanh, "1 - y ** 2"),
    unary("sigmoid", "1 / (1 + e**-x), one fused gate with local gradient s(1 - s)", k.sigmoid, k.d_sigmoid,
          "y * (1 - y)"),
    unary("relu", "max(x, 0); gradient 0 at x = 0", k.relu, k.d_relu, "x > 0", keeps_int=True),
    unary("sign", "-1, 0 or 1 as x < 0, = 0, > 0 (an integer for an integer x); derivative 0 (almost everywhere: "
          "it jumps at 0)", np.sign, k.d_zero, "0", keeps_int=True),
    unary("step", "[x > 0]: 1.0 where x > 0, else 0.0 (relu's derivative; 0 at 0), a float even for an integer x; "
          "derivative 0 (almost everywhere: it jumps at 0)", k.step, k.d_zero, "0"),
    fold("add", "x1 + x2 + ...: distributes the gradient unchanged to every input", operator.add, product=False,
         cases=NARY_CASES),
    fold("mul", "x1 * x2 * ...: each input's gradient is the product of the others", operator.mul, product=True,
         cases=NARY_CASES),
    binary("sub", "a - b", operator.sub, k.sub_partials, ("1", "-1"), keeps_int=True),
    binary("div", "a / b", operator.truediv, k.div_partials, ("1 / b", "-a / b ** 2"), domain=("real", "nonzero")),
    binary("pow", "a ** b, differentiable in both (in b only where a > 0)", k.power, k.pow_partials,
           ("b * a ** (b - 1)", "a ** b * log(a)"), domain=("positive", "real")),
    binary("maximum", "the max gate: routes the gradient to the larger input; on a tie each gets half", np.maximum,
           k.maximum_partials, ("(a > b) + 0.5 * (a == b)", "(b > a) + 0.5 * (a == b)"), keeps_int=True),
    binary("minimum", "routes the gradient to the smaller input; on a tie each gets half", np.minimum,
           k.minimum_partials, ("(a < b) + 0.5 * (a == b)", "(b < a) + 0.5 * (a == b)"), keeps_int=True),
)
