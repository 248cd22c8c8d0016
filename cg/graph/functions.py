"""Functions (composite gates): the `functions:` of a graph or library file and the `imports:`
that bring in library files, read and checked before the graph is built.

```yaml
imports: [cg:nn, lib/more.yaml]  # cg's library; files relative to this one, inside its folder
functions:
  affine:
    doc: y = W x + b
    inputs: [W, x, b]             # parameters, in the order of a call's `in` list
    nodes:
      Wx: {op: matmul, in: [W, x]}
      y: {op: add, in: [Wx, b]}
    output: y                     # one output, which must be one of the function's nodes
nodes:
  h: {op: affine, in: [W1, x, b1]}
```

A library file has `cg: 1` and `functions` (optionally `doc` and `imports`), no nodes or
outputs. A file sees its own functions and those of the files it imports, transitively; a name
may mean one function only. Functions take no attributes: every value is an input. Checked
here, each at its own position: the schema of every body (as for a graph's nodes), unknown
ops or functions, the arity and attributes of calls, names used twice, references, the
output, cycles inside a body, recursion (a function calling itself, directly or not), missing
files, import cycles, and imports of files that are not libraries. Shapes are checked where a
function is called, by cg.graph.inline, which inlines the calls.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from cg.graph.expr_nodes import ExprNodes
from cg.graph.imports import read_imports
from cg.graph.inline import bodies_over_limit, graph_crossing, over_limit_message
from cg.graph.ir import call_op
from cg.graph.order import topological_order, walk_cycle
from cg.graph.parts import Builder, build_nodes, check_cycles
from cg.graph.scope import Function, Scope, Within, inputs_text, is_library
from cg.limits import current as current_limits
from cg.ops import REGISTRY
from cg.parse.document import Document, YamlPath
from cg.schema.messages import ID_PATTERN, quote
from cg.schema.schemas import validate

_ID = re.compile(ID_PATTERN)
FUNCTION_KEYS = ("doc", "inputs", "nodes", "output")


def load_scope(main: Document, allow_paths: Sequence[str] | None = None) -> Scope:
    """The document's schema problems, imports and functions, read and checked; allow_paths: the
    folders besides the main file's that imports (and input files) may come from (cg/graph/folders.py)."""
    scope = Scope(main, allow_paths=None if allow_paths is None else tuple(allow_paths))
    data = main.data if isinstance(main.data, dict) else {}
    if "functions" not in data and "imports" not in data:  # the common case: nothing more to read
        scope.schema_diags = validate(main)
        scope.diags += scope.schema_diags
        scope.files[main.file] = main
        return scope
    read_imports(scope)
    own = {file: _schema(scope, doc) for file, doc in scope.files.items()}
    _library_keys(scope)
    _scopes(scope, own)
    order = _recursion(scope)
    _make_ops(scope, order)

    if not bodies_over_limit(scope):
        for fn in scope.functions.values():
            _body(scope, fn)
    for uid in order:  # callees first: a call of a broken function is not inlined either
        fn = scope.functions[uid]
        callees = [scope.function(n.op) for n in fn.body]
        fn.ok = fn.ok and all(c.ok for c in callees if c is not None)
        fn.size = sum(1 if c is None else c.size for c in callees)
    return scope


def _schema(scope: Scope, doc: Document) -> dict[str, Function]:
    """Schema problems of a file (each function's body checked as a graph's nodes are) and its
    well-formed functions."""
    data: dict[Any, Any] = doc.data if isinstance(doc.data, dict) else {}
    raw: dict[Any, Any] = data["functions"] if isinstance(data.get("functions"), dict) else {}
    bodies = {name: spec["nodes"] for name, spec in raw.items()
              if isinstance(spec, dict) and isinstance(spec.get("nodes"), dict)}
    top = doc if not bodies else Within(doc, (), {**data, "functions": {
        name: {**spec, "nodes": {}} if name in bodies else spec for name, spec in raw.items()}})
    found = validate(top)
    if doc is scope.main:
        scope.schema_diags = found
    scope.diags += found
    own: dict[str, Function] = {}
    for name, spec in raw.items():
        if not isinstance(name, str) or not _ID.fullmatch(name):
            continue
        inner = validate(Within(doc, ("functions", name), {"cg": 1, "nodes": bodies[name], "outputs": ["_"]})
                         ) if name in bodies else []
        scope.diags += inner
        params: Any = spec.get("inputs") if isinstance(spec, dict) else None
        output: Any = spec.get("output") if isinstance(spec, dict) else None
        well_formed = (
            isinstance(spec, dict) and set(spec) <= set(FUNCTION_KEYS) and name in bodies
            and isinstance(params, list) and all(isinstance(p, str) and _ID.fullmatch(p) for p in params)
            and len(set(params)) == len(params) and isinstance(output, str) and bool(_ID.fullmatch(output))
            and isinstance(spec.get("doc", ""), str)
        )
        if name in REGISTRY:
            message = f"function {quote(name)} has the name of a built-in op; give it another name"
            scope.error(doc, "CG132", message, ("functions", name), key=True)
            continue
        fn = Function(name, doc, spec if isinstance(spec, dict) else {}, tuple(params) if well_formed else (),
                      output if well_formed else "", well_formed, {d.node for d in inner if d.node is not None},
                      ok=well_formed and not inner)
        own[name] = fn
        scope.functions[fn.uid] = fn
    return own


