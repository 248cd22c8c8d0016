"""The edge view of a run: for every edge src -> dst of the graph, the local derivative
d dst / d src at the current point and the gradient that flows back along it.

The lecture notes draw the local derivative on each edge and add up the streams that leave a
node (fan-out); this module computes both from the ops' own rules, so the sum of the flows
out of a name is exactly the gradient the backward pass gave it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cg.eval.interp import Result
from cg.graph.ir import Node
from cg.ops import Array
from cg.ops.formula import Formula, latex_name, show

JACOBIAN_LIMIT = 64  # largest dense local Jacobian (entries) shown; bigger edges show shape + summary only


# eq=False: the generated __eq__ would compare arrays, whose truth value numpy refuses.
@dataclass(frozen=True, eq=False)
class Edge:
    src: str  # input or node name (constants have no derivative, so they have no edge)
    dst: str  # the consuming node id
    arg: int  # argument position in dst's `in` list (mul(x, x) gives two edges)
    src_shape: tuple[int, ...]
    dst_shape: tuple[int, ...]
    local: np.ndarray | None  # d dst / d src, shape dst_shape + src_shape; None if too big or src is an int
    flow: np.ndarray | None  # this edge's part of grad[src]; None in forward mode or if src is an int
    formula: Formula | None = None  # the op's formula for this argument (None: an int, or an op without one)
    formula_value: float | None = None  # its value, on a scalar edge with a local-derivative formula
    # The node's own names for the formula's (x -> "e", y -> "z", others -> ("3",)): "1/e", as the notes write it.
    formula_names: tuple[tuple[str, tuple[str, ...]], ...] = ()


def local_jacobian(node: Node, arg: int, xs: Sequence[Array], y: Array) -> np.ndarray | None:
    """d node / d xs[arg] as a dense array of shape y.shape + xs[arg].shape, or None if it has
    more than JACOBIAN_LIMIT entries.

    One JVP per entry of the argument with a one-hot tangent on that argument only, so the
    Jacobian agrees with the op's own derivative rules (and mul(x, x) gives the partial with
    respect to one argument position, not the total derivative)."""
    src_shape, dst_shape = np.shape(xs[arg]), np.shape(y)
    n_src, n_dst = math.prod(src_shape), math.prod(dst_shape)
    if n_src * n_dst > JACOBIAN_LIMIT:
        return None
    tangents: list[Array | None] = [None] * len(xs)
    columns = np.zeros((n_dst, n_src))
    onehot = np.zeros(n_src)
    for j in range(n_src):  # at most JACOBIAN_LIMIT columns
        onehot[:] = 0.0
        onehot[j] = 1.0
        tangents[arg] = onehot.reshape(src_shape)
        columns[:, j] = np.reshape(node.op.jvp(tangents, y, xs, **node.attrs), -1)
    return columns.reshape(dst_shape + src_shape)


def _has_grads(result: Result) -> bool:
    return result.tangents is None and bool(result.grads)


def _node_edges(result: Result, node: Node) -> list[Edge]:
    """The edges into one node; one VJP gives the flows of all of them."""
    g = result.graph
    xs = node.arg_values(result.values)
    y = result.values[node.id]
    named = [(k, a) for k, a in enumerate(node.args) if isinstance(a, str)]
    floats = [k for k, a in named if g.avals[a].dtype == "float"]
    cotangents: list[Array | None] = [None] * len(xs)
    if floats and _has_grads(result):
        if node.id in result.on_path:
            cotangents = node.op.vjp(result.grads[node.id], y, xs, **node.attrs)
        else:  # the backward pass never reached this node: nothing flows back from it
            cotangents = [np.zeros(np.shape(x)) for x in xs]
    edges = []
    for k, src in named:
        is_float = k in floats
        local = local_jacobian(node, k, xs, y) if is_float else None
        cot = cotangents[k] if is_float else None
        flow = None if cot is None else np.array(np.broadcast_to(cot, np.shape(xs[k])), dtype=np.float64)
        formula, value = _formula(node, k, xs, y) if is_float else (None, None)
        names = formula_names(node, k) if formula is not None else ()
        edges.append(Edge(src, node.id, k, tuple(np.shape(xs[k])), tuple(np.shape(y)), local, flow, formula, value,
                          names))
    return edges


def _arg_text(a: Any) -> str:
    """An argument as a formula shows it: a name, a scalar constant's number, or "c" (a constant tensor)."""
    if isinstance(a, str):
        return a
    v = np.asarray(a.value)
    if v.ndim:
        return "c"
    return str(int(v)) if float(v).is_integer() else str(float(v))


