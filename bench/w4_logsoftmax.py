"""W4: log softmax(W x + b)[y] with W 10x784, forward and backward (gradients of W and b) per
call, float64, the graph built once.

    python bench/w4_logsoftmax.py

The baseline is the same written by hand in numpy: a stable log-softmax, then the gradient
softmax subtracted from the one-hot, an outer product for W. cg runs through
cg.value_and_grad(graph, wrt=[W, b]), whose backward plan differentiates index(log_softmax(z), y)
as one step (Op.fuses: no one-hot, no second VJP). Target (issue 16): 1.5x the baseline.
PyTorch eager and JAX (jax.jit of jax.value_and_grad, float64) are timed when installed. The row
also gives the minor page faults per call of cg and of the baseline. Run alone, the script pins
itself to one core (common.pin_one_core), as bench/all.py does.
"""

from __future__ import annotations

from typing import Any

import common  # noqa: F401  (first: one BLAS thread, before numpy is imported)
import numpy as np
from common import Row, jax_time, load_jax, median_times, minor_faults, no_gc, pin_one_core, show

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


def jax_seconds(values: dict[str, Any], want_out: float) -> float | None:
    """JAX's jitted value_and_grad with respect to W and b, float64."""
    jax = load_jax()
    if jax is None:
        return None
    f = jax.jit(jax.value_and_grad(lambda W, b, x, y: jax.nn.log_softmax(W @ x + b)[y], argnums=(0, 1)))
    args = [values[k] for k in ("W", "b", "x", "y")]
    got, _ = f(*args)
    assert np.isclose(got, want_out), (got, want_out)
    return jax_time(f, *args, rounds=20, number=200)


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
        t_jax = jax_seconds(values, want_out)
        faults = (minor_faults(lambda: f(values), calls=200), minor_faults(lambda: by_hand(**values), calls=200))
    us = 1e6
    return [
        Row("W4 log softmax(Wx + b)[y], W 10x784, fwd+bwd per call: cg.value_and_grad", t_cg * us, t_hand * us,
            "µs", target=1.5, torch=None if t_torch is None else t_torch * us,
            jax=None if t_jax is None else t_jax * us, faults=faults, note="baseline: numpy by hand"),
    ]


if __name__ == "__main__":
    pin_one_core()
    show(rows())
