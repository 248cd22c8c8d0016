"""Kernels as Python source, for `cg compile`: what a code rule (cg/ops/code.py) writes for a
call of a kernel, and the source of the helpers a generated module needs.

A kernel is what the numeric rules call, so the source is read from it and cannot drift:

- an @inline kernel of cg/ops/kernels.py: its `return` expression, parsed from its source, with
  the call's arguments for its parameters (nested @inline calls expanded, `x if True else y`
  folded when an argument is a constant);
- a @helper kernel: a call by name; its source (inspect.getsource) goes into the module;
- a numpy function or ufunc: `np.<name>(...)`; an `operator` function: its Python operator.

On Python floats (the module of an all-scalar graph) numpy's calls become their math
equivalents (MATH), np.where a conditional expression, and `like(c, ...)` just c; helpers are
translated the same way. A kernel that uses anything else has no float form (NoFloatForm).

Text is made once per kernel and kind of call (cached) as a template: `{0}`, `{1}`... stand for
the arguments given as source text (names and literals), constants are written in.
"""

from __future__ import annotations

import ast
import copy
import inspect
import operator
import re
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

from cg.ops.kernels import INLINE, KERNELS

Kernel = Callable[..., Any]
SOURCE = "<source>"  # in a call's `consts`: this argument is source text, a {k} of the template

BINARY = {operator.add: ast.Add, operator.sub: ast.Sub, operator.mul: ast.Mult, operator.truediv: ast.Div,
          operator.matmul: ast.MatMult, operator.pow: ast.Pow}
UNARY = {operator.neg: ast.USub}
# numpy on Python floats: np.<key> -> the math module's function or a builtin.
MATH = {"exp": "math.exp", "log": "math.log", "sqrt": "math.sqrt", "sin": "math.sin", "cos": "math.cos",
        "tanh": "math.tanh", "power": "math.pow", "absolute": "abs", "abs": "abs", "maximum": "max",
        "minimum": "min"}
MATH_CONSTANTS = {"nan", "inf", "pi", "e"}


class NoFloatForm(ValueError):
    """A kernel uses numpy that has no equivalent on Python floats."""


# ---- templates -----------------------------------------------------------------------------------


def template(fn: Kernel, consts: tuple[Any, ...], keywords: tuple[tuple[str, Any], ...] = (),
             floats: bool = False) -> str:
    """The source of fn(*args, **keywords), args[k] being {k} where consts[k] is SOURCE and the
    constant consts[k] otherwise; on Python floats when `floats`."""
    return _cached(fn, _typed(consts), tuple((name, type(v), v) for name, v in keywords), floats, None)


@cache
def plain_template(fn: Kernel, n: int, floats: bool = False) -> str:
    """template() of n arguments that are all source text."""
    return template(fn, (SOURCE,) * n, (), floats)


def templates(fn: Kernel, consts: tuple[Any, ...], floats: bool = False) -> tuple[str, ...]:
    """The templates of the items of the tuple an @inline kernel returns (partial derivatives)."""
    return tuple(_cached(fn, _typed(consts), (), floats, k) for k in range(_width(fn)))


def _typed(values: tuple[Any, ...]) -> tuple[tuple[type, Any], ...]:
    """Values with their types, as a cache key: 1, 1.0 and True are equal, their source is not."""
    return tuple((type(v), v) for v in values)


@cache
def _cached(fn: Kernel, consts: tuple[tuple[type, Any], ...], keywords: tuple[tuple[str, type, Any], ...],
            floats: bool, item: int | None) -> str:
    args = [_placeholder(k) if c == SOURCE and t is str else _constant(c) for k, (t, c) in enumerate(consts)]
    expr = _apply(fn, args, {name: _constant(v) for name, _, v in keywords})
    if item is not None:
        assert isinstance(expr, ast.Tuple), f"{fn.__name__} does not return a tuple"
        expr = expr.elts[item]
    return _text(expr, floats)


