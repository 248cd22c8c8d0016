"""Pictures of a graph with the values and gradients of a run, in each of FORMATS: DOT, Mermaid,
SVG and PNG (cg/render/dot.py), and one self-contained HTML page (here), with a small layered
SVG of its own when Graphviz is not installed. The picture itself is cg/render/picture.py.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace

from cg.errors import CgError, UsageError
from cg.eval.interp import Result
from cg.graph.composite import expanded, shown_nodes
from cg.graph.ir import Graph
from cg.printable import printable_text
from cg.render.clusters import everything_inside
from cg.render.dot import dot_text, have_dot, run_dot, to_dot, to_mermaid, to_pdf, to_png, to_svg
from cg.render.picture import (
    BLUE,
    FONT,
    FORMATS,
    GREEN,
    GREY,
    INK,
    RED,
    Arrow,
    Box,
    Picture,
    View,
    check_direction,
    op_text,
    picture,
    svg_text,
)
from cg.render.table import arg_text, derivative_column, rows

# ---- HTML, with a small layered SVG when there is no dot -------------------------------------

BOX_W, BOX_H, END, CHAR = 120, 44, 90, 6.5  # pixels of the fallback layout; CHAR: one label character


@dataclass(frozen=True)
class _Layout:
    pos: dict[str, tuple[float, float]]  # box centres
    depth: dict[str, int]  # layer: longest path from the inputs
    lr: bool
    label_w: float  # the widest edge label


def _layout(pic: Picture, direction: str) -> _Layout:
    depth = {b.key: 0 if b.kind == "input" else 1 for b in pic.boxes if b.kind in ("input", "node")}
    for a in pic.arrows:  # in topological order of their targets, so each source is final
        if a.kind == "arg":
            depth[a.dst] = max(depth[a.dst], depth[a.src] + 1)
    label_w = max((len(t) for a in pic.arrows for t in (a.value, a.grad) if t), default=0) * CHAR
    lr = direction == "LR"
    along, across = (max(110, label_w + 30), 40) if lr else (70, max(30, label_w + 16))
    used: Counter[int] = Counter()
    pos = {}
    for key, layer in depth.items():
        a_, c_ = layer * ((BOX_W if lr else BOX_H) + along), used[layer] * ((BOX_H if lr else BOX_W) + across)
        used[layer] += 1
        pos[key] = (20 + BOX_W / 2 + a_, 40 + BOX_H / 2 + c_) if lr else (20 + BOX_W / 2 + c_, 40 + BOX_H / 2 + a_)
    return _Layout(pos, depth, lr, label_w)


def _svg_arrow(a: Arrow, lay: _Layout, k: int, n: int, extent: list[tuple[float, float]]) -> list[str]:
    """The k-th of n arrows between the same two boxes (mul(x, x) has two), with its labels."""
    shift = 14 * k
    (x1, y1), lr = lay.pos[a.src], lay.lr
    x2, y2 = lay.pos[a.dst] if a.kind == "arg" else ((x1 + BOX_W + END, y1) if lr else (x1, y1 + BOX_H + END))
    if lr:
        sx, sy, ex, ey = x1 + BOX_W / 2, y1 + shift, x2 - BOX_W / 2, y2 + shift
    else:
        sx, sy, ex, ey = x1 + shift, y1 + BOX_H / 2, x2 + shift, y2 - BOX_H / 2
    cx, cy = (sx + ex) / 2, (sy + ey) / 2
    skip = lay.depth[a.dst] - lay.depth[a.src] - 1 if a.kind == "arg" else 0
    if skip > 0:  # over layers in between: arch around them, so the arrow never runs behind a box
        lift = (BOX_H if lr else BOX_W) + 16 + 12 * (skip - 1)
        cx, cy = (cx, min(sy, ey) - lift) if lr else (min(sx, ex) - lift, cy)
    style = f'stroke="{INK}"' if a.on_path else f'stroke="{GREY}" stroke-dasharray="4 4"'
    out = [f'<path d="M{sx:.0f},{sy:.0f} Q{cx:.0f},{cy:.0f} {ex:.0f},{ey:.0f}" fill="none" {style} '
           'marker-end="url(#arrow)"/>']
    t = (k + 1) / (n + 1)  # the middle (an arch's apex); parallel arrows have their labels apart
    mx, my = ((1 - t) ** 2 * p + 2 * t * (1 - t) * c + t * t * q for p, c, q in ((sx, cx, ex), (sy, cy, ey)))
    # The curve's direction there (the derivative of the quadratic Bezier), for the labels below.
    dx, dy = (2 * (1 - t) * (c - p) + 2 * t * (q - c) for p, c, q in ((sx, cx, ex), (sy, cy, ey)))
    extent.append((mx - lay.label_w, my - 20))
    lines = [(text, colour) for text, colour in ((a.value, GREEN), (a.grad, RED),
                                                 (a.formula and f"∂: {a.formula}", INK)) if text is not None]
    for (x, y, anchor), (text, colour) in zip(_label_places(lines, mx, my, dx, dy, lr), lines):
        out.append(f'<text x="{x:.0f}" y="{y:.0f}" fill="{colour}"{anchor}>{svg_text(text)}</text>')
    return out


def _label_places(lines: list[tuple[str, str]], mx: float, my: float, dx: float, dy: float,
                  lr: bool) -> list[tuple[float, float, str]]:
    """Where an edge's label lines go: (x, baseline y, anchor) each. Across a level edge they
    straddle it, value above and gradient below, as in the notes' figures. A sloping edge would
    run through them there, so the block goes into the corner the edge leaves free: ending just
    left of the point, below it where the edge falls to the right and above it where it climbs
    (the edge is higher, or lower, all along that side). TB: to the right, clear of the drift."""
    n = len(lines)
    if lr:
        half = max((len(text) for text, _ in lines), default=0) * CHAR / 2
        if not dx or abs(dy / dx) * half < 3:  # level enough: straddle it
            return [(mx, my - 5 if k == 0 else my + 13 * k, "") for k in range(n)]
        if dy > 0:  # falls to the right: the corner below and to the left is free
            return [(mx - 4, my + 12 + 13 * k, ' text-anchor="end"') for k in range(n)]
        return [(mx - 4, my - 4 - 13 * (n - 1 - k), ' text-anchor="end"') for k in range(n)]
    drift = abs(dx / dy) * 13 * n if dy else 0.0
    return [(mx + 6 + drift, my - 2 + 13 * k, ' text-anchor="start"') for k in range(n)]


def _svg_box(b: Box, x: float, y: float, consts: list[str]) -> list[str]:
    colour = INK if b.on_path else GREY
    extra = ("" if b.on_path else ' stroke-dasharray="4 4"') + (' stroke-width="2"' if b.is_of else "")
    op = b.op + (f" ({', '.join(consts)})" if consts else "")
    return [
        f'<rect x="{x - BOX_W / 2:.0f}" y="{y - BOX_H / 2:.0f}" width="{BOX_W}" height="{BOX_H}" '
        f'rx="{BOX_H / 2 if b.kind == "input" else 6:.0f}" fill="white" stroke="{colour}"{extra}/>',
        f'<text x="{x:.0f}" y="{y - 3:.0f}" font-weight="bold" fill="{colour}">{svg_text(b.text)}</text>',
        f'<text x="{x:.0f}" y="{y + 13:.0f}" font-size="10" fill="{colour}">{svg_text(op)}</text>',
        *([f'<text x="{x:.0f}" y="{y + BOX_H / 2 + 12:.0f}" font-size="10" fill="{RED}">{svg_text(b.grad)}</text>']
          if b.grad else []),  # the name's total gradient, just below its box
        *([f'<text x="{x:.0f}" y="{y + BOX_H / 2 + 12:.0f}" font-size="10" fill="{BLUE}">{svg_text(b.tangent)}</text>']
          if b.tangent else []),  # forward mode: its tangent, in the same place
    ]


def layered_svg(pic: Picture, direction: str = "LR") -> str:
    """The fallback picture when there is no dot: layers by longest path from the inputs,
    arrows straight between neighbouring layers and arched over the layers they skip,
    constants written into their node's box. Not a layout engine: Graphviz draws it better."""
    lay = _layout(pic, direction)
    texts = {b.key: b.text for b in pic.boxes}
    consts: dict[str, list[str]] = {}
    for a in pic.arrows:
        if a.kind == "const":
            consts.setdefault(a.dst, []).append(texts[a.src])
    out: list[str] = []
    extent = [(0.0, 0.0), *((x + BOX_W / 2 + END + lay.label_w, y + BOX_H / 2 + END) for x, y in lay.pos.values())]
    pairs = Counter((a.src, a.dst) for a in pic.arrows)
    seen: Counter[tuple[str, str]] = Counter()
    for a in pic.arrows:
        if a.kind != "const":  # a group titled as Graphviz titles its edges (the stepper finds it so)
            out += [f'<g class="edge"><title>{svg_text(a.src)}-&gt;{svg_text(a.dst)}</title>',
                    *_svg_arrow(a, lay, seen[(a.src, a.dst)], pairs[(a.src, a.dst)], extent), "</g>"]
            seen[(a.src, a.dst)] += 1
    for b in pic.boxes:
        if b.key in lay.pos:
            out += [f'<g class="node"><title>{svg_text(b.key)}</title>', *_svg_box(b, *lay.pos[b.key],
                                                                                  consts.get(b.key, [])), "</g>"]
    inside = everything_inside(pic.clusters)
    for depth, c in ((c.key.count("/"), c) for c in pic.clusters):  # a dashed frame (no layout engine: it may overlap)
        placed = [lay.pos[m] for m in inside[c.key] if m in lay.pos]
        if placed:
            xs, ys = [p[0] for p in placed], [p[1] for p in placed]
            pad = 8 + 6 * (4 - min(depth, 4))  # an outer frame around the frames inside it
            x, y = min(xs) - BOX_W / 2 - pad, min(ys) - BOX_H / 2 - pad - 12
            w, h = max(xs) - min(xs) + BOX_W + 2 * pad, max(ys) - min(ys) + BOX_H + 2 * pad + 12
            out += [f'<rect x="{x:.0f}" y="{y:.0f}" width="{w:.0f}" height="{h:.0f}" rx="8" fill="none" '
                    f'stroke="{GREY}" stroke-dasharray="4 4"/>',
                    f'<text x="{x + 6:.0f}" y="{y + 13:.0f}" font-style="italic" fill="{GREY}" text-anchor="start">'
                    f'{svg_text(c.label)}</text>']
    x0, y0 = min(x for x, _ in extent), min(y for _, y in extent)
    w, h = max(x for x, _ in extent) - x0, max(y for _, y in extent) - y0
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h:.0f}" '
            f'viewBox="{x0:.0f} {y0:.0f} {w:.0f} {h:.0f}" font-family="{FONT}" font-size="11" '
            'text-anchor="middle"><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{INK}"/></marker></defs>'
            + "".join(out) + "</svg>")


