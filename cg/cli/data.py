"""`cg run FILE --data rows.csv`: the loss over a data set and the gradient of the empirical risk.

The loss (`--of`, default the first output) and the gradient of every parameter (a float input
not taken from the data) are reduced over the rows: the mean (default) or the sum. The summary is
a table (name, shape, value, grad; the loss first) or JSON:

    {"data": FILE, "rows": N, "reduce": "mean", "of": LOSS,
     "loss": VALUE, "params": [{"name": ..., "shape": [...], "value": ..., "grad": ...}, ...]}

(`grad` is null for an integer input). `--per-row -o grads.csv|grads.parquet` writes one line per
(row, name, index) of the loss and of every parameter: `row` is the example's 0-based index,
`index` the element's (`[1, 0]`; empty for a scalar), `value` the value, `grad` d loss / d name
for that row alone (empty for an integer). The file is written whole or not at all (cg/files.py).
"""

from __future__ import annotations

import csv
import io
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import click
import numpy as np

from cg.cli.common import before_writing, shown, write_output
from cg.cli.sums import Totals, add_chunk

PER_ROW_FORMATS = (".csv", ".parquet")


def run_data(graph: Any, file: str, data_file: str, given: dict[str, Any], *, of: str | None, reduce: str,
             chunk: int, per_row: bool, output: str | None, fmt: str, precision: int, nonfinite: str,
             ignore_columns: bool, bar: Any, engine: str = "memory", scheduler: str | None = None) -> None:
    if scheduler is not None and engine != "dask":
        raise click.UsageError("--scheduler joins a Dask cluster: give it with --engine dask")
    if per_row:
        suffix = os.path.splitext(output or "")[1].lower()
        if output is not None and output != "-" and suffix not in PER_ROW_FORMATS:
            raise click.UsageError(f"--per-row writes a .csv or .parquet file, not {shown(output)}")
        if suffix == ".parquet":
            _need_pyarrow(output or "")
    elif fmt not in ("table", "json"):
        raise click.UsageError("with --data, --format is table or json (--per-row -o FILE.csv for every row)")
    of = _loss(graph, of)
    if engine == "dask":
        totals, target = _on_dask(graph, data_file, given, of, chunk, per_row, nonfinite, ignore_columns, bar,
                                  scheduler), None
    else:
        totals, target = _in_memory(graph, data_file, given, of, chunk, per_row, output, nonfinite, ignore_columns,
                                    bar)
    params = list(totals.values)
    summary = _summary(totals, of, params, reduce, data_file, graph)
    if per_row:
        output = None  # the per-row table went to -o; the summary to stdout
        if target is None:
            return
    before_writing(bar, output, "the results")
    if fmt == "json":
        write_output(_json(summary), output)
    else:
        write_output(_table(summary, precision), output)


def _loss(graph: Any, of: str | None) -> str:
    from cg.errors import UsageError
    from cg.eval.interp import require_name

    of = of or (graph.outputs[0] if graph.outputs else None)
    if of is None:
        raise UsageError.one("CG301", "the graph has no output: name the loss with --of", file=graph.file)
    require_name(graph, of, "--of")
    if graph.avals[of].shape not in ((), (1,)) or graph.avals[of].dtype != "float":
        raise UsageError.one("CG210", f"--data needs a float scalar loss: '{of}' has shape"
                             f" {list(graph.avals[of].shape)}; add a node that reduces it (e.g. op: sum)",
                             file=graph.file)
    return of


