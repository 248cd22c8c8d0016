"""Control characters from a graph file never reach a terminal or a document raw: cg.printable,
and every sink of names and docs (diagnostics, tables, exports, pictures, compiled modules)."""

from __future__ import annotations

import io
import json
import re
import subprocess
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from cg.compile import compile_source
from cg.errors import CgError, Diagnostic, Pos
from cg.eval.edges import compute_edges
from cg.eval.interp import Result, run
from cg.graph.builder import build
from cg.parse.yamldoc import load_text
from cg.printable import BIDI, printable, printable_lines, printable_text, shell_word
from cg.render import diagnostics
from cg.render.dot import to_dot, to_mermaid
from cg.render.draw import layered_svg, to_html
from cg.render.export import (
    md_cell,
    md_code,
    md_text,
    notebook_html,
    tex_text,
    to_csv,
    to_html_table,
    to_latex,
    to_markdown,
)
from cg.render.picture import picture
from cg.render.reports import plain_edges, rich_edges
from cg.render.table import plain_table, rich_table, rows, to_json

BIDI_CHARS = "".join(map(chr, BIDI))
# What a terminal or a viewer would act on: C0 (but the line breaks and tabs the formats use),
# DEL, C1 and the bidi controls.
RAW = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{BIDI_CHARS}]")
RAW_ONE_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{BIDI_CHARS}]")

# YAML double-quoted escapes: a window title, a clipboard write, a hidden link, NUL, BEL, CSI, RLO.
EVIL = r"\e]0;pwned\a \e]52;c;ZXZpbA==\a \e]8;;http://x\e\\link\e]8;;\e\\ nul\0 bel\a csi\x9b31m rlo\u202e"
EVIL_TEXT = load_text(f'x: "{EVIL}"\n', "e.yaml").data["x"]
GRAPH = f"""cg: 1
name: "evil {EVIL}"
doc: "first line {EVIL}\\nsecond\\ttab\\r\\nthird {EVIL}\\n\\n    example {EVIL}"
functions:
  twice:
    doc: "fn {EVIL}"
    inputs: [a]
    nodes: {{t: {{op: mul, in: [2, a], doc: "inner {EVIL}"}}}}
    output: t
inputs:
  x: {{value: 2.0, doc: "input {EVIL}"}}
  y: {{value: [1.0, 2.0], doc: "y {EVIL}"}}
nodes:
  a: {{op: square, in: [x], doc: "node {EVIL}"}}
  b: {{op: twice, in: [a], doc: "call {EVIL}"}}
  c: {{op: mul, in: [b, y]}}
  s: {{op: sum, in: [c]}}
outputs: [s]
"""


def _clean(text: str, one_line: bool = False) -> None:
    found = (RAW_ONE_LINE if one_line else RAW).findall(text)
    assert not found, f"raw control characters {sorted(set(found))!r} in {text[:300]!r}"


@pytest.fixture(scope="module")
def result() -> Result:
    graph = build(load_text(GRAPH, "evil.yaml"))
    assert "\x1b]0;pwned\x07" in graph.name and "\u202e" in graph.doc and "\x00" in graph.inputs[0].doc
    return run(graph)


# ---- the function itself -------------------------------------------------------------------------


def test_every_control_character_is_escaped() -> None:
    for code in range(0xA0):
        ch = chr(code)
        shown = printable(f"a{ch}b")
        if code < 0x20 or 0x7F <= code < 0xA0:
            expected = {9: "\\t", 10: "\\n", 13: "\\r"}.get(code, f"\\x{code:02x}")
            assert shown == f"a{expected}b", hex(code)
        else:
            assert shown == f"a{ch}b", hex(code)
        _clean(shown, one_line=True)


def test_bidi_controls_are_escaped() -> None:
    expected = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
    assert sorted(BIDI) == expected
    for code in expected:
        assert printable(chr(code)) == f"\\u{code:04x}"


def test_ordinary_text_is_kept() -> None:
    text = "é θ → ∂ 日本 🙂 naïve \u00a0 quotes '\" back\\slash [x] \u2028"
    assert printable(text) == text
    assert printable_lines(text) == [text]
    assert printable("") == "" and printable_lines("") == [""]


def test_escapes_are_stable() -> None:
    once = printable(EVIL_TEXT)
    assert printable(once) == once and printable_text(once) == once
    assert once.startswith("\\x1b]0;pwned\\x07 \\x1b]52;c;ZXZpbA==\\x07")
    assert "\\x00" in once and "\\x9b31m" in once and "\\u202e" in once


def test_lines_split_at_line_ends_and_keep_tabs() -> None:
    assert printable_lines("a\tb\r\nc\nd\re\x0bf") == ["a\tb", "c", "d\\re\\x0bf"]
    assert printable_text("one\r\ntwo\n\x1b") == "one\ntwo\n\\x1b"