@cache
def fold_template(fn: Kernel, n: int, floats: bool = False) -> str:
    """fn(fn({0}, {1}), {2})... over n arguments: `{0} + {1} + {2}` for operator.add."""
    expr: ast.expr = _placeholder(0)
    for k in range(1, n):
        expr = _apply(fn, [expr, _placeholder(k)], {})
    return _text(expr, floats)


def _width(fn: Kernel) -> int:
    body = _body(fn)
    assert isinstance(body, ast.Tuple), f"{fn.__name__} does not return a tuple"
    return len(body.elts)


def _placeholder(k: int) -> ast.Name:
    return ast.Name(f"__cg_arg_{k}__", ast.Load())


def _constant(value: Any) -> ast.expr:
    """A constant argument (an attribute: an axis, a shape, a flag) as an expression."""
    return ast.parse(repr(value), mode="eval").body


def _text(expr: ast.expr, floats: bool) -> str:
    if floats:
        expr = _expr(_FloatForm().visit(copy.deepcopy(expr)))
        if any(isinstance(n, ast.Name) and n.id == "np" for n in ast.walk(expr)):
            raise NoFloatForm(f"no float form for {ast.unparse(expr)}")
    text = ast.unparse(expr).replace("{", "{{").replace("}", "}}")
    return re.sub(r"__cg_arg_(\d+)__", r"{\1}", text)


# ---- from kernels to expressions -----------------------------------------------------------------


def _apply(fn: Kernel, args: list[ast.expr], keywords: dict[str, ast.expr]) -> ast.expr:
    """The expression of fn called with these arguments."""
    if fn in BINARY:
        return ast.BinOp(args[0], BINARY[fn](), args[1])
    if fn in UNARY:
        return ast.UnaryOp(UNARY[fn](), args[0])
    kw = [ast.keyword(name, value) for name, value in keywords.items()]
    name = getattr(fn, "__name__", "")
    if KERNELS.get(name) is fn:
        if name in INLINE and not kw:
            return _expr(_Folder().visit(_Expander().visit(_substitute(fn, args))))
        return ast.Call(ast.Name(name, ast.Load()), args, kw)
    if getattr(np, name, None) is fn:  # a numpy function or ufunc
        return ast.Call(ast.Attribute(ast.Name("np", ast.Load()), name, ast.Load()), args, kw)
    raise TypeError(f"{fn!r} is not a kernel of cg/ops/kernels.py, a numpy function or an operator")


@cache
def _tree(fn: Kernel) -> ast.FunctionDef:
    node = ast.parse(inspect.getsource(fn)).body[0]
    assert isinstance(node, ast.FunctionDef), fn
    return node


def _body(fn: Kernel) -> ast.expr:
    """The expression an @inline kernel returns."""
    body = _tree(fn).body
    if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
        raise TypeError(f"@inline kernel {fn.__name__} must be one `return` of an expression")
    return body[0].value


def _substitute(fn: Kernel, args: list[ast.expr]) -> ast.expr:
    params = [a.arg for a in _tree(fn).args.args]
    if len(params) != len(args):
        raise TypeError(f"{fn.__name__} takes {len(params)} arguments, not {len(args)}")
    values = dict(zip(params, args))

    class Substitute(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.expr:
            return copy.deepcopy(values[node.id]) if node.id in values else node

    return _expr(Substitute().visit(copy.deepcopy(_body(fn))))


class _Expander(ast.NodeTransformer):
    """Calls of other @inline kernels, written in place too."""

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name in INLINE and not node.keywords:
            return _apply(KERNELS[name], list(node.args), {})
        return node


class _Folder(ast.NodeTransformer):
    """`a if True else b` -> a: a branch on a constant argument (keepdims) is decided once."""

    def visit_IfExp(self, node: ast.IfExp) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.test, ast.Constant):
            return node.body if node.test.value else node.orelse
        return node


