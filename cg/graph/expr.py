"""Expressions turned into graph nodes: `log(3*x**2 + 5*x*y)` gives one node per operation.

The text is parsed with Python's `ast` (parsed, never evaluated) and checked against an
allow-list: numbers, names, the operators + - * / ** @, unary - and +, parentheses, and calls of
the ops of the registry (`cg ops`), whose attributes are keyword arguments (`sum(v, axis=0)`).
Anything else is an ExprError with a stable code and the 1-based column, in the text, of the
offending piece. Tabs and line breaks count as spaces, so a column is an offset in the text.

Nodes come in the order they are computed (arguments left to right, then the operation):
- a chain a*b*c (as Python groups it: left to right) is one product. Its non-constant factors go
  in one `mul` node (or the factor itself when there is one) and the constant factors (number
  literals) are applied last: `5*x*y` is c = mul(x, y), d = mul(5, c); `3*x**2` is
  a = square(x), b = mul(3, a);
- a chain a+b+c is one `add`; a-b is `sub`, a/b `div`, a@b `matmul`; x**2 is `square`, any other
  power `pow`; -x is `neg`, but -3 is the number -3; +x is x;
- f(a, b, k=v) is the op f with attribute k (a number, true/false, None or a list of integers).

Node ids are names(i) for the i-th node, by default a, b, ..., z, aa, ab, ... skipping the free
names of the expression (and `reserved`). The output is the id of the last node, which is the
value of the whole expression; an expression with no operation (a bare name or number) is an
error, CG602, since a graph has no identity op to hold it.

This module is longer than the others (about 500 lines) on purpose: it is one parser, the
allow-list, the walk that emits nodes and the column-exact errors all read the same `ast` nodes,
and split apart each piece would need the others' private state.
"""

from __future__ import annotations

import ast
import itertools
import math
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from cg.errors import Diagnostic, GraphError, Pos, did_you_mean
from cg.graph.expr_hints import euler_power, implicit_product, juxtaposed_call
from cg.ops import REGISTRY

MAX_CHARS = 10_000  # an expression longer than this belongs in a graph file
MAX_DEPTH = 200  # nesting of operations (a flattened chain a+b+c counts once)
INT_LIMIT = 2**63  # integer literals beyond int64 are refused (write 1e30)
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
ALLOWED = "allowed: numbers, names, + - * / ** @, unary -, ( ), and ops called by name: log(x), sum(v, axis=0)"
# Hints only, for names that people coming from numpy or maths try (the ops are REGISTRY's).
ALIASES = {"min": "minimum", "ln": "log", "power": "pow", "dot": "matmul", "expit": "sigmoid", "absolute": "abs",
           "negative": "neg", "multiply": "mul", "subtract": "sub", "divide": "div"}
BINARY = {ast.Sub: "sub", ast.Div: "div", ast.MatMult: "matmul"}
FORBIDDEN_OPS = {ast.FloorDiv: "//", ast.Mod: "%", ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|",
                 ast.BitXor: "^", ast.BitAnd: "&"}
FORBIDDEN_NODES: dict[type, str] = {
    ast.Lambda: "lambda", ast.IfExp: "a conditional expression (a if c else b)",
    ast.ListComp: "a comprehension", ast.SetComp: "a comprehension", ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a comprehension", ast.NamedExpr: "an assignment (:=)", ast.Starred: "unpacking (*)",
    ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield", ast.JoinedStr: "an f-string",
    ast.List: "a list", ast.Tuple: "a tuple", ast.Set: "a set", ast.Dict: "a dict",
    ast.Slice: "a slice",
}


@dataclass(frozen=True)
class ExprNode:
    """One operation: `id = op(*args, **attrs)`; args are node ids, free names or numbers."""

    id: str
    op: str
    args: tuple[str | int | float, ...]
    attrs: dict[str, Any]
    col: int  # 1-based column in the text where this operation is written (operator or function)


@dataclass(frozen=True)
class ExprGraph:
    nodes: tuple[ExprNode, ...]  # in the order they are computed
    inputs: tuple[str, ...]  # free names, in the order of their first use
    output: str  # id of the last node: the value of the expression


class ExprError(GraphError):
    """An expression that is not in the allow-list, with its 1-based column and a stable code.

    A GraphError whose one diagnostic reads `expr:1:COL: message`; code embedding an expression
    in a file reads `message`, `col` and `code` to place it there."""

    def __init__(self, message: str, col: int, code: str) -> None:
        self.message = message
        self.col = col
        self.code = code
        super().__init__([Diagnostic(code, message, "expr", Pos(1, col))])


