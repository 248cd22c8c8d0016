"""`cg check`: the gradient checker for CI. A thin command over cg/check/gradients.py; only click is imported
at start-up, so `cg --help` stays fast."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from cg.cli.common import graph_files, guard, is_tty, load_document, shown, write_output
from cg.cli.options import output_option

if TYPE_CHECKING:
    from cg.check.report import FileReport, Options, Row

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
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the random inputs, tangents, cotangents and sampled elements.")
@click.option("--per-node", is_flag=True,
              help="First check every node's VJP and JVP at the values of the run; name the first that is wrong.")
@click.option("--against", metavar="RESULT.json", type=click.Path(dir_okay=False),
              help="Also compare with a result saved by `cg run --format json` (one FILE only).")
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
           per_node: bool, against: str | None, fmt: str | None, output: str | None) -> None:
    from cg.check.report import Options
    from cg.cli.values import parse_inputs
    from cg.render.diagnostics import resolve

    files = list(graph_files(paths))
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
    opts = Options(rtol=rtol, atol=atol, all_nodes=all_nodes, seed=seed, per_node=per_node)
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
        _print_json(reports, opts, output)
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


def _snapshot(path: str) -> Any:
    """The saved result: a regular file, read up to the file-size limit (CG004 beyond it)."""
    from cg.check.against import read_snapshot
    from cg.errors import UsageError
    from cg.files import read_regular
    from cg.limits import Limits, current
    from cg.printable import printable

    limit = current().max_bytes
    raw = read_regular(path, limit, f"--against {path}", UsageError, what="the saved result")
    if len(raw) > limit:
        raise UsageError.one("CG004", f"the saved result is larger than the limit of {limit:,} bytes;"
                             f" {Limits().hint('max_bytes')}", file=f"--against {path}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise click.UsageError(f"--against: cannot read {printable(path)}: not UTF-8 text") from None
    return read_snapshot(text, f"--against {path}")


# ---- output -------------------------------------------------------------------------------------

COLUMNS = ("name", "shape", "max abs err", "max rel err", "checked", "ok", "note")


def _cells(row: Row) -> tuple[str, ...]:
    shape = "-" if row.shape is None else str(list(row.shape))
    rel = "-" if row.rel_err is None else f"{row.rel_err:.1e}"
    checked = str(row.checked) if row.checked == row.size else f"{row.checked}/{row.size}"
    return (row.name, shape, f"{row.abs_err:.1e}", rel, checked, "ok" if row.ok else "FAIL", row.note)


def _text(report: FileReport, fmt: str, to_stdout: bool) -> str:
    """One file's report in the human (printed here, with rich), plain or github format."""
    if fmt == "github":
        from cg.render.diagnostics import lines

        return lines(report.problems, "github")
    if fmt == "human" and to_stdout:
        _print_rich(report)
        return ""
    return _plain(report)  # human into a file (-o) is the plain text: no colour codes in files


def _plain(report: FileReport) -> str:
    """Aligned text, no colour: for pipes, files and CI logs."""
    from cg.printable import printable
    from cg.render.diagnostics import plain
    from cg.render.table import aligned

    lines = [f"{printable(report.file)}: {'ok' if report.ok else 'FAILED'}"]
    if report.rows:
        table = aligned([COLUMNS, *(_cells(r) for r in report.rows)])
        lines += ["  " + line for line in table.splitlines()]
    lines += [f"  note: {printable(n)}" for n in report.notes]
    lines += [plain(d) for d in report.problems]
    return "\n".join(lines) + "\n"


def _print_rich(report: FileReport) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from cg.printable import printable
    from cg.render.diagnostics import human

    console = Console()
    status = ("ok", "green") if report.ok else ("FAILED", "bold red")
    if report.rows:
        table = Table(title=Text.assemble(printable(report.file), ": ", status), title_justify="left")
        for col in COLUMNS:
            left = col in ("name", "shape", "note")
            table.add_column(col, justify="left" if left else "right", no_wrap=col != "note")
        for row in report.rows:
            table.add_row(*(Text(c, style="" if row.ok else "red") for c in _cells(row)))
        console.print(table)
    else:
        console.print(Text.assemble(printable(report.file), ": ", status))
    for note in report.notes:
        console.print(Text("  note: " + printable(note), style="dim"))
    for d in report.problems:
        console.print(human(d), soft_wrap=True)


def _print_json(reports: list[FileReport], opts: Options, output: str | None) -> None:
    import json
    import math
    from dataclasses import asdict


    def finite(x: Any) -> Any:  # strict JSON has no NaN: a failed comparison's error is null
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: finite(v) for k, v in x.items()}
        return [finite(v) for v in x] if isinstance(x, list) else x

    from cg.render.diagnostics import to_dict

    doc = {"ok": all(r.ok for r in reports), "options": asdict(opts), "files": [r.to_dict() for r in reports],
           "diagnostics": [to_dict(d) for r in reports for d in r.problems]}  # as `cg validate --format json`
    write_output(json.dumps(finite(doc), indent=2) + "\n", output)
