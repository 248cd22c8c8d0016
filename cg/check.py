"""Gradient checking, the library behind `cg check`.

For one graph: the gradients of the run against central finite differences of the differentiated
output, forward mode against reverse mode, optionally every node's local rules at the values of
the run (`per_node`), the file's `expect` block, and a result saved by `cg run --format json`.

A number passes when |actual - reference| <= atol + rtol * |reference| + noise (numpy's
`allclose` rule, the reference on the right), where noise is what rounding alone can do to a
finite difference: NOISE ulps of |f| divided by the step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from cg.composite import hidden, shown_nodes
from cg.errors import CgError, Diagnostic, NumericError, UsageError
from cg.interp import Result, jvp, reachable, run
from cg.ir import Graph, Node
from cg.ops import Array
from cg.plan import Report

# Central differences err by ~h^2 (truncation) plus ~eps/h (rounding); h = eps^(1/3) balances them.
# The step is relative, h * max(1, |x|), so large values move by an amount they can represent.
EPS = float(np.finfo(np.float64).eps)
STEP = EPS ** (1 / 3)
NOISE = 100.0  # f goes through many roundings: allow this many ulps of |f| in each difference
MAX_ELEMENTS = 200  # per input, node or argument; bigger ones are sampled at random


@dataclass(frozen=True)
class Options:
    rtol: float = 1e-5
    atol: float = 1e-7
    all_nodes: bool = False  # the gradient of every float node, not only of the inputs
    seed: int = 0  # random inputs, tangents, cotangents and sampled elements
    per_node: bool = False
    max_elements: int = MAX_ELEMENTS


@dataclass(frozen=True)
class Row:
    """One compared quantity and its worst error over the elements compared."""

    name: str
    shape: tuple[int, ...] | None  # None for the aggregate rows (forward mode, expect, snapshot)
    abs_err: float
    rel_err: float | None  # None when every reference is 0
    ok: bool
    checked: int  # elements compared
    size: int  # elements in all
    note: str = ""


@dataclass
class FileReport:
    file: str
    rows: list[Row] = field(default_factory=list)
    problems: list[Diagnostic] = field(default_factory=list)  # each failure, with its position
    notes: list[str] = field(default_factory=list)  # what the reader should know (random inputs, kinks)

    @property
    def ok(self) -> bool:
        return not self.problems and all(r.ok for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        problems = [{"code": d.code, "message": d.message, "line": d.pos.line if d.pos else None,
                     "col": d.pos.col if d.pos else None, "node": d.node, "text": str(d)} for d in self.problems]
        rows = [asdict(r) | {"shape": None if r.shape is None else list(r.shape)} for r in self.rows]
        return {"file": self.file, "ok": self.ok, "rows": rows, "problems": problems, "notes": self.notes}


# ---- finite differences -------------------------------------------------------------------------


@dataclass(frozen=True)
class Differences:
    """Finite-difference derivatives at some elements (axis 0): central, one-sided, rounding noise."""

    central: np.ndarray
    left: np.ndarray
    right: np.ndarray
    noise: np.ndarray

    def take(self, rows: np.ndarray, other: Differences) -> Differences:
        """These differences with `rows` replaced by `other`'s (which has only those rows)."""
        out = [np.array(a) for a in (self.central, self.left, self.right, self.noise)]
        for a, b in zip(out, (other.central, other.left, other.right, other.noise)):
            a[rows] = b
        return Differences(*out)


def differences(f: Callable[[np.ndarray], Array], x: np.ndarray, index: np.ndarray, h: np.ndarray) -> Differences:
    """d f / d x.flat[k] for each k in index, with step h[k]; f of any shape (results stack on axis 0)."""
    f0 = np.asarray(f(x), dtype=np.float64)
    out: list[list[np.ndarray]] = [[], [], [], []]
    for k, step in zip(index, h):
        plus, minus = x.copy(), x.copy()
        plus.flat[k] += step
        minus.flat[k] -= step
        hp, hm = plus.flat[k] - x.flat[k], x.flat[k] - minus.flat[k]  # the steps as represented
        fp, fm = np.asarray(f(plus), dtype=np.float64), np.asarray(f(minus), dtype=np.float64)
        noise = NOISE * EPS * np.maximum(np.maximum(np.abs(fp), np.abs(fm)), np.abs(f0)) / step
        for acc, v in zip(out, ((fp - fm) / (hp + hm), (f0 - fm) / hm, (fp - f0) / hp, noise)):
            acc.append(v)
    return Differences(*(np.array(v, dtype=np.float64).reshape(len(index), *f0.shape) for v in out))


