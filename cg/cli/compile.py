"""`cg compile`: the graph as a readable Python module, forward and backward written out one
line per node (see cg/compile/).

Only click is imported here: numpy and the rest load when the command runs, so `cg --help`
stays fast.
"""

from __future__ import annotations

import click

from cg.cli.common import guard, load_document, write_output
from cg.cli.options import output_option

EPILOG = """\b
Exit codes: 0 ok, 1 invalid graph (or an op cg cannot write as Python), 2 usage error."""


@click.command("compile", epilog=EPILOG)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@output_option
@click.option("--of", metavar="NODE", help="The output to differentiate (default: the first output).")
@click.option("--wrt", multiple=True, metavar="NAME",
              help="Return only the gradients of this float input or node (repeatable); the backward "
                   "pass keeps only the lines they need. Default: every float input and node.")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True,
              help="The float type of every value and gradient (float32: numpy even for scalars).")
def compile_command(file: str, output: str | None, of: str | None, wrt: tuple[str, ...], dtype: str) -> None:
    """Write FILE as a Python module: forward(**inputs) and backward(values), one line per node,
    gradients accumulated with +=, a comment naming each node and op.

    \b
    cg compile graphs/log3x2p5xy.yaml               # the module on stdout
    cg compile graphs/log3x2p5xy.yaml -o model.py   # python -c "import model; print(model.forward())"

    When every value is a float scalar the module works on Python floats with the math module,
    otherwise on numpy arrays of the shapes the graph declares; then it also has
    value_and_grad(**inputs) -> (value, Grads): the same lines in one function, each array
    deleted after its last use (the one to train with: less memory, and on deep graphs less time)."""

    guard(_compile)(file, output, of, wrt, dtype)


def _compile(file: str, output: str | None, of: str | None, wrt: tuple[str, ...], dtype: str) -> None:
    from cg.compile.module import compile_source
    from cg.graph.builder import build

    graph = build(load_document(file))
    write_output(compile_source(graph, of=of, wrt=list(wrt) or None, dtype=dtype), output)
