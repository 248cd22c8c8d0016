"""W2, the scalar DAG: a random graph of N scalar nodes (default 100,000, seeded) mixing the
two-input ops add, sub, mul, div and the one-input ops sin, exp, tanh, forward and backward
per node, the graph built once.

    python bench/w2_dag.py [N]

Each node takes its first argument from the node just before it (so every node reaches the
output and nothing is dead code that cg could skip and the baseline would not) and its second
from the few nodes before that, or now and then an input (the gradient along one long path
vanishes; inputs used again near the output keep d out / d x a number worth checking). The
values stay bounded by construction (`dag`): every node's value has an interval bound, exp
only takes arguments within [-1, 1], div only divides by a node whose bounds show it is at
least 0.3 (an exp node, or a sum, product or quotient of such), and add, sub, mul are only
used where the bound stays under LIMIT; elsewhere sin takes the node. The value and both
gradients are checked finite and equal to the floor's.

The baseline is the Python float floor: the same DAG on Python floats (math module), the
nodes as precomputed (op, a, b) tuples of small integers, the forward loop keeping every
value and the local derivatives of each node, the backward loop multiplying them in reverse
and accumulating the gradients in a list. cg is timed through cg.value_and_grad (the issue's
target: at most 3x the floor) and through cg.run (every value and gradient, NaN checks), the
latter also against value_and_grad (at most 1.5x). PyTorch eager is timed when installed
(one 0-d tensor op per node). JAX is not: its jit compile time of a scalar graph grows about as
N² (bench notes: 32 s at 10,000 nodes; 100,000 does not fit in memory).

This is its own script rather than part of w2_chain.py: the chain script already runs its
memory rows in fresh processes, and the DAG has its own generator and floor. The graph is
built as JSON text in memory (`cg.loads(text, "dag.json")`), which loads about 10x faster
than the same graph in YAML. Run alone, the script pins itself to one core
(common.pin_one_core), as bench/all.py does.
"""

from __future__ import annotations

import json
import math
import random
import sys

import common  # noqa: F401  (first: one BLAS thread, before numpy is imported)
import numpy as np
from common import Row, median_time, median_times, no_gc, pin_one_core, show

import cg

N = 100_000
SEED = 0
INPUTS = {"x": 0.5, "y": -0.3}
WINDOW = 8  # the second argument comes from the WINDOW nodes before the first
LIMIT = 4.0  # the largest |value| add, sub and mul may make, by interval bound
REINJECT = 1 / 32  # the chance that a second argument is an input rather than a recent node
OPS = ("add", "sub", "mul", "div", "sin", "exp", "tanh")
ADD, SUB, MUL, DIV, SIN, EXP, TANH = range(len(OPS))

Node = tuple[int, int, int]  # (op, a, b): indices into the values (x is 0, y 1, node k is k + 2); b -1 for one input


def dag(n: int, seed: int = SEED) -> list[Node]:
    """The random DAG, bounded by construction: `bound[i]` bounds |value i|, `low[i]` is a
    positive lower bound of value i, or 0 when it is not known positive."""
    rng = random.Random(seed)
    bound = [abs(v) for v in INPUTS.values()]
    low = [max(v, 0.0) for v in INPUTS.values()]
    nodes: list[Node] = []
    for k in range(2, n + 2):
        a, b = k - 1, rng.randrange(max(0, k - 1 - WINDOW), k - 1)
        if rng.random() < REINJECT:  # x or y again: the gradients die out over a long path otherwise
            b = rng.randrange(2)
        op = rng.randrange(len(OPS))
        if op == DIV:  # divide only by a node known positive: the latest one in the window
            b = next((i for i in range(k - 2, max(-1, k - 2 - WINDOW), -1) if low[i] > 0.3), -1)
        if not (b >= 0 and _fits(op, bound[a], bound[b], low[b])):
            op = SIN
        if op >= SIN:
            b = -1
        hi, lo = _bounds(op, bound[a], bound[b], low[a], low[b])
        bound.append(hi)
        low.append(lo)
        nodes.append((op, a, b))
    return nodes


def _fits(op: int, ba: float, bb: float, lb: float) -> bool:
    """Whether the op keeps the new node within LIMIT (exp: its argument within [-1, 1])."""
    if op in (ADD, SUB):
        return ba + bb <= LIMIT
    if op == MUL:
        return ba * bb <= LIMIT
    if op == DIV:
        return lb > 0.3 and ba / lb <= LIMIT
    return op != EXP or ba <= 1.0


def _bounds(op: int, ba: float, bb: float, la: float, lb: float) -> tuple[float, float]:
    """The interval bound of a new node's |value| and its positive lower bound (0: unknown)."""
    if op in (ADD, SUB):
        return ba + bb, la + lb if op == ADD and la > 0 and lb > 0 else 0.0  # a sum of positives only
    if op == MUL:
        return ba * bb, la * lb
    if op == DIV:
        return ba / lb, la / bb if la > 0 else 0.0
    if op == EXP:
        return math.exp(ba), math.exp(-ba)
    return 1.0, 0.0  # sin, tanh


