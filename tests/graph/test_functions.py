"""Functions (composite gates): `functions:`, `imports:`, the ready gates of cg:nn (cg/lib/), how
calls are shown (one row, --expand, clusters) and every function error with both positions.

Calls are inlined when a graph is built, so the gradients through a composite are those of the
same graph written flat: checked on the two library examples against hand-written flat files,
and on every example graph wrapped into functions automatically.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from conftest import GRAPHS, ROOT, cg

import cg as cglib
from cg.check.gradients import check_graph
from cg.check.report import Options
from cg.errors import CgError, GraphError
from cg.eval.interp import Result
from cg.graph.ir import Graph
from cg.parse.yamldoc import load_file

LIB = ROOT / "cg" / "lib" / "nn.yaml"  # shipped with cg: `imports: [cg:nn]` from anywhere
GOOD = ROOT / "tests" / "good"
EXAMPLES = sorted(GRAPHS.glob("*.yaml"))


def load_in_graphs(text: str, name: str = "t.yaml") -> Graph:
    """A graph as if it were a file in graphs/ (where the examples are)."""
    return cglib.loads(text, str(GRAPHS / name))


def errors(text: str, file: str) -> list[Any]:
    with pytest.raises(GraphError) as e:
        cglib.loads(text, file)
    return e.value.diagnostics


def inputs_of(graph: Graph) -> dict[str, Any]:
    """The example's point: its expect block's inputs over the defaults, else random values."""
    rng = np.random.default_rng(0)
    given: dict[str, Any] = dict(graph.expect.inputs) if graph.expect else {}
    for i in graph.inputs:
        if i.name not in given and i.default is None:
            given[i.name] = rng.normal(size=i.aval.shape)
    return given


def same_numbers(a: Result, b: Result, names: dict[str, str], rtol: float = 0.0) -> None:
    """Values and gradients of a's names equal b's (names: a's id -> b's id)."""
    for x, y in names.items():
        np.testing.assert_allclose(a.values[x], b.values[y], rtol=rtol, atol=0, err_msg=f"value {x} vs {y}")
        ga, gb = a.grads[x], b.grads[y]
        assert (ga is None) == (gb is None), x
        if ga is not None:
            np.testing.assert_allclose(ga, gb, rtol=rtol, atol=1e-300, err_msg=f"grad {x} vs {y}")


# ---- the ready gates of cg:nn ----------------------------------------------------------------------


def gate(call: str, inputs: str) -> Result:
    """The gate called on the inputs, its gradients checked; differentiated: the sum of its output."""
    g = load_in_graphs(f"cg: 1\nimports: [cg:nn]\ninputs: {inputs}\nnodes:\n  out: {call}\n"
                       "  total: {op: sum, in: [out]}\noutputs: [total]\n")
    report = check_graph(g, opts=Options(all_nodes=True, per_node=True))
    assert report.ok, (report.problems, [r for r in report.rows if not r.ok])
    return cglib.run(g)


def test_every_gate_has_a_doc_line_and_is_in_the_readme_table() -> None:
    functions = yaml.safe_load(LIB.read_text())["functions"]
    readme = (ROOT / "README.md").read_text()
    assert {"linear", "sigmoid_neuron", "bce", "softmax_xent", "mse"} <= set(functions)
    for name, spec in functions.items():
        assert spec["doc"] and "\n" not in spec["doc"] and len(spec["doc"]) <= 120, name
        assert re.search(rf"^\| `{name}` \|", readme, re.M), f"{name} is not in the README's library table"


def test_linear() -> None:
    W, x, b = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]]), np.array([0.5, -1.0, 2.0]), np.array([0.1, 0.2])
    r = gate("{op: linear, in: [W, x, b]}", f"{{W: {W.tolist()}, x: {x.tolist()}, b: {b.tolist()}}}")
    np.testing.assert_allclose(r.values["out"], W @ x + b)
    np.testing.assert_allclose(r.grads["W"], np.outer([1.0, 1.0], x))
    assert r.graph.composites[0].op.name == "linear"


def test_sigmoid_neuron_is_the_cs231n_neuron() -> None:
    # 003: w = [2, -3, -3] (the bias last), x = [-1, -2]: f = 0.73, local gradient 0.2.
    r = gate("{op: sigmoid_neuron, in: [w, x, b]}", "{w: [2.0, -3.0], x: [-1.0, -2.0], b: -3.0}")
    f = 1 / (1 + math.exp(-1.0))
    assert float(r.values["out"]) == pytest.approx(f)
    np.testing.assert_allclose(r.grads["x"], [2 * (1 - f) * f, -3 * (1 - f) * f])
    np.testing.assert_allclose(r.grads["w"], [-1 * (1 - f) * f, -2 * (1 - f) * f])
    assert float(r.grads["b"]) == pytest.approx((1 - f) * f)
    # A call inside a function: two composites, the inner one nested in the outer one.
    assert [(c.id, c.parent) for c in r.graph.composites] == [("out", None), ("out/z", "out")]
    assert [n.id for n in r.graph.nodes] == ["out/z/Wx", "out/z", "out", "total"]


def test_bce() -> None:
    p, y = np.array([0.9, 0.2, 0.6]), np.array([1.0, 0.0, 1.0])
    r = gate("{op: bce, in: [p, y]}", f"{{p: {p.tolist()}, y: {y.tolist()}}}")
    assert float(r.values["out"]) == pytest.approx(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))
    np.testing.assert_allclose(r.grads["p"], (p - y) / (p * (1 - p)) / 3)


def test_softmax_xent_one_example_and_a_batch() -> None:
    logits = np.array([2.0, 1.0, 0.1])
    r = gate("{op: softmax_xent, in: [z, 0]}", f"{{z: {logits.tolist()}}}")  # an integer literal stays an int
    soft = np.exp(logits) / np.exp(logits).sum()
    assert float(r.values["out"]) == pytest.approx(-math.log(soft[0]))
    np.testing.assert_allclose(r.grads["z"], soft - np.eye(3)[0])
    batch = gate("{op: softmax_xent, in: [Z, y]}",
                 "{Z: [[2.0, 1.0, 0.1], [0.0, 3.0, 1.0]], y: {dtype: int, value: [0, 2]}}")
    Z = np.array([[2.0, 1.0, 0.1], [0.0, 3.0, 1.0]])
    logp = Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))
    assert float(batch.values["out"]) == pytest.approx(-(logp[0, 0] + logp[1, 2]) / 2)


def test_mse() -> None:
    a, t = np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 3.0])
    r = gate("{op: mse, in: [a, t]}", f"{{a: {a.tolist()}, t: {t.tolist()}}}")
    assert float(r.values["out"]) == pytest.approx(np.mean((a - t) ** 2))
    np.testing.assert_allclose(r.grads["a"], 2 * (a - t) / 3)
    np.testing.assert_allclose(r.grads["t"], -2 * (a - t) / 3)


# ---- the two examples against their flat versions -------------------------------------------------


@pytest.mark.parametrize(("lib", "flat", "shared"), [
    ("mlp.yaml", "mlp_flat.yaml", ["W1", "b1", "w2", "b2", "x", "y", "h", "p", "loss"]),
    ("multiclass_loss.yaml", "multiclass_loss_flat.yaml", ["W", "x", "b", "y", "logits", "loss"]),
])
def test_library_example_equals_its_flat_version(lib: str, flat: str, shared: list[str]) -> None:
    composite, written_flat = cglib.load(GRAPHS / lib), cglib.load(GOOD / flat)
    assert composite.composites and not written_flat.composites
    a, b = cglib.run(composite), cglib.run(written_flat)
    same_numbers(a, b, {n: n for n in shared})  # bit for bit: the same ops in the same order
    assert len(composite.nodes) == len(written_flat.nodes)


def test_multiclass_loss_is_minus_the_log_likelihood_of_002() -> None:
    loss = cglib.run(cglib.load(GRAPHS / "multiclass_loss.yaml"))
    ll = cglib.run(cglib.load(GRAPHS / "multiclass_logreg.yaml"))
    assert float(loss.values["loss"]) == pytest.approx(-float(ll.values["l"]), rel=1e-12)
    for name in ("W", "x", "b", "logits"):
        np.testing.assert_allclose(loss.grads[name], -ll.grads[name], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ["graphs/mlp.yaml", "graphs/multiclass_loss.yaml", "cg/lib/nn.yaml"])
def test_cg_check_passes_on_the_library_and_its_examples(name: str) -> None:
    r = cg("check", name, "--per-node", "--all")
    assert r.code == 0, r.out + r.err
    assert "1 passed, 0 failed" in r.err


# ---- every example graph, wrapped into functions, gives the same numbers --------------------------


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _spec(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    data.pop("expect", None)  # it names inner nodes, which are inside a function now
    return data


def wrap_whole(data: dict[str, Any]) -> dict[str, Any]:
    """The whole graph as one function of its inputs; one call gives the first output."""
    params = list(data.get("inputs", {}))
    out = data["outputs"][0]
    fn = {"doc": "everything", "inputs": params, "nodes": data["nodes"], "output": out}
    return {**data, "functions": {**data.get("functions", {}), "whole": fn},
            "nodes": {out: {"op": "whole", "in": params}}, "outputs": [out]}


def wrap_each(data: dict[str, Any]) -> dict[str, Any]:
    """Every node a call of its own one-node function (constants and attributes stay inside)."""
    functions, nodes = dict(data.get("functions", {})), {}
    for nid, spec in data["nodes"].items():
        names = list(dict.fromkeys(a for a in spec["in"] if isinstance(a, str)))
        functions[f"f_{nid}"] = {"inputs": names, "nodes": {"r": spec}, "output": "r"}
        nodes[nid] = {"op": f"f_{nid}", "in": names}
    return {**data, "functions": functions, "nodes": nodes}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
@pytest.mark.parametrize("how", ["whole", "each", "each_then_whole"])
def test_every_example_wrapped_in_functions_gives_the_flat_numbers(path: Path, how: str) -> None:
    flat = cglib.load(path)
    data = _spec(path)
    wrapped_data = {"whole": wrap_whole, "each": wrap_each,
                    "each_then_whole": lambda d: wrap_whole(wrap_each(d))}[how](data)
    text = yaml.dump(wrapped_data, Dumper=_NoAliases, sort_keys=False)
    wrapped = cglib.loads(text, str(path))  # imports resolve as for path
    given = inputs_of(flat)
    a, b = cglib.run(flat, given), cglib.run(wrapped, given)
    out = flat.outputs[0]
    if how == "each":  # every node keeps its id: it is a call now
        names = {n.id: n.id for n in flat.nodes}
    else:
        inner = {n.id: n.id for n in flat.nodes}  # inside the call `out`: ids out/<id>, or out/<id>/r
        names = {k: out if k == out else f"{out}/{k}" + ("/r" if how == "each_then_whole" else "") for k in inner}
        if how == "each_then_whole":
            names = {k: (out if k == out else v) for k, v in names.items()}
    names |= {i.name: i.name for i in flat.inputs}
    # Nodes that only feed outputs other than the first are not in the wrapped graph.
    names = {k: v for k, v in names.items() if v in wrapped.avals}
    assert out in names
    same_numbers(a, b, names)
    fwd_a = cglib.run(flat, given, tangents={i.name: 1.0 for i in flat.inputs if i.aval.dtype == "float"})
    fwd_b = cglib.run(wrapped, given, tangents={i.name: 1.0 for i in flat.inputs if i.aval.dtype == "float"})
    np.testing.assert_array_equal(fwd_a.tangents[out], fwd_b.tangents[out])  # type: ignore[index]


# ---- how a composite is shown -------------------------------------------------------------------


def plain_rows(text: str) -> dict[str, list[str]]:
    lines = text.splitlines()
    return {re.split(r"\s{2,}", line)[0]: re.split(r"\s{2,}", line) for line in lines[1:]}


def test_run_shows_a_call_as_one_row_and_expand_shows_inside() -> None:
    folded = plain_rows(cg("run", "graphs/mlp.yaml").out)
    assert list(folded) == ["W1", "b1", "w2", "b2", "x", "y", "h", "p", "loss"]
    assert folded["h"][1:3] == ["sigmoid_neuron", "W1, x, b1"]
    assert folded["loss"][1:3] == ["bce", "p, y"]
    full = plain_rows(cg("run", "graphs/mlp.yaml", "--expand").out)
    assert [k for k in full if k.startswith("h")] == ["h/z/Wx", "h/z", "h"]
    assert full["h/z/Wx"][1:3] == ["matmul", "W1, x"] and full["h"][1:3] == ["sigmoid", "h/z"]
    assert full["loss/q"][1:3] == ["sub", "1, p"]
    for name in folded:  # the boundary: the same value and gradient either way
        assert folded[name][-2:] == full[name][-2:], name


def test_of_an_inner_node_shows_the_inner_rows() -> None:
    # Folded, `p/z` would have no row and every row on its path would read "no path".
    r = cg("run", "graphs/mlp.yaml", "--of", "p/z")
    rows = plain_rows(r.out)
    assert rows["p/z"][-1] == "1.0000" and "inner nodes" in r.err
    assert rows["h"][-1] == "[1.2000, -0.8000, 0.5000, 0.3000]"  # dp/z / dh = w2
    assert "no path" in rows["p"][-1] and "no path" not in rows["x"][-1]
    assert "inner nodes" not in cg("run", "graphs/mlp.yaml", "--of", "p").err


def test_json_and_csv_fold_calls_too() -> None:
    nodes = {n["id"]: n for n in cg("run", "graphs/multiclass_loss.yaml", "-f", "json").json()["nodes"]}
    assert list(nodes) == ["W", "x", "b", "y", "logits", "loss"]
    assert nodes["loss"]["op"] == "softmax_xent" and nodes["loss"]["in"] == ["logits", "y"]
    expanded = [n["id"] for n in cg("run", "graphs/multiclass_loss.yaml", "-f", "json", "--expand").json()["nodes"]]
    assert expanded == ["W", "x", "b", "y", "logits/Wx", "logits", "loss/logp", "loss/picked", "loss/nll", "loss"]
    csv = cg("run", "graphs/multiclass_loss.yaml", "-f", "csv").out
    assert "\nloss,softmax_xent," in csv and "loss/picked" not in csv


def test_edges_show_the_expanded_graph() -> None:
    out = cg("run", "graphs/multiclass_loss.yaml", "--edges").out
    assert re.search(r"^logits/Wx\s+logits\s+0", out, re.M)
    assert re.search(r"^loss/logp\s+loss/picked\s+0", out, re.M)


def test_inner_nodes_can_be_named_on_the_command_line() -> None:
    r = cg("run", "graphs/mlp.yaml", "--of", "p/z", "-f", "json")
    assert r.code == 0, r.err
    nodes = {n["id"]: n for n in r.json()["nodes"]}
    assert nodes["b2"]["grad"] == 1.0  # d(p/z)/d(b2)


def test_draw_a_call_as_one_box_or_as_a_cluster() -> None:
    node = cg("draw", "graphs/mlp.yaml").out
    assert '"h" [label=<<B>h</B><BR/><FONT POINT-SIZE="10">sigmoid_neuron</FONT><BR/>' in node  # then its gradient
    assert "h/z" not in node and "subgraph" not in node
    # The arrow W1 -> h carries back W1's whole gradient: its only use is inside h.
    grad_w1 = cglib.run(cglib.load(GRAPHS / "mlp.yaml")).grads["W1"]
    assert f"max {np.max(grad_w1):.4f}" in re.search(r'"W1" -> "h" \[.*', node).group(0)  # type: ignore[union-attr]
    cluster = cg("draw", "graphs/mlp.yaml", "--composites", "cluster").out
    assert 'subgraph "cluster_h" { label=<<I>h: sigmoid_neuron</I>>' in cluster
    assert 'subgraph "cluster_h/z" { label=<<I>h/z: linear</I>>' in cluster
    assert cluster.index('subgraph "cluster_h/z"') > cluster.index('subgraph "cluster_h"')  # nested inside
    mermaid = cg("draw", "graphs/mlp.yaml", "--composites", "cluster", "-f", "mermaid").out
    assert 'subgraph s0 ["h: sigmoid_neuron"]' in mermaid and mermaid.count("\n  end") >= 2


def test_draw_html_without_dot_frames_the_clusters() -> None:
    from cg.render.draw import to_html

    result = cglib.run(cglib.load(GRAPHS / "mlp.yaml"))
    page = to_html(result, use_dot=False, composites="cluster")
    assert "h: sigmoid_neuron" in page and ">h/z/Wx</td>" in page
    assert ">h/z/Wx</td>" not in to_html(result, use_dot=False)


# ---- semantics of calls ---------------------------------------------------------------------------


def test_any_order_nesting_and_a_name_passed_twice() -> None:
    text = """cg: 1
