"""Reverse mode against forward mode for the full gradient of a scalar function of n inputs.

    python bench/modes.py [N ...]        (default N = 10 100 1000)

The graph is f = sum_i sin(x_i) * x_{i+1} over n scalar inputs (2n - 1 nodes). Reverse mode
gets all n partial derivatives from one backward pass; forward mode needs one JVP pass per
input, n in all (lecture notes 001: why forward mode loses with many inputs). Both reuse one
forward pass and run in this process; each time is the median of several rounds. The numpy
column computes the same f on a vector, as a floor for what one pass could cost.
Prints a table; no test asserts a time.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import cg
from cg.eval.interp import backward, bind_inputs, forward, jvp
from cg.gcpause import paused_gc
from cg.graph.ir import Graph


def graph_text(n: int) -> str:
    """f = sum over i < n-1 of sin(x_i) * x_{i+1}; x_i = 0.5 + i / n, so no two inputs match."""
    lines = ["cg: 1", "inputs:"]
    lines += [f"  x{i}: {0.5 + i / n!r}" for i in range(n)]
    lines.append("nodes:")
    for i in range(n - 1):
        lines.append(f"  s{i}: {{op: sin, in: [x{i}]}}")
        lines.append(f"  p{i}: {{op: mul, in: [s{i}, x{i + 1}]}}")
    terms = ", ".join(f"p{i}" for i in range(n - 1))
    lines += [f"  f: {{op: add, in: [{terms}]}}", "outputs: [f]"]
    return "\n".join(lines) + "\n"


def median_ms(fn: Callable[[], Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def reverse_gradient(graph: Graph, env: dict[str, Any], names: list[str]) -> np.ndarray:
    """One backward pass: every d f / d x_i at once."""
    grads = backward(graph, env, "f", np.asarray(1.0))
    return np.array([float(grads[x]) for x in names])


def forward_gradient(graph: Graph, env: dict[str, Any], names: list[str]) -> np.ndarray:
    """One JVP pass per input, each with tangent 1 on that input: d f / d x_i is f's tangent."""
    return np.array([float(jvp(graph, env, {x: np.asarray(1.0)})["f"]) for x in names])


def numpy_forward(x: np.ndarray) -> float:
    return float(np.sum(np.sin(x[:-1]) * x[1:]))


def measure(n: int) -> tuple[int, float, float, float, float]:
    """(nodes, numpy forward, cg forward, reverse mode, forward mode), in ms."""
    graph = cg.loads(graph_text(n), f"modes{n}.yaml")
    names = [i.name for i in graph.inputs]
    values = bind_inputs(graph, {})
    x = np.array([float(values[name]) for name in names])
    rounds = 9 if n <= 100 else 5  # forward mode at n = 1000 takes about a second a round
    with paused_gc():
        env = forward(graph, values)
        rev, fwd = reverse_gradient(graph, env, names), forward_gradient(graph, env, names)
        known = np.append(0.0, np.sin(x[:-1])) + np.append(np.cos(x[:-1]) * x[1:], 0.0)
        assert np.allclose(rev, fwd) and np.allclose(rev, known), "reverse and forward mode disagree"
        t_np = median_ms(lambda: numpy_forward(x), 51)
        t_fwd_pass = median_ms(lambda: forward(graph, values), rounds)
        t_rev = median_ms(lambda: reverse_gradient(graph, env, names), rounds)
        t_fwd = median_ms(lambda: forward_gradient(graph, env, names), rounds)
    return len(graph.nodes), t_np, t_fwd_pass, t_rev, t_fwd


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [10, 100, 1000]
    print("full gradient of f = sum sin(x_i) * x_(i+1): n scalar inputs, one scalar output")
    print("times in ms, median of several rounds, in one process\n")
    head = ("n", "nodes", "numpy fwd", "cg fwd", "reverse (1 pass)", "forward (n passes)", "per JVP pass",
            "forward/reverse")
    rows = [head]
    for n in sizes:
        nodes, t_np, t_pass, t_rev, t_fwd = measure(n)
        rows.append((f"{n:,}", f"{nodes:,}", f"{t_np:.4f}", f"{t_pass:.3f}", f"{t_rev:.3f}", f"{t_fwd:.3f}",
                     f"{t_fwd / n:.4f}", f"{t_fwd / t_rev:.1f}"))
    widths = [max(len(r[c]) for r in rows) for c in range(len(head))]
    for r in rows:
        print("  ".join(cell.rjust(w) for cell, w in zip(r, widths)))
    print(NOTES)


NOTES = """
reverse: one backward pass gives all n derivatives, so its time grows like the graph (n).
forward: one JVP pass per input; each pass walks the whole graph (2n nodes), so the total
grows like n^2 and forward/reverse grows like n. Here a JVP pass costs less than a backward
pass, since only the 4 nodes below x_i get a tangent; the 1 : n count of passes still wins.
numpy fwd: the same f on one float64 vector; cg fwd: cg's forward pass, one node at a time."""


if __name__ == "__main__":
    main()
