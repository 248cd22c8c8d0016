"""`cg draw` and cg.render.draw: pictures of a graph with each edge's value (green) above the gradient
flowing back along it (red), as in the figures of lecture notes 000 and 003.

Tests that need Graphviz's `dot` or chromium skip, with the reason, where they are missing;
the missing-dot behaviour itself is tested by hiding dot from PATH."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import GRAPHS, ROOT
from conftest import cg as cg_cli

import cg
from cg.errors import CgError, UsageError
from cg.eval.interp import Result
from cg.render.dot import run_dot, to_dot, to_mermaid, to_png, to_svg
from cg.render.draw import layered_svg, to_html
from cg.render.picture import GREEN, GREY, RED, picture

DOT = shutil.which("dot")
needs_dot = pytest.mark.skipif(DOT is None, reason="Graphviz `dot` is not installed (Debian package graphviz)")
CHROMIUM = next((c for c in ("/usr/bin/chromium", shutil.which("chromium")) if c and os.path.exists(c)), None)
LOG = GRAPHS / "log3x2p5xy.yaml"
XY = {"x": 2.0, "y": 3.0}
NAMED_ARGS = 8  # a: x; b: a; c: x, y; d: c; e: b, d; z: e (the 3 and the 5 are constants)

NASTY_NAME = 'na"sty <b>&amp; \\N back\\slash'
NASTY_DOC = 'line "one" <i>x</i> & \\\\ \\N {braces} [sq]\nline two `tick` | pipe # hash %% ]]> end\\'
NASTY = f"""cg: 1
name: {json.dumps(NASTY_NAME)}
doc: {json.dumps(NASTY_DOC)}
inputs:
  x: {{value: 3.0, doc: {json.dumps(NASTY_DOC)}}}
  unused: 1.0
nodes:
  end: {{op: mul, in: [x, x], doc: "<br/> \\"node\\""}}
  t: {{op: add, in: [end, 2]}}
  off: {{op: exp, in: [x]}}