inputs: {x: 3.0}
nodes:
  y: {op: outer, in: [x]}
functions:
  outer:
    inputs: [a]
    nodes:
      s: {op: sq, in: [a, a]}
      t: {op: add, in: [s, 1]}
    output: t
  sq:
    inputs: [u, v]
    nodes:
      m: {op: mul, in: [u, v]}
    output: m
outputs: [y]
"""
    g = cglib.loads(text, "t.yaml")
    assert [n.id for n in g.nodes] == ["y/s", "y"]
    r = cglib.run(g)
    assert float(r.values["y"]) == 10.0 and float(r.grads["x"]) == 6.0  # d(x*x + 1)/dx: both uses of x
    outer = next(c for c in g.composites if c.id == "y")
    assert outer.uses == ((("y/s", 0), ("y/s", 1)),)


def test_a_cycle_through_calls_is_reported_like_any_cycle() -> None:
    text = """cg: 1
functions:
  f: {inputs: [a], nodes: {b: {op: neg, in: [a]}}, output: b}
nodes:
  a: {op: f, in: [b]}
  b: {op: exp, in: [a]}
outputs: [a]
"""
    (d,) = errors(text, "t.yaml")
    assert (d.code, d.message, d.pos.line) == ("CG112", "cycle: a -> b -> a", 5)  # type: ignore[union-attr]


def test_deep_nesting_needs_no_recursion() -> None:
    depth = 1500  # beyond Python's default recursion limit of 1000
    fns = "\n".join(f"  f{k}: {{inputs: [a], nodes: {{b: {{op: f{k + 1}, in: [a]}}}}, output: b}}"
                    for k in range(depth))
    text = (f"cg: 1\ninputs: {{x: 0.5}}\nfunctions:\n{fns}\n"
            f"  f{depth}: {{inputs: [a], nodes: {{b: {{op: sin, in: [a]}}}}, output: b}}\n"
            "nodes:\n  y: {op: f0, in: [x]}\noutputs: [y]\n")
    r = cglib.run(cglib.loads(text, "t.yaml"))
    assert float(r.grads["x"]) == pytest.approx(math.cos(0.5))
    assert len(r.graph.composites) == depth + 1


def test_exponential_expansion_stops_at_the_node_limit() -> None:
    fns = "\n".join(f"  f{k + 1}: {{inputs: [a], nodes: {{b: {{op: f{k}, in: [a]}}, c: {{op: f{k}, in: [b]}}}},"
                    " output: c}" for k in range(40))
    text = ("cg: 1\ninputs: {x: 0.5}\nfunctions:\n  f0: {inputs: [a], nodes: {b: {op: sin, in: [a]}}, output: b}\n"
            f"{fns}\nnodes:\n  y: {{op: f40, in: [x]}}\noutputs: [y]\n")
    (d,) = errors(text, "t.yaml")  # 2**40 nodes: refused before any is made
    assert d.code == "CG004" and "more than 1,000,000 nodes" in d.message and d.node == "y"


def test_library_alone_validates_but_does_not_run() -> None:
    assert cg("validate", "cg/lib/nn.yaml").code == 0
    r = cg("run", "cg/lib/nn.yaml")
    assert r.code == 1 and "nothing to run" in r.err and "[CG133]" in r.err
    r = cg("check", "cg/lib/nn.yaml")
    assert r.code == 0 and "a library of functions: nothing to run" in r.out


def test_committed_schema_accepts_graphs_and_libraries_with_functions() -> None:
    from jsonschema import Draft202012Validator

    schema = json.loads((ROOT / "schema" / "graph.schema.json").read_text())
    for path in (GRAPHS / "mlp.yaml", LIB, ROOT / "tests" / "bad" / "fn_arity.yaml"):
        Draft202012Validator(schema).validate(load_file(path).data)
    errs = list(Draft202012Validator(schema).iter_errors({"cg": 1, "nodes": {"a": {"op": "neg", "in": ["x"]}}}))
    assert [e.message for e in errs] == ["'outputs' is a required property"]


# ---- errors: the message and both positions ---------------------------------------------------------


def test_recursion_names_the_cycle_the_call_and_the_function(tmp_path: Path) -> None:
    text = "cg: 1\nfunctions:\n  f:\n    inputs: [a]\n    nodes:\n      b: {op: f, in: [a]}\n    output: b\n"
    (d,) = errors(text, "self.yaml")
    assert (d.code, d.file, d.pos.line, d.pos.col, d.node) == ("CG130", "self.yaml", 6, 15, "b")  # type: ignore[union-attr]
    assert d.message.startswith("recursion: f -> f;") and "(function 'f' is defined at self.yaml:3:3)" in d.message


def test_unknown_function_in_a_body_and_at_the_top() -> None:
    text = ("cg: 1\ninputs: {x: 1.0}\nfunctions:\n  f: {inputs: [a], nodes: {b: {op: gg, in: [a]}}, output: b}\n"
            "  g: {inputs: [a], nodes: {b: {op: neg, in: [a]}}, output: b}\n"
            "nodes:\n  y: {op: F, in: [x]}\noutputs: [y]\n")
    found = [(d.code, d.pos.line, d.pos.col, d.node, d.message) for d in errors(text, "t.yaml")]  # type: ignore[union-attr]
    assert found == [("CG101", 4, 36, "b", "unknown op or function 'gg' (did you mean 'g'?)"),
                     ("CG101", 7, 11, "y", "unknown op or function 'F' (did you mean 'f'?)")]


def test_wrong_arity_points_at_the_call_and_names_the_definition() -> None:
    (d,) = errors((ROOT / "tests/bad/fn_arity.yaml").read_text(), "a.yaml")
    assert (d.code, d.pos.line, d.pos.col) == ("CG102", 12, 23)  # type: ignore[union-attr]
    assert d.message == "function 'affine' takes 3 inputs (W, x, b), got 2 (defined at a.yaml:5:3)"


def write_lib(folder: Path, body: str, name: str = "lib.yaml") -> Path:
    path = folder / name
    path.write_text(f"cg: 1\nfunctions:\n{body}")
    return path


AFFINE = """  affine:
    inputs: [W, x, b]
    nodes:
      Wx: {op: matmul, in: [W, x]}
      y: {op: add, in: [Wx, b]}
    output: y
