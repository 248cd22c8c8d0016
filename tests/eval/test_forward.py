"""Forward mode: the article's numbers, forward = reverse on every example graph and on random
graphs, and nodes that no path connects are marked, not silently zero."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import GRAPHS, cg
from hypothesis import given, settings
from hypothesis import strategies as st

import cg as cglib


def test_square3x_forward_mode_article() -> None:
    rows = cg("run", "graphs/square3x.yaml", "--inputs", "x=4", "--mode", "forward", "--wrt", "x").table()
    assert (rows["g"]["value"], rows["g"]["tangent"]) == ("12.0000", "3.0000")  # g = 12, dg/dx = 3
    assert rows["f"]["tangent"] == "72.0000"  # df/dx = 72


def test_sincos_forward_mode_json() -> None:
    out = cg("run", "graphs/sincos.yaml", "--wrt", "x", "-f", "json").json()
    nodes = {n["id"]: n for n in out["nodes"]}
    assert out["mode"] == "forward" and out["wrt"] == ["x"]
    assert nodes["g1"]["tangent"] == pytest.approx(np.cos(2.0)) and nodes["g2"]["tangent"] == pytest.approx(-np.sin(2))
    assert nodes["f"]["tangent"] == pytest.approx(np.cos(4.0))
    assert nodes["f"]["grad"] is None


def _run_inputs(path: Path) -> dict[str, float]:
    return {"x": 2.0, "y": 3.0} if path.name == "logreg.yaml" else {}


@pytest.mark.parametrize("path", sorted(GRAPHS.glob("*.yaml")), ids=lambda p: p.name)
def test_forward_equals_reverse_on_every_example(path: Path) -> None:
    g = cglib.load(path)
    rev = cglib.run(g, _run_inputs(path))
    rng = np.random.default_rng(0)
    for inp in g.inputs:
        if inp.aval.dtype != "float":
            continue
        t = rng.normal(size=rev.values[inp.name].shape)
        fwd = cglib.run(g, _run_inputs(path), tangents={inp.name: t})
        want = float(np.sum(rev.grads[inp.name] * t))
        assert float(np.asarray(fwd.tangents[rev.of])) == pytest.approx(want, rel=1e-10, abs=1e-12), inp.name


SAFE_UNARY = ["sin", "cos", "tanh", "sigmoid", "square", "neg"]
SAFE_BINARY = ["add", "mul", "sub", "maximum"]


@st.composite
def random_dag(draw: st.DrawFn) -> str:
    """A random graph of safe elementwise ops on scalar and vector inputs (fan-out included)."""
    n_in = draw(st.integers(1, 3))
    names = [f"x{i}" for i in range(n_in)]
    lines = ["cg: 1", "inputs:"]
    for name in list(names):
        vec = draw(st.booleans())
        vals = draw(st.lists(st.floats(-2, 2, allow_nan=False), min_size=3, max_size=3)) if vec else None
        scalar = draw(st.floats(-2, 2, allow_nan=False))
        lines.append(f"  {name}: {vals if vec else scalar}")
    lines.append("nodes:")
    for k in range(draw(st.integers(1, 12))):
        if draw(st.booleans()):
            op, args = draw(st.sampled_from(SAFE_UNARY)), [draw(st.sampled_from(names))]
        else:
            op, args = draw(st.sampled_from(SAFE_BINARY)), [draw(st.sampled_from(names)) for _ in range(2)]
        lines.append(f"  n{k}: {{op: {op}, in: [{', '.join(args)}]}}")
        names.append(f"n{k}")
    lines.append(f"  out: {{op: sum, in: [{names[-1]}]}}")
    lines.append("outputs: [out]")
    return "\n".join(lines)


@settings(max_examples=60, deadline=None)
@given(random_dag(), st.integers(0, 2**32 - 1))
def test_forward_equals_reverse_on_random_graphs(text: str, seed: int) -> None:
    g = cglib.loads(text)
    rev = cglib.run(g)
    rng = np.random.default_rng(seed)
    tangents = {i.name: rng.normal(size=i.aval.shape) for i in g.inputs}
    fwd = cglib.run(g, tangents=tangents)
    want = sum(float(np.sum(rev.grads[k] * t)) for k, t in tangents.items())
    assert float(fwd.tangents["out"]) == pytest.approx(want, rel=1e-9, abs=1e-9)


def test_nodes_off_the_path_are_marked() -> None:
    r = cg("run", "graphs/binary_logreg.yaml")
    assert "(no path to l)" in r.table()["nll"]["grad"]
    out = {n["id"]: n for n in cg("run", "graphs/binary_logreg.yaml", "-f", "json").json()["nodes"]}
    assert out["nll"]["on_path"] is False and out["nll"]["grad"] == 0.0 and out["w"]["on_path"] is True
    fwd = cg("run", "graphs/log3x2p5xy.yaml", "--wrt", "y").table()
    assert fwd["a"]["tangent"] == "0.0000 (no path from y)" and fwd["c"]["tangent"] == "2.0000"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--wrt", "q"], "unknown input 'q'"),
        (["--wrt", "x", "--seed", "1"], "forward mode"),
        (["--mode", "forward"], "needs a direction"),
        (["--tangent", "x=[1,2]"], "shape"),
        (["--wrt", "x", "--tangent", "x=1"], "both"),
        (["--tangent", "x=1", "--tangent", "x=[1,2]"], "cannot be added up"),
    ],
)
def test_forward_mode_usage_errors(args: list[str], message: str) -> None:
    r = cg("run", "graphs/log3x2p5xy.yaml", *args)
    assert r.code == 2 and message in r.err


def test_several_tangent_options_add_up() -> None:
    # As the README says: a direction given in two --tangent options is their sum (the JVP is linear).
    def dz(*args: str) -> float:
        r = cg("run", "graphs/log3x2p5xy.yaml", "-f", "json", *args)
        assert r.code == 0, r.err
        return float(next(n["tangent"] for n in r.json()["nodes"] if n["id"] == "z"))

    assert dz("--tangent", "x=1", "--tangent", "x=1") == pytest.approx(2 * 27 / 42)
    assert dz("--tangent", "x=1", "--tangent", "y=1") == pytest.approx(37 / 42)
    assert dz("--tangent", "x=1,y=1", "--tangent", "x=2") == pytest.approx(3 * 27 / 42 + 10 / 42)


def test_wrt_needs_a_scalar_and_int_inputs_have_no_tangent() -> None:
    r = cg("run", "graphs/linreg.yaml", "--wrt", "x")
    assert r.code == 2 and "--tangent x=[1,0,0]" in r.err
    r = cg("run", "graphs/multiclass_logreg.yaml", "--tangent", "y=1")
    assert r.code == 2 and "integer" in r.err


def test_nonfinite_tangent_names_the_node() -> None:
    g = cglib.loads("cg: 1\ninputs: {x: 0.0}\nnodes: {r: {op: sqrt, in: [x]}}\noutputs: [r]", "t.yaml")
    from cg.errors import NumericError

    with pytest.raises(NumericError) as e:
        cglib.run(g, tangents={"x": 1.0})
    assert e.value.diagnostics[0].node == "r" and "tangent" in e.value.diagnostics[0].message
    assert "r" in cglib.run(g, tangents={"x": 1.0}, on_nonfinite="keep").nonfinite