@dataclass(frozen=True)
class Compared:
    """Derivatives from a rule against central differences, per element."""

    central: np.ndarray
    err: np.ndarray
    allowed: np.ndarray
    skipped: np.ndarray  # at a kink, or where f is not defined on both sides: cannot be checked


def check_derivative(actual: np.ndarray, f: Callable[[np.ndarray], Array], x: Array, index: np.ndarray,
                     opts: Options) -> Compared:
    """The rule's d f / d x.flat[k] (`actual`, stacked on axis 0) against central differences.

    The step is STEP * max(1, |x|). Where that fails at a small |x| (log at 1e-5: the step would be
    as large as x), STEP * |x| is tried too and the better kept. Where it still fails, the element
    is skipped as a kink (relu at 0, |x| at 0, a near-tie of max) if its one-sided derivatives
    differ by a gap that does not shrink with the step and the rule's value lies between them.
    Elements where f is not finite on both sides cannot be checked and are skipped too."""
    x = np.array(x, dtype=np.float64)
    ax = np.abs(x.reshape(-1)[index])
    h = STEP * np.maximum(ax, 1.0)
    d = differences(f, x, index, h)
    for r in np.flatnonzero(_bad_rows(actual, d, opts) & (ax > 0) & (ax < 1)):
        small = differences(f, x, index[r : r + 1], STEP * ax[r : r + 1])
        if np.max(_error(actual[r], small.central[0])) < np.max(_error(actual[r], d.central[r])):
            d, h[r] = d.take(np.array([r]), small), STEP * ax[r]
    allowed = opts.atol + opts.rtol * np.abs(d.central) + d.noise
    err = _error(actual, d.central)
    skipped = ~np.isfinite(d.central)
    rows = _bad_rows(actual, d, opts)
    if rows.any():
        quarter = differences(f, x, index[rows], h[rows] / 4)
        gap, gap4 = np.abs(d.left[rows] - d.right[rows]), np.abs(quarter.left - quarter.right)
        lo, hi = np.minimum(d.left[rows], d.right[rows]), np.maximum(d.left[rows], d.right[rows])
        loose = 1e-6 + 1e-3 * np.maximum(np.abs(lo), np.abs(hi))
        between = (actual[rows] >= lo - loose) & (actual[rows] <= hi + loose)
        skipped[rows] |= (err[rows] > allowed[rows]) & (gap > allowed[rows]) & (gap4 > 0.5 * gap) & between
    return Compared(d.central, np.where(skipped, 0.0, err), allowed, skipped)


def _error(actual: np.ndarray, central: np.ndarray) -> np.ndarray:
    return np.asarray(np.nan_to_num(np.abs(actual - central), nan=np.inf))


def _bad_rows(actual: np.ndarray, d: Differences, opts: Options) -> np.ndarray:
    bad = _error(actual, d.central) > opts.atol + opts.rtol * np.abs(d.central) + d.noise
    return np.asarray(bad.reshape(len(bad), -1).any(axis=1))


def _elements(size: int, opts: Options, rng: np.random.Generator) -> np.ndarray:
    if size <= opts.max_elements:
        return np.arange(size)
    return np.sort(rng.choice(size, opts.max_elements, replace=False))


def _row(name: str, shape: tuple[int, ...] | None, err: np.ndarray, ref: np.ndarray, allowed: np.ndarray,
         size: int, note: str = "") -> Row:
    nonzero = np.abs(ref) > 0
    rel = float(np.max(err[nonzero] / np.abs(ref[nonzero]))) if nonzero.any() else None
    ok = bool(np.all(err <= allowed))  # NaN fails
    return Row(name, shape, float(np.max(err, initial=0.0)), rel, ok, int(err.size), size, note)


# ---- the point ----------------------------------------------------------------------------------


def _index_range(graph: Graph, name: str) -> int | None:
    """For an int input used only as the index of `index` nodes: the size of the axis it picks from."""
    sizes = []
    for node in graph.nodes:
        uses = [k for k, a in enumerate(node.args) if a == name]
        if uses and (node.op.name != "index" or uses != [1]):
            return None
        if uses:
            v = node.args[0]
            sizes.append(graph.avals[v].shape[-1] if isinstance(v, str) else v.value.shape[-1])
    return min(sizes) if sizes else None


