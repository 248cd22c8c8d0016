"""`--engine dask`: `cg run --data` and `cg train` over many CSV or Parquet files on a Dask cluster.

The files (a list, or a glob such as 'rows-*.csv') are read by `dask.dataframe` (read_csv with
every cell a string, read_parquet one partition per file), so no process holds more than one
file. Each partition is bound to the graph's inputs by cg/graph/data.py (the same columns x_0,
x_1, ..., the same checks of every cell, rows numbered as in the file itself: the header is row
1) and run through the same batched code (cg/eval/batch.py: run_rows) on a worker, which sends
back only the sums of the loss and of each parameter's gradient, and the row count; those are
added up here (a few numbers per file) into the same summary as the in-memory path.

`cg train --engine dask` keeps the bound partitions on the workers: each step sends the
parameters and, to each partition, its rows of the minibatch; the partitions' sums come back and
make one mean gradient (one reduction per step), the same minibatches as in memory.

A LocalCluster of 2 worker processes (1 thread each) is started, or `--scheduler ADDRESS` joins
a running one (whose workers must have cg installed). dask is imported only here, lazily.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from cg.cli.common import shown
from cg.cli.sums import Totals, add_chunk
from cg.errors import CgError, Diagnostic, UsageError

INSTALL = "pip install cg-graphs[dask]"
PATH = "__cg_file__"  # the column read_csv adds: the file each row came from
FORMATS = (".csv", ".parquet")


def need_dask() -> None:
    """Exit 2 with how to install it when dask (with dataframe and distributed) is missing."""
    try:
        import dask.dataframe  # noqa: F401
        import distributed  # noqa: F401
    except ImportError:
        raise UsageError.one("CG153", f"--engine dask needs dask and distributed: {INSTALL}") from None
    except AttributeError as e:  # a dask older than 2023.9 on numpy 2 (np.round_ is gone)
        raise UsageError.one("CG153", f"--engine dask: this dask does not work with numpy {np.__version__} ({e});"
                             f" {INSTALL} installs dask 2023.9.0 or later") from None


def files_of(pattern: str) -> tuple[list[str], str]:
    """The data files: the pattern's matches (sorted), all .csv or all .parquet."""
    files = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
    if not files:
        raise UsageError.one("CG153", f"--data {shown(pattern)}: no file matches")
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        raise UsageError.one("CG001", f"--data: no such file: {shown(missing[0])}")
    suffixes = {os.path.splitext(f)[1].lower() for f in files}
    if len(suffixes) > 1 or not suffixes <= set(FORMATS):
        raise UsageError.one("CG153", f"--data {shown(pattern)}: --engine dask reads .csv or .parquet files, one kind"
                             f" at a time (found {', '.join(sorted(suffixes))})")
    return files, suffixes.pop()


@contextmanager
def client(scheduler: str | None) -> Iterator[Any]:
    """A client of the cluster at `scheduler`, or of a LocalCluster of 2 single-threaded workers."""
    import importlib
    import logging

    dist: Any = importlib.import_module("distributed")  # untyped: its calls are Any
    if scheduler:
        with dist.Client(scheduler, timeout="20s") as joined:
            yield joined
        return
    with dist.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.CRITICAL) as cluster, dist.Client(cluster) as local:
        yield local


@dataclass(frozen=True)
class Job:
    """What every partition needs: the graph, the fixed inputs, the loss and the parameters."""

    graph: Any
    given: Mapping[str, Any]
    of: str
    params: Sequence[str]
    chunk: int
    ignore_columns: bool
    nonfinite: str = "error"
    names: Mapping[str, str] = field(default_factory=dict)  # a file's absolute path -> as the user wrote it


@dataclass
class Part:
    """A partition's answer: its file, and its sums or the error it met (CgError does not pickle)."""

    file: str
    totals: Totals | None = None
    error: tuple[type[CgError], list[Diagnostic]] | None = None
    data: Any = None  # the bound columns (train)
    rows: int = 0


