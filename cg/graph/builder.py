"""Building the validated graph (its records are in cg/graph/ir.py).

build() turns a Document into a Graph, checking (in this order) the JSON Schema, unique
names, references, outputs, cycles and, through the whole graph, shapes and dtypes; then the
names and shapes of the `expect` block. It collects every problem of the file before raising
one GraphError.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

from cg.errors import Diagnostic, GraphError, ShapeError
from cg.gcpause import paused_gc
from cg.graph.expect import parse_expect
from cg.graph.expr_nodes import ExprNodes
from cg.graph.functions import check_ops, load_scope
from cg.graph.inline import Inliner
from cg.graph.ir import _ID, Graph
from cg.graph.parts import Builder, build_nodes, check_cycles, check_references
from cg.graph.shapes import infer
from cg.graph.weights import Weights
from cg.parse.document import Document

__all__ = ["build"]


def build(doc: Document, *, library: bool = False, allow_paths: Sequence[str] | None = None) -> Graph:
    """Validate a document and return its Graph, or raise GraphError with every problem.
    A library file (functions only) is an error unless `library` (then its Graph is empty).
    allow_paths: folders besides the document's own that imports and input files (`file:`) may be
    read from; None: those of `cg --allow-path` and CG_ALLOW_PATH (cg/graph/folders.py)."""
    with paused_gc():  # many small acyclic objects: see cg/gcpause.py
        return _build(doc, library, allow_paths)


def _build(doc: Document, library: bool = False, allow_paths: Sequence[str] | None = None) -> Graph:
    scope = load_scope(doc, allow_paths)  # schema, imports and functions
    b = Builder(doc, scope.ops())
    b.files = None if scope.library else Weights(scope, doc.file)  # inputs' `file:` (weights.py)
    b.diags.extend(scope.diags)
    schema_ok = not scope.schema_diags
    data = doc.data if isinstance(doc.data, dict) else {}
    raw_inputs, raw_nodes = _section(data, "inputs", dict), _section(data, "nodes", dict)
    outputs: list[Any] = _section(data, "outputs", list)
    names = [*raw_inputs, *raw_nodes]
    b.exprs = ExprNodes(scope, names)
    # A node with a schema error, or a name the schema refused, is reported already: build nothing from it.
    broken = {d.node for d in scope.schema_diags if d.node is not None}
    broken |= {n for n in names if not isinstance(n, str) or not _ID.fullmatch(n)}
    broken |= check_ops(scope, b, raw_nodes, broken, doc.file)  # unknown ops; calls of functions

    inputs = [i for name, spec in raw_inputs.items() if name not in broken and (i := b.input(name, spec))]
    nodes = build_nodes(b, raw_nodes, raw_inputs, broken)
    check_references(b, nodes, outputs, names)
    order = check_cycles(b, nodes)

    avals = {i.name: i.aval for i in inputs}
    inliner = Inliner(scope)
    ordered = inliner.expand(b, tuple(nodes[n] for n in order))  # calls of functions inlined
    for node, code, message, arg in infer(ordered, avals):
        b.diags.append(inliner.diagnostic(node, code, message, arg))

    # With schema errors the block may hold anything, and its problems are reported already.
    expect = None
    if schema_ok and "expect" in data:
        expect = parse_expect(b, data["expect"], inputs, ordered, avals, outputs, names)
    if scope.library and not library and not b.diags:
        message = "a library of functions (no nodes or outputs): nothing to run; a graph uses it with `imports:`"
        b.diags.append(Diagnostic("CG133", message, doc.file, doc.pos(("functions",), key=True)))
    if b.diags:  # this file's problems first, then those of the files it imports
        b.diags.sort(key=lambda d: (d.file != doc.file, d.file or "", *((d.pos.line, d.pos.col) if d.pos else (0, 0))))
        shape_only = all(d.code in ("CG120", "CG121") for d in b.diags)
        raise (ShapeError if shape_only else GraphError)(b.diags)
    name = data.get("name") or (PurePath(doc.file).stem if doc.file not in ("-", "<stdin>") else "graph")
    graph = Graph(name, data.get("doc", ""), doc.file, tuple(inputs), ordered, tuple(outputs), avals, expect,
                  inliner.composites())
    return graph


def _section(data: dict[Any, Any], key: str, kind: type) -> Any:
    """A top-level section, or an empty one if it is missing or of the wrong kind (reported already)."""
    value = data.get(key)
    return value if isinstance(value, kind) else kind()


