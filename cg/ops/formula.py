"""Local derivatives as formulas: each op's derivative written once, as a small expression over
its inputs, output y, cotangent g and attributes, from which come three things that therefore
cannot disagree: the value (a tiny evaluator over an allow-list, never eval), Unicode text
("1/x", "aᵇ·ln a") and LaTeX. The op tests evaluate every formula at the op's test points and compare
it with the op's VJP (tests/ops/test_formulas.py), so a formula cannot drift from the rule.

Two kinds:
- "local": the elementwise partial derivative ∂y/∂xᵢ (an elementwise op's VJP is g times it,
  summed back over broadcast axes);
- "vjp": the cotangent of the input itself, in terms of g (matmul, reductions, softmax...).

The source syntax: numbers, names, + - * / ** @, unary -, one comparison (printed as an Iverson
bracket, [x > 0]) and calls of the functions in FUNCS. Parsing is lazy: nothing here runs unless
a formula is asked for (`cg ops`, `cg run --edges`, the tests).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from functools import reduce
from typing import Any

import numpy as np

import cg.ops.kernels as k

Env = dict[str, Any]


# Plain classes, not dataclasses: every `cg run` imports the op records, and a dataclass costs
# about half a millisecond to create.
class Fn:
    """A function a formula may call: its value (given the arguments' values and the environment,
    for the attributes and shapes it needs), and its Unicode and LaTeX templates ({0}: argument)."""

    __slots__ = ("latex", "text", "value")

    def __init__(self, value: Callable[..., Any], text: str, latex: str) -> None:
        self.value, self.text, self.latex = value, text, latex


def _expand(v: Any, env: Env) -> Any:
    """A reduction's cotangent with its reduced axes put back, broadcast to x's shape."""
    x = env["x"]
    axis, keep = env.get("axis"), env.get("keepdims", False)
    axes = tuple(range(np.ndim(x))) if axis is None else tuple(
        a % np.ndim(x) for a in ([axis] if isinstance(axis, int) else axis))
    return np.broadcast_to(v if keep else np.expand_dims(v, axes), np.shape(x))


def _count(env: Env) -> int:
    """How many entries of x each output entry of a reduction sees: what a mean divides by."""
    return max(math.prod(np.shape(env["x"])) // max(math.prod(np.shape(env["y"])), 1), 1)


def _argmax(env: Env) -> Any:
    """1 at the maxima of x along the reduced axes (shared when tied), 0 elsewhere."""
    mask = env["x"] == _expand(env["y"], env)
    return mask / _expand(_sum_over(mask, env), env)


def _sum_over(v: Any, env: Env) -> Any:
    axis, keep = env.get("axis"), env.get("keepdims", False)
    axes = None if axis is None else tuple([axis] if isinstance(axis, int) else axis)
    return np.sum(v, axis=axes, keepdims=keep)


def _inner(u: Any, v: Any, env: Env) -> Any:
    return np.sum(u * v, axis=env["axis"], keepdims=True)


def _onehot(i: Any, env: Env) -> Any:
    return (np.arange(np.shape(env["v"])[-1]) == np.asarray(i)[..., None]).astype(np.float64)


def _unpermute(v: Any, env: Env) -> Any:
    axes = env.get("axes")
    perm = tuple(reversed(range(np.ndim(v)))) if axes is None else tuple(a % np.ndim(v) for a in axes)
    return np.transpose(v, np.argsort(perm))


FUNCS: dict[str, Fn] = {
    "exp": Fn(lambda v, env: np.exp(v), "exp({0})", r"e^{{{0}}}"),
    "log": Fn(lambda v, env: np.log(v), "ln {0}", r"\ln {0}"),
    "sqrt": Fn(lambda v, env: np.sqrt(v), "√{0}", r"\sqrt{{{0}}}"),
    "sin": Fn(lambda v, env: np.sin(v), "sin {0}", r"\sin {0}"),
    "cos": Fn(lambda v, env: np.cos(v), "cos {0}", r"\cos {0}"),
    "sign": Fn(lambda v, env: np.sign(v), "sign({0})", r"\operatorname{{sign}}({0})"),
    "T": Fn(lambda v, env: np.swapaxes(v, -1, -2), "{0}ᵀ", r"{0}^\top"),
    "expand": Fn(_expand, "broadcast({0})", r"\operatorname{{broadcast}}({0})"),  # to x's shape
    "argmax": Fn(lambda v, env: _argmax(env), "onehot(argmax {0})", r"\mathbb{{1}}[{0} = \max {0}]"),
    "total": Fn(lambda v, env: np.sum(v, axis=env["axis"], keepdims=True), "Σ{0}", r"\textstyle\sum {0}"),
    "inner": Fn(_inner, "⟨{0}, {1}⟩", r"\langle {0}, {1} \rangle"),
    "softmax": Fn(lambda v, env: k.softmax(v, env["axis"]), "softmax({0})", r"\operatorname{{softmax}}({0})"),
    "onehot": Fn(_onehot, "onehot({0})", r"e_{{{0}}}"),
    "col": Fn(lambda v, env: np.asarray(v)[..., None], "{0}", "{0}"),  # g against a last axis: printed as g
    "unpermute": Fn(_unpermute, "{0} with x's axis order", r"\operatorname{{permute}}^{{-1}}({0})"),
    "unshape": Fn(lambda v, env: np.reshape(v, np.shape(env["x"])), "{0} reshaped to x's shape",
                  r"\operatorname{{reshape}}_{{x}}({0})"),
    # broadcast_to's and sum_to's: g summed back to x's shape over the axes broadcasting added, and g
    # broadcast to x's shape (the shape sum_to summed it from)
    "unbroadcast": Fn(lambda v, env: k.unbroadcast(np.asarray(v), np.shape(env["x"])),
                      "Σ {0} over the broadcast axes", r"\textstyle\sum_{{\mathrm{{broadcast}}}} {0}"),
    "spread": Fn(lambda v, env: np.broadcast_to(v, np.shape(env["x"])), "{0} broadcast to x's shape",
                 r"\operatorname{{broadcast}}_{{x}}({0})"),
}
# Names bound by the environment beyond the inputs, y, g and the attributes.
SPECIAL = {"others": ("∏ⱼ≠ᵢ xⱼ", r"\prod_{j \ne i} x_j"), "n": ("n", "n")}
BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.Pow: operator.pow, ast.MatMult: operator.matmul,
}
CMPOPS: dict[type, tuple[Callable[[Any, Any], Any], str, str]] = {
    ast.Gt: (operator.gt, ">", ">"), ast.Lt: (operator.lt, "<", "<"), ast.Eq: (operator.eq, "=", "="),
}
SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹⁻ᵃᵇⁿˣʸ"
SUPERSCRIPT = str.maketrans("0123456789-abnxy", SUPERSCRIPTS)
LATEX_ESCAPES = {c: "\\" + c for c in "_&%$#{}"} | {"\\": r"\textbackslash{}", "~": r"\textasciitilde{}",
                                                      "^": r"\textasciicircum{}"}
MINUS = "\N{MINUS SIGN}"  # Unicode text writes minus signs, not hyphens
PARENS = r"\left({}\right)"
PRECEDENCE = {ast.Add: 1, ast.Sub: 1, ast.MatMult: 2, ast.Mult: 2, ast.Div: 2, ast.Pow: 4}


class FormulaError(ValueError):
    """A formula source outside the allowed syntax (a bug in an op record, found by the tests)."""


class Formula:
    """One formula: its source, e.g. "y * (1 - y)", and its kind: "local" (∂y/∂xᵢ, elementwise)
    or "vjp" (the input's cotangent in terms of g). Parsed when first used, then kept."""

    __slots__ = ("_tree", "kind", "source")

    def __init__(self, source: str, kind: str = "local") -> None:
        self.source, self.kind = source, kind
        self._tree: ast.expr | None = None

    def __repr__(self) -> str:
        return f"Formula({self.source!r}, {self.kind!r})"

    @property
    def tree(self) -> ast.expr:
        if self._tree is None:
            self._tree = _parse(self.source)
        return self._tree

    @property
    def text(self) -> str:
        return show(self.tree, False)

    @property
    def latex(self) -> str:
        return show(self.tree, True)

    def value(self, env: Env) -> Any:
        return _eval(self.tree, env)


def _parse(source: str) -> ast.expr:
    """The formula's expression, checked against the allow-list once."""
    tree = ast.parse(source, mode="eval").body
    for node in ast.walk(tree):
        if not isinstance(node, (ast.BinOp, ast.UnaryOp, ast.USub, ast.Compare, ast.Call, ast.Name, ast.Constant,
                                 ast.Load, ast.expr_context, *BINOPS, *CMPOPS)):
            raise FormulaError(f"formula {source!r}: {type(node).__name__} is not allowed")
        if isinstance(node, ast.Call) and (not isinstance(node.func, ast.Name) or node.func.id not in FUNCS
                                           or node.keywords):
            raise FormulaError(f"formula {source!r}: only calls of {', '.join(FUNCS)}")
        if isinstance(node, ast.Compare) and len(node.ops) != 1:
            raise FormulaError(f"formula {source!r}: one comparison at a time")
    return tree


class Formulas:
    """An op's formulas: one per input position (the last repeats: variadic ops have one rule for
    "input i"), None for an input with no derivative (an integer index); the names the formulas
    give the inputs; matrices: the inputs and g are made matrices as numpy's matmul does."""

    __slots__ = ("matrices", "names", "rules")

    def __init__(self, rules: tuple[Formula | None, ...], names: tuple[str, ...] = ("x",),
                 matrices: bool = False) -> None:
        self.rules, self.names, self.matrices = rules, names, matrices

    def __repr__(self) -> str:
        return f"Formulas({self.rules!r}, {self.names!r}, matrices={self.matrices})"

    def rule(self, i: int) -> Formula | None:
        return self.rules[min(i, len(self.rules) - 1)]

    def env(self, i: int, xs: Sequence[Any], y: Any, g: Any = None, attrs: dict[str, Any] | None = None) -> Env:
        """The names formula i sees: the inputs (x is input i), y, g, `others` (the product of
        the other inputs), n (the entries a reduction sees) and the attributes."""
        env: Env = dict(attrs or {})
        xs = [np.asarray(x) for x in xs]  # a Python 0.0 constant divides to inf as numpy does, not an error
        env.update(zip(self.names, xs))
        env.update(x=xs[i], y=y, g=g)  # after the names: a variadic op's x is input i
        if len(xs) > 1:
            env["others"] = reduce(operator.mul, [*xs[:i], *xs[i + 1:]])
        if self.matrices:
            env["g"], *abc = k.as_matrices(np.asarray(g), *xs)
            env.update(zip(self.names, abc))
        env["n"] = _count(env)
        return env

    def label(self, i: int, variadic: bool = False) -> str:
        """What formula i gives: "∂y/∂x" (a local derivative) or "∂L/∂x" (a VJP: g is ∂L/∂y)."""
        rule = self.rule(i)
        name = "xᵢ" if variadic else self.names[i] if i < len(self.names) else f"x{i + 1}"
        return f"∂{'L' if rule is not None and rule.kind == 'vjp' else 'y'}/∂{name}"

    def lines(self, arity: int | None) -> list[str]:
        """"∂y/∂a = 1/b" for each input (once for a variadic op, arity None): for `cg ops`."""
        if arity is None:
            rule = self.rule(0)
            return [f"{self.label(0, True)} = {rule.text if rule else '-'}"]
        return [f"{self.label(i)} = {rule.text}" for i in range(arity) if (rule := self.rule(i)) is not None]

    def value(self, i: int, xs: Sequence[Any], y: Any, g: Any = None, attrs: dict[str, Any] | None = None) -> Any:
        """Formula i's value at a point; a matrix formula's summed back to input i's shape."""
        rule = self.rule(i)
        if rule is None:
            return None
        v = rule.value(self.env(i, xs, y, g, attrs))
        if self.matrices:
            shape = np.shape(xs[i])
            if len(shape) == 1:  # the row (a) or column (b) numpy made of a 1-D operand
                v = v[..., 0, :] if i == 0 else v[..., :, 0]
            v = k.unbroadcast(v, shape)
        return v


# ---- evaluation --------------------------------------------------------------------------------


def _eval(node: ast.expr, env: Env) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return env[node.id]
    if isinstance(node, ast.UnaryOp):
        return -_eval(node.operand, env)
    if isinstance(node, ast.BinOp):
        return BINOPS[type(node.op)](_eval(node.left, env), _eval(node.right, env))
    if isinstance(node, ast.Compare):
        return CMPOPS[type(node.ops[0])][0](_eval(node.left, env), _eval(node.comparators[0], env))
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)  # the allow-list checked it
    return FUNCS[node.func.id].value(*(_eval(a, env) for a in node.args), env)