outputs: [t, off]
"""


def _log() -> Result:
    return cg.run(cg.load(LOG), XY)


def _nasty(tmp_path: Path) -> Result:
    path = tmp_path / "nasty.yaml"
    path.write_text(NASTY)
    return cg.run(cg.load(path))


# ---- reading DOT back ------------------------------------------------------------------------

_ID = r'"((?:[^"\\]|\\.)*)"'
_EDGE = re.compile(rf"^\s*{_ID} -> {_ID}(?: \[(.*)\])?;$")
_NODE = re.compile(rf"^\s*{_ID} \[(.*)\];$")


def _colour(label: str, colour: str) -> list[str]:
    return re.findall(rf'<FONT COLOR="{colour}">(.*?)</FONT>', label)


def _edges(dot: str) -> list[tuple[str, str, str]]:
    """(src, dst, attributes) of every edge statement."""
    return [(m[1], m[2], m[3] or "") for m in map(_EDGE.match, dot.splitlines()) if m]


def _named_edges(dot: str, result: Result) -> list[tuple[str, str, str]]:
    names = set(result.graph.avals)
    return [e for e in _edges(dot) if e[0] in names and e[1] in names]


# ---- DOT ------------------------------------------------------------------------------------


def test_dot_values_gradients_and_colours_of_the_notes_example() -> None:
    dot = to_dot(_log())
    edges = _named_edges(dot, _log())
    assert len(edges) == NAMED_ARGS
    by_pair = {(s, d): attrs for s, d, attrs in edges}
    # The forward values as cg prints them, in green, on the edges out of a..e.
    for (src, dst), value, grad in [
        (("a", "b"), "4.0000", "0.0714"), (("c", "d"), "6.0000", "0.1190"), (("b", "e"), "12.0000", "0.0238"),
        (("d", "e"), "30.0000", "0.0238"), (("e", "z"), "42.0000", "0.0238"), (("y", "c"), "3.0000", "0.2381"),
    ]:
        assert _colour(by_pair[(src, dst)], GREEN) == [value]
        assert _colour(by_pair[(src, dst)], RED) == [grad]
    # Fan-out: the two streams out of x (they add up to dz/dx = 0.6429).
    assert _colour(by_pair[("x", "a")], RED) == ["0.2857"]
    assert _colour(by_pair[("x", "c")], RED) == ["0.3571"]
    # The value is above the gradient: a row in green, then a row in red.
    assert f'<TR><TD><FONT COLOR="{GREEN}">4.0000</FONT></TD></TR><TR><TD><FONT COLOR="{RED}">0.0714<' in dot
    # z's value leaves the picture on an arrow of its own, carrying the seed gradient 1.
    (out,) = [e for e in _edges(dot) if e[0] == "z"]
    assert _colour(out[2], GREEN) == ["3.7377"] and _colour(out[2], RED) == ["1.0000"]


def test_dot_layout_attributes() -> None:
    dot = to_dot(_log())
    assert "rankdir=LR" in dot and "rankdir=TB" in to_dot(_log(), direction="TB")
    assert re.search(r'\{rank=source; "x"; "y";\}', dot)
    assert re.search(r'\{rank=sink; "z\.out";\}', dot)
    nodes = {m[1]: m[2] for m in map(_NODE.match, dot.splitlines()) if m}
    assert 'shape="ellipse"' in nodes["x"] and 'shape="box"' in nodes["a"]
    assert "<B>a</B>" in nodes["a"] and "square" in nodes["a"]
    assert 'penwidth="2"' in nodes["z"]  # the differentiated output
    assert 'shape="plaintext"' in nodes["b.in0"] and "label=<3>" in nodes["b.in0"]  # constants small
    assert "<B>log3x2p5xy</B>" in dot and "z = log(3x^2 + 5xy)" in dot  # title and doc
    with pytest.raises(UsageError):
        to_dot(_log(), direction="RL")


def test_dot_precision_tensors_and_no_values() -> None:
    assert "4.000000" in to_dot(_log(), precision=6)
    result = cg.run(cg.load(GRAPHS / "multiclass_logreg.yaml"))
    dot = to_dot(result)
    (w,) = [e for e in _edges(dot) if e[0] == "W"]
    assert _colour(w[2], GREEN) == ["[3, 4] min -0.5000, mean 0.5708, max 2.1000"]  # shape and summary
    (y,) = [e for e in _edges(dot) if e[0] == "y"]
    assert _colour(y[2], GREEN) == ["2"] and _colour(y[2], RED) == []  # an int: no gradient
    bare = to_dot(cg.load(LOG))  # a graph without a run
    assert len(_named_edges(bare, _log())) == NAMED_ARGS and "FONT COLOR" not in bare.split("edge [")[1]
    assert to_dot(_log(), values=False) == bare


def test_forward_mode_results_show_tangents_and_local_derivatives_never_gradients() -> None:
    result = cg.run(cg.load(LOG), XY, tangents={"x": 1.0})
    dot = to_dot(result)
    assert "4.0000" in dot and RED not in dot.split("edge [")[1]  # no gradient anywhere: there is no backward pass
    legend = picture(result).legend
    assert [colour for colour, _ in legend] == [GREEN, "#0969da", "#24292f"]  # values, tangents, local derivatives


def test_dot_fan_out_off_path_and_escaping(tmp_path: Path) -> None:
    result = _nasty(tmp_path)
    dot = to_dot(result)
    twice = [e for e in _edges(dot) if (e[0], e[1]) == ("x", "end")]
    assert len(twice) == 2 and all(_colour(e[2], RED) == ["3.0000"] for e in twice)  # mul(x, x)
    (off,) = [e for e in _edges(dot) if (e[0], e[1]) == ("x", "off")]
    assert f'color="{GREY}"' in off[2] and 'style="dashed"' in off[2] and _colour(off[2], RED) == []
    nodes = {m[1]: m[2] for m in map(_NODE.match, dot.splitlines()) if m}
    assert "dashed" in nodes["off"] and "dashed" in nodes["unused"] and "dashed" not in nodes["end"]
    # User text is escaped: no raw < > & " from the file, backslashes doubled for Graphviz.
    title = re.search(r"label=<(<B>.*)>\];", dot)
    assert title is not None
    assert "na&quot;sty &lt;b&gt;&amp;amp; \\\\N back\\\\slash" in title[1]
    assert "<i>" not in dot and "<b>" not in dot and "{braces}" in dot


@needs_dot
def test_dot_text_is_read_by_graphviz_as_written(tmp_path: Path) -> None:
    """Graphviz's own reading of the DOT: the edges, and the exact text of the nasty labels."""
    result = _nasty(tmp_path)
    parsed = json.loads(run_dot(to_dot(result), "json"))
    names = {o["_gvid"]: o["name"] for o in parsed["objects"]}
    pairs = sorted((names[e["tail"]], names[e["head"]]) for e in parsed["edges"])
    assert pairs.count(("x", "end")) == 2 and ("end", "t") in pairs and ("t.in1", "t") in pairs
    svg = ET.fromstring(run_dot(to_dot(result), "svg"))
    texts = [t.text or "" for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert NASTY_NAME in texts
    assert all(line in texts for line in NASTY_DOC.split("\n"))


@needs_dot
def test_svg_and_png_render(tmp_path: Path) -> None:
    svg = to_svg(_log())
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert {"4.0000", "0.0714", "0.2857", "0.3571", "42.0000", "3.7377"} <= texts
    assert any(t.get("fill") == RED for t in root.iter("{http://www.w3.org/2000/svg}text"))
    png = to_png(_log(), direction="TB")
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000


def test_dot_failure_and_timeout_are_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    sleep = shutil.which("sleep") or "/bin/sleep"
    script = f"#!/bin/sh\nif [ \"$1\" = -Tpng ]; then exec {sleep} 5; fi\necho 'Error: bad' >&2\nexit 3\n"
    (fake / "dot").write_text(script)
    (fake / "dot").chmod(0o755)
    monkeypatch.setenv("PATH", str(fake))
    with pytest.raises(CgError, match="dot failed \\(exit 3\\): Error: bad") as failed:
        run_dot("digraph {}", "svg")
    assert failed.value.exit_code == 1
    with pytest.raises(CgError, match=r"longer than 0\.2 s"):
        run_dot("digraph {}", "png", timeout=0.2)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(UsageError, match="graphviz") as missing:
        run_dot("digraph {}", "svg")
    assert missing.value.exit_code == 2


# ---- Mermaid --------------------------------------------------------------------------------


def test_mermaid_structure() -> None:
    text = to_mermaid(_log())
    lines = text.splitlines()
    assert lines[:4] == ["---", 'title: "log3x2p5xy: z = log(3x^2 + 5xy) (edge labels: value / ∂ = d z / d value)"',
                         "---", "flowchart LR"]
    arrows = [ln for ln in lines if " --> " in ln or "-->|" in ln or " -.-> " in ln]
    assert len(arrows) == len(picture(_log()).arrows) == NAMED_ARGS + 2 + 1  # + the constants, + z's end
    assert '  n0 -->|"2.0000 / ∂ 0.2857"| n2' in lines  # x -> a
    assert '  n0 -->|"2.0000 / ∂ 0.3571"| n4' in lines  # x -> c
    assert '  n6 -->|"42.0000 / ∂ 0.0238"| n7' in lines  # e -> z
    assert sum(ln.startswith("  classDef ") for ln in lines) == 6
    assert "  class n7 cgOf" in lines and "linkStyle 1,5 " in text  # the constants' arrows are grey
    assert "flowchart TB" in to_mermaid(_log(), direction="TB")


def test_mermaid_escaping(tmp_path: Path) -> None:
    text = to_mermaid(_nasty(tmp_path))
    lines = text.splitlines()
    title = json.loads(lines[1].removeprefix("title: "))
    assert "<" not in title and ">" not in title and "&" not in title and "\\N back\\slash" in title
    for line in lines[4:]:  # inside labels: no quote, pipe or angle bracket but our own <br/>
        for label in re.findall(r'"(.*?)"', line):
            assert not re.search(r'["|`]', label) and "<" not in label.replace("<br/>", "")
    assert any(line.startswith('  n2["end<br/>mul<br/>∂ ') for line in lines), lines  # a name Mermaid
    # reserves, safe behind an id; its total gradient on its box
    assert "  class n1,n4 cgOff" in lines


# ---- HTML -----------------------------------------------------------------------------------


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.cells: list[str] = []
        self.h1 = ""
        self._cell = self._h1 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        assert not any(k in ("src", "href") and v and "//" in v for k, v in attrs), attrs  # nothing fetched
        self._cell, self._h1 = tag in ("td", "th"), tag == "h1"

    def handle_endtag(self, tag: str) -> None:
        self._cell = self._h1 = False

    def handle_data(self, data: str) -> None:
        if self._cell:
            self.cells.append(data)
        if self._h1:
            self.h1 += data


def _page(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    return page


@pytest.mark.parametrize("use_dot", [False, pytest.param(True, marks=needs_dot)], ids=["fallback", "dot"])
def test_html_page(use_dot: bool) -> None:
    text = to_html(_log(), use_dot=use_dot)
    page = _page(text)
    assert "svg" in page.tags and "table" in page.tags and "script" not in page.tags
    assert page.tags.count("tr") == 9 and page.h1 == "log3x2p5xy"
    assert page.cells[-6:] == ["z", "log", "e", "[]", "3.7377", "1.0000"]
    assert "default-src 'none'" in text  # the page may fetch nothing
    svg = text[text.index("<svg"):text.index("</svg>") + 6]
    texts = [t.text for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")]
    assert {"4.0000", "0.0714", "0.2857", "0.3571"} <= set(texts)


def test_html_escaping_and_no_values(tmp_path: Path) -> None:
    page = _page(to_html(_nasty(tmp_path), use_dot=False))
    assert page.h1 == NASTY_NAME and "(no path to t)" in " ".join(page.cells)
    bare = _page(to_html(cg.load(LOG), use_dot=False))
    assert bare.cells[:4] == ["id", "op", "in", "shape"] and "0.0714" not in bare.cells


def test_fallback_svg_layout() -> None:
    """Layers by longest path from the inputs: x, y | a, c | b, d | e | z, left to right."""
    svg = ET.fromstring(layered_svg(picture(_log())))
    ns = "{http://www.w3.org/2000/svg}"
    boxes = {t.text: float(t.get("x", 0)) for t in svg.iter(f"{ns}text") if t.get("font-weight") == "bold"}
    assert boxes["x"] == boxes["y"] < boxes["a"] == boxes["c"] < boxes["b"] == boxes["d"] < boxes["e"] < boxes["z"]
    assert len(list(svg.iter(f"{ns}path"))) == NAMED_ARGS + 1 + 1  # + z's end, + the arrow head


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_html_in_a_real_browser(tmp_path: Path) -> None:
    page = tmp_path / "log.html"
    page.write_text(to_html(_log()), encoding="utf-8")
    proc = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    dom = proc.stdout
    assert "<table>" in dom and "<svg" in dom and "0.2857" in dom and "3.7377" in dom, proc.stderr[-2000:]


# ---- the command line -----------------------------------------------------------------------


def _cg(*args: str, path: str | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[bytes]:
    """`cg draw ARGS` (in-process: tests/conftest.py), output captured; `path` replaces PATH (to
    hide or fake dot)."""
    r = cg_cli("draw", *args, env=None if path is None else {"PATH": path}, cwd=cwd)
    proc = subprocess.CompletedProcess(["cg", "draw", *args], r.code, r.out_bytes, r.err.encode())
    assert b"Traceback" not in proc.stdout + proc.stderr, proc.stderr
    return proc


def test_cli_dot_to_stdout_and_formats(tmp_path: Path) -> None:
    proc = _cg(str(LOG), "--inputs", "x=2,y=3")
    assert proc.returncode == 0 and proc.stdout.decode() == to_dot(_log())
    proc = _cg(str(LOG), "-i", "x=2,y=3", "-f", "mermaid", "--direction", "tb", "-p", "2")
    assert proc.returncode == 0 and proc.stdout.decode() == to_mermaid(_log(), direction="TB", precision=2)
    for name in ("out.dot", "out.mmd", "out.html"):
        assert _cg(str(LOG), "-i", "x=2,y=3", "-o", str(tmp_path / name)).returncode == 0
    assert (tmp_path / "out.dot").read_text() == to_dot(_log())
    assert (tmp_path / "out.mmd").read_text().startswith("---\ntitle:")
    assert "<table>" in (tmp_path / "out.html").read_text()
    assert _cg(str(LOG), "--no-values", "-f", "dot").stdout.decode() == to_dot(cg.load(LOG))


@needs_dot
def test_cli_svg_and_png(tmp_path: Path) -> None:
    assert _cg(str(LOG), "-i", "x=2,y=3", "-o", str(tmp_path / "p.svg")).returncode == 0
    ET.parse(tmp_path / "p.svg")
    assert _cg(str(LOG), "-i", "x=2,y=3", "-o", str(tmp_path / "p.png")).returncode == 0
    assert (tmp_path / "p.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    piped = _cg(str(LOG), "-i", "x=2,y=3", "-f", "png")
    assert piped.returncode == 0 and piped.stdout.startswith(b"\x89PNG\r\n\x1a\n")
    assert [p.name for p in tmp_path.iterdir()] and not list(tmp_path.glob(".*.tmp"))


def test_cli_without_dot(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for name in ("out.svg", "out.png"):
        proc = _cg(str(LOG), "-i", "x=2,y=3", "-o", str(tmp_path / name), path=str(empty))
        err = proc.stderr.decode()
        assert proc.returncode == 2 and "[CG320]" in err and "graphviz" in err
        assert ".dot" in err and ".mmd" in err and ".html" in err
        assert not (tmp_path / name).exists()
    proc = _cg(str(LOG), "-i", "x=2,y=3", "-o", str(tmp_path / "out.html"), path=str(empty))
    assert proc.returncode == 0 and "<svg" in (tmp_path / "out.html").read_text()  # the fallback picture
    assert _cg(str(LOG), "-i", "x=2,y=3", path=str(empty)).returncode == 0


def test_cli_no_partial_file_when_dot_fails(tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "dot").write_text("#!/bin/sh\nprintf '<svg partial'\necho 'dot: out of memory' >&2\nexit 1\n")
    (fake / "dot").chmod(0o755)
    for name in ("out.svg", "out.png"):
        proc = _cg(str(LOG), "-i", "x=2,y=3", "-o", str(tmp_path / name), path=str(fake))
        assert proc.returncode == 1 and b"dot failed (exit 1): dot: out of memory [CG321]" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin"]


def test_cli_usage_errors(tmp_path: Path) -> None:
    cases = [
        (["-o", str(tmp_path / "out.txt")], "cannot tell the format"),
        (["-o", str(tmp_path / "out.svg"), "-f", "png"], "does not fit the suffix"),
        (["--no-values", "-i", "x=2"], "--no-values draws the graph alone"),
        (["-i", "q=2"], "unknown input 'q'"),
        (["--direction", "RL"], "Invalid value for '--direction'"),
        (["-o", str(tmp_path / "missing" / "out.dot")], "cannot write"),
    ]
    for args, message in cases:
        proc = _cg(str(LOG), *args)
        assert proc.returncode == 2 and message in proc.stderr.decode(), (args, proc.stderr)
    assert _cg(str(tmp_path / "nope.yaml")).returncode == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    needs_input = GRAPHS / "logreg.yaml"
    proc = _cg(str(needs_input))
    assert proc.returncode == 2 and "--no-values" in proc.stderr.decode() and "[CG302]" in proc.stderr.decode()
    assert _cg(str(needs_input), "--no-values").returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("cg: 1\ninputs: {x: 1.0}\nnodes: {a: {op: ad, in: [x]}}\noutputs: [a]\n")
    proc = _cg(str(bad))
    assert proc.returncode == 1 and "unknown op 'ad'" in proc.stderr.decode()


def test_cli_png_to_a_terminal_is_refused() -> None:
    import pty

    leader, follower = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "cg", "draw", str(LOG), "-f", "png"], stdout=follower,
                              stderr=subprocess.PIPE, cwd=ROOT, timeout=120)
    finally:
        os.close(follower)
        os.close(leader)
    assert proc.returncode == 2 and b"stdout is a terminal" in proc.stderr and b"Traceback" not in proc.stderr


def test_docs_picture_is_the_drawing_of_the_example() -> None:
    """docs/log3x2p5xy.svg is `cg draw graphs/log3x2p5xy.yaml --inputs x=2,y=3 -o docs/log3x2p5xy.svg`."""
    root = ET.parse(ROOT / "docs" / "log3x2p5xy.svg").getroot()
    texts = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert {"4.0000", "12.0000", "6.0000", "30.0000", "42.0000", "0.2857", "0.3571", "3.7377"} <= texts


def test_docs_cluster_picture_is_the_drawing_of_the_mlp() -> None:
    """docs/mlp-clusters.svg is `cg draw graphs/mlp.yaml --composites cluster -o docs/mlp-clusters.svg`."""
    root = ET.parse(ROOT / "docs" / "mlp-clusters.svg").getroot()
    texts = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert {"h: sigmoid_neuron", "h/z: linear", "loss: bce", "0.7491", "-2.1151"} <= texts


def test_docs_gradient_graph_picture_is_the_drawing_of_cg_grad(tmp_path: Path) -> None:
    """docs/log3x2p5xy-grad.svg is `cg grad graphs/log3x2p5xy.yaml -o g.yaml && cg draw g.yaml -o ...`:
    drawn again here, it shows the same texts (Graphviz's coordinates may differ between versions)."""
    root = ET.parse(ROOT / "docs" / "log3x2p5xy-grad.svg").getroot()
    texts = sorted(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert {"forward pass", "backward pass (cg grad)", "dz_x", "da_dx", "0.6429", "0.2381"} <= set(texts)
    if shutil.which("dot") is None:
        return
    assert cg_cli("grad", "graphs/log3x2p5xy.yaml", "-o", str(tmp_path / "g.yaml")).code == 0
    assert cg_cli("draw", str(tmp_path / "g.yaml"), "-o", str(tmp_path / "g.svg")).code == 0
    again = ET.parse(tmp_path / "g.svg").getroot()
    assert sorted(t.text or "" for t in again.iter("{http://www.w3.org/2000/svg}text")) == texts
