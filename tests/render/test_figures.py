"""Figures for lectures (cg draw --show, --of, --formulas): each name's total gradient on its box,
the numbers a figure shows, and each edge's formula (cg/render/picture.py View)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import GRAPHS, cg

import cg as cglib
from cg.errors import CgError
from cg.eval.interp import Result
from cg.render.picture import View, picture


def textbook(of: str | None = None) -> Result:
    return cglib.run(cglib.load("graphs/log3x2p5xy.yaml"), {"x": 2.0, "y": 3.0}, of=of)


def test_the_textbook_figure_shows_dz_dx_on_x() -> None:
    """The notes' figure leaves the reader to add x's two streams (0.2857 + 0.3571); cg's box says 0.6429."""
    boxes = {b.key: b for b in picture(textbook()).boxes}
    assert (boxes["x"].grad, boxes["y"].grad, boxes["e"].grad, boxes["z"].grad) == ("0.6429", "0.2381", "0.0238",
                                                                                      "1.0000")
    dot = cg("draw", "graphs/log3x2p5xy.yaml", "--inputs", "x=2,y=3").out
    assert re.search(r'"x" \[label=<<B>x</B>.*COLOR="#cf222e">0\.6429</FONT>>', dot)


@pytest.mark.parametrize(("show", "values", "grads"), [
    ("both", True, True), ("values", True, False), ("grads", False, True), ("none", False, False)])
def test_show_picks_the_numbers(show: str, values: bool, grads: bool) -> None:
    pic = picture(textbook(), view=View(show))
    edges = [a for a in pic.arrows if a.kind == "arg"]
    assert all((a.value is not None) == values for a in edges)
    assert all((a.grad is not None) == grads for a in edges)
    assert all((b.grad is not None) == grads for b in pic.boxes if b.kind in ("input", "node"))
    html = cg("draw", "graphs/log3x2p5xy.yaml", "--inputs", "x=2,y=3", "--show", show, "-f", "html").out
    figure = html[html.index("<figure>"):html.index("</figure>")]
    assert ("42.0000" in figure) == values and ("0.6429" in figure) == grads  # e's value; x's gradient


def test_formulas_on_the_edges() -> None:
    arrows = {(a.src, a.dst): a.formula for a in picture(textbook(), view=View(formulas=True)).arrows}
    assert arrows[("x", "a")] == "2x" and arrows[("x", "c")] == "y" and arrows[("e", "z")] == "1/e"
    blank = cg("draw", "graphs/log3x2p5xy.yaml", "--show", "none", "--formulas", "-f", "mermaid").out
    assert '-->|"∂: 2x"|' in blank and "0.2857" not in blank and "42.0000" not in blank  # an exercise figure


def test_of_picks_the_output_and_no_values_refuses_the_view_options() -> None:
    pic = picture(textbook(of="c"))
    assert pic.of == "c" and {b.key: b.grad for b in pic.boxes}["x"] == "3.0000"  # dc/dx = y
    r = cg("draw", "graphs/log3x2p5xy.yaml", "--no-values", "--show", "none")
    assert r.code == 2 and "need a run" in r.err
    with pytest.raises(CgError):
        View("some")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed (Debian package graphviz)")
def test_a_pdf_for_latex_slides(tmp_path: Path) -> None:
    out = tmp_path / "fig.pdf"
    r = cg("draw", "graphs/log3x2p5xy.yaml", "--inputs", "x=2,y=3", "-o", str(out))
    assert r.code == 0, r.err
    data = out.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")


def test_pdf_needs_graphviz_and_no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # no dot anywhere
    r = cg("draw", "graphs/log3x2p5xy.yaml", "-f", "pdf")
    assert r.code == 2 and "cannot draw pdf" in r.err and "graphviz" in r.err


