"""The graph IR: immutable records (Const, Aval, Input, Node, Graph, and what a graph keeps of its
calls and its `expect` block: CallOp, Composite, Expect), with the pieces every builder shares:
literal checks, topological order, cycle reports and shape inference. cg/graph/builder.py builds a Graph
from a Document with them; nothing here imports the modules that build."""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from cg.errors import Diagnostic, Pos, did_you_mean
from cg.limits import Limits
from cg.limits import current as current_limits
from cg.ops import REGISTRY, Op, Shape, ShapeMismatch
from cg.parse.document import Document
from cg.schema.messages import ID_PATTERN, quote


@dataclass(frozen=True)
class Const:
    """A literal argument such as the 3 in `in: [3, a]`."""

    value: np.ndarray

    @property
    def dtype(self) -> str:
        return "int" if self.value.dtype.kind in "iu" else "float"


Arg = str | Const
_ID = re.compile(ID_PATTERN)
MAX_DIMS = 32  # numpy 1 holds at most 32 dimensions (numpy 2: 64); no graph needs more


@dataclass(frozen=True)
class Aval:
    """What is known of a value before it is computed: its shape and dtype."""

    shape: Shape
    dtype: str  # "float" or "int"


@dataclass(frozen=True)
class Input:
    name: str
    aval: Aval
    default: np.ndarray | None
    shape_given: bool  # a declared shape pins the shape of values given at run time
    doc: str
    pos: Pos | None

@dataclass(frozen=True)
class Node:
    id: str
    op: Op
    args: tuple[Arg, ...]
    attrs: Mapping[str, Any]  # every attribute of the op, defaults filled in
    doc: str
    pos: Pos | None

    def arg_values(self, env: Mapping[str, Any]) -> list[Any]:
        """The values of the arguments: a name's from env, a constant's own (the one gatherer)."""
        # `type(a) is str` rather than isinstance: this runs once per node per pass.
        return [env[a] if type(a) is str else a.value for a in self.args]  # type: ignore[union-attr]


@dataclass(frozen=True)
class Graph:
    name: str
    doc: str
    file: str
    inputs: tuple[Input, ...]
    nodes: tuple[Node, ...]  # topological order; declaration order breaks ties
    outputs: tuple[str, ...]
    avals: Mapping[str, Aval]  # shapes and dtypes inferred from the declared inputs
    expect: Expect | None = None
    composites: tuple[Composite, ...] = ()  # calls of functions, inlined: see cg/graph/composite.py

    def input(self, name: str) -> Input | None:
        return self._inputs_by_name.get(name)

    def node(self, name: str) -> Node | None:
        return self._nodes_by_name.get(name)

    # Built on first lookup: callers look names up in loops over the graph.
    @cached_property
    def _inputs_by_name(self) -> dict[str, Input]:
        return {i.name: i for i in self.inputs}

    @cached_property
    def _nodes_by_name(self) -> dict[str, Node]:
        return {n.id: n for n in self.nodes}

    @cached_property
    def grad_targets(self) -> tuple[tuple[Node, tuple[tuple[int, str], ...]], ...]:
        """Per node in order, the (argument position, name) pairs that receive a gradient in
        the backward pass: float inputs and nodes, never constants or integers."""
        return tuple(
            (n, tuple((k, a) for k, a in enumerate(n.args) if isinstance(a, str) and self.avals[a].dtype == "float"))
            for n in self.nodes
        )


def _inlined(*_: Any, **__: Any) -> Any:
    raise RuntimeError("a call of a function is inlined when the graph is built; its op never runs")


@dataclass(frozen=True)
class CallOp(Op):
    """The op of a node that calls a function (or of an expression node). Only its name, doc,
    arity and integer arguments are read: calls are inlined when the graph is built."""

    key: tuple[str, str] = ("", "")  # (file, name): two libraries may not share a name in one scope
    params: tuple[str, ...] = ()


def call_op(name: str, doc: str, params: tuple[str, ...], int_params: frozenset[int], file: str) -> CallOp:
    n = len(params)
    return CallOp(name, doc, (n, n), _inlined, _inlined, _inlined, _inlined, (), int_args=int_params,
                  key=(file, name), params=params)


