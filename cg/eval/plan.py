"""A graph compiled once for the passes: every name and constant gets a slot in a list, every
node a step that holds its rule and the slots of its arguments, so a pass is a loop over
steps that indexes lists (no dict lookups, no isinstance tests, no per-call re-validation).

`plan_for(graph, dtype)` builds the plan on first use and keeps it on the graph. The passes:

- forward: values = [*inputs, one slot per node filled in order, *constants (numpy
  scalars when 0-d: arithmetic on them is several times cheaper than on 0-d arrays)];
- backward: the steps of the nodes between the differentiated output and the names whose
  gradient is wanted, in reverse order; which contribution to a name comes first is known
  when the plan is made, so the first one is stored and only later ones are added;
- jvp: tangents pushed in topological order, skipping nodes whose arguments have none.

A backward plan made with `fuse` (cg.value_and_grad's) runs some pairs of nodes as one FAN step
(Op.fuses: index(log_softmax(x), i) as g * (onehot(i) - softmax(x)), with neither one-hot nor
summed-back cotangent), where that is exact: the inner node used by that node only, its gradient
not wanted. Its inner node then has no gradient slot filled (Backward.fused).

Nothing recurses over the graph. In float32 plans the constants are cast to float32, and
every float node's rules are wrapped so that a rule that returns float64 (it promoted
somewhere) is cast back: values, gradients and tangents stay float32 end to end.

An op whose VJP takes a keyword `needs` (a tuple of bools, one per argument) says so (Op.needs):
the plan passes it when some argument needs no cotangent (an input whose gradient nobody asked
for), and the rule may return None for those, skipping their work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from operator import itemgetter
from typing import Any

import numpy as np

from cg.gcpause import paused_gc
from cg.graph.ir import Const, Graph, Node
from cg.ops import Array, Op, OpFailure
from cg.ops.base import partials_rules

DTYPES = ("float64", "float32")
Getter = Callable[[Sequence[Any]], tuple[Any, ...]]
Rules = tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]  # forward, vjp, jvp
# progress(what, done, total), e.g. ("backward", 4000, 100000): the CLI's bar on a terminal
# (cg/progress.py). Given one, a pass runs in about REPORTS spans and reports after each; without
# one (a pipe, the Python API) it is one plain loop, as fast as before.
Report = Callable[[str, int, int], None]
REPORTS = 100


def spans(n: int) -> list[tuple[int, int]]:
    """[lo, hi) ranges that cover range(n) in at most about REPORTS pieces (one per step when small)."""
    size = max(1, n // REPORTS)
    return [(lo, min(lo + size, n)) for lo in range(0, n, size)]


class StepFailure(Exception):
    """An op's forward rule failed (OpFailure) at `node`."""

    def __init__(self, node: Node, message: str) -> None:
        super().__init__(message)
        self.node = node


# A backward step is (kind, rule, out, arg, targets), one of three kinds:
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


def _getter(slots: tuple[int, ...]) -> Getter:
    """A C-level function that returns the values at `slots` as a tuple."""
    if len(slots) == 1:
        k = slots[0]
        return lambda vals: (vals[k],)
    return itemgetter(*slots)


def _cast(dt: np.dtype[Any]) -> Callable[[Any], Any]:
    def cast(v: Any) -> Any:
        if v is None or getattr(v, "dtype", dt) == dt or v.dtype.kind != "f":
            return v
        return v.astype(dt)

    return cast


def _cast_rule(rule: Callable[..., Any], cast: Callable[[Any], Any]) -> Callable[..., Any]:
    def vjp(g: Any, y: Any, xs: Sequence[Any]) -> list[Any]:
        return [cast(c) for c in rule(g, y, xs)]

    return vjp


