"""W5: a deep tanh MLP, 20 layers of width 256 on a batch of 64, loss the mean of the last layer,
forward and backward (gradients of every W and b, none for the data X), float32 and float64,
on one BLAS thread.

    python bench/w5_deep_mlp.py

Small matrices and many layers: the cost is less the matmuls than what is done around them, and
above all memory. The baseline is numpy by hand, which keeps the activations the backward pass
needs and nothing else. cg runs through cg.value_and_grad and through the module `cg compile`
writes; PyTorch eager and JAX jit are timed when installed. The page faults per call are the
process's minor faults (glibc hands freed blocks of this size back to the kernel, and a call that
allocates them again faults fresh zeroed pages in: about 2 µs each, see ../shared/notes).
"""

from __future__ import annotations

import sys
from typing import Any

import common  # noqa: F401  (first: one BLAS thread, before numpy is imported)
import numpy as np
from common import Row, jax_time, load_jax, median_times, minor_faults, no_gc, pin_one_core, show

import cg
from cg.graph.ir import Graph

LAYERS, WIDTH, BATCH = 20, 256, 64
PARAMS = tuple(p for k in range(1, LAYERS + 1) for p in (f"W{k}", f"b{k}"))


def graph_text() -> str:
    lines = ["cg: 1", "name: deep_mlp", "inputs:", f"  X: {{shape: [{BATCH}, {WIDTH}]}}"]
    for k in range(1, LAYERS + 1):
        lines += [f"  W{k}: {{shape: [{WIDTH}, {WIDTH}]}}", f"  b{k}: {{shape: [{WIDTH}]}}"]
    lines.append("nodes:")
    h = "X"
    for k in range(1, LAYERS + 1):
        lines += [f"  z{k}: {{op: matmul, in: [{h}, W{k}]}}", f"  a{k}: {{op: add, in: [z{k}, b{k}]}}",
                  f"  h{k}: {{op: tanh, in: [a{k}]}}"]
        h = f"h{k}"
    lines += [f"  loss: {{op: mean, in: [{h}]}}", "outputs: [loss]"]
    return "\n".join(lines) + "\n"


def data(dtype: type) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    values = {"X": rng.normal(size=(BATCH, WIDTH)).astype(dtype)}
    for k in range(1, LAYERS + 1):
        values[f"W{k}"] = (rng.normal(size=(WIDTH, WIDTH)) / np.sqrt(WIDTH)).astype(dtype)
        values[f"b{k}"] = (0.1 * rng.normal(size=WIDTH)).astype(dtype)
    return values


def by_hand(values: dict[str, np.ndarray]) -> tuple[Any, dict[str, np.ndarray]]:
    """Forward keeping each layer's output (the tanh derivative and the next matmul's VJP need
    it), then backward, in place where numpy allows."""
    hs = [values["X"]]
    for k in range(1, LAYERS + 1):
        a = hs[-1] @ values[f"W{k}"]
        a += values[f"b{k}"]
        hs.append(np.tanh(a, out=a))
    out = hs[-1].mean()
    g = np.full_like(hs[-1], 1.0 / hs[-1].size)
    grads = {}
    for k in range(LAYERS, 0, -1):
        h = hs.pop()
        g *= 1 - h * h
        grads[f"W{k}"] = hs[-1].T @ g
        grads[f"b{k}"] = g.sum(axis=0)
        if k > 1:
            g = g @ values[f"W{k}"].T
    return out, grads


def torch_time(values: dict[str, np.ndarray]) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    X = torch.from_numpy(values["X"])
    params = [torch.from_numpy(values[p]).clone().requires_grad_() for p in PARAMS]

    def step() -> None:
        for p in params:
            p.grad = None
        h = X
        for k in range(LAYERS):
            h = torch.tanh(h @ params[2 * k] + params[2 * k + 1])
        h.mean().backward()

    return median_times(step, rounds=20, number=5)[0]


def jax_seconds(values: dict[str, np.ndarray]) -> float | None:
    """JAX: jax.jit of jax.value_and_grad over the parameters, in the row's dtype, when installed."""
    jax = load_jax()
    if jax is None:
        return None
    import jax.numpy as jnp

    def loss(params: list[Any], X: Any) -> Any:
        h = X
        for k in range(LAYERS):
            h = jnp.tanh(h @ params[2 * k] + params[2 * k + 1])
        return h.mean()

    f = jax.jit(jax.value_and_grad(loss))
    return jax_time(f, [values[p] for p in PARAMS], values["X"], rounds=20, number=5)


def check(got: dict[str, Any], want: dict[str, np.ndarray], tol: float) -> None:
    for p in PARAMS:
        assert np.allclose(got[p], want[p], rtol=tol, atol=tol * np.abs(want[p]).max()), p
        assert got[p].dtype == want[p].dtype, (p, got[p].dtype)


def rows_for(dtype: type, graph: Graph) -> list[Row]:
    values = data(dtype)
    name = np.dtype(dtype).name
    f = cg.value_and_grad(graph, wrt=PARAMS, dtype=name)
    out, grads = f(values)
    want_out, want = by_hand(values)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    assert np.isclose(out, want_out, rtol=tol)
    check(grads, want, tol)
    from cg.compile import compile_module

    m = compile_module(graph, wrt=PARAMS, dtype=name)
    check({p: getattr(m.backward(m.forward(**values)), p) for p in PARAMS}, want, tol)
    c_out, c_grads = m.value_and_grad(**values)
    assert np.isclose(c_out, want_out, rtol=tol)
    check({p: getattr(c_grads, p) for p in PARAMS}, want, tol)

    def compiled() -> Any:  # the module's value_and_grad: forward and backward, each array freed after its last use
        return m.value_and_grad(**values)

    with no_gc():
        t_cg, t_c, t_hand = median_times(lambda: f(values), compiled, lambda: by_hand(values), rounds=20, number=5)
        f_cg, f_c, f_hand = (minor_faults(fn, calls=30) for fn in (lambda: f(values), compiled,
                                                                   lambda: by_hand(values)))
        t_torch = torch_time(values)
        t_jax = jax_seconds(values)
    ms = 1e3
    label = f"W5 tanh MLP {LAYERS}x{WIDTH}, batch {BATCH}, fwd+bwd, {name}"
    torch_ms = None if t_torch is None else t_torch * ms
    jax_ms = None if t_jax is None else t_jax * ms
    return [
        Row(f"{label}: cg.value_and_grad", t_cg * ms, t_hand * ms, "ms", target=1.0, torch=torch_ms, jax=jax_ms,
            faults=(f_cg, f_hand), note="baseline: numpy by hand, 1 thread"),
        Row(f"{label}: cg compile (value_and_grad of the generated module)", t_c * ms, t_hand * ms, "ms",
            target=1.0, faults=(f_c, f_hand), note="baseline: numpy by hand, 1 thread"),
    ]


def rows() -> list[Row]:
    graph = cg.loads(graph_text(), "deep_mlp.yaml")
    return [*rows_for(np.float32, graph), *rows_for(np.float64, graph)]


if __name__ == "__main__":
    pin_one_core()
    show(rows())
    sys.exit(0)
