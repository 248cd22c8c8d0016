"""W2: a chain of N scalar sin nodes (default 100,000), forward and backward per node, the graph
built once; and the peak memory of loading and running it in a fresh process.

    python bench/w2_chain.py [N]

The baseline is the same chain written by hand on Python floats (math.sin, math.cos): every
value kept, then the gradient multiplied back. cg is timed through cg.value_and_grad and
through cg.run (every value and gradient as arrays, NaN checks, the Result), and cg.run
against cg.value_and_grad (at most 1.5x: what the Result and the checks may cost). The backward
pass alone is compared with the forward pass alone (the plan's two loops, cg/eval/plan.py).
PyTorch eager is timed when installed; `cg compile` when cg/compile/ exists. Run alone, the
script pins itself to one core (common.pin_one_core), as bench/all.py does.
"""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
from pathlib import Path

import common  # noqa: F401  (first: one BLAS thread, before numpy is imported)
import numpy as np
from common import Row, median_time, median_times, no_gc, pin_one_core, show

import cg
from cg.graph.ir import Graph

N = 100_000
X0 = 0.5


def chain_text(n: int) -> str:
    lines = ["cg: 1", f"inputs: {{x: {X0}}}", "nodes:", "  n0: {op: sin, in: [x]}"]
    lines += [f"  n{i}: {{op: sin, in: [n{i - 1}]}}" for i in range(1, n)]
    lines.append(f"outputs: [n{n - 1}]")
    return "\n".join(lines) + "\n"


def by_hand(n: int) -> tuple[float, float]:
    """The chain on Python floats: forward keeps every value, backward multiplies the local
    derivatives in reverse."""
    xs = [X0]
    for _ in range(n):
        xs.append(math.sin(xs[-1]))
    g = 1.0
    for k in range(n - 1, -1, -1):
        g *= math.cos(xs[k])
    return xs[-1], g


def by_hand_numpy(n: int) -> float:
    """The same with one numpy ufunc call per node on numpy scalars (a note, not the baseline)."""
    xs = [np.float64(X0)]
    for _ in range(n):
        xs.append(np.sin(xs[-1]))
    g = np.float64(1.0)
    for k in range(n - 1, -1, -1):
        g = g * np.cos(xs[k])
    return float(g)


def torch_time(n: int) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)

    def step() -> None:
        x = torch.tensor(X0, dtype=torch.float64, requires_grad=True)
        v = x
        for _ in range(n):
            v = torch.sin(v)
        v.backward()

    return median_time(step, rounds=3, warmup=1)


# The peak resident set of this process since it started (VmHWM; ru_maxrss would also count
# the parent's memory at the fork that started it).
PEAK = "int(next(ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')).split()[1]) / 1024"
MEMORY = """
import sys
import cg
graph = cg.load(sys.argv[1])
loaded = int(next(ln for ln in open('/proc/self/status') if ln.startswith('VmRSS')).split()[1]) / 1024
result = cg.run(graph)
assert result.grad("x") is not None
print(PEAK, PEAK - loaded)
"""

MEMORY_BY_HAND = """
import math, sys
import numpy
n = int(sys.argv[1])
xs = [0.5]
for _ in range(n):
    xs.append(math.sin(xs[-1]))
gs = [1.0]
for k in range(n - 1, -1, -1):
    gs.append(gs[-1] * math.cos(xs[k]))
print(PEAK)
"""


def _python(code: str, *args: str) -> list[float]:
    """Run code in a fresh interpreter; it prints numbers."""
    out = subprocess.run([sys.executable, "-c", code.replace("PEAK", PEAK), *args], capture_output=True, text=True,
                         check=True)
    return [float(v) for v in out.stdout.split()]


