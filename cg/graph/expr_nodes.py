"""Expression nodes in graph files: `s: {expr: "x*y + 1"}` (cg/graph/expr.py parses the text).

An expression node is a composite: its operations become inner nodes `s/a`, `s/b`, ... and its
last operation takes the node's own id, `s`, exactly as a call of a function does (cg.graph.inline
inlines both). Its free names are the graph's inputs and nodes (inside a function: the
function's inputs and nodes). A problem of the text, or a name that is not there, is reported
at its column inside the expression in the file; a shape problem found later is reported at
the column of the operation.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Collection
from typing import Any

import numpy as np

from cg.errors import Diagnostic, Pos
from cg.graph.ir import Const, Node, call_op
from cg.graph.parts import Builder, is_int
from cg.graph.scope import Function, Scope
from cg.ops import REGISTRY
from cg.parse.document import Document

EXPR_KEYS = ("expr", "doc")


class ColumnPos(Pos):
    """The place of column `col` of an expression written at `path`, looked up the first time it
    is read (a valid file never needs it, and finding positions may mean reading the file again)."""

    def __init__(self, doc: Document, path: tuple[Any, ...], col: int) -> None:  # no Pos.__init__
        object.__setattr__(self, "_where", (doc, path, col))

    def __getattr__(self, name: str) -> Any:  # only called while line and col are not set
        if name not in ("line", "col"):
            raise AttributeError(name)
        doc, path, col = self.__dict__["_where"]
        found = column(doc, path, col)
        object.__setattr__(self, "line", found.line)
        object.__setattr__(self, "col", found.col)
        return found.line if name == "line" else found.col

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pos) and (self.line, self.col) == (other.line, other.col)

    def __hash__(self) -> int:
        return hash((self.line, self.col))

    def __repr__(self) -> str:
        return f"Pos(line={self.line}, col={self.col})"


def column(doc: Document, path: tuple[Any, ...], col: int) -> Pos:
    """Column `col` (1-based) of the expression at `path`: the scalar's place, plus one for an
    opening quote. The quote is seen in the file's text; without a file (standard input) the
    scalar is taken as plain. Exact for an expression written on one line."""
    start = doc.pos(path) or Pos(1, 1)
    quote = _char_at(doc.file, start) in ("'", '"')
    return Pos(start.line, start.col + quote + col - 1)


def _char_at(file: str, pos: Pos) -> str:
    try:
        with open(file, encoding="utf-8", errors="replace") as f:
            for k, line in enumerate(f, 1):
                if k == pos.line:
                    return line[pos.col - 1 : pos.col]
    except OSError:
        pass
    return ""


class ExprNodes:
    """Turns `{expr: ...}` specs into call nodes, for Builder.node (one per document part)."""

    def __init__(self, scope: Scope, names: Collection[Any]) -> None:
        self.scope, self.names = scope, names  # the names an expression may use
        self._known: frozenset[str] | None = None

    @property
    def known(self) -> frozenset[str]:
        if self._known is None:  # made on the first expression: most graphs have none
            self._known = frozenset(n for n in self.names if isinstance(n, str))
        return self._known

    def __call__(self, b: Builder, nid: str, spec: dict[str, Any]) -> Node | None:
        from cg.graph.expr import ExprError, parse_expr

        text = spec["expr"]
        path = ("nodes", nid, "expr")
        extra = [k for k in spec if k not in EXPR_KEYS]
        if extra:
            message = (f"an expression node has only `expr` (and `doc`), not {extra[0]!r}; attributes go inside "
                       "the expression, e.g. sum(v, axis=0)")
            b.error("CG100", message, ("nodes", nid, extra[0]), nid, key=True)
            return None
        try:
            graph = parse_expr(text, known=self.known, reserved=(nid,))  # inner ids: s/a, s/b, never s/s
        except ExprError as e:
            b.diags.append(Diagnostic(e.code, e.message, b.doc.file, ColumnPos(b.doc, path, e.col), nid))
            return None
        body = []
        for n in graph.nodes:
            op = REGISTRY[n.op]
            args = tuple(a if isinstance(a, str) else Const(np.asarray(
                a, dtype=np.int64 if k in op.int_args and is_int(a) else np.float64)) for k, a in enumerate(n.args))
            attrs = {name: n.attrs.get(name, attr.default) for name, attr in op.attrs.items()}
            body.append(Node(n.id, op, args, attrs, "", ColumnPos(b.doc, path, n.col)))
        params = tuple(graph.inputs)
        fn = Function(nid, b.doc, {}, params, graph.output, body=tuple(body), size=len(body), text=str(text))
        fn.op = call_op("expr", "an expression", params, frozenset(), b.doc.file)
        self.scope.by_op[id(fn.op)] = fn
        return Node(nid, fn.op, params, {}, str(spec.get("doc", "")), b.doc.pos(("nodes", nid), key=True))


# ---- counting, before anything is built -----------------------------------------------------------

_OPERATION_CHARS = "+-*/@("
_SPACES = str.maketrans("\t\n\r", "   ")
Number = Callable[[ast.AST], "int | float | None"]


def operations_bound(text: str) -> int:
    """At least as many as the nodes cg.graph.expr.parse_expr makes of `text`, from its characters
    alone (C-level counts, no parse): each node has a character of its own: a call its `(`, a
    sum or product of n operands n - 1 signs (for 1 node, or 2 when n > 2), a power `**`, a
    difference, quotient, matmul or negation its sign."""
    return sum(map(text.count, _OPERATION_CHARS))


def count_operations(text: str) -> int:
    """How many nodes cg.graph.expr.parse_expr makes of `text`, from Python's parse tree alone (no
    checks, no ids, nothing kept): the rules of cg.graph.expr._Lowering.finish, counted. 0 for text
    that does not parse (it is refused, and makes no node)."""
    from cg.graph.expr import MAX_CHARS, ExprError, _number

    def number(node: ast.AST) -> int | float | None:
        try:
            return _number(node)
        except ExprError:  # out of range: refused; a literal all the same, no node
            return 0

    if len(text) > MAX_CHARS:
        return 0
    try:
        tree = ast.parse(text.translate(_SPACES).strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return 0
    count = 0
    stack: list[ast.expr] = [tree.body]
    while stack:
        node = stack.pop()
        if number(node) is not None:
            continue
        if isinstance(node, ast.UnaryOp):
            count += isinstance(node.op, ast.USub)  # +x is x
            stack.append(node.operand)
        elif isinstance(node, ast.Call):
            count += 1
            stack.extend(node.args)  # keywords are attributes: numbers, no nodes
        elif isinstance(node, ast.BinOp):
            count += _binop_count(node, stack, number)
    return count


def _binop_count(node: ast.BinOp, stack: list[ast.expr], number: Number) -> int:
    """The nodes of one operation (a whole chain a+b+c or a*b*c); its operands go on `stack`."""
    kind = type(node.op)
    if kind is ast.Pow and number(node.right) == 2:
        stack.append(node.left)  # square(x)
        return 1
    if kind not in (ast.Add, ast.Mult):
        stack.extend((node.left, node.right))
        return 1
    operands = [node.right]
    cur: ast.expr = node.left
    while isinstance(cur, ast.BinOp) and type(cur.op) is kind:  # as Python groups it: ((a + b) + c) + d
        operands.append(cur.right)
        cur = cur.left
    operands.append(cur)
    stack.extend(operands)
    if kind is ast.Add:
        return 1
    others = sum(number(o) is None for o in operands)
    consts = len(operands) - others
    return (others >= 2) + (consts > 0 and others > 0) + (others == 0)  # mul(others), mul(consts, ...)
