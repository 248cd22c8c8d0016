"""The full Jacobian d of / d wrt, built from the same passes as `cg run`.

Reverse mode gets one row per backward pass (a one-hot seed on one element of `of`); forward
mode gets one column per JVP pass (a one-hot tangent on one element of `wrt`). Both reuse one
forward pass. Which is cheaper depends only on the two sizes, which is the lecture notes'
point: a scalar loss of many parameters wants reverse mode, a vector of one input forward mode.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from cg.errors import CgError, UsageError
from cg.eval.interp import (
    bind_inputs,
    blame,
    check_shapes,
    forward,
    gradient_sender,
    jvp,
    nonfinite,
    require_name,
)
from cg.eval.plan import Report, between, downstream, plan_for, reachable
from cg.gcpause import paused_gc
from cg.graph.ir import Graph
from cg.ops import Array

Mode = Literal["reverse", "forward", "auto"]
MODES = ("auto", "reverse", "forward")
MAX_ENTRIES = 50_000_000  # 400 MB of float64: refuse before allocating, not halfway through
MAX_LISTED = 100  # non-finite entries named in the result; an all-NaN matrix could have millions
HINT = " (run with --nonfinite keep to finish and see the whole matrix)"


@dataclass(frozen=True)
class JacobianResult:
    """J[i..., j...] = d of[i...] / d wrt[j...]: shape of_shape + wrt_shape."""

    graph: str
    file: str
    of: str
    wrt: str
    of_shape: tuple[int, ...]
    wrt_shape: tuple[int, ...]
    matrix: np.ndarray
    mode: str  # "reverse" or "forward": the mode used
    passes: int  # backward passes (reverse) or JVP passes (forward)
    reason: str  # why this mode, in words
    nonfinite: tuple[str, ...] = ()  # names with a non-finite value, then the first non-finite entries
    connected: bool = True  # False when `of` does not depend on `wrt` (every entry is then 0)
    nonfinite_entries: int = 0  # how many entries of the matrix are NaN or Inf (the list stops at MAX_LISTED)


# ---- checks ---------------------------------------------------------------------------


def _usage(graph: Graph, code: str, message: str) -> UsageError:
    return UsageError.one(code, message, file=graph.file)


def check_names(graph: Graph, of: str, wrt: str) -> None:
    """Both names exist and are floats (integers have no derivative)."""
    for option, name in (("--of", of), ("--wrt", wrt)):
        require_name(graph, name, option)
    if graph.avals[wrt].dtype == "int":
        kind = "input" if graph.input(wrt) is not None else "node"
        raise _usage(graph, "CG303", f"--wrt: {kind} '{wrt}' is an integer: there is no derivative with respect to it")
    if graph.avals[of].dtype == "int":
        raise _usage(graph, "CG303", f"--of: '{of}' is an integer: it has no derivative")


def choose(mode: str, rows: int, cols: int) -> tuple[str, str]:
    """The mode to use and why: reverse mode costs one pass per output element (`rows`),
    forward mode one per input element (`cols`); auto takes the fewer, reverse on a tie (the
    default of `cg run`, and it also gives every other gradient on the way)."""
    if mode not in MODES:
        raise UsageError.one("CG300", f"mode must be one of {', '.join(MODES)}, not '{mode}'")
    rev, fwd = "(one per output element)", "(one per input element)"
    if mode == "reverse":
        return "reverse", f"reverse mode, as asked: {_passes(rows)} {rev}; forward mode would take {cols:,} {fwd}"
    if mode == "forward":
        return "forward", f"forward mode, as asked: {_passes(cols)} {fwd}; reverse mode would take {rows:,} {rev}"
    if cols < rows:
        return "forward", f"forward mode: {_passes(cols)} {fwd} instead of {rows:,} {rev}"
    if rows < cols:
        return "reverse", f"reverse mode: {_passes(rows)} {rev} instead of {cols:,} {fwd}"
    return "reverse", f"reverse mode: {_passes(rows)} {rev}, the same as forward mode {fwd}; a tie goes to reverse mode"


def _passes(n: int) -> str:
    return f"{n:,} pass" + ("" if n == 1 else "es")


# ---- the passes -----------------------------------------------------------------------


def jacobian(
    graph: Graph,
    inputs: Mapping[str, Any] | None = None,
    *,
    of: str | None = None,
    wrt: str,
    mode: Mode | str = "auto",
    on_nonfinite: str = "error",
    progress: Report | None = None,
) -> JacobianResult:
    """d of / d wrt at the given inputs (over the file's defaults), as an array of shape
    of_shape + wrt_shape. `of` defaults to the first output; `wrt` is any float input or node
    (for a node: d of / d node, the node's value taken as the variable). `on_nonfinite` is
    "error" (NumericError naming the node that made the first NaN or Inf) or "keep" (keep them
    in the matrix and list them in `nonfinite`). `progress(what, done, total)` hears of each pass."""
    of = of if of is not None else (graph.outputs[0] if graph.outputs else "")
    check_names(graph, of, wrt)
    if mode not in MODES or on_nonfinite not in ("error", "keep"):
        raise _usage(graph, "CG300", f"mode must be one of {', '.join(MODES)} and on_nonfinite error or keep")
    strict = on_nonfinite == "error"
    # Non-finite numbers are reported by name below, so numpy's warnings would only repeat them.
    with np.errstate(all="ignore"), paused_gc():
        env, bad = _forward(graph, inputs, strict)
        of_shape, wrt_shape = np.shape(env[of]), np.shape(env[wrt])
        rows, cols = math.prod(of_shape), math.prod(wrt_shape)
        if rows * cols > MAX_ENTRIES:
            msg = f"the Jacobian d {of} / d {wrt} would have {rows * cols:,} entries, more than {MAX_ENTRIES:,}"
            raise _usage(graph, "CG300", msg)
        used, reason = choose(mode, rows, cols)
        matrix = _matrix(graph, env, of, wrt, rows, cols, used, strict, progress).reshape(of_shape + wrt_shape)
    count, listed = _bad_entries(matrix, len(of_shape))
    entries = [f"d {label(of, i)} / d {label(wrt, j)}" for i, j in listed]
    return JacobianResult(
        graph.name, graph.file, of, wrt, of_shape, wrt_shape, matrix, used, rows if used == "reverse" else cols,
        reason, nonfinite=tuple(bad + entries), connected=of in reachable(graph, wrt, downstream=True),
        nonfinite_entries=count,
    )


def _forward(graph: Graph, inputs: Mapping[str, Any] | None, strict: bool) -> tuple[dict[str, Array], list[str]]:
    """The one forward pass that every row or column reuses, and the names whose value is
    not finite (strict: an error naming the first)."""
    values = bind_inputs(graph, {k: np.asarray(v) for k, v in (inputs or {}).items()})
    check_shapes(graph, values)
    env = forward(graph, values)
    bad = nonfinite(graph, env)
    if bad and strict:
        raise blame(graph, bad[0], "value", hint=HINT)
    return env, bad


def _matrix(graph: Graph, env: Mapping[str, Array], of: str, wrt: str, rows: int, cols: int, used: str,
            strict: bool, progress: Report | None) -> np.ndarray:
    """J as a flat matrix: in batched passes (cg/eval/jacbatch.py), or a pass per row or column
    where that found a NaN or Inf (those passes name the node that made it) or a graph that cannot
    be batched."""
    from cg.eval import jacbatch

    same = all(np.shape(env[i.name]) == tuple(i.aval.shape) for i in graph.inputs)  # the batch is built on them
    if same and not bad_inputs(graph, env):
        batched = jacbatch.by_rows if used == "reverse" else jacbatch.by_columns
        try:
            found = batched(graph, env, of, wrt, rows, cols, progress)
        except CgError:  # a graph the batch transform refuses: the passes one by one still work
            found = None
        if found is not None:
            return found
    by = _by_rows if used == "reverse" else _by_columns
    return by(graph, env, of, wrt, rows, cols, strict, progress)


def bad_inputs(graph: Graph, env: Mapping[str, Array]) -> bool:
    """Inputs with NaN or Inf: the batched passes would spread them over every row."""
    return any(not np.isfinite(np.asarray(env[i.name], dtype=np.float64)).all() for i in graph.inputs)


def _onehots(shape: tuple[int, ...]) -> Iterator[np.ndarray]:
    """e_0, e_1, ... of `shape`, in C order (one fresh array each: a pass may keep it)."""
    for k in range(math.prod(shape)):
        e = np.zeros(shape)
        e.flat[k] = 1.0
        yield e


def _by_rows(graph: Graph, env: Mapping[str, Array], of: str, wrt: str, rows: int, cols: int,
             strict: bool, progress: Report | None = None) -> np.ndarray:
    """Reverse mode: row i is d of[i] / d wrt, from one backward pass seeded with e_i, over the
    steps between wrt and of only (the other inputs' gradients are nobody's business here)."""
    flat = np.zeros((rows, cols))
    plan = plan_for(graph)
    steps, vals, at = plan.backward_plan(of, frozenset({wrt})), plan.values(env), plan.index[wrt]
    for i, seed in enumerate(_onehots(np.shape(env[of]))):
        if progress is not None:  # a pass is a backward sweep over the graph: a call is nothing beside it
            progress("backward passes (rows)", i, rows)
        slots = plan.backward(steps, vals, seed)
        g = slots[at]
        if g is None:  # of[i] does not depend on wrt: the row stays zero
            continue
        flat[i] = np.reshape(g, -1)
        if strict and not np.isfinite(flat[i]).all():
            # A backward pass runs up the graph: the first bad gradient it made is the last in order.
            grads = {name: slots[s] for name, s in zip(steps.names, steps.slots) if slots[s] is not None}
            on = between(graph, wrt, of)
            name = nonfinite(graph, grads, on)[-1]
            raise blame(graph, name, "gradient", gradient_sender(graph, env, grads, name, on), hint=HINT)
    return flat


def _by_columns(graph: Graph, env: Mapping[str, Array], of: str, wrt: str, rows: int, cols: int,
                strict: bool, progress: Report | None = None) -> np.ndarray:
    """Forward mode: column j is d of / d wrt[j], from one JVP pass with tangent e_j on wrt."""
    flat = np.zeros((rows, cols))
    below = downstream(graph, wrt)
    for j, tangent in enumerate(_onehots(np.shape(env[wrt]))):
        if progress is not None:
            progress("forward-mode passes (columns)", j, cols)
        tans = jvp(below, env, {wrt: tangent})
        t = tans.get(of)
        if t is None:  # of does not depend on wrt: the column stays zero
            continue
        flat[:, j] = np.reshape(t, -1)
        if strict and not np.isfinite(flat[:, j]).all():
            raise blame(graph, nonfinite(graph, tans, between(graph, wrt, of))[0], "tangent", hint=HINT)
    return flat


# ---- non-finite numbers ---------------------------------------------------------------


def _bad_entries(matrix: np.ndarray, n_of: int) -> tuple[int, list[tuple[tuple[int, ...], tuple[int, ...]]]]:
    """How many entries are NaN or Inf, and the (of index, wrt index) of the first few; the
    first n_of axes index `of`. (np.nonzero refuses 0-d arrays: go through flat indices.)"""
    bad = np.flatnonzero(~np.isfinite(matrix))
    listed = []
    for k in bad[:MAX_LISTED]:
        ij = tuple(int(i) for i in np.unravel_index(int(k), matrix.shape))
        listed.append((ij[:n_of], ij[n_of:]))
    return int(bad.size), listed


def label(name: str, index: tuple[int, ...]) -> str:
    """'y' for a scalar, 'y[2]' for a vector entry, 'W[1,0]' for higher ranks."""
    return f"{name}[{','.join(map(str, index))}]" if index else name
