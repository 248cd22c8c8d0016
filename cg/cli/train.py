"""`cg train`: gradient descent on a graph's parameters over a data set (cg/eval/train.py), with a
progress bar on a terminal, the trained parameters as an .npz (loadable as an input file:
`W: {file: params.npz, key: W}`) and the loss curve as CSV and SVG.

Only click is imported here: numpy and the rest load when the command runs, so `cg --help`
stays fast.
"""

from __future__ import annotations

import os
from typing import Any

import click

from cg.cli.common import guard, load_document, shown, write_output
from cg.cli.options import inputs_option

EPILOG = """\b
Exit codes: 0 ok, 1 invalid graph or data (a row and column named), 2 usage error."""


@click.command("train", epilog=EPILOG)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--data", "data_file", required=True, metavar="ROWS", type=click.Path(dir_okay=False),
              help="The rows: .csv, .npz or .parquet, columns bound to inputs as for `cg run --data`.")
@click.option("--params", required=True, metavar="W,b", help="The inputs to train (float inputs not in the data).")
@click.option("--of", metavar="NODE", help="The loss, a scalar per row (default: the first output).")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=0.1, show_default=True,
              help="The learning rate.")
@click.option("--epochs", type=click.IntRange(1, 100_000), default=20, show_default=True)
@click.option("--batch", type=click.IntRange(1, 1_000_000), default=64, show_default=True,
              help="Rows per step (the last step of an epoch may have fewer).")