def names(n: int) -> list[str]:
    return [*INPUTS, *(f"n{k}" for k in range(n))]


def graph_text(nodes: list[Node]) -> str:
    """The DAG as cg JSON text."""
    label = names(len(nodes))
    body = {label[k + 2]: {"op": OPS[op], "in": [label[a]] + ([label[b]] if b >= 0 else [])}
            for k, (op, a, b) in enumerate(nodes)}
    return json.dumps({"cg": 1, "name": "dag", "inputs": INPUTS, "nodes": body, "outputs": [label[-1]]})


def floor(nodes: list[Node], x: float, y: float) -> tuple[float, float, float]:
    """The DAG on Python floats: forward keeps values and local derivatives (da, db), backward
    accumulates gradients in a list, in reverse."""
    sin, cos, exp, tanh = math.sin, math.cos, math.exp, math.tanh
    v = [x, y]
    da: list[float] = []
    db: list[float] = []
    for op, a, b in nodes:
        p = v[a]
        if op == SIN:
            v.append(sin(p))
            da.append(cos(p))
        elif op == TANH:
            t = tanh(p)
            v.append(t)
            da.append(1.0 - t * t)
        elif op == EXP:
            e = exp(p)
            v.append(e)
            da.append(e)
        else:
            q = v[b]
            if op == ADD:
                v.append(p + q)
                da.append(1.0)
                db.append(1.0)
                continue
            if op == SUB:
                v.append(p - q)
                da.append(1.0)
                db.append(-1.0)
                continue
            if op == MUL:
                v.append(p * q)
                da.append(q)
                db.append(p)
                continue
            r = p / q
            v.append(r)
            da.append(1.0 / q)
            db.append(-r / q)
            continue
        db.append(0.0)  # one-input node: db is never read, the lists stay aligned
    g = [0.0] * len(v)
    g[-1] = 1.0
    for k in range(len(nodes) - 1, -1, -1):
        gk = g[k + 2]
        _, a, b = nodes[k]
        g[a] += gk * da[k]
        if b >= 0:
            g[b] += gk * db[k]
    return v[-1], g[0], g[1]


def torch_time(nodes: list[Node]) -> float | None:
    """PyTorch eager, one 0-d float64 tensor op per node, forward and backward."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    fns = (torch.add, torch.sub, torch.mul, torch.div, torch.sin, torch.exp, torch.tanh)

    def step() -> None:
        v = [torch.tensor(t, dtype=torch.float64, requires_grad=True) for t in INPUTS.values()]
        for op, a, b in nodes:
            v.append(fns[op](v[a], v[b]) if b >= 0 else fns[op](v[a]))
        v[-1].backward()

    return median_time(step, rounds=3, warmup=1)


def mix(nodes: list[Node]) -> str:
    """How many nodes of each op, in percent (the fallback to sin makes it uneven)."""
    counts = [0] * len(OPS)
    for op, _, _ in nodes:
        counts[op] += 1
    return " ".join(f"{OPS[i]} {100 * c / len(nodes):.0f}%" for i, c in enumerate(counts))


def rows(n: int = N) -> list[Row]:
    nodes = dag(n)
    graph = cg.loads(graph_text(nodes), "dag.json")
    f = cg.value_and_grad(graph)
    want = floor(nodes, *INPUTS.values())
    assert all(math.isfinite(w) for w in want), want
    value, grads = f()
    assert np.allclose([float(value), float(grads["x"]), float(grads["y"])], want, rtol=1e-9), "cg and floor disagree"
    result = cg.run(graph)
    assert np.allclose([float(result.grad("x")), float(result.grad("y"))], want[1:], rtol=1e-9)
    with no_gc():
        t_f, t_floor = median_times(f, lambda: floor(nodes, *INPUTS.values()), rounds=7, warmup=1)
        t_run = median_time(lambda: cg.run(graph), rounds=5, warmup=1)
        t_torch = torch_time(nodes)
    us = 1e6 / n
    torch_us = None if t_torch is None else t_torch * us
    label = f"W2 random scalar DAG of {n:,} nodes, fwd+bwd per node"
    return [
        Row(f"{label}: cg.value_and_grad", t_f * us, t_floor * us, "µs/node", target=3, torch=torch_us,
            note=f"baseline: the Python float floor (tuples, derivatives in lists); ops: {mix(nodes)}"),
        Row(f"{label}: cg.run (every value and gradient, NaN checks)", t_run * us, t_floor * us, "µs/node",
            torch=torch_us),
        Row(f"W2 random scalar DAG of {n:,} nodes: cg.run / cg.value_and_grad", t_run * us, t_f * us, "µs/node",
            target=1.5, note="here the baseline column is cg.value_and_grad"),
    ]


if __name__ == "__main__":
    pin_one_core()
    show(rows(int(sys.argv[1]) if len(sys.argv) > 1 else N))
