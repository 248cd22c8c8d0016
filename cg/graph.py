"""The validated graph: an immutable IR with a deterministic topological order.

build() turns a Document into a Graph, checking (in this order) the JSON Schema, unique
names, references, outputs, cycles and, through the whole graph, shapes and dtypes. It
collects every problem of the file before raising one GraphError.
"""

from __future__ import annotations

import difflib
import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import numpy as np

from cg.errors import Diagnostic, GraphError, Pos, ShapeError
from cg.ops import REGISTRY, Op, Shape, ShapeMismatch
from cg.schema import validate
from cg.yamldoc import Document


@dataclass(frozen=True)
class Const:
    """A literal argument such as the 3 in `in: [3, a]`."""

    value: np.ndarray

    @property
    def dtype(self) -> str:
        return "int" if self.value.dtype.kind in "iu" else "float"


Arg = str | Const


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


@dataclass(frozen=True)
class Graph:
    name: str
    doc: str
    file: str
    inputs: tuple[Input, ...]
    nodes: tuple[Node, ...]  # topological order; declaration order breaks ties
    outputs: tuple[str, ...]
    avals: Mapping[str, Aval]  # shapes and dtypes inferred from the declared inputs

    def input(self, name: str) -> Input | None:
        return next((i for i in self.inputs if i.name == name), None)

    def node(self, name: str) -> Node | None:
        return next((n for n in self.nodes if n.id == name), None)


def to_array(value: Any, dtype: str) -> np.ndarray:
    """A literal from the file as an array; ValueError if it is ragged or not integral for int."""
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind not in "iuf":
        raise ValueError("is not a rectangular nested list of numbers")
    if dtype == "int":
        if arr.dtype.kind == "f" and not np.all(arr == np.round(arr)):
            raise ValueError("has dtype int but a value that is not a whole number")
        return arr.astype(np.int64)
    return arr.astype(np.float64)


