"""The Jacobian of y = tanh(W x), W 100x100, with respect to x: a 100x100 matrix, through the API
(cg.eval.jacobian.jacobian, reverse mode: one batched backward pass, cg/eval/jacbatch.py).

    python bench/jacobian.py

The baseline is the matrix written by hand in numpy, diag(1 - y²) W; torch.func.jacrev is timed
when PyTorch is installed (the issue's target: cg at least as fast). The note gives the pass-per-row
path that the batched one replaced.
"""

from __future__ import annotations

from typing import Any

import common  # noqa: F401  (first: one BLAS thread, before numpy is imported)
import numpy as np
from common import Row, median_times, no_gc, show

import cg
from cg.eval.interp import bind_inputs, forward
from cg.eval.jacobian import _by_rows, jacobian

N = 100
GRAPH = f"""
cg: 1
inputs:
  W: {{shape: [{N}, {N}]}}
  x: {{shape: [{N}]}}
nodes:
  z: {{op: matmul, in: [W, x]}}
  y: {{op: tanh, in: [z]}}
outputs: [y]
"""


def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"W": rng.normal(size=(N, N)) / np.sqrt(N), "x": rng.normal(size=N)}


def by_hand(W: np.ndarray, x: np.ndarray) -> np.ndarray:
    y = np.tanh(W @ x)
    return (1 - y * y)[:, None] * W


def torch_time(values: dict[str, Any]) -> float | None:
    try:
        import torch
        from torch.func import jacrev
    except ImportError:
        return None
    torch.set_num_threads(1)
    W, x = torch.from_numpy(values["W"]), torch.from_numpy(values["x"])
    f = jacrev(lambda x: torch.tanh(W @ x))
    return median_times(lambda: f(x), rounds=20, number=50)[0]


def rows() -> list[Row]:
    graph = cg.loads(GRAPH, "jacobian.yaml")
    values = data()
    found = jacobian(graph, values, wrt="x", mode="reverse").matrix
    assert np.allclose(found, by_hand(**values))
    env = forward(graph, bind_inputs(graph, values))
    with no_gc():
        t_cg, t_hand = median_times(lambda: jacobian(graph, values, wrt="x", mode="reverse"),
                                    lambda: by_hand(**values), rounds=20, number=20)
        t_rows = median_times(lambda: _by_rows(graph, env, "y", "x", N, N, True), rounds=5, number=3)[0]
        t_torch = torch_time(values)
    ms = 1e3
    return [Row(f"Jacobian of tanh(W x), W {N}x{N}, d y / d x through the API: one batched backward pass",
                t_cg * ms, t_hand * ms, "ms", torch=None if t_torch is None else t_torch * ms,
                note=f"baseline: numpy by hand; a backward pass per row: {t_rows * ms:.2f} ms")]


if __name__ == "__main__":
    show(rows())
