"""W3: an MLP 784-1024-10 on a batch of 256 with softmax cross-entropy, forward and backward
(gradients of W1, b1, W2, b2), in float32 and in float64, on one BLAS thread.

    python bench/w3_mlp.py

The baseline is an honest hand-written numpy step: five matmuls (two forward, three
backward; no gradient for the data X), a stable log-softmax, the one-hot subtraction done
by indexing, in-place updates where numpy allows them, the same dtype throughout. Its five
matmuls alone are timed too, as the floor. cg runs the graph below through
cg.value_and_grad(graph, wrt=[W1, b1, W2, b2], dtype=...). PyTorch eager and JAX (jax.jit of
jax.value_and_grad, in the row's dtype) are timed when installed; `cg compile` when cg/compile/
exists. The rows also give the minor page faults per call of cg and of the baseline (a freed
big block that glibc returns to the kernel is faulted in again, zeroed, on the next call). Run
alone, the script pins itself to one core (common.pin_one_core), as bench/all.py does.
"""

from __future__ import annotations

import sys
from typing import Any

import common
import numpy as np
from common import Row, jax_time, load_jax, median_times, minor_faults, no_gc, pin_one_core, show

import cg
from cg.graph.ir import Graph

B, D, H, K = 256, 784, 1024, 10
PARAMS = ("W1", "b1", "W2", "b2")
GRAPH = f"""
cg: 1
name: mlp
doc: mean softmax cross-entropy of relu(X W1 + b1) W2 + b2 against the labels y
inputs:
  X: {{shape: [{B}, {D}]}}
  y: {{shape: [{B}], dtype: int}}
  W1: {{shape: [{D}, {H}]}}
  b1: {{shape: [{H}]}}
  W2: {{shape: [{H}, {K}]}}
  b2: {{shape: [{K}]}}
nodes:
  h: {{op: matmul, in: [X, W1]}}
  a: {{op: add, in: [h, b1]}}
  r: {{op: relu, in: [a]}}
  o: {{op: matmul, in: [r, W2]}}
  z: {{op: add, in: [o, b2]}}
  lp: {{op: log_softmax, in: [z]}}
  p: {{op: index, in: [lp, y]}}
  m: {{op: mean, in: [p]}}
  loss: {{op: neg, in: [m]}}
outputs: [loss]
"""


def data(dtype: type) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "X": rng.random((B, D)).astype(dtype),
        "y": rng.integers(0, K, B),
        "W1": (rng.normal(size=(D, H)) / np.sqrt(D)).astype(dtype),
        "b1": (0.01 * rng.normal(size=H)).astype(dtype),
        "W2": (rng.normal(size=(H, K)) / np.sqrt(H)).astype(dtype),
        "b2": (0.01 * rng.normal(size=K)).astype(dtype),
    }


def by_hand(X: np.ndarray, y: np.ndarray, W1: np.ndarray, b1: np.ndarray, W2: np.ndarray,
            b2: np.ndarray) -> tuple[Any, dict[str, np.ndarray]]:
    rows = np.arange(len(y))
    a = X @ W1
    a += b1
    r = np.maximum(a, 0)
    z = r @ W2
    z += b2
    z -= z.max(axis=1, keepdims=True)  # stable: log_softmax is unchanged by a shift
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    loss = -(z[rows, y] - np.log(s[:, 0])).mean()
    dz = e / s  # softmax - onehot, over the batch size
    dz[rows, y] -= 1
    dz /= len(y)
    dW2 = r.T @ dz
    dr = dz @ W2.T
    dr *= a > 0
    dW1 = X.T @ dr
    return loss, {"W1": dW1, "b1": dr.sum(axis=0), "W2": dW2, "b2": dz.sum(axis=0)}


def matmuls_only(X: np.ndarray, W1: np.ndarray, W2: np.ndarray, r: np.ndarray, dz: np.ndarray) -> None:
    """The baseline's five matmuls on arrays of the same shapes: the floor of any step."""
    _ = X @ W1, r @ W2, r.T @ dz, dz @ W2.T, X.T @ r


def torch_time(values: dict[str, np.ndarray]) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    t = {k: torch.from_numpy(v) for k, v in values.items()}
    params = [t[k].clone().requires_grad_() for k in PARAMS]

    def step() -> None:
        for p in params:
            p.grad = None
        W1, b1, W2, b2 = params
        logits = torch.relu(t["X"] @ W1 + b1) @ W2 + b2
        torch.nn.functional.cross_entropy(logits, t["y"]).backward()

    return median_times(step, rounds=20)[0]


