"""`cg run`: a graph's forward and backward passes, every node's value and gradient printed."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from cg.cli.common import (
    EXIT_CODES,
    before_writing,
    guard,
    inner_of,
    is_tty,
    load_document,
    shown,
    warn_nonfinite,
    write_output,
)
from cg.cli.options import inputs_option, nonfinite_option, output_option, precision_option


@click.command(epilog=EXIT_CODES)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@inputs_option
@click.option("--of", metavar="NODE", help="The output to differentiate (default: the first output).")
@click.option("--seed", metavar="VALUE", help="Seed gradient for a non-scalar output, e.g. [1,0,0].")
@click.option("-f", "--format", "fmt", type=click.Choice(["table", "json", "csv", "markdown", "latex"]),
              default="table", show_default=True,
              help="json and csv have full precision; markdown and latex are the table, with --precision.")
@output_option
@precision_option
@nonfinite_option
@click.option("--mode", type=click.Choice(["reverse", "forward"]), default="reverse", show_default=True,
              help="reverse: gradients d output / d node (backprop); forward: tangents d node / d input.")
@click.option("--wrt", multiple=True, metavar="INPUT",
              help="Forward mode: differentiate with respect to this scalar input (tangent 1). Repeatable.")
@click.option("--tangent", "tangent_texts", multiple=True, metavar="NAME=VALUE,...",
              help="Forward mode: a direction for an input, e.g. v=[1,0,0]. Repeatable.")
@click.option("--edges", is_flag=True, help="Also show every edge: its local derivative and the gradient it carries"
              " (of the expanded graph, as --expand).")
@click.option("--expand", is_flag=True, help="Show the inner nodes of composites (calls of functions), with ids like"
              " h1/Wx, instead of one row per call.")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True,
              help="The float type of every value and gradient (float32: what a model trains in).")
@click.option("--data", "data_file", metavar="ROWS", type=click.Path(dir_okay=False),
              help="Run over every row of ROWS (.csv, .npz or .parquet; columns bind to inputs by name) and print"
              " the loss and the parameters' gradients reduced over the rows.")
@click.option("--reduce", type=click.Choice(["mean", "sum"]), default="mean", show_default=True,
              help="With --data: how the loss and gradients of the rows are reduced.")
@click.option("--chunk", type=click.IntRange(min=1), default=1024, show_default=True,
              help="With --data: rows evaluated at a time (the element limits apply to a chunk).")
@click.option("--per-row", is_flag=True,
              help="With --data: write every row's loss and gradients, one line per (row, name, index), to -o"
              " FILE.csv or FILE.parquet (stdout: CSV); the reduced summary goes to stdout.")
@click.option("--ignore-columns", is_flag=True, help="With --data: skip columns that are no input of the graph.")
@click.option("--engine", type=click.Choice(["memory", "dask"]), default="memory", show_default=True,
              help="With --data: dask reads many .csv or .parquet files (ROWS may be a glob, quoted) on a Dask"
              " cluster and adds up their sums (pip install 'cg-graphs[dask]').")
@click.option("--scheduler", metavar="ADDRESS", help="With --engine dask: join this scheduler (tcp://host:8786)"
              " instead of starting a local cluster of 2 workers.")
@guard
def run(file: str, inputs: tuple[str, ...], of: str | None, seed: str | None, fmt: str,
        output: str | None, precision: int, nonfinite: str, mode: str, wrt: tuple[str, ...],
        tangent_texts: tuple[str, ...], edges: bool, expand: bool, dtype: str, data_file: str | None = None,
        reduce: str = "mean", chunk: int = 1024, per_row: bool = False, ignore_columns: bool = False,
        engine: str = "memory", scheduler: str | None = None) -> None:
    """Run FILE forward and backward and print every node's value and gradient.

    With --mode forward (implied by --wrt or --tangent) it prints forward derivatives instead."""
    from cg.cli.values import parse_inputs, parse_value
    from cg.eval.interp import run as run_graph
    from cg.graph.builder import build
    from cg.progress import progress

    # On a terminal, a bar appears once the work has taken half a second (cg/progress.py);
    # the click context erases it when the command ends, error or not.
    bar = click.get_current_context().with_resource(progress(f"reading {shown(file)}"))
    graph = build(load_document(file))
    if expand or edges or inner_of(graph, of):  # every inner node of a composite gets its own row
        from cg.graph.composite import expanded

        graph = expanded(graph)
    given = parse_inputs(list(inputs))
    if data_file is not None:
        if mode == "forward" or wrt or tangent_texts or seed is not None or edges or dtype != "float64":
            raise click.UsageError("--data runs reverse mode in float64: --mode forward, --wrt, --tangent, --seed,"
                                   " --edges and --dtype do not combine with it")
        from cg.cli.data import run_data

        run_data(graph, file, data_file, given, of=of, reduce=reduce, chunk=chunk, per_row=per_row, output=output,
                 fmt=fmt, precision=precision, nonfinite=nonfinite, ignore_columns=ignore_columns, bar=bar,
                 engine=engine, scheduler=scheduler)
        return
    if per_row or ignore_columns or reduce != "mean" or chunk != 1024 or engine != "memory" or scheduler:
        raise click.UsageError("--reduce, --chunk, --per-row, --ignore-columns, --engine and --scheduler are options"
                               " of --data")
    seed_value = None if seed is None else parse_value(seed, what="--seed")
    tangents = tangents_of(wrt, tangent_texts) if mode == "forward" or wrt or tangent_texts else None
    for name in wrt:
        shape = graph.avals[name].shape if name in graph.avals else ()
        if len(shape) and shape != (1,) * len(shape):
            example = "[" + ",".join(["1"] + ["0"] * (shape[-1] - 1)) + "]" if len(shape) == 1 else "@direction.npy"
            raise click.UsageError(f"--wrt {name}: '{name}' has shape {list(shape)}, not a scalar; give a "
                                   f"direction instead, e.g. --tangent {name}={example}, or use `cg jacobian`")
    if tangents is not None and (seed is not None or of is not None):
        raise click.UsageError("--seed and --of are for reverse mode; forward mode takes --wrt or --tangent")
    from cg.cli.budget import require_run

    require_run(graph, given, forward=tangents is not None, edges=edges, output=fmt)  # before anything is allocated
    bar.step(f"running {len(graph.nodes):,} node{'s' * (len(graph.nodes) != 1)}")
    result = run_graph(graph, given, of=of, seed=seed_value, on_nonfinite=nonfinite, tangents=tangents,
                       dtype=dtype, progress=bar.hook)
    if result.nonfinite:
        warn_nonfinite(result.nonfinite, bar)
    before_writing(bar, output, "the results")
    _print_run(result, fmt, output, precision, edges)


def tangents_of(wrt: tuple[str, ...], texts: tuple[str, ...]) -> dict[str, Any]:
    """The direction of each input: --tangent values, those given for one name in several options
    added up (the JVP is linear in the tangent), and 1 for each --wrt."""
    from cg.cli.values import parse_inputs

    tangents: dict[str, Any] = {}
    for text in texts:
        for name, value in parse_inputs([text], option="--tangent", what="tangent").items():
            if name in tangents and tangents[name].shape != value.shape:
                raise click.UsageError(f"--tangent {name}: directions of shapes {list(tangents[name].shape)} and "
                                       f"{list(value.shape)} cannot be added up")
            tangents[name] = tangents[name] + value if name in tangents else value
    for name in wrt:
        if name in tangents:
            raise click.UsageError(f"'{name}' has both --wrt and --tangent: give one")
        tangents[name] = 1.0
    return tangents


def _print_run(result: Any, fmt: str, output: str | None, precision: int, edges: bool) -> None:
    if edges and fmt not in ("table", "json"):
        raise click.UsageError("--edges is shown with --format table or json")
    edge_list = None
    if edges:
        from cg.eval.edges import compute_edges

        edge_list = compute_edges(result)
    REPORTERS[fmt](result, output, precision, edge_list)


def _table(result: Any, output: str | None, precision: int, edge_list: list[Any] | None) -> None:
    from cg.render.reports import plain_edges, rich_edges
    from cg.render.table import TERMINAL_ROWS, plain_table, rich_table

    if output is None and is_tty(sys.stdout):
        from rich.console import Console

        console = Console()  # a huge result shows its first and last rows, and how to get them all
        console.print(rich_table(result, precision, max_rows=TERMINAL_ROWS))
        if edge_list is not None:
            console.print(rich_edges(edge_list, precision, max_rows=TERMINAL_ROWS))
        return
    text = plain_table(result, precision)
    if edge_list is not None:
        text += "\n" + plain_edges(edge_list, precision)
    write_output(text, output)


def _json(result: Any, output: str | None, precision: int, edge_list: list[Any] | None) -> None:
    from cg.eval.edges import edge_objects
    from cg.render.table import iter_json

    write_output(iter_json(result, None if edge_list is None else edge_objects(edge_list)), output)


def _csv(result: Any, output: str | None, precision: int, edge_list: list[Any] | None) -> None:
    from cg.render.export import iter_csv

    write_output(iter_csv(result), output)  # streamed, a chunk per tensor: memory stays bounded


def _markdown(result: Any, output: str | None, precision: int, edge_list: list[Any] | None) -> None:
    from cg.render.export import to_markdown

    write_output(to_markdown(result, precision), output)


def _latex(result: Any, output: str | None, precision: int, edge_list: list[Any] | None) -> None:
    from cg.render.export import to_latex

    write_output(to_latex(result, precision), output)


# --format NAME -> the function that writes a result that way (--edges only with table and json).
REPORTERS: dict[str, Callable[[Any, str | None, int, list[Any] | None], None]] = {
    "table": _table, "json": _json, "csv": _csv, "markdown": _markdown, "latex": _latex}