def default_name(i: int) -> str:
    """a, b, ..., z, aa, ab, ...: the i-th (0-based) name of the default scheme."""
    name = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        name = chr(ord("a") + r) + name
    return name


def parse_expr(
    text: str,
    *,
    names: Callable[[int], str] | None = None,
    known: Collection[str] | None = None,
    reserved: Collection[str] = (),
) -> ExprGraph:
    """The nodes of `text`. `names(i)` gives the id of the i-th node (see the module doc);
    ids given by `names` must differ from each other and from the free names (CG111).
    `known`: if given, a free name not in it is an error (CG110, with a suggestion).
    `reserved`: ids the default scheme skips as well (e.g. the id the caller gives the output)."""
    clean = _prepare(text)
    body = clean.lstrip()  # Python reads leading spaces as an indent
    shift = len(clean) - len(body)
    try:
        lowering, root = _lower(body, known)
    except ExprError as e:
        raise ExprError(e.message, e.col + shift, e.code) from None
    for p in lowering.pending:
        p.col += shift
    free = tuple(lowering.free)
    ids = _assign_ids(lowering.pending, free, names, reserved)

    def ref(arg: _Operand) -> str | int | float:
        return ids[arg.index] if isinstance(arg, _Tmp) else arg

    nodes = tuple(ExprNode(ids[k], p.op, tuple(ref(a) for a in p.args), p.attrs, p.col)
                  for k, p in enumerate(lowering.pending))
    return ExprGraph(nodes, free, ids[root.index])


def _lower(body: str, known: Collection[str] | None) -> tuple[_Lowering, _Tmp]:
    try:
        tree = ast.parse(body, mode="eval")  # parsed only: nothing is compiled or run
    except SyntaxError as e:
        col = e.offset if isinstance(e.offset, int) and 0 < e.offset <= len(body) + 1 else 1
        if "too many nested parentheses" in (e.msg or ""):  # Python's parser stops at 200 brackets: the depth limit
            raise ExprError(f"nested more than {MAX_DEPTH} levels deep", col, "CG004") from None
        if (implicit := implicit_product(body)) is not None:  # 2x: what a student means by it
            raise ExprError(implicit[1], implicit[0], "CG600") from None
        raise ExprError(f"syntax error: {e.msg or 'invalid syntax'}", col, "CG600") from None
    except (RecursionError, MemoryError):
        raise ExprError("too deeply nested for Python's parser", 1, "CG004") from None
    lowering = _Lowering(body, known)
    root = lowering.lower(tree.body)
    if not isinstance(root, _Tmp):
        raise ExprError(f"{body.strip()!r} has no operation: an expression needs one, e.g. log(x) or x*y", 1,
                        "CG602")
    return lowering, root


# ---- text and ids ---------------------------------------------------------------------------------


def _prepare(text: str) -> str:
    """The text with tabs and line breaks as spaces; anything but printable ASCII is refused."""
    if len(text) > MAX_CHARS:
        raise ExprError(f"the expression has {len(text):,} characters; at most {MAX_CHARS:,}", MAX_CHARS + 1, "CG004")
    chars = []
    for i, ch in enumerate(text):
        if ch in "\t\n\r":
            ch = " "
        elif ch == "#":
            raise ExprError("comments (#) are not allowed in an expression", i + 1, "CG601")
        elif not " " <= ch <= "~":
            raise ExprError(f"character {ch!r} is not allowed: expressions are ASCII (x*y, x**2)", i + 1, "CG600")
        chars.append(ch)
    clean = "".join(chars)
    if not clean.strip():
        raise ExprError("empty expression", 1, "CG600")
    return clean


def _assign_ids(pending: list[_Pending], free: tuple[str, ...], names: Callable[[int], str] | None,
                reserved: Collection[str]) -> list[str]:
    if names is None:
        taken = {*free, *reserved}
        candidates = (n for n in map(default_name, itertools.count()) if n not in taken)
        return list(itertools.islice(candidates, len(pending)))
    ids: list[str] = []
    seen: set[str] = set()
    for i, p in enumerate(pending):
        nid = names(i)
        if not isinstance(nid, str) or not NAME_RE.match(nid):
            raise ValueError(f"names({i}) gave {nid!r}, not a name")
        if nid in seen or nid in free:
            what = "a name in the expression" if nid in free else "the id of another node"
            raise ExprError(f"node id '{nid}' is also {what}", p.col, "CG111")
        seen.add(nid)
        ids.append(nid)
    return ids


