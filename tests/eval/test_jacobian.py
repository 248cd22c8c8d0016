"""`cg jacobian` (lecture notes 000, 001): reverse mode builds the Jacobian a row per backward
pass, forward mode a column per JVP pass; both equal central finite differences, and auto
picks the mode with fewer passes."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import GRAPHS, cg

import cg as cglib
from cg.check.fd import differences
from cg.errors import NumericError, UsageError
from cg.eval.interp import bind_inputs, forward, jvp
from cg.eval.jacobian import JacobianResult, choose, jacobian
from cg.graph.ir import Graph
from cg.render.reports import jacobian_json, labels, plain_jacobian, rich_jacobian

INPUTS = {"logreg.yaml": {"x": 2.0, "y": 3.0}}
EXAMPLES = sorted(p.name for p in GRAPHS.glob("*.yaml"))

SOFTMAX = """
cg: 1
inputs:
  v: [0.5, -1.0, 2.0, 0.25]
nodes:
  s: {op: softmax, in: [v]}
outputs: [s]
"""

# A matrix of a matrix (rank 2 of rank 2), with a node in the middle to differentiate from.
TENSOR = """
cg: 1
inputs:
  A: [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]
  B: [[1.0, 0.5], [-0.5, 2.0], [0.25, -1.0]]
nodes:
  AB: {op: matmul, in: [A, B]}
  T: {op: tanh, in: [AB]}
  E: {op: exp, in: [T]}