def formula_names(node: Node, k: int) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The node's own names for the names of its op's formula k (x -> "e", others -> ("3",))."""
    assert node.op.formulas is not None
    args = [_arg_text(a) for a in node.args]
    names: dict[str, tuple[str, ...]] = {n: (a,) for n, a in zip(node.op.formulas.names, args)}
    names.update(x=(args[k],), y=(node.id,), others=tuple(args[:k] + args[k + 1:]))
    return tuple(names.items())


def formula_text(e: Edge, latex: bool = False, safe: Callable[[str], str] = str) -> str | None:
    """The edge's formula in its node's names ("1/e"; LaTeX "\\frac{1}{e}"), each name through
    `safe` first (cg.printable for a terminal); None if the edge has none."""
    if e.formula is None:
        return None
    sep = r" \cdot " if latex else "·"
    names = {k: sep.join(latex_name(safe(p)) if latex else safe(p) for p in parts) for k, parts in e.formula_names}
    return show(e.formula.tree, latex, names)


def _formula(node: Node, k: int, xs: Sequence[Array], y: Array) -> tuple[Formula | None, float | None]:
    """The op's formula for argument k and, on a scalar edge, its value ("2x = 4.0000"): the
    same number as the local Jacobian, from the formula the op tests check against the VJP.
    A VJP formula (in terms of g) has no value of its own to show: the flow is its value."""
    formulas = node.op.formulas
    rule = None if formulas is None else formulas.rule(k)
    if formulas is None or rule is None or rule.kind != "local" or np.shape(y) != () or np.shape(xs[k]) != ():
        return rule, None
    return rule, float(formulas.value(k, xs, y, None, dict(node.attrs)))


def compute_edges(result: Result) -> list[Edge]:
    """Every edge from an input or node to a node, in topological order of dst, then arg."""
    with np.errstate(all="ignore"):  # non-finite values were reported by the run already
        return [e for node in result.graph.nodes for e in _node_edges(result, node)]


def stream_sums(edges: list[Edge]) -> dict[str, np.ndarray]:
    """For each src, the sum of the flows along its edges: the fan-out sum of the notes.

    It equals the gradient of src, except for the differentiated output itself, whose
    gradient also holds the seed (1) that starts the backward pass."""
    sums: dict[str, np.ndarray] = {}
    for e in edges:
        if e.flow is not None:
            # asarray: numpy turns the sum of two 0-d arrays into a scalar
            sums[e.src] = np.asarray(sums[e.src] + e.flow) if e.src in sums else e.flow.copy()
    return sums


def edge_objects(edges: list[Edge]) -> list[dict[str, Any]]:
    """One object per edge, its tensors still arrays: for cg.render.table.iter_json, which writes them
    in pieces (the flow of a 9M-entry input is 9M numbers)."""
    return [
        {
            "from": e.src, "to": e.dst, "arg": e.arg, "from_shape": list(e.src_shape), "to_shape": list(e.dst_shape),
            "formula": formula_text(e), "formula_latex": formula_text(e, latex=True),
            "formula_kind": None if e.formula is None else e.formula.kind,
            "local": e.local, "flow": e.flow,
        }
        for e in edges
    ]
