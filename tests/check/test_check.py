"""`cg check`, the gradient checker: through the library (cg/check/gradients.py) and the real command line.

The checker must catch a wrong rule: a test-only op, `exp_wrong`, is `exp` with a VJP off by a
factor 1.5; it is installed in the registry (cg.ops.installed) only inside the tests that use it
(and, for the command line, in the subprocess through a small bootstrap).
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import GRAPHS, ROOT, CliResult, cg

import cg as cglib
from cg.check.gradients import check_graph
from cg.check.report import Options
from cg.check.snapshot import parse_snapshot
from cg.errors import SnapshotError
from cg.ops import REGISTRY, installed

LOG = "graphs/log3x2p5xy.yaml"

# The command line, in a subprocess, with exp_wrong registered before cg.cli is imported.
BOOT = """
import dataclasses, sys
from cg.ops import REGISTRY, installed
exp = REGISTRY["exp"]
with installed(dataclasses.replace(exp, name="exp_wrong", vjp=lambda g, y, xs: [1.5 * g * y], df=None)):
    from cg.cli import main
    main(sys.argv[1:], prog_name="cg")
"""

WRONG = """\
cg: 1
doc: z = log(sum(exp_wrong(x * y)))
inputs:
  x: 0.5
  y: [1.0, -2.0, 0.25]
nodes:
  xy: {op: mul, in: [x, y]}
  e: {op: exp_wrong, in: [xy]}
  s: {op: sum, in: [e]}
  e2: {op: exp_wrong, in: [s]}
  z: {op: log, in: [e2]}
outputs: [z]
"""


def cg_wrong(*args: str) -> CliResult:
    proc = subprocess.run([sys.executable, "-c", BOOT, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)
    result = CliResult(proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in result.out + result.err, result.err
    return result


@pytest.fixture
def wrong_exp() -> Iterator[str]:
    # df=None: its VJP is no longer g * exp's derivative (the plan would call that in its place).
    with installed(dataclasses.replace(REGISTRY["exp"], name="exp_wrong", vjp=lambda g, y, xs: [1.5 * g * y],
                                       df=None)):
        yield "exp_wrong"


def write(tmp_path: Path, text: str, name: str = "g.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def position(text: str, needle: str) -> str:
    """'line:col' of the first occurrence of needle in text (1-based), as messages print it; a
    needle starting with spaces gives the position just after them (a key in a block mapping)."""
    before = text[: text.index(needle) + len(needle) - len(needle.lstrip(" "))]
    return f"{before.count(chr(10)) + 1}:{len(before) - before.rfind(chr(10))}"


# ---- the example graphs ---------------------------------------------------------------------------


def test_check_graphs_folder_passes() -> None:
    r = cg("check", "graphs/")
    assert r.code == 0, r.out + r.err
    files = sorted(GRAPHS.rglob("*.yaml"))
    assert r.err.strip() == f"{len(files)} passed, 0 failed ({len(files)} files)"
    assert r.out.count(": ok\n") == len(files) and "FAIL" not in r.out
    assert "\x1b[" not in r.out  # plain text when piped


def test_every_example_graph_has_an_expect_block() -> None:
    for path in sorted(GRAPHS.glob("*.yaml")):
        graph = cglib.load(path)
        assert graph.expect is not None and graph.expect.values and graph.expect.grads, path.name


def test_per_node_and_all_pass_on_the_examples_for_several_seeds() -> None:
    for path in sorted(GRAPHS.glob("*.yaml")):
        graph = cglib.load(path)
        for seed in range(3):
            report = check_graph(graph, opts=Options(per_node=True, all_nodes=True, seed=seed))
            assert report.ok, (path.name, seed, report.problems, [r for r in report.rows if not r.ok])


def test_library_report_rows() -> None:
    report = check_graph(cglib.load(GRAPHS / "log3x2p5xy.yaml"))
    assert report.ok and not report.problems
    assert [r.name for r in report.rows] == ["x", "y", "(forward mode)", "(expect)"]
    x = report.rows[0]
    assert x.shape == () and x.abs_err < 1e-9 and x.checked == x.size == 1
    assert report.rows[-1].checked == 14  # 6 values and 8 gradients


# ---- a wrong rule ---------------------------------------------------------------------------------


def test_wrong_vjp_fails_end_to_end(tmp_path: Path) -> None:
    path = write(tmp_path, WRONG)
    r = cg_wrong("check", str(path))
    assert r.code == 1
    assert re.search(r"^  x +\[\] .* FAIL", r.out, re.M) and re.search(r"^  \(forward mode\) .* FAIL", r.out, re.M)
    assert f"{path}:4:3: node 'x': gradient disagrees with finite differences (max error" in r.out
    assert "CG400" not in r.out  # rules are checked one by one only with --per-node
    assert r.err.strip() == "0 passed, 1 failed (1 file)"


def test_per_node_passes_a_correct_op_whose_probe_overflows(tmp_path: Path) -> None:
    # exp at 709 is finite; <g, J t> and <J^T g, t> both overflow to the same infinity.
    path = tmp_path / "big.yaml"
    path.write_text("cg: 1\ninputs: {x: 709.0}\nnodes: {y: {op: exp, in: [x]}, z: {op: mul, in: [y, 1e-300]}}\n"
                    "outputs: [z]\n", encoding="utf-8")
    r = cg("check", "--per-node", str(path))
    assert r.code == 0 and "CG400" not in r.out, r.out


def test_per_node_names_the_first_wrong_node_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, WRONG)
    r = cg_wrong("check", str(path), "--per-node")
    assert r.code == 1
    first = f"{path}:{position(WRONG, 'e: {op: exp_wrong')}: node 'e': op 'exp_wrong': VJP disagrees with finite"
    assert first + " differences (max error " in r.out
    assert r.out.count("[CG400]") == 1 and "node 'e2'" not in r.out  # e2 is wrong too, but later


def test_wrong_vjp_through_the_library(wrong_exp: str) -> None:
    graph = cglib.loads(WRONG, "wrong.yaml")
    report = check_graph(graph, opts=Options(per_node=True))
    assert not report.ok
    first = report.problems[0]
    assert first.code == "CG400" and first.node == "e" and first.pos is not None and first.pos.line == 8
    assert first.message.startswith(f"op '{wrong_exp}': VJP disagrees with finite differences (max error ")
    assert {r.name for r in report.rows if not r.ok} == {"x", "y", "(forward mode)"}


def test_wrong_jvp_is_named_too() -> None:
    exp = REGISTRY["exp"]
    with installed(dataclasses.replace(exp, name="exp_wrong", jvp=lambda ts, y, xs: 2.0 * exp.jvp(ts, y, xs))):
        report = check_graph(cglib.loads(WRONG, "wrong.yaml"), opts=Options(per_node=True))
    assert "op 'exp_wrong': JVP disagrees with finite differences" in report.problems[0].message
    assert [r.name for r in report.rows if not r.ok] == ["(forward mode)"]  # reverse mode is right


def test_kinks_are_not_flagged(tmp_path: Path) -> None:
    text = """\
