"""Exports of a run (CSV, Markdown, LaTeX, HTML), `cg report`, the notebook display, and no
colour or box characters where there is no terminal."""

from __future__ import annotations

import contextlib
import csv
import html
import importlib.util
import io
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import ROOT, cg

import cg as cglib
from cg.render.export import md_code, md_text, tex_text, to_csv, to_html_table, to_latex, to_markdown
from cg.render.table import rows

GRAPHS = sorted((ROOT / "graphs").glob("*.yaml"))
HAVE_DRAW = importlib.util.find_spec("cg.render.draw") is not None
NASTY_DOC = r"x & y | 50% of $5 #1 {a} ~ ^ \ *b* _c_ `d` <i>e</i> [l](http://x) 1. 2 - 3"
# A name and ids with every kind of special character the formats allow.
NASTY = f"""cg: 1
name: "a_b|x&y *c*"
doc: {json.dumps(NASTY_DOC)}
inputs: {{a_b: 2.0, x__y: {{value: 3.0, doc: "the | doc & more"}}}}
nodes: {{_t_: {{op: mul, in: [a_b, x__y]}}, s_1: {{op: add, in: [_t_, -1.5]}}}}
outputs: [s_1]
"""


def _args(graph: Path) -> list[str]:
    return [str(graph), *(["--inputs", "x=2,y=3"] if graph.name == "logreg.yaml" else [])]


def _flat(v: Any) -> list[Any]:
    return [e for sub in v for e in _flat(sub)] if isinstance(v, list) else [v]


