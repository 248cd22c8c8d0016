"""`cg paths`: every path from one name to a node, with the product of the local derivatives
on its edges; their sum is the derivative that reverse mode computes in one sweep.

Only click is imported here: numpy and the rest load when the command runs, so `cg --help`
stays fast.
"""

from __future__ import annotations

import click

from cg.cli.common import guard, load_document, write_output
from cg.cli.options import format_option, inputs_option, output_option, precision_option

EPILOG = """\b
Exit codes: 0 ok, 1 invalid graph or failed run, 2 usage error
(including more paths than --limit)."""


@click.command(epilog=EPILOG)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--from", "src", required=True, metavar="NAME", help="Where the paths start: an input or a node.")
@click.option("--to", "dst", required=True, metavar="NODE", help="Where the paths end: a node.")
@inputs_option
@click.option("--limit", type=click.IntRange(min=0), default=1000, show_default=True,
              help="List the paths only if there are at most this many (they are counted first).")
@format_option
@output_option
@precision_option
def paths(file: str, src: str, dst: str, inputs: tuple[str, ...], limit: int, fmt: str,
          output: str | None, precision: int) -> None:
    """Every path from --from to --to in FILE, with the product of the local derivatives on
    its edges, and their sum next to reverse mode's derivative (they are equal).

    For graphs whose nodes between --from and --to are scalars."""

    guard(_paths)(file, src, dst, inputs, limit, fmt, output, precision)


def _paths(file: str, src: str, dst: str, inputs: tuple[str, ...], limit: int, fmt: str,
           output: str | None, precision: int) -> None:
    from cg.cli.budget import require_run
    from cg.cli.values import parse_inputs
    from cg.eval.paths import find_paths
    from cg.graph.builder import build
    from cg.render.reports import paths_json, plain_paths

    graph = build(load_document(file))
    given = parse_inputs(list(inputs))
    require_run(graph, given, command="cg paths")
    report = find_paths(graph, given, src=src, dst=dst, limit=limit)
    write_output(paths_json(report) if fmt == "json" else plain_paths(report, precision), output)
