"""`cg check`: the gradient checker for CI. A thin command over cg/check/gradients.py; only click is imported
at start-up, so `cg --help` stays fast."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from cg.cli.common import graph_files, guard, is_tty, load_document, shown, write_output
from cg.cli.options import output_option

if TYPE_CHECKING:
    from cg.check.report import FileReport

EPILOG = """\b
A number passes when |actual - reference| <= atol + rtol * |reference| (plus the rounding
noise of the finite difference). Random values come from numpy's default_rng(--seed).
\b
Exit codes: 0 every check passed, 1 a check failed or a graph is invalid, 2 usage error."""


@click.command(epilog=EPILOG)
@click.argument("paths", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("-i", "--inputs", "inputs", multiple=True, metavar="NAME=VALUE,...",
              help="Input values, as for `cg run`. Inputs with no value and no default are drawn at random.")
@click.option("--rtol", type=click.FloatRange(min=0), default=1e-5, show_default=True, help="Relative tolerance.")
@click.option("--atol", type=click.FloatRange(min=0), default=1e-7, show_default=True, help="Absolute tolerance.")
@click.option("--all", "all_nodes", is_flag=True, help="Check the gradient of every float node, not only the inputs'.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the random inputs, tangents, cotangents and sampled elements.")
@click.option("--per-node", is_flag=True,
              help="First check every node's VJP and JVP at the values of the run; name the first that is wrong.")
@click.option("--order", type=click.IntRange(1, 2), default=1, show_default=True,
              help="2: also check Hessian-vector products (forward mode over the gradient graph, `cg grad`) against"
              " differences of the gradients; with --per-node, each op's second derivative.")
@click.option("--against", metavar="SNAPSHOT.json", type=click.Path(dir_okay=False),
              help="Also compare with a snapshot (one FILE only): a result saved by `cg run --format json`, or"
              " {\"values\": {...}, \"grads\": {...}} for any of the graph's names (`cg schema --snapshot`).")
@click.option("--answers", metavar="ANSWERS.yaml", type=click.Path(dir_okay=False),
              help="Grade a worksheet's answers (from `cg exercise`) instead: each blank right or wrong, with a"
              " hint (one FILE only).")
@click.option("-f", "--format", "fmt", type=click.Choice(["human", "plain", "json", "github"]),
              help="human: tables, coloured on a terminal; plain: the same tables as text; json: the report, with"
              " every failure in `diagnostics` (schema/diagnostics.schema.json); github: a GitHub Actions annotation"
              " per failure. Default: human on a terminal, plain otherwise.")
@output_option
def check(**options: Any) -> None:
    """Check the gradients of graph files (and *.yaml / *.yml in directories): against central
    finite differences, forward against reverse mode, and against each file's `expect` block."""

    guard(_check)(**options)


def _check(paths: tuple[str, ...], inputs: tuple[str, ...], rtol: float, atol: float, all_nodes: bool, seed: int,
           per_node: bool, order: int, against: str | None, answers: str | None, fmt: str | None,
           output: str | None) -> None:
    from cg.check.report import Options
    from cg.cli.values import parse_inputs
    from cg.render.diagnostics import resolve

    files = list(graph_files(paths))
    if answers is not None:
        if len(files) != 1 or against is not None:
            raise click.UsageError("--answers grades one graph file's worksheet: give one FILE, without --against")
        _grade(files[0], answers, parse_inputs(list(inputs)), output)
    if against is not None and len(files) != 1:
        raise click.UsageError("--against compares one graph file with its saved result: give one FILE")
    snapshot = _snapshot(against) if against is not None else None
    given = parse_inputs(list(inputs))
    from cg.progress import progress

    # On a terminal, a bar once the work has taken half a second (cg/progress.py), erased at the end.
    bar = click.get_current_context().with_resource(progress(f"reading {_count(len(files))}", len(files)))
    graphs = []
    for file in files:
        graphs.append(_build(file))
        bar.advance()
    if len(files) > 1:  # with several files, each takes the --inputs it has; every name must be used
        unused = [n for n in given if not any(g.input(n) for g in graphs if not isinstance(g, list))]
        if unused:
            raise click.UsageError(f"--inputs: no graph has an input named {', '.join(map(repr, unused))}")
    opts = Options(rtol=rtol, atol=atol, all_nodes=all_nodes, seed=seed, per_node=per_node, order=order)
    fmt = resolve(fmt, output is None and is_tty(sys.stdout))
    reports: list[FileReport] = []
    texts: list[str] = []
    for done, (file, graph) in enumerate(zip(files, graphs), 1):
        bar.step(f"checking {shown(file)}" + (f" ({done:,} of {len(files):,})" if len(files) > 1 else ""))
        mine = {k: v for k, v in given.items() if len(files) == 1 or graph.input(k)} if given else {}
        report = _invalid(file, graph) if isinstance(graph, list) else _checked(file, graph, mine, opts,
                                                                                 snapshot, bar.hook)
        reports.append(report)
        if fmt != "json":
            with bar.hidden():  # as each file is done, above the bar: a long CI run shows progress
                text = _text(report, fmt, output is None)
                if output is None:
                    click.echo(text, nl=False)
                else:
                    texts.append(text)
    bar.close()
    if fmt == "json":
        from cg.render.checks import reports_json

        write_output(reports_json(reports, opts), output)
    elif output is not None:
        write_output("".join(texts), output)  # once, whole: never a partial file
    bad = sum(not r.ok for r in reports)
    click.echo(f"{len(reports) - bad} passed, {bad} failed ({len(reports)} file{'s' * (len(reports) != 1)})", err=True)
    sys.exit(1 if bad else 0)


