"""`cg jacobian`: the full Jacobian d of / d wrt, by reverse mode (one backward pass per
output element) or forward mode (one JVP pass per input element), whichever takes fewer.

Only click is imported here: numpy and the rest load when the command runs, so `cg --help`
stays fast.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from cg.cli.common import before_writing, guard, is_tty, load_document, shown, warn_nonfinite, write_output
from cg.cli.options import format_option, inputs_option, nonfinite_option, output_option, precision_option

EPILOG = """\b
Exit codes: 0 ok, 1 invalid graph or failed run (NaN/Inf), 2 usage error."""


@click.command(epilog=EPILOG)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--of", metavar="NAME", help="The differentiated node (default: the first output); any shape.")
@click.option("--wrt", required=True, metavar="NAME", help="The variable: a float input or node; any shape.")
@inputs_option
@click.option("--mode", type=click.Choice(["auto", "reverse", "forward"]), default="auto", show_default=True,
              help="reverse: one backward pass per element of --of; forward: one JVP pass per element of "
                   "--wrt; auto: the fewer passes (reverse on a tie).")
@format_option
@output_option
@precision_option
@nonfinite_option
def jacobian(file: str, of: str | None, wrt: str, inputs: tuple[str, ...], mode: str, fmt: str,
             output: str | None, precision: int, nonfinite: str) -> None:
    """The Jacobian d OF / d WRT of FILE: one row per element of --of, one column per element
    of --wrt (higher ranks are flattened, the labels show the indices).

    Prints the mode used, why, and the number of passes."""

    guard(_jacobian)(file, of, wrt, inputs, mode, fmt, output, precision, nonfinite)


def _jacobian(file: str, of: str | None, wrt: str, inputs: tuple[str, ...], mode: str, fmt: str,
              output: str | None, precision: int, nonfinite: str) -> None:
    from cg.cli.budget import require_jacobian
    from cg.cli.values import parse_inputs
    from cg.eval.jacobian import jacobian as compute
    from cg.graph.builder import build
    from cg.progress import progress

    # On a terminal, a bar once the work has taken half a second (cg/progress.py), erased at the end.
    bar = click.get_current_context().with_resource(progress(f"reading {shown(file)}"))
    graph = build(load_document(file))
    given = parse_inputs(list(inputs))
    require_jacobian(graph, given, wrt=wrt, of=of, mode=mode, output=fmt)  # its passes, before any is made
    bar.step("computing the Jacobian")
    result = compute(graph, given, of=of, wrt=wrt, mode=mode, on_nonfinite=nonfinite, progress=bar.hook)
    if result.nonfinite:
        count = result.nonfinite_entries
        entries = f" ({count:,} entr{'y' if count == 1 else 'ies'} of the matrix)" if count else ""
        warn_nonfinite(result.nonfinite, bar, entries)
    show_jacobian(result, bar, fmt, output, precision)


def show_jacobian(result: Any, bar: Any, fmt: str, output: str | None, precision: int) -> None:
    """The matrix as JSON, a rich table on a terminal, or plain text (cg jacobian and cg hessian)."""
    from cg.render.reports import jacobian_json, plain_jacobian, rich_jacobian

    before_writing(bar, output, "the matrix")
    if fmt == "json":
        write_output(jacobian_json(result), output)
    elif output is None and is_tty(sys.stdout):
        from rich.console import Console

        console = Console()
        for part in rich_jacobian(result, precision):
            console.print(part)
    else:
        write_output(plain_jacobian(result, precision), output)
