"""Inlining calls of functions when a graph is built, and the messages for problems found in
inlined nodes (shapes are checked where a function is called, with the call's arguments).

A call `h1: {op: affine, in: [W1, x, b1]}` becomes the function's nodes with ids `h1/Wx`, ...,
its parameters replaced by the call's arguments; the function's output takes the call's own
id, `h1`, so the nodes that use `h1` need nothing changed. Calls inside a function nest:
`h1/n/Wx`. The expansion walks an explicit stack (no recursion), in the order of each body,
so the flat node list stays in topological order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from cg.errors import Diagnostic, Pos
from cg.graph.expr_nodes import count_operations, operations_bound
from cg.graph.ir import Arg, CallOp, Composite, Node
from cg.graph.parts import Builder
from cg.graph.scope import Function, Scope, at
from cg.limits import Limits
from cg.limits import current as current_limits

Bound = tuple[Arg, tuple[tuple[int, int], ...]]
Site = tuple[Function, str, Pos | None]  # a function (or expression) and where it is called: file, position


@dataclass
class _Record:
    """A composite being filled in."""

    id: str
    output: str
    op: CallOp
    args: tuple[Arg, ...]
    parent: str | None
    doc: str
    pos: Pos | None
    text: str = ""
    inner: list[str] = field(default_factory=list)
    uses: list[list[tuple[str, int]]] = field(default_factory=list)


@dataclass
class _Frame:
    """One call being inlined."""

    fn: Function
    prefix: str  # the call's path: inner ids are prefix/id
    out: str  # the id the function's output gets
    env: dict[str, Bound]  # parameter -> (argument, the (record, position) pairs it is an argument of)
    body: Iterator[Node]
    record: int
    sites: tuple[Site, ...]  # innermost first

    def name(self, local: str) -> str:
        return self.out if local == self.fn.output else f"{self.prefix}/{local}"


@dataclass(frozen=True)
class Origin:
    """Where an inlined node is written, and the calls that put it there."""

    fn: Function
    local: str
    pos: Pos | None  # where the node is written (an expression's: the column of its operation)
    sites: tuple[Site, ...]


@dataclass
class Inliner:
    scope: Scope
    records: list[_Record] = field(default_factory=list)
    origins: dict[str, Origin] = field(default_factory=dict)

    def expand(self, b: Builder, ordered: tuple[Node, ...]) -> tuple[Node, ...]:
        """The nodes with every call inlined. Over the node limit, a CG004 at the call that
        crosses it, and the calls are left out (the graph is invalid then anyway)."""
        if not self.scope.by_op or not any(isinstance(n.op, CallOp) for n in ordered):
            return ordered  # no functions and no expressions
        most, total = current_limits().max_nodes, 0
        for node in ordered:
            fn = self.scope.function(node.op)
            total += 1 if fn is None else fn.size
            if total > most:
                message = (f"with its calls inlined the graph has more than {most:,} nodes; "
                           f"{Limits().hint('max_nodes')}")
                b.error("CG004", message, ("nodes", node.id), node.id, key=True)
                return tuple(n for n in ordered if not isinstance(n.op, CallOp))
        out: list[Node] = []
        for node in ordered:
            fn = self.scope.function(node.op)
            if fn is None:
                out.append(node)
            else:
                self._inline(node, fn, out)
        return tuple(out)

    def composites(self) -> tuple[Composite, ...]:
        return tuple(
            Composite(r.id, r.output, r.op, r.args, tuple(r.inner), tuple(tuple(u) for u in r.uses), r.parent,
                      r.doc, r.pos, r.text)
            for r in self.records
        )

    def _record(self, cid: str, out: str, fn: Function, args: tuple[Arg, ...], parent: str | None, doc: str,
                pos: Pos | None) -> int:
        self.records.append(_Record(cid, out, fn.op, args, parent, doc, pos, fn.text,  # type: ignore[arg-type]
                                    uses=[[] for _ in args]))
        return len(self.records) - 1

    def _inline(self, call: Node, fn: Function, out: list[Node]) -> None:
        main = self.scope.main.file
        index = self._record(call.id, call.id, fn, call.args, None, call.doc, call.pos)
        env: dict[str, Bound] = {p: (a, ((index, k),)) for k, (p, a) in enumerate(zip(fn.params, call.args))}
        stack = [_Frame(fn, call.id, call.id, env, iter(fn.body), index, ((fn, main, call.pos),))]
        while stack:
            f = stack[-1]
            inner = next(f.body, None)
            if inner is None:
                stack.pop()
                continue
            new_id = f.name(inner.id)
            args = tuple(a if not isinstance(a, str) else f.env[a][0] if a in f.env else f.name(a) for a in inner.args)
            callee = self.scope.function(inner.op)
            same_file = f.fn.doc.file == main
            if callee is not None:  # a call inside the function: inline it in turn
                pos = inner.pos if same_file else call.pos
                k = self._record(f"{f.prefix}/{inner.id}", new_id, callee, args, self.records[f.record].id, inner.doc,
                                 pos)
                env = {}
                for j, (p, a) in enumerate(zip(callee.params, inner.args)):
                    sources = f.env[a][1] if isinstance(a, str) and a in f.env else ()
                    env[p] = (args[j], (*sources, (k, j)))
                site = (callee, f.fn.doc.file, inner.pos)
                stack.append(_Frame(callee, f"{f.prefix}/{inner.id}", new_id, env, iter(callee.body), k,
                                    (site, *f.sites)))
                continue
            for j, a in enumerate(inner.args):
                if isinstance(a, str) and a in f.env:
                    for r, pos_k in f.env[a][1]:
                        self.records[r].uses[pos_k].append((new_id, j))
            for frame in stack:
                self.records[frame.record].inner.append(new_id)
            self.origins[new_id] = Origin(f.fn, inner.id, inner.pos, f.sites)
            # A run-time message names the graph's file: an inlined node from another file is placed at the call.
            out.append(Node(new_id, inner.op, args, inner.attrs, inner.doc, inner.pos if same_file else call.pos))

    def diagnostic(self, node: Node, code: str, message: str, arg: int | None) -> Diagnostic:
        """A problem of a node (a shape, a dtype): at the node in the graph, or for an inlined
        node at its place in the function, with the calls that led there."""
        tail = () if arg is None else ("in", arg)
        origin = self.origins.get(node.id)
        if origin is None:
            doc = self.scope.main
            return Diagnostic(code, message, doc.file, doc.pos(("nodes", node.id, *tail), key=arg is None), node.id)
        fn = origin.fn
        if fn.text:  # an expression: at the column of the operation
            pos = origin.pos
        else:
            pos = fn.doc.pos(("functions", fn.name, "nodes", origin.local, *tail), key=arg is None)
        chain = ", ".join(f"in the expression of node '{f.name}'" if f.text else
                          f"in function '{f.name}' called at {at(file, p)}" for f, file, p in origin.sites)
        return Diagnostic(code, f"{message}; {chain}", fn.doc.file, pos, node.id)


# ---- the node limit, counted before anything is built ---------------------------------------------


def node_cost(spec: Any, functions: Mapping[str, Function], *, exact: bool) -> int:
    """The nodes one entry of `nodes:` becomes: an expression its operations (a bound from its
    characters, or the exact count from a parse), a call of a function the function's size once
    inlined, anything else 1."""
    if type(spec) is not dict:
        return 1
    text = spec.get("expr")
    if isinstance(text, str):
        return max(1, count_operations(text) if exact else operations_bound(text))
    fn = functions.get(spec["op"]) if isinstance(spec.get("op"), str) else None
    return 1 if fn is None else max(1, fn.size)


def crossing(entries: Iterable[tuple[Any, Any]], functions: Mapping[str, Function], most: int) -> Any | None:
    """The first entry (key, spec), in the order given, at which the running count of nodes
    passes `most`, or None. Cheap first: if the bounds of the expressions keep the count under
    the limit, none is parsed; else they are counted exactly, one at a time, up to the crossing."""
    listed = list(entries)
    if sum(node_cost(spec, functions, exact=False) for _, spec in listed) <= most:
        return None
    total = 0
    for key, spec in listed:
        total += node_cost(spec, functions, exact=True)
        if total > most:
            return key
    return None


def graph_crossing(raw_nodes: Mapping[Any, Any], others: list[Any], functions: Mapping[str, Function]) -> Any | None:
    """The node (in file order) at which the graph, calls and expressions expanded, passes
    max_nodes, counted from the file before any node is built; None if it stays under.
    `others` are the nodes that are not built-in ops (calls, expressions, broken entries)."""
    most = current_limits().max_nodes
    if not others:  # a plain graph: one node each
        return next(islice(raw_nodes, most, None), None) if len(raw_nodes) > most else None
    special = set(others)  # the rest count 1 each (None costs 1)
    return crossing(((n, spec if n in special else None) for n, spec in raw_nodes.items()), functions, most)


def over_limit_message(most: int, expanded: bool) -> str:
    what = "with its calls and expressions expanded the graph" if expanded else "the graph"
    return f"{what} has more than {most:,} nodes; {Limits().hint('max_nodes')}"


def bodies_over_limit(scope: Scope) -> bool:
    """Whether the functions' bodies, expressions expanded, hold more than max_nodes nodes in all
    (counted before any is built: a file of long expressions must not be expanded first). Then
    CG004 where the count passes the limit, and no function is built or inlined."""
    def entries() -> Iterator[tuple[tuple[Function, Any], Any]]:
        for fn in scope.functions.values():
            nodes = fn.spec.get("nodes")
            if isinstance(nodes, dict):
                yield from (((fn, nid), None if type(spec) is dict and "expr" not in spec else spec)
                            for nid, spec in nodes.items())

    most = current_limits().max_nodes
    over = crossing(entries(), {}, most)  # a call inside a body is one node there
    if over is None:
        return False
    fn, nid = over
    message = (f"the functions have more than {most:,} nodes in all, expressions expanded; "
               f"{Limits().hint('max_nodes')}")
    scope.error(fn.doc, "CG004", message, ("functions", fn.name, "nodes", nid), nid if isinstance(nid, str) else None,
                key=True)
    for f in scope.functions.values():
        f.ok = False
    return True
