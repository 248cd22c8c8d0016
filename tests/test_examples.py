"""Every worked example of the source notes (../shared/seeds/), number for number, through the
real CLI: the table a user reads and the JSON a program reads."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import GRAPHS, cg

import cg as cglib

# The notes print these (000: PyTorch's retain_grad output; 001: forward mode; 003: cs231n).
LOG3X2P5XY = {
    "x": ("2.0000", "0.6429"), "y": ("3.0000", "0.2381"), "a": ("4.0000", "0.0714"),
    "b": ("12.0000", "0.0238"), "c": ("6.0000", "0.1190"), "d": ("30.0000", "0.0238"),
    "e": ("42.0000", "0.0238"), "z": ("3.7377", "1.0000"),
}


def test_log3x2p5xy_table() -> None:
    rows = cg("run", "graphs/log3x2p5xy.yaml", "--inputs", "x=2,y=3").table()
    assert {k: (r["value"], r["grad"]) for k, r in rows.items()} == LOG3X2P5XY
    assert list(rows) == ["x", "y", "a", "b", "c", "d", "e", "z"]
    assert rows["b"]["in"] == "3, a" and rows["e"]["op"] == "add"


def test_log3x2p5xy_json_full_precision() -> None:
    out = cg("run", "graphs/log3x2p5xy.yaml", "--inputs", "x=2,y=3", "--format", "json").json()
    nodes = {n["id"]: n for n in out["nodes"]}
    assert out["of"] == "z" and out["graph"] == "log3x2p5xy"
    assert nodes["z"]["value"] == math.log(42.0)
    assert nodes["x"]["grad"] == pytest.approx((6 * 2 + 5 * 3) / 42, rel=1e-15)
    assert nodes["y"]["grad"] == pytest.approx(5 * 2 / 42, rel=1e-15)
    assert nodes["b"]["in"] == [3.0, "a"]


def test_square3x_forward_mode_article_numbers() -> None:
    rows = cg("run", "graphs/square3x.yaml", "--inputs", "x=4").table()
    assert rows["g"]["value"] == "12.0000" and rows["f"]["value"] == "144.0000"
    assert rows["g"]["grad"] == "24.0000"  # df/dg = 2g
    assert rows["x"]["grad"] == "72.0000"  # df/dx = 72, as in the article


def test_sincos_at_2() -> None:
    out = cg("run", "graphs/sincos.yaml", "--inputs", "x=2", "-f", "json").json()
    x = {n["id"]: n for n in out["nodes"]}["x"]
    assert x["grad"] == pytest.approx(math.cos(2) ** 2 - math.sin(2) ** 2, abs=1e-15)


def test_sigmoid_neuron_cs231n() -> None:
    rows = cg("run", "graphs/neuron.yaml").table()
    assert rows["dot"]["value"] == "1.0000"
    assert rows["f"]["value"] == "0.7311"  # 0.73 in the notes
    assert rows["dot"]["grad"] == "0.1966"  # (1 - 0.73) * 0.73 = 0.2
    ddot = (1 - 1 / (1 + math.e**-1)) / (1 + math.e**-1)
    out = {n["id"]: n for n in cg("run", "graphs/neuron.yaml", "-f", "json").json()["nodes"]}
    w, x = [2, -3, -3], [-1, -2]
    assert [out[k]["grad"] for k in ("x0", "x1")] == pytest.approx([w[0] * ddot, w[1] * ddot], rel=1e-12)
    assert [out[k]["grad"] for k in ("w0", "w1", "w2")] == pytest.approx([x[0] * ddot, x[1] * ddot, ddot])


def _seed_staged(x: float, y: float) -> dict[str, float]:
    """The notes' own forward and backward code for the staged computation, verbatim in logic."""
    sigy = 1.0 / (1 + math.exp(-y))
    num = x + sigy
    sigx = 1.0 / (1 + math.exp(-x))
    xpy = x + y
    xpysqr = xpy**2
    den = sigx + xpysqr
    invden = 1.0 / den
    f = num * invden
    dnum = invden
    dinvden = num
    dden = (-1.0 / (den**2)) * dinvden
    dsigx = (1) * dden
    dxpysqr = (1) * dden
    dxpy = (2 * xpy) * dxpysqr
    dx = (1) * dxpy
    dy = (1) * dxpy
    dx += ((1 - sigx) * sigx) * dsigx
    dx += (1) * dnum
    dsigy = (1) * dnum
    dy += ((1 - sigy) * sigy) * dsigy
    return {"f": f, "dx": dx, "dy": dy, "dnum": dnum, "dinvden": dinvden, "dden": dden,
            "dsigx": dsigx, "dxpysqr": dxpysqr, "dxpy": dxpy, "dsigy": dsigy}