def test_shell_word_gives_the_same_word_back() -> None:
    words = ["plain", "a b", "it's", EVIL_TEXT.replace("\x00", ""), "é\u202e\x9b\\'\t\n"]
    quoted = [shell_word(w) for w in words]
    for q in quoted:
        _clean(q, one_line=True)
    assert quoted[:3] == ["plain", "'a b'", "'it'\"'\"'s'"]
    try:
        out = subprocess.run(["bash", "-c", "printf '%s\\0' " + " ".join(quoted)], capture_output=True,
                             env={"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("no bash")
    assert out.decode("utf-8").split("\0")[:-1] == words


# ---- diagnostics ------------------------------------------------------------------------------------


def _diagnostics() -> list[Diagnostic]:
    bad = f'cg: 1\n"{EVIL}": 1\ninputs: {{x: 1.0}}\nnodes:\n  z: {{op: "sq{EVIL}", in: [x]}}\noutputs: [z]\n'
    with pytest.raises(CgError) as e:
        build(load_text(bad, f"file {EVIL_TEXT.replace(chr(0), '')}.yaml"))
    made = [Diagnostic("CG101", f"message {EVIL_TEXT}", f"f{EVIL_TEXT}.yaml", Pos(1, 2), f"n{EVIL_TEXT}")]
    return [*e.value.diagnostics, *made]


def test_diagnostics_plain_github_and_human() -> None:
    diags = _diagnostics()
    assert any("\x1b" in str(d) for d in diags)
    for d in diags:
        for line in (diagnostics.plain(d), diagnostics.github(d), diagnostics.human(d).plain):
            _clean(line, one_line=True)
        assert diagnostics.plain(d).endswith(f"[{d.code}]")
        assert "%" not in diagnostics.github(d).split("::", 2)[2].replace("%25", "")
    multi = Diagnostic("CG003", "two\r\nlines \x1b[2J", "a\nb.yaml")  # the toolkit's %0D%0A, escapes for the rest
    assert diagnostics.github(multi) == "::error file=a%0Ab.yaml,title=CG003 invalid-yaml::two%0D%0Alines \\x1b[2J"
    for fmt in ("plain", "github"):
        text = diagnostics.lines(diags, fmt)
        _clean(text)
        assert text.count("\n") == len(diags)
    console = Console(file=io.StringIO(), force_terminal=True, width=300)
    for d in diags:
        console.print(diagnostics.human(d))
    assert "]0;pwned" in console.file.getvalue() and "\x1b]" not in console.file.getvalue()  # type: ignore[attr-defined]


def test_diagnostics_json_is_exact_and_has_no_raw_controls() -> None:
    diags = _diagnostics()
    text = diagnostics.to_json(diags)
    _clean(text)
    assert "\\u202e" in text and "\\u009b" in text and "\\u001b" in text
    assert json.loads(text) == [diagnostics.to_dict(d) for d in diags]  # the exact text back
    raw = "\x7f\x85 é\u2067"
    assert json.loads(diagnostics.json_printable(json.dumps(raw, ensure_ascii=False))) == raw


# ---- tables, exports, pictures, modules --------------------------------------------------------------


def test_terminal_and_plain_tables(result: Result) -> None:
    _clean(plain_table(result))
    _clean(plain_table(result, max_rows=2))
    for row in rows(result):
        for cell in row:
            _clean(cell, one_line=True)
    console = Console(file=io.StringIO(), force_terminal=True, width=200, color_system=None)
    console.print(rich_table(result))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    _clean(out)
    assert "evil \\x1b]0;pwned\\x07" in out


def test_json_and_csv(result: Result) -> None:
    text = to_json(result)
    _clean(text)
    assert json.loads(text)["graph"] == result.graph.name  # exact, in JSON's escapes
    _clean(to_csv(result))


def test_markdown_latex_html(result: Result) -> None:
    for text in (to_markdown(result), to_latex(result), to_html_table(result), notebook_html(result)):
        _clean(text)
    doc = md_text(result.graph.doc)
    _clean(doc)
    assert doc.count("\n") == 4 and "second\ttab" in doc  # its lines, its tab
    for one in (md_cell(EVIL_TEXT), md_code(EVIL_TEXT), tex_text(EVIL_TEXT), md_text(EVIL_TEXT)):
        _clean(one, one_line=True)


def test_report(result: Result) -> None:
    from cg.cli.report import markdown_report

    text = markdown_report(result, {"x"}, to_mermaid(result), "cg report evil.yaml", 4)
    _clean(text)
    assert "pwned" in text


@pytest.mark.parametrize("composites", ["node", "cluster"])
def test_pictures(result: Result, composites: str) -> None:
    options: dict[str, Any] = {"composites": composites}
    for text in (to_dot(result, **options), to_mermaid(result, **options), to_html(result, use_dot=False, **options),
                 to_dot(result.graph, **options), layered_svg(picture(result, composites=composites))):
        _clean(text)
        assert "pwned" in text or "<svg" in text


def test_edges(result: Result) -> None:
    edges = compute_edges(result)
    _clean(plain_edges(edges))
    console = Console(file=io.StringIO(), force_terminal=True, width=200, color_system=None)
    console.print(rich_edges(edges))
    _clean(console.file.getvalue())  # type: ignore[attr-defined]


def test_compiled_module(result: Result) -> None:
    source = compile_source(result.graph)
    _clean(source)
    namespace: dict[str, Any] = {}
    exec(compile(source, "evil_module.py", "exec"), namespace)  # valid Python (a NUL would not be)
    _clean(namespace["__doc__"])
    assert "\\x1b]0;pwned\\x07" in namespace["__doc__"]
    assert namespace["backward"](namespace["forward"]()).x == pytest.approx(np.asarray(result.grads["x"]).item())