class _Builder:
    """Collects diagnostics while it turns a validated document into a Graph."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
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
            try:
                default = to_array(spec["value"], dtype)
            except ValueError as e:
                self.error("CG104", f"value {e}", value_path, name)
                return None
        shape = tuple(spec["shape"]) if "shape" in spec else (() if default is None else default.shape)
        if default is not None and default.shape != shape:
            msg = f"value has shape {list(default.shape)} but shape says {list(shape)}"
            self.error("CG120", msg, value_path, name)
            return None
        pos = self.doc.pos(("inputs", name), key=True)
        return Input(name, Aval(shape, dtype), default, "shape" in spec, spec.get("doc", ""), pos)

    def node(self, nid: str, spec: dict[str, Any]) -> Node | None:
        op = REGISTRY[spec["op"]]
        args: list[Arg] = []
        for k, arg in enumerate(spec["in"]):
            if isinstance(arg, str):
                args.append(arg)
                continue
            try:
                args.append(Const(to_array(arg, "int" if k in op.int_args and _is_int(arg) else "float")))
            except ValueError as e:
                self.error("CG104", f"constant {e}", ("nodes", nid, "in", k), nid)
                return None
        attrs = {name: spec.get(name, attr.default) for name, attr in op.attrs.items()}
        pos = self.doc.pos(("nodes", nid), key=True)
        return Node(nid, op, tuple(args), attrs, spec.get("doc", ""), pos)


def _is_int(value: Any) -> bool:
    if isinstance(value, list):
        return all(_is_int(v) for v in value)
    return isinstance(value, int) and not isinstance(value, bool)


def _close(name: str, names: Iterable[str]) -> str:
    match = difflib.get_close_matches(name, list(names), n=1)
    return f" (did you mean '{match[0]}'?)" if match else ""


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


def find_cycle(start: str, deps: Mapping[str, list[str]], left: set[str]) -> list[str]:
    """Walk back through nodes that are left over until one repeats: that is a cycle."""
    seen: dict[str, int] = {}
    path: list[str] = []
    name = start
    while name not in seen:
        seen[name] = len(path)
        path.append(name)
        name = next(d for d in deps[name] if d in left)
    cycle = path[seen[name] :]
    cycle.reverse()  # report in the direction data flows
    return [*cycle, cycle[0]]


def infer(nodes: Iterable[Node], avals: dict[str, Aval]) -> list[tuple[Node, str, str, int | None]]:
    """Shapes and dtypes of every node, in order, into `avals`.

    Returns the problems as (node, code, message, argument index); a node whose arguments
    are unknown (because of an earlier problem) is skipped quietly.
    """
    problems: list[tuple[Node, str, str, int | None]] = []
    for node in nodes:
        ins = [a if isinstance(a, Const) else avals.get(a) for a in node.args]
        if any(a is None for a in ins):
            continue
        arg_avals = [Aval(a.value.shape, a.dtype) if isinstance(a, Const) else a for a in ins]  # type: ignore[union-attr]
        bad = next((k for k in node.op.int_args if arg_avals[k].dtype != "int"), None)
        if bad is not None:
            msg = (
                f"op '{node.op.name}' needs an integer as input {bad + 1} "
                "(an input with dtype: int, or an integer literal)"
            )
            problems.append((node, "CG121", msg, bad))
            continue
        try:
            shape = node.op.shape([a.shape for a in arg_avals], **node.attrs)
        except ShapeMismatch as e:
            problems.append((node, e.code, str(e), None))
            continue
        floats = [a.dtype for k, a in enumerate(arg_avals) if k not in node.op.int_args]
        dtype = "int" if node.op.keeps_int and all(d == "int" for d in floats) else "float"
        avals[node.id] = Aval(shape, dtype)
    return problems


def build(doc: Document) -> Graph:
    """Validate a document and return its Graph, or raise GraphError with every problem."""
    b = _Builder(doc)
    b.diags.extend(validate(doc))
    data = doc.data if isinstance(doc.data, dict) else {}
    broken = {d.node for d in b.diags if d.node is not None}
    raw_inputs = data.get("inputs") if isinstance(data.get("inputs"), dict) else {}
    raw_nodes = data.get("nodes") if isinstance(data.get("nodes"), dict) else {}

    inputs = [i for name, spec in raw_inputs.items() if name not in broken and (i := b.input(name, spec))]
    nodes: dict[str, Node] = {}
    for nid, spec in raw_nodes.items():
        if nid in raw_inputs:
            b.error("CG111", f"'{nid}' is both an input and a node; names must be unique", ("nodes", nid), nid, key=True)
        elif nid not in broken and (node := b.node(nid, spec)) is not None:
            nodes[nid] = node
    known = set(raw_inputs) | set(raw_nodes)

    for node in nodes.values():
        for k, arg in enumerate(node.args):
            if isinstance(arg, str) and arg not in known:
                b.error("CG110", f"unknown input '{arg}'{_close(arg, known)}", ("nodes", node.id, "in", k), node.id)
    outputs = data.get("outputs") if isinstance(data.get("outputs"), list) else []
    for k, out in enumerate(outputs):
        if isinstance(out, str) and out not in known:
            b.error("CG113", f"output '{out}' is not an input or node{_close(out, known)}", ("outputs", k), None)

    deps = {nid: [a for a in n.args if isinstance(a, str)] for nid, n in nodes.items()}
    order, left = topological_order(deps)
    reported: set[str] = set()
    for name in left:
        if name in reported:
            continue
        cycle = find_cycle(name, deps, set(left))
        if set(cycle) & reported:
            reported.update(cycle)
            continue
        reported.update(cycle)
        b.error("CG112", "cycle: " + " -> ".join(cycle), ("nodes", cycle[0]), cycle[0], key=True)

    avals = {i.name: i.aval for i in inputs}
    ordered = tuple(nodes[n] for n in order)
    for node, code, message, arg in infer(ordered, avals):
        path = ("nodes", node.id) if arg is None else ("nodes", node.id, "in", arg)
        b.diags.append(Diagnostic(code, message, doc.file, doc.pos(path, key=arg is None), node.id))

    if b.diags:
        b.diags.sort(key=lambda d: (d.pos.line, d.pos.col) if d.pos else (0, 0))
        shape_only = all(d.code in ("CG120", "CG121") for d in b.diags)
        raise (ShapeError if shape_only else GraphError)(b.diags)
    name = data.get("name") or (PurePath(doc.file).stem if doc.file not in ("-", "<stdin>") else "graph")
    return Graph(name, data.get("doc", ""), doc.file, tuple(inputs), ordered, tuple(outputs), avals)
