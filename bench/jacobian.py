"""Jacobians with respect to x through the API (cg.eval.jacobian.jacobian; batched passes,
cg/eval/jacbatch.py), each a 100x100 matrix:

1. y = tanh(W x), W 100x100, reverse mode (one batched backward pass). The baseline is the
   matrix written by hand in numpy, diag(1 - y²) W; torch.func.jacrev is timed when PyTorch is
   installed (the issue's target: cg at least as fast). The note gives the pass-per-row path
   that the batched one replaced.
2. y = tanh(W2 tanh(W1 x + b1) + b2), W1 and W2 100x100, in reverse mode and in forward mode.
   The baseline is numpy by hand, diag(1 - y²) W2 diag(1 - h²) W1; torch.func.jacrev and
   jacfwd are timed when PyTorch is installed.
3. The same reverse-mode call on that graph with W1, b1, W2, b2 as inputs against the same
   graph with them written in as constants (JSON text): a backward pass seeded for d y / d x
   need not compute the parameters' gradients, and where it does the ratio shows what the
   unrequested dW1, dW2 cost (about 1.0 once reverse mode skips them). Once for the API call
   (the batched pass) and once for the pass-per-row path it falls back to (NaN or Inf in
   the inputs, or a graph the batch transform refuses).

JAX's jacrev and jacfwd (jax.jit, float64, compiled before timing) are timed when installed.
Run alone, the script pins itself to one core (common.pin_one_core), as bench/all.py does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import common  # noqa: F401  (first: one BLAS thread, before numpy is imported)
import numpy as np
from common import Row, jax_time, load_jax, median_times, no_gc, pin_one_core, show

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


def jax_jacobian_ms(f: Callable[..., Any], want: np.ndarray, x: np.ndarray, forward: bool = False) -> float | None:
    """JAX's jitted jacrev (or jacfwd) of f(jnp, x), float64, in ms per call."""
    jax = load_jax()
    if jax is None:
        return None
    jnp = jax.numpy
    jac = jax.jit((jax.jacfwd if forward else jax.jacrev)(lambda x: f(jnp, x)))
    assert np.allclose(jac(x), want)
    return jax_time(jac, x, rounds=20, number=20) * 1e3


def single_rows() -> list[Row]:
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
        W = values["W"]
        jax_ms = jax_jacobian_ms(lambda jnp, x: jnp.tanh(W @ x), by_hand(**values), values["x"])
    ms = 1e3
    return [Row(f"Jacobian of tanh(W x), W {N}x{N}, d y / d x through the API: one batched backward pass",
                t_cg * ms, t_hand * ms, "ms", torch=None if t_torch is None else t_torch * ms, jax=jax_ms,
                note=f"baseline: numpy by hand; a backward pass per row: {t_rows * ms:.2f} ms")]


# ---- the two-layer workload -----------------------------------------------------------

PARAMS = ("W1", "b1", "W2", "b2")
MLP = f"""
cg: 1
inputs:
  W1: {{shape: [{N}, {N}]}}
  b1: {{shape: [{N}]}}
  W2: {{shape: [{N}, {N}]}}
  b2: {{shape: [{N}]}}
  x: {{shape: [{N}]}}
nodes:
  z1: {{op: matmul, in: [W1, x]}}
  a1: {{op: add, in: [z1, b1]}}
  h: {{op: tanh, in: [a1]}}
  z2: {{op: matmul, in: [W2, h]}}
  a2: {{op: add, in: [z2, b2]}}
  y: {{op: tanh, in: [a2]}}
outputs: [y]
"""


def mlp_data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {"W1": rng.normal(size=(N, N)) / np.sqrt(N), "b1": 0.1 * rng.normal(size=N),
            "W2": rng.normal(size=(N, N)) / np.sqrt(N), "b2": 0.1 * rng.normal(size=N), "x": rng.normal(size=N)}


def mlp_constants_text(values: dict[str, np.ndarray]) -> str:
    """The same graph with the parameters written in as constant lists (JSON: repr of floats
    round-trips, and 20,000 numbers parse fast)."""
    c = {k: values[k].tolist() for k in PARAMS}
    nodes = {"z1": ["matmul", c["W1"], "x"], "a1": ["add", "z1", c["b1"]], "h": ["tanh", "a1"],
             "z2": ["matmul", c["W2"], "h"], "a2": ["add", "z2", c["b2"]], "y": ["tanh", "a2"]}
    return json.dumps({"cg": 1, "inputs": {"x": {"shape": [N]}}, "outputs": ["y"],
                       "nodes": {k: {"op": op, "in": ins} for k, (op, *ins) in nodes.items()}})


