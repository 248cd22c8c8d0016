"""`cg ops`: the registered ops, one line each."""

from __future__ import annotations

import click

from cg.cli.common import guard


@click.command()
@guard
def ops() -> None:
    """List the ops with their inputs, attributes, a doc line and their local derivatives.

    ∂y/∂x is an elementwise op's derivative (its gradient is g times it); ∂L/∂x is the gradient
    of an input in terms of g = ∂L/∂y, for the other ops."""
    from cg.ops import REGISTRY

    for op in REGISTRY.values():
        attrs = ", ".join(f"{n}{'' if a.required else '?'}" for n, a in op.attrs.items())
        click.echo(f"{op.name:12} {op.arity_text():18} {attrs:18} {op.doc}")
        if op.formulas is not None:
            lines = op.formulas.lines(op.arity[1])  # none for onehot: its one input is an integer
            click.echo(f"{'':12} {'; '.join(lines) if lines else 'no derivative: its input is an integer'}")
