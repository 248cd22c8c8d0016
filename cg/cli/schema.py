"""`cg schema`: the JSON Schemas of graph files, run results and diagnostics."""

from __future__ import annotations

import click

from cg.cli.common import guard


@click.command()
@click.option("--result", is_flag=True, help="Print the schema of `cg run --format json` instead.")
@click.option("--diagnostics", is_flag=True,
              help="Print the schema of `cg validate --format json` (and of `diagnostics` in check reports) instead.")
@guard
def schema(result: bool, diagnostics: bool) -> None:
    """Print the JSON Schema of graph files (or of run results, or of diagnostics)."""
    import json

    from cg.render.diagnostics import diagnostics_schema
    from cg.schema.schemas import graph_schema, result_schema

    if result and diagnostics:
        raise click.UsageError("give --result or --diagnostics, not both")
    chosen = result_schema() if result else diagnostics_schema() if diagnostics else graph_schema()
    click.echo(json.dumps(chosen, indent=2))