def mlp(np_: Any, v: dict[str, Any], x: Any) -> Any:
    """y for any numpy-like module (numpy, torch, jax.numpy)."""
    return np_.tanh(v["W2"] @ np_.tanh(v["W1"] @ x + v["b1"]) + v["b2"])


def mlp_by_hand(W1: np.ndarray, b1: np.ndarray, W2: np.ndarray, b2: np.ndarray, x: np.ndarray) -> np.ndarray:
    h = np.tanh(W1 @ x + b1)
    y = np.tanh(W2 @ h + b2)
    return ((1 - y * y)[:, None] * W2 * (1 - h * h)) @ W1


def torch_mlp_ms(values: dict[str, np.ndarray], want: np.ndarray) -> tuple[float, float] | None:
    """torch.func.jacrev and jacfwd of y, in ms per call."""
    try:
        import torch
        from torch.func import jacfwd, jacrev
    except ImportError:
        return None
    torch.set_num_threads(1)
    t = {k: torch.from_numpy(v) for k, v in values.items()}
    out = []
    for make in (jacrev, jacfwd):
        f = make(lambda x: mlp(torch, t, x))
        assert np.allclose(f(t["x"]).numpy(), want)
        out.append(median_times(lambda f=f: f(t["x"]), rounds=20, number=20)[0] * 1e3)
    return out[0], out[1]


def mlp_rows() -> list[Row]:
    graph = cg.loads(MLP, "mlp_jacobian.yaml")
    values = mlp_data()
    consts = cg.loads(mlp_constants_text(values), "mlp_jacobian_constants.json")
    x = {"x": values["x"]}
    want = mlp_by_hand(**values)
    calls = {mode: (lambda mode=mode: jacobian(graph, values, wrt="x", mode=mode)) for mode in ("reverse", "forward")}
    for call in calls.values():
        assert np.allclose(call().matrix, want)
    assert np.allclose(jacobian(consts, x, wrt="x", mode="reverse").matrix, want)
    with no_gc():
        t_rev, t_fwd, t_hand = median_times(calls["reverse"], calls["forward"], lambda: mlp_by_hand(**values),
                                            rounds=20, number=10)
        t_in, t_const = median_times(calls["reverse"], lambda: jacobian(consts, x, wrt="x", mode="reverse"),
                                     rounds=20, number=10)
        env_in, env_const = forward(graph, bind_inputs(graph, values)), forward(consts, bind_inputs(consts, x))
        t_rows_in, t_rows_const = median_times(lambda: _by_rows(graph, env_in, "y", "x", N, N, True),
                                               lambda: _by_rows(consts, env_const, "y", "x", N, N, True),
                                               rounds=5, number=2)
        torch_ms = torch_mlp_ms(values, want) or (None, None)
        jax_ms = [jax_jacobian_ms(lambda jnp, x: mlp(jnp, values, x), want, values["x"], forward=fwd)
                  for fwd in (False, True)]
    ms = 1e3
    label = f"Jacobian of tanh(W2 tanh(W1 x + b1) + b2), W {N}x{N}, d y / d x"
    return [
        Row(f"{label}: reverse mode", t_rev * ms, t_hand * ms, "ms", torch=torch_ms[0], jax=jax_ms[0],
            note="baseline: numpy by hand; PyTorch and JAX: jacrev"),
        Row(f"{label}: forward mode", t_fwd * ms, t_hand * ms, "ms", torch=torch_ms[1], jax=jax_ms[1],
            note="baseline: numpy by hand; PyTorch and JAX: jacfwd"),
        Row(f"{label}, reverse mode: W1, b1, W2, b2 as inputs / as constants", t_in * ms, t_const * ms, "ms",
            note="both cg; above 1.0 the backward pass computes parameter gradients nobody asked for"),
        Row(f"{label}, a backward pass per row (the fallback): parameters as inputs / as constants", t_rows_in * ms,
            t_rows_const * ms, "ms", note="both cg (cg.eval.jacobian._by_rows), as the row above"),
    ]


def rows() -> list[Row]:
    return [*single_rows(), *mlp_rows()]


if __name__ == "__main__":
    pin_one_core()
    show(rows())