"""


def test_error_inside_an_imported_function_points_at_its_line_and_at_the_call(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write_lib(tmp_path / "sub", AFFINE)
    main = tmp_path / "main.yaml"
    main.write_text("cg: 1\nimports: [sub/lib.yaml]\ninputs: {W: [[1.0, 2.0]], x: [1.0, 2.0, 3.0], b: 0.5}\n"
                    "nodes:\n  h: {op: affine, in: [W, x, b]}\noutputs: [h]\n")
    r = cg("validate", str(main))
    assert r.code == 1
    lib = tmp_path / "sub" / "lib.yaml"
    assert r.out == (f"{lib}:6:7: node 'h/Wx': matmul of [1, 2] by [3]: inner dimensions differ (2 vs 3); "
                     f"in function 'affine' called at {main}:5:3 [CG120]\n")


def test_nested_calls_list_every_call_site(tmp_path: Path) -> None:
    lib = write_lib(tmp_path, AFFINE + "  layer:\n    inputs: [W, x, b]\n    nodes:\n"
                    "      z: {op: affine, in: [W, x, b]}\n      s: {op: tanh, in: [z]}\n    output: s\n")
    text = ("cg: 1\nimports: [lib.yaml]\ninputs: {W: [[1.0, 2.0]], x: [1.0], b: 0.5}\n"
            "nodes:\n  h: {op: layer, in: [W, x, b]}\noutputs: [h]\n")
    (d,) = errors(text, str(tmp_path / "main.yaml"))
    assert (d.file, d.pos.line, d.pos.col, d.node) == (str(lib), 6, 7, "h/z/Wx")  # type: ignore[union-attr]
    assert d.message.endswith(f"; in function 'affine' called at {lib}:12:7, in function 'layer' called at "
                              f"{tmp_path / 'main.yaml'}:5:3")


def test_errors_of_an_imported_library_are_reported_in_it(tmp_path: Path) -> None:
    lib = write_lib(tmp_path, "  f:\n    inputs: [a]\n    nodes:\n      b: {op: nope, in: [a]}\n    output: b\n")
    (d,) = errors("cg: 1\nimports: [lib.yaml]\ninputs: {x: 1.0}\nnodes:\n  y: {op: f, in: [x]}\noutputs: [y]\n",
                  str(tmp_path / "main.yaml"))
    assert (d.code, d.file, d.pos.line, d.pos.col, d.node) == ("CG101", str(lib), 6, 15, "b")  # type: ignore[union-attr]


def test_yaml_error_in_an_import_says_where_it_was_imported(tmp_path: Path) -> None:
    (tmp_path / "lib.yaml").write_text("cg: 1\nfunctions: {f: [\n")
    main = tmp_path / "main.yaml"
    (d,) = errors("cg: 1\nimports: [lib.yaml]\nnodes: {y: {op: neg, in: [1.0]}}\noutputs: [y]\n", str(main))
    # At the import, naming the file, the place and the kind of problem; the parser's message (which
    # quotes the file's text) is not repeated (tests/graph/test_imports.py).
    assert d.code == "CG131" and d.file == str(main) and (d.pos.line, d.pos.col) == (2, 11)  # type: ignore[union-attr]
    assert d.message == f"cannot import 'lib.yaml': {tmp_path / 'lib.yaml'}:3:1: invalid-yaml (CG003)", d.message


def test_import_cycle_of_two_libraries(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("cg: 1\nimports: [b.yaml]\nfunctions:\n"
                                     "  f: {inputs: [x], nodes: {y: {op: neg, in: [x]}}, output: y}\n")
    (tmp_path / "b.yaml").write_text("cg: 1\nimports: [a.yaml]\nfunctions:\n"
                                     "  g: {inputs: [x], nodes: {y: {op: f, in: [x]}}, output: y}\n")
    r = cg("validate", str(tmp_path / "b.yaml"))
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    assert r.out == f"{b}:2:11: import cycle: {b} -> {a} -> {b} [CG131]\n"


def test_two_imports_defining_one_name(tmp_path: Path) -> None:
    one = write_lib(tmp_path, "  f: {inputs: [x], nodes: {y: {op: neg, in: [x]}}, output: y}\n", "one.yaml")
    two = write_lib(tmp_path, "  f: {inputs: [x], nodes: {y: {op: exp, in: [x]}}, output: y}\n", "two.yaml")
    (d,) = errors("cg: 1\nimports: [one.yaml, two.yaml]\nnodes: {y: {op: f, in: [1.0]}}\noutputs: [y]\n",
                  str(tmp_path / "main.yaml"))
    assert (d.code, d.pos.line, d.pos.col) == ("CG132", 2, 21)  # type: ignore[union-attr]
    assert d.message == f"function 'f' is defined twice: at {one}:3:3 and at {two}:3:3"


def test_a_body_is_checked_like_a_graph() -> None:
    text = """cg: 1
