"""`cg grad` and `cg hessian`: the backward pass written as a graph file (cg/eval/gradgraph.py),
and second derivatives from differentiating it.

Only click is imported here: numpy and the rest load when the command runs, so `cg --help`
stays fast.
"""

from __future__ import annotations

import click

from cg.cli.common import guard, load_document, shown, warn_nonfinite, write_output
from cg.cli.options import format_option, inputs_option, nonfinite_option, output_option, precision_option

EPILOG = """\b
Exit codes: 0 ok, 1 invalid graph, 2 usage error."""


@click.command("grad", epilog=EPILOG)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--of", metavar="NODE", help="The output to differentiate (default: the first output); a scalar.")
@click.option("--wrt", multiple=True, metavar="INPUT",
              help="The inputs whose gradients the new graph outputs (repeatable; default: every float input).")
@output_option
def grad_command(file: str, of: str | None, wrt: tuple[str, ...], output: str | None) -> None:
    """Write the backward pass of FILE as a graph file: the forward nodes, then one node per step
    of the backward pass in reverse order (dz_e, dz_x_from_a, fan-out sums as add nodes), each with
    a doc naming the rule it applies. Its outputs: OF, then d OF / d each input.

    \b
    cg grad graphs/log3x2p5xy.yaml -o g.yaml && cg run g.yaml --inputs x=2,y=3
    cg hessian graphs/log3x2p5xy.yaml --wrt x      # differentiating it again"""
    guard(_grad)(file, of, [w for text in wrt for w in text.split(",") if w], output)


def _grad(file: str, of: str | None, wrt: list[str], output: str | None) -> None:
    import json

    from cg.eval.gradgraph import grad_document
    from cg.fmt.write import format_text
    from cg.graph.builder import build

    graph = build(load_document(file))
    text = format_text(json.dumps(grad_document(graph, of, wrt or None)), output or "<cg grad>")
    write_output(text, output)


@click.command("hessian", epilog=EPILOG)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--of", metavar="NODE", help="The output to differentiate (default: the first output); a scalar.")
@click.option("--wrt", required=True, metavar="INPUT", help="The float input; any shape.")
@inputs_option
@click.option("--mode", type=click.Choice(["forward", "reverse"]), default="forward", show_default=True,
              help="forward over reverse: one JVP pass of the gradient graph per element of WRT; reverse over "
                   "reverse: one backward pass of it per element.")
@format_option
@output_option
@precision_option
@nonfinite_option
def hessian_command(file: str, of: str | None, wrt: str, inputs: tuple[str, ...], mode: str, fmt: str,
                    output: str | None, precision: int, nonfinite: str) -> None:
    """The Hessian d²OF / dWRT² of FILE, by differentiating its gradient graph (`cg grad`): one row
    per element of d OF / d WRT, one column per element of WRT, in the formats of cg jacobian."""
    guard(_hessian)(file, of, wrt, inputs, mode, fmt, output, precision, nonfinite)


def _hessian(file: str, of: str | None, wrt: str, inputs: tuple[str, ...], mode: str, fmt: str,
             output: str | None, precision: int, nonfinite: str) -> None:
    from cg.cli.jacobian import show_jacobian
    from cg.cli.values import parse_inputs
    from cg.eval.gradgraph import hessian
    from cg.graph.builder import build
    from cg.progress import progress

    bar = click.get_current_context().with_resource(progress(f"reading {shown(file)}"))
    graph = build(load_document(file))
    bar.step("computing the Hessian")
    result = hessian(graph, parse_inputs(list(inputs)), of=of, wrt=wrt, mode=mode, on_nonfinite=nonfinite,
                     progress=bar.hook)
    if result.nonfinite:
        warn_nonfinite(result.nonfinite, bar, "")
    show_jacobian(result, bar, fmt, output, precision)