def _library_keys(scope: Scope) -> None:
    for doc in scope.files.values():
        if is_library(doc.data):
            for key in ("inputs", "expect"):
                if key in doc.data:
                    message = f"a library file (functions, no nodes or outputs) takes no {quote(key)}"
                    scope.error(doc, "CG100", message, (key,), key=True)


def _scopes(scope: Scope, own: dict[str, dict[str, Function]]) -> None:
    """What each file can call: its imports' functions (transitively), then its own."""
    deps = {f: [imp for _, imp in edges] for f, edges in scope.imports.items()}
    order, left = topological_order(deps)
    for file in left:  # on an import cycle (reported): at least each file's own functions, for the others
        scope.visible[file] = dict(own[file])
    for file in [*order, *left]:
        doc, vis = scope.files[file], dict[str, Function]()
        for k, imp in scope.imports[file]:
            for name, fn in scope.visible.get(imp, {}).items():
                _add(scope, vis, name, fn, doc, ("imports", k), False)
        for name, fn in own[file].items():
            _add(scope, vis, name, fn, doc, ("functions", name), True)
        scope.visible[file] = vis


def _add(scope: Scope, vis: dict[str, Function], name: str, fn: Function, doc: Document, path: YamlPath,
         key: bool) -> None:
    first = vis.get(name)
    if first is None or first is fn:
        vis[name] = fn
        return
    message = f"function {quote(name)} is defined twice: at {first.where} and at {fn.where}"
    scope.error(doc, "CG132", message, path, key=key)


def _calls(scope: Scope, fn: Function) -> list[tuple[str, Function]]:
    """(node id, function) for each node of fn's body that calls a function."""
    vis = scope.visible.get(fn.doc.file, {})
    nodes: dict[Any, Any] = fn.spec["nodes"] if isinstance(fn.spec.get("nodes"), dict) else {}
    out = []
    for nid, spec in nodes.items():
        op = spec.get("op") if isinstance(spec, dict) else None
        if isinstance(op, str) and op not in REGISTRY and op in vis:
            out.append((nid, vis[op]))
    return out


def _recursion(scope: Scope) -> list[str]:
    """Functions in call order (callees first); each cycle of calls is reported once, at the
    call that closes it, and every function on or behind a cycle is not inlined."""
    deps = {uid: [f.uid for _, f in _calls(scope, fn)] for uid, fn in scope.functions.items()}
    order, left = topological_order(deps)
    done: set[str] = set()
    left_set = set(left)
    for uid in left:
        scope.functions[uid].ok = False
        if uid in done:
            continue
        cycle = walk_cycle(uid, deps, left_set)
        if set(cycle) & done:
            continue
        done.update(cycle)
        fn, callee = scope.functions[cycle[0]], scope.functions[cycle[1]]
        nid = next(n for n, f in _calls(scope, fn) if f is callee)
        names = " -> ".join(scope.functions[u].name for u in cycle)
        message = (f"recursion: {names}; a function cannot call itself, directly or through others "
                   f"(function {quote(fn.name)} is defined at {fn.where})")
        scope.error(fn.doc, "CG130", message, ("functions", fn.name, "nodes", nid, "op"), nid)
    return order


def _make_ops(scope: Scope, order: list[str]) -> None:
    """Each function's op, callees first: a parameter that reaches an integer argument (the index
    of `index`) is an integer parameter, so an integer literal passed to it stays an integer."""
    placed = set(order)  # `u not in order` on the list was quadratic too
    for uid in [*order, *(u for u in scope.functions if u not in placed)]:
        fn = scope.functions[uid]
        if not fn.well_formed:  # reported by the schema
            continue
        ops = scope.ops(fn.doc.file)
        ints: set[int] = set()
        for spec in fn.spec["nodes"].values():
            name = spec.get("op") if isinstance(spec, dict) else None
            op = ops.get(name) if isinstance(name, str) else None
            args = spec.get("in") if op is not None else None
            if op is None or not isinstance(args, list):
                continue
            for j in op.int_args:
                if j < len(args) and args[j] in fn.params:
                    ints.add(fn.params.index(args[j]))
        fn.op = call_op(fn.name, str(fn.spec.get("doc", "")), fn.params, frozenset(ints), fn.doc.file)
        scope.by_op[id(fn.op)] = fn