outputs: [E]
"""


def finite_differences(graph: Graph, inputs: dict[str, Any], of: str, wrt: str) -> np.ndarray:
    """Central differences of `of` in every element of `wrt`: an input, or a node whose value
    is moved while the nodes after it are computed again."""
    env = forward(graph, bind_inputs(graph, {k: np.asarray(v) for k, v in inputs.items()}))
    k = next((i for i, n in enumerate(graph.nodes) if n.id == wrt), -1)
    below = replace(graph, nodes=graph.nodes[k + 1 :])

    def f(v: np.ndarray) -> np.ndarray:
        return np.asarray(forward(below, {**env, wrt: v})[of], dtype=np.float64)

    x = np.asarray(env[wrt], dtype=np.float64)
    # A step relative to the entry: a probability of 2e-5 under a log needs a small one.
    h = 1e-6 * np.maximum(np.abs(x.reshape(-1)), 1e-2)
    columns = differences(f, x, np.arange(x.size), h).central  # (x.size, *of's shape)
    return np.moveaxis(columns.reshape(x.size, -1), 0, -1).reshape(np.shape(env[of]) + x.shape)


def both(graph: Graph, inputs: dict[str, Any], of: str, wrt: str) -> tuple[JacobianResult, JacobianResult]:
    return (jacobian(graph, inputs, of=of, wrt=wrt, mode="reverse"),
            jacobian(graph, inputs, of=of, wrt=wrt, mode="forward"))


# ---- reverse == forward == finite differences ---------------------------------------------


def _float_inputs(graph: Graph) -> list[str]:
    return [i.name for i in graph.inputs if i.aval.dtype == "float"]


@pytest.mark.parametrize("name", EXAMPLES)
def test_examples_every_input(name: str) -> None:
    graph = cglib.load(GRAPHS / name)
    inputs = INPUTS.get(name, {})
    of = graph.outputs[0]
    assert _float_inputs(graph)
    for wrt in _float_inputs(graph):
        rev, fwd = both(graph, inputs, of, wrt)
        assert rev.matrix.shape == rev.of_shape + rev.wrt_shape == fwd.matrix.shape
        assert (rev.mode, rev.passes) == ("reverse", max(1, int(np.prod(rev.of_shape))))
        assert (fwd.mode, fwd.passes) == ("forward", int(np.prod(fwd.wrt_shape)))
        np.testing.assert_allclose(rev.matrix, fwd.matrix, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(rev.matrix, finite_differences(graph, inputs, of, wrt), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", EXAMPLES)
def test_examples_every_node(name: str) -> None:
    """wrt may be a node: d of / d node. Reverse mode reads the node's gradient, forward mode
    starts the tangent at the node."""
    graph = cglib.load(GRAPHS / name)
    inputs = INPUTS.get(name, {})
    of = graph.outputs[0]
    for node in graph.nodes:
        if graph.avals[node.id].dtype != "float":
            continue
        rev, fwd = both(graph, inputs, of, node.id)
        np.testing.assert_allclose(rev.matrix, fwd.matrix, rtol=1e-12, atol=1e-14)
        fd = finite_differences(graph, inputs, of, node.id)
        np.testing.assert_allclose(rev.matrix, fd, rtol=1e-5, atol=1e-7)


def test_softmax_jacobian_is_diag_minus_outer() -> None:
    graph = cglib.loads(SOFTMAX)
    v = np.array([0.5, -1.0, 2.0, 0.25])
    s = np.exp(v) / np.exp(v).sum()
    known = np.diag(s) - np.outer(s, s)
    rev, fwd = both(graph, {}, "s", "v")
    np.testing.assert_allclose(rev.matrix, known, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(fwd.matrix, known, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(rev.matrix.sum(axis=0), 0, atol=1e-15)  # the entries of s add up to 1


@pytest.mark.parametrize(("of", "wrt"), [("E", "A"), ("E", "B"), ("E", "AB"), ("T", "T"), ("AB", "A")])
def test_rank_four(of: str, wrt: str) -> None:
    graph = cglib.loads(TENSOR)
    rev, fwd = both(graph, {}, of, wrt)
    assert rev.matrix.shape == rev.of_shape + rev.wrt_shape
    np.testing.assert_allclose(rev.matrix, fwd.matrix, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(rev.matrix, finite_differences(graph, {}, of, wrt), rtol=1e-5, atol=1e-7)


def test_of_itself_is_identity_and_upstream_is_zero() -> None:
    graph = cglib.loads(TENSOR)
    for mode in ("reverse", "forward"):
        same = jacobian(graph, of="T", wrt="T", mode=mode).matrix.reshape(4, 4)
        np.testing.assert_array_equal(same, np.eye(4))
        # AB comes before E: AB does not depend on E, and the matrix is all zeros.
        np.testing.assert_array_equal(jacobian(graph, of="AB", wrt="E", mode=mode).matrix, 0)


def test_inputs_change_shapes() -> None:
    graph = cglib.loads(SOFTMAX)
    r = jacobian(graph, {"v": [1.0, 2.0]}, wrt="v")
    assert r.matrix.shape == (2, 2)
    assert r.of == "s"  # the first output by default
    with pytest.raises(UsageError) as e:
        jacobian(cglib.loads(TENSOR), {"A": [[1.0, 2.0]]}, wrt="A")
    assert e.value.diagnostics[0].code == "CG120"


def test_interp_jvp_keeps_a_tangent_given_for_a_node() -> None:
    """What cg.eval.jacobian's forward mode from a node relies on only loosely (it cuts the graph
    above the node anyway): jvp keeps a tangent given for a node, since the node's own
    arguments have none and it is skipped."""
    graph = cglib.load(GRAPHS / "log3x2p5xy.yaml")
    env = forward(graph, bind_inputs(graph, {}))
    tans = jvp(graph, env, {"c": np.asarray(1.0)})
    assert float(tans["c"]) == 1.0
    assert float(tans["z"]) == pytest.approx(5 / 42)
    assert "a" not in tans and "x" not in tans


# ---- auto -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("of", "wrt", "mode", "passes"),
    [("logits", "x", "reverse", 3), ("logits", "b", "reverse", 3), ("l", "W", "reverse", 1),
     ("p", "Wx", "reverse", 3), ("logits", "W", "reverse", 3)],
)
def test_auto_multiclass(of: str, wrt: str, mode: str, passes: int) -> None:
    r = jacobian(cglib.load(GRAPHS / "multiclass_logreg.yaml"), of=of, wrt=wrt)
    assert (r.mode, r.passes) == (mode, passes)


def test_auto_picks_forward_for_one_input_many_outputs() -> None:
    text = "cg: 1\ninputs: {t: 0.5}\nnodes:\n  v: {op: mul, in: [t, [1.0, 2.0, 3.0]]}\n  y: {op: sin, in: [v]}\n"
    r = jacobian(cglib.loads(text + "outputs: [y]\n"), wrt="t")
    assert (r.mode, r.passes) == ("forward", 1)
    assert r.reason == "forward mode: 1 pass (one per input element) instead of 3 (one per output element)"
    np.testing.assert_allclose(r.matrix, np.cos(0.5 * np.arange(1, 4)) * np.arange(1, 4))


def test_reasons() -> None:
    assert choose("auto", 1, 3) == (
        "reverse", "reverse mode: 1 pass (one per output element) instead of 3 (one per input element)")
    assert choose("auto", 4, 4)[0] == "reverse"
    assert "tie" in choose("auto", 4, 4)[1]
    assert choose("forward", 1, 1000)[1] == (
        "forward mode, as asked: 1,000 passes (one per input element); "
        "reverse mode would take 1 (one per output element)")
    with pytest.raises(UsageError):
        choose("sideways", 1, 1)


# ---- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("of", "wrt", "code", "text"),
    [("lgits", "x", "CG301", "did you mean 'logits'"), ("l", "X", "CG301", "did you mean 'x'"),
     ("l", "y", "CG303", "'y' is an integer"), ("l", "nothing_like_it", "CG301", "names: W, x, b, y")],
)
def test_bad_names(of: str, wrt: str, code: str, text: str) -> None:
    with pytest.raises(UsageError) as e:
        jacobian(cglib.load(GRAPHS / "multiclass_logreg.yaml"), of=of, wrt=wrt)
    assert e.value.diagnostics[0].code == code
    assert text in e.value.diagnostics[0].message


def test_integer_of() -> None:
    text = "cg: 1\ninputs: {k: {dtype: int, value: 2}, x: 1.0}\nnodes:\n  m: {op: add, in: [k, k]}\n"
    with pytest.raises(UsageError, match="'m' is an integer"):
        jacobian(cglib.loads(text + "outputs: [m]\n"), wrt="x")


SQRT = "cg: 1\ninputs: {x: 0.0}\nnodes:\n  r: {op: sqrt, in: [x]}\n  y: {op: mul, in: [2, r]}\noutputs: [y]\n"


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_nonfinite_entries_are_reported(mode: str) -> None:
    """sqrt at 0 is finite, its derivative is not: an error naming the node, or (keep) an inf
    in the matrix that is listed, never hidden."""
    graph = cglib.loads(SQRT)
    with pytest.raises(NumericError) as e:
        jacobian(graph, wrt="x", mode=mode)
    d = e.value.diagnostics[0]
    assert d.code == "CG200" and d.node == "r"  # sqrt made the tangent, or sent the gradient back to x
    r = jacobian(graph, wrt="x", mode=mode, on_nonfinite="keep")
    assert np.isinf(r.matrix).all()
    assert r.nonfinite == ("d y / d x",)
    assert json.loads(jacobian_json(r))["jacobian"] == "Infinity"


def test_nonfinite_value() -> None:
    graph = cglib.loads(SQRT.replace("sqrt", "log"))
    with pytest.raises(NumericError) as e:
        jacobian(graph, wrt="x")
    assert e.value.diagnostics[0].node == "r"
    assert jacobian(graph, wrt="x", on_nonfinite="keep").nonfinite[:2] == ("r", "y")


# ---- output ---------------------------------------------------------------------------------


def test_labels() -> None:
    assert labels("y", ()) == ["y"]
    assert labels("y", (3,)) == ["y[0]", "y[1]", "y[2]"]
    assert labels("W", (2, 2)) == ["W[0,0]", "W[0,1]", "W[1,0]", "W[1,1]"]


MULTICLASS_TABLE = """\
jacobian  d logits / d x in multiclass_logreg, shape [3] by [4]
mode      reverse
reason    reverse mode: 3 passes (one per output element) instead of 4 (one per input element)
passes    3

