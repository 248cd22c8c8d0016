"""W4: log softmax(W x + b)[y] with W 10x784, forward and backward (gradients of W and b) per
call, float64, the graph built once.

    python bench/w4_logsoftmax.py

The baseline is the same written by hand in numpy: a stable log-softmax, then the gradient
softmax subtracted from the one-hot, an outer product for W. cg runs through
cg.value_and_grad(graph, wrt=[W, b]). PyTorch eager is timed when installed.
"""

from __future__ import annotations

from typing import Any

import common  # noqa: F401  (first: one BLAS thread, before numpy is imported)
import numpy as np
from common import Row, median_times, no_gc, show

import cg

K, D = 10, 784
GRAPH = f"""
cg: 1
name: logsoftmax
doc: the log-probability of class y under softmax(W x + b)
inputs:
  W: {{shape: [{K}, {D}]}}
  x: {{shape: [{D}]}}
  b: {{shape: [{K}]}}
  y: {{dtype: int}}
nodes:
  Wx: {{op: matmul, in: [W, x]}}
  z: {{op: add, in: [Wx, b]}}
  lp: {{op: log_softmax, in: [z]}}
  out: {{op: index, in: [lp, y]}}
outputs: [out]
"""


def data() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {"W": rng.normal(size=(K, D)) / np.sqrt(D), "x": rng.random(D), "b": 0.01 * rng.normal(size=K),
            "y": np.array(3)}


def by_hand(W: np.ndarray, x: np.ndarray, b: np.ndarray, y: np.ndarray) -> tuple[Any, dict[str, np.ndarray]]:
    z = W @ x + b
    z -= z.max()
    e = np.exp(z)
    s = e.sum()
    out = z[y] - np.log(s)
    dz = e / -s  # one-hot minus softmax
    dz[y] += 1.0
    return out, {"W": np.outer(dz, x), "b": dz}


def torch_time(values: dict[str, Any]) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    W = torch.from_numpy(values["W"]).requires_grad_()
    b = torch.from_numpy(values["b"]).requires_grad_()
    x, y = torch.from_numpy(values["x"]), int(values["y"])

    def step() -> None:
        W.grad = b.grad = None
        torch.log_softmax(W @ x + b, dim=0)[y].backward()

    return median_times(step, rounds=20, number=200)[0]


def rows() -> list[Row]:
    graph = cg.loads(GRAPH, "logsoftmax.yaml")
    values = data()
    f = cg.value_and_grad(graph, wrt=["W", "b"])
    out, grads = f(values)
    want_out, want = by_hand(**values)
    assert np.isclose(out, want_out) and all(np.allclose(grads[k], want[k]) for k in want)
    with no_gc():
        t_cg, t_hand = median_times(lambda: f(values), lambda: by_hand(**values), rounds=25, number=500)
        t_torch = torch_time(values)
    us = 1e6
    return [
        Row("W4 log softmax(Wx + b)[y], W 10x784, fwd+bwd per call: cg.value_and_grad", t_cg * us, t_hand * us,
            "µs", target=2, torch=None if t_torch is None else t_torch * us, note="baseline: numpy by hand"),
    ]


if __name__ == "__main__":
    show(rows())