@dataclass(frozen=True)
class Composite:
    """One call, as inlined: which nodes it became, and where its arguments went."""

    id: str  # the call's path: `h1`, or `h1/n` for the call `n` inside h1's function
    output: str  # the node holding the call's value: the call's own id at the top level
    op: CallOp  # the function called
    args: tuple[Arg, ...]  # the call's arguments as names of the flat graph, or constants
    inner: tuple[str, ...]  # every node inlined for it (nested calls' too), the output included
    uses: tuple[tuple[tuple[str, int], ...], ...]  # per argument: the (node, argument position) it feeds
    parent: str | None  # the enclosing call, None at the top level
    doc: str
    pos: Pos | None  # the call in the file the graph was read from
    text: str = ""  # what a table shows as the op: the function's name, or an expression


@dataclass(frozen=True)
class Expected:
    """One value or gradient stated in the `expect` block, and where it is written."""

    name: str
    value: np.ndarray  # float64, the shape of the node
    pos: Pos | None


@dataclass(frozen=True)
class Expect:
    """The `expect` block: what the graph must give at a point (checked by `cg check`)."""

    inputs: Mapping[str, np.ndarray]  # the point, over the inputs' defaults
    of: str  # the differentiated output
    tol: float  # |actual - expected| <= tol + rtol * |expected|, elementwise
    rtol: float
    values: tuple[Expected, ...]
    grads: tuple[Expected, ...]  # d(of)/d(name)
    pos: Pos | None


def to_array(value: Any, dtype: str) -> np.ndarray:
    """A literal from the file as an array; ValueError if it is ragged or not integral for int."""
    try:
        arr = np.asarray(value)
    except ValueError:  # numpy refuses ragged lists with a long message of its own
        raise ValueError("is not a rectangular nested list of numbers") from None
    if arr.dtype == object:  # ragged, or an integer beyond int64 (which is a fine float)
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (ValueError, TypeError):
            raise ValueError("is not a rectangular nested list of numbers") from None
        if dtype == "int":
            raise ValueError("has dtype int but a whole number too large for int64")
    if arr.dtype.kind not in "iuf":
        raise ValueError("is not a rectangular nested list of numbers")
    if dtype == "int":
        if arr.dtype.kind == "f" and not np.all(arr == np.round(arr)):
            raise ValueError("has dtype int but a value that is not a whole number")
        return arr.astype(np.int64)
    return arr.astype(np.float64)


