"""`cg run FILE --data rows.csv|rows.npz|rows.parquet` (issue 15, part 1): the mean loss and the
gradient of the empirical risk over a data set, per-row gradients written atomically, bad data
refused with its row and column, a progress bar on a terminal only."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import GRAPHS, ROOT, cg

import cg as cglib
from cg.eval.batch import run_rows
from cg.eval.interp import run
from cg.graph.data import load_data

LOGREG = "graphs/binary_logreg.yaml"  # the notes' logistic regression: w [3], b; data x [3], y
CSV = "graphs/data/binary_logreg.csv"
NPZ = "graphs/data/binary_logreg.npz"
HEADER = "x_0,x_1,x_2,y\n"


def shipped() -> tuple[np.ndarray, np.ndarray]:
    table = np.loadtxt(ROOT / CSV, delimiter=",", skiprows=1)
    return table[:, :3], table[:, 3]


def numpy_logreg(x: np.ndarray, y: np.ndarray, w: np.ndarray, b: float) -> dict[str, Any]:
    """The binary logistic regression by hand: nll = -(y log s + (1 - y) log(1 - s)), s = sigmoid(w.x + b);
    d nll/d z = s - y, so d nll/d w = (s - y) x and d nll/d b = s - y, per row."""
    z = x @ w + b
    s = 1 / (1 + np.exp(-z))
    nll = -(y * np.log(s) + (1 - y) * np.log(1 - s))
    return {"nll": nll, "w": (s - y)[:, None] * x, "b": s - y}


W0, B0 = np.array([0.4, -0.6, 0.2]), 0.5  # binary_logreg.yaml's defaults


def summary(*args: str) -> dict[str, Any]:
    r = cg("run", LOGREG, "--of", "nll", "-f", "json", *args)
    assert r.code == 0, r.err
    out: dict[str, Any] = r.json()
    return out


# ---- the numbers -----------------------------------------------------------------------------------


def test_the_mean_loss_and_gradients_equal_numpy_on_the_shipped_data() -> None:
    x, y = shipped()
    assert len(y) == 300 and set(y) == {0.0, 1.0}
    ref = numpy_logreg(x, y, W0, B0)
    out = summary("--data", CSV)
    assert out["rows"] == 300 and out["reduce"] == "mean" and out["of"] == "nll" and out["data"] == CSV
    assert out["loss"] == pytest.approx(ref["nll"].mean(), rel=1e-12)
    params = {p["name"]: p for p in out["params"]}
    assert list(params) == ["w", "b"]
    assert params["w"]["shape"] == [3] and params["w"]["value"] == W0.tolist() and params["b"]["shape"] == []
    np.testing.assert_allclose(params["w"]["grad"], ref["w"].mean(axis=0), rtol=1e-12)
    assert params["b"]["grad"] == pytest.approx(ref["b"].mean(), rel=1e-12)


def test_the_mean_equals_the_per_row_loop_of_run() -> None:
    x, y = shipped()
    graph = cglib.load(GRAPHS / "binary_logreg.yaml")
    per = [run(graph, {"x": xi, "y": yi}, of="nll") for xi, yi in zip(x, y)]
    out = summary("--data", CSV)
    assert out["loss"] == pytest.approx(np.mean([r.values["nll"] for r in per]), rel=1e-12)
    params = {p["name"]: p for p in out["params"]}
    np.testing.assert_allclose(params["w"]["grad"], np.mean([r.grads["w"] for r in per], axis=0), rtol=1e-12)
    assert params["b"]["grad"] == pytest.approx(np.mean([r.grads["b"] for r in per]), rel=1e-12)


def test_npz_sum_chunks_and_given_parameters() -> None:
    x, y = shipped()
    mean = summary("--data", CSV)
    assert summary("--data", NPZ)["loss"] == pytest.approx(mean["loss"], rel=1e-14)  # x as one column of vectors
    total = summary("--data", CSV, "--reduce", "sum", "--chunk", "7")
    assert total["reduce"] == "sum" and total["loss"] == pytest.approx(300 * mean["loss"], rel=1e-12)
    np.testing.assert_allclose(total["params"][0]["grad"], 300 * np.array(mean["params"][0]["grad"]), rtol=1e-12)
    w = np.array([1.0, -1.5, 0.5])
    moved = summary("--data", CSV, "--inputs", "w=[1,-1.5,0.5],b=-0.2")
    ref = numpy_logreg(x, y, w, -0.2)
    assert moved["loss"] == pytest.approx(ref["nll"].mean(), rel=1e-12)
    np.testing.assert_allclose(moved["params"][0]["grad"], ref["w"].mean(axis=0), rtol=1e-12)


def test_the_table_shows_the_rows_the_loss_and_each_parameter() -> None:
    r = cg("run", LOGREG, "--of", "nll", "--data", CSV)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0] == f"mean over 300 rows of {CSV}"
    assert lines[1].split()[:4] == ["name", "shape", "value", "grad"]
    assert [line.split()[0] for line in lines[2:]] == ["nll", "w", "b"]
    assert lines[3].split()[1] == "[3]"


def test_the_first_output_is_the_default_loss() -> None:
    out = cg("run", LOGREG, "--data", CSV, "-f", "json").json()  # l, the log-likelihood: minus nll
    assert out["of"] == "l" and out["loss"] == pytest.approx(-summary("--data", CSV)["loss"], rel=1e-12)


def test_a_matrix_input_takes_its_columns_row_major_and_an_int_label(tmp_path: Path) -> None:
    graph = cglib.load(GRAPHS / "multiclass_logreg.yaml")  # W [3, 4], x [4], b [3], y int
    rng = np.random.default_rng(0)
    Ws = rng.normal(size=(5, 3, 4))
    labels = [0, 2, 1, 1, 0]
    names = [f"W_{i}_{j}" for i in range(3) for j in range(4)]
    lines = [",".join([*names, "y"])] + [",".join([*map(repr, W.ravel().tolist()), str(k)]) for W, k in zip(Ws, labels)]
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    data = load_data(graph, str(tmp_path / "m.csv"), {})
    np.testing.assert_array_equal(data.columns["W"], Ws)
    assert data.columns["y"].dtype == np.int64 and data.columns["y"].tolist() == labels
    out = cg("run", "graphs/multiclass_logreg.yaml", "--data", str(tmp_path / "m.csv"), "-f", "json").json()
    per = [run(graph, {"W": W, "y": k}) for W, k in zip(Ws, labels)]
    assert out["loss"] == pytest.approx(np.mean([r.values["l"] for r in per]), rel=1e-12)
    assert [p["name"] for p in out["params"]] == ["x", "b"]
    np.testing.assert_allclose(out["params"][0]["grad"], np.mean([r.grads["x"] for r in per], axis=0), rtol=1e-12)


def test_run_rows_chunks_cover_every_row_with_a_batch_axis() -> None:
    graph = cglib.load(GRAPHS / "binary_logreg.yaml")
    x, y = shipped()
    chunks = list(run_rows(graph, {"x": x[:10], "y": y[:10]}, of="nll", chunk=4))
    assert [(c.start, c.stop) for c in chunks] == [(0, 4), (4, 8), (8, 10)]
    assert chunks[0].values["w"].shape == (4, 3) and chunks[0].grads["w"] is not None
    assert chunks[0].grads["w"].shape == (4, 3) and chunks[2].values["nll"].shape == (2,)


# ---- --per-row ---------------------------------------------------------------------------------------


def test_per_row_csv_has_one_line_per_row_name_and_index(tmp_path: Path) -> None:
    x, y = shipped()
    ref = numpy_logreg(x, y, W0, B0)
    out = tmp_path / "grads.csv"
    r = cg("run", LOGREG, "--of", "nll", "--data", CSV, "--per-row", "-o", str(out), "--chunk", "64")
    assert r.code == 0, r.err
    assert r.out.startswith("mean over 300 rows")  # the summary still goes to stdout
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert list(rows[0]) == ["row", "name", "index", "value", "grad"]
    assert len(rows) == 300 * (1 + 3 + 1)  # nll, w[0..2], b
    got = {(int(r["row"]), r["name"], r["index"]): (float(r["value"]), float(r["grad"])) for r in rows}
    for k in (0, 57, 299):
        assert got[(k, "nll", "")][0] == pytest.approx(ref["nll"][k], rel=1e-12)
        assert got[(k, "b", "")] == (B0, pytest.approx(ref["b"][k], rel=1e-12))
        for j in range(3):
            assert got[(k, "w", f"[{j}]")] == (W0[j], pytest.approx(ref["w"][k, j], rel=1e-12))


def test_per_row_to_stdout_is_the_csv_alone() -> None:
    r = cg("run", LOGREG, "--of", "nll", "--data", CSV, "--per-row")
    assert r.code == 0 and r.out.startswith("row,name,index,value,grad\n0,nll,,")
    assert len(r.out.splitlines()) == 1 + 300 * 5


def test_per_row_refuses_other_suffixes(tmp_path: Path) -> None:
    r = cg("run", LOGREG, "--data", CSV, "--per-row", "-o", str(tmp_path / "g.json"))
    assert r.code == 2 and "--per-row writes a .csv or .parquet" in r.err
    assert not (tmp_path / "g.json").exists()


def test_data_options_need_data() -> None:
    r = cg("run", LOGREG, "--per-row")
    assert r.code == 2 and "options of --data" in r.err
    r = cg("run", LOGREG, "--data", CSV, "--mode", "forward", "--wrt", "b")
    assert r.code == 2 and "--data runs reverse mode" in r.err


# ---- bad data: message, row, column, exit 1, no output file -------------------------------------------

BAD = [
    ("not-a-number", HEADER + "1,2,3,1\n1,abc,3,0\n", "row 3, column 'x_1': not a number: 'abc'", (3, 2)),
    ("empty-cell", HEADER + "1,2,3,1\n1,2,3,0\n1,2,,1\n", "row 4, column 'x_2': empty cell", (4, 3)),
    ("nan", HEADER + "nan,2,3,1\n", "row 2, column 'x_0': NaN and infinity are not allowed", (2, 1)),
    ("inf", HEADER + "1,2,3,-inf\n", "row 2, column 'y': NaN and infinity are not allowed", (2, 4)),
    ("overflow", HEADER + "1,2,1e999,1\n", "row 2, column 'x_2': '1e999' is too large for float64", (2, 3)),
    ("underscore", HEADER + "1,2,3,1\n1,2,1_0,1\n", "row 3, column 'x_2': not a number: '1_0'", (3, 3)),
    ("short-row", HEADER + "1,2,3,1\n1,2\n", "row 3: 2 cells, but the header has 4 columns", None),
    ("missing-element", "x_0,x_2,y\n1,2,1\n", "input 'x' has shape [3]: columns x_0 ... x_2 (row-major); missing 'x_1'",
     None),
    ("unknown-column", HEADER.strip() + ",bb\n1,2,3,1,5\n",
     "row 1, column 'bb': not an input of the graph (did you mean 'b'?); the inputs are 'w', 'x', 'b', 'y'", (1, 5)),
    ("stray-element", "x_0,x_1,x_2,x_3,y\n1,2,3,4,1\n",
     "row 1, column 'x_3': no element of input 'x', which has shape [3]", (1, 4)),
    ("no-rows", HEADER, "no rows: the data file holds no examples", None),
    ("no-header", "", "row 1: the first row must be a header of column names", None),
    ("duplicate-column", "x_0,x_0,x_1,x_2,y\n1,1,2,3,1\n", "row 1: column 'x_0' named twice in the header", None),
]


@pytest.mark.parametrize(("text", "message", "at"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
@pytest.mark.parametrize("per_row", [False, True], ids=["summary", "per-row"])
def test_bad_data_is_refused_with_row_and_column(tmp_path: Path, text: str, message: str, at: Any,
                                                 per_row: bool) -> None:
    data = tmp_path / "rows.csv"
    data.write_text(text)
    out = tmp_path / "out.csv"
    r = cg("run", LOGREG, "--of", "nll", "--data", str(data), "-o", str(out), *(["--per-row"] * per_row))
    assert r.code == 1, r.err
    where = f"{data}:{at[0]}:{at[1]}: " if at else f"{data}: "
    assert r.err.startswith(where + message), r.err
    assert "[CG15" in r.err and "Traceback" not in r.err
    assert not out.exists() and list(tmp_path.iterdir()) == [data]  # no output, no temporary file


def test_a_missing_column_for_an_input_without_default(tmp_path: Path) -> None:
    (tmp_path / "g.yaml").write_text("cg: 1\ninputs:\n  x: {shape: [2]}\n  w: [1.0, 2.0]\n  t: {}\n"
                                     "nodes:\n  d: {op: matmul, in: [w, x]}\n  e: {op: sub, in: [d, t]}\n"
                                     "  l: {op: mul, in: [e, e]}\noutputs: [l]\n")
    (tmp_path / "rows.csv").write_text("x_0,x_1\n1,2\n")
    r = cg("run", str(tmp_path / "g.yaml"), "--data", str(tmp_path / "rows.csv"))
    assert r.code == 1 and "no column for input 't' (it has no default and no --inputs value)" in r.err
    assert cg("run", str(tmp_path / "g.yaml"), "--data", str(tmp_path / "rows.csv"), "--inputs", "t=1").code == 0


def test_a_float_cell_for_an_int_input(tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text("y\n1\n2.5\n")
    r = cg("run", "graphs/multiclass_logreg.yaml", "--data", str(tmp_path / "rows.csv"))
    assert r.code == 1
    assert f"{tmp_path / 'rows.csv'}:3:1: row 3, column 'y': '2.5' is not an integer, but input 'y' is an" in r.err


def test_ignore_columns_skips_what_is_no_input(tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text(HEADER.strip() + ",id,note\n1,2,3,1,7,some text\n1,2,3,0,8,\n")
    r = cg("run", LOGREG, "--data", str(tmp_path / "rows.csv"), "--ignore-columns", "-f", "json")
    assert r.code == 0 and r.json()["rows"] == 2  # what a skipped column holds is never looked at


def test_the_same_input_in_data_and_inputs_is_refused() -> None:
    r = cg("run", LOGREG, "--data", CSV, "--inputs", "y=1")
    assert r.code == 2 and "input 'y' is given with --inputs and is also column 'y'" in r.err


def test_a_nonfinite_loss_names_its_row(tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text(HEADER + "1,2,3,1\n1000,0,0,0\n")  # s = 1 exactly: log(1 - s) = -inf
    out = tmp_path / "g.csv"
    r = cg("run", LOGREG, "--of", "nll", "--data", str(tmp_path / "rows.csv"), "--per-row", "-o", str(out))
    assert r.code == 1 and "row 3 (example 1): the value is NaN or infinite" in r.err and "[CG200]" in r.err
    assert not out.exists()
    r = cg("run", LOGREG, "--of", "nll", "--data", str(tmp_path / "rows.csv"), "--nonfinite", "keep", "-f", "json")
    assert r.code == 0 and "not finite (NaN or Inf) in 1 row, the first row 3 (example 1)" in r.err
    assert r.json()["loss"] == "Infinity"


def test_limits_apply_to_the_file_and_to_a_chunk(tmp_path: Path) -> None:
    r = cg("--max-bytes", "4000", "run", LOGREG, "--data", CSV)
    assert r.code == 1 and "data file larger than 4,000 bytes" in r.err and "[CG004]" in r.err
    r = cg("--max-elements", "1000", "run", LOGREG, "--data", CSV, "--chunk", "500")
    assert r.code == 2 and "lower --chunk" in r.err and "[CG004]" in r.err
    assert cg("--max-elements", "1000", "run", LOGREG, "--data", CSV, "--chunk", "100").code == 0
    r = cg("--max-total", "1000", "run", LOGREG, "--data", NPZ)  # 1,200 numbers: an .npz bomb stops here
    assert r.code == 1 and "the arrays hold more than 1,000 numbers" in r.err and "[CG004]" in r.err


def test_files_that_are_no_data(tmp_path: Path) -> None:
    r = cg("run", LOGREG, "--data", str(tmp_path / "none.csv"))
    assert r.code == 2 and "no such file" in r.err
    r = cg("run", LOGREG, "--data", str(tmp_path / "rows.txt"))
    assert r.code == 2 and "expected a .csv, .npz or .parquet file" in r.err
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really")
    r = cg("run", LOGREG, "--data", str(tmp_path / "bad.npz"))
    assert r.code == 1 and "not a valid .npz archive" in r.err


# ---- .npz ----------------------------------------------------------------------------------------------


def test_npz_never_unpickles_and_checks_values(tmp_path: Path) -> None:
    x, y = shipped()
    np.savez(tmp_path / "obj.npz", x=np.array([[1, 2, 3]], dtype=object), y=np.array([1.0]))
    r = cg("run", LOGREG, "--data", str(tmp_path / "obj.npz"))
    assert r.code == 1 and "holds Python objects" in r.err
    bad = x[:5].copy()
    bad[3, 1] = np.nan
    np.savez(tmp_path / "nan.npz", x=bad, y=y[:5])
    r = cg("run", LOGREG, "--data", str(tmp_path / "nan.npz"))
    assert r.code == 1 and ":5:1: row 5, column 'x': NaN and infinity are not allowed" in r.err
    np.savez(tmp_path / "len.npz", x=x[:5], y=y[:4])
    r = cg("run", LOGREG, "--data", str(tmp_path / "len.npz"))
    assert r.code == 1 and "column 'x' has 5 rows but 'y' has 4" in r.err
    np.savez(tmp_path / "shape.npz", x=x[:5, :2], y=y[:5])
    r = cg("run", LOGREG, "--data", str(tmp_path / "shape.npz"))
    assert r.code == 1 and "holds values of shape [2], but input 'x' has shape [3]" in r.err


# ---- Parquet (pyarrow: the optional extra cg-graphs[data]) ---------------------------------------------


def test_parquet_without_pyarrow_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rows.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` raises ImportError
    r = cg("run", LOGREG, "--data", str(tmp_path / "rows.parquet"))
    assert r.code == 2 and "install cg-graphs[data]" in r.err and "[CG152]" in r.err
    r = cg("run", LOGREG, "--data", CSV, "--per-row", "-o", str(tmp_path / "g.parquet"))
    assert r.code == 2 and "install cg-graphs[data]" in r.err and not (tmp_path / "g.parquet").exists()


def _pyarrow() -> Any:
    return pytest.importorskip("pyarrow", reason="pyarrow (the optional extra cg-graphs[data]) is not installed")


def test_parquet_columns_flat_and_as_lists_equal_the_csv(tmp_path: Path) -> None:
    pa = _pyarrow()
    import pyarrow.parquet as pq

    x, y = shipped()
    pq.write_table(pa.table({"x_0": x[:, 0], "x_1": x[:, 1], "x_2": x[:, 2], "y": y}), tmp_path / "flat.parquet")
    pq.write_table(pa.table({"x": pa.array(x.tolist()), "y": y}), tmp_path / "lists.parquet")
    want = summary("--data", CSV)
    for name in ("flat", "lists"):
        got = summary("--data", str(tmp_path / f"{name}.parquet"))
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-14) and got["rows"] == 300
        np.testing.assert_allclose(got["params"][0]["grad"], want["params"][0]["grad"], rtol=1e-14)


def test_parquet_bad_cells(tmp_path: Path) -> None:
    pa = _pyarrow()
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": pa.array([[1.0, 2.0, 3.0], [1.0, 2.0]]), "y": [1.0, 0.0]}), tmp_path / "r.parquet")
    r = cg("run", LOGREG, "--data", str(tmp_path / "r.parquet"))
    assert r.code == 1 and ":3:1: row 3, column 'x': a list of shape [2]" in r.err and "ragged" in r.err
    pq.write_table(pa.table({"x_0": [1.0, None], "x_1": [1.0, 2.0], "x_2": [1.0, 2.0], "y": [1.0, 0.0]}),
                   tmp_path / "n.parquet")
    r = cg("run", LOGREG, "--data", str(tmp_path / "n.parquet"))
    assert r.code == 1 and ":3:1: row 3, column 'x_0': empty cell" in r.err
    pq.write_table(pa.table({"x": pa.array([[1.0, 2.0, 3.0]]), "y": ["a"]}), tmp_path / "s.parquet")
    r = cg("run", LOGREG, "--data", str(tmp_path / "s.parquet"))
    assert r.code == 1 and "column 'y': holds string, not numbers" in r.err
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    r = cg("run", LOGREG, "--data", str(tmp_path / "junk.parquet"))
    assert r.code == 1 and "not a valid Parquet file" in r.err


def test_per_row_parquet(tmp_path: Path) -> None:
    _pyarrow()
    import pyarrow.parquet as pq

    out = tmp_path / "g.parquet"
    r = cg("run", LOGREG, "--of", "nll", "--data", CSV, "--per-row", "-o", str(out))
    assert r.code == 0, r.err
    table = pq.read_table(out)
    assert table.column_names == ["row", "name", "index", "value", "grad"] and table.num_rows == 1500
    x, y = shipped()
    ref = numpy_logreg(x, y, W0, B0)
    rows = table.to_pylist()
    w1 = [r["grad"] for r in rows if r["name"] == "w" and r["index"] == "[1]"]
    np.testing.assert_allclose(w1, ref["w"][:, 1], rtol=1e-12)


# ---- the shipped data set and its generator ------------------------------------------------------------


def test_the_generator_makes_the_shipped_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_logreg_data", ROOT / "tools" / "make_logreg_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "OUT", tmp_path)
    module.main()
    assert (tmp_path / "binary_logreg.csv").read_bytes() == (ROOT / CSV).read_bytes()
    with np.load(tmp_path / "binary_logreg.npz") as fresh, np.load(ROOT / NPZ) as kept:
        assert sorted(fresh) == sorted(kept) == ["x", "y"]
        assert all(np.array_equal(fresh[k], kept[k]) for k in fresh)


# ---- the progress bar: on a terminal only ---------------------------------------------------------------


def test_a_progress_bar_over_rows_on_a_terminal_only() -> None:
    from test_progress import HIDE_CURSOR, on_a_terminal, terminal_env

    seen, piped, code = on_a_terminal("run", LOGREG, "--of", "nll", "--data", CSV, "--chunk", "10", "-f", "json",
                                      env=terminal_env(CG_PROGRESS_DELAY="0"), stdout_piped=True)
    assert code == 0 and HIDE_CURSOR in seen and "rows" in seen
    assert json.loads(piped)["rows"] == 300
    r = cg("run", LOGREG, "--of", "nll", "--data", CSV, "--chunk", "10", env={"CG_PROGRESS_DELAY": "0"})
    assert r.code == 0 and r.err == ""  # on a pipe: nothing but the result