d logits / d x    x[0]     x[1]    x[2]     x[3]
logits[0]       0.2000  -0.5000  0.1000   2.0000
logits[1]       1.5000   1.3000  2.1000   0.0000
logits[2]       0.0000   0.2500  0.2000  -0.3000
"""


def test_plain_table() -> None:
    r = jacobian(cglib.load(GRAPHS / "multiclass_logreg.yaml"), of="logits", wrt="x")
    assert plain_jacobian(r) == MULTICLASS_TABLE


def test_rich_table() -> None:
    from rich.console import Console

    r = jacobian(cglib.loads(TENSOR), of="T", wrt="A")
    console = Console(file=io.StringIO(), width=200, color_system=None)
    for part in rich_jacobian(r, 2):
        console.print(part)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "T[1,1]" in text and "A[0,2]" in text and "passes: 4" in text


def test_json_nesting() -> None:
    r = jacobian(cglib.loads(TENSOR), of="E", wrt="B")
    doc = json.loads(jacobian_json(r))
    assert doc["of_shape"] == [2, 2] and doc["wrt_shape"] == [3, 2]
    np.testing.assert_array_equal(np.array(doc["jacobian"]), r.matrix)
    assert set(doc) >= {"of", "wrt", "mode", "passes", "reason", "of_shape", "wrt_shape", "jacobian"}


# ---- the command line -----------------------------------------------------------------------


def test_cli_table() -> None:
    r = cg("jacobian", "graphs/multiclass_logreg.yaml", "--of", "logits", "--wrt", "x")
    assert r.code == 0, r.err
    assert r.out == MULTICLASS_TABLE
    assert r.err == ""


def test_cli_json_and_default_of() -> None:
    r = cg("jacobian", "graphs/logreg.yaml", "--inputs", "x=2,y=3", "--wrt", "w1", "-f", "json")
    assert r.code == 0, r.err
    doc = r.json()
    assert (doc["of"], doc["wrt"], doc["mode"], doc["passes"]) == ("p", "w1", "reverse", 1)
    assert doc["of_shape"] == [] and doc["wrt_shape"] == []
    graph = cglib.load(GRAPHS / "logreg.yaml")
    grad = cglib.run(graph, {"x": 2, "y": 3}).grad("w1")
    assert grad is not None
    assert doc["jacobian"] == pytest.approx(float(grad), rel=1e-15)


def test_cli_forward_mode_and_precision(tmp_path: Path) -> None:
    out = tmp_path / "j.txt"
    r = cg("jacobian", "graphs/multiclass_logreg.yaml", "--of", "p", "--wrt", "b", "--mode", "forward",
           "-p", "6", "-o", str(out))
    assert r.code == 0, r.err
    assert r.out == ""
    text = out.read_text()
    assert "mode      forward\n" in text and "passes    3\n" in text and "p[2]" in text and "b[1]" in text
    assert "p[2]       -1.919153e-05  -1.058713e-07   1.929740e-05\n" in text


def test_cli_rank_four_labels() -> None:
    r = cg("jacobian", "-", "--of", "E", "--wrt", "A", stdin=TENSOR)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    table = lines[lines.index("") + 1 :]
    assert table[0].split()[-6:] == ["A[0,0]", "A[0,1]", "A[0,2]", "A[1,0]", "A[1,1]", "A[1,2]"]
    assert [row.split()[0] for row in table[1:]] == ["E[0,0]", "E[0,1]", "E[1,0]", "E[1,1]"]


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["graphs/multiclass_logreg.yaml", "--of", "lgits", "--wrt", "x"], 2, "did you mean 'logits'"),
        (["graphs/multiclass_logreg.yaml", "--wrt", "y"], 2, "integer"),
        (["graphs/multiclass_logreg.yaml"], 2, "--wrt"),
        (["graphs/no_such.yaml", "--wrt", "x"], 2, "no such file"),
        (["graphs/logreg.yaml", "--wrt", "x"], 2, "missing value"),
        (["graphs/multiclass_logreg.yaml", "--wrt", "x", "--mode", "sideways"], 2, "sideways"),
        (["tests/bad/cycle2.yaml", "--wrt", "x"], 1, "cycle"),
    ],
)
def test_cli_errors(args: list[str], code: int, text: str) -> None:
    r = cg("jacobian", *args)
    assert r.code == code, r.err
    assert text in r.err
    assert r.out == ""


def test_cli_nonfinite(tmp_path: Path) -> None:
    path = tmp_path / "sqrt.yaml"
    path.write_text(SQRT)
    r = cg("jacobian", str(path), "--wrt", "x")
    assert r.code == 1 and "node 'r'" in r.err and "CG200" in r.err
    r = cg("jacobian", str(path), "--wrt", "x", "--nonfinite", "keep", "-f", "json")
    assert r.code == 0
    assert r.json()["jacobian"] == "Infinity"
    assert "not finite (NaN or Inf): d y / d x" in r.err


def test_no_path_is_said() -> None:
    graph = cglib.loads(TENSOR)
    r = jacobian(graph, of="AB", wrt="E")
    assert not r.connected
    assert "note      no path from E to AB: AB does not depend on E, every entry is 0\n" in plain_jacobian(r)
    assert jacobian(graph, of="E", wrt="A").connected


def test_bad_options() -> None:
    graph = cglib.loads(SOFTMAX)
    with pytest.raises(UsageError, match="mode must be one of") as e:
        jacobian(graph, wrt="v", mode="sideways")
    assert e.value.diagnostics[0].code == "CG300"
    with pytest.raises(UsageError, match="on_nonfinite"):
        jacobian(graph, wrt="v", on_nonfinite="ignore")


TWO_USERS = """
cg: 1
inputs: {x: 0.0, z: 0.0}
nodes:
  r: {op: sqrt, in: [x]}
  q: {op: sqrt, in: [z]}
  u: {op: mul, in: [3, z]}
  y: {op: add, in: [r, q, u]}
