"""`--engine dask` for `cg run --data` and `cg train` (issue 15, part 4): the shipped data set split
into several files, read and run on a LocalCluster of 2 worker processes, equals the in-memory
path to 1e-12 relative; bad data gets the in-memory path's message, with the file's own row."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ROOT, cg

LOGREG = str(ROOT / "graphs" / "binary_logreg.yaml")
CSV = str(ROOT / "graphs" / "data" / "binary_logreg.csv")
SIZES = (100, 37, 88, 75)  # 300 rows in four files of different lengths


def test_without_dask_it_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` raises ImportError
    r = cg("run", LOGREG, "--of", "nll", "--data", CSV, "--engine", "dask")
    assert r.code == 2 and "install cg-graphs[dask]" in r.err and "[CG153]" in r.err
    r = cg("train", LOGREG, "--data", CSV, "--of", "nll", "--params", "w,b", "--engine", "dask",
           "-o", str(tmp_path / "p.npz"))
    assert r.code == 2 and "install cg-graphs[dask]" in r.err and not (tmp_path / "p.npz").exists()


def test_scheduler_and_engine_are_options_of_data() -> None:
    r = cg("run", LOGREG, "--engine", "dask")
    assert r.code == 2 and "options of --data" in r.err
    r = cg("run", LOGREG, "--of", "nll", "--data", CSV, "--scheduler", "tcp://127.0.0.1:1")
    assert r.code == 2 and "--scheduler joins a Dask cluster: give it with --engine dask" in r.err


# ---- on a cluster -----------------------------------------------------------------------------------


def _distributed() -> Any:
    pytest.importorskip("dask.dataframe", reason="dask (the optional extra cg-graphs[dask]) is not installed")
    return pytest.importorskip("distributed", reason="dask (the optional extra cg-graphs[dask]) is not installed")


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    """A LocalCluster of 2 worker processes, one thread each, joined with --scheduler."""
    import logging

    distributed = _distributed()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=logging.CRITICAL) as cluster:
        yield cluster.scheduler_address


def split(tmp_path: Path, sizes: tuple[int, ...] = SIZES) -> str:
    """The shipped CSV as several files rows-0.csv, rows-1.csv...: their glob."""
    header, *rows = Path(CSV).read_text(encoding="utf-8").splitlines()
    start = 0
    for k, n in enumerate(sizes):
        (tmp_path / f"rows-{k}.csv").write_text("\n".join([header, *rows[start:start + n]]) + "\n", encoding="utf-8")
        start += n
    assert start == len(rows)
    return str(tmp_path / "rows-*.csv")


def summary(*args: str) -> dict[str, Any]:
    r = cg("run", LOGREG, "--of", "nll", "-f", "json", *args)
    assert r.code == 0, r.err
    out: dict[str, Any] = r.json()
    return out


def same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a["rows"] == b["rows"] and a["reduce"] == b["reduce"] and a["of"] == b["of"]
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-12, abs=0)
    assert [p["name"] for p in a["params"]] == [p["name"] for p in b["params"]]
    for p, q in zip(a["params"], b["params"]):
        assert p["value"] == q["value"] and p["shape"] == q["shape"]
        np.testing.assert_allclose(p["grad"], q["grad"], rtol=1e-12, atol=0)


@pytest.mark.parametrize("reduce", ["mean", "sum"])
def test_many_csv_files_equal_the_in_memory_path(tmp_path: Path, address: str, reduce: str) -> None:
    pattern = split(tmp_path)
    got = summary("--data", pattern, "--engine", "dask", "--scheduler", address, "--reduce", reduce, "--chunk", "32")
    assert got["data"] == pattern and got["rows"] == 300
    same(got, summary("--data", CSV, "--reduce", reduce))


def test_a_local_cluster_of_2_workers_by_default_and_the_table(tmp_path: Path) -> None:
    _distributed()
    r = cg("run", LOGREG, "--of", "nll", "--data", split(tmp_path), "--engine", "dask", "--inputs", "b=-0.2")
    assert r.code == 0, r.err
    memory = cg("run", LOGREG, "--of", "nll", "--data", CSV, "--inputs", "b=-0.2")
    assert r.out.splitlines()[1:] == memory.out.splitlines()[1:]  # the table at 4 digits; line 0 names the data
    assert r.out.splitlines()[0] == f"mean over 300 rows of {tmp_path / 'rows-*.csv'}"


def test_parquet_files_equal_the_in_memory_path(tmp_path: Path, address: str) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow", reason="pyarrow (the optional extra cg-graphs[data]) is not installed")
    table = np.loadtxt(CSV, delimiter=",", skiprows=1)
    for k, rows in enumerate(np.array_split(table, 3)):
        frame = pd.DataFrame({"x": list(rows[:, :3]), "y": rows[:, 3]})  # x: a list column of whole vectors
        frame.to_parquet(tmp_path / f"part-{k}.parquet")
    got = summary("--data", str(tmp_path / "part-*.parquet"), "--engine", "dask", "--scheduler", address)
    same(got, summary("--data", CSV))


def test_bad_data_names_the_file_and_its_own_row(tmp_path: Path, address: str) -> None:
    pattern = split(tmp_path)
    third = tmp_path / "rows-2.csv"
    lines = third.read_text(encoding="utf-8").splitlines()
    lines[4] = "-0.1,oops," + lines[4].split(",", 2)[2]  # row 5 of the file, column x_1
    third.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = cg("run", LOGREG, "--of", "nll", "--data", pattern, "--engine", "dask", "--scheduler", address)
    alone = cg("run", LOGREG, "--of", "nll", "--data", str(third))
    assert r.code == alone.code == 1
    assert r.err == alone.err == f"{third}:5:2: row 5, column 'x_1': not a number: 'oops' [CG150]\n"
    r = cg("run", LOGREG, "--of", "nll", "--data", "rows-*.csv", "--engine", "dask", "--scheduler", address,
           cwd=tmp_path)  # the file as the user named it, not as Dask's path column has it
    assert r.code == 1 and r.err.startswith("rows-2.csv:5:2: row 5, column 'x_1'")
    lines[4] += ",7"  # a line of 5 cells: pandas' own message, with the file
    third.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = cg("run", LOGREG, "--of", "nll", "--data", pattern, "--engine", "dask", "--scheduler", address)
    assert r.code == 1 and r.err.startswith(f"{third}: cannot be read by dask: ParserError") and "line 5" in r.err


def test_an_unknown_column_and_what_dask_does_not_take(tmp_path: Path, address: str) -> None:
    (tmp_path / "a.csv").write_text("x_0,x_1,x_2,y,z\n1,2,3,1,5\n", encoding="utf-8")
    r = cg("run", LOGREG, "--of", "nll", "--data", str(tmp_path / "a.csv"), "--engine", "dask", "--scheduler", address)
    assert r.code == 1 and "[CG151]" in r.err and "column 'z': not an input of the graph" in r.err
    pattern = split(tmp_path / "", SIZES)
    r = cg("run", LOGREG, "--of", "nll", "--data", pattern, "--engine", "dask", "--per-row", "-o",
           str(tmp_path / "g.csv"))
    assert r.code == 2 and "[CG153]" in r.err and "--per-row" in r.err and not (tmp_path / "g.csv").exists()
    r = cg("run", LOGREG, "--of", "nll", "--data", str(tmp_path / "none-*.csv"), "--engine", "dask")
    assert r.code == 2 and "no file matches" in r.err
    r = cg("run", LOGREG, "--of", "nll", "--data", str(ROOT / "graphs" / "data" / "*.*"), "--engine", "dask")
    assert r.code == 2 and "reads .csv or .parquet files, one kind at a time" in r.err


def test_train_on_dask_takes_the_same_steps(tmp_path: Path, address: str) -> None:
    pattern = split(tmp_path)
    args = ["--of", "nll", "--params", "w,b", "--lr", "0.5", "--epochs", "6", "--batch", "50", "--shuffle",
            "--seed", "4"]
    r = cg("train", LOGREG, "--data", pattern, *args, "--engine", "dask", "--scheduler", address,
           "-o", str(tmp_path / "dask.npz"))
    assert r.code == 0, r.err
    m = cg("train", LOGREG, "--data", CSV, *args, "-o", str(tmp_path / "memory.npz"))
    assert m.code == 0, m.err
    assert r.out == m.out  # the curve and the parameters, as printed
    on_dask, in_memory = np.load(tmp_path / "dask.npz"), np.load(tmp_path / "memory.npz")
    for name in ("w", "b"):
        np.testing.assert_allclose(on_dask[name], in_memory[name], rtol=1e-12, atol=0)
    loss = [[float(x) for x in line.split(",")[1:]] for line in
            (tmp_path / "dask.curve.csv").read_text(encoding="utf-8").splitlines()[1:]]
    ref = [[float(x) for x in line.split(",")[1:]] for line in
           (tmp_path / "memory.curve.csv").read_text(encoding="utf-8").splitlines()[1:]]
    np.testing.assert_allclose(loss, ref, rtol=1e-12)
    r = cg("train", LOGREG, "--data", pattern, "--of", "nll", "--params", "x", "--engine", "dask",
           "--scheduler", address)
    assert r.code == 2 and "--params x: it is a column of the data" in r.err