def partitions(files: list[str], suffix: str) -> list[tuple[Any, str | None]]:
    """(delayed pandas frame, its file or None: in the column PATH) for each partition."""
    import dask
    import dask.dataframe as dd

    with dask.config.set({"dataframe.convert-string": False}):  # list columns stay lists, not their text
        if suffix == ".csv":
            frame = dd.read_csv(files, dtype=str, keep_default_na=False, na_filter=False, blocksize=None,
                                include_path_column=PATH)
            return [(d, None) for d in frame.to_delayed()]
        return [(d, f) for f in files for d in dd.read_parquet(f, split_row_groups=False).to_delayed()]


def _files(parts: list[tuple[Any, str | None]], files: list[str]) -> list[str]:
    """The file of each partition: read_csv with blocksize=None makes one partition per file, in order."""
    return [file or (files[k] if len(parts) == len(files) else "(a partition)") for k, (_, file) in enumerate(parts)]


def _bound(frame: Any, file: str | None, job: Job) -> Part:
    """The partition's columns bound to the graph's inputs (cg/graph/data.py: bind), as a Part."""
    from cg.graph.data import array_column, bind, text_columns

    if file is None:
        file = str(frame[PATH].iloc[0]) if len(frame) else "(an empty file)"
        file = job.names.get(os.path.abspath(file), file)
    try:
        names = [str(c) for c in frame.columns if c != PATH]
        if PATH in frame.columns:
            columns = text_columns(names, [frame[c].to_numpy(dtype=object) for c in names])
        else:
            columns = [array_column(file, n, k + 1, frame[n].to_numpy()) for k, n in enumerate(names)]
        data = bind(job.graph, file, columns, job.given, ignore_columns=job.ignore_columns)
    except CgError as e:
        return Part(file, error=(type(e), e.diagnostics))
    return Part(file, data=data, rows=data.rows)


def _sums(frame: Any, file: str | None, job: Job) -> Part:
    """On a worker: a partition's sums of the loss and of each parameter's gradient."""
    from cg.eval.batch import run_rows

    part = _bound(frame, file, job)
    if part.error is not None or not part.rows:
        return part
    totals = Totals()
    params = [i.name for i in job.graph.inputs if i.name not in part.data.columns]  # as the in-memory path
    try:
        for c in run_rows(job.graph, part.data.columns, job.given, of=job.of, chunk=job.chunk, on_nonfinite="keep"):
            add_chunk(totals, c, job.of, params, part.file, job.nonfinite)
    except CgError as e:
        return Part(part.file, error=(type(e), e.diagnostics))
    return Part(part.file, totals=totals, rows=part.rows)


def _raise(part: Part) -> None:
    if part.error is not None:
        kind, diagnostics = part.error
        raise kind(diagnostics)


def _gathered(futures: list[Any], files: Sequence[str], bar: Any, what: str) -> list[Any]:
    """The futures' results in their order, the bar counting them as they finish; an error of
    Dask's own reading (a ragged CSV line, a file of other columns) is a DataError naming the file
    of the partition (`files`: one per future)."""
    import importlib

    from cg.graph.data import DataError

    dist: Any = importlib.import_module("distributed")
    for done, _ in enumerate(dist.as_completed(futures), 1):
        bar.report(what, done, len(futures))
    for future, file in zip(futures, files):
        if future.status == "error":
            e = future.exception()
            text = " ".join(str(e).split())[:300]
            if isinstance(e, (ValueError, OSError, TypeError, KeyError)):  # pandas' ParserError is a ValueError
                raise DataError.one("CG150", f"cannot be read by dask: {type(e).__name__}: {text}", file=file)
            future.result()  # anything else is a bug: its traceback
    return [f.result() for f in futures]


@dataclass
class Summed:
    totals: Totals
    files: int
    bad: list[tuple[str, int]] = field(default_factory=list)  # (file, example) with a NaN or Inf