def jax_seconds(values: dict[str, np.ndarray], want_loss: float, tol: float) -> float | None:
    """JAX's jitted value_and_grad of the loss with respect to the four parameters."""
    jax = load_jax()
    if jax is None:
        return None
    jnp = jax.numpy

    def loss(X: Any, y: Any, W1: Any, b1: Any, W2: Any, b2: Any) -> Any:
        z = jnp.maximum(X @ W1 + b1, 0) @ W2 + b2
        return -jnp.take_along_axis(jax.nn.log_softmax(z), y[:, None], axis=1).mean()

    f = jax.jit(jax.value_and_grad(loss, argnums=(2, 3, 4, 5)))
    args = [values[k] for k in ("X", "y", *PARAMS)]
    got, _ = f(*args)
    assert got.dtype == values["W1"].dtype and np.isclose(got, want_loss, rtol=tol), (got, want_loss)
    return jax_time(f, *args, rounds=20)


def rows_for(dtype: type, graph: Graph) -> list[Row]:
    values = data(dtype)
    name = np.dtype(dtype).name
    f = cg.value_and_grad(graph, wrt=PARAMS, dtype=name)
    loss, grads = f(values)
    want_loss, want = by_hand(**values)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    assert np.allclose(loss, want_loss, rtol=tol), (loss, want_loss)
    for k in PARAMS:
        assert grads[k].dtype == dtype, (k, grads[k].dtype)
        assert np.allclose(grads[k], want[k], rtol=tol, atol=tol * np.abs(want[k]).max()), k
    r = np.maximum(values["X"] @ values["W1"], 0)
    dz = np.ones((B, K), dtype)
    with no_gc():
        t_cg, t_hand, t_mm = median_times(
            lambda: f(values), lambda: by_hand(**values),
            lambda: matmuls_only(values["X"], values["W1"], values["W2"], r, dz), rounds=30,
        )
        t_torch = torch_time(values)
        t_jax = jax_seconds(values, want_loss, tol)
        faults = (minor_faults(lambda: f(values), calls=20), minor_faults(lambda: by_hand(**values), calls=20))
    ms = 1e3
    label = f"W3 MLP 784-1024-10, batch 256, fwd+bwd, {name}"
    return [
        Row(f"{label}: cg.value_and_grad", t_cg * ms, t_hand * ms, "ms",
            target=1.10, torch=None if t_torch is None else t_torch * ms,
            jax=None if t_jax is None else t_jax * ms, faults=faults,
            note=f"baseline: numpy by hand, 1 thread; its 5 matmuls alone: {t_mm / t_hand:.2f}{common.TIMES} of it"),
        *compiled_rows(graph, values, want, tol, label),
    ]


def compiled_rows(graph: Graph, values: dict[str, np.ndarray], want: dict[str, np.ndarray], tol: float,
                  label: str) -> list[Row]:
    """`cg compile` on the same graph, when cg/compile/ exists (target ≤ 1.02x numpy)."""
    try:
        from cg.compile import compile_module

        m = compile_module(graph, wrt=PARAMS, dtype=values["W1"].dtype.name)
    except Exception as e:  # not there yet, or it cannot write this graph: no row, and say why
        print(f"bench: no cg compile row for W3 ({type(e).__name__}: {e})", file=sys.stderr)
        return []
    grads = m.value_and_grad(**values)[1]  # forward and backward in one, each array freed after its last use
    for k in PARAMS:
        got = getattr(grads, k)
        assert np.allclose(got, want[k], rtol=tol, atol=tol * np.abs(want[k]).max()), k
        if got.dtype != want[k].dtype:  # not the same computation as the baseline's: no row
            print(f"bench: no cg compile row for W3: gradient {k} is {got.dtype}, not {want[k].dtype}", file=sys.stderr)
            return []
    with no_gc():
        t_c, t_hand = median_times(lambda: m.value_and_grad(**values), lambda: by_hand(**values), rounds=30)
    return [Row(f"{label}: cg compile (generated numpy)", t_c * 1e3, t_hand * 1e3, "ms", target=1.02,
                note="baseline: numpy by hand, 1 thread")]


def rows() -> list[Row]:
    graph = cg.loads(GRAPH, "mlp.yaml")
    return [*rows_for(np.float32, graph), *rows_for(np.float64, graph)]


if __name__ == "__main__":
    pin_one_core()
    show(rows())