# ---- lowering: ast -> nodes, with an explicit stack ----------------------------------------------


@dataclass(frozen=True)
class _Tmp:
    index: int  # a node before it has its id: the index of its _Pending


_Operand = _Tmp | str | int | float


@dataclass
class _Pending:
    op: str
    args: list[_Operand]
    attrs: dict[str, Any]
    col: int


def _end(node: ast.AST) -> int:
    end = getattr(node, "end_col_offset", None)
    return end if isinstance(end, int) else _col(node) - 1


def _col(node: ast.AST) -> int:
    return int(getattr(node, "col_offset", 0)) + 1


class _Lowering:
    def __init__(self, text: str, known: Collection[str] | None) -> None:
        self.text = text
        self.known = None if known is None else set(known)
        self.pending: list[_Pending] = []
        self.free: dict[str, None] = {}  # an ordered set
        self.kids: dict[int, list[ast.expr]] = {}
        self.cols: dict[int, int] = {}
        self.attr_values: dict[int, dict[str, Any]] = {}

    def lower(self, root: ast.expr) -> _Operand:
        """Post-order over the tree with an explicit stack. After a problem the walk goes on,
        checking only, so that the leftmost problem is the one reported."""
        done: dict[int, _Operand] = {}
        first: ExprError | None = None
        stack: list[tuple[ast.expr, int, bool]] = [(root, 1, False)]
        while stack:
            node, depth, ready = stack.pop()
            if ready:
                if first is None:
                    done[id(node)] = self.finish(node, [done[id(k)] for k in self.kids[id(node)]])
                continue
            if depth > MAX_DEPTH:
                raise ExprError(f"nested more than {MAX_DEPTH} levels deep", _col(node), "CG004")
            try:
                kids = self.check(node)
                self.kids[id(node)] = kids
                stack.append((node, depth, True))
            except ExprError as e:
                first = e if first is None or e.col < first.col else first
                skip = node.func if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) else None
                kids = [k for k in ast.iter_child_nodes(node) if isinstance(k, ast.expr) and k is not skip]
            stack.extend((k, depth + 1, False) for k in reversed(kids))
        if first is not None:
            raise first
        return done[id(root)]

    def emit(self, op: str, args: Sequence[_Operand], col: int, attrs: dict[str, Any] | None = None) -> _Tmp:
        self.pending.append(_Pending(op, list(args), attrs or {}, col))
        return _Tmp(len(self.pending) - 1)

    # -- the allow-list: each node is checked before its arguments

    def check(self, node: ast.expr) -> list[ast.expr]:
        """The arguments of `node`, or an ExprError if it is not allowed."""
        if _number(node) is not None:
            return []
        if isinstance(node, ast.Constant):
            raise ExprError(_constant_problem(node.value), _col(node), "CG601")
        if isinstance(node, ast.Name):
            self.name(node)
            return []
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, (ast.USub, ast.UAdd)):
                return [node.operand]
            what = "'not'" if isinstance(node.op, ast.Not) else "'~'"
            raise ExprError(f"{what} is not allowed; {ALLOWED}", _col(node), "CG601")
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.forbidden(node)

    def name(self, node: ast.Name) -> None:
        name = node.id
        if self.known is not None and name not in self.known:
            hint = did_you_mean(name, sorted(self.known))
            raise ExprError(f"unknown name '{name}'{hint}", _col(node), "CG110")
        self.free.setdefault(name)

    def binop(self, node: ast.BinOp) -> list[ast.expr]:
        kind = type(node.op)
        if kind in (ast.Pow, ast.BitXor) and isinstance(node.left, ast.Name) and node.left.id == "e" and (
                self.known is None or "e" not in self.known):
            exponent = ast.get_source_segment(self.text, node.right) or "x"
            raise ExprError(euler_power(exponent), _col(node.left), "CG601")
        if kind in FORBIDDEN_OPS:
            sym = FORBIDDEN_OPS[kind]
            hint = " (powers are written x**2)" if sym == "^" else ""
            raise ExprError(f"the operator {sym} is not allowed{hint}; {ALLOWED}", self.op_col(node), "CG601")
        if kind in (ast.Add, ast.Mult):  # a chain, as Python groups it: ((a + b) + c) + d
            operands = [node.right]
            cur: ast.expr = node.left
            first = node
            while isinstance(cur, ast.BinOp) and type(cur.op) is kind:
                operands.append(cur.right)
                first, cur = cur, cur.left
            operands.append(cur)
            self.cols[id(node)] = self.op_col(first)
            return operands[::-1]
        self.cols[id(node)] = self.op_col(node)
        if kind is ast.Pow and _number(node.right) == 2:
            return [node.left]
        return [node.left, node.right]

    def call(self, node: ast.Call) -> list[ast.expr]:
        func = node.func
        if not isinstance(func, ast.Name):
            if isinstance(func, ast.Attribute):
                raise self.forbidden(func)
            paren = self.text.find("(", _end(func))
            if _number(func) is not None or isinstance(func, (ast.BinOp, ast.UnaryOp, ast.Call)):
                raise ExprError(juxtaposed_call(self.text, _col(node) - 1, paren, _end(node)), paren + 1, "CG601")
            raise ExprError(f"only ops can be called, by their name; {ALLOWED}", paren + 1, "CG601")
        op = REGISTRY.get(func.id)
        if op is None:
            alias = ALIASES.get(func.id)
            hint = f" (did you mean '{alias}'?)" if alias in REGISTRY else did_you_mean(func.id, sorted(REGISTRY))
            product = ""
            if not hint and len(node.args) == 1 and not node.keywords and _plain(node.args[0]):  # x(y+1)
                text = juxtaposed_call(self.text, _col(node) - 1, self.text.find("(", _end(func)), _end(node))
                product = f"; to multiply, {text.rsplit(': ', 1)[1]}"
            raise ExprError(f"unknown function '{func.id}'{hint}: the functions are the ops (`cg ops` lists them)"
                            f"{product}", _col(func), "CG101")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.forbidden(arg)
        lo, hi = op.arity
        n = len(node.args)
        if n < lo or (hi is not None and n > hi):
            hint = ""
            if op.name == "max" and n == 2:
                hint = "; the elementwise maximum of two is maximum(a, b)"
            elif op.attrs and hi is not None and n > hi:
                hint = f"; attributes are keywords, e.g. {op.name}(x, {next(iter(op.attrs))}=...)"
            raise ExprError(f"{op.name} takes {op.arity_text()}, got {n}{hint}", _col(func), "CG102")
        self.cols[id(node)] = _col(func)
        self.attr_values[id(node)] = self.attrs(node)
        return list(node.args)

    def op_col(self, node: ast.BinOp | ast.Compare | ast.BoolOp) -> int:
        """The column of the operator after the first operand (skipping spaces and parentheses)."""
        if isinstance(node, ast.BinOp):
            start, stop = _end(node.left), node.right.col_offset
        elif isinstance(node, ast.Compare):
            start, stop = _end(node.left), node.comparators[0].col_offset
        else:
            start, stop = _end(node.values[0]), node.values[1].col_offset
        for i in range(start, stop):
            if self.text[i] not in " ()":
                return i + 1
        return _col(node)

    def forbidden(self, node: ast.AST) -> ExprError:
        if isinstance(node, ast.Attribute):
            col = _end(node) - len(node.attr) + 1
            return ExprError(f"attribute access (.{node.attr}) is not allowed: call ops by their name, e.g."
                             f" {node.attr}(x); {ALLOWED}", col, "CG601")
        if isinstance(node, ast.Subscript):
            col = self.text.find("[", _end(node.value)) + 1
            return ExprError(f"subscripts ([...]) are not allowed: index(v, i) picks entry i of the last axis;"
                             f" {ALLOWED}", col, "CG601")
        if isinstance(node, ast.Compare):
            return ExprError(f"comparisons are not allowed; {ALLOWED}", self.op_col(node), "CG601")
        if isinstance(node, ast.BoolOp):
            return ExprError(f"'and' and 'or' are not allowed; {ALLOWED}", self.op_col(node), "CG601")
        what = FORBIDDEN_NODES.get(type(node), f"{type(node).__name__}")
        return ExprError(f"{what} is not allowed; {ALLOWED}", _col(node), "CG601")

    # -- the nodes, once the arguments are done

    def finish(self, node: ast.expr, args: list[_Operand]) -> _Operand:
        number = _number(node)
        if number is not None:
            return number
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.UnaryOp):
            return args[0] if isinstance(node.op, ast.UAdd) else self.emit("neg", args, _col(node))
        col = self.cols[id(node)]
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            return self.emit(node.func.id, args, col, self.attr_values[id(node)])
        assert isinstance(node, ast.BinOp)
        kind = type(node.op)
        if kind is ast.Add:
            return self.emit("add", args, col)
        if kind is ast.Mult:
            consts = [a for a in args if isinstance(a, (int, float))]
            others = [a for a in args if not isinstance(a, (int, float))]
            if not others:
                return self.emit("mul", consts, col)
            base = others[0] if len(others) == 1 else self.emit("mul", others, col)
            return self.emit("mul", [*consts, base], col) if consts else base
        if kind is ast.Pow:
            return self.emit("square", args, col) if len(args) == 1 else self.emit("pow", args, col)
        return self.emit(BINARY[kind], args, col)

    def attrs(self, node: ast.Call) -> dict[str, Any]:
        from jsonschema import Draft202012Validator

        assert isinstance(node.func, ast.Name)
        op = REGISTRY[node.func.id]
        attrs: dict[str, Any] = {}
        for kw in node.keywords:
            col = _col(kw)
            if kw.arg is None:
                raise ExprError(f"unpacking (**) is not allowed; {ALLOWED}", col, "CG601")
            spec = op.attrs.get(kw.arg)
            if spec is None:
                known = ", ".join(op.attrs) if op.attrs else "none"
                hint = did_you_mean(kw.arg, list(op.attrs))
                raise ExprError(f"{op.name} has no attribute '{kw.arg}'{hint} (its attributes: {known})", col,
                                "CG103")
            value = _attr_value(kw.value, kw.arg)
            if not Draft202012Validator(spec.schema).is_valid(value):
                raise ExprError(f"{op.name}: attribute {kw.arg}={value!r} does not fit: {spec.doc}",
                                _col(kw.value), "CG100")
            attrs[kw.arg] = value
        for key, spec in op.attrs.items():
            if spec.required and key not in attrs:
                raise ExprError(f"{op.name} needs the attribute {key}= ({spec.doc})", _col(node.func), "CG100")
        return attrs


