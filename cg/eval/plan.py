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

The backward steps are made, and run, by cg/eval/backplan.py.

Nothing recurses over the graph. In float32 plans the constants are cast to float32, and
every float node's rules are wrapped so that a rule that returns float64 (it promoted
somewhere) is cast back: values, gradients and tangents stay float32 end to end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from cg.eval.backplan import Backward, cast_to, getter, make_backward, run_backward
from cg.gcpause import paused_gc
from cg.graph.ir import Const, Graph, Node
from cg.ops import Array, Op, OpFailure

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


def _wrap_float(op: Op, dt: np.dtype[Any]) -> Rules:
    """forward, vjp and jvp of a float node whose results are cast to dt when a rule promoted them."""
    cast = cast_to(dt)

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
            else (ni + k, fwd, -1, getter(a), n.attrs or None)
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
                plan = self._backward[key] = make_backward(self, of, wanted, fuse)
        return plan

    def backward(self, plan: Backward, vals: Sequence[Array], seed: Array,
                 progress: Report | None = None) -> list[Array | None]:
        """Gradients per slot (None where there is none), seeded with `seed` at plan.slots[0]."""
        grads: list[Array | None] = [None] * len(vals)
        grads[plan.slots[0]] = seed
        steps = plan.steps
        if progress is None:
            run_backward(steps, vals, grads)
        else:
            for lo, hi in spans(len(steps)):
                run_backward(steps[lo:hi], vals, grads)
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