def test_forward_mode_figures_put_tangents_on_boxes_and_local_derivatives_on_edges() -> None:
    """001's forward mode: forward derivatives on the nodes, local derivatives on the edges."""
    result = cglib.run(cglib.load("graphs/square3x.yaml"), tangents={"x": 1.0})
    pic = picture(result, view=View(formulas=True))
    boxes = {b.key: b for b in pic.boxes}
    assert (boxes["x"].tangent, boxes["g"].tangent, boxes["f"].tangent) == ("1.0000", "3.0000", "72.0000")
    assert all(b.grad is None for b in pic.boxes)  # no backward pass in forward mode
    edges = {(a.src, a.dst): a.formula for a in pic.arrows}
    assert edges[("x", "g")] == "3" and edges[("g", "f")] == "2g = 24.0000"  # df/dg = 24, as the article says
    assert any("blue: d name / d x" in line for _, line in pic.legend)
    dot = cg("draw", "graphs/square3x.yaml", "--wrt", "x").out
    assert 'COLOR="#0969da">72.0000</FONT>' in dot and "∂: 24.0000" in dot
    r = cg("draw", "graphs/square3x.yaml", "--wrt", "x", "--of", "f")
    assert r.code == 2 and "forward mode takes --wrt" in r.err


# ---- the built-in layout: no edge runs through its own labels ------------------------------------

EDGE = re.compile(r'<g class="edge"><title>([^<]*)</title>(.*?)</g>', re.S)
PATH = re.compile(r'd="M(-?[\d.]+),(-?[\d.]+) Q(-?[\d.]+),(-?[\d.]+) (-?[\d.]+),(-?[\d.]+)"')
TEXT = re.compile(r'<text x="(-?[\d.]+)" y="(-?[\d.]+)" fill="[^"]*"(?: text-anchor="(start|end)")?>([^<]*)</text>')


def crossings(svg: str) -> list[tuple[str, str]]:
    """(edge, label) for each label of an edge that the edge's own curve passes through. A label's
    box: CHAR per character wide, from 8 px above its baseline (the digits' height) to 1 below."""
    from cg.render.draw import CHAR

    found = []
    for title, body in EDGE.findall(svg):
        sx, sy, cx, cy, ex, ey = map(float, PATH.search(body).groups())  # type: ignore[union-attr]
        curve = [((1 - t) ** 2 * sx + 2 * t * (1 - t) * cx + t * t * ex, (1 - t) ** 2 * sy + 2 * t * (1 - t) * cy
                  + t * t * ey) for t in (i / 400 for i in range(401))]
        for tx, ty, anchor, text in TEXT.findall(body):
            x, y, w = float(tx), float(ty), len(text) * CHAR
            x0, x1 = (x, x + w) if anchor == "start" else (x - w, x) if anchor == "end" else (x - w / 2, x + w / 2)
            if any(x0 + 1 < px < x1 - 1 and y - 8 < py < y + 1 for px, py in curve):
                found.append((title, text))
    return found


@pytest.mark.parametrize("name", sorted(p.name for p in GRAPHS.glob("*.yaml")))
def test_the_built_in_layout_never_draws_an_edge_through_its_labels(name: str) -> None:
    from cg.check.gradients import draw_inputs
    from cg.render.draw import layered_svg

    graph = cglib.load(GRAPHS / name)
    if not graph.outputs:
        pytest.skip("a library of functions: nothing to draw")
    import numpy as np

    given = dict(graph.expect.inputs) if graph.expect else {}
    result = cglib.run(graph, draw_inputs(graph, given, np.random.default_rng(0))[0])
    for direction in ("LR", "TB"):
        for view in (View(), View(formulas=True)):
            svg = layered_svg(picture(result, view=view), direction)
            assert EDGE.search(svg) and not crossings(svg), (direction, view, crossings(svg)[:5])


# ---- clusters through Graphviz: no border crosses a label, and the MLP fits a slide --------------


def text_boxes(layout: dict) -> list[tuple[str, float, float, float, float]]:
    """(text, x0, y0, x1, y1) of every text dot drew for a node or an edge label (its `_ldraw_`
    operations: a baseline point, an alignment and a width), from a quarter of the font size
    below the baseline to 0.8 of it above (dot's y grows upwards)."""
    found = []
    for item in [o for o in layout.get("objects", []) if "pos" in o] + layout.get("edges", []):
        size = 14.0
        for op in item.get("_ldraw_", []):
            if op["op"] == "F":
                size = op["size"]
            elif op["op"] == "T":
                (x, y), w = op["pt"], op["width"]
                x0 = {"l": x, "r": x - w}.get(op["align"], x - w / 2)
                found.append((op["text"], x0, y - 0.25 * size, x0 + w, y + 0.8 * size))
    return found


