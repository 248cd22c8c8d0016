"""`cg ops`: the registered ops, one line each."""

from __future__ import annotations

import click

from cg.cli.common import guard


@click.command()
@guard
def ops() -> None:
    """List the ops with their inputs, attributes and a doc line, then their local derivatives
    (∂y/∂x: elementwise; ∂L/∂x: the gradient of an input from g = ∂L/∂y)."""
    from cg.ops import REGISTRY

    for op in REGISTRY.values():
        attrs = ", ".join(f"{n}{'' if a.required else '?'}" for n, a in op.attrs.items())
        click.echo(f"{op.name:12} {op.arity_text():18} {attrs:18} {op.doc}")
        if op.formulas is not None:
            click.echo(f"{'':12} {'; '.join(op.formulas.lines(op.arity[1]))}")
