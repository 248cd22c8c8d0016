"""Partial snapshots (`cg check --against`, the format of schema/snapshot.schema.json): any subset of
a graph's names, the point they were taken at, and every way a snapshot can be wrong, through the
real command line (cg/check/snapshot.py reads them, cg/check/against.py compares)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ROOT, CliResult, cg
from jsonschema import Draft202012Validator

import cg as cglib
from cg.check.snapshot import from_mapping, parse_snapshot
from cg.errors import SnapshotError
from cg.schema.snapshot import snapshot_schema

MLP = "graphs/mlp.yaml"
LOG = "graphs/log3x2p5xy.yaml"
EXPR_GRAPH = "cg: 1\ninputs: {x: 2.0, y: 3.0}\nnodes:\n  s: {expr: 'log(3*x**2 + 5*x*y)'}\n  t: {op: sin, in: [s]}\n" \
    "outputs: [t]\n"


def exact_grads(graph: str, *names: str) -> dict[str, Any]:
    """The gradients of the graph's run at its defaults, as lists (what another framework would give)."""
    r = cglib.run(cglib.load(ROOT / graph))
    return {n: np.asarray(r.grad(n)).tolist() for n in names}


def against(tmp_path: Path, doc: Any, *args: str, graph: str = MLP) -> CliResult:
    snap = tmp_path / "snap.json"
    snap.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return cg("check", graph, "--against", str(snap), *args)


def snapshot_row(r: CliResult) -> str:
    found = re.search(r"^  \(snapshot\) .*$", r.out, re.M)
    assert found, r.out
    return found.group()


def test_the_parameters_gradients_alone_pass(tmp_path: Path) -> None:
    r = against(tmp_path, {"grads": exact_grads(MLP, "W1", "b1", "w2", "b2")})
    assert r.code == 0, r.out + r.err
    assert snapshot_row(r).endswith("ok  0 values, 4 gradients"), r.out
    assert "[CG402]" not in r.out


def test_one_wrong_gradient_fails_at_its_node(tmp_path: Path) -> None:
    grads = exact_grads(MLP, "W1", "b1", "w2", "b2")
    grads["b1"][2] += 0.01
    r = against(tmp_path, {"grads": grads})
    assert r.code == 1
    assert re.search(r"mlp\.yaml:10:3: node 'b1': snapshot: gradient \[2\] is -0.0619\d* \(snapshot -0.0519\d*, off by"
                     r" 0.01; 1 of 4 elements are off\) \[CG402\]", r.out), r.out
    assert r.out.count("[CG402]") == 1 and "FAIL" in snapshot_row(r)


def test_values_of_inner_nodes_and_rounded_numbers_with_a_tolerance(tmp_path: Path) -> None:
    doc = {"of": "loss", "values": {"p/z": -0.1090, "loss": 0.7491}, "grads": {"b2": -0.5272}}
    assert against(tmp_path, doc).code == 1  # 4 decimals are off by more than the default atol
    r = against(tmp_path, doc, "--atol", "1e-4")
    assert r.code == 0, r.out
    assert snapshot_row(r).endswith("2 values, 1 gradient")


def test_names_the_graph_lacks_are_errors_at_their_position(tmp_path: Path) -> None:
    text = '{\n  "grads": {\n    "b2": -0.527213,\n    "B1": [1.0]\n  }\n}\n'
    r = against(tmp_path, text, "--atol", "1e-6")
    assert r.code == 1
    assert f"{tmp_path / 'snap.json'}:4:5: snapshot: 'B1' in `grads` is not in the graph (did you mean 'b1'?) [CG402]" \
        in r.out
    assert r.out.count("[CG402]") == 1  # b2 matched; W1, w2... are simply not compared


@pytest.mark.parametrize("doc", [{"grads": {"W3": 1.0}}, {"values": {"nope": 1.0}, "grads": {}}])
def test_a_snapshot_that_compares_nothing_fails(tmp_path: Path, doc: dict[str, Any]) -> None:
    r = against(tmp_path, doc)
    assert r.code == 1 and "it compares nothing" in r.out and "FAIL" in snapshot_row(r)


@pytest.mark.parametrize("text", ["{}", '{"values": {}, "grads": {}}', '{"of": "loss", "inputs": {"x": [1, 2, 3]}}'])
def test_a_snapshot_with_no_values_and_no_grads_is_refused(tmp_path: Path, text: str) -> None:
    r = against(tmp_path, text)
    assert r.code == 1 and r.out == ""
    assert f"{tmp_path / 'snap.json'}:1:1: the snapshot compares nothing: give `values` or `grads`" in r.err


