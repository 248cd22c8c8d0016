"""`cg step -f html`: one page that steps through the passes (cg/render/stepper.py), with the
current node and its edges highlighted; checked as text and, where Chromium is installed, in it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import cg

import cg.render.draw as draw

CHROMIUM = next((c for c in ("/usr/bin/chromium", shutil.which("chromium")) if c and os.path.exists(c)), None)


def page(tmp_path: Path) -> tuple[str, list[dict[str, object]]]:
    out = tmp_path / "steps.html"
    r = cg("step", "graphs/log3x2p5xy.yaml", "--inputs", "x=2,y=3", "-f", "html", "-o", str(out))
    assert r.code == 0, r.err
    text = out.read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script type="application/json" id="steps">(.*?)</script>', text, re.S)[1])  # type: ignore[index]
    return text, data


def test_the_page_holds_every_step_and_what_to_highlight(tmp_path: Path) -> None:
    text, data = page(tmp_path)
    assert len(data) == 6 + 6 + 1  # forward, backward, then the inputs' fan-out sums
    step = data[11]  # backward 6 of 6: a = square(x)
    assert step["nodes"] == ["a"] and set(step["edges"]) == {"x->a", "a->b"}  # type: ignore[arg-type]
    assert "dz/dx += dz/da × ∂a/∂x = 0.0714 × 4.0000 = 0.2857" in step["text"]  # type: ignore[operator]
    assert data[12]["nodes"] == ["x", "y"] and set(data[12]["edges"]) == {"x->a", "x->c", "y->c"}  # type: ignore[arg-type]
    assert "0.2857 from a + 0.3571 from c = 0.6429" in data[12]["text"]  # type: ignore[operator]
    assert "script-src 'unsafe-inline'" in text and "default-src 'none'" in text
    assert not re.search(r"(src|href)=\"(https?:)?//", text)  # nothing fetched


def test_the_built_in_picture_is_titled_as_graphviz_titles_its_groups(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    monkeypatch.setattr(draw, "have_dot", lambda: False)  # inline_svg asks it
    text, _ = page(tmp_path)
    assert '<g class="node"><title>a</title>' in text and '<g class="edge"><title>x-&gt;a</title>' in text


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
@pytest.mark.parametrize("dot", [True, False])
def test_stepping_in_a_real_browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dot: bool) -> None:
    if not dot:
        monkeypatch.setattr(draw, "have_dot", lambda: False)  # inline_svg asks it
    elif not shutil.which("dot"):
        pytest.skip("Graphviz is not installed")
    page(tmp_path)
    url = (tmp_path / "steps.html").as_uri() + "#step=12"
    proc = subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
                           "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}",
                           "--dump-dom", url], capture_output=True, text=True, timeout=120)
    dom = proc.stdout
    assert '<span id="where">12 of 13</span>' in dom, proc.stderr[-2000:]
    assert "backward 6 of 6: a = square(x)" in dom
    lit = re.findall(r'<g[^>]*class="[^"]*cg-on[^"]*"[^>]*>\s*<title>([^<]*)</title>', dom)
    assert sorted(lit) == ["a", "a-&gt;b", "x-&gt;a"], lit


@pytest.mark.parametrize("dot", [True, False])
def test_one_picture_per_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dot: bool) -> None:
    if not dot:
        monkeypatch.setattr(draw, "have_dot", lambda: False)  # inline_svg asks it
    elif not shutil.which("dot"):
        pytest.skip("Graphviz is not installed")
    folder = tmp_path / "slides"
    r = cg("step", "graphs/log3x2p5xy.yaml", "--inputs", "x=2,y=3", "-f", "svg", "-o", str(folder))
    assert r.code == 0, r.err
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"step-{k:02d}.svg" for k in range(1, 14)]
    svg = (folder / "step-12.svg").read_text(encoding="utf-8")
    found = re.findall(r'class="(?:node|edge) cg-on"[^>]*>\s*<title>([^<]*)</title>', svg)
    lit = [t.replace("&#45;", "-") for t in found]
    assert sorted(lit) == ["a", "a-&gt;b", "x-&gt;a"], lit
    assert "backward 6 of 6: a = square(x)" in svg and "so dz/dx = 0.6429" in svg  # the caption
    last = (folder / "step-13.svg").read_text(encoding="utf-8")  # the inputs' sums: the inputs and their streams
    lit = [t.replace("&#45;", "-") for t in re.findall(r'class="(?:node|edge) cg-on"[^>]*>\s*<title>([^<]*)</title>',
                                                       last)]
    assert sorted(lit) == ["x", "x-&gt;a", "x-&gt;c", "y", "y-&gt;c"], lit


def test_pictures_need_a_folder(tmp_path: Path) -> None:
    r = cg("step", "graphs/log3x2p5xy.yaml", "-f", "svg")
    assert r.code == 2 and "-o DIR" in r.err
    (tmp_path / "f").write_text("x")
    r = cg("step", "graphs/log3x2p5xy.yaml", "-f", "svg", "-o", str(tmp_path / "f"))
    assert r.code == 2 and "not a folder" in r.err