functions:
  f:
    inputs: [a, b]
    nodes:
      a: {op: neg, in: [b]}
      c: {op: add, in: [a, q]}
      d: {op: neg, in: [e]}
      e: {op: neg, in: [d]}
      s: {op: sum, in: [b], axes: 0}
    output: a
"""
    found = [(d.code, d.pos.line, d.node) for d in errors(text, "t.yaml")]  # type: ignore[union-attr]
    assert found == [("CG111", 6, "a"), ("CG110", 7, "c"), ("CG112", 8, "d"), ("CG103", 10, "s"), ("CG132", 11, None)]


def test_errors_never_show_a_traceback(tmp_path: Path) -> None:
    for text in ["cg: 1\nfunctions: 3\n", "cg: 1\nfunctions: {f: 3}\n", "cg: 1\nfunctions: {f: {inputs: x}}\n",
                 "cg: 1\nimports: 3\nnodes: {y: {op: neg, in: [1]}}\noutputs: [y]\n",
                 "cg: 1\nimports: [3, '']\nnodes: {y: {op: neg, in: [1]}}\noutputs: [y]\n",
                 "cg: 1\nfunctions: {f: {inputs: [a, a], nodes: {}, output: 3}}\n"
                 "nodes: {y: {op: f, in: [1]}}\noutputs: [y]\n",
                 "cg: 1\ninputs: {x: 1}\nfunctions: {f: {inputs: [a], nodes: {b: {op: neg, in: [a]}}, output: b}}\n"]:
        r = cg("validate", "-", stdin=text)
        assert r.code == 1 and "[CG1" in r.out, (text, r.out, r.err)


def test_cglib_errors_are_typed() -> None:
    with pytest.raises(CgError):
        cglib.load(GRAPHS / "lib" / "nn.yaml")


# ---- expression nodes: `{expr: ...}`, inlined like a call --------------------------------------------


def test_an_expression_node_equals_the_flat_seed_graph() -> None:
    text = 'cg: 1\ninputs: {x: 2.0, y: 3.0}\nnodes:\n  z: {expr: "log(3*x**2 + 5*x*y)", doc: the seed}\noutputs: [z]\n'
    g = cglib.loads(text, "e.yaml")
    flat = cglib.load(GRAPHS / "log3x2p5xy.yaml")
    assert [(n.op.name, len(n.args)) for n in g.nodes] == [(n.op.name, len(n.args)) for n in flat.nodes]
    assert [n.id for n in g.nodes] == ["z/a", "z/b", "z/c", "z/d", "z/e", "z"]
    same_numbers(cglib.run(g), cglib.run(flat, {"x": 2.0, "y": 3.0}), {"x": "x", "y": "y", "z": "z"})
    r = cg("run", "-", stdin=text)
    rows = plain_rows(r.out)
    assert list(rows) == ["id", "x", "y", "z"] or list(rows) == ["x", "y", "z"]
    assert rows["z"][1:3] == ["log(3*x**2 + 5*x*y)", "x, y"] and rows["z"][-1] == "1.0000"
    assert "z/e" in cg("run", "-", "--expand", stdin=text).out


def test_expression_errors_are_at_their_column_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    path.write_text('cg: 1\ninputs: {x: 2.0, y: 3.0}\nnodes:\n  s: {expr: "log(3*x**2 + 5*x*lgo(y))"}\n'
                    "  t:\n    expr: x * q\n  u: {expr: 'sum(x, axis=3)'}\n  v: {expr: \"x +* y\"}\noutputs: [s]\n")
    lines = path.read_text().splitlines()
    found = cg("validate", str(path)).out.splitlines()
    places = [tuple(map(int, re.match(r".+?:(\d+):(\d+):", line).groups())) for line in found]  # type: ignore[union-attr]
    tokens = ["lgo", "q", "sum", "* y"]
    assert [lines[r - 1][c - 1:][:len(t)] for (r, c), t in zip(places, tokens)] == tokens
    assert "[CG101]" in found[0] and "unknown function 'lgo' (did you mean 'log'?)" in found[0]
    assert "[CG110]" in found[1] and "unknown name 'q'" in found[1]
    assert "[CG120]" in found[2] and "axis 3 is out of range" in found[2]
    assert "in the expression of node 'u'" in found[2]
    assert "[CG600]" in found[3]


def test_an_expression_inside_a_function() -> None:
    text = """cg: 1
