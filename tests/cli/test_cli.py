"""The CLI as a user meets it: options, output formats, files, usage errors and exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, cg
from jsonschema import Draft202012Validator

from cg.schema import graph_schema, result_schema  # the documented path (the package face)


def test_help_version_and_exit_codes_documented() -> None:
    r = cg("--help")
    assert r.code == 0 and "Exit codes: 0 ok, 1 invalid graph or failed run, 2 usage error" in r.out
    assert cg("--version").out.startswith("cg, version")
    assert "Exit codes" in cg("run", "--help").out


def test_committed_schemas_are_the_generated_ones() -> None:
    assert json.loads((ROOT / "schema/graph.schema.json").read_text()) == graph_schema()
    assert json.loads((ROOT / "schema/result.schema.json").read_text()) == result_schema()
    Draft202012Validator.check_schema(graph_schema())
    Draft202012Validator.check_schema(result_schema())
    assert json.loads(cg("schema").out) == graph_schema()


def test_every_schema_property_has_a_description() -> None:
    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                if isinstance(sub, dict) and sub:
                    assert "description" in sub or "$ref" in sub, f"{path}.{name}"
            for key, sub in node.items():
                if key != "if":  # the op selector of a per-op rule is not shown to users
                    walk(sub, f"{path}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{path}[{i}]")

    walk(graph_schema(), "")


@pytest.mark.parametrize("graph", sorted((ROOT / "graphs").glob("*.yaml")), ids=lambda p: p.name)
def test_json_output_matches_result_schema_and_modeline(graph: Path) -> None:
    assert graph.read_text().startswith("# yaml-language-server: $schema=../schema/graph.schema.json")
    extra = ["--inputs", "x=2,y=3"] if graph.name == "logreg.yaml" else []
    out = cg("run", str(graph), *extra, "--format", "json").json()
    Draft202012Validator(result_schema()).validate(out)


def test_nan_is_valid_json_and_listed() -> None:
    text = "cg: 1\ninputs: {x: [-1.0, 1.0]}\nnodes: {l: {op: log, in: [x]}, s: {op: sum, in: [l]}}\noutputs: [s]"
    r = cg("run", "-", "--nonfinite", "keep", "-f", "json", stdin=text)
    assert r.code == 0 and "warning: not finite" in r.err
    out = json.loads(r.out, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    nodes = {n["id"]: n for n in out["nodes"]}
    assert nodes["l"]["value"] == ["NaN", 0.0] and out["nonfinite"] == ["l", "s"]
    Draft202012Validator(result_schema()).validate(out)


def test_nonfinite_error_names_file_line_node() -> None:
    r = cg("run", "graphs/log3x2p5xy.yaml", "--inputs", "x=-2,y=3")
    assert r.code == 1 and r.out == ""
    assert r.err.startswith("graphs/log3x2p5xy.yaml:16:3: node 'z': log(e): produced a non-finite value")


def test_output_file_written_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    r = cg("run", "graphs/log3x2p5xy.yaml", "-f", "json", "-o", str(target))
    assert r.code == 0 and r.out == "" and json.loads(target.read_text())["of"] == "z"
    bad = tmp_path / "bad.json"
    r = cg("run", "graphs/log3x2p5xy.yaml", "--inputs", "x=-2", "-f", "json", "-o", str(bad))
    assert r.code == 1 and not bad.exists() and list(tmp_path.iterdir()) == [target]


def test_table_is_plain_when_piped_and_never_cut() -> None:
    r = cg("run", "graphs/multiclass_logreg.yaml")
    assert r.code == 0 and "\x1b[" not in r.out and "…" not in r.out and "│" not in r.out
    assert max(len(line) for line in r.out.splitlines()) > 80  # not wrapped at 80 columns


def test_markup_in_user_text_is_not_interpreted() -> None:
    import io

    from rich.console import Console

    import cg as cglib
    from cg.render.table import rich_table

    g = cglib.loads("cg: 1\nname: '[red]x[/x]'\ninputs: {x: 1.0}\nnodes: {y: {op: exp, in: [x]}}\noutputs: [y]")
    out = io.StringIO()
    Console(file=out, force_terminal=True, width=200).print(rich_table(cglib.run(g)))
    assert "[red]x[/x]" in out.getvalue()


def test_precision_option() -> None:
    rows = cg("run", "graphs/log3x2p5xy.yaml", "-p", "8").table()
    assert rows["x"]["grad"] == f"{27 / 42:.8f}"


def test_seed_and_of(tmp_path: Path) -> None:
    g = tmp_path / "v.yaml"
    g.write_text("cg: 1\ninputs: {v: [1.0, 2.0]}\nnodes: {s: {op: square, in: [v]}, t: {op: sum, in: [s]}}\n"
                 "outputs: [s, t]\n")
    r = cg("run", str(g))
    assert r.code == 2 and "not a scalar" in r.err and "--seed" in r.err
    out = {n["id"]: n for n in cg("run", str(g), "--seed", "[1,0]", "-f", "json").json()["nodes"]}
    assert out["v"]["grad"] == [2.0, 0.0]
    out = {n["id"]: n for n in cg("run", str(g), "--of", "t", "-f", "json").json()["nodes"]}
    assert out["v"]["grad"] == [2.0, 4.0]


def test_inputs_from_files(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.array(2.0))
    (tmp_path / "y.json").write_text("3")
    rows = cg("run", "graphs/log3x2p5xy.yaml", "--inputs", f"x=@{tmp_path / 'x.npy'},y=@{tmp_path / 'y.json'}").table()
    assert rows["x"]["grad"] == "0.6429"


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ("x=", "--inputs: expected name=value, got 'x=' (missing value)"),
        ("x=abc", "got 'abc'"),
        ("x=1,,y=2", "empty"),
        ("q=1", "unknown input 'q'"),
        ("X=1", "did you mean 'x'"),
        ("x=[1,2", "bracket"),
        ("x=1e999", "input 'x'"),
        ("x=[[1,2],[3]]", "input 'x'"),
    ],
)
def test_bad_inputs_are_usage_errors(inputs: str, message: str) -> None:
    r = cg("run", "graphs/log3x2p5xy.yaml", "--inputs", inputs)
    assert r.code == 2 and r.out == "" and message in r.err


def test_missing_input_says_how_to_give_it() -> None:
    r = cg("run", "graphs/logreg.yaml")
    assert r.code == 2 and "--inputs x=1,y=1" in r.err


def test_usage_errors() -> None:
    assert cg("run", "nope.yaml").code == 2
    assert cg("run", "graphs/log3x2p5xy.yaml", "--format", "xml").code == 2
    assert cg("validate").code == 2
    assert cg("run", "graphs/log3x2p5xy.yaml", "--of", "nope").code == 2


def test_ops_lists_the_registry() -> None:
    from cg.ops import REGISTRY

    out = cg("ops").out
    assert all(name in out for name in REGISTRY)


def test_python_m_cg_and_console_script_agree() -> None:
    import shutil
    import subprocess

    exe = shutil.which("cg") or str(Path(__import__("sys").executable).parent / "cg")
    if not Path(exe).exists():
        pytest.skip("console script not installed")
    out = subprocess.run([exe, "run", "graphs/log3x2p5xy.yaml"], capture_output=True, text=True, cwd=ROOT).stdout
    assert out == cg("run", "graphs/log3x2p5xy.yaml").out


def test_every_diagnostic_code_is_documented_in_the_readme() -> None:
    import re

    used = {m for p in (ROOT / "cg").rglob("*.py") for m in re.findall(r'"(CG\d{3})"', p.read_text())}
    from cg.codes import name_of

    rows = re.findall(r"^\| (CG\d{3}) \| ([a-z-]+) \|", (ROOT / "README.md").read_text(), re.M)
    assert used == {code for code, _ in rows}
    assert all(name == name_of(code) for code, name in rows)  # the README shows each code's stable name


def test_validate_a_folder_without_graphs_is_a_usage_error(tmp_path: Path) -> None:
    r = cg("validate", str(tmp_path))
    assert r.code == 2 and "no *.yaml or *.yml files" in r.err


def test_run_edges_shows_both_streams_from_x_and_their_sum() -> None:
    r = cg("run", "graphs/log3x2p5xy.yaml", "--inputs", "x=2,y=3", "--edges")
    assert r.code == 0 and "x: 0.2857 + 0.3571 = 0.6429" in r.out
    out = cg("run", "graphs/log3x2p5xy.yaml", "--edges", "-f", "json").json()
    Draft202012Validator(result_schema()).validate(out)
    from_x = [e for e in out["edges"] if e["from"] == "x"]
    assert [e["to"] for e in from_x] == ["a", "c"] and sum(e["flow"] for e in from_x) == pytest.approx(27 / 42)


def test_output_files_get_the_usual_mode(tmp_path: Path) -> None:
    """-o writes through a temporary file (no partial output), which must not leave it 0600."""
    out = tmp_path / "r.json"
    assert cg("run", "graphs/log3x2p5xy.yaml", "--inputs", "x=2,y=3", "--format", "json", "-o", str(out)).code == 0
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_run_in_float32_from_the_command_line() -> None:
    r = cg("run", "graphs/multiclass_loss.yaml", "--dtype", "float32", "-f", "json")
    assert r.code == 0
    nodes = {n["id"]: n for n in r.json()["nodes"]}
    want = {n["id"]: n for n in cg("run", "graphs/multiclass_loss.yaml", "-f", "json").json()["nodes"]}
    w32, w64 = np.array(nodes["W"]["grad"]), np.array(want["W"]["grad"])
    assert not np.array_equal(w32, w64) and np.allclose(w32, w64, rtol=1e-5, atol=1e-6)
    assert np.array_equal(w32, w32.astype(np.float32).astype(np.float64))  # exactly float32 numbers
    assert cg("run", "graphs/multiclass_loss.yaml", "--dtype", "float16").code == 2
