"""Composite gates in a built graph, and the view that shows each one as a single node.

A call of a function (`h1: {op: linear, in: [W1, x, b1]}`) and an expression node are inlined
when the graph is built: the graph holds only built-in ops, so every pass (run, forward mode,
Jacobians, paths, checks) works on it unchanged, and the gradients through a composite are
those of the same graph written flat. The inner nodes get ids `h1/Wx` (nested: `h1/n/Wx`); the
node that gives the call's value keeps the call's own id, `h1`.

Graph.composites records each call, so that tables and pictures can show a composite as one
row or box (its value and gradient at its boundary, like a fused gate) or draw a cluster
around its inner nodes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from cg.graph.ir import Composite, Graph, Node


def top_level(graph: Graph) -> dict[str, Composite]:
    """The calls written in the graph itself (not inside a function), by id."""
    return {c.output: c for c in graph.composites if c.parent is None}


def shown_nodes(graph: Graph) -> tuple[Node, ...]:
    """The nodes a table or picture shows: a composite as one node (its function as the op, the
    call's inputs as its arguments) in place of its inner nodes. Without composites, every node."""
    top = top_level(graph)
    if not top:
        return graph.nodes

    hidden = {i for c in top.values() for i in c.inner}
    out = []
    for node in graph.nodes:
        c = top.get(node.id)
        if c is not None:
            op = c.op if not c.text else replace(c.op, name=c.text)
            out.append(Node(c.output, op, c.args, {}, c.doc or node.doc, c.pos))
        elif node.id not in hidden:
            out.append(node)
    return tuple(out)


def expanded(graph: Graph) -> Graph:
    """The same graph shown with every inner node (no composites to fold)."""
    return replace(graph, composites=()) if graph.composites else graph


def hidden(graph: Graph, name: str) -> bool:
    """Whether `name` is an inner node that the folded view (one row per call) does not show."""
    return any(name in c.inner and name != c.output for c in top_level(graph).values())


def call_flows(graph: Graph, flows: Mapping[tuple[str, int], Any]) -> dict[tuple[str, int], Any]:
    """The gradient flowing back along each argument of each top-level call: the sum of the flows
    of the inner edges that argument feeds (None where none carries a gradient)."""
    out: dict[tuple[str, int], Any] = {}
    for c in top_level(graph).values():
        for k, uses in enumerate(c.uses):
            parts = [f for f in (flows.get(u) for u in uses) if f is not None]
            total = None
            for f in parts:
                total = f if total is None else total + f
            out[(c.output, k)] = total
    return out