def _on_dask(graph: Any, pattern: str, given: dict[str, Any], of: str, chunk: int, per_row: bool, nonfinite: str,
             ignore_columns: bool, bar: Any, scheduler: str | None) -> Totals:
    from cg.cli.dask_engine import Job, need_dask, run_dask
    from cg.errors import UsageError
    from cg.graph.data import DataError, row_of

    need_dask()
    check_chunk_budget(graph, chunk)
    if per_row:
        raise UsageError.one("CG153", "--per-row is not written by --engine dask (the rows stay on the workers):"
                             " run without --engine dask, file by file")
    summed = run_dask(pattern, Job(graph, given, of, (), chunk, ignore_columns, nonfinite), scheduler, bar)
    if summed.totals.rows == 0:
        raise DataError.one("CG150", "no rows: the data files hold no examples", file=pattern)
    if summed.bad:
        file, first = summed.bad[0]
        with bar.hidden(sys.stderr):
            click.echo(f"cg: warning: not finite (NaN or Inf) in {len(summed.bad):,} row"
                       f"{'s' * (len(summed.bad) != 1)}, the first {shown(file)} row {row_of(first)} (example"
                       f" {first})", err=True)
    return summed.totals


def _in_memory(graph: Any, data_file: str, given: dict[str, Any], of: str, chunk: int, per_row: bool,
               output: str | None, nonfinite: str, ignore_columns: bool, bar: Any) -> tuple[Totals, str | None]:
    from cg.eval.batch import run_rows
    from cg.graph.data import DataError, load_data, row_of

    bar.step(f"reading {shown(data_file)}")
    data = load_data(graph, data_file, given, ignore_columns=ignore_columns)
    if data.rows == 0:
        raise DataError.one("CG150", "no rows: the data file holds no examples", file=data_file)
    check_chunk_budget(graph, chunk)
    params = [i.name for i in graph.inputs if i.name not in data.columns]
    totals = Totals()
    bar.step(f"running {data.rows:,} row{'s' * (data.rows != 1)}", total=data.rows)
    chunks = run_rows(graph, data.columns, given, of=of, chunk=chunk, on_nonfinite="keep")  # reported per row here

    def counted() -> Iterator[Any]:
        for c in chunks:
            add_chunk(totals, c, of, params, data.file, nonfinite)
            bar.report("rows", c.stop, data.rows)
            yield c

    target = None
    if per_row:
        target = output if output not in (None, "-") else None
        if target is None:
            before_writing(bar, None, "every row")  # onto a terminal: the rows come once the bar is gone
        if target is not None and target.lower().endswith(".parquet"):
            write_output(_parquet(counted(), of, params), target)
        else:
            write_output(_csv_lines(counted(), of, params), target)
    else:
        for _ in counted():
            pass
    if totals.nonfinite:
        first = totals.nonfinite[0]
        with bar.hidden(sys.stderr):
            click.echo(f"cg: warning: not finite (NaN or Inf) in {len(totals.nonfinite):,} row"
                       f"{'s' * (len(totals.nonfinite) != 1)}, the first row {row_of(first)} (example {first})",
                       err=True)
    return totals, target


def _need_pyarrow(path: str) -> None:
    from cg.errors import UsageError
    from cg.graph.data import INSTALL

    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise UsageError.one("CG152", f"writing Parquet ({shown(path)}) needs pyarrow: {INSTALL}") from None


def check_chunk_budget(graph: Any, chunk: int) -> None:
    """The element limit applies to a chunk: no value of it may hold more than --max-elements
    numbers, and all its values and gradients together no more than --max-total."""
    import math as m

    from cg.errors import UsageError
    from cg.limits import Limits, current

    limits = current()
    sizes = [m.prod(a.shape) for a in graph.avals.values()]
    biggest = max(sizes, default=1) * chunk
    if biggest > limits.max_elements:
        raise UsageError.one("CG004", f"--chunk {chunk:,}: a value of the chunk would hold {biggest:,} numbers, over"
                             f" the limit of {limits.max_elements:,}; lower --chunk or"
                             f" {Limits().hint('max_elements')}", file=graph.file)
    total = 2 * sum(sizes) * chunk
    if total > limits.max_total:
        raise UsageError.one("CG004", f"--chunk {chunk:,}: the values and gradients of a chunk would hold {total:,}"
                             f" numbers, over the limit of {limits.max_total:,}; lower --chunk or"
                             f" {Limits().hint('max_total')}", file=graph.file)


