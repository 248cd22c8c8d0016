"""cg in other people's CI: the output formats of `cg validate` and `cg check` (plain, json,
github, human), the diagnostics schema and the table of code names, the pre-commit hooks, and
`cg fmt`."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from conftest import GRAPHS, ROOT, cg
from jsonschema import Draft202012Validator

import cg as cglib
from cg.codes import CODES, name_of
from cg.errors import Diagnostic, Pos
from cg.fmt.write import format_text
from cg.render.diagnostics import diagnostics_schema, github

BAD = ROOT / "tests" / "bad"
GOOD = ROOT / "tests" / "good"
EXAMPLES = sorted(GRAPHS.glob("*.yaml"))
SCHEMA = json.loads((ROOT / "schema" / "diagnostics.schema.json").read_text())


def write(folder: Path, text: str, name: str = "g.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# ---- the codes and their names ------------------------------------------------------------------


def test_every_code_used_in_cg_has_one_stable_name() -> None:
    used = {m for p in (ROOT / "cg").rglob("*.py") for m in re.findall(r'"(CG\d{3})"', p.read_text())}
    listed = [c.code for c in CODES]
    assert used <= set(listed), sorted(used - set(listed))
    assert len(listed) == len(set(listed)) and listed == sorted(listed)
    names = [c.name for c in CODES]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-z]+(-[a-z]+)*", n) for n in names)
    assert name_of("CG101") == "unknown-op" and name_of("CG112") == "cycle"


def test_committed_diagnostics_schema_is_the_generated_one() -> None:
    assert diagnostics_schema() == SCHEMA
    Draft202012Validator.check_schema(SCHEMA)
    props = SCHEMA["$defs"]["diagnostic"]["properties"]
    assert set(props) == {"file", "line", "column", "node", "code", "name", "message", "severity"}
    assert all("description" in p for p in props.values())
    r = cg("schema", "--diagnostics")  # what a user can print, byte for byte the committed copy
    assert r.code == 0 and r.out == (ROOT / "schema" / "diagnostics.schema.json").read_text(encoding="utf-8")
    assert cg("schema", "--diagnostics", "--result").code == 2


# ---- cg validate --format -----------------------------------------------------------------------


def test_plain_is_the_default_when_piped_and_the_same_as_asked_for() -> None:
    r = cg("validate", str(BAD / "unknown_op.yaml"))
    assert r.code == 1
    assert r.out == cg("validate", str(BAD / "unknown_op.yaml"), "--format", "plain").out
    assert r.out == f"{BAD / 'unknown_op.yaml'}:5:11: node 'e': unknown op 'ad' (did you mean 'add'?) [CG101]\n"


def test_json_is_a_list_of_diagnostics_that_the_schema_accepts() -> None:
    bad = sorted(BAD.glob("*.yaml"))
    r = cg("validate", *map(str, bad), *map(str, EXAMPLES), "-f", "json")
    assert r.code == 1
    found = r.json()
    Draft202012Validator(SCHEMA).validate(found)
    assert {d["file"] for d in found} == set(map(str, bad))  # every bad file, no good one
    first = next(d for d in found if d["file"].endswith("unknown_op.yaml"))
    assert first == {
        "file": str(BAD / "unknown_op.yaml"), "line": 5, "column": 11, "node": "e", "code": "CG101",
        "name": "unknown-op", "message": "unknown op 'ad' (did you mean 'add'?)", "severity": "error",
    }  # fmt: skip
    assert all(d["name"] == name_of(d["code"]) != "unlisted" for d in found)
    # The same problems as the plain lines, in the same order.
    plain = cg("validate", *map(str, bad)).out.splitlines()
    assert len(plain) == len(found) and all(f"[{d['code']}]" in line for d, line in zip(found, plain))


def test_json_of_valid_files_is_an_empty_list() -> None:
    r = cg("validate", str(GRAPHS), "--format", "json")
    count = len(list(GRAPHS.rglob("*.yaml")))
    assert r.code == 0 and r.json() == [] and f"{count} valid" in r.err


def test_github_annotations_carry_file_line_col_and_title() -> None:
    r = cg("validate", str(BAD / "multi_errors.yaml"), str(GRAPHS / "logreg.yaml"), "-f", "github")
    assert r.code == 1
    lines = r.out.splitlines()
    assert len(lines) == 4 and all(line.startswith("::error file=") for line in lines)
    assert lines[0] == (
        f"::error file={BAD / 'multi_errors.yaml'},line=7,col=11,title=CG101 unknown-op::"
        "node 'a': unknown op 'ad' (did you mean 'add'?)"
    )


def test_github_escapes_properties_and_data_as_the_toolkit_does(tmp_path: Path) -> None:
    d = Diagnostic("CG003", "100% wrong\r\nhere: a, b", "dir,x/a:b%.yaml", Pos(3, 4))
    assert github(d) == (
        "::error file=dir%2Cx/a%3Ab%25.yaml,line=3,col=4,title=CG003 invalid-yaml::100%25 wrong%0D%0Ahere: a, b"
    )
    assert github(Diagnostic("CG300", "bad")) == "::error title=CG300 bad-value::bad"
    odd = write(tmp_path, "cg: 1\nnodes: {n: {op: neg, in: [q]}}\noutputs: [n]\n", "a,b:c%.yaml")
    r = cg("validate", str(odd), "-f", "github")
    assert r.out.startswith(f"::error file={str(odd).replace('%', '%25').replace(',', '%2C').replace(':', '%3A')},")


def test_human_format_lists_ok_files_and_errors() -> None:
    r = cg("validate", str(GRAPHS / "logreg.yaml"), str(BAD / "cycle2.yaml"), "-f", "human")
    assert r.code == 1
    assert f"ok {GRAPHS / 'logreg.yaml'}" in r.out
    assert "error " in r.out and "cycle: a -> b -> a [CG112]" in r.out


def test_human_diagnostics_are_never_wrapped() -> None:
    """A narrow terminal (or CI's 80 columns and a long path) must not break a file:line:col line."""
    r = cg("validate", str(BAD / "cycle2.yaml"), "-f", "human", env={"COLUMNS": "30"})
    assert r.code == 1
    assert r.out == f"error {BAD / 'cycle2.yaml'}:5:3: node 'a': cycle: a -> b -> a [CG112]\n"


def test_format_is_checked_and_usage_errors_stay_exit_2() -> None:
    assert cg("validate", str(GRAPHS), "-f", "xml").code == 2
    r = cg("validate", "no/such.yaml", "-f", "json")
    assert r.code == 2 and r.out == ""


# ---- cg check --format --------------------------------------------------------------------------


def failing(tmp_path: Path) -> Path:
    text = (GRAPHS / "log3x2p5xy.yaml").read_text().replace("z: 3.7377", "z: 3.7")
    return write(tmp_path, text, "wrong.yaml")


def test_check_json_has_every_failure_as_a_diagnostic(tmp_path: Path) -> None:
    wrong, bad = failing(tmp_path), BAD / "unknown_op.yaml"
    r = cg("check", str(wrong), str(bad), str(GRAPHS / "logreg.yaml"), "-f", "json")
    assert r.code == 1
    doc = r.json()
    assert [f["file"] for f in doc["files"]] == [str(wrong), str(bad), str(GRAPHS / "logreg.yaml")]  # the report
    Draft202012Validator(SCHEMA).validate(doc["diagnostics"])
    assert [(d["file"], d["code"], d["name"]) for d in doc["diagnostics"]] == [
        (str(wrong), "CG401", "expect-mismatch"), (str(bad), "CG101", "unknown-op"),
    ]  # fmt: skip
    assert doc["diagnostics"][0]["line"] == 21 and "value of 'z'" in doc["diagnostics"][0]["message"]


def test_check_github_annotates_failures_only(tmp_path: Path) -> None:
    wrong = failing(tmp_path)
    r = cg("check", str(wrong), str(GRAPHS / "logreg.yaml"), "-f", "github")
    assert r.code == 1 and r.err.strip() == "1 passed, 1 failed (2 files)"
    assert r.out.startswith(f"::error file={wrong},line=21,col=")
    assert "title=CG401 expect-mismatch::expect: value of 'z' is 3.73767" in r.out
    assert len(r.out.splitlines()) == 1
    assert cg("check", str(GRAPHS / "logreg.yaml"), "-f", "github").out == ""


def test_check_plain_and_human_keep_the_tables(tmp_path: Path) -> None:
    plain = cg("check", str(GRAPHS / "log3x2p5xy.yaml"), "-f", "plain")
    assert plain.code == 0 and plain.out == cg("check", str(GRAPHS / "log3x2p5xy.yaml")).out
    assert plain.out.startswith(f"{GRAPHS / 'log3x2p5xy.yaml'}: ok\n  name ")
    human = cg("check", str(GRAPHS / "log3x2p5xy.yaml"), "-f", "human")
    assert human.code == 0 and "max abs err" in human.out
    out = tmp_path / "report.txt"
    assert cg("check", str(GRAPHS / "log3x2p5xy.yaml"), "-f", "human", "-o", str(out)).code == 0
    assert out.read_text() == plain.out  # no colour codes in files
    gh = tmp_path / "annotations.txt"
    assert cg("check", str(failing(tmp_path)), "-f", "github", "-o", str(gh)).code == 1
    assert gh.read_text().startswith("::error ")


# ---- pre-commit hooks ---------------------------------------------------------------------------

HOOKS = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())