class _Builder:
    """Collects diagnostics while it turns a validated document into a Graph."""

    def __init__(self, doc: Document, ops: Mapping[str, Op] = REGISTRY) -> None:
        self.doc = doc
        self.ops = ops  # built-in ops, and the functions the document can call
        self.exprs: Callable[[_Builder, str, dict[str, Any]], Node | None] | None = None  # {expr: ...} nodes
        self.diags: list[Diagnostic] = []

    def error(self, code: str, message: str, path: tuple[Any, ...], node: str | None, *, key: bool = False) -> None:
        self.diags.append(Diagnostic(code, message, self.doc.file, self.doc.pos(path, key=key), node))

    # -- inputs and nodes, each checked on its own --

    def input(self, name: str, raw: Any) -> Input | None:
        spec = raw if isinstance(raw, dict) else {"value": raw}
        value_path = ("inputs", name, "value") if isinstance(raw, dict) else ("inputs", name)
        dtype = spec.get("dtype", "float")
        default = None
        if "value" in spec:
            default = self.literal(spec["value"], dtype, value_path, name, "value")
            if default is None:
                return None
        shape = tuple(spec["shape"]) if "shape" in spec else (() if default is None else default.shape)
        if len(shape) > MAX_DIMS:
            path = ("inputs", name, "shape") if "shape" in spec else value_path
            self.error("CG120", f"{len(shape)} dimensions is too many; at most {MAX_DIMS}", path, name)
            return None
        if _too_big(shape, most := current_limits().max_elements):
            path = ("inputs", name, "shape") if "shape" in spec else value_path
            msg = f"{_size_text(shape)} in one tensor, more than {most:,}; {Limits().hint('max_elements')}"
            self.error("CG004", _short_lists(msg), path, name)
            return None
        if default is not None and default.shape != shape:
            msg = f"value has shape {list(default.shape)} but shape says {list(shape)}"
            self.error("CG120", _short_lists(msg), value_path, name)
            return None
        pos = self.doc.pos(("inputs", name), key=True)
        return Input(name, Aval(shape, dtype), default, "shape" in spec, spec.get("doc", ""), pos)

    def node(self, nid: str, spec: dict[str, Any]) -> Node | None:
        if "expr" in spec and self.exprs is not None:  # an expression: cg/graph/expr_nodes.py
            return self.exprs(self, nid, spec)
        op = self.ops[spec["op"]]
        args: list[Arg] = []
        for k, arg in enumerate(spec["in"]):
            if isinstance(arg, str):
                args.append(arg)
                continue
            dtype = "int" if k in op.int_args and _is_int(arg) else "float"
            value = self.literal(arg, dtype, ("nodes", nid, "in", k), nid, "constant")
            if value is None:
                return None
            args.append(Const(value))
        attrs = {name: spec.get(name, attr.default) for name, attr in op.attrs.items()}
        pos = self.doc.pos(("nodes", nid), key=True)
        return Node(nid, op, tuple(args), attrs, spec.get("doc", ""), pos)


    def literal(self, value: Any, dtype: str, path: tuple[Any, ...], node: str, what: str) -> np.ndarray | None:
        """A value or constant as an array; on a problem, report it at the offending entry."""
        try:
            return to_array(value, dtype)
        except ValueError as e:
            if (depth := _nesting(value)) > MAX_DIMS:  # before _ragged, which recurses once per level
                self.error("CG120", f"{what} has {depth} dimensions, too many; at most {MAX_DIMS}", path, node)
                return None
            where, problem = _literal_problem(value, dtype, what) or ((), f"{what} {e}")
            self.error("CG104", problem, (*path, *where), node)
            return None


def _nesting(value: Any) -> int:
    """How many lists deep the first entry is (a --max-depth raised for JSON allows thousands)."""
    depth = 0
    while isinstance(value, list):
        depth += 1
        value = value[0] if value else None
    return depth


def _literal_problem(value: Any, dtype: str, what: str) -> tuple[tuple[int, ...], str] | None:
    """Where a nested list stops being rectangular (or, for int, whole), and what is wrong."""
    shape: list[int] = []
    first = value
    while isinstance(first, list):
        shape.append(len(first))
        first = first[0] if first else None
    found = _ragged(value, shape, ())
    if found is not None:
        return found[0], f"{what} is not rectangular: {found[1]}"
    return _fraction(value, ()) if dtype == "int" else None


def _ragged(value: Any, shape: list[int], where: tuple[int, ...]) -> tuple[tuple[int, ...], str] | None:
    """The first entry whose length or depth differs from the first row's (shape follows item 0)."""
    depth = len(where)
    if not isinstance(value, list):
        return (where, "a number stands where the first row has a list") if depth < len(shape) else None
    if depth >= len(shape):
        return where, "a list stands where the first row has a number"
    if len(value) != shape[depth]:
        return where, f"this row has {_entries(len(value))}, the first row has {shape[depth]}"
    for k, item in enumerate(value):
        found = _ragged(item, shape, (*where, k))
        if found is not None:
            return found
    return None


def _entries(n: int) -> str:
    return f"{n} entry" if n == 1 else f"{n} entries"


def _fraction(value: Any, where: tuple[int, ...]) -> tuple[tuple[int, ...], str] | None:
    """The first entry that is not a whole number (for dtype: int)."""
    if isinstance(value, list):
        for k, item in enumerate(value):
            found = _fraction(item, (*where, k))
            if found is not None:
                return found
    elif isinstance(value, float) and not value.is_integer():
        return where, f"dtype is int, but {value} is not a whole number"
    return None