def run_dask(pattern: str, job: Job, scheduler: str | None, bar: Any) -> Summed:
    """The sums over every row of the files, computed on the cluster."""
    from dask.delayed import delayed

    need_dask()
    files, suffix = files_of(pattern)
    job = replace(job, names={os.path.abspath(f): f for f in files})
    bar.step(f"starting dask ({scheduler or 'a local cluster of 2 workers'})")
    with client(scheduler) as c:
        bar.step(f"running {len(files):,} file{'s' * (len(files) != 1)} on dask", total=len(files))
        parts_of = partitions(files, suffix)
        tasks = [delayed(_sums)(frame, file, job) for frame, file in parts_of]
        parts: list[Part] = _gathered(c.compute(tasks), _files(parts_of, files), bar, "partitions")
    summed = Summed(Totals(), len(files))
    for part in parts:
        _raise(part)
        if part.totals is not None:
            _merge(summed, part.totals, part.file)
    return summed


def _merge(summed: Summed, t: Totals, file: str) -> None:
    total = summed.totals
    total.rows += t.rows
    total.loss += t.loss
    for name, g in t.grads.items():
        if name not in total.values:
            total.values[name], total.grads[name] = t.values[name], g
        elif g is not None:
            total.grads[name] = total.grads[name] + g  # type: ignore[operator]
    summed.bad.extend((file, k) for k in t.nonfinite)


# ---- cg train --engine dask ----------------------------------------------------------------------


def _step_sums(part: Part, rows: np.ndarray, given: Mapping[str, Any], job: Job) -> tuple[int, float, dict[str, Any]]:
    """On a worker: the sums over some rows of a bound partition (0-based within it)."""
    from cg.eval.batch import run_rows

    cols = {k: v[rows] for k, v in part.data.columns.items()}
    [chunk] = run_rows(job.graph, cols, given, of=job.of, chunk=len(rows))
    grads = {p: np.asarray(chunk.grads[p]).sum(axis=0) for p in job.params}
    return len(rows), float(np.sum(chunk.values[job.of])), grads


def _rows_of(part: Part) -> Part:
    names = None if part.data is None else set(part.data.columns)
    return Part(part.file, error=part.error, rows=part.rows, data=names)  # the inputs' names, not their columns


def train_dask(pattern: str, job: Job, scheduler: str | None, bar: Any, train: Any) -> Any:
    """Run `train(n, step, inputs)` (cg/eval/train.py: descend) with each step reduced over the cluster;
    `inputs`: the names of the inputs the data holds."""
    from dask.delayed import delayed

    need_dask()
    files, suffix = files_of(pattern)
    job = replace(job, names={os.path.abspath(f): f for f in files})
    bar.step(f"starting dask ({scheduler or 'a local cluster of 2 workers'})")
    with client(scheduler) as c:
        bar.step(f"reading {len(files):,} file{'s' * (len(files) != 1)} on dask", total=len(files))
        parts_of = partitions(files, suffix)
        held = c.compute([delayed(_bound)(frame, file, job) for frame, file in parts_of])
        heads: list[Part] = _gathered([c.submit(_rows_of, h) for h in held], _files(parts_of, files), bar,
                                      "partitions")
        for head in heads:
            _raise(head)
        sizes = np.array([h.rows for h in heads])
        if not sizes.sum():
            from cg.graph.data import DataError

            raise DataError.one("CG150", "no rows: the data files hold no examples", file=pattern)
        starts = np.concatenate([[0], np.cumsum(sizes)])
        shared = c.scatter(job, broadcast=True, hash=False)

        def step(rows: np.ndarray, given: Mapping[str, Any]) -> tuple[float, dict[str, np.ndarray]]:
            futures = []
            for k, part in enumerate(held):
                mine = rows[(rows >= starts[k]) & (rows < starts[k + 1])] - starts[k]
                if len(mine):
                    futures.append(c.submit(_step_sums, part, mine, dict(given), shared, pure=False))
            sums = c.gather(futures)
            n = sum(s[0] for s in sums)
            grads = {p: sum(s[2][p] for s in sums) / n for p in job.params}
            return sum(s[1] for s in sums) / n, grads

        return train(int(sizes.sum()), step, set().union(*(h.data or set() for h in heads)))
