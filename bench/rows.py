"""Per-row gradients over a data set: the binary cross-entropy of a logistic regression (20
features) on 4,096 rows, the value and the gradient of every row's loss with respect to w and b.

    python bench/rows.py

cg runs the batched graph (cg/eval/batch.py: run_rows, one chunk of 1,024 rows at a time); the
baseline is the same per-row gradients written by hand in numpy, vectorised over the rows. The
note gives a per-row loop of cg.run (timed on 256 rows, scaled), the path run_rows replaces, and
torch.func.vmap(grad) is timed when PyTorch is installed.
"""

from __future__ import annotations

from typing import Any

import common  # noqa: F401  (first: one BLAS thread, before numpy is imported)
import numpy as np
from common import Row, median_times, no_gc, show

import cg
from cg.eval.batch import run_rows

N, D = 4096, 20
GRAPH = f"""
cg: 1
imports: [cg:nn]
inputs:
  w: {{shape: [{D}]}}
  b: 0.0
  x: {{shape: [{D}]}}
  y: {{shape: []}}
nodes:
  z: {{expr: "w @ x + b"}}
  p: {{op: sigmoid, in: [z]}}
  loss: {{op: bce, in: [p, y]}}
outputs: [loss]
"""


def data() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D))
    y = (rng.random(N) < 0.5).astype(np.float64)
    return {"x": x, "y": y}, {"w": 0.1 * rng.normal(size=D), "b": np.array(0.2)}


def by_hand(rows: dict[str, np.ndarray], w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y = rows["x"], rows["y"]
    p = 1 / (1 + np.exp(-(x @ w + b)))
    loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    dz = p - y
    return loss, dz[:, None] * x, dz


def with_cg(graph: Any, rows: dict[str, np.ndarray], params: dict[str, Any]) -> list[Any]:
    return list(run_rows(graph, rows, params, chunk=1024))


def torch_time(rows: dict[str, np.ndarray], params: dict[str, Any]) -> float | None:
    try:
        import torch
        from torch.func import grad, vmap
    except ImportError:
        return None
    torch.set_num_threads(1)
    x, y = torch.from_numpy(rows["x"]), torch.from_numpy(rows["y"])
    w, b = torch.from_numpy(params["w"]), torch.tensor(float(params["b"]), dtype=torch.float64)

    def loss(w: Any, b: Any, x: Any, y: Any) -> Any:
        return torch.nn.functional.binary_cross_entropy(torch.sigmoid(x @ w + b), y)

    per_row = vmap(grad(loss, argnums=(0, 1)), in_dims=(None, None, 0, 0))
    return median_times(lambda: per_row(w, b, x, y), rounds=10)[0]


def rows() -> list[Row]:
    graph = cg.loads(GRAPH, "rows.yaml")
    columns, params = data()
    chunks = with_cg(graph, columns, params)
    loss, dw, db = by_hand(columns, **params)
    assert np.allclose(np.concatenate([c.values["loss"] for c in chunks]), loss)
    assert np.allclose(np.concatenate([c.grads["w"] for c in chunks]), dw)
    assert np.allclose(np.concatenate([c.grads["b"] for c in chunks]), db)
    few = {k: v[:256] for k, v in columns.items()}
    with no_gc():
        t_cg, t_hand = median_times(lambda: with_cg(graph, columns, params), lambda: by_hand(columns, **params),
                                    rounds=10)
        t_loop = median_times(lambda: [cg.run(graph, {**params, **{k: v[i] for k, v in few.items()}})
                                       for i in range(256)], rounds=3)[0] * N / 256
        t_torch = torch_time(columns, params)
    us = 1e6 / N
    return [
        Row(f"Per-row gradients, logistic regression ({D} features), {N:,} rows: run_rows", t_cg * us, t_hand * us,
            "µs/row", torch=None if t_torch is None else t_torch * us,
            note=f"baseline: numpy by hand, vectorised; a per-row loop of cg.run: {t_loop * us:.0f} µs/row"),
    ]


if __name__ == "__main__":
    show(rows())
