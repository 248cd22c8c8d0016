"""A graph over many rows of inputs (`cg run --data`).

THE REFERENCE IMPLEMENTATION: a plain loop over the rows, one `cg.eval.interp.run` per row. The
vectorised version (each op's batching rule, the whole chunk in one pass) replaces this file with
the same API; the loop stays what it is tested against. Nothing but `run_rows` and `Chunk` may be
relied on from here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from cg.eval.interp import run
from cg.eval.plan import Report
from cg.graph.ir import Graph


@dataclass(frozen=True)
class Chunk:
    """Rows start..stop: every input's and node's value per row, [stop - start, *row shape], and
    d of / d name per row (None for integers)."""

    start: int
    stop: int
    values: dict[str, np.ndarray]
    grads: dict[str, np.ndarray | None]


def run_rows(graph: Graph, data: Mapping[str, np.ndarray], given: Mapping[str, Any] | None = None, *,
             of: str | None = None, chunk: int = 1024, progress: Report | None = None) -> Iterator[Chunk]:
    """The forward and backward pass of every row, `chunk` rows at a time: row i binds each input
    named in `data` to data[name][i], the others to `given` or their defaults. NaN and Inf are kept
    (the caller finds the row)."""
    rows = len(next(iter(data.values()))) if data else 0
    fixed = dict(given or {})
    for start in range(0, rows, max(1, chunk)):
        stop = min(rows, start + max(1, chunk))
        results = [run(graph, {**fixed, **{k: v[i] for k, v in data.items()}}, of=of, on_nonfinite="keep")
                   for i in range(start, stop)]
        values = {name: np.stack([r.values[name] for r in results]) for name in results[0].values}
        grads: dict[str, np.ndarray | None] = {}
        for name in results[0].values:
            per = [r.grads.get(name) for r in results]
            grads[name] = np.stack([g for g in per if g is not None]) if all(g is not None for g in per) else None
        if progress is not None:
            progress("rows", stop, rows)
        yield Chunk(start, stop, values, grads)