def _is_int(value: Any) -> bool:
    if isinstance(value, list):
        return all(_is_int(v) for v in value)
    return isinstance(value, int) and not isinstance(value, bool)


class _Suggest:
    """' (did you mean ...?)' for the first few unknown names only: difflib takes ~1 s per name
    in a graph of 100,000 names, and a file with thousands of typos must still validate fast."""

    def __init__(self, names: list[str], budget: int = 20) -> None:
        self.names, self.budget = names, budget

    def __call__(self, name: str) -> str:
        if self.budget <= 0 or len(name) > 100:  # a long name matches nothing, slowly
            return ""
        self.budget -= 1
        hint = did_you_mean(name, self.names)
        return hint if len(hint) <= 80 else ""  # a very long suggestion would swamp the message


def _cycle_text(cycle: list[str]) -> str:
    """'a -> b -> a'; a long cycle shows its start and its length, so the message stays short."""
    text = " -> ".join(cycle)
    if len(text) <= 120:
        return text
    head = " -> ".join(quote(n, 20)[1:-1] for n in cycle[:3])
    return f"{head} -> ... -> {quote(cycle[0], 20)[1:-1]} ({len(cycle) - 1} nodes)"


def topological_order(deps: Mapping[str, list[str]]) -> tuple[list[str], list[str]]:
    """Kahn's algorithm; among ready nodes the earliest declared goes first, so the order
    does not depend on hashing. Returns (order, nodes left over on or behind a cycle)."""
    index = {name: i for i, name in enumerate(deps)}
    users: dict[str, list[str]] = {name: [] for name in deps}
    waiting = {name: 0 for name in deps}
    for name, ds in deps.items():
        for d in ds:
            if d in deps:
                users[d].append(name)
                waiting[name] += 1
    ready = [index[n] for n, w in waiting.items() if w == 0]
    heapq.heapify(ready)
    names = list(deps)
    order: list[str] = []
    while ready:
        name = names[heapq.heappop(ready)]
        order.append(name)
        for user in users[name]:
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, index[user])
    return order, [n for n in deps if waiting[n] > 0]


def walk_cycle(start: str, deps: Mapping[str, list[str]], left: set[str]) -> list[str]:
    """Follow dependencies among the names left over by a topological sort until one repeats:
    the cycle, in the direction of the dependencies, its first name repeated at the end."""
    seen: dict[str, int] = {}
    path: list[str] = []
    name = start
    while name not in seen:
        seen[name] = len(path)
        path.append(name)
        name = next(d for d in deps[name] if d in left)
    cycle = path[seen[name] :]
    return [*cycle, cycle[0]]


def find_cycle(start: str, deps: Mapping[str, list[str]], left: set[str]) -> list[str]:
    """A cycle among the nodes left over, in the direction data flows (against the dependencies)."""
    cycle = walk_cycle(start, deps, left)[-2::-1]  # reversed, without the repeated name
    return [*cycle, cycle[0]]


def _arg_avals(node: Node, avals: Mapping[str, Aval]) -> list[Aval] | None:
    """Shapes and dtypes of a node's arguments, or None if one of them is unknown."""
    out = []
    for a in node.args:
        aval = Aval(a.value.shape, a.dtype) if isinstance(a, Const) else avals.get(a)
        if aval is None:
            return None
        out.append(aval)
    return out


def _too_big(shape: Shape, most: int) -> bool:
    """Over the element limit; a dimension over it too, even with a 0 elsewhere ([0, 10**20] holds
    no number, but numpy cannot make it)."""
    return math.prod(shape) > most or max(shape, default=0) > most


def _size_text(shape: Shape) -> str:
    size = math.prod(shape)
    return f"{size:,} numbers" if size else f"a dimension of {max(shape):,}"


def _checked_shape(node: Node, shapes: list[Shape]) -> Shape:
    shape = node.op.shape(shapes, **node.attrs)
    # numpy cannot hold more dimensions (64, 32 before numpy 2): refuse now, not mid-run.
    if len(shape) > MAX_DIMS:
        raise ShapeMismatch(f"{node.op.name}: the result would have {len(shape)} dimensions; at most {MAX_DIMS}")
    if _too_big(shape, most := current_limits().max_elements):  # refuse now, not by MemoryError mid-run
        msg = f"{node.op.name}: the result would have {_size_text(shape)}, more than {most:,};"
        raise ShapeMismatch(f"{msg} {Limits().hint('max_elements')}", code="CG004")
    return shape


