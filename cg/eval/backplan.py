"""The backward plan: the steps that carry d(of)/d(...) back from one output, made once per
(output, wanted names, fuse) from a graph's plan (cg/eval/plan.py), and the loop that runs them.

Which contribution to a name comes first is known when the steps are made, so the loop stores the
first one and adds only the later ones. Steps come in four kinds (below), so that the commonest
nodes of long scalar graphs (one-input elementwise ops; add, sub, mul, div of scalars) multiply
by their local derivatives directly instead of calling a VJP wrapper.

A backward plan made with `fuse` (cg.value_and_grad's) runs some pairs of nodes as one FAN step
(Op.fuses: index(log_softmax(x), i) as g * (onehot(i) - softmax(x)), with neither one-hot nor
summed-back cotangent), where that is exact: the inner node used by that node only, its gradient
not wanted. Its inner node then has no gradient slot filled (Backward.fused).

An op whose VJP takes a keyword `needs` (a tuple of bools, one per argument) says so (Op.needs):
the steps pass it when some argument needs no cotangent (an input whose gradient nobody asked
for), and the rule may return None for those, skipping their work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from operator import itemgetter
from typing import Any, Protocol

import numpy as np

from cg.graph.ir import Graph
from cg.ops import Array
from cg.ops.base import partials_rules

Getter = Callable[[Sequence[Any]], tuple[Any, ...]]


class Plan(Protocol):
    """What the backward steps are made from: a graph's plan (cg.eval.plan.Plan, which imports this)."""

    graph: Graph
    base: int  # the slot of the first node
    names: tuple[str, ...]
    index: dict[str, int]
    label: list[str | None]  # slot -> name (None: a constant)
    args: list[tuple[int, ...]]  # per node: its arguments' slots
    is_float: list[bool]
    rules: list[tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]]  # forward, vjp, jvp
    dtype: np.dtype[Any]

# A backward step is (kind, rule, out, arg, targets), one of four kinds:
#   SCALE  a one-input elementwise op:      grads[arg] = grads[out] * rule(x, y)   (rule: its df)
#   CHAIN  one argument, first contribution: grads[arg] = rule(g, y, (x,))[0]      (rule: its VJP)
#   FAN    the general case:                 rule(g, y, arg(vals)) gives a cotangent per argument,
#          and each (position, slot, first) in targets sets or adds its own   (arg: a getter)
#   PAIR   an elementwise op of several scalar inputs (add, mul, sub, div...): as FAN, with the
#          cotangents g * each of rule(arg(vals), y) (rule: its Op.partials), nothing to sum back
# Plain tuples, not NamedTuples, on purpose: CPython unpacks only exact tuples on its fast path,
# and NamedTuple steps made both passes about 20% slower on a chain of scalars.
SCALE, CHAIN, FAN, PAIR = "scale", "chain", "fan", "pair"
BackwardStep = tuple[str, Callable[..., Any], int, Any, Any]


def _fan_rule(vjp: Callable[..., Any], kw: Mapping[str, Any]) -> Callable[..., Any]:
    """The VJP with the node's attributes (and `needs`) bound, so a FAN step calls it with three arguments."""
    return partial(vjp, **kw) if kw else vjp


@dataclass(frozen=True)
class Backward:
    """The backward steps from one output to the names whose gradients are wanted."""

    steps: tuple[BackwardStep, ...]
    slots: tuple[int, ...]  # the slots that get a gradient, the output's first
    names: tuple[str, ...]  # their names
    # the out slots of the steps that run two nodes' VJPs at once (Op.fuses): such a step reads its
    # node's first argument (the inner node's value) as well as what the node's own VJP reads
    fused: frozenset[int] = frozenset()


def getter(slots: tuple[int, ...]) -> Getter:
    """A C-level function that returns the values at `slots` as a tuple."""
    if len(slots) == 1:
        k = slots[0]
        return lambda vals: (vals[k],)
    return itemgetter(*slots)


def cast_to(dt: np.dtype[Any]) -> Callable[[Any], Any]:
    def cast(v: Any) -> Any:
        if v is None or getattr(v, "dtype", dt) == dt or v.dtype.kind != "f":
            return v
        return v.astype(dt)

    return cast


def _cast_rule(rule: Callable[..., Any], cast: Callable[[Any], Any]) -> Callable[..., Any]:
    def vjp(g: Any, y: Any, xs: Sequence[Any]) -> list[Any]:
        return [cast(c) for c in rule(g, y, xs)]

    return vjp