def test_hooks_are_declared_for_pre_commit() -> None:
    by_id = {h["id"]: h for h in HOOKS}
    assert {"cg-validate", "cg-check"} <= set(by_id)
    assert by_id["cg-validate"]["entry"] == "cg validate" and by_id["cg-check"]["entry"] == "cg check"
    for hook in HOOKS:
        assert hook["language"] == "python" and hook["files"] == r"\.(yaml|yml)$"
        assert {"id", "name", "entry", "language", "files"} <= set(hook)
        assert re.search(hook["files"], "graphs/a.yml") and not re.search(hook["files"], "README.md")


def _readme_blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)


def test_the_readme_snippets_need_no_guessing() -> None:
    """The pre-commit and Actions snippets: real hook ids, a `rev` that is this version's tag
    (v0.1.0; the release tags are v + the version of pyproject.toml), no OWNER-style placeholder,
    and the repository's address explained where it goes."""
    from cg import __version__

    configs = [yaml.safe_load(b) for b in _readme_blocks("yaml") if b.startswith("repos:")]
    assert len(configs) == 2
    ids = {h["id"] for h in HOOKS}
    remote, local = (c["repos"][0] for c in configs)
    assert remote["rev"] == f"v{__version__}" and {h["id"] for h in remote["hooks"]} <= ids
    assert local["repo"] == "local" and local["hooks"][0]["entry"] == "cg validate"
    workflow = next(b for b in _readme_blocks("yaml") if "jobs:" in b)
    assert "${{ vars.CG_URL }}" in workflow and f"@v{__version__}" in workflow
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "OWNER" not in readme and "rev: v1.0.0" not in readme
    assert "repository variable `CG_URL`" in readme