def _table(subject: Result | Graph, values: bool, precision: int) -> str:
    """The table beside the picture: a composite is one row, unless the graph is shown expanded."""
    g = subject.graph if isinstance(subject, Result) else subject
    header: tuple[str, ...]
    body: list[tuple[str, ...]]
    if isinstance(subject, Result) and values:
        header = ("id", "op", "in", "shape", "value", derivative_column(subject))
        body = list(rows(subject, precision))
    else:
        header = ("id", "op", "in", "shape")
        body = [(i.name, "input", "", str(list(i.aval.shape))) for i in g.inputs]
        body += [(n.id, op_text(n), ", ".join(arg_text(a) for a in n.args), str(list(g.avals[n.id].shape)))
                 for n in shown_nodes(g)]
    docs = {i.name: i.doc for i in g.inputs} | {n.id: n.doc for n in g.nodes}  # shown on hovering the id
    head = "".join(f"<th>{svg_text(c)}</th>" for c in header)
    cells = "".join(  # a doc keeps its lines in the tooltip
        f'<tr><td title="{html.escape(printable_text(docs.get(r[0], "")))}">{svg_text(r[0])}</td>'
        + "".join(f"<td>{svg_text(c)}</td>" for c in r[1:]) + "</tr>\n"
        for r in body
    )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{cells}</tbody>\n</table>"