@dataclass(frozen=True)
class Summary:
    file: str
    rows: int
    reduce: str
    of: str
    loss: float
    params: list[tuple[str, np.ndarray, np.ndarray | None]]


def _summary(totals: Totals, of: str, params: list[str], reduce: str, file: str, graph: Any) -> Summary:
    n = totals.rows if reduce == "mean" else 1
    out = []
    for p in params:
        g = totals.grads.get(p)
        out.append((p, totals.values[p], None if g is None else g / n))
    return Summary(file, totals.rows, reduce, of, totals.loss / n, out)


def _table(s: Summary, precision: int) -> str:
    from cg.render.table import aligned, fmt_number, fmt_value

    head = f"{s.reduce} over {s.rows:,} row{'s' * (s.rows != 1)} of {shown(s.file)}\n"
    rows: list[tuple[str, ...]] = [("name", "shape", "value", f"grad ({s.reduce} d {s.of}/d name)")]
    rows.append((shown(s.of), "[]", fmt_number(s.loss, precision), "-"))
    for name, value, grad in s.params:
        rows.append((shown(name), str(list(value.shape)), fmt_value(value, precision), fmt_value(grad, precision)))
    return head + aligned(rows)


def _json(s: Summary) -> str:
    import json

    from cg.render.table import json_strings

    def num(v: Any) -> Any:
        return None if v is None else json_strings(np.asarray(v).tolist())

    obj = {"data": s.file, "rows": s.rows, "reduce": s.reduce, "of": s.of, "loss": num(s.loss),
           "params": [{"name": n, "shape": list(v.shape), "value": num(v), "grad": num(g)} for n, v, g in s.params]}
    return json.dumps(obj, indent=2) + "\n"


# ---- --per-row -----------------------------------------------------------------------------------

HEADER = ("row", "name", "index", "value", "grad")


def _per_row(c: Any, of: str, params: list[str]) -> Iterator[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]]:
    """(name, index texts, values [rows, k], grads [rows, k] or None) for the loss and every parameter."""
    for name in (of, *params):
        v = np.asarray(c.values[name])
        n = c.stop - c.start
        shape = v.shape[1:]
        idx = np.array([str(list(i)) if i else "" for i in np.ndindex(shape)], dtype=object)
        g = c.grads.get(name)
        yield name, idx, v.reshape(n, -1), None if g is None else np.asarray(g).reshape(n, -1)


def _csv_lines(chunks: Iterator[Any], of: str, params: list[str]) -> Iterator[str]:
    from cg.render.export import exact

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(HEADER)
    yield buf.getvalue()
    for c in chunks:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        parts = list(_per_row(c, of, params))
        for r in range(c.stop - c.start):
            row = str(c.start + r)
            for name, idx, v, g in parts:
                gs = [""] * v.shape[1] if g is None else [exact(x) for x in g[r].tolist()]
                for k, (i, x) in enumerate(zip(idx.tolist(), v[r].tolist())):
                    writer.writerow((row, name, i, exact(x), gs[k]))
        yield buf.getvalue()


def _parquet(chunks: Iterator[Any], of: str, params: list[str]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols: dict[str, list[Any]] = {h: [] for h in HEADER}
    for c in chunks:
        parts = list(_per_row(c, of, params))
        for r in range(c.stop - c.start):
            for name, idx, v, g in parts:
                k = v.shape[1]
                cols["row"].extend([c.start + r] * k)
                cols["name"].extend([name] * k)
                cols["index"].extend(idx.tolist())
                cols["value"].extend(v[r].tolist())
                cols["grad"].extend([None] * k if g is None else g[r].tolist())
    table = pa.table({"row": pa.array(cols["row"], pa.int64()), "name": pa.array(cols["name"], pa.string()),
                      "index": pa.array(cols["index"], pa.string()), "value": pa.array(cols["value"], pa.float64()),
                      "grad": pa.array(cols["grad"], pa.float64())})
    out = pa.BufferOutputStream()
    pq.write_table(table, out)
    return bytes(out.getvalue().to_pybytes())