def draw_inputs(graph: Graph, given: Mapping[str, Any], rng: np.random.Generator,
                *, positive: bool = False) -> tuple[dict[str, Any], list[str]]:
    """Values for the inputs that have neither a given nor a default value: normal floats (uniform
    in [0.5, 2] if `positive`) and, for an integer used as an index, integers in range. Returns
    the values and the names drawn; CgError CG302 for an integer whose range is unknown."""
    values, drawn = dict(given), []
    for inp in graph.inputs:
        if inp.name in given or inp.default is not None:
            continue
        shape = inp.aval.shape
        if inp.aval.dtype == "float":
            values[inp.name] = rng.uniform(0.5, 2.0, size=shape) if positive else rng.normal(size=shape)
        elif (n := _index_range(graph, inp.name)) is not None:
            values[inp.name] = rng.integers(0, n, size=shape)
        else:
            msg = ("an integer input with no value, used other than as an index, so cg cannot draw it "
                   "at random: give it with --inputs or a default")
            raise CgError.one("CG302", msg, file=graph.file, pos=inp.pos, node=inp.name)
        drawn.append(inp.name)
    return values, drawn


def _run_at(graph: Graph, given: Mapping[str, Any], rng: np.random.Generator,
            report: FileReport, progress: Report | None = None) -> tuple[Result, np.ndarray]:
    """The run whose gradients are checked, and the cotangent of its output: 1 for a scalar, a
    random r for a tensor (then <r, output> is what is differentiated)."""
    of = graph.outputs[0]
    values, drawn = draw_inputs(graph, given, rng)
    shape = graph.avals[of].shape
    seed = None if math.prod(shape) == 1 else rng.normal(size=shape)
    try:
        result = run(graph, values, seed=seed, progress=progress)
    except NumericError:
        if not any(graph.avals[n].dtype == "float" for n in drawn):
            raise
        # Normal values leave the domain of log, sqrt, pow...: try positive ones, once.
        values, drawn = draw_inputs(graph, given, rng, positive=True)
        result = run(graph, values, seed=seed)
        report.notes.append("random inputs drawn from [0.5, 2]: normal ones gave NaN or Inf")
    if drawn:
        report.notes.append(f"random inputs (--seed to change): {', '.join(drawn)}")
    if seed is not None:
        report.notes.append(f"output '{of}' has shape {list(shape)}: checked <r, {of}> for a random r")
    return result, np.ones(()) if seed is None else seed


# ---- end to end ---------------------------------------------------------------------------------


def _args(node: Node, env: Mapping[str, Array]) -> list[np.ndarray]:
    return [np.asarray(env[a] if isinstance(a, str) else a.value) for a in node.args]


def output_of(graph: Graph, env: Mapping[str, Array], of: str, seed: np.ndarray,
              name: str) -> Callable[[np.ndarray], float]:
    """<seed, of> as a function of the value of one input or node, with everything else that does
    not depend on it fixed at `env`."""
    after = reachable(graph, name, downstream=True)
    nodes = [n for n in graph.nodes if n.id in after and n.id != name]

    def f(value: np.ndarray) -> float:
        local = dict(env)
        local[name] = value
        for node in nodes:
            local[node.id] = node.op.forward(*_args(node, local), **node.attrs)
        return float(np.sum(seed * local[of]))

    return f


def gradient_rows(graph: Graph, result: Result, seed: np.ndarray, opts: Options,
                  rng: np.random.Generator, progress: Report | None = None) -> list[Row]:
    """Each float input's gradient (with all_nodes, each float node's too) against central differences."""
    assert result.of is not None
    names = [i.name for i in graph.inputs] + ([n.id for n in graph.nodes] if opts.all_nodes else [])
    rows = []
    for k, name in enumerate(names):
        grad = result.grads.get(name)
        if grad is None:
            continue  # integers have no gradient
        value = result.values[name]
        index = _elements(value.size, opts, rng)
        actual = np.asarray(grad, dtype=np.float64).reshape(-1)[index]
        f = output_of(graph, result.values, result.of, seed, name)
        if progress is not None:
            what = f"gradient of '{name}'" + (f" ({k + 1:,} of {len(names):,})" if len(names) > 1 else "")
            f = _counted(f, progress, what, 2 * len(index) + 1)  # f(x), then f(x ± h) per element
        c = check_derivative(actual, f, value, index, opts)
        notes = [f"{len(index)} random elements of {value.size}"] if value.size > len(index) else []
        notes += [f"{int(c.skipped.sum())} not differentiable there, skipped"] if c.skipped.any() else []
        keep = ~c.skipped
        rows.append(_row(name, value.shape, c.err[keep], c.central[keep], c.allowed[keep], value.size,
                         ", ".join(notes)))
    return rows