# The page around a picture: this module's and `cg step`'s (cg/render/stepper.py).
PAGE_STYLE = f"""body {{ font-family: {FONT}; color: {INK}; margin: 1.5em; }}
.doc {{ white-space: pre-wrap; }} .legend {{ font-size: 0.9em; }}
.wrap {{ display: flex; flex-wrap: wrap; gap: 2em; align-items: flex-start; }}
figure {{ margin: 0; max-width: 100%; overflow: auto; }} figure svg {{ max-width: 100%; height: auto; }}"""
STYLE = PAGE_STYLE + """
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border-bottom: 1px solid #d0d7de; padding: 0.25em 0.7em; text-align: left; }
td:nth-child(n+5) { text-align: right; font-variant-numeric: tabular-nums; }"""


def page_head(title: str, style: str, *, script: bool = False) -> list[str]:
    """A page's head and first heading. No request leaves the page: its own styles only (and, with
    `script`, its own inline script), no fonts or images from anywhere."""
    scripts = "script-src 'unsafe-inline'; " if script else ""
    policy = f"default-src 'none'; style-src 'unsafe-inline'; {scripts}img-src data:"
    return ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{policy}">',
            f"<title>{svg_text(title)}</title>", f"<style>\n{style}\n</style>", "</head>", "<body>",
            f"<h1>{svg_text(title)}</h1>"]


