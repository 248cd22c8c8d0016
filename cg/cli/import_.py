"""`cg import`: an ONNX model as a cg graph file, its parameters in a sidecar .npz, every node
cross-checked against ONNX's reference evaluator (see cg/interop/).

Only click is imported here: numpy and onnx load when the command runs, so `cg --help` stays fast.
"""

from __future__ import annotations

import click

from cg.cli.common import guard, shown
from cg.cli.options import inputs_option

EPILOG = """\b
Needs the onnx package: pip install 'cg-graphs[onnx]' (onnxruntime, where it is
installed, checks the outputs too).
Exit codes: 0 ok, 1 not a model cg can import (unreadable, an unsupported op, a
value that differs from ONNX's), 2 usage error (including onnx not installed)."""


@click.command("import", epilog=EPILOG)
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, metavar="FILE.yaml",
              help="The graph file to write; the parameters go beside it in FILE.npz.")
@inputs_option
@click.option("--batch", type=click.IntRange(1, 1_000_000), default=1, show_default=True,
              help="The size of a symbolic dimension (the batch) at the sample point.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="The seed of the random sample point.")
@click.option("--loss", type=click.Choice(["softmax_xent", "bce", "mse"]),
              help="Append a loss from cg:nn to the first output (exported models have none).")
@click.option("--label", default="y", show_default=True, metavar="NAME", help="The name of the loss's label input.")
def import_command(model: str, output: str, inputs: tuple[str, ...], batch: int, seed: int, loss: str | None,
                   label: str) -> None:
    """Import an ONNX MODEL (opset 13 and later) as a cg graph file: initializers become parameters
    (their values in a sidecar .npz), and cg's value of every node is checked against ONNX's
    reference evaluator at a sample point before anything is written.

    \b
    cg import mlp.onnx -o mlp.yaml --loss softmax_xent --label y
    cg check mlp.yaml"""
    guard(_import)(model, output, inputs, batch, seed, (loss, label))


def _import(model: str, output: str, inputs: tuple[str, ...], batch: int, seed: int,
            loss: tuple[str | None, str]) -> None:
    import os

    from cg.cli.values import parse_inputs
    from cg.interop.save import import_file

    imported, agreement, written = import_file(model, output, parse_inputs(inputs), batch=batch, seed=seed,
                                               loss=loss[0], label=loss[1])
    click.echo(f"cg: imported {shown(os.path.basename(model))}: {len(imported.nodes)} nodes, "
               f"{len(imported.inputs)} inputs -> {', '.join(shown(w) for w in written)}", err=True)
    click.echo(f"cg: every node checked against the {' and '.join(agreement.engines)}: {agreement.compared} "
               f"values, largest relative difference {agreement.worst:.2g} ({agreement.worst_at})", err=True)
