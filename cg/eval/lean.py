"""Liveness: the passes of cg.value_and_grad with every array freed after its last use.

The plain passes (cg/eval/plan.py) keep every value until the backward pass ends and every
gradient until the call returns, because cg.run reports them all. A caller that wants only the
output and some gradients needs none of that: on a 20-layer MLP the 61 intermediates held to the
end made glibc hand their pages back to the kernel after each call and fault fresh zeroed ones in
on the next (../shared/notes/performance.md). Here each step carries the slots that die with it:

- forward: a value that no VJP reads (Op.reads) dies after its last forward use. If a backward step
  still needs its shape (add sums its cotangent back to each argument's shape), it is replaced by
  a stand-in of that shape that holds no memory and is all NaN, so that an Op.reads that forgot
  something shows as NaN gradients, never as plausible wrong ones;
- backward: a value dies after the last VJP that reads it, and a node's gradient after its own
  step (nothing after it reads it) unless the caller asked for it.

Only values of at least LIMIT elements are tracked: smaller ones come from numpy's and Python's
own small-object caches, and a scalar chain would only pay for the bookkeeping. The stand-ins
have the declared shapes, so these passes run only when the inputs have them (cg.value_and_grad's
fast path); other calls take the plain passes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from sys import getrefcount
from typing import Any

import numpy as np

from cg.eval.backplan import CHAIN, FAN, PAIR, SCALE, Backward
from cg.eval.plan import Plan, StepFailure
from cg.ops import Array, OpFailure
from cg.ops.base import partials_rules

LIMIT = 1024  # elements


@dataclass(frozen=True)
class Lean:
    forward: tuple[tuple[Any, ...], ...]  # a forward step of the plan + (dead: ((slot, stand-in or None), ...),)
    backward: tuple[tuple[Any, ...], ...]  # a backward step + (dead value slots, drop the node's gradient)


def lean(plan: Plan, back: Backward, keep: frozenset[int], keep_grads: frozenset[int],
         limit: int | None = None) -> Lean | None:
    """The passes of `back` with frees, keeping the values at `keep` and the gradients at
    `keep_grads`; None when the graph has no value of `limit` (LIMIT) elements: nothing to gain."""
    nodes, ni, args, avals = plan.graph.nodes, plan.base, plan.args, plan.graph.avals
    least = LIMIT if limit is None else limit
    big = {ni + k for k, n in enumerate(nodes) if plan.is_float[ni + k] and math.prod(avals[n.id].shape) >= least}
    big -= keep
    if not big:
        return None
    last_fwd = {ni + k: k for k in range(len(nodes))}  # its own step, then each user's
    for k, slots in enumerate(args):
        for s in slots:
            last_fwd[s] = k
    read_at: dict[int, int] = {}  # slot -> the last backward step that reads its data
    shaped: set[int] = set()  # slots a backward step needs at least the shape of
    for i, (_, _, out, _, _) in enumerate(back.steps):
        k = out - ni
        reads, slots = nodes[k].op.reads, args[k]
        if out in back.fused and reads is not None:  # its VJP and its first argument's at once: it reads that too
            reads = reads | {0}
        shaped.update(slots)
        shaped.add(out)
        read = (out, *slots) if reads is None else (
            *(slots[j] for j in reads if isinstance(j, int)), *(out,) * ("y" in reads))
        for s in read:
            read_at[s] = i
    in_fwd: dict[int, list[tuple[int, Array | None]]] = {}
    in_bwd: dict[int, list[int]] = {}
    for s in big:
        if s in read_at:
            in_bwd.setdefault(read_at[s], []).append(s)
        else:
            in_fwd.setdefault(last_fwd[s], []).append((s, _stand_in(plan, s) if s in shaped else None))
    forward = tuple((*step, tuple(in_fwd.get(k, ()))) for k, step in enumerate(plan.steps))
    backward = tuple(
        (*_general(step), tuple(in_bwd.get(i, ())), step[2] in big and step[2] not in keep_grads)
        for i, step in enumerate(back.steps)
    )
    return Lean(forward, backward)


def _general(step: tuple[Any, ...]) -> tuple[Any, ...]:
    """A PAIR step (scalars: a fast path) as the FAN step it stands for, so the loop below has three kinds."""
    kind, rule, out, get, targets = step
    return (FAN, partials_rules(rule)[0], out, get, targets) if kind is PAIR else step


def _stand_in(plan: Plan, slot: int) -> Array:
    """A value's stand-in: its declared shape, no memory of its own, NaN everywhere."""
    shape = plan.graph.avals[plan.names[slot]].shape
    return np.broadcast_to(np.array(np.nan, plan.dtype), shape)


def run_forward(plan: Plan, steps: Sequence[tuple[Any, ...]], vals: list[Array]) -> None:
    """Plan.run_steps with each step's dead slots freed (or replaced by stand-ins) after it."""
    out = plan.base
    try:
        for out, fn, a, get, attrs, dead in steps:
            if get is None:
                vals[out] = fn(vals[a])
            elif attrs is None:
                vals[out] = fn(*get(vals))
            else:
                vals[out] = fn(*get(vals), **attrs)
            for s, stand_in in dead:
                vals[s] = stand_in
    except OpFailure as e:
        raise StepFailure(plan.graph.nodes[out - plan.base], str(e)) from None


def run_backward(steps: Sequence[tuple[Any, ...]], vals: list[Array], grads: list[Any]) -> None:
    """cg.eval.plan's backward loop with each step's dead values, and its node's gradient, dropped.
    A one-input elementwise step whose gradient dies with it multiplies that array in place when
    nothing else can see it (the tanh layers of an MLP: one array less per layer)."""
    for kind, rule, out, a, targets, dead, drop in steps:
        if kind is SCALE:
            g, d = grads[out], rule(vals[a], vals[out])
            if drop:
                grads[out] = None
                if _private(g) and getattr(d, "shape", ()) in ((), g.shape):
                    grads[a] = np.multiply(g, d, out=g)
                    for s in dead:
                        vals[s] = None
                    continue
            grads[a] = g * d
        elif kind is CHAIN:
            grads[a] = rule(grads[out], vals[out], (vals[a],))[0]
        else:
            cts = rule(grads[out], vals[out], a(vals))
            for j, t, first in targets:
                grads[t] = cts[j] if first else grads[t] + cts[j]
        if drop:
            grads[out] = None
        for s in dead:
            vals[s] = None


def _private(g: Any) -> bool:
    """An array that owns its memory and that no one but the caller's local name refers to (the
    gradient list let go of it): writing into it in place cannot change anything anyone sees."""
    return type(g) is np.ndarray and g.base is None and g.flags.writeable and getrefcount(g) == 3