BAD = [  # (snapshot text, what the message says: position and code)
    ("", ":1:1: empty file: expected a snapshot like {\"values\": {...}, \"grads\": {...}} [CG003]"),
    ("not json", ":1:1: invalid JSON: expecting value [CG003]"),
    ('{"grads": {"b2": 1.0}', ":1:22: invalid JSON: expecting ',' delimiter [CG003]"),
    ("[1, 2]", ":1:1: expected an object at the top level (a snapshot like {\"values\": {...}, \"grads\": {...}}),"
     " found a list [CG003]"),
    ('{"grad": {"b2": 1.0}}', ":1:2: unknown key 'grad' (did you mean 'grads'?) (allowed: of, inputs, values, grads)"
     " [CG100]"),
    ('{"grads": [1.0]}', ":1:11: 'grads': expected a mapping, got a list [CG100]"),
    ('{"grads": {"b2": "big"}}', ":1:18: 'grads.b2': expected a number or a nested list of numbers"),
    ('{"grads": {"w2": [1.0, [2.0]]}}', ":1:18: 'grads.w2': expected a number or a rectangular nested list of"
     " numbers [CG104]"),
    ('{"grads": {"w2": [1.0, true]}}', ":1:24: 'grads.w2[1]': expected a number or a nested list of numbers (NaN"
     ' and infinities as the strings "NaN", "Infinity", "-Infinity"), got a boolean [CG100]'),
    ('{"grads": {"b2": 1.0}, "of": 3}', ":1:30: 'of': expected a string, got the number 3 [CG100]"),
    ('{"grads": {"b2": 1.0}, "grads": {"b1": 1.0}}', ":1:24: duplicate key 'grads'"),
    ('{"nodes": [{"id": "x"}]}', ":1:12: missing required key 'value' [CG100]"),
    ('{"nodes": [{"id": "x", "value": "NaNa"}]}', ":1:33: 'nodes[0].value': expected"),
]


@pytest.mark.parametrize(("text", "says"), BAD, ids=[t or "empty" for t, _ in BAD])
def test_a_bad_snapshot_fails_at_its_position_with_exit_1(tmp_path: Path, text: str, says: str) -> None:
    r = against(tmp_path, text)
    assert r.code == 1 and r.out == "", r.out  # nothing checked: the snapshot is wrong
    assert f"{tmp_path / 'snap.json'}{says}" in r.err, r.err
    assert "Traceback" not in r.err


def test_a_snapshot_that_cannot_be_read_is_a_usage_error(tmp_path: Path) -> None:
    assert cg("check", MLP, "--against", str(tmp_path / "none.json")).code == 2
    assert cg("check", MLP, "--against", str(tmp_path)).code == 2  # a directory


def test_values_of_the_wrong_shape_and_nan_where_the_graph_gives_a_number(tmp_path: Path) -> None:
    r = against(tmp_path, {"grads": {"w2": [1.0, 2.0, 3.0], "b2": "NaN"}})
    assert r.code == 1
    assert "node 'w2': snapshot: gradient has shape [4], the snapshot's [3] [CG402]" in r.out
    assert re.search(r"node 'b2': snapshot: gradient is -0.527213 \(snapshot nan, off by nan\) \[CG402\]", r.out)
    # Python's json module writes a bare NaN: read as the string form is
    r = against(tmp_path, json.dumps({"grads": {"b2": math.nan}}))
    assert r.code == 1 and "node 'b2': snapshot: gradient is -0.527213 (snapshot nan" in r.out


# ---- the point and the output differentiated --------------------------------------------------------


def test_the_snapshots_inputs_are_the_point_and_inputs_on_the_command_line_win(tmp_path: Path) -> None:
    doc = {"inputs": {"x": 1.0, "y": 1.0}, "values": {"z": math.log(8.0)}, "grads": {"x": 11 / 8, "y": 5 / 8}}
    r = against(tmp_path, doc, graph=LOG)
    assert "[CG402]" not in r.out and "ok" in snapshot_row(r), r.out
    r = against(tmp_path, doc, "--inputs", "x=2", graph=LOG)  # x = 2, y = 1 from the snapshot
    assert "node 'z': snapshot: value is 3.09104 (snapshot 2.07944, off by 1.01) [CG402]" in r.out  # log(12 + 10)