def memory_row(n: int, text: str) -> Row:
    """Peak resident memory of a fresh process that loads the file and runs it (cg.load +
    cg.run), against one that runs the chain by hand keeping every value and gradient."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chain.yaml"
        path.write_text(text)
        peak, run_more = _python(MEMORY, str(path))
    (hand,) = _python(MEMORY_BY_HAND, str(n))
    return Row(f"W2 peak memory: load + run the {n:,}-node chain, fresh process", peak, hand, "MB", limit=300,
               note=f"peak RSS; cg.run adds {run_more:.0f} MB to the loaded graph's; "
               "baseline: Python floats, numpy imported")


def rows(n: int = N) -> list[Row]:
    text = chain_text(n)
    graph = cg.loads(text, "chain.yaml")
    f = cg.value_and_grad(graph)
    value, grads = f()
    want_value, want_grad = by_hand(n)
    assert np.isclose(float(value), want_value) and np.isclose(float(grads["x"]), want_grad), "cg and by hand disagree"
    assert np.isclose(by_hand_numpy(n), want_grad)
    result = cg.run(graph)
    assert np.isclose(float(result.grad("x")), want_grad)
    plan, steps = f.plan, f.steps
    free = [np.float64(X0)]
    vals = plan.forward(free)
    seed = np.float64(1.0)
    with no_gc():
        t_f, t_hand = median_times(f, lambda: by_hand(n), rounds=9, warmup=1)
        t_run = median_time(lambda: cg.run(graph), rounds=5, warmup=1)
        t_numpy = median_time(lambda: by_hand_numpy(n), rounds=5, warmup=1)
        t_fwd, t_bwd = median_times(lambda: plan.forward(free), lambda: plan.backward(steps, vals, seed),
                                    rounds=9, warmup=1)
        t_torch = torch_time(n)
    us = 1e6 / n
    torch_us = None if t_torch is None else t_torch * us
    label = f"W2 chain of {n:,} sin, fwd+bwd per node"
    return [
        Row(f"{label}: cg.value_and_grad", t_f * us, t_hand * us, "µs/node", limit=3, torch=torch_us,
            note=f"baseline: Python floats; numpy on numpy scalars {t_numpy * us:.2f} µs/node"),
        Row(f"{label}: cg.run (every value and gradient, NaN checks)", t_run * us, t_hand * us, "µs/node", limit=3,
            torch=torch_us),
        Row(f"W2 chain of {n:,} sin: cg.run / cg.value_and_grad", t_run * us, t_f * us, "µs/node", target=1.5,
            note="here the baseline column is cg.value_and_grad"),
        Row(f"W2 backward pass / forward pass of cg, {n:,} nodes", t_bwd * us, t_fwd * us, "µs/node", target=2,
            note="here the baseline column is cg's own forward pass"),
        *compiled_rows(graph, n, t_hand * us),
        memory_row(n, text),
    ]


def compiled_rows(graph: Graph, n: int, hand_us: float) -> list[Row]:
    """`cg compile` on the same chain, when cg/compile/ exists (target ≤ 2x by hand)."""
    try:
        from cg.compile import compile_module

        m = compile_module(graph, wrt=["x"])
    except Exception as e:  # not there yet, or it cannot write this graph: no row, and say why
        print(f"bench: no cg compile row for W2 ({type(e).__name__}: {e})", file=sys.stderr)
        return []
    _, want = by_hand(n)
    assert np.isclose(float(m.backward(m.forward(x=X0)).x), want), "cg compile and by hand disagree"
    with no_gc():
        t_c, t_hand = median_times(lambda: m.backward(m.forward(x=X0)), lambda: by_hand(n), rounds=9, warmup=1)
    us = 1e6 / n
    return [Row(f"W2 chain of {n:,} sin, fwd+bwd per node: cg compile (generated Python)", t_c * us, t_hand * us,
                "µs/node", target=2, note="baseline: Python floats")]


if __name__ == "__main__":
    pin_one_core()
    show(rows(int(sys.argv[1]) if len(sys.argv) > 1 else N))
