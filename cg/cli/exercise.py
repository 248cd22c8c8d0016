"""`cg exercise`: a worksheet for FILE at some inputs, with the values and/or gradients blanked,
and its answer template; `cg check FILE --answers ANSWERS` grades what a student filled in.

Only click is imported here: numpy and the rest load when the command runs."""

from __future__ import annotations

from pathlib import Path

import click

from cg.cli.common import guard, load_document, write_output
from cg.cli.options import inputs_option, precision_option

EPILOG = """\b
Exit codes: 0 ok, 1 invalid graph or failed run, 2 usage error."""


@click.command(epilog=EPILOG)
@click.argument("file", type=click.Path(dir_okay=False))
@inputs_option
@click.option("--of", metavar="NODE", help="The output to differentiate (default: the first output).")
@click.option("--blank", type=click.Choice(["grads", "values", "both"]), default="grads", show_default=True,
              help="What the student fills in.")
@click.option("-o", "--output", metavar="SHEET.md", required=True, help="The worksheet (Markdown).")
@click.option("--answers", "answers_path", metavar="ANSWERS.yaml",
              help="The answer template (default: beside the sheet, SHEET.answers.yaml).")
@precision_option
def exercise(file: str, inputs: tuple[str, ...], of: str | None, blank: str, output: str, answers_path: str | None,
             precision: int) -> None:
    """Write a worksheet for FILE: the figure without numbers, the inputs, and a table with the
    values or gradients blanked, with an answer template that `cg check --answers` grades."""
    guard(_exercise)(file, inputs, of, blank, output, answers_path, precision)


def _exercise(file: str, inputs: tuple[str, ...], of: str | None, blank: str, output: str, answers_path: str | None,
              precision: int) -> None:
    from cg.cli.values import parse_inputs
    from cg.eval.interp import run
    from cg.graph.builder import build
    from cg.render.exercise import sheet, template

    graph = build(load_document(file))
    result = run(graph, parse_inputs(list(inputs)), of=of)
    answers = answers_path or str(Path(output).with_suffix("")) + ".answers.yaml"
    if Path(answers).resolve() == Path(output).resolve():
        raise click.UsageError("the sheet and the answer template must be two files")
    command = f"cg check {file} --answers {Path(answers).name}"
    write_output(sheet(result, blank, command, precision), output)
    write_output(template(result, blank, file), answers)
    click.echo(f"wrote {output} and {answers}", err=True)