def _wrap_float(op: Op, dt: np.dtype[Any]) -> Rules:
    """forward, vjp and jvp of a float node whose results are cast to dt when a rule promoted them."""
    cast = _cast(dt)

    def forward(*xs: Any, **kw: Any) -> Any:
        return cast(op.forward(*xs, **kw))

    def vjp(g: Any, y: Any, xs: Sequence[Any], **kw: Any) -> list[Any]:
        return [cast(c) for c in op.vjp(g, y, xs, **kw)]

    def jvp(ts: Sequence[Any], y: Any, xs: Sequence[Any], **kw: Any) -> Any:
        return cast(op.jvp(ts, y, xs, **kw))

    return forward, vjp, jvp


class Plan:
    """Slots: the inputs, then one per node (in topological order), then the constants and the
    names used but defined outside the graph (as in a graph cut by cg.eval.jacobian.downstream)."""

    def __init__(self, graph: Graph, dtype: str = "float64") -> None:
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
        self.graph = graph
        self.dtype = dt = np.dtype(dtype)
        nodes, avals = graph.nodes, graph.avals
        self.names: tuple[str, ...] = (*(i.name for i in graph.inputs), *(n.id for n in nodes))
        self.base = ni = len(graph.inputs)  # the slot of the first node
        self.index: dict[str, int] = {name: k for k, name in enumerate(self.names)}
        self.label: list[str | None] = list(self.names)  # slot -> name (None: a constant)
        self.extras: list[Array | None] = []  # constants, and None for each outside name
        outside: list[str] = []
        index, extras, end = self.index, self.extras, len(self.names)
        args: list[tuple[int, ...]] = []
        for node in nodes:
            slots = []
            for a in node.args:
                if type(a) is str:
                    slot = index.get(a)
                    if slot is None:
                        slot = index[a] = end + len(extras)
                        extras.append(None)
                        outside.append(a)
                        self.label.append(a)
                else:
                    slot = end + len(extras)
                    extras.append(self._const(a))  # type: ignore[arg-type]
                    self.label.append(None)
                slots.append(slot)
            args.append(tuple(slots))
        self.args = args
        self.free: tuple[str, ...] = (*self.names[:ni], *outside)
        self.outside_slots = tuple(index[a] for a in outside)
        self.is_float = [name is not None and name in avals and avals[name].dtype == "float" for name in self.label]
        # (forward, vjp, jvp) per node, one tuple per op shared by its nodes.
        plain: dict[int, Rules] = {}
        cast: dict[int, Rules] = {}
        self.rules: list[Rules] = []
        for k, n in enumerate(nodes):
            op = n.op
            if dt != np.float64 and self.is_float[ni + k]:
                rules = cast.get(id(op)) or cast.setdefault(id(op), _wrap_float(op, dt))
            else:
                rules = plain.get(id(op)) or plain.setdefault(id(op), (op.forward, op.vjp, op.jvp))
            self.rules.append(rules)
        # (out slot, forward, the one argument's slot, None, None), or (out, forward, -1, getter, attrs or None)
        self.steps: list[tuple[Any, ...]] = [
            (ni + k, fwd, a[0], None, None) if len(a) == 1 and not n.attrs
            else (ni + k, fwd, -1, _getter(a), n.attrs or None)
            for k, (n, (fwd, _, _), a) in enumerate(zip(nodes, self.rules, args))
        ]
        self._blank: list[None] = [None] * len(nodes)
        self._backward: dict[tuple[str, frozenset[str] | None, bool], Backward] = {}
        self._reach: dict[tuple[str, bool], frozenset[str]] = {}

    def _const(self, c: Const) -> Array:
        value = c.value.astype(self.dtype) if c.value.dtype.kind == "f" else c.value
        return value[()] if value.ndim == 0 else value  # a numpy scalar: arithmetic on it is 8x cheaper

    # ---- forward -------------------------------------------------------------------------

    def forward(self, free: Sequence[Array], progress: Report | None = None) -> list[Array]:
        """Every slot's value, given the values of the free names (self.free) in order."""
        vals = self.start(free)
        steps = self.steps
        if progress is None:
            self.run_steps(vals, steps)
        else:
            for lo, hi in spans(len(steps)):
                self.run_steps(vals, steps[lo:hi])
                progress("forward", hi, len(steps))
        return vals

    def start(self, free: Sequence[Array]) -> list[Array]:
        """The slot list before a forward pass: the free values and constants in place, None for the nodes."""
        ni = self.base
        vals = [*free[:ni], *self._blank, *self.extras]
        for slot, v in zip(self.outside_slots, free[ni:]):
            vals[slot] = v
        return vals

    def steps_below(self, start: str) -> list[tuple[Any, ...]]:
        """The forward steps of the nodes that depend on `start` (not its own), in order: what
        must be run again when its value changes (a finite difference)."""
        below, names, ni = self.reachable(start, downstream=True), self.names, self.base
        return [step for k, step in enumerate(self.steps) if names[ni + k] in below and names[ni + k] != start]

    def run_steps(self, vals: list[Array], steps: Sequence[tuple[Any, ...]]) -> None:
        """Fill the value slots of these forward steps, in order (StepFailure if an op fails)."""
        ni = out = self.base
        try:
            for out, fn, a, get, attrs in steps:
                if get is None:  # one argument, no attributes: the scalar chain's case
                    vals[out] = fn(vals[a])
                elif attrs is None:
                    vals[out] = fn(*get(vals))
                else:
                    vals[out] = fn(*get(vals), **attrs)
        except OpFailure as e:
            raise StepFailure(self.graph.nodes[out - ni], str(e)) from None

    # ---- backward ------------------------------------------------------------------------

    def backward_plan(self, of: str, wanted: frozenset[str] | None = None, fuse: bool = False) -> Backward:
        """The steps that carry d(of)/d(...) back to the float names `of` depends on (only to
        those on a path from a name in `wanted`, if given); cached per (of, wanted, fuse). With `fuse`,
        pairs of nodes whose VJPs run as one where that is exact (Op.fuses): the inner node gets no
        gradient of its own, so a caller that looks for the node that sent a NaN (cg.run, the Jacobian's
        strict passes) does not ask for it; cg.value_and_grad, which reports no NaN, does."""
        key = (of, wanted, fuse)
        plan = self._backward.get(key)
        if plan is None:
            with paused_gc():
                plan = self._backward[key] = self._make_backward(of, wanted, fuse)
        return plan

    def _make_backward(self, of: str, wanted: frozenset[str] | None, fuse: bool) -> Backward:
        nodes, ni, args, is_float = self.graph.nodes, self.base, self.args, self.is_float
        top = self.index[of]
        keep = bytearray(len(self.label))  # float slots that `of` depends on through float edges
        keep[top] = is_float[top]
        for k in range(len(nodes) - 1, -1, -1):
            if keep[ni + k]:
                for s in args[k]:
                    if is_float[s]:
                        keep[s] = 1
        if wanted is not None:  # only slots on a path from a wanted name
            below = bytearray(len(self.label))
            for name in wanted:
                below[self.index[name]] = 1
            for k, slots in enumerate(args):
                if not below[ni + k] and any(below[s] for s in slots):
                    below[ni + k] = 1
            keep = bytearray(a & b for a, b in zip(keep, below))
        fused = self._fusions(keep, wanted) if fuse else {}
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
                    steps.append((FAN, rule, ni + k, _getter(args[k]), ((0, s, s not in started),)))
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
            vjp, kw = self.rules[k][1], dict(node.attrs)
            if len(targets) < len(slots) and node.op.needs:
                kw["needs"] = tuple(any(j == t[0] for t in targets) for j in range(len(slots)))
            if len(slots) == 1 and not kw and targets[0][2]:  # the chain's case: one argument, first
                df = node.op.df  # its VJP is g * df(x, y) (Op.df)
                if df is not None and vjp is node.op.vjp:  # not cast: multiply by df(x, y) directly
                    steps.append((SCALE, df, ni + k, slots[0], None))
                else:
                    steps.append((CHAIN, vjp, ni + k, slots[0], None))
            elif node.op.partials is not None and vjp is node.op.vjp and not kw and self._scalars(k):
                steps.append((PAIR, node.op.partials, ni + k, _getter(slots), tuple(targets)))
            else:
                steps.append((FAN, _fan_rule(vjp, kw), ni + k, _getter(slots), tuple(targets)))
        label = self.label
        return Backward(tuple(steps), tuple(started), tuple(label[s] for s in started),  # type: ignore[misc]
                        frozenset(ni + k for k in fused))

    def _fusions(self, keep: bytearray, wanted: frozenset[str] | None) -> dict[int, tuple[int, Callable[..., Any]]]:
        """node -> (the slot of the node that makes its first argument, their VJP at once), for the
        pairs that Op.fuses covers, where it is exact: the argument has no other use and its gradient
        is not wanted (so never for cg.run, which reports every gradient). In float32 plans the rule's
        results are cast back, as every float node's are."""
        if wanted is None:
            return {}
        nodes, ni, args, avals = self.graph.nodes, self.base, self.args, self.graph.avals
        uses: dict[int, int] = {}
        for slots in args:
            for s in slots:
                uses[s] = uses.get(s, 0) + 1
        found: dict[int, tuple[int, Callable[..., Any]]] = {}
        for k, node in enumerate(nodes):
            if not node.op.fuses or not keep[ni + k]:
                continue
            s = args[k][0]
            if (not ni <= s < ni + len(nodes) or uses[s] != 1 or not keep[s] or self.names[s] in wanted
                    or s - ni in found):
                continue
            inner = nodes[s - ni]
            fuse, x = node.op.fuses.get(inner.op.name), inner.args[0]
            rule = None if fuse is None or type(x) is not str else fuse(inner.attrs, len(avals[x].shape))
            if rule is not None:
                if self.dtype != np.float64:
                    rule = _cast_rule(rule, _cast(self.dtype))
                found[k] = (s, rule)
        return found

    def _scalars(self, k: int) -> bool:
        """Node k and its arguments are declared scalars. An input whose shape came from its default
        may still be given as an array at run time: a PAIR step then sees an array cotangent and
        takes the op's VJP, which sums back over broadcast axes."""
        avals, node = self.graph.avals, self.graph.nodes[k]
        return avals[node.id].shape == () and all(type(a) is not str or avals[a].shape == () for a in node.args)

    def backward(self, plan: Backward, vals: Sequence[Array], seed: Array,
                 progress: Report | None = None) -> list[Array | None]:
        """Gradients per slot (None where there is none), seeded with `seed` at plan.slots[0]."""
        grads: list[Array | None] = [None] * len(vals)
        grads[plan.slots[0]] = seed
        steps = plan.steps
        if progress is None:
            _backward(steps, vals, grads)
        else:
            for lo, hi in spans(len(steps)):
                _backward(steps[lo:hi], vals, grads)
                progress("backward", hi, len(steps))
        return grads

    # ---- forward mode --------------------------------------------------------------------

    def jvp(self, vals: Sequence[Array], seeds: Mapping[int, Array],
            progress: Report | None = None) -> list[Array | None]:
        """Tangents per slot, given the tangents of some slots (free names or nodes)."""
        tans: list[Array | None] = [None] * len(vals)
        for slot, t in seeds.items():
            tans[slot] = t
        parts = (self.steps, self.rules, self.args, self.graph.nodes)
        if progress is None:
            _jvp(zip(*parts), vals, tans)
        else:
            n = len(self.steps)
            for lo, hi in spans(n):
                _jvp(zip(*(p[lo:hi] for p in parts)), vals, tans)
                progress("forward mode", hi, n)
        return tans

    def reachable(self, start: str, downstream: bool) -> frozenset[str]:
        """Names connected to `start` by a path (its descendants, or its ancestors), `start`
        included: one sweep over the nodes, cached."""
        key = (start, downstream)
        found = self._reach.get(key)
        if found is None:
            seen = {start}
            for node in self.graph.nodes if downstream else reversed(self.graph.nodes):
                names = [a for a in node.args if type(a) is str]
                if downstream and any(a in seen for a in names):
                    seen.add(node.id)
                elif not downstream and node.id in seen:
                    seen.update(names)
            found = self._reach[key] = frozenset(seen)
        return found

    def between(self, src: str, dst: str) -> frozenset[str]:
        """The names on some path from src to dst, both included (empty if there is none)."""
        return self.reachable(src, downstream=True) & self.reachable(dst, downstream=False)

    def values(self, named: Mapping[str, Array]) -> list[Array]:
        """The slot list of a name -> value mapping that has every free name and node."""
        vals = [named[n] for n in self.names]
        vals += self.extras
        for a, slot in zip(self.free[self.base :], self.outside_slots):
            vals[slot] = named[a]
        return vals