@pytest.mark.parametrize("hook", HOOKS, ids=lambda h: h["id"])
def test_each_hook_command_passes_on_the_example_graphs(hook: dict[str, Any], tmp_path: Path) -> None:
    """Run the hook's entry the way pre-commit does: the entry, then the matching staged files."""
    shutil.copytree(GRAPHS, tmp_path / "graphs")  # a copy: cg fmt rewrites files
    staged = sorted((tmp_path / "graphs").iterdir())
    files = [str(p.relative_to(tmp_path)) for p in staged if re.search(hook["files"], str(p))]
    assert len(files) == len(EXAMPLES)
    argv = shlex.split(hook["entry"])
    assert argv[0] == "cg"
    r = cg(*argv[1:], *files, cwd=tmp_path)
    assert r.code == 0, r.out + r.err
    assert "Traceback" not in r.err


# ---- cg fmt -------------------------------------------------------------------------------------

FORMATTABLE = [*EXAMPLES, *sorted(GOOD.iterdir())]


@pytest.mark.parametrize("path", FORMATTABLE, ids=lambda p: p.name)
def test_fmt_is_idempotent_and_keeps_data_comments_and_values(path: Path) -> None:
    raw = path.read_bytes()
    text = format_text(raw, str(path))
    assert format_text(text, str(path)) == text
    assert comments(text) == comments(raw.decode())
    if "yaml-language-server" in raw.decode().splitlines()[0]:
        assert text.splitlines()[0] == raw.decode().splitlines()[0]  # the modeline stays on top
    before, after = cglib.loads(raw.decode(), str(path)), cglib.loads(text, str(path))
    assert expected(before) == expected(after)
    for a, b in zip(run_all(before), run_all(after)):
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def expected(graph: Any) -> Any:
    e = graph.expect
    if e is None:
        return None
    entries = [(x.name, x.value.tolist()) for x in (*e.values, *e.grads)]
    return entries, {k: v.tolist() for k, v in e.inputs.items()}, e.of, e.tol, e.rtol


