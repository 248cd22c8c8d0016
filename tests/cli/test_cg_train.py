"""`cg train`: gradient descent on the shipped data set (graphs/data/binary_logreg.csv), the
parameters as an .npz that a graph can load, the curve as CSV and SVG, a bar on a terminal only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import ROOT, cg

LOGREG = str(ROOT / "graphs" / "binary_logreg.yaml")
CSV = str(ROOT / "graphs" / "data" / "binary_logreg.csv")
ARGS = ["--data", CSV, "--of", "nll", "--params", "w,b", "--lr", "0.5", "--epochs", "30"]


def accuracy(w: np.ndarray, b: float) -> float:
    rows = np.loadtxt(CSV, delimiter=",", skiprows=1)
    x, y = rows[:, :3], rows[:, 3]
    return float(np.mean(((x @ w + b) > 0) == (y == 1)))


def test_training_the_notes_logistic_regression(tmp_path: Path) -> None:
    out = tmp_path / "params.npz"
    r = cg("train", LOGREG, *ARGS, "-o", str(out))
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0] == "epoch  mean loss  |grad|" and len([ln for ln in lines if ln[:1].isdigit()]) == 30
    trained = np.load(out)
    assert sorted(trained.files) == ["b", "w"]
    assert accuracy(trained["w"], float(trained["b"])) >= 0.78  # the README states it
    curve = (tmp_path / "params.curve.csv").read_text(encoding="utf-8").splitlines()
    losses = [float(line.split(",")[1]) for line in curve[1:]]
    assert len(losses) == 30 and losses[-1] < losses[0]
    assert (tmp_path / "params.curve.svg").read_text(encoding="utf-8").startswith("<svg")
    # the trained parameters load as input files of the graph: its mean loss is the curve's last epoch's or lower
    graph = tmp_path / "trained.yaml"
    text = Path(LOGREG).read_text(encoding="utf-8")
    text = text.replace("  w: [0.4, -0.6, 0.2]", "  w: {file: params.npz, key: w}").replace(
        "  b: 0.5", "  b: {file: params.npz, key: b}")
    graph.write_text(text, encoding="utf-8")
    r = cg("run", str(graph), "--of", "nll", "--data", CSV, "-f", "json")
    assert r.code == 0, r.err
    assert r.json()["loss"] <= losses[-1] + 1e-12


def test_bad_parameters_and_data(tmp_path: Path) -> None:
    r = cg("train", LOGREG, "--data", CSV, "--of", "nll", "--params", "x")
    assert r.code == 2 and "--params x: it is a column of the data" in r.err
    r = cg("train", LOGREG, "--data", CSV, "--of", "nll", "--params", "q")
    assert r.code == 2 and "not a float input" in r.err
    bad = tmp_path / "bad.csv"
    bad.write_text("x_0,x_1,x_2,y\n1,2,3,1\n1,oops,3,0\n", encoding="utf-8")
    r = cg("train", LOGREG, "--data", str(bad), "--of", "nll", "--params", "w,b", "-o", str(tmp_path / "p.npz"))
    assert r.code == 1 and "row 3, column 'x_1'" in r.err
    assert not (tmp_path / "p.npz").exists()


def test_a_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    from test_progress import HIDE_CURSOR, on_a_terminal, terminal_env

    seen, table, code = on_a_terminal("train", LOGREG, *ARGS, "-o", str(tmp_path / "p.npz"),
                                      env=terminal_env(CG_PROGRESS_DELAY="0"), stdout_piped=True)
    assert code == 0 and HIDE_CURSOR in seen and "training w, b" in seen
    assert table.startswith("epoch  mean loss  |grad|") and HIDE_CURSOR not in table  # the results: plain
    r = cg("train", LOGREG, *ARGS, "-o", str(tmp_path / "q.npz"), env={"CG_PROGRESS_DELAY": "0"})
    assert r.code == 0 and "\x1b" not in r.err


def test_what_the_review_found_is_refused_before_training(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("x_0,x_1,x_2,y\n", encoding="utf-8")
    base = [LOGREG, "--of", "nll", "--params", "w,b", "-o", str(tmp_path / "p.npz")]
    cases = [
        (["--data", str(empty)], 1, "no rows"),
        (["--data", CSV, "--params", "w,w"], 2, "named twice"),
        (["--data", CSV, "--lr", "inf"], 2, "finite"),
        (["--data", CSV, "--seed", "-1"], 2, "-1"),
        (["--data", CSV, "--curve", str(tmp_path / "nodir" / "c.csv")], 2, "does not exist"),
        (["--data", CSV, "--curve", str(tmp_path / "p.npz")], 2, "three different files"),
    ]
    for extra, code, words in cases:
        r = cg("train", *base, *extra)
        assert r.code == code and words in r.err and "internal error" not in r.err, (extra, r.err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.csv"]  # nothing written by any of them


def test_the_budget_applies_to_a_step(tmp_path: Path) -> None:
    r = cg("--max-total", "2000", "train", LOGREG, "--data", CSV, "--of", "nll", "--params", "w,b", "--batch", "300",
           "-o", str(tmp_path / "p.npz"))
    assert r.code == 2 and "CG004" in r.err and not (tmp_path / "p.npz").exists()


def test_a_diverging_descent_names_the_epoch_and_rows(tmp_path: Path) -> None:
    r = cg("train", LOGREG, "--data", CSV, "--of", "nll", "--params", "w,b", "--lr", "1e300", "--epochs", "3",
           "-o", str(tmp_path / "p.npz"))
    assert r.code == 1 and "epoch" in r.err and "NaN or infinite" in r.err and not (tmp_path / "p.npz").exists()


def test_one_epoch_with_a_negative_loss(tmp_path: Path) -> None:
    r = cg("train", LOGREG, "--data", CSV, "--of", "l", "--params", "w", "--epochs", "1", "-o", str(tmp_path / "n.npz"))
    assert r.code == 0, r.err
    assert "over 1 epoch:" in r.err and (tmp_path / "n.curve.svg").is_file()


def test_update_writes_the_trained_defaults_into_the_graph_keeping_comments(tmp_path: Path) -> None:
    graph = tmp_path / "logreg.yaml"
    before = Path(LOGREG).read_text(encoding="utf-8")
    graph.write_text(before, encoding="utf-8")
    r = cg("train", str(graph), *ARGS, "-o", str(tmp_path / "p.npz"), "--update")
    assert r.code == 0, r.err
    after = graph.read_text(encoding="utf-8")
    comments = [line for line in before.splitlines() if line.lstrip().startswith("#")]
    assert comments and all(c in after for c in comments)
    trained = np.load(tmp_path / "p.npz")
    import cg as cglib

    g = cglib.load(graph)
    np.testing.assert_allclose(g.input("w").default, trained["w"], rtol=1e-15)  # type: ignore[union-attr]
    np.testing.assert_allclose(g.input("b").default, trained["b"], rtol=1e-15)  # type: ignore[union-attr]
    assert after.replace(" ", "").count("x:[1.0,0.5,-2.0]") == 1  # the other inputs as they were


def test_update_refuses_an_input_read_from_a_file(tmp_path: Path) -> None:
    np.save(tmp_path / "w.npy", np.array([0.4, -0.6, 0.2]))
    graph = tmp_path / "logreg.yaml"
    graph.write_text(Path(LOGREG).read_text(encoding="utf-8").replace("  w: [0.4, -0.6, 0.2]", "  w: {file: w.npy}"),
                     encoding="utf-8")
    before = graph.read_text(encoding="utf-8")
    r = cg("train", str(graph), *ARGS, "-o", str(tmp_path / "p.npz"), "--update")
    assert r.code == 2 and "reads its value from a file" in r.err
    assert graph.read_text(encoding="utf-8") == before and not (tmp_path / "p.npz").exists()