def make_backward(plan: Plan, of: str, wanted: frozenset[str] | None, fuse: bool) -> Backward:
    """The steps of Plan.backward_plan (which caches them)."""
    nodes, ni, args, is_float = plan.graph.nodes, plan.base, plan.args, plan.is_float
    top = plan.index[of]
    keep = bytearray(len(plan.label))  # float slots that `of` depends on through float edges
    keep[top] = is_float[top]
    for k in range(len(nodes) - 1, -1, -1):
        if keep[ni + k]:
            for s in args[k]:
                if is_float[s]:
                    keep[s] = 1
    if wanted is not None:  # only slots on a path from a wanted name
        below = bytearray(len(plan.label))
        for name in wanted:
            below[plan.index[name]] = 1
        for k, slots in enumerate(args):
            if not below[ni + k] and any(below[s] for s in slots):
                below[ni + k] = 1
        keep = bytearray(a & b for a, b in zip(keep, below))
    fused = _fusions(plan, keep, wanted) if fuse else {}
    inner_slots = {s for s, _ in fused.values()}
    started = {top: None}  # slots with a contribution so far, in the order they got one
    steps: list[BackwardStep] = []
    for k in range(len(nodes) - 1, -1, -1):
        if not keep[ni + k] or ni + k in inner_slots:
            continue
        if k in fused:  # this node and the one that makes its first argument, at once
            inner, rule = fused[k]
            s = args[inner - ni][0]
            if keep[s]:  # a FAN step whose one target is the inner node's argument
                steps.append((FAN, rule, ni + k, getter(args[k]), ((0, s, s not in started),)))
                started[s] = None
            continue
        slots, targets = args[k], []
        for j, s in enumerate(slots):
            if keep[s]:
                targets.append((j, s, s not in started))  # (position, slot, first contribution)
                started[s] = None
        if not targets:  # its arguments are integers, constants or not wanted
            continue
        node = nodes[k]
        vjp, kw = plan.rules[k][1], dict(node.attrs)
        if len(targets) < len(slots) and node.op.needs:
            kw["needs"] = tuple(any(j == t[0] for t in targets) for j in range(len(slots)))
        if len(slots) == 1 and not kw and targets[0][2]:  # the chain's case: one argument, first
            df = node.op.df  # its VJP is g * df(x, y) (Op.df)
            if df is not None and vjp is node.op.vjp:  # not cast: multiply by df(x, y) directly
                steps.append((SCALE, df, ni + k, slots[0], None))
            else:
                steps.append((CHAIN, vjp, ni + k, slots[0], None))
        elif node.op.partials is not None and vjp is node.op.vjp and not kw and _scalars(plan, k):
            steps.append((PAIR, node.op.partials, ni + k, getter(slots), tuple(targets)))
        else:
            steps.append((FAN, _fan_rule(vjp, kw), ni + k, getter(slots), tuple(targets)))
    label = plan.label
    return Backward(tuple(steps), tuple(started), tuple(label[s] for s in started),  # type: ignore[misc]
                    frozenset(ni + k for k in fused))

def _fusions(plan: Plan, keep: bytearray, wanted: frozenset[str] | None) -> dict[int, tuple[int, Callable[..., Any]]]:
    """node -> (the slot of the node that makes its first argument, their VJP at once), for the
    pairs that Op.fuses covers, where it is exact: the argument has no other use and its gradient
    is not wanted (so never for cg.run, which reports every gradient). In float32 plans the rule's
    results are cast back, as every float node's are."""
    if wanted is None:
        return {}
    nodes, ni, args, avals = plan.graph.nodes, plan.base, plan.args, plan.graph.avals
    uses: dict[int, int] = {}
    for slots in args:
        for s in slots:
            uses[s] = uses.get(s, 0) + 1
    found: dict[int, tuple[int, Callable[..., Any]]] = {}
    for k, node in enumerate(nodes):
        if not node.op.fuses or not keep[ni + k]:
            continue
        s = args[k][0]
        if (not ni <= s < ni + len(nodes) or uses[s] != 1 or not keep[s] or plan.names[s] in wanted
                or s - ni in found):
            continue
        inner = nodes[s - ni]
        fuse, x = node.op.fuses.get(inner.op.name), inner.args[0]
        rule = None if fuse is None or type(x) is not str else fuse(inner.attrs, len(avals[x].shape))
        if rule is not None:
            if plan.dtype != np.float64:
                rule = _cast_rule(rule, cast_to(plan.dtype))
            found[k] = (s, rule)
    return found

def _scalars(plan: Plan, k: int) -> bool:
    """Node k and its arguments are declared scalars. An input whose shape came from its default
    may still be given as an array at run time: a PAIR step then sees an array cotangent and
    takes the op's VJP, which sums back over broadcast axes."""
    avals, node = plan.graph.avals, plan.graph.nodes[k]
    return avals[node.id].shape == () and all(type(a) is not str or avals[a].shape == () for a in node.args)


def run_backward(steps: Sequence[BackwardStep], vals: Sequence[Array], grads: list[Any]) -> None:
    """Plan.backward's loop over some of its steps, in order: each node's gradient times its local
    derivative, into its arguments' gradients (micrograd's `_backward`, without a closure per
    node). The lean passes (cg/eval/lean.py) have their own, which also frees what dies."""
    for kind, rule, out, a, targets in steps:
        if kind is SCALE:
            grads[a] = grads[out] * rule(vals[a], vals[out])
        elif kind is CHAIN:
            grads[a] = rule(grads[out], vals[out], (vals[a],))[0]
        elif kind is PAIR:
            g = grads[out]
            if type(g) is np.ndarray:  # not a number after all (see _scalars): the VJP sums back
                ds = partials_rules(rule)[0](g, vals[out], a(vals))
                for j, t, first in targets:
                    grads[t] = ds[j] if first else grads[t] + ds[j]
                continue
            ds = rule(a(vals), vals[out])
            for j, t, first in targets:
                c = g if ds[j] is None else g * ds[j]  # None: Op.partials' ONE, a sum's
                grads[t] = c if first else grads[t] + c
        else:
            cts = rule(grads[out], vals[out], a(vals))
            for j, t, first in targets:
                grads[t] = cts[j] if first else grads[t] + cts[j]