def _counted(f: Callable[[np.ndarray], float], progress: Report, what: str,
             total: int) -> Callable[[np.ndarray], float]:
    """f, telling progress of each call: each is a run of the graph below one name, so a
    check of a big graph moves the bar as it goes (retries with smaller steps go past total)."""
    calls = 0

    def counted(x: np.ndarray) -> float:
        nonlocal calls
        calls += 1
        progress(what, min(calls, total), total)
        return f(x)

    return counted


def forward_row(graph: Graph, result: Result, seed: np.ndarray, opts: Options, rng: np.random.Generator) -> Row:
    """Forward mode against reverse mode: <seed, J t> for random tangents t, against sum <grad, t>."""
    assert result.of is not None
    tangents = {i.name: rng.normal(size=result.values[i.name].shape) for i in graph.inputs
                if i.aval.dtype == "float"}  # fmt: skip
    out = jvp(graph, result.values, tangents).get(result.of)
    forward = 0.0 if out is None else float(np.sum(seed * out))
    terms = [np.asarray(result.grads[n]) * t for n, t in tangents.items()]
    reverse = float(sum(np.sum(t) for t in terms))
    scale = sum(float(np.sum(np.abs(t))) for t in terms)  # rounding grows with the terms, not their sum
    allowed = opts.atol + opts.rtol * abs(reverse) + NOISE * EPS * scale
    err = np.array([abs(forward - reverse)])
    return _row("(forward mode)", None, err, np.array([reverse]), np.array([allowed]), 1,
                "jvp(t) vs <grad, t>, random t")


# ---- per node -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeCheck:
    """A node's local rules at its arguments' values: what disagrees (None if nothing)."""

    problem: str | None
    kinks: int  # elements skipped because the op has a kink there


def check_node(node: Node, env: Mapping[str, Array], opts: Options, rng: np.random.Generator) -> NodeCheck:
    """The node's VJP and JVP against central differences and against each other, at the values its
    arguments have in the run (cg.numcheck.check_op at a real point), for the arguments that
    receive a gradient: float inputs and nodes, not constants."""
    op, xs = node.op, _args(node, env)
    diff = [k for k, a in enumerate(node.args)
            if isinstance(a, str) and k not in op.int_args and xs[k].dtype.kind == "f"]  # fmt: skip
    if not diff or not all(np.isfinite(x).all() for x in xs):
        return NodeCheck(None, 0)

    def at(k: int, v: np.ndarray) -> list[np.ndarray]:
        return [v if j == k else x for j, x in enumerate(xs)]

    y = np.asarray(op.forward(*xs, **node.attrs), dtype=np.float64)
    g = rng.normal(size=y.shape)
    cts = op.vjp(g, y, xs, **node.attrs)
    kinks = 0
    for k in diff:
        index = _elements(xs[k].size, opts, rng)
        actual = np.asarray(cts[k], dtype=np.float64).reshape(-1)[index]
        c = check_derivative(actual, lambda v, k=k: np.sum(g * op.forward(*at(k, v), **node.attrs)),  # type: ignore[misc]
                             xs[k], index, opts)
        kinks += int(c.skipped.sum())
        if not np.all(c.err <= c.allowed):
            return NodeCheck(f"VJP disagrees with finite differences ({_worst(actual, c)}, input {k + 1} "
                             f"'{node.args[k]}')", kinks)
    # Tangents scaled by |x| (1 where x is 0): a step along them is relative for every element, so
    # an entry of 1e-5 next to one of 1 (a softmax tail) is not moved by more than its own size.
    ts = [rng.normal(size=x.shape) * np.where(x == 0, 1.0, np.abs(x)) if k in diff else None
          for k, x in enumerate(xs)]  # fmt: skip
    tangent = np.asarray(op.jvp(ts, y, xs, **node.attrs), dtype=np.float64).reshape(1, -1)

    def along(s: np.ndarray) -> Array:
        return np.reshape(op.forward(*[x if t is None else x + s * t for x, t in zip(xs, ts)], **node.attrs), -1)

    c = check_derivative(tangent, along, np.zeros(()), np.zeros(1, dtype=np.int64), opts)
    kinks += int(c.skipped.sum())
    if not np.all(c.err <= c.allowed):
        return NodeCheck(f"JVP disagrees with finite differences ({_worst(tangent, c)})", kinks)
    lhs = float(np.sum(g.reshape(-1) * tangent))
    terms = [np.asarray(cts[k]) * ts[k] for k in diff]
    rhs = float(sum(np.sum(t) for t in terms))
    size = sum(float(np.sum(np.abs(t))) for t in terms) + float(np.sum(np.abs(g.reshape(-1) * tangent)))
    # Near the top of float64 both sides can overflow to the same infinity: equal, not a disagreement.
    if lhs != rhs and not abs(lhs - rhs) <= opts.atol + opts.rtol * abs(rhs) + NOISE * EPS * size:
        return NodeCheck(f"VJP and JVP disagree (<g, J t> = {lhs:.6g}, <J^T g, t> = {rhs:.6g})", kinks)
    return NodeCheck(None, kinks)