# ---- printing ----------------------------------------------------------------------------------


def _prec(node: ast.expr) -> int:
    if isinstance(node, ast.BinOp):
        return PRECEDENCE[type(node.op)]
    if isinstance(node, ast.UnaryOp):
        return 3
    if isinstance(node, ast.Compare):
        return 5  # bracketed
    return 6


def _number(v: Any) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def show(node: ast.expr, latex: bool, names: Mapping[str, str] | None = None) -> str:
    """The formula as Unicode text or LaTeX; `names` replaces the formula's names (x, y...) with
    others (a node's own: "1/e"), already made safe to show by the caller."""
    return (_latex if latex else _text)(node, names or {})


def _name(name: str, latex: bool, names: Mapping[str, str]) -> str:
    if name in names:
        return names[name]
    return SPECIAL[name][latex] if name in SPECIAL else name


def _text(node: ast.expr, names: Mapping[str, str]) -> str:
    def sub(n: ast.expr, at_least: int) -> str:
        s = _text(n, names)
        # A node's name from a function's inside ("loss/q") is bracketed in an operation: 1/(loss/q).
        compound = isinstance(n, ast.Name) and n.id in names and not s.replace("_", "").isalnum()
        return f"({s})" if _prec(n) < at_least or (compound and at_least > 0) else s

    if isinstance(node, ast.Constant):
        return _number(node.value)
    if isinstance(node, ast.Name):
        return _name(node.id, False, names)
    if isinstance(node, ast.UnaryOp):
        return MINUS + sub(node.operand, 3)
    if isinstance(node, ast.Compare):
        return f"[{sub(node.left, 0)} {CMPOPS[type(node.ops[0])][1]} {sub(node.comparators[0], 0)}]"
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        fn = FUNCS[node.func.id]
        return fn.text.format(*(sub(a, 6 if fn.text.startswith("{") else 0) for a in node.args))
    assert isinstance(node, ast.BinOp)
    op, p = type(node.op), PRECEDENCE[type(node.op)]
    left, right = sub(node.left, p + (op is ast.Pow)), sub(node.right, p + (op in (ast.Sub, ast.Div)))
    if op is ast.Pow:
        plain = _text(node.right, names)
        sup = plain.translate(SUPERSCRIPT)
        return left + (sup if all(c in SUPERSCRIPTS for c in sup) else f"^({plain})")
    if op is ast.Mult:  # "2x" and "y(1 - y)" joined, but "2·w1" and "b·a^(b - 1)"
        short = len(right) == 1 or isinstance(node.right, ast.Call)
        joined = (isinstance(node.left, ast.Constant) and short) or right.startswith(("(", "["))
        return left + ("" if joined else "·") + right
    return left + {ast.Add: " + ", ast.Sub: f" {MINUS} ", ast.Div: "/", ast.MatMult: " "}[op] + right


