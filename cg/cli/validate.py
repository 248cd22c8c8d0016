"""`cg validate`: graph files checked without running them, diagnostics in four formats."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from cg.cli.common import EXIT_CODES, graph_files, guard, is_tty, load_document, shown

if TYPE_CHECKING:
    from cg.errors import Diagnostic

FORMAT_HELP = ("human: coloured, for a terminal; plain: file:line:col: message [CODE] lines; json: a list of "
               "diagnostics (schema/diagnostics.schema.json); github: GitHub Actions annotations. "
               "Default: human on a terminal, plain otherwise.")


@click.command(epilog=EXIT_CODES)
@click.argument("paths", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("-f", "--format", "fmt", type=click.Choice(["human", "plain", "json", "github"]), help=FORMAT_HELP)
@guard
def validate(paths: tuple[str, ...], fmt: str | None) -> None:
    """Check graph files (and *.yaml / *.yml files in directories) without running them."""
    from cg.errors import CgError
    from cg.graph.builder import build
    from cg.render.diagnostics import resolve, to_json

    files = list(graph_files(paths))
    fmt = resolve(fmt, is_tty(sys.stdout))
    bad = 0
    found: list[Diagnostic] = []
    for file in files:
        diags: list[Diagnostic] = []
        try:
            build(load_document(file), library=True)  # a library of functions is valid on its own
        except CgError as e:
            if e.exit_code == 2:  # not the file's fault (e.g. no such file): a usage error
                raise
            diags = e.diagnostics
        bad += bool(diags)
        found += diags
        if fmt != "json":
            _report(file, diags, fmt)  # as each file is done: a long CI run shows progress
    if fmt == "json":  # one document, whole, at the end
        click.echo(to_json(found), nl=False)
    summary = f"{len(files) - bad} valid, {bad} invalid ({len(files)} file{'s' * (len(files) != 1)})"
    click.echo(summary, err=True)
    sys.exit(1 if bad else 0)


def _report(file: str, diags: list[Diagnostic], fmt: str) -> None:
    """One file's diagnostics in the plain, github or human format (json is written whole)."""
    from cg.render.diagnostics import lines

    if fmt != "human":
        click.echo(lines(diags, fmt), nl=False)
        return
    from rich.console import Console
    from rich.text import Text

    from cg.render.diagnostics import human

    console = Console(soft_wrap=True)  # never break a file:line:col line: editors and people copy it whole
    if not diags:
        console.print(Text.assemble(("ok ", "green"), shown(file)))
    for d in diags:
        console.print(human(d))