def test_staged_computation_matches_the_notes_code() -> None:
    want = _seed_staged(3.0, -4.0)
    out = {n["id"]: n for n in cg("run", "graphs/staged.yaml", "-f", "json").json()["nodes"]}
    assert out["f"]["value"] == pytest.approx(want["f"], rel=1e-14)
    for name in ("x", "y", "num", "invden", "den", "sigx", "xpysqr", "xpy", "sigy"):
        assert out[name]["grad"] == pytest.approx(want["d" + name], rel=1e-12), name


def test_half_sum_squares_grad_equals_a() -> None:
    out = {n["id"]: n for n in cg("run", "graphs/half_sum_squares.yaml", "-f", "json").json()["nodes"]}
    assert out["a"]["grad"] == out["a"]["value"]
    a = np.random.default_rng(0).random(100)
    res = cglib.run(cglib.load(GRAPHS / "half_sum_squares.yaml"), {"a": a})
    assert np.allclose(res.grad("a"), a, rtol=1e-15)


def test_sigma_ax_b_derivatives_in_a_and_b() -> None:
    res = cglib.run(cglib.load(GRAPHS / "sigma_ax_b.yaml"))
    s = 1 / (1 + math.exp(-(0.8 * 1.5 - 0.5)))
    assert float(res.grad("a")) == pytest.approx(s * (1 - s) * 1.5, rel=1e-14)
    assert float(res.grad("b")) == pytest.approx(s * (1 - s), rel=1e-14)


def test_linreg_loss() -> None:
    res = cglib.run(cglib.load(GRAPHS / "linreg.yaml"))
    W, x, b, y = (res.value(k) for k in "Wxby")
    r = W @ x + b - y
    assert float(res.value("l")) == pytest.approx(float(r @ r))
    assert np.allclose(res.grad("W"), 2 * np.outer(r, x)) and np.allclose(res.grad("b"), 2 * r)


def test_binary_logreg_dl_dz_is_y_minus_s() -> None:
    res = cglib.run(cglib.load(GRAPHS / "binary_logreg.yaml"))
    s, y, x = float(res.value("s")), float(res.value("y")), res.value("x")
    assert float(res.grad("z")) == pytest.approx(y - s, rel=1e-12)
    assert np.allclose(res.grad("w"), (y - s) * x)


def test_multiclass_logreg_matches_onehot_minus_softmax() -> None:
    res = cglib.run(cglib.load(GRAPHS / "multiclass_logreg.yaml"))
    W, x, b = res.value("W"), res.value("x"), res.value("b")
    logits = W @ x + b
    p = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    onehot = np.eye(3)[2]
    assert float(res.value("l")) == pytest.approx(float(np.log(p[2])))
    assert np.allclose(res.grad("logits"), onehot - p)
    assert np.allclose(res.grad("W"), np.outer(onehot - p, x))
    assert res.grad("y") is None  # the label is an int: no gradient


def test_logreg_make_run_example() -> None:
    r = cg("run", "graphs/logreg.yaml", "--inputs", "x=2,y=3")
    assert r.code == 0, r.err
    rows = r.table()
    z = 0.5 * 2 - 0.25 * 3 + 0.1
    s = 1 / (1 + math.exp(-z))
    assert rows["p"]["value"] == f"{s:.4f}" and rows["w1"]["grad"] == f"{s * (1 - s) * 2:.4f}"


@pytest.mark.parametrize("path", sorted(GRAPHS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_runs_and_validates(path: object) -> None:
    assert cg("validate", str(path)).code == 0
    args = ["run", str(path)] + (["--inputs", "x=2,y=3"] if getattr(path, "name", "") == "logreg.yaml" else [])
    r = cg(*args, "-f", "json")
    assert r.code == 0, r.err
    assert r.json()["nodes"]
