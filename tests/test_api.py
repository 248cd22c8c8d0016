"""The Python API for tests: cg.check (a report that prints as `cg check`'s table), and the short
reprs of Graph and Result. Also the README's pytest example, run as written."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ROOT, cg

import cg as cglib
from cg.errors import SnapshotError, UsageError
from cg.graph.builder import build
from cg.parse.read import load_file, load_text

MLP = ROOT / "graphs" / "mlp.yaml"
LOG = ROOT / "graphs" / "log3x2p5xy.yaml"
PARAMS = ("W1", "b1", "w2", "b2")


def mlp_grads() -> dict[str, Any]:
    r = cglib.run(cglib.load(MLP))
    return {n: np.asarray(r.grad(n)) for n in PARAMS}


# ---- cg.check -----------------------------------------------------------------------------------------


def test_a_correct_partial_snapshot_passes_from_a_path_or_a_graph() -> None:
    for graph in (MLP, str(MLP), cglib.load(MLP)):
        report = cglib.check(graph, against={"grads": mlp_grads()})
        assert report.passed, report
    assert report.rows[-1].name == "(snapshot)" and report.rows[-1].note == "0 values, 4 gradients"
    assert report.diagnostics == () and isinstance(report.notes, tuple)


def test_one_wrong_gradient_fails_and_the_report_names_it() -> None:
    grads = mlp_grads()
    grads["w2"] = grads["w2"] + np.array([0, 0, 1e-3, 0])
    report = cglib.check(MLP, against={"grads": grads})
    assert not report.passed
    [d] = report.diagnostics
    assert d.code == "CG402" and d.node == "w2" and d.pos is not None and d.pos.line == 11
    text = str(report)
    assert "node 'w2': snapshot: gradient [2] is -0.199045 (snapshot -0.198045, off by 0.001" in text
    assert re.search(r"^  \(snapshot\) .* FAIL  0 values, 4 gradients$", text, re.M), text
    assert "\x1b" not in text and text.startswith(f"{MLP}: FAILED\n  name ")
    assert repr(report) == "<CheckReport mlp.yaml: FAILED, 1 problem; node 'w2': snapshot: gradient [2] is -0.199045" \
        " (snapshot -0.198045, off by 0.001; 1 of 4 elements are off) [CG402]>"
    assert repr(cglib.check(MLP)) == "<CheckReport mlp.yaml: passed, 8 rows>"


def test_a_failed_assert_prints_the_table_or_the_first_problem() -> None:
    report = cglib.check(LOG, against={"grads": {"x": 0.6, "y": 10 / 42}})
    problem = "node 'x': snapshot: gradient is 0.642857 (snapshot 0.6, off by 0.0429) [CG402]"
    with pytest.raises(AssertionError) as info:
        assert report.passed, str(report)  # a string: pytest shows all of it
    assert re.search(r"^ +\(snapshot\) .* FAIL", str(info.value), re.M) and problem in str(info.value)
    with pytest.raises(AssertionError) as info:
        assert report.passed, report  # anything else: its repr, cut to 240 characters
    assert str(info.value).startswith(f"<CheckReport log3x2p5xy.yaml: FAILED, 1 problem; {problem}>")


def test_a_snapshot_comparing_nothing_is_an_error() -> None:
    with pytest.raises(SnapshotError, match="compares nothing"):
        cglib.check(MLP, against={})
    with pytest.raises(SnapshotError, match="compares nothing"):
        cglib.check(MLP, against={"values": {}, "grads": {}})
    report = cglib.check(MLP, against={"grads": {"W3": 1.0}})  # no name of the graph: never a vacuous pass
    assert not report.passed
    assert [d.message for d in report.diagnostics] == [
        "snapshot: 'W3' in `grads` is not in the graph",
        "snapshot: it compares nothing: none of its values and gradients is of a name of the graph"]


def test_against_a_result_compares_everything_at_its_point() -> None:
    g = cglib.load(LOG)
    result = cglib.run(g, {"x": 1.5, "y": -0.5})
    report = cglib.check(g, against=result)
    assert report.passed, report
    assert report.rows[-1].checked == 2 * (len(g.inputs) + len(g.nodes))  # every value and gradient
    moved = dataclasses.replace(result, grads={**result.grads, "c": np.float64(1.0)})
    report = cglib.check(g, against=moved)
    assert not report.passed and [d.node for d in report.diagnostics] == ["c"]
    with pytest.raises(SnapshotError, match="forward-mode"):
        cglib.check(g, against=cglib.run(g, tangents={"x": 1.0}))


def test_against_a_saved_result_file_and_a_partial_file(tmp_path: Path) -> None:
    full = tmp_path / "full.json"
    assert cg("run", str(MLP), "-f", "json", "-o", str(full)).code == 0
    assert cglib.check(MLP, against=full).passed
    partial = tmp_path / "partial.json"
    partial.write_text('{"grads": {"b2": -0.5, "b3": 1}}', encoding="utf-8")
    report = cglib.check(MLP, against=str(partial))
    assert [(d.code, d.node, d.file) for d in report.diagnostics] == [("CG402", "b2", str(MLP)),
                                                                       ("CG402", None, str(partial))]
    assert "partial.json:1:24: snapshot: 'b3' in `grads` is not in the graph [CG402]" in str(report)
    partial.write_text('{"grads": {"b2": [-0.5, }}', encoding="utf-8")
    with pytest.raises(SnapshotError) as info:
        cglib.check(MLP, against=partial)
    assert str(info.value).startswith(f"{partial}:1:25: invalid JSON")
    with pytest.raises(SnapshotError, match="cannot read the snapshot"):
        cglib.check(MLP, against=tmp_path / "none.json")


def test_inputs_win_over_the_snapshots_point_and_of_must_agree() -> None:
    snap = {"inputs": {"x": 1.0, "y": 1.0}, "values": {"z": np.log(8.0)}}
    assert cglib.check(LOG, against=snap).passed
    report = cglib.check(LOG, {"x": 2.0}, against=snap)
    assert not report.passed and report.diagnostics[0].node == "z"
    report = cglib.check(MLP, against={"of": "loss", "grads": {"b2": -0.527213}}, of="p", atol=1e-6)
    assert "snapshot: its gradients are of 'loss', but the check differentiates 'p'" in str(report)
    assert cglib.check(MLP, against={"of": "p", "grads": {"b2": 0.249259}}, of="p", atol=1e-6).passed
    with pytest.raises(UsageError, match="unknown name 'pp' for of="):
        cglib.check(MLP, of="pp")


def test_check_without_a_snapshot_and_with_per_node() -> None:
    report = cglib.check(LOG, per_node=True)
    assert report.passed and [r.name for r in report.rows] == ["x", "y", "(forward mode)", "(expect)"]


def test_against_of_another_kind_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="against: expected a path, a mapping or a cg Result, not list"):
        cglib.check(LOG, against=[1, 2])  # type: ignore[arg-type]


def test_cg_check_stays_the_function_after_its_package_is_imported() -> None:
    import cg.check.report  # noqa: F401  (would bind the package to cg.check: the facade keeps its function)
    from cg.check import api

    assert callable(cglib.check) and cglib.check.__module__ == "cg" and callable(api.check)
    assert sys.modules["cg.check"].__name__ == "cg.check"  # the package is there, under its name


# ---- reprs --------------------------------------------------------------------------------------------


def test_graph_repr_is_short() -> None:
    assert repr(cglib.load(MLP)) == "<Graph mlp: 6 inputs, 3 nodes (15 inlined), outputs [loss]>"
    assert repr(cglib.load(LOG)) == "<Graph log3x2p5xy: 2 inputs, 6 nodes, outputs [z]>"
    nn = build(load_file(ROOT / "cg" / "lib" / "nn.yaml"), library=True)
    assert repr(nn) == "<Graph nn: a library, no outputs>"


def test_result_repr_is_short() -> None:
    g = cglib.load(MLP)
    assert repr(cglib.run(g)) == \
        "<Result of mlp: loss=0.749111, 6 inputs, 15 nodes, grads d loss/d [W1, b1, w2, b2, x, y]>"
    assert repr(cglib.run(g, of="h", seed=np.ones(4))) == \
        "<Result of mlp: h=<float64 [4]>, 6 inputs, 15 nodes, grads d h/d [W1, b1, w2, b2, x, y]>"
    log = cglib.load(LOG)
    assert repr(cglib.run(log, tangents={"x": 1.0})) == \
        "<Result of log3x2p5xy: z=3.73767, 2 inputs, 6 nodes, forward mode, tangents along [x]>"
    bad = cglib.run(log, {"x": 0.0, "y": 0.0}, on_nonfinite="keep")
    assert repr(bad) == \
        "<Result of log3x2p5xy: z=-inf, 2 inputs, 6 nodes, grads d z/d [x, y], NaN or Inf in [z, x, y, ... (8 in all)]>"


def test_reprs_of_big_and_hostile_graphs_stay_short() -> None:
    n = 2000
    body = "".join(f"  n{k}: {{op: sin, in: [x{k}]}}\n" for k in range(n))
    inputs = "".join(f"  x{k}: 1.0\n" for k in range(n))
    outputs = ", ".join(f"n{k}" for k in range(n))
    name = "evil\\e]0;t\\a" + "q" * 100  # YAML's \e and \a: ESC and BEL in the graph's name
    text = f'cg: 1\nname: "{name}"\ninputs:\n{inputs}nodes:\n{body}outputs: [{outputs}]\n'
    g = build(load_text(text, "big.yaml"))
    r = cglib.run(g, seed=None, of="n0")
    for shown in (repr(g), repr(r)):
        assert len(shown) < 200 and "\x1b" not in shown and "\\x1b" in shown, shown
    assert repr(g).endswith("outputs [n0, n1, n2, n3, n4, ... (2000 in all)]>")


def test_reprs_leave_equality_as_it_was() -> None:
    g1, g2 = cglib.load(LOG), cglib.load(LOG)
    assert g1 == g2 and g1 is not g2
    assert g1 != dataclasses.replace(g1, name="other")
    assert [f.name for f in dataclasses.fields(g1) if f.compare] == [f.name for f in dataclasses.fields(g1)]


# ---- the README's example -----------------------------------------------------------------------------


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Checking gradients from pytest"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


@pytest.mark.parametrize("bug", [False, True])
def test_the_readme_pytest_example_passes_and_its_bug_fails(tmp_path: Path, bug: bool) -> None:
    code = readme_example()
    assert "dz1 = dz2 * w2 * h * (1 - h)" in code
    if bug:  # the README shows pytest's output for this one: the sigmoid's derivative forgotten
        code = code.replace("dz1 = dz2 * w2 * h * (1 - h)", "dz1 = dz2 * w2 * h")
    test = tmp_path / "test_mlp_grads.py"
    test.write_text(code, encoding="utf-8")
    (tmp_path / "graphs").symlink_to(ROOT / "graphs")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == (1 if bug else 0), proc.stdout + proc.stderr
    if bug:
        assert "mlp.yaml:9:3: node 'W1': snapshot: gradient [1, 1] is 0.0698617 (snapshot 0.766676" in proc.stdout
        assert "graphs/mlp.yaml:10:3: node 'b1': snapshot: gradient [1] is 0.0349309" in proc.stdout