def _backward(steps: Sequence[BackwardStep], vals: Sequence[Array], grads: list[Any]) -> None:
    """Plan.backward's loop over some of its steps, in order: each node's gradient times its local
    derivative, into its arguments' gradients (micrograd's `_backward`, without a closure per node)."""
    for kind, rule, out, a, targets in steps:
        if kind is SCALE:
            grads[a] = grads[out] * rule(vals[a], vals[out])
        elif kind is CHAIN:
            grads[a] = rule(grads[out], vals[out], (vals[a],))[0]
        elif kind is PAIR:
            g = grads[out]
            if type(g) is np.ndarray:  # not a number after all (see Plan._scalars): the VJP sums back
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


def _jvp(steps: Iterable[tuple[Any, ...]], vals: Sequence[Array], tans: list[Array | None]) -> None:
    """Plan.jvp's loop: (step, rules, argument slots, node) for some of the nodes, in order."""
    for (out, *_), (_, _, jvp), args, node in steps:
        ts = [tans[a] for a in args]
        if all(t is None for t in ts):
            continue
        tans[out] = jvp(ts, vals[out], [vals[a] for a in args], **node.attrs)


def reachable(graph: Graph, start: str, *, downstream: bool) -> frozenset[str]:
    """Names connected to `start` by a path (its descendants if downstream, else its ancestors),
    `start` included: the one walk every stage uses (cached on the graph's plan)."""
    return plan_for(graph).reachable(start, downstream)


def between(graph: Graph, src: str, dst: str) -> frozenset[str]:
    """The names on some path from src to dst, both included (empty if there is none)."""
    return plan_for(graph).between(src, dst)


def plan_for(graph: Graph, dtype: str = "float64") -> Plan:
    """The graph's plan for `dtype`, made on first use and kept on the graph (as
    functools.cached_property does: the Graph is frozen, its __dict__ is not)."""
    plans: dict[str, Plan] = graph.__dict__.setdefault("_plans", {})
    plan = plans.get(dtype)
    if plan is None:
        with paused_gc():  # many small tuples, no cycles: see cg/gcpause.py
            plan = plans[dtype] = Plan(graph, dtype)
    return plan


def downstream(graph: Graph, start: str) -> Graph:
    """The graph with only the nodes after `start` in topological order, so a JVP pass can
    begin at a node's tangent. cg.eval.interp.jvp would also keep a tangent given for a node (it
    skips nodes whose arguments have none, as a start node's do), but the cut graph does not
    depend on that, and skips the nodes above `start`."""
    k = next((i for i, n in enumerate(graph.nodes) if n.id == start), -1)
    return graph if k < 0 else replace(graph, nodes=graph.nodes[k + 1 :])