inputs: {x: 2.0}
functions:
  f:
    inputs: [a]
    nodes:
      b: {expr: "a*a + sin(a)"}
    output: b
nodes:
  y: {op: f, in: [x]}
  w: {expr: "y + x"}
outputs: [w]
"""
    g = cglib.loads(text, "e.yaml")
    assert [n.id for n in g.nodes] == ["y/b/c", "y/b/d", "y", "w"]  # the expression's own ids skip a and b
    r = cglib.run(g)
    assert float(r.grads["x"]) == pytest.approx(2 * 2.0 + math.cos(2.0) + 1)
    assert [(c.id, c.parent, c.text) for c in g.composites] == [
        ("y", None, ""), ("y/b", "y", "a*a + sin(a)"), ("w", None, "y + x")]


def test_expression_node_checks() -> None:
    text = ('cg: 1\ninputs: {x: 1.0}\nnodes:\n  z: {expr: "z + 1"}\n  u: {expr: "x", axis: 1}\n  v: {expr: 3}\n'
            "outputs: [z]\n")
    found = [(d.code, d.pos.line, d.node) for d in errors(text, "e.yaml")]  # type: ignore[union-attr]
    assert found == [("CG112", 4, "z"), ("CG100", 5, "u"), ("CG100", 6, "v")]
