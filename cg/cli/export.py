"""`cg export`: a graph file as an ONNX model (see cg/interop/write.py).

Only click is imported here: numpy and onnx load when the command runs, so `cg --help` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from cg.cli.common import guard, load_document, shown
from cg.cli.options import inputs_option

if TYPE_CHECKING:
    from cg.eval.interp import Result
    from cg.graph.ir import Graph

EPILOG = """\b
Needs the onnx package: pip install 'cg-graphs[onnx]'.
Exit codes: 0 ok, 1 invalid graph (or an export that ONNX's checker refuses),
2 usage error (including onnx not installed)."""


@click.command("export", epilog=EPILOG)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("-o", "--output", required=True, metavar="FILE.onnx", help="The ONNX model to write.")
@inputs_option
@click.option("--values", is_flag=True,
              help="Store each node's value and gradient (of a run at the defaults and --inputs) in its "
              "metadata_props, which Netron shows. --inputs implies it.")
def export_command(file: str, output: str, inputs: tuple[str, ...], values: bool) -> None:
    """Write FILE as an ONNX model (opset 18, float64): node names are cg ids, inputs with a default
    are initializers, and the model passes ONNX's full checker. When the graph can run, ONNX's
    reference evaluator runs the model and its outputs must equal cg's.

    \b
    cg export graphs/mlp.yaml -o mlp.onnx
    cg export graphs/log3x2p5xy.yaml -o g.onnx --inputs x=2,y=3"""
    guard(_export)(file, output, inputs, values or bool(inputs))


def _export(file: str, output: str, inputs: tuple[str, ...], values: bool) -> None:
    import os

    from cg.cli.values import parse_inputs
    from cg.files import write_output
    from cg.graph.builder import build
    from cg.interop.write import agree, to_model

    if not output.lower().endswith(".onnx"):
        raise click.UsageError(f"-o {shown(output)}: the model's name must end in .onnx")
    if file != "-" and os.path.exists(output) and os.path.exists(file) and os.path.samefile(file, output):
        raise click.UsageError(f"-o {shown(output)} is the graph file itself")
    graph = build(load_document(file))
    given = parse_inputs(inputs)
    result = run_if_possible(graph, given, required=values)
    model = to_model(graph, result if values else None)
    note = agree(model, graph, result) if result is not None else "not run: some inputs have no value"
    write_output(model.SerializeToString(), output)
    click.echo(f"cg: wrote {shown(output)}: {len(model.graph.node)} ONNX nodes for {len(graph.nodes)} cg nodes; "
               f"{note}", err=True)


def run_if_possible(graph: Graph, given: dict[str, Any], *, required: bool) -> Result | None:
    """The run at the defaults and the given values; None when an input has no value (an error,
    from the run, when values were asked for)."""
    import numpy as np

    from cg.eval.interp import run

    if not required and any(i.default is None and i.name not in given for i in graph.inputs):
        return None

    out = graph.avals[graph.outputs[0]].shape
    return run(graph, given, seed=np.ones(out) if out else None)