def test_inputs_the_graph_does_not_have_and_nodes_given_as_inputs(tmp_path: Path) -> None:
    r = against(tmp_path, {"inputs": {"xx": 1.0, "a": 2.0}, "grads": {"x": 27 / 42}}, graph=LOG)
    assert r.code == 1
    assert ":1:13: snapshot: 'xx' in `inputs` is not an input of the graph (did you mean 'x'?) [CG402]" in r.out
    assert ":1:24: snapshot: 'a' in `inputs` is a node, not an input [CG402]" in r.out


def test_of_names_what_the_gradients_are_of(tmp_path: Path) -> None:
    dp = cglib.run(cglib.load(ROOT / MLP), of="p").grad("b2")  # p (1 - p), not dloss/db2
    r = against(tmp_path, {"of": "p", "grads": {"b2": float(dp)}})
    assert "[CG402]" not in r.out and "ok" in snapshot_row(r), r.out
    r = against(tmp_path, {"of": "q", "grads": {"b2": 1.0}})
    assert "snapshot: it differentiated 'q', which is not in the graph [CG402]" in r.out


# ---- functions and expressions ----------------------------------------------------------------------


@pytest.mark.parametrize("graph", [MLP, "graphs/multiclass_loss.yaml", "expr"])
def test_full_results_of_composites_compare_cleanly_from_python(tmp_path: Path, graph: str) -> None:
    # Regression (issue 13): a saved result of a graph with calls or expression nodes folds them into
    # one row; every inner node was reported "not in the snapshot" while the row said ok.
    if graph == "expr":
        graph = str(tmp_path / "e.yaml")
        Path(graph).write_text(EXPR_GRAPH, encoding="utf-8")
    snap = tmp_path / "snap.json"
    assert cg("run", graph, "-f", "json", "-o", str(snap)).code == 0
    report = cglib.check(ROOT / graph, against=snap)
    assert report.passed, report
    assert not report.diagnostics and report.rows[-1].name == "(snapshot)" and report.rows[-1].ok
    assert cglib.check(ROOT / graph, against=cglib.run(cglib.load(ROOT / graph))).passed  # inner nodes too


def test_partial_snapshot_of_an_expression_graph_names_its_inner_nodes(tmp_path: Path) -> None:
    g = tmp_path / "e.yaml"
    g.write_text(EXPR_GRAPH, encoding="utf-8")
    r = cglib.run(cglib.load(g))
    inner = [n.id for n in r.graph.nodes if "/" in n.id]
    assert inner, [n.id for n in r.graph.nodes]
    doc = {"values": {inner[0]: float(r.value(inner[0]))}, "grads": {"x": float(r.grad("x"))}}
    assert against(tmp_path, doc, graph=str(g)).code == 0


# ---- the schema ---------------------------------------------------------------------------------------


def test_committed_snapshot_schema_is_the_generated_one() -> None:
    committed = (ROOT / "schema" / "snapshot.schema.json").read_text(encoding="utf-8")
    assert json.loads(committed) == snapshot_schema()
    Draft202012Validator.check_schema(snapshot_schema())
    r = cg("schema", "--snapshot")
    assert r.code == 0 and r.out == committed
    assert cg("schema", "--snapshot", "--result").code == 2
    props = snapshot_schema()["properties"]
    assert set(props) == {"of", "inputs", "values", "grads"} and all(p.get("description") for p in props.values())


def test_what_the_schema_accepts_reads_and_what_it_refuses_does_not() -> None:
    validator = Draft202012Validator(snapshot_schema())
    good = {"of": "loss", "inputs": {"x": [1, 2, 3]}, "values": {"p/z": 0.1}, "grads": {"W1": [[1, "NaN"]]}}
    assert validator.is_valid(good)
    snap = from_mapping(good)
    assert snap.of == "loss" and np.isnan(snap.grads["W1"][0, 1]) and snap.values["p/z"].shape == ()
    for bad in ({"grads": {"x": True}}, {"grad": {}}, {"values": []}, {"of": None, "grads": {"x": 1}}):
        assert not validator.is_valid(bad)
        with pytest.raises(SnapshotError):
            from_mapping(bad)


def test_parse_snapshot_tells_the_two_formats_apart() -> None:
    full = parse_snapshot('{"of": "z", "nodes": [{"id": "x", "value": 2.0, "grad": null}]}', "s.json")
    assert full.full and full.grads == {"x": None} and full.of == "z"
    partial = parse_snapshot('{"grads": {"x": 0.5}}', "s.json")
    assert not partial.full and dict(partial.values) == {} and partial.grads["x"] == 0.5
    assert partial.where("grads", "x") is not None and partial.where("grads", "x").col == 12  # type: ignore[union-attr]
