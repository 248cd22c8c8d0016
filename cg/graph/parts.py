"""What every builder shares (the graph's, a function body's, expressions', the expect block's):
literals turned into arrays with positioned problems, the Builder that collects diagnostics,
and the checks of references and cycles."""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping
from typing import Any

import numpy as np

from cg.errors import Diagnostic, did_you_mean
from cg.graph.ir import _ID, MAX_DIMS, Arg, Aval, Const, Input, Node
from cg.graph.order import cycle_text, find_cycle, topological_order
from cg.graph.shapes import short_lists, size_text, too_big
from cg.limits import Limits
from cg.limits import current as current_limits
from cg.ops import REGISTRY, Op
from cg.parse.document import Document
from cg.schema.messages import quote


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


class Builder:
    """Collects diagnostics while it turns a validated document into a Graph."""

    def __init__(self, doc: Document, ops: Mapping[str, Op] = REGISTRY) -> None:
        self.doc = doc
        self.ops = ops  # built-in ops, and the functions the document can call
        self.exprs: Callable[[Builder, str, dict[str, Any]], Node | None] | None = None  # {expr: ...} nodes
        self.files: Callable[[Builder, str, dict[str, Any]], np.ndarray | None] | None = None  # {file: ...} inputs
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
        elif "file" in spec:  # cg/graph/weights.py; none in a library file, whose inputs are refused
            default = self.files(self, name, spec) if self.files is not None else None
            if default is None:
                return None
            value_path = ("inputs", name, "file")
        shape = tuple(spec["shape"]) if "shape" in spec else (() if default is None else default.shape)
        if len(shape) > MAX_DIMS:
            path = ("inputs", name, "shape") if "shape" in spec else value_path
            self.error("CG120", f"{len(shape)} dimensions is too many; at most {MAX_DIMS}", path, name)
            return None
        if too_big(shape, most := current_limits().max_elements):
            path = ("inputs", name, "shape") if "shape" in spec else value_path
            msg = f"{size_text(shape)} in one tensor, more than {most:,}; {Limits().hint('max_elements')}"
            self.error("CG004", short_lists(msg), path, name)
            return None
        if default is not None and default.shape != shape:
            msg = f"value has shape {list(default.shape)} but shape says {list(shape)}"
            self.error("CG120", short_lists(msg), value_path, name)
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
            dtype = "int" if k in op.int_args and is_int(arg) else "float"
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
            where, problem = literal_problem(value, dtype, what) or ((), f"{what} {e}")
            self.error("CG104", problem, (*path, *where), node)
            return None


def _nesting(value: Any) -> int:
    """How many lists deep the first entry is (a --max-depth raised for JSON allows thousands)."""
    depth = 0
    while isinstance(value, list):
        depth += 1
        value = value[0] if value else None
    return depth


def literal_problem(value: Any, dtype: str, what: str) -> tuple[tuple[int, ...], str] | None:
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


def is_int(value: Any) -> bool:
    if isinstance(value, list):
        return all(is_int(v) for v in value)
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


def build_nodes(b: Builder, raw: Mapping[str, Any], taken: Container[str], broken: set[Any],
                where: str = "") -> dict[str, Node]:
    """The nodes of a file or a function body, each not already known to be broken; a node named
    like an input (or a parameter: `taken`) is CG111. `where` ends the message (" of function f")."""
    nodes: dict[str, Node] = {}
    for nid, spec in raw.items():
        if nid in taken:
            b.error("CG111", f"{quote(nid)} is both an input and a node{where}; names must be unique", ("nodes", nid),
                    nid, key=True)
        elif nid not in broken and (node := b.node(nid, spec)) is not None:
            nodes[nid] = node
    return nodes


def check_references(b: Builder, nodes: Mapping[str, Node], outputs: list[Any], names: list[Any]) -> None:
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


def check_cycles(b: Builder, nodes: Mapping[str, Node]) -> list[str]:
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
        b.error("CG112", "cycle: " + cycle_text(cycle), ("nodes", cycle[0]), cycle[0], key=True)
    return order