def _short_lists(message: str) -> str:
    """Shapes and axes of any length appear in shape messages; keep each to a few entries."""

    def cut(m: re.Match[str]) -> str:
        items = m.group(1).split(", ")
        return m.group(0) if len(items) <= 8 else f"[{', '.join(items[:4])}, ... ({len(items)} entries)]"

    return re.sub(r"\[(-?\d+(?:, -?\d+)*)\]", cut, message)


def infer(nodes: Iterable[Node], avals: dict[str, Aval]) -> list[tuple[Node, str, str, int | None]]:
    """Shapes and dtypes of every node, in order, into `avals`.

    Returns the problems as (node, code, message, argument index); a node whose arguments
    are unknown (because of an earlier problem) is skipped quietly.
    """
    problems: list[tuple[Node, str, str, int | None]] = []
    for node in nodes:
        arg_avals = _arg_avals(node, avals)
        if arg_avals is None:
            continue
        bad = next((k for k in node.op.int_args if arg_avals[k].dtype != "int"), None)
        if bad is not None:
            msg = (
                f"op '{node.op.name}' needs an integer as input {bad + 1} "
                "(an input with dtype: int, or an integer literal)"
            )
            problems.append((node, "CG121", msg, bad))
            continue
        try:
            shape = _checked_shape(node, [a.shape for a in arg_avals])
        except ShapeMismatch as e:
            # Some shape rules do not say which op they are; the reader needs it with the node.
            message = _short_lists(str(e) if node.op.name in str(e) else f"{node.op.name}: {e}")
            problems.append((node, e.code, message, None))
            continue
        floats = [a.dtype for k, a in enumerate(arg_avals) if k not in node.op.int_args]
        dtype = "int" if node.op.keeps_int and all(d == "int" for d in floats) else "float"
        avals[node.id] = Aval(shape, dtype)
    return problems


def _check_references(b: _Builder, nodes: Mapping[str, Node], outputs: list[Any], names: list[Any]) -> None:
    known = {n for n in names if isinstance(n, str)}
    # Suggestions come from valid names only (never one that is itself refused), in file order.
    close = _Suggest([n for n in names if isinstance(n, str) and _ID.fullmatch(n)])
    for node in nodes.values():
        for k, arg in enumerate(node.args):
            if isinstance(arg, str) and arg not in known:
                msg = f"{quote(arg)} is not an input or node{close(arg)}"
                b.error("CG110", msg, ("nodes", node.id, "in", k), node.id)
    for k, out in enumerate(outputs):
        # Outputs that are not names at all were reported by the schema.
        if isinstance(out, str) and _ID.fullmatch(out) and out not in known:
            b.error("CG113", f"output {quote(out)} is not an input or node{close(out)}", ("outputs", k), None)


def _check_cycles(b: _Builder, nodes: Mapping[str, Node]) -> list[str]:
    """The topological order; each cycle among the nodes left over is reported once."""
    deps = {nid: [a for a in n.args if isinstance(a, str)] for nid, n in nodes.items()}
    order, left = topological_order(deps)
    reported: set[str] = set()
    left_set, index = set(left), {nid: k for k, nid in enumerate(deps)}
    for name in left:
        if name in reported:
            continue
        cycle = find_cycle(name, deps, left_set)
        if set(cycle) & reported:  # a node behind a cycle leads to one already reported
            reported.update(cycle)
            continue
        reported.update(cycle)
        # Start at the node declared first, so the message and its line do not depend on the walk.
        k = min(range(len(cycle) - 1), key=lambda i: index[cycle[i]])
        cycle = [*cycle[k:-1], *cycle[:k], cycle[k]]
        b.error("CG112", "cycle: " + _cycle_text(cycle), ("nodes", cycle[0]), cycle[0], key=True)
    return order
