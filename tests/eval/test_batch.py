"""A graph over a batch of rows (cg/eval/batch.py): the batched run gives, row by row, exactly what
`cg.run` gives on each row alone: values and gradients, for every op case of the registry with its
arguments as data columns, constants or parameters, for random graphs, and for every example graph."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from conftest import GRAPHS
from hypothesis import given, settings
from hypothesis import strategies as st

import cg as cglib
from cg.check.fd import sample
from cg.errors import CgError, UsageError
from cg.eval.batch import Chunk, batched, run_rows
from cg.graph.ir import Graph
from cg.ops import REGISTRY, Case, Op

ROWS = 3


def assert_rows_match(graph: Graph, data: dict[str, np.ndarray], chunks: list[Chunk],
                      given_: dict[str, Any] | None = None, of: str | None = None) -> None:
    """Each row of the chunks equals cg.run on that row alone (values, and gradients of `of`)."""
    rows = [(c, k) for c in chunks for k in range(c.stop - c.start)]
    assert len(rows) == len(next(iter(data.values())))
    for r, (c, k) in enumerate(rows):
        assert c.start + k == r
        want = cglib.run(graph, {**(given_ or {}), **{n: v[r] for n, v in data.items()}}, of=of)
        for name, value in want.values.items():
            np.testing.assert_allclose(c.values[name][k], value, rtol=1e-12, atol=1e-14, err_msg=f"row {r}: {name}")
            assert c.values[name].shape == (c.stop - c.start, *np.shape(value))
        for name, grad in want.grads.items():
            if grad is None:
                assert c.grads[name] is None, name
            else:
                got = c.grads[name]
                assert got is not None, name
                np.testing.assert_allclose(got[k], grad, rtol=1e-10, atol=1e-12, err_msg=f"row {r}: d/d{name}")


def test_every_op_has_a_batching_rule() -> None:
    missing = [name for name, op in REGISTRY.items() if op.batch is None]
    assert not missing, f"ops without a batching rule (Op.batch): {missing}"


# ---- every op case, each argument a data column, a constant or a parameter --------------------

CASES = [pytest.param(op, case, kind, id=f"{op.name}-{'x'.join(str(list(s)) for s in case.shapes)}-"
                      f"{case.attrs or ''}-{kind}")
         for op in REGISTRY.values() for case in op.cases
         for kind in ("data", "param0", *(f"const{k}" for k in range(len(case.shapes))))]


def _op_graph(op: Op, case: Case, kind: str, rows: list[list[Any]], c: np.ndarray) -> tuple[Graph, dict[str, Any]]:
    """y = op(args); z = sum(y * c * t): args data columns x<k>, but a constant or parameter as `kind` says;
    t, a data column too, so that there is one whatever the kind."""
    inputs: dict[str, Any] = {"t": {"shape": []}}
    args: list[Any] = []
    data: dict[str, Any] = {"t": np.linspace(0.5, 1.5, len(rows))}
    for k, shape in enumerate(case.shapes):
        first = np.asarray(rows[0][k])
        dtype = {"dtype": "int"} if first.dtype.kind in "iu" else {}
        if kind == f"const{k}":
            args.append(first.tolist())
            continue
        inputs[f"x{k}"] = {"value": first.tolist(), **dtype} if kind == f"param{k}" else {"shape": list(shape),
                                                                                          **dtype}
        if kind != f"param{k}":
            data[f"x{k}"] = np.stack([np.asarray(r[k]) for r in rows])
        args.append(f"x{k}")
    doc = {"cg": 1, "inputs": inputs, "nodes": {"y": {"op": op.name, "in": args, **case.attrs},
                                                "w": {"op": "mul", "in": ["y", c.tolist(), "t"]},
                                                "z": {"op": "sum", "in": ["w"]}}, "outputs": ["z"]}
    return cglib.loads(json.dumps(doc), f"{op.name}.json"), data


@pytest.mark.parametrize(("op", "case", "kind"), CASES)
def test_every_op_case(op: Op, case: Case, kind: str) -> None:
    rng = np.random.default_rng(0)
    rows = [sample(op, case.shapes, rng, case.attrs) for _ in range(ROWS)]
    attrs = {k: a.default for k, a in op.attrs.items()} | case.attrs
    if kind.startswith("const"):  # a constant is one value for every row
        k = int(kind[5:])
        rows = [[*r[:k], rows[0][k], *r[k + 1:]] for r in rows]
    if kind == "param0":
        rows = [[rows[0][0], *r[1:]] for r in rows]
    c = rng.standard_normal(np.shape(op.forward(*rows[0], **attrs)))
    graph, data = _op_graph(op, case, kind, rows, c)
    chunks = list(run_rows(graph, data))
    assert len(chunks) == 1
    for r, row in enumerate(rows):
        np.testing.assert_allclose(chunks[0].values["y"][r], op.forward(*row, **attrs), rtol=1e-12, atol=1e-14)
    assert_rows_match(graph, data, chunks)


def test_a_node_of_constants_gets_one_row_per_row() -> None:
    graph = cglib.loads(json.dumps({"cg": 1, "inputs": {"x": {"shape": [2]}}, "nodes": {
        "k": {"op": "sum", "in": [[1.0, 2.0, 3.0]]}, "a": {"op": "add", "in": [2.0, [1.0, 1.0]]},
        "m": {"op": "matmul", "in": [[[1.0, 0.0], [0.0, 2.0]], [1.0, 1.0]]},
        "y": {"op": "mul", "in": ["x", "k", "a", "m"]}, "z": {"op": "sum", "in": ["y"]}}, "outputs": ["z"]}))
    data = {"x": np.arange(8.0).reshape(4, 2)}
    chunks = list(run_rows(graph, data))
    assert chunks[0].values["k"].shape == (4,) and chunks[0].values["m"].shape == (4, 2)
    assert_rows_match(graph, data, chunks)


# ---- random graphs ------------------------------------------------------------------------------

UNARY = ["neg", "tanh", "sin", "sigmoid", "square", "abs", "relu", "sign", "step"]
BINARY = ["add", "mul", "sub", "maximum", "minimum"]


@st.composite
def graphs(draw: Any) -> tuple[dict[str, Any], list[int], int]:
    """A chain from a data column x through random elementwise ops with parameters of broadcastable
    shapes, reductions, softmax, transpose and matmul, summed to a scalar per row."""
    shape = draw(st.lists(st.integers(1, 3), min_size=0, max_size=3))
    inputs: dict[str, Any] = {"x": {"shape": list(shape)}}
    nodes: dict[str, Any] = {}
    cur, seed = "x", draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    for k in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["unary", "binary", "reduce", "softmax", "transpose", "matmul", "const"]))
        node: dict[str, Any]
        if kind == "unary":
            node = {"op": draw(st.sampled_from(UNARY)), "in": [cur]}
        elif kind in ("binary", "const"):
            pshape = draw(st.sampled_from([shape[i:] for i in range(len(shape) + 1)]))
            pshape = [n if draw(st.booleans()) else 1 for n in pshape]
            value = np.round(rng.normal(size=pshape), 3).tolist()
            other: Any = value
            if kind == "binary":
                inputs[f"p{k}"] = {"value": value}
                other = f"p{k}"
            args = [cur, other] if draw(st.booleans()) else [other, cur]
            node = {"op": draw(st.sampled_from(BINARY)), "in": args}
            shape = list(np.broadcast_shapes(tuple(shape), tuple(pshape)))
        elif kind == "reduce" and shape:
            axis = draw(st.sampled_from([None, *range(-len(shape), len(shape))]))
            keep = draw(st.booleans())
            node = {"op": draw(st.sampled_from(["sum", "mean", "max", "logsumexp"])), "in": [cur], "keepdims": keep}
            if axis is not None or node["op"] != "logsumexp":
                node["axis"] = axis
            axes = range(len(shape)) if node.get("axis") is None and node["op"] != "logsumexp" else \
                [(node.get("axis", -1)) % len(shape)]
            shape = [1 if i in axes else n for i, n in enumerate(shape) if keep or i not in axes]
        elif kind == "softmax" and shape:
            node = {"op": draw(st.sampled_from(["softmax", "log_softmax"])), "in": [cur],
                    "axis": draw(st.integers(-len(shape), len(shape) - 1))}
        elif kind == "transpose" and shape:
            perm = draw(st.permutations(range(len(shape))))
            node = {"op": "transpose", "in": [cur], "axes": list(perm)}
            shape = [shape[a] for a in perm]
        elif kind == "matmul" and shape:
            n = draw(st.integers(1, 3))
            w = np.round(rng.normal(size=(shape[-1], n) if draw(st.booleans()) else (shape[-1],)), 3)
            inputs[f"p{k}"] = {"value": w.tolist()}
            node = {"op": "matmul", "in": [cur, f"p{k}"]}
            shape = [*shape[:-1], *w.shape[1:]]
        else:
            node = {"op": "reshape", "in": [cur], "shape": [-1]}
            shape = [int(np.prod(shape))]
        nodes[f"n{k}"] = node
        cur = f"n{k}"
    nodes["z"] = {"op": "sum", "in": [cur]}
    return {"cg": 1, "inputs": inputs, "nodes": nodes, "outputs": ["z"]}, [1, *map(int, shape)], seed


@settings(max_examples=40, deadline=None, derandomize=True)
@given(graphs(), st.integers(1, 7), st.integers(1, 4))
def test_random_graphs_match_a_loop_over_rows(case: tuple[dict[str, Any], list[int], int], n: int,
                                               chunk: int) -> None:
    doc, _, seed = case
    graph = cglib.loads(json.dumps(doc))
    data = {"x": np.random.default_rng(seed).normal(size=(n, *graph.avals["x"].shape))}
    assert_rows_match(graph, data, list(run_rows(graph, data, chunk=chunk)))


# ---- the example graphs ---------------------------------------------------------------------------

EXAMPLES = [p.name for p in sorted(GRAPHS.glob("*.yaml")) if "\noutputs:" in p.read_text(encoding="utf-8")]


def _split(graph: Graph) -> tuple[list[str], list[str]]:
    """Data columns: the inputs without a default, else the first half of them; the rest are parameters."""
    names = [i.name for i in graph.inputs]
    free = [i.name for i in graph.inputs if i.default is None]
    data = free or names[: max(1, len(names) // 2)]
    return data, [n for n in names if n not in data]


def _column(graph: Graph, name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    inp = graph.input(name)
    assert inp is not None
    shape = (n, *inp.aval.shape)
    if inp.aval.dtype == "int":  # a label: a class below the size of what it indexes (>= 2 in the examples)
        return rng.integers(0, 2, size=shape)
    base = inp.default if inp.default is not None else np.zeros(inp.aval.shape)
    return base + 0.3 * rng.normal(size=shape)


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_graph(name: str) -> None:
    graph = cglib.load(GRAPHS / name)
    rng = np.random.default_rng(1)
    columns, params = _split(graph)
    data = {c: _column(graph, c, 5, rng) for c in columns}
    given_ = dict(graph.expect.inputs) if graph.expect else {}
    given_ = {k: v for k, v in given_.items() if k in params}
    chunks = list(run_rows(graph, data, given_, chunk=2))
    assert [(c.start, c.stop) for c in chunks] == [(0, 2), (2, 4), (4, 5)]
    assert_rows_match(graph, data, chunks, given_)


def test_logreg_with_x_and_y_as_data() -> None:
    graph = cglib.load(GRAPHS / "logreg.yaml")
    data = {"x": np.array([2.0, 0.0, -1.0]), "y": np.array([3, 1, 2])}  # int data for a float input is fine
    chunks = list(run_rows(graph, data))
    np.testing.assert_allclose(chunks[0].values["p"][0], 0.5866, atol=1e-4)
    np.testing.assert_allclose(chunks[0].grads["w1"][0], 0.4850, atol=1e-4)  # per row: d p_0 / d w1
    assert_rows_match(graph, {k: v.astype(float) for k, v in data.items()}, chunks)
    total = sum(c.grads["w1"].sum() for c in chunks)  # type: ignore[union-attr]
    assert total == pytest.approx(sum(cglib.run(graph, {"x": x, "y": y}).grads["w1"] for x, y in zip(*data.values())))


# ---- chunks, progress, and what is refused ----------------------------------------------------------


def test_chunks_equal_one_run_and_report_progress() -> None:
    graph = cglib.load(GRAPHS / "mlp.yaml")
    rng = np.random.default_rng(2)
    data = {"x": rng.normal(size=(10, 3)), "y": rng.integers(0, 2, size=10).astype(float)}
    whole = list(run_rows(graph, data))
    heard: list[tuple[str, int, int]] = []
    parts = list(run_rows(graph, data, chunk=4, progress=lambda *a: heard.append(a)))
    assert [(c.start, c.stop) for c in parts] == [(0, 4), (4, 8), (8, 10)]
    assert heard == [("rows", 4, 10), ("rows", 8, 10), ("rows", 10, 10)]
    for name in whole[0].values:
        np.testing.assert_allclose(np.concatenate([c.values[name] for c in parts]), whole[0].values[name])
        if whole[0].grads[name] is not None:
            np.testing.assert_allclose(np.concatenate([c.grads[name] for c in parts]),  # type: ignore[misc]
                                       whole[0].grads[name])


def test_the_batched_graph_keeps_ids_and_shapes() -> None:
    graph = cglib.load(GRAPHS / "mlp.yaml")
    big = batched(graph, 7)
    assert all(big.avals[n] == type(a)((7, *a.shape), a.dtype) for n, a in graph.avals.items())
    assert big.outputs == graph.outputs


@pytest.mark.parametrize(("data", "given_", "options", "message"), [
    ({"q": np.zeros(3)}, None, {}, "unknown input 'q'"),
    ({"x": np.zeros((3, 2))}, None, {}, "data column 'x' has shape [3, 2]"),
    ({"x": np.zeros(3), "y": np.zeros(4)}, None, {}, "has 4 rows but 'x' has 3"),
    ({"x": np.zeros(3)}, {"x": 1.0}, {}, "both as a data column and as a fixed value"),
    ({"x": np.zeros(3)}, {"w1": [1.0, 2.0]}, {}, "input 'w1' has shape []"),
    ({"x": np.zeros(3)}, None, {"of": "wx2"}, "'wx2' is not an input or node"),
    ({"x": np.zeros(3)}, None, {"chunk": 0}, "chunk must be at least 1"),
    ({}, None, {}, "no data columns"),
    ({"x": np.zeros(3)}, None, {}, "missing value for input 'y'"),
])
def test_refusals(data: dict[str, Any], given_: Any, options: dict[str, Any], message: str) -> None:
    graph = cglib.load(GRAPHS / "logreg.yaml")
    if "y" not in data and message != "missing value for input 'y'" and data:
        data = {**data, "y": np.zeros(len(next(iter(data.values()))))}
    with pytest.raises(UsageError) as e:
        run_rows(graph, data, given_, **options)  # refused when called, before any chunk is asked for
    assert message in str(e.value)


def test_float_data_for_an_int_input_is_refused_and_of_must_be_a_row_scalar() -> None:
    graph = cglib.load(GRAPHS / "multiclass_logreg.yaml")
    ints = [i.name for i in graph.inputs if i.aval.dtype == "int"]
    assert ints
    label = ints[0]
    with pytest.raises(UsageError, match="holds floats but input"):
        run_rows(graph, {label: np.zeros(3)})
    vector = next(n.id for n in graph.nodes if graph.avals[n.id].shape != ())
    with pytest.raises(UsageError, match="not a scalar"):
        run_rows(graph, {label: np.zeros(3, int)}, of=vector)


def test_a_non_finite_row_is_named() -> None:
    graph = cglib.loads(json.dumps({"cg": 1, "inputs": {"x": {"shape": []}},
                                    "nodes": {"z": {"op": "log", "in": ["x"]}}, "outputs": ["z"]}))
    with pytest.raises(CgError, match="example 4: 'z' is not finite"):
        list(run_rows(graph, {"x": np.array([1.0, 2.0, 3.0, 4.0, -1.0])}, chunk=2))


def test_an_op_that_fails_names_the_rows_and_no_rows_give_no_chunks() -> None:
    graph = cglib.loads(json.dumps({"cg": 1, "inputs": {"v": {"shape": [3]}, "i": {"shape": [], "dtype": "int"}},
                                    "nodes": {"z": {"op": "index", "in": ["v", "i"]}}, "outputs": ["z"]}))
    with pytest.raises(CgError, match=r"in examples 2 to 3: .*index 5 is out of range"):
        list(run_rows(graph, {"v": np.zeros((4, 3)), "i": np.array([0, 1, 2, 5])}, chunk=2))
    assert list(run_rows(graph, {"v": np.zeros((0, 3)), "i": np.zeros(0, int)})) == []


def test_keep_leaves_a_non_finite_row_to_the_caller() -> None:
    graph = cglib.loads("cg: 1\ninputs:\n  x: {shape: []}\nnodes:\n  z: {op: log, in: [x]}\noutputs: [z]\n")
    [chunk] = run_rows(graph, {"x": np.array([1.0, -1.0, 2.0])}, on_nonfinite="keep")
    assert np.isnan(chunk.values["z"][1]) and np.isfinite(chunk.values["z"][[0, 2]]).all()
