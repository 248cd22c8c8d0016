"""`cg train`: gradient descent on some inputs of a graph (the parameters) over a data set: each
step runs a minibatch through the batched graph (cg/eval/batch.py), averages the per-row gradients
of the loss, and moves the parameters against them. One epoch is one pass over the rows, shuffled
with a seeded generator when asked; the curve records the mean loss and the gradient norm per epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cg.errors import CgError, NumericError, UsageError
from cg.eval.batch import run_rows
from cg.graph.ir import Graph

# hears (epoch, epochs, mean loss, gradient norm) after each epoch: the CLI's progress bar
EpochReport = Callable[[int, int, float, float], None]


@dataclass(frozen=True)
class Epoch:
    epoch: int  # 1-based
    loss: float  # the mean loss over the epoch's rows, at the parameters each minibatch saw
    grad_norm: float  # the norm of the last minibatch's mean gradient, over every parameter


@dataclass(frozen=True)
class Trained:
    params: dict[str, np.ndarray]
    curve: tuple[Epoch, ...]


@dataclass(frozen=True)
class Schedule:
    lr: float = 0.1
    epochs: int = 20
    batch: int = 64
    shuffle: bool = False
    seed: int = 0


def check(graph: Graph, params: Sequence[str], data: Mapping[str, Any] | set[str], schedule: Schedule) -> None:
    """The parameters and the schedule, before any row is read (`data`: the columns, or their names)."""
    if not params:
        raise UsageError.one("CG300", "--params: name at least one parameter to train")
    if len(set(params)) != len(params):  # twice would take two steps a step
        raise UsageError.one("CG300", f"--params {','.join(params)}: a parameter is named twice")
    for name in params:
        found = graph.input(name)
        if found is None or found.aval.dtype != "float":
            raise UsageError.one("CG301", f"--params {name}: not a float input of the graph")
        if name in data:
            raise UsageError.one("CG300", f"--params {name}: it is a column of the data, not a parameter")
    if not (0 < schedule.lr < float("inf")) or schedule.epochs < 1 or schedule.batch < 1 or schedule.seed < 0:
        raise UsageError.one("CG300", "--lr must be a positive finite number, --epochs and --batch at least 1, "
                             "--seed not negative")


# (the minibatch's rows, as indices into the data set; every input's value) -> (mean loss, mean gradients)
Step = Callable[[np.ndarray, Mapping[str, Any]], tuple[float, dict[str, np.ndarray]]]


def train(graph: Graph, data: Mapping[str, np.ndarray], params: Sequence[str], start: Mapping[str, Any],
          schedule: Schedule = Schedule(), *, of: str | None = None, report: EpochReport | None = None) -> Trained:
    """Minibatch gradient descent on `params` (starting at `start`, else the graph's defaults) over
    the rows of `data`; the loss is `of` (default the first output), a scalar per row."""
    check(graph, params, data, schedule)
    if not data or not len(next(iter(data.values()))):
        raise CgError.one("CG150", "no rows to train on: the data holds no examples (or no column of an input)")

    def step(rows: np.ndarray, given: Mapping[str, Any]) -> tuple[float, dict[str, np.ndarray]]:
        return _step(graph, {k: v[rows] for k, v in data.items()}, given, params, of)

    return descend(graph, len(next(iter(data.values()))), step, params, start, schedule, report)


def descend(graph: Graph, n: int, step: Step, params: Sequence[str], start: Mapping[str, Any],
            schedule: Schedule, report: EpochReport | None = None) -> Trained:
    """The descent over `n` rows, each minibatch's mean loss and gradients from `step` (in this
    process, or reduced over a cluster: cg/cli/dask_engine.py)."""
    values = {name: np.array(start[name] if name in start else _default(graph, name), dtype=np.float64)
              for name in params}
    fixed = {k: v for k, v in start.items() if k not in values}
    rng = np.random.default_rng(schedule.seed)
    curve = []
    for epoch in range(1, schedule.epochs + 1):
        order = rng.permutation(n) if schedule.shuffle else np.arange(n)
        total, norm = 0.0, 0.0
        for lo in range(0, n, schedule.batch):
            rows = order[lo:lo + schedule.batch]
            loss, grads = step(rows, {**fixed, **values})
            if not (np.isfinite(loss) and all(np.isfinite(g).all() for g in grads.values())):
                raise NumericError.one("CG200", f"epoch {epoch}: the loss or a gradient of the minibatch of examples "
                                       f"{_span(rows)} is NaN or infinite (a smaller --lr may help)")
            total += loss * len(rows)
            norm = float(np.sqrt(sum(float(np.sum(g * g)) for g in grads.values())))
            for name in params:
                values[name] = values[name] - schedule.lr * grads[name]
        curve.append(Epoch(epoch, total / n, norm))
        if report is not None:
            report(epoch, schedule.epochs, curve[-1].loss, norm)
    return Trained(values, tuple(curve))


def _span(rows: np.ndarray) -> str:
    """The minibatch's examples (0-based), as a person can look them up."""
    shown = ", ".join(str(int(r)) for r in rows[:5])
    return f"{shown}{', ...' if len(rows) > 5 else ''} ({len(rows)} rows)"


def _default(graph: Graph, name: str) -> np.ndarray:
    found = graph.input(name)
    if found is None or found.default is None:
        raise UsageError.one("CG302", f"--params {name}: it has no default value; give a start with --inputs")
    return found.default


def _step(graph: Graph, rows: Mapping[str, np.ndarray], given: Mapping[str, Any], params: Sequence[str],
          of: str | None) -> tuple[float, dict[str, np.ndarray]]:
    """One minibatch: its mean loss and the mean gradient of each parameter (one chunk: all rows)."""
    count = len(next(iter(rows.values())))
    [chunk] = run_rows(graph, rows, given, of=of, chunk=count, on_nonfinite="keep")  # descend names the rows
    loss = chunk.values[of or graph.outputs[0]]
    grads = {name: np.mean(np.asarray(chunk.grads[name]), axis=0) for name in params}
    return float(np.mean(loss)), grads