def comments(text: str) -> list[str]:
    from cg.fmt.tree import read_tree

    return sorted(read_tree(text).comments)


def run_all(graph: Any) -> list[dict[str, Any]]:
    """Values and gradients at the defaults (and at the expect point), random for inputs with none."""
    rng = np.random.default_rng(0)
    given = {i.name: rng.normal(size=i.aval.shape) for i in graph.inputs if i.default is None}
    names = [i.name for i in graph.inputs] + [n.id for n in graph.nodes]
    r = cglib.run(graph, given, on_nonfinite="keep")
    return [{n: r.value(n) for n in names}, {n: r.grad(n) for n in names if r.grad(n) is not None}]


def test_canonical_form(tmp_path: Path) -> None:
    messy = """\
# yaml-language-server: $schema=../schema/graph.schema.json
# about the graph
outputs:
- s
nodes:
  s:
    keepdims: false
    in: [p]
    op: sum
    axis: 0
  p: {in: [x, 2], doc: 'x times two', op: mul}
inputs: {x: {doc: "the input", value: [1.0, 2.0]}}
name: "messy"
cg: 1
"""
    text = format_text(messy, "messy.yaml")
    assert text == """\
# yaml-language-server: $schema=../schema/graph.schema.json
# about the graph
cg: 1
name: messy
inputs:
  x: {value: [1.0, 2.0], doc: the input}
nodes:
  s: {op: sum, in: [p], axis: 0, keepdims: false}
  p: {op: mul, in: [x, 2], doc: x times two}
outputs: [s]
"""


def test_comments_move_with_their_entries_and_force_block_style() -> None:
    text = """\
name: c   # the name

cg: 1
nodes:
  # the first node
  a:
    op: add   # adds
    in: [x,   # about x
         y]
  b: {op: neg, in: [a]}
inputs:
  x: 1.0
  y: 2.0   # why 2
outputs: [b]   # the result
# the end
"""
    out = format_text(text, "c.yaml")
    assert out == """\
cg: 1
name: c   # the name
inputs:
  x: 1.0
  y: 2.0   # why 2
nodes:
  # the first node
  a:
    op: add   # adds
    in:
      - x     # about x
      - y
  b: {op: neg, in: [a]}
outputs: [b]   # the result
# the end
"""
    assert format_text(out, "c.yaml") == out


