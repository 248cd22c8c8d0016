"""Gradient checking, the library behind `cg check`.

For one graph: the gradients of the run against central finite differences of the differentiated
output, forward mode against reverse mode, optionally every node's local rules at the values of
the run (`per_node`), then the file's `expect` block and a saved result (cg/check/against.py).
Every comparison with finite differences is cg/check/fd.py's, as in the op tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from cg.check.against import check_expect, check_snapshot
from cg.check.fd import EPS, NOISE, check_derivative, check_rules, elements
from cg.check.report import FileReport, Options, Row, row
from cg.check.snapshot import Snapshot
from cg.errors import CgError, Diagnostic, NumericError, UsageError
from cg.eval.interp import Result, jvp, require_name, run
from cg.eval.plan import Report, plan_for
from cg.graph.ir import Graph, Node
from cg.ops import Array

# ---- the point ----------------------------------------------------------------------------------


def _index_range(graph: Graph, name: str) -> int | None:
    """For an int input used only as the index of `index` nodes (the size of the axis it picks
    from) and of `onehot` nodes (their n): the smallest of those sizes."""
    sizes = []
    for node in graph.nodes:
        uses = [k for k, a in enumerate(node.args) if a == name]
        if not uses:
            continue
        if node.op.name == "onehot" and uses == [0]:
            sizes.append(int(node.attrs["n"]))
        elif node.op.name == "index" and uses == [1]:
            v = node.args[0]
            sizes.append(graph.avals[v].shape[-1] if isinstance(v, str) else v.value.shape[-1])
        else:
            return None
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


def _run_at(graph: Graph, given: Mapping[str, Any], of: str, rng: np.random.Generator,
            report: FileReport, progress: Report | None = None) -> tuple[Result, np.ndarray]:
    """The run whose gradients are checked, and the cotangent of its output `of`: 1 for a scalar, a
    random r for a tensor (then <r, of> is what is differentiated)."""
    values, drawn = draw_inputs(graph, given, rng)
    shape = graph.avals[of].shape
    seed = None if math.prod(shape) == 1 else rng.normal(size=shape)
    try:
        result = run(graph, values, of=of, seed=seed, progress=progress)
    except NumericError:
        if not any(graph.avals[n].dtype == "float" for n in drawn):
            raise
        # Normal values leave the domain of log, sqrt, pow...: try positive ones, once.
        values, drawn = draw_inputs(graph, given, rng, positive=True)
        result = run(graph, values, of=of, seed=seed)
        report.notes.append("random inputs drawn from [0.5, 2]: normal ones gave NaN or Inf")
    if drawn:
        report.notes.append(f"random inputs (--seed to change): {', '.join(drawn)}")
    if seed is not None:
        report.notes.append(f"output '{of}' has shape {list(shape)}: checked <r, {of}> for a random r")
    return result, np.ones(()) if seed is None else seed


# ---- end to end ---------------------------------------------------------------------------------


def output_of(graph: Graph, env: Mapping[str, Array], of: str, seed: np.ndarray,
              name: str) -> Callable[[np.ndarray], float]:
    """<seed, of> as a function of the value of one input or node, with everything else that does
    not depend on it fixed at `env`: the plan's own forward steps, only those below `name`."""
    plan = plan_for(graph)
    vals, slot, top = plan.values(env), plan.index[name], plan.index[of]
    below = plan.steps_below(name)

    def f(value: np.ndarray) -> float:
        local = list(vals)
        local[slot] = value
        plan.run_steps(local, below)
        return float(np.sum(seed * local[top]))

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
        index = elements(value.size, opts, rng)
        actual = np.asarray(grad, dtype=np.float64).reshape(-1)[index]
        f = output_of(graph, result.values, result.of, seed, name)
        if progress is not None:
            what = f"gradient of '{name}'" + (f" ({k + 1:,} of {len(names):,})" if len(names) > 1 else "")
            f = _counted(f, progress, what, 2 * len(index) + 1)  # f(x), then f(x ± h) per element
        c = check_derivative(actual, f, value, index, opts)
        notes = [f"{len(index)} random elements of {value.size}"] if value.size > len(index) else []
        notes += [f"{int(c.skipped.sum())} not differentiable there, skipped"] if c.skipped.any() else []
        keep = ~c.skipped
        rows.append(row(name, value.shape, c.err[keep], c.central[keep], c.allowed[keep], value.size,
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
    return row("(forward mode)", None, err, np.array([reverse]), np.array([allowed]), 1,
                "jvp(t) vs <grad, t>, random t")


# ---- per node -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeCheck:
    """A node's local rules at its arguments' values: what disagrees (None if nothing)."""

    problem: str | None
    kinks: int  # elements skipped because the op has a kink there


def check_node(node: Node, env: Mapping[str, Array], opts: Options, rng: np.random.Generator) -> NodeCheck:
    """The node's VJP and JVP against central differences and against each other, at the values its
    arguments have in the run (cg/check/fd.py's check_rules, as the op tests use it at sampled
    points), for the arguments that receive a gradient: float inputs and nodes, not constants."""
    op, xs = node.op, [np.asarray(x) for x in node.arg_values(env)]
    diff = [k for k, a in enumerate(node.args)
            if isinstance(a, str) and k not in op.int_args and xs[k].dtype.kind == "f"]  # fmt: skip
    if not diff or not all(np.isfinite(x).all() for x in xs):
        return NodeCheck(None, 0)
    names = [a if isinstance(a, str) else "" for a in node.args]
    found = check_rules(op, xs, dict(node.attrs), diff, opts, rng, names)
    return NodeCheck(found.problem, found.kinks)


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
                snapshot: Snapshot | None = None, progress: Report | None = None, *,
                of: str | None = None) -> FileReport:
    """Every check of one graph. What fails is in the report; a UsageError (a command-line value
    that does not fit the graph) is raised. `progress(what, done, total)` hears how far the run,
    the per-node check and each gradient's finite differences are (the CLI's bar). `of` is the
    output differentiated (default: the first; the expect block names its own)."""
    opts = opts or Options()
    rng = np.random.default_rng(opts.seed)  # one per file: the results do not depend on the file order
    report = FileReport(graph.file)
    if not graph.outputs:  # a library of functions: checked where its functions are called
        report.notes.append("a library of functions: nothing to run")
        return report
    with np.errstate(all="ignore"):  # NaN and Inf show up as failed comparisons
        try:
            _check_gradients(graph, given or {}, of or graph.outputs[0], opts, rng, report, progress)
        except UsageError:
            raise
        except CgError as e:
            report.problems.extend(e.diagnostics)
        if graph.expect is not None:
            report.rows.append(check_expect(graph, report))
        if snapshot is not None:
            report.rows.append(check_snapshot(graph, given or {}, snapshot, opts, report, of))
    return report


def _check_gradients(graph: Graph, given: Mapping[str, Any], of: str, opts: Options, rng: np.random.Generator,
                     report: FileReport, progress: Report | None = None) -> None:
    require_name(graph, of, "of=")
    if graph.avals[of].dtype != "float":
        report.notes.append(f"output '{of}' is an integer: no gradient to check")
        return
    result, seed = _run_at(graph, given, of, rng, report, progress)
    if opts.per_node:
        bad = first_bad_node(graph, result.values, opts, rng, report, progress)
        if bad is not None:
            report.problems.append(bad)
    rows = gradient_rows(graph, result, seed, opts, rng, progress)
    if not rows:
        report.notes.append("no float inputs: no gradient to check")
        return
    rows.append(forward_row(graph, result, seed, opts, rng))
    if opts.order == 2:
        from cg.check.second import first_bad_second, hvp_rows

        if opts.per_node and (bad := first_bad_second(graph, result.values, opts, rng)) is not None:
            report.problems.append(bad)
        rows += hvp_rows(graph, result, seed, opts, rng, report)
    for done in rows:
        if not done.ok:
            where = graph.input(done.name) or graph.node(done.name)
            hessian = done.name.endswith(" (H·v)")
            where = graph.input(done.name.removesuffix(" (H·v)")) if hessian else where
            what = ("Hessian-vector product disagrees with differences of the gradient" if hessian
                    else "forward mode (jvp) disagrees with reverse mode" if where is None
                    else "gradient disagrees with finite differences")
            report.problems.append(Diagnostic("CG403", f"{what} (max error {done.abs_err:.3g})", graph.file,
                                              where.pos if where else None,
                                              done.name.removesuffix(" (H·v)") if where else None))
    report.rows.extend(rows)