def border_crossings(layout: dict) -> list[tuple[str, str]]:
    """(cluster, text) for each text that a cluster's frame cuts: neither inside nor outside it."""
    frames = [(o["name"], *map(float, o["bb"].split(",")))
              for o in layout["objects"] if o["name"].startswith("cluster")]
    texts = text_boxes(layout)
    assert frames and texts  # a layout with nothing to cross proves nothing
    return [(name, text) for name, fx0, fy0, fx1, fy1 in frames for text, x0, y0, x1, y1 in texts
            if not (fx0 <= x0 and x1 <= fx1 and fy0 <= y0 and y1 <= fy1)  # inside
            and not (x1 <= fx0 or x0 >= fx1 or y1 <= fy0 or y0 >= fy1)]  # outside


def dot_layout(*args: str) -> dict:
    import json
    import subprocess

    dot = cg("draw", *args, "--composites", "cluster", "-f", "dot").out
    return json.loads(subprocess.run(["dot", "-Tjson"], input=dot.encode(), capture_output=True, check=True).stdout)


COMPOSITE_GRAPHS = [p.name for p in sorted(GRAPHS.glob("*.yaml")) if "imports:" in p.read_text(encoding="utf-8")]


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed (Debian package graphviz)")
@pytest.mark.parametrize("name", COMPOSITE_GRAPHS)
@pytest.mark.parametrize("extra", [(), ("--direction", "LR"), ("--formulas",), ("--show", "values")])
def test_no_cluster_border_crosses_a_label(name: str, extra: tuple[str, ...]) -> None:
    assert border_crossings(dot_layout(str(GRAPHS / name), *extra)) == []


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed (Debian package graphviz)")
def test_the_mlp_in_clusters_fits_a_slide() -> None:
    """16:9 within a factor of two: it was 5.7:1 left to right; clusters draw top to bottom."""
    x0, y0, x1, y1 = map(float, dot_layout("graphs/mlp.yaml")["bb"].split(","))
    assert 16 / 9 / 2 <= (x1 - x0) / (y1 - y0) <= 16 / 9 * 2


def test_cluster_labels_are_nodes_in_the_innermost_cluster_around_both_ends() -> None:
    dot = cg("draw", "graphs/mlp.yaml", "--composites", "cluster", "-f", "dot").out
    inner = re.search(r'subgraph "cluster_h/z" \{[^\n]*', dot)
    assert inner and '"label ' in inner.group(0)  # h/z/Wx -> h/z: its label sits inside h/z's frame
    assert "rankdir=TB" in dot and "rankdir=LR" in cg("draw", "graphs/mlp.yaml", "-f", "dot").out


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed (Debian package graphviz)")
@pytest.mark.parametrize("name", ["log3x2p5xy.yaml", "mlp.yaml", "multiclass_loss.yaml"])
def test_a_gradient_graph_is_drawn_in_two_bands(name: str, tmp_path: Path) -> None:
    """`cg grad`'s file: the forward pass and the backward pass in two frames, values only (the
    gradients of its first output with respect to the backward nodes are 0 by construction)."""
    import json
    import subprocess

    grad = tmp_path / "g.yaml"
    assert cg("grad", str(GRAPHS / name), "-o", str(grad)).code == 0
    dot = cg("draw", str(grad), "-f", "dot").out
    assert 'subgraph "cluster_forward" { label=<<I>forward pass</I>>' in dot
    assert 'subgraph "cluster_backward" { label=<<I>backward pass (cg grad)</I>>' in dot
    assert "#cf222e" not in dot.split("digraph", 1)[1].split("];", 1)[1]  # no red numbers below the title
    layout = json.loads(subprocess.run(["dot", "-Tjson"], input=dot.encode(), capture_output=True,
                                       check=True).stdout)
    assert border_crossings(layout) == []
