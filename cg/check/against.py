"""A graph's run against numbers written down before: its file's `expect` block, and a snapshot (a
result saved by `cg run --format json`, or the partial format: cg/check/snapshot.py). Each number
that is off is a problem at its position."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from cg.check.report import FileReport, Options, Row, row
from cg.check.snapshot import Snapshot
from cg.errors import CgError, Diagnostic, UsageError, did_you_mean
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


def check_snapshot(graph: Graph, given: Mapping[str, Any], snap: Snapshot, opts: Options,
                   report: FileReport, of: str | None = None) -> Row:
    """The run against a snapshot: each name whose value or gradient is off beyond tolerance, names
    on one side only, a snapshot that compares nothing. The point: `given` (--inputs), else the
    snapshot's `inputs`, else the file's defaults, else the values the snapshot has for the inputs.
    `of` (what the caller differentiates) must agree with the snapshot's own."""
    before = len(report.problems)
    of = _of(graph, snap, of, report)
    point = _point(graph, given, snap, report)
    seed = None if snap.grads or math.prod(graph.avals[of].shape) == 1 else np.ones(graph.avals[of].shape)
    try:
        result = run(graph, point | dict(given), of=of, seed=seed, on_nonfinite="keep")
    except UsageError as e:
        if not point:  # nothing came from the snapshot: the command line's value does not fit
            raise
        report.problems.extend(replace(d, message=f"at the snapshot's point: {d.message}") for d in e.diagnostics)
        return Row("(snapshot)", None, math.nan, None, False, 0, 0, "the run failed")
    except CgError as e:
        report.problems.extend(e.diagnostics)
        return Row("(snapshot)", None, math.nan, None, False, 0, 0, "the run failed")
    errs, refs, allowed = [], [], []
    for name, kind, now, then in _pairs(graph, snap, result, report):
        where = graph.input(name) or graph.node(name)
        problem, err, ref = _moved(now, then, opts)
        if problem:
            message = f"snapshot: {kind} {problem}"
            report.problems.append(Diagnostic("CG402", message, graph.file, where.pos if where else None, name))
        errs.append(err)
        refs.append(ref)
        allowed.append(opts.atol + opts.rtol * np.abs(ref))
    if not errs:  # never a vacuous pass
        message = "snapshot: it compares nothing: none of its values and gradients is of a name of the graph"
        report.problems.append(Diagnostic("CG402", message, snap.file))
    flat = [np.concatenate(v) if v else np.zeros(0) for v in (errs, refs, allowed)]
    nv, ng = len(snap.values), len(snap.grads)
    note = f"{nv} ids" if snap.full else f"{nv} value{'s' * (nv != 1)}, {ng} gradient{'s' * (ng != 1)}"
    done = row("(snapshot)", None, flat[0], flat[1], flat[2], flat[0].size, note)
    return replace(done, ok=False) if len(report.problems) > before else done  # a missing id fails the row too


def _of(graph: Graph, snap: Snapshot, asked: str | None, report: FileReport) -> str:
    """The output differentiated: the snapshot's `of`, else the one asked for, else the first output."""
    if snap.of is not None and asked is not None and snap.of != asked:
        message = f"snapshot: its gradients are of '{snap.of}', but the check differentiates '{asked}'"
        report.problems.append(Diagnostic("CG402", message, snap.file, snap.where("of")))
    of = snap.of if snap.of is not None else asked
    if of is not None and of not in graph.avals:
        message = f"snapshot: it differentiated '{of}', which is not in the graph"
        report.problems.append(Diagnostic("CG402", message, graph.file))
        of = None
    return of or graph.outputs[0]


def _point(graph: Graph, given: Mapping[str, Any], snap: Snapshot, report: FileReport) -> dict[str, Any]:
    """The input values that come from the snapshot (`given` wins over them): its `inputs`, and for
    the inputs with no default, the values it has for them."""
    saved = {i.name: snap.values[i.name] for i in graph.inputs if i.default is None and i.name in snap.values}
    for name in snap.inputs:
        if graph.input(name) is None:
            what = "a node, not an input" if name in graph.avals else "not an input of the graph"
            message = f"snapshot: '{name}' in `inputs` is {what}{_hint(graph, name, True)}"
            report.problems.append(Diagnostic("CG402", message, snap.file, snap.where("inputs", name)))
    point = saved | {k: v for k, v in snap.inputs.items() if graph.input(k) is not None}
    return {k: v for k, v in point.items() if k not in given}


def _pairs(graph: Graph, snap: Snapshot, result: Any, report: FileReport) -> Iterator[tuple[str, str, Any, Any]]:
    """(name, "value" or "gradient", the run's, the snapshot's) for each quantity compared; names
    on one side only are problems in the report. A saved result is compared in the view it was
    saved in, every id; a partial snapshot, at the names it has."""
    if snap.full:
        names = _snapshot_ids(graph, snap)
    else:
        names = [n for n in [i.name for i in graph.inputs] + [n.id for n in graph.nodes]
                 if n in snap.values or n in snap.grads]
    for name in names:
        if snap.full and name not in snap.values:
            where = graph.input(name) or graph.node(name)
            report.problems.append(Diagnostic("CG402", "not in the snapshot", graph.file,
                                              where.pos if where else None, name))
            continue
        if name in snap.values:
            yield name, "value", result.values[name], snap.values[name]
        if name in snap.grads:
            yield name, "gradient", result.grads[name], snap.grads[name]
    for section, entries in (("values", snap.values), ("grads", snap.grads)):
        for name in entries:
            if name not in graph.avals and (section == "values" or not snap.full):
                report.problems.append(_unknown(graph, snap, section, name))


def _unknown(graph: Graph, snap: Snapshot, section: str, name: str) -> Diagnostic:
    if snap.full:  # a saved result: the graph lost a node it had
        return Diagnostic("CG402", f"snapshot: '{name}' is in the snapshot but not in the graph", graph.file)
    message = f"snapshot: '{name}' in `{section}` is not in the graph{_hint(graph, name, False)}"
    return Diagnostic("CG402", message, snap.file, snap.where(section, name))


def _hint(graph: Graph, name: str, inputs_only: bool) -> str:
    names = [i.name for i in graph.inputs] + ([] if inputs_only else [n.id for n in graph.nodes])
    return did_you_mean(name, names)


def _snapshot_ids(graph: Graph, snap: Snapshot) -> list[str]:
    """The ids to compare, in the view the snapshot was saved in: `cg run -f json` shows a call of a
    function (or an expression node) as one row, `--expand` shows its inner nodes too."""
    inputs = [i.name for i in graph.inputs]
    if any(hidden(graph, name) for name in snap.values):
        return inputs + [n.id for n in graph.nodes]
    return inputs + [n.id for n in shown_nodes(graph)]


def _moved(now: np.ndarray | None, then: np.ndarray | None, opts: Options) -> tuple[str | None, np.ndarray, np.ndarray]:
    """What moved between a saved and a new value or gradient (None if nothing), with the errors."""
    empty = np.zeros(0)
    if now is None or then is None:
        same = now is None and then is None
        return (None if same else f"is {'null' if now is None else 'a number'}, the snapshot's is "
                f"{'null' if then is None else 'a number'}"), empty, empty
    now = np.asarray(now, dtype=np.float64)
    if now.shape != then.shape:
        return f"has shape {list(now.shape)}, the snapshot's {list(then.shape)}", empty, empty
    err, problem = _mismatch(now, then, opts.atol + opts.rtol * np.abs(then), "snapshot")
    return problem, err.reshape(-1), then.reshape(-1)