# ---- a function's body -------------------------------------------------------------------------------


def check_ops(scope: Scope, b: Builder, raw_nodes: Mapping[str, Any], broken: set[Any], file: str,
              *, body: bool = False) -> set[str]:
    """Unknown ops or functions (CG101), and calls with the wrong number of inputs (CG102) or with
    attributes (CG103). Returns the nodes not to build: those, and calls of broken functions.
    For a graph (not a function's `body`), first the node limit: over it, CG004 at the node
    where the count passes it, and no node is built (no expression expanded)."""
    vis = scope.visible.get(file, {})
    bad: set[str] = set()
    # One cheap pass finds the few nodes that are not built-in ops (a big graph has none).
    others = [nid for nid, spec in raw_nodes.items()
              if type(spec) is not dict or type(spec.get("op")) is not str or spec["op"] not in REGISTRY]

    if not body and (over := graph_crossing(raw_nodes, others, vis)) is not None:
        message = over_limit_message(current_limits().max_nodes, bool(others))
        b.error("CG004", message, ("nodes", over), over if isinstance(over, str) else None, key=True)
        return set(raw_nodes)
    for nid in others:
        spec = raw_nodes[nid]
        op = spec.get("op") if isinstance(spec, dict) else None
        if not isinstance(op, str) or op in REGISTRY or not _ID.fullmatch(op):
            continue  # not a name: the schema says what is wrong
        fn = vis.get(op)
        if fn is None and file in scope.failed:  # most likely a function of the import that failed:
            bad.add(nid)  # one root cause, one diagnostic (the import's)
            continue
        if fn is None:
            hint = scope.hint(op, lambda: [*REGISTRY, *vis]) or " (`cg ops` lists the ops)"
            what = "op or function" if vis else "op"
            b.error("CG101", f"unknown {what} {quote(op)}{hint}", ("nodes", nid, "op"), nid)
            bad.add(nid)
            continue
        if nid in broken:
            continue
        if fn.op is None:  # its definition is ill-formed, which is reported
            bad.add(nid)
            continue
        args = spec.get("in")
        if isinstance(args, list) and len(args) != len(fn.params):
            message = f"function {quote(op)} takes {inputs_text(fn.params)}, got {len(args)} (defined at {fn.where})"
            b.error("CG102", message, ("nodes", nid, "in"), nid)
            bad.add(nid)
        for extra in [k for k in spec if k not in ("op", "in", "doc")]:
            message = (f"unknown attribute {quote(extra)}: function {quote(op)} takes no attributes (give the value"
                       " as an input)")
            b.error("CG103", message, ("nodes", nid, extra), nid, key=True)
            bad.add(nid)
        if not fn.ok:  # a problem in it, reported there: the call is not inlined
            bad.add(nid)
    return bad


def _body(scope: Scope, fn: Function) -> None:
    """A function's nodes as templates (ids local, parameters as names), in topological order."""
    if fn.op is None:
        return
    doc = Within(fn.doc, ("functions", fn.name), fn.spec)
    b = Builder(doc, scope.ops(fn.doc.file))
    raw: dict[str, Any] = fn.spec["nodes"]

    b.exprs = ExprNodes(scope, [*fn.params, *raw])
    broken = fn.broken_nodes | {n for n in raw if not isinstance(n, str) or not _ID.fullmatch(n)}
    broken |= check_ops(scope, b, raw, broken, fn.doc.file, body=True)
    # a set: a body may be long, and a list made this loop quadratic
    nodes = build_nodes(b, raw, set(fn.params), broken, f" of function {quote(fn.name)}")
    names = [*fn.params, *(n for n in raw if isinstance(n, str))]
    known = set(names)
    for node in nodes.values():
        for k, arg in enumerate(node.args):
            if isinstance(arg, str) and arg not in known:
                hint = scope.hint(arg, lambda: names)
                message = f"{quote(arg)} is not an input or node of function {quote(fn.name)}{hint}"
                b.error("CG110", message, ("nodes", node.id, "in", k), node.id)
    if fn.output in fn.params:
        message = (f"the output of function {quote(fn.name)} is its input {quote(fn.output)}; it must be one "
                   "of its nodes")
        b.error("CG132", message, ("output",), None)
    elif fn.output not in raw:
        hint = scope.hint(fn.output, lambda: [n for n in raw if isinstance(n, str)])
        b.error("CG113", f"output {quote(fn.output)} is not a node of function {quote(fn.name)}{hint}", ("output",),
                None)
    order = check_cycles(b, nodes)
    fn.body = tuple(nodes[n] for n in order)
    scope.diags += b.diags
    fn.ok = fn.ok and not b.diags and len(order) == len(raw)
