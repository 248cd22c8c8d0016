"""The sums over the rows of a data set that `cg run --data` reduces (cg/cli/data.py), in memory or
on a Dask worker (cg/cli/dask_engine.py): the loss, each parameter's gradient, the row count."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cg.errors import NumericError
from cg.graph.data import row_of


@dataclass
class Totals:
    """The sums over the rows seen so far."""

    rows: int = 0
    loss: float = 0.0
    grads: dict[str, np.ndarray | None] = field(default_factory=dict)
    values: dict[str, np.ndarray] = field(default_factory=dict)
    nonfinite: list[int] = field(default_factory=list)  # examples with a NaN or Inf (--nonfinite keep)


def add_chunk(totals: Totals, c: Any, of: str, params: list[str], file: str, nonfinite: str) -> None:
    """Add a chunk of run_rows (cg/eval/batch.py) to the sums: its loss and its parameters' gradients,
    checked for NaN and Inf (--nonfinite error: a NumericError naming the file's row)."""
    loss = np.asarray(c.values[of], dtype=np.float64).reshape(c.stop - c.start)
    checked = [(of, loss.reshape(len(loss), -1))]
    checked += [(p, np.asarray(g).reshape(len(loss), -1)) for p in params if (g := c.grads.get(p)) is not None]
    any_bad = np.zeros(len(loss), bool)
    for name, arr in checked:
        bad = ~np.isfinite(arr).all(axis=1)
        any_bad |= bad
        if bad.any() and nonfinite == "error":
            k = int(np.flatnonzero(bad)[0])
            what = "value" if name == of else f"gradient d {of}/d {name}"
            raise NumericError.one("CG200", f"row {row_of(c.start + k)} (example {c.start + k}): the {what} is NaN"
                                   " or infinite (--nonfinite keep goes on)", file=file)
    totals.nonfinite.extend(c.start + int(k) for k in np.flatnonzero(any_bad))
    totals.rows += c.stop - c.start
    totals.loss += float(loss.sum())
    for p in params:
        g = c.grads.get(p)
        if p not in totals.values:
            totals.values[p] = np.asarray(c.values[p][0])
            totals.grads[p] = None if g is None else np.zeros(np.shape(g)[1:])
        if g is not None:
            totals.grads[p] = totals.grads[p] + np.asarray(g, dtype=np.float64).sum(axis=0)  # type: ignore[operator]
