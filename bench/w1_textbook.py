"""W1: z = log(3x² + 5xy) at x = 2, y = 3 (graphs/log3x2p5xy.yaml), forward and backward
per call, the graph built once.

    python bench/w1_textbook.py

cg is called through the Python API: cg.value_and_grad (the lean entry point) and cg.run
(every value and gradient, NaN checks, a Result). The baseline is the same forward and
backward pass written by hand on Python floats. PyTorch eager and JAX (jax.jit of
jax.value_and_grad, float64, compiled before timing) are timed when installed. Run alone, the
script pins itself to one core (common.pin_one_core), as bench/all.py does.
"""

from __future__ import annotations

import math
from pathlib import Path

import common  # noqa: F401  (first: one BLAS thread, before numpy is imported)
import numpy as np
from common import Row, jax_time, load_jax, median_times, no_gc, pin_one_core, show

import cg

GRAPH = Path(__file__).resolve().parent.parent / "graphs" / "log3x2p5xy.yaml"
INPUTS = {"x": 2.0, "y": 3.0}


def by_hand(x: float, y: float) -> tuple[float, float, float]:
    """z and its backward pass, node by node as in the graph."""
    a = x * x
    b = 3.0 * a
    c = x * y
    d = 5.0 * c
    e = b + d
    z = math.log(e)
    ge = 1.0 / e  # d z / d e; then b and d get ge, a gets 3 ge, c gets 5 ge
    ga, gc = 3.0 * ge, 5.0 * ge
    return z, 2.0 * x * ga + y * gc, x * gc


def torch_time() -> float | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)

    def step() -> None:
        x = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
        y = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
        torch.log(3 * x**2 + 5 * x * y).backward()

    return median_times(step, rounds=15, number=500)[0]


def jax_us() -> float | None:
    """JAX's jitted value_and_grad of z at (2, 3), float64, in µs per call."""
    jax = load_jax()
    if jax is None:
        return None
    jnp = jax.numpy
    f = jax.jit(jax.value_and_grad(lambda x, y: jnp.log(3 * x**2 + 5 * x * y), argnums=(0, 1)))
    x, y = jnp.float64(INPUTS["x"]), jnp.float64(INPUTS["y"])
    z, (gx, gy) = f(x, y)
    assert np.allclose([z, gx, gy], by_hand(**INPUTS), rtol=1e-12)
    return jax_time(f, x, y, rounds=15, number=500) * 1e6


def rows() -> list[Row]:
    graph = cg.load(GRAPH)
    f = cg.value_and_grad(graph)  # of: z, wrt: x and y
    z, grads = f(INPUTS)
    result = cg.run(graph, INPUTS)
    want = by_hand(**INPUTS)
    got = (float(z), float(grads["x"]), float(grads["y"]))
    assert np.allclose(got, want, rtol=1e-12), (got, want)
    assert np.allclose([float(result.value("z")), float(result.grad("x"))], want[:2], rtol=1e-12)
    with no_gc():
        t_f, t_run, t_hand = median_times(
            lambda: f(INPUTS), lambda: cg.run(graph, INPUTS), lambda: by_hand(2.0, 3.0), rounds=25, number=2000
        )
        t_torch = torch_time()
        jax = jax_us()
    us = 1e6
    torch_us = None if t_torch is None else t_torch * us
    return [
        Row("W1 z = log(3x²+5xy), fwd+bwd per call: cg.value_and_grad", t_f * us, t_hand * us, "µs", limit=15,
            note="baseline: the backward pass by hand on Python floats", torch=torch_us, jax=jax),
        Row("W1 the same through cg.run (every value and gradient, NaN checks)", t_run * us, t_hand * us, "µs",
            torch=torch_us, jax=jax),
    ]


if __name__ == "__main__":
    pin_one_core()
    show(rows())