def _build(file: str) -> Any:
    """The file's Graph, or the diagnostics that make it invalid."""
    from cg.errors import CgError
    from cg.graph.builder import build

    try:
        return build(load_document(file), library=True)  # a library: nothing to run, but it must be valid
    except CgError as e:
        if e.exit_code == 2:
            raise
        return e.diagnostics


def _invalid(file: str, diags: list[Any], note: str = "invalid graph: not run") -> FileReport:
    from cg.check.report import FileReport

    return FileReport(file, problems=diags, notes=[note])


def _count(files: int) -> str:
    return f"{files:,} file{'s' * (files != 1)}"


def _checked(file: str, graph: Any, given: dict[str, Any], opts: Any, snapshot: Any,
             progress: Any = None) -> FileReport:
    """check_graph, once the check's total budget is known to fit (else the file fails, CG004)."""
    from cg.check.gradients import check_graph
    from cg.cli.budget import require_check
    from cg.errors import GraphError

    try:
        require_check(graph, given, opts, snapshot=snapshot is not None)
    except GraphError as e:
        return _invalid(file, e.diagnostics, "over the total budget: not run")
    return check_graph(graph, given, opts, snapshot, progress)


def _grade(file: str, path: str, given: dict[str, Any], output: str | None) -> None:
    """Grade the answers at the exercise's point (--inputs win over the file's); exit 1 if any is wrong."""
    from cg.check.answers import grade, read_answers
    from cg.errors import CgError, UsageError
    from cg.eval.interp import run
    from cg.eval.steps import steps
    from cg.graph.builder import build
    from cg.parse.yamldoc import load_text
    from cg.render.exercise import grades_text

    where = f"--answers {path}"
    raw = _read_limited(path, where, "the answer file")
    try:
        doc = load_text(raw, where)
    except CgError as e:  # a command-line file, as --against's: a usage error
        raise UsageError(e.diagnostics) from None
    answers = read_answers(doc.data, where)
    graph = build(load_document(file))
    point = {k: v for k, v in answers.inputs.items() if graph.input(k) is not None} | given
    result = run(graph, point, of=answers.of if answers.of in graph.avals else None)
    graded = grade(steps(result), answers)
    if not graded:
        raise UsageError.one("CG300", f"{where}: no answers to grade (values: and grads: are empty)")
    write_output(grades_text(file, result.of or "", graded), output)
    sys.exit(0 if all(g.right for g in graded) else 1)


def _read_limited(path: str, where: str, what: str) -> bytes:
    """A regular file, read up to the file-size limit (CG004 beyond it)."""
    from cg.errors import UsageError
    from cg.files import read_regular
    from cg.limits import Limits, current

    limit = current().max_bytes
    raw = read_regular(path, limit, where, UsageError, what=what)
    if len(raw) > limit:
        raise UsageError.one("CG004", f"{what} is larger than the limit of {limit:,} bytes;"
                             f" {Limits().hint('max_bytes')}", file=where)
    return raw


def _snapshot(path: str) -> Any:
    """The snapshot: a regular file, read up to the file-size limit (a usage error, exit 2, if it cannot
    be read); what it holds is checked by cg/check/snapshot.py (SnapshotError, exit 1)."""
    from cg.check.snapshot import load_snapshot
    from cg.errors import UsageError

    return load_snapshot(path, unreadable=UsageError)


# ---- output: cg/render/checks.py ------------------------------------------------------------------


def _text(report: FileReport, fmt: str, to_stdout: bool) -> str:
    """One file's report in the human (printed here, with rich), plain or github format."""
    from cg.render.checks import plain_report, print_rich_report
    from cg.render.diagnostics import lines

    if fmt == "github":
        return lines(report.problems, "github")
    if fmt == "human" and to_stdout:
        print_rich_report(report)
        return ""
    return plain_report(report)  # human into a file (-o) is the plain text: no colour codes in files