outputs: [y]
"""


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_nonfinite_blames_the_node_that_made_it(mode: str) -> None:
    """z has two users, q = sqrt(z) (infinite derivative at 0) and u = 3z: the error names
    q, not the last user of z."""
    with pytest.raises(NumericError) as e:
        jacobian(cglib.loads(TWO_USERS), wrt="z", mode=mode)
    assert e.value.diagnostics[0].node == "q"


@pytest.mark.parametrize("name", sorted(p.name for p in GRAPHS.glob("*.yaml") if "\noutputs:" in p.read_text()))
@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_batched_passes_equal_a_pass_per_row_or_column(name: str, mode: str) -> None:
    """cg/eval/jacbatch.py against the pass-per-row (reverse) and pass-per-column (forward) paths,
    for every float input of every example graph, with the batch cut small so that there are several."""
    from cg.check.gradients import draw_inputs
    from cg.eval import jacbatch
    from cg.eval.jacobian import _by_columns, _by_rows

    graph = cglib.load(GRAPHS / name)
    env = forward(graph, bind_inputs(graph, draw_inputs(graph, {}, np.random.default_rng(0))[0]))
    of = graph.outputs[0]
    for wrt in [i.name for i in graph.inputs if i.aval.dtype == "float"] + [n.id for n in graph.nodes[:2]]:
        rows, cols = int(np.size(env[of])), int(np.size(env[wrt]))
        by, batched = (_by_rows, jacbatch.by_rows) if mode == "reverse" else (_by_columns, jacbatch.by_columns)
        want = by(graph, env, of, wrt, rows, cols, True)
        old = jacbatch.BATCH_NUMBERS
        jacbatch.BATCH_NUMBERS = 1  # one row (or column) per batch: the batches' seams are tested too
        try:
            small = batched(graph, env, of, wrt, rows, cols)
        finally:
            jacbatch.BATCH_NUMBERS = old
        whole = batched(graph, env, of, wrt, rows, cols)
        np.testing.assert_allclose(whole, want, rtol=1e-12, atol=1e-14, err_msg=f"{wrt}")
        np.testing.assert_allclose(small, want, rtol=1e-12, atol=1e-14, err_msg=f"{wrt}")


def test_reverse_mode_computes_only_the_gradient_asked_for() -> None:
    """d y / d x, pass per row and batched: the branch through W is never differentiated (its op's
    VJP would raise), as cg.value_and_grad cuts its backward pass to `wrt`."""
    import dataclasses

    from cg.eval.jacobian import _by_rows
    from cg.ops import REGISTRY, installed

    def boom(g, y, xs):  # type: ignore[no-untyped-def]
        raise AssertionError("the gradient of W was computed")

    op = dataclasses.replace(REGISTRY["sin"], name="boom", vjp=boom, df=None)
    text = ("cg: 1\ninputs: {x: [0.1, 0.2, 0.3], W: [1.0, 2.0, 3.0]}\n"
            "nodes:\n  a: {op: tanh, in: [x]}\n  b: {op: boom, in: [W]}\n  y: {op: mul, in: [a, b]}\noutputs: [y]\n")
    with installed(op):
        graph = cglib.loads(text, "cut.yaml")
        env = forward(graph, bind_inputs(graph, {}))
        flat = _by_rows(graph, env, "y", "x", 3, 3, strict=True)
        want = np.diag((1 - np.tanh([0.1, 0.2, 0.3]) ** 2) * np.sin([1.0, 2.0, 3.0]))
        np.testing.assert_allclose(flat, want, rtol=1e-12)
        batched = jacobian(graph, {}, wrt="x", mode="reverse").matrix
        np.testing.assert_allclose(batched, want, rtol=1e-12)