def _number(cell: str, like: Any) -> Any:
    """A CSV cell read as the JSON output writes the same number."""
    if isinstance(like, str):  # JSON's "NaN", "Infinity", "-Infinity"
        return {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[cell]
    return int(cell) if isinstance(like, int) else float(cell)


# ---- CSV ------------------------------------------------------------------------------


@pytest.mark.parametrize("graph", GRAPHS, ids=lambda p: p.name)
def test_csv_numbers_equal_the_json_exactly(graph: Path) -> None:
    table = list(csv.reader(io.StringIO(cg("run", *_args(graph), "-f", "csv").out)))
    nodes = cg("run", *_args(graph), "-f", "json").json()["nodes"]
    assert table[0] == ["id", "op", "inputs", "shape", "index", "value", "grad"]
    body = table[1:]
    assert [r[0] for r in body] == [n["id"] for n in nodes for _ in _flat(n["value"])]  # topological, C order
    for n in nodes:
        mine = [r for r in body if r[0] == n["id"]]
        assert {r[3] for r in mine} == {str(n["shape"])}
        assert [r[4] for r in mine] == [str(list(i)) if i else "" for i in np.ndindex(*n["shape"])]
        assert [_number(r[5], v) for r, v in zip(mine, _flat(n["value"]))] == _flat(n["value"])
        if n["grad"] is None:
            assert {r[6] for r in mine} == {""}
        else:
            assert [_number(r[6], v) for r, v in zip(mine, _flat(n["grad"]))] == _flat(n["grad"])


def test_csv_ints_nonfinite_and_quoting() -> None:
    text = "cg: 1\ninputs: {x: [0.0, 1.0], k: {dtype: int, value: 1}}\n" \
           "nodes: {l: {op: log, in: [x]}, m: {op: mul, in: [0, l]}, s: {op: sum, in: [l]}, " \
           "p: {op: index, in: [l, k]}}\noutputs: [s]"
    r = cg("run", "-", "--nonfinite", "keep", "-f", "csv", stdin=text)
    assert r.code == 0 and "\r" not in r.out
    body = {(row[0], row[4]): row for row in csv.reader(io.StringIO(r.out))}
    assert body[("l", "[0]")][5] == "-inf" and body[("x", "[0]")][6] == "inf"  # log 0, and 1/0
    assert body[("m", "[0]")][5] == "nan"  # 0 * -inf
    assert body[("k", "")][5:] == ["1", ""]  # an int value, with no gradient
    assert body[("m", "[0]")][2] == "0.0, l"  # the cell holds a comma: csv quotes it
    assert '"0.0, l"' in r.out and math.isinf(float(body[("l", "[0]")][5]))


def test_csv_empty_tensor_keeps_its_row() -> None:
    text = "cg: 1\ninputs: {x: {shape: [0]}}\nnodes: {s: {op: sum, in: [x]}}\noutputs: [s]"
    out = cg("run", "-", "--inputs", "x=[]", "-f", "csv", stdin=text).out
    assert list(csv.reader(io.StringIO(out)))[1:] == [["x", "input", "", "[0]", "", "", ""],
                                                      ["s", "sum", "x", "[]", "", "0.0", "1.0"]]


def test_csv_forward_mode_exports_the_tangent() -> None:
    out = cg("run", "graphs/square3x.yaml", "--inputs", "x=4", "--wrt", "x", "-f", "csv").out
    table = list(csv.reader(io.StringIO(out)))
    assert table[0][-1] == "tangent" and table[-1] == ["f", "square", "g", "[]", "", "144.0", "72.0"]


def test_csv_full_precision_is_repr_exact() -> None:
    r = cglib.run(cglib.loads("cg: 1\ninputs: {x: 0.1}\nnodes: {y: {op: mul, in: [x, 3]}}\noutputs: [y]"))
    row = list(csv.reader(io.StringIO(to_csv(r))))[-1]
    assert row[5] == repr(0.1 * 3) == "0.30000000000000004" and row[2] == "x, 3.0"


# ---- JSON, Markdown, LaTeX ---------------------------------------------------------------


def test_json_round_trips() -> None:
    r = cg("run", "graphs/log3x2p5xy.yaml", "--inputs", "x=2,y=3", "-f", "json")
    assert json.loads(r.out)["nodes"][0]["grad"] == 0.6428571428571428


def _md_cells(line: str) -> list[str]:
    """The cells of a Markdown table row: split on `|` that is not escaped."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def test_markdown_table_structure_and_precision() -> None:
    r = cg("run", "graphs/log3x2p5xy.yaml", "--inputs", "x=2,y=3", "-f", "markdown", "-p", "2")
    lines = r.out.splitlines()
    assert len(lines) == 2 + 8 and all(len(_md_cells(line)) == 6 for line in lines)
    assert _md_cells(lines[1]) == ["---", "---", "---", "---", "---:", "---:"]
    assert _md_cells(lines[2]) == ["`x`", "input", "", "[]", "2.00", "0.64"]


def _markdown_it() -> Any:
    markdown_it = pytest.importorskip("markdown_it", reason="markdown-it-py (a dependency of rich) renders Markdown")
    return markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"])


def _text_of(rendered: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", rendered))


def test_markdown_renders_to_the_same_cells_and_escapes_user_text() -> None:
    result = cglib.run(cglib.loads(NASTY))
    rendered = _markdown_it().render(to_markdown(result))
    cells = [_text_of(c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", rendered)]
    expected = [c for row in [("id", "op", "in", "shape", "value", "grad"), *rows(result)] for c in row]
    assert cells == expected
    assert "<em>" not in rendered and "<code>_t_</code>" in rendered
    # Any text: a paragraph shows exactly what was written, never markup.
    assert _markdown_it().render(md_code("a`b``c")) == "<p><code>a`b``c</code></p>\n"
    for text in (NASTY_DOC, "- a list?", "1. ordered?", "# heading?", "> quote?", "===", "a | b", "[x]: /y"):
        assert _text_of(_markdown_it().render(md_text(text))).strip() == text, text


def _tex_cells(line: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)&", line.removesuffix("\\\\").strip())]


def test_latex_structure_and_escaping() -> None:
    r = cg("run", "graphs/log3x2p5xy.yaml", "--inputs", "x=2,y=3", "-f", "latex")
    lines = r.out.splitlines()
    body = [line for line in lines if line.endswith("\\\\")]
    assert lines[1] == "\\begin{tabular}{llllrr}" and lines[-1] == "\\end{tabular}"
    assert len(body) == 1 + 8 and all(len(_tex_cells(line)) == 6 for line in body)
    assert _tex_cells(body[1]) == ["\\texttt{x}", "input", "", "[]", "2.0000", "0.6429"]
    tex = to_latex(cglib.run(cglib.loads(NASTY)))
    assert "\\texttt{a\\_b}" in tex and "\\texttt{\\_t\\_}" in tex and "$-$1.5" in tex
    assert "\n" not in tex.splitlines()[0] and tex.count("{") == tex.count("}")
    # Every special character comes out as a command or an escaped character, never bare.
    escaped = tex_text("& % $ # _ { } ~ ^ \\ < > |")
    assert re.sub(r"\\[a-z]+\{\}|\\[&%$#_{}]", "", escaped).strip() == ""


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed (TeX is not installed here)")
def test_latex_compiles_in_a_bare_article(tmp_path: Path) -> None:
    for name, text in (("log", cg("run", "graphs/multiclass_logreg.yaml", "-f", "latex").out),
                       ("nasty", to_latex(cglib.run(cglib.loads(NASTY))))):
        doc = tmp_path / f"{name}.tex"
        doc.write_text(f"\\documentclass{{article}}\n\\begin{{document}}\n{text}\\end{{document}}\n")
        proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout[-2000:]


def test_exports_are_usage_errors_with_edges() -> None:
    r = cg("run", "graphs/log3x2p5xy.yaml", "-f", "csv", "--edges")
    assert r.code == 2 and "--edges" in r.err and r.out == ""


def test_output_file(tmp_path: Path) -> None:
    target = tmp_path / "t.md"
    r = cg("run", "graphs/log3x2p5xy.yaml", "-f", "markdown", "-o", str(target))
    assert r.code == 0 and r.out == "" and target.read_text().startswith("| id | op |")


# ---- cg report ------------------------------------------------------------------------


def test_report_has_title_doc_inputs_picture_table_and_command(tmp_path: Path) -> None:
    r = cg("report", "graphs/log3x2p5xy.yaml", "--inputs", "x=2,y=3")
    assert r.code == 0 and r.out.startswith("# log3x2p5xy\n\nz = log(3x^2 + 5xy)\n")
    assert "| `x` | 2.0000 | command line |" in r.out
    assert "| `z` | log | e | [] | 3.7377 | 1.0000 |" in r.out
    assert "```sh\ncg report graphs/log3x2p5xy.yaml --inputs x=2,y=3\n```" in r.out
    if HAVE_DRAW:
        assert re.search(r"```mermaid\n(---\n.*\n---\n)?(flowchart|graph) LR\n", r.out)
    target = tmp_path / "report.md"
    r2 = cg("report", "graphs/log3x2p5xy.yaml", "--inputs", "x=2,y=3", "-o", str(target))
    assert r2.code == 0 and r2.out == ""
    command = re.search(r"```sh\n(.*)\n```", target.read_text()).group(1)  # type: ignore[union-attr]
    assert command.endswith(" -o report.md")  # never the absolute path of the machine that wrote it
    assert str(tmp_path) not in target.read_text()
    inside = ROOT / "build" / "report-test.md"  # under the current folder: the path relative to it
    inside.parent.mkdir(exist_ok=True)
    try:
        assert cg("report", "graphs/log3x2p5xy.yaml", "--inputs", "x=2,y=3", "-o", str(inside)).code == 0
        assert "-o build/report-test.md\n" in inside.read_text()
    finally:
        inside.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            inside.parent.rmdir()
    # The command in the report makes the same report again.
    again = cg(*shlex.split(command)[1:-2])
    assert again.out == r.out


@pytest.mark.skipif(not HAVE_DRAW, reason="cg.render.draw (the Mermaid picture) is not written yet")
def test_report_mermaid_block_is_a_fenced_picture() -> None:
    out = cg("report", "graphs/staged.yaml").out
    block = re.search(r"```mermaid\n(.*?)\n```\n", out, re.S)
    assert block is not None and "-->" in block.group(1)


def test_report_escapes_a_nasty_name_and_doc() -> None:
    r = cg("report", "-", stdin=NASTY)
    assert r.code == 0
    rendered = _markdown_it().render(r.out)
    assert _text_of(re.search(r"<h1>(.*)</h1>", rendered).group(1)) == "a_b|x&y *c*"  # type: ignore[union-attr]
    assert f"<p>{html.escape(NASTY_DOC, quote=False)}</p>" in rendered.replace("&quot;", '"')
    assert "<td>the | doc &amp; more</td>" in rendered


def test_report_usage_errors() -> None:
    assert cg("report", "graphs/logreg.yaml").code == 2  # x and y have no value
    assert cg("report", "nope.yaml").code == 2


# ---- the notebook ---------------------------------------------------------------------


def test_repr_html_shows_the_table_and_a_picture() -> None:
    result = cglib.run(cglib.loads(NASTY))
    page = result._repr_html_()
    assert page is not None and "<table" in page and "<td" in page
    assert "<style" not in page and "<html" not in page  # a fragment: it must not restyle the notebook
    assert html.escape("a_b") in page and "&lt;" not in to_html_table(result)
    if HAVE_DRAW:
        assert "<svg" in page
        assert (result._repr_svg_() or "<svg").startswith("<svg")


def test_repr_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    result = cglib.run(cglib.loads(NASTY))
    monkeypatch.setitem(sys.modules, "cg.render.draw", None)  # as if cg.render.draw were missing
    import cg.render

    monkeypatch.delattr(cg.render, "draw", raising=False)
    page = result._repr_html_()
    assert page is not None and page.startswith("<table") and result._repr_svg_() is None
    monkeypatch.setattr("cg.render.export.to_html_table", lambda *a: 1 / 0)
    assert result._repr_html_() is None  # Jupyter then shows the plain repr


# ---- no colour and no boxes without a terminal -------------------------------------------

ESCAPE_OR_BOX = re.compile("[\x1b\u2500-\u259f]")  # escape codes; box drawing and block elements


@pytest.mark.parametrize("no_color", [True, False], ids=["NO_COLOR", "piped"])
@pytest.mark.parametrize("args", [
    ("run", "graphs/multiclass_logreg.yaml"),
    ("run", "graphs/log3x2p5xy.yaml", "--edges"),
    ("run", "graphs/log3x2p5xy.yaml", "--inputs", "x=-2"),
    ("validate", "graphs/", "tests/bad/cycle2.yaml", "tests/bad/multi_errors.yaml"),
    ("report", "graphs/log3x2p5xy.yaml"),
], ids=["run", "edges", "run-error", "validate", "report"])
def test_no_escape_codes_or_box_characters_when_piped(args: tuple[str, ...], no_color: bool) -> None:
    """Output captured, not a terminal (in-process: tests/conftest.py; one real pipe below)."""
    env: dict[str, str | None] = {"NO_COLOR": None, "FORCE_COLOR": None, "CLICOLOR_FORCE": None}
    env |= {"NO_COLOR": "1"} if no_color else {"TERM": "xterm-256color", "COLORTERM": "truecolor"}
    r = cg(*args, env=env)
    assert r.out + r.err and "Traceback" not in r.out + r.err
    assert not ESCAPE_OR_BOX.search(r.out + r.err), (r.out + r.err)[:500]


def test_no_escape_codes_or_box_characters_in_a_real_pipe() -> None:
    """The same through a real process's pipes, on a terminal type that asks for colour."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "CLICOLOR_FORCE")}
    env |= {"TERM": "xterm-256color", "COLORTERM": "truecolor"}
    for args in (("validate", "graphs/", "tests/bad/cycle2.yaml", "tests/bad/multi_errors.yaml"),
                 ("run", "graphs/log3x2p5xy.yaml", "--edges")):
        proc = subprocess.run([sys.executable, "-m", "cg", *args], capture_output=True, text=True, cwd=ROOT,
                              env=env, timeout=120)
        assert proc.stdout + proc.stderr and "Traceback" not in proc.stdout + proc.stderr
        assert not ESCAPE_OR_BOX.search(proc.stdout + proc.stderr), (proc.stdout + proc.stderr)[:500]


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_no_color_on_a_terminal_has_no_colour_codes() -> None:
    import pty

    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "CLICOLOR_FORCE")}
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "cg", "validate", "graphs/", "tests/bad/cycle2.yaml"],
                            stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, cwd=ROOT,
                            env=env | {"NO_COLOR": "1", "TERM": "xterm-256color"})
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closes when the program exits
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    proc.wait(timeout=120)
    text = out.decode()
    assert "error" in text and "ok" in text
    # Bold and dim are allowed (NO_COLOR is about colour); colours are SGR 30-49 and 90-107.
    params = [int(p) for seq in re.findall(r"\x1b\[([0-9;]*)m", text) for p in seq.split(";") if p]
    assert not [p for p in params if 30 <= p <= 49 or 90 <= p <= 107], text[:500]