@click.option("--shuffle", is_flag=True, help="Shuffle the rows at each epoch (numpy's default_rng(--seed)).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("-o", "--output", metavar="PARAMS.npz", help="Write the trained parameters here (default: FILE's"
              " stem + .params.npz, in the working directory).")
@click.option("--curve", metavar="CURVE.csv", help="Write the loss per epoch (default: PARAMS stem + .curve.csv); an"
              " SVG chart goes beside it (.svg).")
@click.option("--ignore-columns", is_flag=True, help="Skip data columns that are no input of the graph.")
@click.option("--update", is_flag=True, help="Also write the trained values into FILE as the parameters' defaults,"
              " every comment kept (through cg fmt's writer).")
@click.option("--engine", type=click.Choice(["memory", "dask"]), default="memory", show_default=True,
              help="dask: the rows (many .csv or .parquet files, ROWS a quoted glob) stay on a Dask cluster; each step"
              " adds up the minibatch's gradient sums there (pip install 'cg-graphs[dask]').")
@click.option("--scheduler", metavar="ADDRESS", help="With --engine dask: join this scheduler instead of starting a"
              " local cluster of 2 workers.")
@inputs_option
def train_command(file: str, data_file: str, params: str, of: str | None, lr: float, epochs: int, batch: int,
                  shuffle: bool, seed: int, output: str | None, curve: str | None, ignore_columns: bool, update: bool,
                  engine: str, scheduler: str | None, inputs: tuple[str, ...]) -> None:
    """Train the parameters of FILE by minibatch gradient descent on the mean loss over the rows
    of --data; print the loss per epoch and the parameters, and write them and the loss curve.

    \b
    cg train graphs/binary_logreg.yaml --data graphs/data/binary_logreg.csv \\
        --of nll --params w,b --lr 0.5 --epochs 30 -o params.npz"""
    names = [p.strip() for p in params.split(",") if p.strip()]
    if update and file == "-":
        raise click.UsageError("--update rewrites FILE: it cannot be standard input")
    guard(_train)(file, data_file, names, of, (lr, epochs, batch, shuffle, seed), (output, curve), ignore_columns,
                  inputs, engine, scheduler, update)


def _train(file: str, data_file: str, params: list[str], of: str | None, schedule_args: tuple[Any, ...],
           outputs: tuple[str | None, str | None], ignore_columns: bool, inputs: tuple[str, ...],
           engine: str = "memory", scheduler: str | None = None, update: bool = False) -> None:
    from cg.cli.values import parse_inputs
    from cg.eval.train import Schedule, train
    from cg.graph.builder import build
    from cg.graph.data import load_data
    from cg.progress import progress

    bar = click.get_current_context().with_resource(progress(f"reading {shown(file)}"))
    graph = build(load_document(file))
    given = parse_inputs(list(inputs))
    schedule = Schedule(*schedule_args)
    if scheduler is not None and engine != "dask":
        raise click.UsageError("--scheduler joins a Dask cluster: give it with --engine dask")
    paths = _paths(file, outputs)  # refused before any training, not after
    from cg.cli.data import check_chunk_budget
    from cg.eval.train import check

    check(graph, params, set(), schedule)
    check_chunk_budget(graph, schedule.batch)  # a step tiles the parameters over its rows

    def report(epoch: int, epochs: int, loss: float, norm: float) -> None:
        bar.report(f"epoch {epoch}/{epochs}, loss {loss:.4f}, |grad| {norm:.3g}", epoch, epochs)

    if engine == "dask":
        trained = _on_dask(graph, data_file, params, of, given, schedule, ignore_columns, scheduler, bar, report)
    else:
        bar.step(f"reading {shown(data_file)}")
        data = load_data(graph, data_file, given, ignore_columns=ignore_columns)
        bar.step(f"training {', '.join(params)}", total=schedule.epochs)
        trained = train(graph, data.columns, params, given, schedule, of=of, report=report)
    new_text = _updated(file, trained.params) if update else None  # made, and checked, before anything is written
    _write(trained, graph.name, paths, bar)
    if new_text is not None:
        write_output(new_text, file)
        click.echo(f"cg: wrote the trained values of {', '.join(trained.params)} into {shown(file)}", err=True)


def _on_dask(graph: Any, pattern: str, params: list[str], of: str | None, given: dict[str, Any], schedule: Any,
             ignore_columns: bool, scheduler: str | None, bar: Any, report: Any) -> Any:
    """Each step's minibatch sums computed where the rows are (cg/cli/dask_engine.py), reduced here."""
    from cg.cli.dask_engine import Job, need_dask, train_dask
    from cg.errors import UsageError
    from cg.eval.train import check, descend

    need_dask()
    loss = of or (graph.outputs[0] if graph.outputs else None)
    if loss is None or loss not in graph.avals:
        raise UsageError.one("CG301", f"--of {loss}: not a node of the graph", file=graph.file)
    check(graph, params, set(), schedule)  # before a cluster is started

    def run(n: int, step: Any, columns: set[str]) -> Any:
        check(graph, params, columns, schedule)
        bar.step(f"training {', '.join(params)} on dask", total=schedule.epochs)
        return descend(graph, n, step, params, given, schedule, report)

    return train_dask(pattern, Job(graph, given, loss, tuple(params), 1, ignore_columns), scheduler, bar, run)


def _updated(file: str, params: dict[str, Any]) -> str:
    """FILE's text with the trained defaults, checked to be a valid graph."""
    from cg.errors import LoadError
    from cg.files import read_regular
    from cg.fmt.update import update_defaults
    from cg.graph.builder import build
    from cg.limits import current
    from cg.parse.read import load_text

    source = read_regular(file, current().max_bytes, file, LoadError).decode("utf-8")
    text = update_defaults(source, file, params)
    build(load_text(text, file))
    return text


def _paths(file: str, outputs: tuple[str | None, str | None]) -> tuple[str, str, str]:
    """The parameters, the curve and its chart: three different files in folders that exist."""
    stem = os.path.splitext(os.path.basename(file))[0] if file != "-" else "graph"
    out = outputs[0] or f"{stem}.params.npz"
    curve = outputs[1] or f"{os.path.splitext(out)[0].removesuffix('.params')}.curve.csv"
    chart = os.path.splitext(curve)[0] + ".svg"
    if len({os.path.abspath(p) for p in (out, curve, chart)}) < 3 or os.path.abspath(file) in map(
            os.path.abspath, (out, curve, chart)):
        raise click.UsageError(f"-o {shown(out)}, --curve {shown(curve)} and its chart {shown(chart)} must be three "
                               "different files, none of them the graph")
    for path in (out, curve):
        folder = os.path.dirname(path) or "."
        if not os.path.isdir(folder):
            raise click.UsageError(f"cannot write {shown(path)}: the folder {shown(folder)} does not exist")
    return out, curve, chart


def _write(trained: Any, name: str, paths: tuple[str, str, str], bar: Any) -> None:
    import numpy as np

    from cg.cli.common import before_writing
    from cg.graph.arrays import npz_bytes
    from cg.render.curve import curve_csv, curve_svg

    out, curve, chart = paths
    texts = (npz_bytes(trained.params), curve_csv(trained.curve), curve_svg(trained.curve,
                                                                            f"{name}: mean loss per epoch"))
    before_writing(bar, out, "the parameters")
    for data, path in zip(texts, paths):  # all made first: a failure to draw writes nothing
        write_output(data, path)
    first, last = trained.curve[0], trained.curve[-1]
    lines = ["epoch  mean loss  |grad|", *(f"{e.epoch:<5}  {e.loss:<9.4f}  {e.grad_norm:.3g}" for e in trained.curve)]
    lines += [f"{key} = {np.array2string(np.asarray(v), precision=4, separator=', ')}"
              for key, v in trained.params.items()]
    write_output("\n".join(lines) + "\n", None)
    click.echo(f"cg: trained {len(trained.params)} parameter{'s' * (len(trained.params) != 1)} over "
               f"{len(trained.curve)} epoch{'s' * (len(trained.curve) != 1)}: mean loss {first.loss:.4f} -> "
               f"{last.loss:.4f}; wrote {shown(out)}, {shown(curve)} and {shown(chart)}", err=True)
