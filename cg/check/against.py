"""A graph's run against numbers written down before: its file's `expect` block, and a result
saved by `cg run --format json` (a snapshot). Each number that is off is a problem at its position."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from cg.check.report import FileReport, Options, Row, row
from cg.errors import CgError, Diagnostic, UsageError
from cg.eval.interp import run
from cg.graph.composite import hidden, shown_nodes
from cg.graph.ir import Graph


def _mismatch(actual: np.ndarray, ref: np.ndarray, allowed: np.ndarray, word: str) -> tuple[np.ndarray, str | None]:
    """The error per element, and 'is 3.73767 (expected 3.7, off by 0.0377)' for the worst one if
    one is off. NaN equals NaN here, and an infinity itself: a snapshot may hold them. An infinity
    expected is met only by the same infinity (its tolerance, atol + rtol * inf, is no bound)."""
    with np.errstate(invalid="ignore"):
        err = np.where((np.isnan(actual) & np.isnan(ref)) | (actual == ref), 0.0, np.abs(actual - ref))
        bad = ~(err <= allowed) | (np.isinf(ref) & (err > 0))
    if not bad.any():
        return err, None
    k = int(np.argmax(np.where(bad, np.nan_to_num(err, nan=np.inf, posinf=np.inf), -1.0)))
    where = "" if actual.ndim == 0 else f"[{', '.join(str(int(i)) for i in np.unravel_index(k, actual.shape))}] "
    more = f"; {int(bad.sum())} of {bad.size} elements are off" if bad.size > 1 else ""
    a, r = actual.reshape(-1)[k], ref.reshape(-1)[k]
    return err, f"{where}is {a:.6g} ({word} {r:.6g}, off by {abs(a - r):.3g}{more})"


def check_expect(graph: Graph, report: FileReport) -> Row:
    """The file's expect block; each value or gradient that is off is a problem at the position of
    the expected number."""
    ex = graph.expect
    assert ex is not None
    seed = None if ex.grads or math.prod(graph.avals[ex.of].shape) == 1 else np.ones(graph.avals[ex.of].shape)
    try:
        result = run(graph, dict(ex.inputs), of=ex.of, seed=seed)
    except CgError as e:
        report.problems.extend(e.diagnostics)
        return Row("(expect)", None, math.nan, None, False, 0, 0, "the run at the expect point failed")
    errs, refs, allowed = [], [], []
    for kind, entries, got in (("value", ex.values, result.values), ("grad", ex.grads, result.grads)):
        for want in entries:
            tol = np.broadcast_to(ex.tol + ex.rtol * np.abs(want.value), want.value.shape)
            err, problem = _mismatch(np.asarray(got[want.name], dtype=np.float64), want.value, tol, "expected")
            if problem:
                what = f"value of '{want.name}'" if kind == "value" else f"d{ex.of}/d{want.name}"
                report.problems.append(Diagnostic("CG401", f"expect: {what} {problem}", graph.file, want.pos))
            errs.append(err.reshape(-1))
            refs.append(want.value.reshape(-1))
            allowed.append(tol.reshape(-1))
    flat = [np.concatenate(v) if v else np.zeros(0) for v in (errs, refs, allowed)]
    nv, ng = len(ex.values), len(ex.grads)
    note = f"{nv} value{'s' * (nv != 1)}, {ng} gradient{'s' * (ng != 1)}"
    return row("(expect)", None, flat[0], flat[1], flat[2], flat[0].size, note)


@dataclass(frozen=True)
class Snapshot:
    """A result saved by `cg run --format json`: what was differentiated, and each id's value,
    gradient and op ("input" for the inputs)."""

    of: str | None
    nodes: Mapping[str, tuple[str, np.ndarray, np.ndarray | None]]


def _array(v: Any) -> np.ndarray:
    """A value of a run result: nested lists, with NaN and infinities written as strings."""
    if isinstance(v, str):
        v = {"NaN": "nan", "Infinity": "inf", "-Infinity": "-inf"}[v]
    elif isinstance(v, list):
        return np.array([_array(x) for x in v], dtype=np.float64)
    elif not isinstance(v, (int, float)) or isinstance(v, bool):
        raise TypeError(f"a value is {type(v).__name__}, not a number or a list")
    return np.asarray(float(v))


def read_snapshot(text: str, where: str) -> Snapshot:
    """Parse a saved run result; UsageError CG300 if it is not one."""
    import json

    try:
        doc = json.loads(text)
        if doc.get("mode", "reverse") != "reverse":
            raise UsageError.one("CG300", f"{where}: a forward-mode result; cg check compares gradients (reverse mode)")
        nodes = {str(n["id"]): (str(n.get("op", "")), _array(n["value"]), None if n.get("grad") is None
                                else _array(n["grad"])) for n in doc["nodes"]}  # fmt: skip
        return Snapshot(doc.get("of"), nodes)
    except UsageError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        why = f"{type(e).__name__}: {str(e)[:80]}"
        raise UsageError.one("CG300", f"{where}: not a result of `cg run --format json` ({why})") from None


def check_snapshot(graph: Graph, given: Mapping[str, Any], snap: Snapshot, opts: Options,
                   report: FileReport) -> Row:
    """The run against a saved result: each id whose value or gradient moved beyond tolerance, and
    ids found on one side only. The point: --inputs, else the defaults, else the saved inputs."""
    of = snap.of if snap.of in graph.avals else graph.outputs[0]
    if snap.of is not None and snap.of not in graph.avals:
        message = f"snapshot: it differentiated '{snap.of}', which is not in the graph"
        report.problems.append(Diagnostic("CG402", message, graph.file))
    point = {i.name: snap.nodes[i.name][1] for i in graph.inputs
             if i.default is None and i.name not in given and i.name in snap.nodes}  # fmt: skip
    try:
        result = run(graph, point | dict(given), of=of, on_nonfinite="keep")
    except UsageError:
        raise
    except CgError as e:
        report.problems.extend(e.diagnostics)
        return Row("(snapshot)", None, math.nan, None, False, 0, 0, "the run failed")
    errs, refs, allowed = [], [], []
    problems = len(report.problems)
    for name in _snapshot_ids(graph, snap):
        where = graph.input(name) or graph.node(name)
        pos = where.pos if where else None
        if name not in snap.nodes:
            report.problems.append(Diagnostic("CG402", "not in the snapshot", graph.file, pos, name))
            continue
        for kind, now, then in (("value", result.values[name], snap.nodes[name][1]),
                                ("gradient", result.grads[name], snap.nodes[name][2])):
            problem, err, ref = _moved(now, then, opts)
            if problem:
                report.problems.append(Diagnostic("CG402", f"snapshot: {kind} {problem}", graph.file, pos, name))
            errs.append(err)
            refs.append(ref)
            allowed.append(opts.atol + opts.rtol * np.abs(ref))
    for name in snap.nodes:
        if name not in graph.avals:
            report.problems.append(Diagnostic("CG402", f"snapshot: '{name}' is in the snapshot but not in the graph",
                                              graph.file))
    flat = [np.concatenate(v) if v else np.zeros(0) for v in (errs, refs, allowed)]
    done = row("(snapshot)", None, flat[0], flat[1], flat[2], flat[0].size, f"{len(snap.nodes)} ids")
    return replace(done, ok=False) if len(report.problems) > problems else done  # a missing id fails the row too


def _snapshot_ids(graph: Graph, snap: Snapshot) -> list[str]:
    """The ids to compare, in the view the snapshot was saved in: `cg run -f json` shows a call of a
    function (or an expression node) as one row, `--expand` shows its inner nodes too."""
    inputs = [i.name for i in graph.inputs]
    if any(hidden(graph, name) for name in snap.nodes):
        return inputs + [n.id for n in graph.nodes]
    return inputs + [n.id for n in shown_nodes(graph)]


def _moved(now: np.ndarray | None, then: np.ndarray | None, opts: Options) -> tuple[str | None, np.ndarray, np.ndarray]:
    """What moved between a saved and a new value or gradient (None if nothing), with the errors."""
    empty = np.zeros(0)
    if now is None or then is None:
        same = now is None and then is None
        return (None if same else f"is {'null' if now is None else 'a number'} now, was "
                f"{'null' if then is None else 'a number'}"), empty, empty
    now = np.asarray(now, dtype=np.float64)
    if now.shape != then.shape:
        return f"has shape {list(now.shape)}, was {list(then.shape)}", empty, empty
    err, problem = _mismatch(now, then, opts.atol + opts.rtol * np.abs(then), "snapshot")
    return problem, err.reshape(-1), then.reshape(-1)