class _FloatForm(ast.NodeTransformer):
    """numpy -> Python floats: np.log(x) -> math.log(x), np.where(c, a, b) -> a if c else b,
    np.sign(x) -> float((x > 0.0) - (x < 0.0)) (a float, as numpy's on a float), like(c, ...) -> c,
    np.nan -> math.nan."""

    def visit_Call(self, node: ast.Call) -> ast.expr:
        node.args = [self.visit(a) for a in node.args]
        func = node.func
        if isinstance(func, ast.Name) and func.id == "like":
            return node.args[0]
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "np"):
            for k in node.keywords:
                k.value = self.visit(k.value)
            return node
        if func.attr == "where":
            test, yes, no = node.args
            return ast.IfExp(test, yes, no)
        if func.attr == "sign":
            x = node.args[0]
            difference = ast.BinOp(_compare(x, ast.Gt()), ast.Sub(), _compare(copy.deepcopy(x), ast.Lt()))
            return ast.Call(ast.Name("float", ast.Load()), [difference], [])
        if func.attr not in MATH or any(k.arg != "dtype" for k in node.keywords):  # Python floats are float64
            raise NoFloatForm(f"np.{func.attr} has no float form")
        # Python floats: an integer literal becomes a float (max(x, 0) would give the int 0).
        args = [ast.Constant(float(a.value)) if isinstance(a, ast.Constant) and type(a.value) is int else a
                for a in node.args]
        return ast.Call(ast.parse(MATH[func.attr], mode="eval").body, args, [])

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        if isinstance(node.value, ast.Name) and node.value.id == "np" and node.attr in MATH_CONSTANTS:
            return ast.Attribute(ast.Name("math", ast.Load()), node.attr, ast.Load())
        return _expr(self.generic_visit(node))


def _expr(node: ast.AST) -> ast.expr:
    """A transformer's result, which is an expression when it was given one."""
    assert isinstance(node, ast.expr), node
    return node


def _compare(x: ast.expr, op: ast.cmpop) -> ast.Compare:
    return ast.Compare(x, [op], [ast.Constant(0.0)])


# ---- helpers in the generated module -------------------------------------------------------------


@cache
def helper_names() -> frozenset[str]:
    """The names generated code may call: the kernels that are not written inline."""
    return frozenset(KERNELS) - INLINE


def helper_sources(code: str, floats: bool = False) -> list[str]:
    """The source of every helper that `code` calls, and of those they call, in the order of
    cg/ops/kernels.py: as written (numpy), or translated to Python floats."""
    wanted: set[str] = set()
    todo = _called(code)
    while todo:
        name = todo.pop()
        wanted.add(name)
        todo |= _called(_source(name, floats)) - wanted - {name}
    return [_source(name, floats) for name in KERNELS if name in wanted]


def _called(text: str) -> set[str]:
    return set(_calls().findall(text))


@cache
def _calls() -> re.Pattern[str]:
    """A call of a helper by name (not a method: `x.max(`), in generated source."""
    return re.compile(r"(?<![\w.])(" + "|".join(sorted(helper_names())) + r")\(")


@cache
def _source(name: str, floats: bool) -> str:
    fn = KERNELS[name]
    if not floats:
        lines = inspect.getsource(fn).splitlines(keepends=True)
        return "".join(lines[_tree(fn).lineno - 1 :])  # from `def`: the decorator is cg's, not the module's
    tree = copy.deepcopy(_tree(fn))
    tree.decorator_list, tree.returns = [], None
    for arg in (*tree.args.args, *tree.args.kwonlyargs, tree.args.vararg, tree.args.kwarg):
        if arg is not None:
            arg.annotation = None
    tree = _FloatForm().visit(tree)
    text = ast.unparse(tree) + "\n"
    if re.search(r"(?<![\w.])np\.", text):
        raise NoFloatForm(f"helper {name} has no float form")
    return text

