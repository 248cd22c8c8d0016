"""The passes one node at a time, in the order cg computes them, as the notes teach them
(`cg step`): the forward pass in topological order, then the backward pass in reverse order,
each node's gradient complete before it is sent on ("visit nodes in reverse order, compute the
gradient with respect to each node using the gradients with respect to its successors").

A backward step holds the node's gradient with the part that arrived from each consumer (the
fan-out sum), and for each argument the local derivative, the product sent back along the edge,
and the argument's running total: the first share sets it (`=`), later ones add to it (`+=`),
as in the staged computation of the notes. Everything comes from a Result and its edges
(cg/eval/edges.py: the ops' own rules), so the steps add up to exactly what `cg run` prints.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from cg.eval.edges import Edge, compute_edges
from cg.eval.interp import Result
from cg.graph.ir import Node


@dataclass(frozen=True, eq=False)  # eq=False: arrays inside
class Share:
    """What one edge sends back: the node's gradient times the local derivative, added to its source."""

    edge: Edge
    before: np.ndarray | None  # the source's gradient before this share; None: the first one (`=`)
    after: np.ndarray  # its gradient after it


@dataclass(frozen=True, eq=False)
class BackwardStep:
    node: Node
    grad: np.ndarray  # d of / d node, complete when the step runs
    arrived: tuple[Edge, ...]  # the edges out of the node: each consumer's part of grad (none: the seed)
    shares: tuple[Share, ...]  # one per float argument that is a name (constants get nothing)


@dataclass(frozen=True, eq=False)
class ForwardStep:
    node: Node
    value: np.ndarray
    tangent: np.ndarray | None  # forward mode: d node / d direction (None: no tangent reaches it)
    incoming: tuple[Edge, ...]  # the edges into the node, with their local derivatives


@dataclass(frozen=True, eq=False)
class Steps:
    result: Result
    forward: tuple[ForwardStep, ...]
    backward: tuple[BackwardStep, ...]  # empty in forward mode
    inputs: dict[str, tuple[Edge, ...]]  # each float input's edges, whose flows add up to its gradient


def steps(result: Result) -> Steps:
    """The steps of a run (reverse mode: forward then backward; forward mode: forward with tangents)."""
    edges = compute_edges(result)
    into: dict[str, list[Edge]] = defaultdict(list)
    out: dict[str, list[Edge]] = defaultdict(list)
    for e in edges:
        into[e.dst].append(e)
        out[e.src].append(e)
    tangents = result.tangents
    forward = tuple(ForwardStep(n, result.values[n.id], None if tangents is None else tangents.get(n.id),
                                tuple(into[n.id])) for n in result.graph.nodes)
    backward = () if tangents is not None or result.of is None else _backward(result, into, out)
    inputs = {i.name: tuple(e for e in out[i.name] if e.flow is not None) for i in result.graph.inputs
              if i.aval.dtype == "float"}  # fmt: skip
    return Steps(result, forward, backward, inputs)


def _backward(result: Result, into: dict[str, list[Edge]], out: dict[str, list[Edge]]) -> tuple[BackwardStep, ...]:
    """Reverse topological order, nodes the output depends on only; running totals per name."""
    total: dict[str, np.ndarray] = {}
    found = []
    for node in reversed(result.graph.nodes):
        grad = result.grads.get(node.id)
        if node.id not in result.on_path or grad is None:
            continue  # nothing flows back through it
        arrived = tuple(e for e in out[node.id] if e.flow is not None and e.dst in result.on_path)
        shares = []
        for e in into[node.id]:
            if e.flow is None:
                continue  # an integer argument: no gradient
            before = total.get(e.src)
            after = e.flow if before is None else np.asarray(before + e.flow)
            total[e.src] = after
            shares.append(Share(e, before, after))
        found.append(BackwardStep(node, np.asarray(grad), arrived, tuple(shares)))
    return tuple(found)
