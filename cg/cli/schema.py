"""`cg schema`: the JSON Schemas of graph files, run results, diagnostics and snapshots."""

from __future__ import annotations

import click

from cg.cli.common import guard


@click.command()
@click.option("--result", is_flag=True, help="Print the schema of `cg run --format json` instead.")
@click.option("--diagnostics", is_flag=True,
              help="Print the schema of `cg validate --format json` (and of `diagnostics` in check reports) instead.")
@click.option("--snapshot", is_flag=True,
              help="Print the schema of partial snapshots, {\"values\": ..., \"grads\": ...}, which `cg check"
              " --against` compares with, instead.")
@guard
def schema(result: bool, diagnostics: bool, snapshot: bool) -> None:
    """Print the JSON Schema of graph files (or of run results, diagnostics or snapshots)."""
    import json

    from cg.render.diagnostics import diagnostics_schema
    from cg.schema.schemas import graph_schema, result_schema
    from cg.schema.snapshot import snapshot_schema

    if result + diagnostics + snapshot > 1:
        raise click.UsageError("give one of --result, --diagnostics and --snapshot")
    chosen = (result_schema() if result else diagnostics_schema() if diagnostics
              else snapshot_schema() if snapshot else graph_schema())
    click.echo(json.dumps(chosen, indent=2))
