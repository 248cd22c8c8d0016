"""`cg step`: the forward pass, then the backward pass, one node at a time, in the order cg
computes them: each step's gradient arriving from the node's consumers, the local derivative,
the product sent back along each edge and the running `+=` totals (cg/eval/steps.py). On a
terminal one step per Enter (q quits); piped, or with --all, every step at once.

Only click is imported here: numpy and the rest load when the command runs."""

from __future__ import annotations

import sys
from typing import Any

import click

from cg.cli.common import guard, inner_of, is_tty, load_document, shown, warn_nonfinite, write_output
from cg.cli.options import inputs_option, nonfinite_option, output_option, precision_option

EPILOG = """\b
Exit codes: 0 ok, 1 invalid graph or failed run (NaN/Inf), 2 usage error."""


@click.command(epilog=EPILOG)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@inputs_option
@click.option("--of", metavar="NODE", help="The output to differentiate (default: the first output).")
@click.option("--wrt", multiple=True, metavar="INPUT",
              help="Forward mode: step the tangents d node / d INPUT instead of the backward pass. Repeatable.")
@click.option("--tangent", "tangent_texts", multiple=True, metavar="NAME=VALUE,...",
              help="Forward mode: a direction for an input, e.g. v=[1,0,0]. Repeatable.")
@click.option("--all", "show_all", is_flag=True, help="Print every step at once, also on a terminal.")
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "markdown", "html", "svg"]), default="text",
              show_default=True, help="markdown: the steps as a worksheet, a heading per pass; html: one page that"
              " steps with Prev/Next (or the arrow keys), the current node highlighted in the picture; svg: one"
              " picture per step, for slides, into the folder -o DIR (step-01.svg, ...).")
@output_option
@precision_option
@nonfinite_option
def step(file: str, inputs: tuple[str, ...], of: str | None, wrt: tuple[str, ...], tangent_texts: tuple[str, ...],
         show_all: bool, fmt: str, output: str | None, precision: int, nonfinite: str) -> None:
    """Step through the passes of FILE one node at a time: forward values, then gradients in
    reverse order, each the sum of what the node's consumers sent, times each local derivative."""
    guard(_step)(file, inputs, of, wrt, tangent_texts, show_all, fmt, output, precision, nonfinite)


def _step(file: str, inputs: tuple[str, ...], of: str | None, wrt: tuple[str, ...], tangent_texts: tuple[str, ...],
          show_all: bool, fmt: str, output: str | None, precision: int, nonfinite: str) -> None:
    from cg.cli.budget import require_run
    from cg.cli.run import tangents_of
    from cg.cli.values import parse_inputs
    from cg.eval.interp import run
    from cg.eval.steps import steps
    from cg.graph.builder import build
    from cg.render.steps import all_steps, to_markdown, to_text

    graph = build(load_document(file))
    if inner_of(graph, of):
        from cg.graph.composite import expanded

        graph = expanded(graph)
    given = parse_inputs(list(inputs))
    tangents = tangents_of(wrt, tangent_texts) if wrt or tangent_texts else None
    if tangents is not None and of is not None:
        raise click.UsageError("--of is for the backward pass; forward mode takes --wrt or --tangent")
    require_run(graph, given, forward=tangents is not None, edges=True, command="cg step")  # every edge's local
    result = run(graph, given, of=of, on_nonfinite=nonfinite, tangents=tangents)
    if result.nonfinite:
        warn_nonfinite(result.nonfinite)
    found = steps(result)
    if fmt == "svg":
        _pictures(found, precision, output)
        return
    if fmt == "html":
        from cg.render.stepper import to_stepper

        write_output(to_stepper(found, precision), output)
        return
    if fmt == "markdown" or output is not None or show_all or not (is_tty(sys.stdout) and is_tty(sys.stdin)):
        write_output(to_markdown(found, precision) if fmt == "markdown" else to_text(found, precision), output)
        return
    _one_at_a_time(all_steps(found, precision))


def _pictures(found: Any, precision: int, folder: str | None) -> None:
    """One SVG per step into a folder (made if missing); each file written whole (cg/files.py)."""
    import os

    from cg.render.stepper import step_pictures

    if folder is None:
        raise click.UsageError("--format svg writes one picture per step: give the folder with -o DIR")
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise click.UsageError(f"-o {shown(folder)}: not a folder (svg writes one file per step into it)")
    os.makedirs(folder, exist_ok=True)
    pictures = step_pictures(found, precision)
    for name, svg in pictures:
        write_output(svg, os.path.join(folder, name))
    click.echo(f"wrote {len(pictures)} pictures into {shown(folder)}", err=True)


def _one_at_a_time(blocks: Any) -> None:
    """On a terminal: print a step, wait for Enter; q (or end of input) stops. The prompt goes to
    stderr, and is erased after each answer only when stderr is that terminal too."""
    blocks = list(blocks)
    erase = is_tty(sys.stderr)
    for k, block in enumerate(blocks):
        click.echo("\n".join(block))
        if k == len(blocks) - 1:
            return
        click.echo(click.style("Enter: next step, q: quit", dim=True), nl=False, err=True)
        answer = sys.stdin.readline()
        if erase:
            click.echo("\033[F\033[K", nl=False, err=True)  # up to the prompt's line (Enter moved down), clear it
        else:
            click.echo(err=True)
        if not answer or answer.strip().lower().startswith("q"):
            return