def _latex(node: ast.expr, names: Mapping[str, str]) -> str:
    def sub(n: ast.expr, at_least: int) -> str:
        s = _latex(n, names)
        return PARENS.format(s) if _prec(n) < at_least else s

    if isinstance(node, ast.Constant):
        return _number(node.value)
    if isinstance(node, ast.Name):
        return _name(node.id, True, names)
    if isinstance(node, ast.UnaryOp):
        return "-" + sub(node.operand, 3)
    if isinstance(node, ast.Compare):
        return f"[{sub(node.left, 0)} {CMPOPS[type(node.ops[0])][2]} {sub(node.comparators[0], 0)}]"
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        return FUNCS[node.func.id].latex.format(*(sub(a, 0) for a in node.args))
    assert isinstance(node, ast.BinOp)
    op, p = type(node.op), PRECEDENCE[type(node.op)]
    if op is ast.Div:
        return rf"\frac{{{sub(node.left, 0)}}}{{{sub(node.right, 0)}}}"
    if op is ast.Pow:
        return sub(node.left, 5) + "^{" + sub(node.right, 0) + "}"
    left, right = sub(node.left, p), sub(node.right, p + (op is ast.Sub))
    sep = {ast.Add: " + ", ast.Sub: " - ", ast.Mult: r" \cdot ", ast.MatMult: r" \, "}[op]
    if op is ast.Mult and (isinstance(node.left, ast.Constant) or right.startswith(r"\left")):
        sep = " "
    return left + sep + right


def latex_name(name: str) -> str:
    """A name from a graph file as LaTeX: one letter as it is, longer names upright, with TeX's
    special characters escaped (hidden_1 -> \\mathrm{hidden\\_1})."""
    if (len(name) == 1 and name.isalpha()) or name.replace(".", "", 1).lstrip("-").isdigit():
        return name  # a letter, or a constant's number
    escaped = "".join(LATEX_ESCAPES.get(c, c) for c in name)
    return r"\mathrm{" + escaped + "}"
