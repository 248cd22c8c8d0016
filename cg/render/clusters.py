"""Composites in pictures: `cg draw --composites node` draws a call as one box (the default),
`--composites cluster` draws its inner nodes inside a labelled box, nested for calls inside
functions. This module works out which box sits in which cluster; cg.render.draw writes them out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cg.graph.ir import Graph

MODES = ("node", "cluster")


@dataclass(frozen=True)
class Cluster:
    key: str  # the composite's id: h1, or h1/n for a call inside h1's function
    label: str  # "h1: linear"
    parent: str | None  # the enclosing cluster
    members: tuple[str, ...]  # keys of the boxes directly inside (not inside a nested cluster)


def clusters(graph: Graph, box_keys: Iterable[str]) -> tuple[Cluster, ...]:
    """A cluster per composite of the graph, holding its inner nodes and their constants."""
    owner: dict[str, str] = {}
    for c in graph.composites:  # a call is recorded before the calls inside it: the innermost wins
        for inner in c.inner:
            owner[inner] = c.id
    members: dict[str, list[str]] = {c.id: [] for c in graph.composites}
    for key in box_keys:
        name, _, part = key.partition(".")  # ids have no dots; a constant's box is "<node>.in<k>"
        if (not part or part.startswith("in")) and name in owner:
            members[owner[name]].append(key)
    return tuple(
        Cluster(c.id, f"{c.id}: {c.text or c.op.name}", c.parent, tuple(members[c.id])) for c in graph.composites
    )


def nesting(found: tuple[Cluster, ...]) -> list[tuple[bool, Cluster]]:
    """(True, cluster) where a cluster opens and (False, cluster) where it closes, parents around
    their children: the order DOT and Mermaid need. An explicit stack, no recursion."""
    children: dict[str | None, list[Cluster]] = {}
    for c in found:
        children.setdefault(c.parent, []).append(c)
    out: list[tuple[bool, Cluster]] = []
    stack = [(True, c) for c in reversed(children.get(None, []))]
    while stack:
        opening, c = stack.pop()
        out.append((opening, c))
        if opening:
            stack.append((False, c))
            stack.extend((True, child) for child in reversed(children.get(c.key, [])))
    return out


def everything_inside(found: tuple[Cluster, ...]) -> dict[str, list[str]]:
    """Per cluster, its boxes and those of the clusters nested in it (a frame must hold them all)."""
    inside = {c.key: list(c.members) for c in found}
    for c in reversed(found):  # a call is recorded before the calls inside it: children come first here
        if c.parent in inside:
            inside[c.parent] += inside[c.key]
    return inside


GRAD_MARK = "(cg grad)"  # how `cg grad` ends the doc of the graphs it writes (cg/eval/gradgraph.py)


def is_gradient_graph(graph: Graph) -> bool:
    return graph.doc.endswith(GRAD_MARK) and bool(graph.outputs)


def bands(graph: Graph, box_keys: Iterable[str]) -> tuple[Cluster, ...]:
    """A gradient graph's two bands: the forward pass (what its first output depends on) and the
    backward pass (the nodes written by `cg grad`, which the first output does not need)."""
    forward = {graph.outputs[0]}
    for n in reversed(graph.nodes):  # topological order: one pass, no recursion
        if n.id in forward:
            forward.update(a for a in n.args if isinstance(a, str))
    nodes = {n.id for n in graph.nodes}
    members: dict[str, list[str]] = {"forward": [], "backward": []}
    for key in box_keys:
        name, _, part = key.partition(".")
        if name in nodes and (not part or part.startswith("in")):
            members["forward" if name in forward else "backward"].append(key)
    return (Cluster("forward", "forward pass", None, tuple(members["forward"])),
            Cluster("backward", "backward pass (cg grad)", None, tuple(members["backward"])))