cg: 1
inputs:
  x: [0.0, 1.0, -2.0, 1.0e-7]
  y: [1.0, 1.0, 3.0, 2.0]
nodes:
  r: {op: relu, in: [x]}
  a: {op: abs, in: [x]}
  m: {op: maximum, in: [x, y]}
  t: {op: add, in: [r, a, m]}
  s: {op: sum, in: [t]}
outputs: [s]
"""
    r = cg("check", str(write(tmp_path, text)), "--per-node", "--all")
    assert r.code == 0, r.out
    assert "not differentiable there, skipped" in r.out  # said, not hidden


def test_small_values_get_small_steps() -> None:
    """log of a softmax tail (1.9e-5): a step of 1e-6 would be a tenth of the value."""
    report = check_graph(cglib.load(GRAPHS / "multiclass_logreg.yaml"), opts=Options(per_node=True, all_nodes=True))
    assert report.ok, report.problems


# ---- the point: inputs, random values, big inputs ------------------------------------------------


def test_random_inputs_are_reproducible_with_seed() -> None:
    def rows(seed: str) -> Any:
        r = cg("check", "graphs/logreg.yaml", "--seed", seed, "-f", "json")
        assert r.code == 0, r.err
        doc = r.json()
        assert doc["ok"] and doc["options"]["seed"] == int(seed)
        assert "random inputs (--seed to change): x, y" in doc["files"][0]["notes"]
        return doc["files"][0]["rows"]

    assert rows("3") == rows("3")
    assert rows("3") != rows("4")


def test_given_inputs_are_used(tmp_path: Path) -> None:
    r = cg("check", "graphs/logreg.yaml", "--inputs", "x=2,y=3")
    assert r.code == 0 and "random inputs" not in r.out
    assert cg("check", "graphs/logreg.yaml", "--inputs", "q=1").code == 2  # unknown input
    two = cg("check", "graphs/logreg.yaml", LOG, "--inputs", "x=2")  # each file takes what it has
    assert two.code == 0, two.out
    assert cg("check", "graphs/logreg.yaml", LOG, "--inputs", "q=1").code == 2


def test_int_index_input_is_drawn_in_range_and_other_ints_refused(tmp_path: Path) -> None:
    good = """\