def test_long_values_wrap_and_multiline_docs_stay_blocks() -> None:
    values = ", ".join(str(k + 0.5) for k in range(60))
    text = f"cg: 1\ndoc: |\n  line one\n  line two\ninputs:\n  v: [{values}]\nnodes:\n  s: {{op: sum, in: [v]}}\n"
    out = format_text(text + "outputs: [s]\n", "w.yaml")
    assert "doc: |\n  line one\n  line two\n" in out
    assert all(len(line) <= 120 for line in out.splitlines())
    assert cglib.loads(out).input("v").default.tolist() == [k + 0.5 for k in range(60)]  # type: ignore[union-attr]
    assert format_text(out, "w.yaml") == out


def test_strings_that_would_change_meaning_are_quoted() -> None:
    text = 'cg: 1\ndoc: "123"\nname: "null"\nnodes: {n: {op: neg, in: [1], doc: "a: b, [c] #d"}}\noutputs: [n]\n'
    out = format_text(text, "q.yaml")
    assert 'doc: "123"' in out and 'name: "null"' in out and 'doc: "a: b, [c] #d"' in out
    assert cglib.loads(out).name == "null"


def test_the_example_graphs_are_canonical() -> None:
    """What we ship is what `cg fmt` writes: a user who runs it on a copy sees no diff."""
    r = cg("fmt", "--check", str(GRAPHS))
    assert r.code == 0, r.err


def test_fmt_check_lists_files_and_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "graphs"
    shutil.copytree(GRAPHS, folder)
    messy = write(folder, "nodes: {n: {in: [1.0], op: neg}}\ncg: 1\noutputs: [n]\n", "messy.yaml")
    before = {p: p.read_bytes() for p in folder.rglob("*.yaml")}
    r = cg("fmt", "--check", str(folder))
    assert r.code == 1 and f"would reformat {messy}" in r.err
    assert {p: p.read_bytes() for p in folder.rglob("*.yaml")} == before
    assert cg("fmt", str(folder)).code == 0
    assert cg("fmt", "--check", str(folder)).code == 0
    assert cg("validate", str(folder)).code == 0


def test_fmt_writes_atomically_and_keeps_mode_and_symlinks(tmp_path: Path) -> None:
    real = write(tmp_path, "{cg: 1, nodes: {n: {op: neg, in: [2]}}, outputs: [n]}\n", "real.yaml")
    os.chmod(real, 0o640)
    link = tmp_path / "link.yaml"
    link.symlink_to(real)
    r = cg("fmt", str(link))
    assert r.code == 0 and f"reformatted {link}" in r.err
    assert link.is_symlink() and real.read_text().startswith("cg: 1\nnodes:\n")
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.yaml", "real.yaml"]  # no temp file left


def test_fmt_does_not_rewrite_invalid_graphs(tmp_path: Path) -> None:
    bad = write(tmp_path, "nodes: {e: {op: ad, in: [1, 2]}}\ncg: 1\noutputs: [e]\n")
    before = bad.read_bytes()
    r = cg("fmt", str(bad))
    assert r.code == 1 and "unknown op 'ad' (did you mean 'add'?) [CG101]" in r.err
    assert bad.read_bytes() == before


def test_fmt_refuses_a_comment_it_cannot_keep_in_place(tmp_path: Path) -> None:
    text = "cg: 1\ninputs:\n  W: [[1.0,\n    2.0]  # row\n  ]  # matrix\nnodes: {s: {op: sum, in: [W]}}\noutputs: [s]\n"
    path = write(tmp_path, text)
    r = cg("fmt", str(path))
    assert r.code == 1 and f"{path}:5:6: cg fmt cannot keep this comment in its place" in r.err
    assert "[CG500]" in r.err and path.read_text() == text


def test_fmt_stdin_to_stdout() -> None:
    text = "nodes: {n: {in: [1], op: neg}}\ncg: 1\noutputs: [n]\n"
    r = cg("fmt", "-", stdin=text)
    assert r.code == 0 and r.out == "cg: 1\nnodes:\n  n: {op: neg, in: [1]}\noutputs: [n]\n"
    assert cg("fmt", "--check", "-", stdin=text).code == 1
    assert cg("fmt", "--check", "-", stdin=r.out).code == 0