def _worst(actual: np.ndarray, c: Compared) -> str:
    k = int(np.argmax(c.err - c.allowed))
    a, fd = actual.reshape(-1)[k], c.central.reshape(-1)[k]
    return f"max error {float(np.max(c.err)):.3g}; the rule gives {a:.6g}, finite differences {fd:.6g}"


def first_bad_node(graph: Graph, env: Mapping[str, Array], opts: Options, rng: np.random.Generator,
                   report: FileReport, progress: Report | None = None) -> Diagnostic | None:
    """The first node, in topological order, whose local rules disagree at the values of the run."""
    kinked = []
    for k, node in enumerate(graph.nodes):
        if progress is not None:  # each node's check runs its op several times: a call is cheap beside it
            progress("per node", k, len(graph.nodes))
        if graph.avals[node.id].dtype != "float":
            continue
        found = check_node(node, env, opts, rng)
        if found.kinks:
            kinked.append(f"{node.id} ({found.kinks})")
        if found.problem:
            return Diagnostic("CG400", f"op '{node.op.name}': {found.problem}", graph.file, node.pos, node.id)
    if kinked:
        report.notes.append("per node: elements skipped (at a kink, or where finite differences overflow): "
                            + ", ".join(kinked))
    return None


# ---- the whole check of one file ----------------------------------------------------------------


def check_graph(graph: Graph, given: Mapping[str, Any] | None = None, opts: Options | None = None,
                snapshot: Snapshot | None = None, progress: Report | None = None) -> FileReport:
    """Every check of one graph. What fails is in the report; a UsageError (a command-line value
    that does not fit the graph) is raised. `progress(what, done, total)` hears how far the run,
    the per-node check and each gradient's finite differences are (the CLI's bar)."""
    opts = opts or Options()
    rng = np.random.default_rng(opts.seed)  # one per file: the results do not depend on the file order
    report = FileReport(graph.file)
    if not graph.outputs:  # a library of functions: checked where its functions are called
        report.notes.append("a library of functions: nothing to run")
        return report
    with np.errstate(all="ignore"):  # NaN and Inf show up as failed comparisons
        try:
            _check_gradients(graph, given or {}, opts, rng, report, progress)
        except UsageError:
            raise
        except CgError as e:
            report.problems.extend(e.diagnostics)
        if graph.expect is not None:
            report.rows.append(check_expect(graph, report))
        if snapshot is not None:
            report.rows.append(check_snapshot(graph, given or {}, snapshot, opts, report))
    return report


def _check_gradients(graph: Graph, given: Mapping[str, Any], opts: Options, rng: np.random.Generator,
                     report: FileReport, progress: Report | None = None) -> None:
    of = graph.outputs[0]
    if graph.avals[of].dtype != "float":
        report.notes.append(f"output '{of}' is an integer: no gradient to check")
        return
    result, seed = _run_at(graph, given, rng, report, progress)
    if opts.per_node:
        bad = first_bad_node(graph, result.values, opts, rng, report, progress)
        if bad is not None:
            report.problems.append(bad)
    rows = gradient_rows(graph, result, seed, opts, rng, progress)
    if not rows:
        report.notes.append("no float inputs: no gradient to check")
        return
    rows.append(forward_row(graph, result, seed, opts, rng))
    for row in rows:
        if not row.ok:
            where = graph.input(row.name) or graph.node(row.name)
            what = ("forward mode (jvp) disagrees with reverse mode" if where is None
                    else "gradient disagrees with finite differences")
            report.problems.append(Diagnostic("CG403", f"{what} (max error {row.abs_err:.3g})", graph.file,
                                              where.pos if where else None, row.name if where else None))
    report.rows.extend(rows)


# ---- expect and snapshots -----------------------------------------------------------------------


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
    return _row("(expect)", None, flat[0], flat[1], flat[2], flat[0].size, note)


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
    row = _row("(snapshot)", None, flat[0], flat[1], flat[2], flat[0].size, f"{len(snap.nodes)} ids")
    return replace(row, ok=False) if len(report.problems) > problems else row  # a missing id fails the row too


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