cg: 1
inputs:
  v: {shape: [4, 5]}
  i: {dtype: int, shape: [4]}
nodes:
  p: {op: index, in: [v, i]}
  l: {op: sum, in: [p]}
outputs: [l]
"""
    report = check_graph(cglib.loads(good))
    assert report.ok and "random inputs (--seed to change): v, i" in report.notes
    bad = good.replace("p: {op: index, in: [v, i]}", "k: {op: add, in: [i, i]}\n  p: {op: index, in: [v, k]}")
    folder = tmp_path / "graphs"
    folder.mkdir()
    write(folder, bad, "bad_int.yaml")
    write(folder, good, "good.yaml")
    r = cg("check", str(folder))
    assert r.code == 1 and r.err.strip() == "1 passed, 1 failed (2 files)"
    assert f"{folder}/bad_int.yaml:4:3: node 'i': an integer input with no value" in r.out
    assert "give it with --inputs or a default [CG302]" in r.out


def test_nan_at_normal_inputs_retries_positive(tmp_path: Path) -> None:
    text = "cg: 1\ninputs: {x: {shape: [3]}}\nnodes: {l: {op: log, in: [x]}, s: {op: sum, in: [l]}}\noutputs: [s]\n"
    r = cg("check", str(write(tmp_path, text)))
    assert r.code == 0, r.out
    assert "drawn from [0.5, 2]" in r.out


def test_big_inputs_are_sampled(tmp_path: Path) -> None:
    text = "cg: 1\ninputs: {W: {shape: [30, 20]}}\nnodes: {t: {op: tanh, in: [W]}, s: {op: sum, in: [t]}}\n"
    text += "outputs: [s]\n"
    r = cg("check", str(write(tmp_path, text)), "--per-node")
    assert r.code == 0, r.out
    assert re.search(r"^  W +\[30, 20\] .* 200/600 +ok +200 random elements of 600", r.out, re.M)


def test_tensor_output_is_checked_through_a_random_cotangent(tmp_path: Path) -> None:
    text = "cg: 1\ninputs: {x: [1.0, 2.0]}\nnodes: {y: {op: sin, in: [x]}}\noutputs: [y]\n"
    report = check_graph(cglib.loads(text))
    assert report.ok and any("checked <r, y> for a random r" in n for n in report.notes)


# ---- files: invalid ones, several, output formats -----------------------------------------------


def test_invalid_files_are_reported_like_validate_and_others_checked(tmp_path: Path) -> None:
    bad = write(tmp_path, "cg: 1\nnodes:\n  e: {op: ad, in: [1, 2]}\noutputs: [e]\n", "bad.yaml")
    r = cg("check", str(bad), LOG)
    assert r.code == 1 and r.err.strip() == "1 passed, 1 failed (2 files)"
    assert cg("validate", str(bad)).out.strip() in r.out  # the very same lines
    assert f"{LOG}: ok" in r.out


def test_usage_errors_exit_2() -> None:
    assert cg("check").code == 2
    assert cg("check", "no/such/file.yaml").code == 2
    assert cg("check", LOG, "--rtol", "-1").code == 2
    assert cg("check", LOG, "--inputs", "x=[1,").code == 2


def test_json_format_and_output_file(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    r = cg("check", LOG, "graphs/sincos.yaml", "-f", "json", "-o", str(out))
    assert r.code == 0 and r.out == ""
    doc = json.loads(out.read_text())
    assert doc["ok"] and [f["file"] for f in doc["files"]] == [LOG, "graphs/sincos.yaml"]
    row = doc["files"][0]["rows"][0]
    assert set(row) == {"name", "shape", "abs_err", "rel_err", "ok", "checked", "size", "note"}
    text = tmp_path / "report.txt"
    assert cg("check", LOG, "-o", str(text)).code == 0 and text.read_text().startswith(f"{LOG}: ok")


# ---- expect ---------------------------------------------------------------------------------------


def test_expect_mismatch_names_the_number_and_its_position(tmp_path: Path) -> None:
    text = (GRAPHS / "log3x2p5xy.yaml").read_text().replace("z: 3.7377", "z: 3.7").replace("y: 0.2381", "y: 0.25")
    path = write(tmp_path, text)
    r = cg("check", str(path))
    assert r.code == 1
    z = position(text, "3.7}")
    assert f"{path}:{z}: expect: value of 'z' is 3.73767 (expected 3.7, off by 0.0377) [CG401]" in r.out
    y = position(text, "0.25,")
    assert f"{path}:{y}: expect: dz/dy is 0.238095 (expected 0.25, off by 0.0119) [CG401]" in r.out
    assert re.search(r"^  \(expect\) .* FAIL", r.out, re.M)


def test_expect_tensor_mismatch_names_the_element(tmp_path: Path) -> None:
    text = (GRAPHS / "linreg.yaml").read_text().replace("b: [-3.3, 1.6]", "b: [-3.3, 1.7]")
    r = cg("check", str(write(tmp_path, text)))
    assert r.code == 1
    assert "expect: dl/db [1] is 1.6 (expected 1.7, off by 0.1; 1 of 2 elements are off) [CG401]" in r.out


def test_expect_tol_and_rtol(tmp_path: Path) -> None:
    text = (GRAPHS / "square3x.yaml").read_text().replace("f: 144.0}", "f: 144.1}")
    assert cg("check", str(write(tmp_path, text))).code == 1
    assert cg("check", str(write(tmp_path, text + "  tol: 0.2\n"))).code == 0
    assert cg("check", str(write(tmp_path, text + "  rtol: 0.001\n"))).code == 0


def test_expect_is_validated_with_positions(tmp_path: Path) -> None:
    text = """\