# ---- literals -------------------------------------------------------------------------------------


def _plain(node: ast.AST) -> bool:
    """An operand made only of names, numbers and arithmetic (what a product could hold)."""
    return all(isinstance(n, (ast.Name, ast.Constant, ast.BinOp, ast.UnaryOp, ast.operator, ast.unaryop,
                              ast.expr_context)) and not (isinstance(n, ast.Constant) and isinstance(n.value, str))
               for n in ast.walk(node))


def _number(node: ast.AST) -> int | float | None:
    """The value of a number literal, signs included (-3, +2.5), or None; CG007 if unusable."""
    sign = 1
    cur = node
    while isinstance(cur, ast.UnaryOp) and isinstance(cur.op, (ast.USub, ast.UAdd)):
        sign = -sign if isinstance(cur.op, ast.USub) else sign
        cur = cur.operand
    if not isinstance(cur, ast.Constant) or isinstance(cur.value, bool):
        return None
    value = cur.value
    if isinstance(value, int):
        if abs(value) >= INT_LIMIT:
            raise ExprError("an integer out of range (beyond int64): write it as a float, e.g. 1e30", _col(cur),
                            "CG007")
        return sign * value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ExprError("a number that is not finite (too large for float64)", _col(cur), "CG007")
        return sign * value
    return None


def _constant_problem(value: Any) -> str:
    what = {bool: f"{value} is only allowed as an attribute (keepdims=True)", str: "strings are not allowed",
            bytes: "strings are not allowed", complex: "complex numbers are not allowed",
            type(None): "None is only allowed as an attribute (axis=None)"}.get(type(value))
    what = what or f"{value!r} is not allowed"
    return f"{what}; {ALLOWED}"


def _attr_value(node: ast.expr, key: str) -> Any:
    """An attribute: a number, True/False, None, or a flat list or tuple of those."""
    items = node.elts if isinstance(node, (ast.List, ast.Tuple)) else None
    values: list[Any] = []
    for item in items if items is not None else [node]:
        number = _number(item)
        if number is not None:
            values.append(number)
        elif isinstance(item, ast.Constant) and (item.value is None or isinstance(item.value, bool)):
            values.append(item.value)
        else:
            raise ExprError(f"attribute {key}= takes a number, True/False, None or a list of numbers, e.g."
                            f" axis=[0, 1]", _col(item), "CG100")
    return values if items is not None else values[0]