def inline_svg(pic: Picture, direction: str = "LR", *, use_dot: bool | None = None, title: bool = False) -> str:
    """The picture as SVG to put inside a page: Graphviz's when it is installed (use_dot None: if
    available, falling back when dot fails; True: required; False: never), else layered_svg."""
    svg = None
    if use_dot or (use_dot is None and have_dot()):
        try:
            svg = run_dot(dot_text(pic, direction, title=title), "svg").decode("utf-8")
        except CgError:
            if use_dot:
                raise
    svg = svg or layered_svg(pic, direction)
    return svg[svg.find("<svg"):]  # inline SVG takes no XML declaration or doctype


def to_html(subject: Result | Graph, *, values: bool = True, direction: str = "LR", precision: int = 4,
            use_dot: bool | None = None, composites: str = "node", view: View | None = None) -> str:
    """One self-contained page (no scripts, no network): the picture as inline SVG beside the
    table of values and gradients. The SVG comes from dot when it is installed (use_dot None:
    if available; True: required; False: never), otherwise from layered_svg."""
    check_direction(direction)
    pic = picture(subject, values=values, precision=precision, composites=composites, view=view)
    svg = inline_svg(pic, direction, use_dot=use_dot)
    parts = page_head(pic.name, STYLE)
    if pic.doc:
        parts.append(f'<p class="doc">{html.escape(printable_text(pic.doc))}</p>')
    parts += [f'<p class="legend" style="color: {colour}">{svg_text(line)}</p>' for colour, line in pic.legend]
    if composites == "cluster":  # the table shows the inner nodes the picture shows
        subject = replace(subject, graph=expanded(subject.graph)) if isinstance(subject, Result) else expanded(subject)
    parts += ['<div class="wrap">', f"<figure>\n{svg.strip()}\n</figure>", _table(subject, values, precision),
              "</div>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"


def render(subject: Result | Graph, fmt: str, *, values: bool = True, direction: str = "LR",
           precision: int = 4, composites: str = "node", view: View | None = None) -> str | bytes:
    """The picture in one of FORMATS: text, except PNG (bytes)."""
    makers: dict[str, Callable[..., str | bytes]] = {
        "dot": to_dot, "mermaid": to_mermaid, "svg": to_svg, "png": to_png, "pdf": to_pdf, "html": to_html,
    }
    if fmt not in makers:
        raise UsageError.one("CG300", f"unknown picture format {fmt!r}; one of {', '.join(FORMATS)}")
    return makers[fmt](subject, values=values, direction=direction, precision=precision, composites=composites,
                       view=view)