cg: 1
inputs:
  x: 2.0
  n: {dtype: int, value: 1}
  u: {shape: [2]}
nodes:
  a: {op: square, in: [x]}
  s: {op: sum, in: [u]}
  t: {op: add, in: [a, s, n]}
outputs: [t]
expect:
  inputs: {q: 1.0, u: [1.0, 2.0, 3.0]}
  values: {zz: 1.0, a: [1.0, 2.0]}
  grads: {n: 1.0}
  tols: 1
"""
    path = write(tmp_path, text)
    r = cg("validate", str(path))
    assert r.code == 1
    assert f"{path}:{position(text, 'tols')}: unknown key 'tols' (did you mean 'tol'?)" in r.out
    fixed = text.replace("  tols: 1\n", "")
    path = write(tmp_path, fixed)
    r = cg("validate", str(path))
    want = [
        f"{path}:{position(fixed, 'q:')}: expect.inputs: 'q' is not an input [CG110]",
        f"{path}:{position(fixed, '[1.0, 2.0, 3.0]')}: expect.inputs: 'u' has shape [2], got [3] [CG120]",
        f"{path}:{position(fixed, 'zz')}: expect.values: 'zz' is not an input or node [CG110]",
        f"{path}:{position(fixed, '[1.0, 2.0]}')}: expect.values: 'a' has shape [], got [2] [CG120]",
        f"{path}:{position(fixed, 'n: 1.0')}: expect.grads: 'n' is an integer and has no gradient [CG121]",
    ]
    assert r.code == 1 and r.out.splitlines() == want


def test_expect_needs_every_input_at_its_point(tmp_path: Path) -> None:
    text = (GRAPHS / "logreg.yaml").read_text().replace("  inputs: {x: 2.0, y: 3.0}\n", "  inputs: {x: 2.0}\n")
    path = write(tmp_path, text)
    r = cg("validate", str(path))
    expect_line = text[: text.index("expect:")].count("\n") + 1
    assert r.code == 1
    assert f"{path}:{expect_line}:1: expect: input 'y' has no default value; give it in expect.inputs [CG302]" in r.out


def test_expect_in_the_schema_has_descriptions() -> None:
    from cg.schema.schemas import graph_schema

    expect = graph_schema()["properties"]["expect"]
    assert expect["description"] and all(p.get("description") for p in expect["properties"].values())
    assert set(expect["properties"]) == {"inputs", "of", "tol", "rtol", "values", "grads"}


# ---- snapshots ------------------------------------------------------------------------------------


def snapshot(tmp_path: Path, *run_args: str) -> Path:
    snap = tmp_path / "snap.json"
    assert cg("run", *run_args, "-f", "json", "-o", str(snap)).code == 0
    return snap


def test_snapshot_round_trip(tmp_path: Path) -> None:
    snap = snapshot(tmp_path, "graphs/logreg.yaml", "--inputs", "x=2,y=3")
    r = cg("check", "graphs/logreg.yaml", "--against", str(snap))  # the saved inputs are the point
    assert r.code == 0, r.out
    assert re.search(r"^  \(snapshot\) .* ok", r.out, re.M)


def test_snapshot_moved_value_names_the_node(tmp_path: Path) -> None:
    snap = snapshot(tmp_path, LOG)
    doc = json.loads(snap.read_text())
    nodes = {n["id"]: n for n in doc["nodes"]}
    nodes["d"]["value"] = 31.0
    nodes["c"]["grad"] = 0.2
    snap.write_text(json.dumps(doc))
    r = cg("check", LOG, "--against", str(snap))
    text = (ROOT / LOG).read_text()
    assert r.code == 1
    assert f"{LOG}:{position(text, '  d:')}: node 'd': snapshot: value is 30 (snapshot 31, off by 1) [CG402]" in r.out
    c = f"{LOG}:{position(text, '  c:')}: node 'c': snapshot: gradient is 0.119048 (snapshot 0.2, off by 0.081)"
    assert c + " [CG402]" in r.out
    assert r.out.count("[CG402]") == 2


def test_snapshot_missing_and_extra_nodes(tmp_path: Path) -> None:
    snap = snapshot(tmp_path, LOG)
    doc = json.loads(snap.read_text())
    doc["nodes"] = [n for n in doc["nodes"] if n["id"] != "e"] + [dict(doc["nodes"][0], id="old")]
    snap.write_text(json.dumps(doc))
    r = cg("check", LOG, "--against", str(snap))
    assert r.code == 1
    where = position((ROOT / LOG).read_text(), "  e:")
    assert f"{LOG}:{where}: node 'e': not in the snapshot [CG402]" in r.out
    assert f"{LOG}: snapshot: 'old' is in the snapshot but not in the graph [CG402]" in r.out
    assert re.search(r"^  \(snapshot\) .* FAIL", r.out, re.M)  # the row says what the diagnostics say


EXPR_GRAPH = "cg: 1\ninputs: {x: 2.0, y: 3.0}\nnodes:\n  s: {expr: 'log(3*x**2 + 5*x*y)'}\n  t: {op: sin, in: [s]}\n" \
    "outputs: [t]\n"


@pytest.mark.parametrize("graph", ["graphs/mlp.yaml", "graphs/multiclass_loss.yaml", "expr"])
@pytest.mark.parametrize("expand", [False, True])
def test_snapshot_of_composites_compares_cleanly(tmp_path: Path, graph: str, expand: bool) -> None:
    # `cg run -f json` folds calls and expression nodes into one row; --expand shows the inner nodes.
    if graph == "expr":
        graph = str(tmp_path / "e.yaml")
        Path(graph).write_text(EXPR_GRAPH, encoding="utf-8")
    snap = snapshot(tmp_path, graph, *(["--expand"] if expand else []))
    r = cg("check", graph, "--against", str(snap))
    assert r.code == 0, r.out
    assert "[CG402]" not in r.out and re.search(r"^  \(snapshot\) .* ok", r.out, re.M)


def test_snapshot_usage_and_content_errors(tmp_path: Path) -> None:
    # A file that cannot be read is a usage error (2); one whose contents are not a snapshot fails (1).
    snap = snapshot(tmp_path, LOG)
    assert cg("check", LOG, "graphs/sincos.yaml", "--against", str(snap)).code == 2  # one file only
    assert cg("check", LOG, "--against", str(tmp_path / "none.json")).code == 2
    bad = tmp_path / "bad.json"
    bad.write_text('{"nodes": [{"id": "x"}]}')
    r = cg("check", LOG, "--against", str(bad))
    assert r.code == 1 and f"{bad}:1:12: missing required key 'value' [CG100]" in r.err
    fwd = tmp_path / "fwd.json"
    assert cg("run", LOG, "--wrt", "x", "-f", "json", "-o", str(fwd)).code == 0
    r = cg("check", LOG, "--against", str(fwd))
    assert r.code == 1 and "a forward-mode result" in r.err and "[CG402]" in r.err


def test_read_snapshot_accepts_nonfinite_strings() -> None:
    text = '{"of": "s", "nodes": [{"id": "x", "op": "input", "value": [-1.0, "NaN"], "grad": ["Infinity", 0]}]}'
    snap = parse_snapshot(text, "t")
    value, grad = snap.values["x"], snap.grads["x"]
    assert np.isnan(value[1]) and grad is not None and grad[0] == np.inf
    with pytest.raises(SnapshotError):
        parse_snapshot("[1, 2]", "t")
