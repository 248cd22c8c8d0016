"""The Jacobian in batched passes (cg/eval/batch.py's transform): instead of one backward pass per
row of J, the graph runs over a batch axis of B rows, every input tiled, and one backward pass seeded
with B rows of the identity gives B rows of J at once (reverse mode); one JVP pass with B basis
tangents gives B columns (forward mode). Only the gradient asked for is computed (the plan is cut
to `wrt`, as cg.value_and_grad cuts it).

The batch is sized so that the tiled values stay under BATCH_NUMBERS numbers; a matrix with a NaN
or Inf is left to the pass-per-row path, which names the node that made it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

import numpy as np

from cg.eval.batch import batched
from cg.eval.grad import ValueAndGrad
from cg.eval.interp import forward, jvp
from cg.eval.plan import Report, downstream
from cg.graph.ir import Graph
from cg.ops import Array

BATCH_NUMBERS = 4_000_000  # tiled values per batch: 32 MB of float64 for every node of the graph together


def _sizes(graph: Graph, count: int) -> Iterator[tuple[int, int]]:
    """(start, size) of each batch of `count` rows, each batch under BATCH_NUMBERS tiled numbers."""
    per_row = max(sum(math.prod(a.shape) for a in graph.avals.values()), 1)
    size = max(1, min(count, BATCH_NUMBERS // per_row))
    for start in range(0, count, size):
        yield start, min(size, count - start)


def _tiled(graph: Graph, env: Mapping[str, Array], b: int) -> dict[str, np.ndarray]:
    return {i.name: np.broadcast_to(np.asarray(env[i.name]), (b, *np.shape(env[i.name]))) for i in graph.inputs}


def by_rows(graph: Graph, env: Mapping[str, Array], of: str, wrt: str, rows: int, cols: int,
            progress: Report | None = None) -> np.ndarray | None:
    """Reverse mode, B rows of J per backward pass; None where a NaN or Inf showed up."""
    flat = np.zeros((rows, cols))
    shape = np.shape(env[of])
    cache: dict[int, ValueAndGrad] = {}
    for start, b in _sizes(graph, rows):
        if progress is not None:
            progress("batched backward passes (rows)", start, rows)
        if b not in cache:
            cache[b] = ValueAndGrad(batched(graph, b), of=of, wrt=[wrt])
        seed = np.zeros((b, rows))
        seed[np.arange(b), start + np.arange(b)] = 1.0
        _, grads = cache[b](_tiled(graph, env, b), seed=seed.reshape(b, *shape))
        flat[start:start + b] = np.reshape(grads[wrt], (b, cols))
    return flat if np.isfinite(flat).all() else None


def by_columns(graph: Graph, env: Mapping[str, Array], of: str, wrt: str, rows: int, cols: int,
               progress: Report | None = None) -> np.ndarray | None:
    """Forward mode, B columns of J per JVP pass; None where a NaN or Inf showed up."""
    flat = np.zeros((rows, cols))
    shape = np.shape(env[wrt])
    for start, b in _sizes(graph, cols):
        if progress is not None:
            progress("batched forward-mode passes (columns)", start, cols)
        big = batched(graph, b)
        values = forward(big, _tiled(graph, env, b))
        basis = np.zeros((b, cols))
        basis[np.arange(b), start + np.arange(b)] = 1.0
        tangent = jvp(downstream(big, wrt), values, {wrt: basis.reshape(b, *shape)}).get(of)
        if tangent is not None:
            flat[:, start:start + b] = np.reshape(tangent, (b, rows)).T
    return flat if np.isfinite(flat).all() else None
