"""A chain of N scalar sin nodes: load, validate and run it, and compare the forward and
backward passes with the same chain written by hand in numpy, in the same process.

    python bench/chain.py [N]        (default N = 100000)

Prints seconds per stage and the ratios cg / hand-written. No test asserts a time.
"""

from __future__ import annotations

import gc
import sys
import time

import numpy as np

from cg.graph import build
from cg.interp import backward, bind_inputs, forward, run
from cg.yamldoc import load_text


def chain_text(n: int) -> str:
    lines = ["cg: 1", "inputs: {x: 0.5}", "nodes:", "  n0: {op: sin, in: [x]}"]
    lines += [f"  n{i}: {{op: sin, in: [n{i - 1}]}}" for i in range(1, n)]
    lines.append(f"outputs: [n{n - 1}]")
    return "\n".join(lines) + "\n"


def timed(fn, *args):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def by_hand(n: int) -> tuple[float, float, float]:
    """The same chain on 0-d numpy arrays: forward keeps every value, backward multiplies
    the local derivatives in reverse."""
    start = time.perf_counter()
    xs = [np.asarray(0.5)]
    for _ in range(n):
        xs.append(np.sin(xs[-1]))
    mid = time.perf_counter()
    g = np.asarray(1.0)
    for x in reversed(xs[:-1]):
        g = g * np.cos(x)
    end = time.perf_counter()
    return float(g), mid - start, end - mid


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    text = chain_text(n)
    print(f"chain of {n:,} sin nodes, {len(text) / 1e6:.1f} MB of YAML")
    doc, t_load = timed(load_text, text, "chain.yaml")
    graph, t_build = timed(build, doc)
    values = bind_inputs(graph, {})
    gc.collect()
    env, t_fwd = timed(forward, graph, values)
    grads, t_bwd = timed(backward, graph, env, f"n{n - 1}", np.asarray(1.0))
    _, t_run = timed(run, graph)
    want, h_fwd, h_bwd = by_hand(n)
    assert np.isclose(float(grads["x"]), want), "cg and the hand-written chain disagree"
    us = 1e6 / n
    print(f"  parse YAML            {t_load:8.2f} s")
    print(f"  validate (schema+graph){t_build:7.2f} s")
    print(f"  forward               {t_fwd * us:8.2f} us/node   hand-written {h_fwd * us:.2f} us/node"
          f"   ratio {t_fwd / h_fwd:.2f}")
    print(f"  backward              {t_bwd * us:8.2f} us/node   hand-written {h_bwd * us:.2f} us/node"
          f"   ratio {t_bwd / h_bwd:.2f}   backward/forward {t_bwd / t_fwd:.2f}")
    print(f"  run (fwd+bwd+checks)  {t_run * us:8.2f} us/node")


if __name__ == "__main__":
    main()
