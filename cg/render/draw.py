"""Pictures of a graph with the values and gradients of a run: Graphviz DOT, Mermaid, one
self-contained HTML page, and SVG or PNG through Graphviz's `dot` program.

As in the lecture notes' figures, every edge carries the value of its source in green above
the gradient that flows back along it in red (cg.eval.edges gives the flows, so the streams leaving
a name add up to its gradient). Everything is first turned into a neutral Picture (boxes and
arrows with their texts), which each format then writes out.
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from cg.errors import CgError, UsageError
from cg.eval.edges import compute_edges, stream_sums
from cg.eval.interp import Result
from cg.eval.plan import reachable
from cg.graph.composite import call_flows, expanded, shown_nodes
from cg.graph.ir import Const, Graph, Node
from cg.printable import printable, printable_text
from cg.render.clusters import MODES, Cluster, clusters, everything_inside, nesting
from cg.render.table import arg_text, derivative_column, fmt_value, rows

GREEN, RED, GREY, INK = "#1a7f37", "#cf222e", "#8c959f", "#24292f"
FONT = "Helvetica,Arial,sans-serif"
DIRECTIONS = ("LR", "TB")
FORMATS = ("dot", "mermaid", "svg", "png", "html")
DOT_TIMEOUT = 60.0  # seconds; dot's layout can take very long on graphs with thousands of nodes
NO_DOT = ("Graphviz's `dot` program is not installed; it draws svg and png (install the Debian "
          "package `graphviz`, or `brew install graphviz`). The formats dot (.dot), mermaid (.mmd) "
          "and html (.html) work without it.")


@dataclass(frozen=True)
class Box:
    key: str  # a name, or "<node>.in<k>" for a constant, "<name>.out" for an end: never a name
    kind: str  # "input", "node", "const" or "end" (an arrow's invisible target)
    text: str  # the id, or the constant's value
    op: str  # "square", "sum axis=0", "input"; "" for constants and ends
    doc: str
    on_path: bool  # on a path to the differentiated output
    is_of: bool = False  # the differentiated output


@dataclass(frozen=True)
class Arrow:
    src: str
    dst: str
    kind: str  # "arg" (name to node), "const" (constant to node) or "end" (out of a result)
    value: str | None  # the value it carries, formatted; None without a run
    grad: str | None  # the gradient flowing back along it; None where nothing flows
    on_path: bool


@dataclass(frozen=True)
class Picture:
    name: str
    doc: str
    of: str | None  # the differentiated output
    legend: tuple[tuple[str, str], ...]  # (colour, what it means); empty without values
    boxes: tuple[Box, ...]
    arrows: tuple[Arrow, ...]
    clusters: tuple[Cluster, ...] = ()  # composites drawn as a box around their inner nodes


# ---- the picture, independent of the format --------------------------------------------------


def _text(v: np.ndarray | None, precision: int) -> str | None:
    """A scalar as cg prints it; a tensor with its shape in front of its values or summary."""
    if v is None:
        return None
    shown = fmt_value(v, precision)
    return shown if v.ndim == 0 else f"{list(v.shape)} {shown}"


def _op_text(node: Node) -> str:
    """The op with the attributes that differ from their defaults: `sum axis=0`."""
    given = [f"{k}={json.dumps(v)}" for k, v in node.attrs.items() if v != node.op.attrs[k].default]
    return " ".join([node.op.name, *given])


@dataclass(frozen=True)
class _Shown:
    """The numbers a picture shows of a run; none for a graph drawn without values."""

    result: Result | None
    precision: int
    flows: dict[tuple[str, int], np.ndarray | None]  # (node, argument) -> gradient flowing back
    seed: np.ndarray | None  # the gradient that starts the backward pass at the differentiated output

    def value(self, name: str) -> str | None:
        return None if self.result is None else _text(self.result.values[name], self.precision)

    def flow(self, node: str, arg: int) -> str | None:
        return _text(self.flows.get((node, arg)), self.precision)


def _shown(subject: Result | Graph, values: bool, of: str | None, precision: int, calls: bool = False) -> _Shown:
    """calls: composites are drawn as one box, so the flows along their arguments are needed."""
    if not values or not isinstance(subject, Result):
        return _Shown(None, precision, {}, None)
    if subject.tangents is not None or of is None:  # forward mode: values only
        return _Shown(subject, precision, {}, None)
    edges = compute_edges(subject)
    total = subject.grads.get(of)
    # The output's gradient is the seed plus what its users send back (when it is used).
    seed = None if total is None else np.asarray(total - stream_sums(edges).get(of, 0.0))
    flows = {(e.dst, e.arg): e.flow for e in edges}
    if calls:  # a call's argument carries back what flows along the inner edges it feeds
        flows |= call_flows(subject.graph, flows)
    return _Shown(subject, precision, flows, seed)


def _node_parts(node: Node, live: bool, of: str | None, shown: _Shown) -> tuple[list[Box], list[Arrow]]:
    """A node's box, and an arrow per argument: from a name, or from a small constant box."""
    boxes = [Box(node.id, "node", node.id, _op_text(node), node.doc, live, node.id == of)]
    arrows = []
    for k, arg in enumerate(node.args):
        if isinstance(arg, Const):
            boxes.append(Box(f"{node.id}.in{k}", "const", arg_text(arg), "", "", live))
            arrows.append(Arrow(f"{node.id}.in{k}", node.id, "const", None, None, live))
        else:
            arrows.append(Arrow(arg, node.id, "arg", shown.value(arg), shown.flow(node.id, k) if live else None, live))
    return boxes, arrows


def picture(subject: Result | Graph, *, values: bool = True, precision: int = 4, composites: str = "node") -> Picture:
    """Boxes for inputs, nodes and constants, and one arrow per argument (mul(x, x) has two),
    plus an arrow out of every output and every unused name to show the value it ends with.
    A composite is one box (composites="node") or a cluster around its inner nodes ("cluster")."""
    if composites not in MODES:
        raise UsageError.one("CG300", f"composites must be node or cluster, not {composites!r}")
    graph = subject.graph if isinstance(subject, Result) else subject
    reverse = isinstance(subject, Result) and subject.tangents is None
    of = subject.of if isinstance(subject, Result) and reverse else (graph.outputs[0] if graph.outputs else None)
    on_path = reachable(graph, of, downstream=False) if of is not None else frozenset(graph.avals)
    shown = _shown(subject, values, of, precision, calls=composites == "node")
    input_op = {"float": "input", "int": "input (int)"}
    boxes = [Box(i.name, "input", i.name, input_op[i.aval.dtype], i.doc, i.name in on_path) for i in graph.inputs]
    arrows: list[Arrow] = []
    for node in shown_nodes(graph) if composites == "node" else graph.nodes:
        node_boxes, node_arrows = _node_parts(node, node.id in on_path, of, shown)
        boxes += node_boxes
        arrows += node_arrows
    used = {a.src for a in arrows}
    for name in [b.key for b in boxes if b.kind in ("input", "node")]:
        if name in graph.outputs or name not in used:
            live = name in on_path
            boxes.append(Box(f"{name}.out", "end", "", "", "", live))
            grad = _text(shown.seed, precision) if name == of else None
            arrows.append(Arrow(name, f"{name}.out", "end", shown.value(name), grad, live))
    legend: tuple[tuple[str, str], ...] = ()
    if shown.result is not None:
        legend = ((GREEN, "green: the value an edge carries (forward pass)"),)
        if shown.flows or shown.seed is not None:
            legend += ((RED, f"red: the gradient d {of} / d value flowing back along it (backward pass)"),)
    found = clusters(graph, [b.key for b in boxes]) if composites == "cluster" else ()
    return Picture(graph.name, graph.doc, of, legend, tuple(boxes), tuple(arrows), found)


# ---- Graphviz DOT ---------------------------------------------------------------------------


def _clean(text: str) -> str:
    """No control characters (XML and DOT refuse them, terminals obey them): tabs become spaces,
    newlines stay, the others are printable's escapes (`\\x1b`)."""
    return printable_text(text.replace("\t", " "))


def _x(text: str) -> str:
    """One line of text in SVG or HTML."""
    return html.escape(printable(text.replace("\n", " ")))


def _h(text: str) -> str:
    """Text inside a DOT HTML-like label. Graphviz reads backslash escapes (\\N is the node's
    name) even there, after the XML entities, so a backslash is doubled to stay one."""
    return html.escape(_clean(text), quote=True).replace("\\", "\\\\").replace("\n", '<BR ALIGN="LEFT"/>')


def _q(text: str) -> str:
    """A DOT double-quoted string, for ids (names, which need no escapes) and attribute values."""
    body = _clean(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{body}"'


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise UsageError.one("CG300", f"direction must be LR or TB, not {direction!r}")


def _title(pic: Picture) -> str:
    parts = [f"<B>{_h(pic.name)}</B>"]
    if pic.doc:
        parts.append(_h(pic.doc))
    # One line per colour: SVG viewers drop a space at the end of a text run, so none is left there.
    for colour, line in pic.legend:
        word, _, rest = line.partition(":")
        parts.append(f'<FONT POINT-SIZE="10"><FONT COLOR="{colour}">{word}</FONT>{_h(":" + rest)}</FONT>')
    return '<BR ALIGN="LEFT"/>'.join(parts) + '<BR ALIGN="LEFT"/>'


def _attrs(attrs: dict[str, str]) -> str:
    """` [k="v", ...]`: labels are HTML-like (<...>) already, everything else is quoted."""
    if not attrs:
        return ""
    return " [" + ", ".join(f"{k}={v if k == 'label' else _q(v)}" for k, v in attrs.items()) + "]"


def _dot_box(b: Box) -> str:
    attrs: dict[str, str] = {}
    if b.kind == "end":
        attrs = {"shape": "point", "style": "invis", "width": "0.01"}
    elif b.kind == "const":
        attrs = {"shape": "plaintext", "fontsize": "10", "fontcolor": "#57606a", "width": "0", "height": "0",
                 "margin": "0.02", "label": f"<{_h(b.text)}>"}
    else:
        attrs["label"] = f'<<B>{_h(b.text)}</B><BR/><FONT POINT-SIZE="10">{_h(b.op)}</FONT>>'
        attrs["shape"] = "ellipse" if b.kind == "input" else "box"
        attrs["style"] = "rounded" if b.kind == "node" else "solid"
        if b.is_of:
            attrs["penwidth"] = "2"
        if not b.on_path:
            attrs.update(style=attrs["style"] + ",dashed", color=GREY, fontcolor=GREY)
    return f"  {_q(b.key)}{_attrs(attrs)};"


def _edge_label(a: Arrow, direction: str) -> str | None:
    """Value (green) above gradient (red). Beside a vertical edge (TB) the lines are left-aligned
    after a small gap, so that they do not touch the edge."""
    lines = [(t, c) for t, c in ((a.value, GREEN), (a.grad, RED)) if t is not None]
    if not lines:
        return None
    gap, align = ('<TD WIDTH="6"></TD>', ' ALIGN="LEFT"') if direction == "TB" else ("", "")
    rows = "".join(f'<TR>{gap}<TD{align}><FONT COLOR="{c}">{_h(t)}</FONT></TD></TR>' for t, c in lines)
    return f'<<TABLE BORDER="0" CELLPADDING="0" CELLSPACING="0">{rows}</TABLE>>'


def _dot_arrow(a: Arrow, direction: str) -> str:
    attrs: dict[str, str] = {}
    label = _edge_label(a, direction)
    if label is not None:
        attrs["label"] = label
    if a.kind == "const":
        attrs.update(color=GREY, arrowsize="0.5")
    elif not a.on_path:
        attrs.update(color=GREY, style="dashed")
    return f"  {_q(a.src)} -> {_q(a.dst)}{_attrs(attrs)};"


def to_dot(subject: Result | Graph, *, values: bool = True, direction: str = "LR", precision: int = 4,
           composites: str = "node") -> str:
    """Graphviz DOT text: inputs (ellipses) on the left, results on the right, constants small;
    each edge labelled with its value (green) above its gradient (red); nodes with no path to
    the differentiated output grey and dashed; the graph's name, doc and a legend on top."""
    _check_direction(direction)
    return _dot_text(picture(subject, values=values, precision=precision, composites=composites), direction)


def _dot_text(pic: Picture, direction: str, *, title: bool = True) -> str:
    label = f", label=<{_title(pic)}>" if title else ""  # the HTML page has the title already
    lines = [
        # Not the graph's name: Graphviz reads escapes (\N, \G) in IDs in ways that differ by version.
        "digraph cg {",
        f'  graph [rankdir={direction}, fontname="{FONT}", fontsize=13, labelloc=t, labeljust=l, '
        f'nodesep=0.45, ranksep=0.7{label}];',
        f'  node [fontname="{FONT}", fontsize=13, color="{INK}", margin="0.14,0.05", height=0.4];',
        f'  edge [fontname="{FONT}", fontsize=11, color="{INK}", arrowsize=0.7];',
    ]
    lines += [_dot_box(b) for b in pic.boxes]
    lines += [_dot_arrow(a, direction) for a in pic.arrows]
    for opening, c in nesting(pic.clusters):  # a box named inside a cluster's block is drawn in it
        lines.append(f'  subgraph {_q("cluster_" + c.key)} {{ label=<<I>{_h(c.label)}</I>>; style="rounded,dashed"; '
                     f'color="{GREY}";{"".join(" " + _q(k) + ";" for k in c.members)}' if opening else "  }")
    for rank, kind in (("source", "input"), ("sink", "end")):
        keys = [_q(b.key) for b in pic.boxes if b.kind == kind]
        if keys:
            lines.append(f"  {{rank={rank}; {'; '.join(keys)};}}")
    return "\n".join([*lines, "}"]) + "\n"


# ---- Mermaid --------------------------------------------------------------------------------


def _m(text: str) -> str:
    """Text inside a quoted Mermaid label: its own entity codes for the characters it reads."""
    text = _clean(text)
    for ch, code in (("#", "#35;"), ("&", "#amp;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"),
                     ("`", "#96;"), ("|", "#124;"), ("%", "#37;")):
        text = text.replace(ch, code)
    return text.replace("\n", "<br/>")


def to_mermaid(subject: Result | Graph, *, values: bool = True, direction: str = "LR", precision: int = 4,
               composites: str = "node") -> str:
    """A Mermaid flowchart (renders in GitHub Markdown): the same boxes and arrows as to_dot,
    with edge labels `value / ∂ gradient`. Ids are generated (n0, c0, o0) since Mermaid gives
    names like `end` a meaning; the names themselves are in the labels."""
    _check_direction(direction)
    pic = picture(subject, values=values, precision=precision, composites=composites)
    key = f" (edge labels: value / ∂ = d {pic.of} / d value)" if len(pic.legend) == 2 else ""
    title = _clean(pic.name + (f": {pic.doc}" if pic.doc else "") + key).replace("\n", " ")
    # Mermaid shows a title's <, > and & escaped a second time, and reads no entity codes there.
    title = title.translate({ord("<"): "\u2039", ord(">"): "\u203a", ord("&"): "\uff06"})  # look-alikes
    lines = ["---", f"title: {json.dumps(title, ensure_ascii=False)}", "---", f"flowchart {direction}"]
    ids: dict[str, str] = {}
    counts: Counter[str] = Counter()
    shapes = {"input": '(["{}"])', "node": '["{}"]', "const": '["{}"]', "end": '((" "))'}
    for b in pic.boxes:
        prefix = {"input": "n", "node": "n", "const": "c", "end": "o"}[b.kind]
        ids[b.key] = f"{prefix}{counts[prefix]}"
        counts[prefix] += 1
        label = f"{_m(b.text)}<br/>{_m(b.op)}" if b.op else _m(b.text)
        lines.append(f"  {ids[b.key]}{shapes[b.kind].format(label)}:::cg{b.kind.capitalize()}")
    grey: list[str] = []
    for k, a in enumerate(pic.arrows):
        parts = [p for p in (a.value, None if a.grad is None else f"∂ {a.grad}") if p is not None]
        label = f'|"{_m(" / ".join(parts))}"|' if parts else ""
        lines.append(f"  {ids[a.src]} {'-.->' if a.kind == 'const' else '-->'}{label} {ids[a.dst]}")
        if a.kind == "const" or not a.on_path:
            grey.append(str(k))
    lines += [
        f"  classDef cgInput fill:#ddf4ff,stroke:{INK}",
        f"  classDef cgNode fill:#ffffff,stroke:{INK}",
        "  classDef cgConst fill:none,stroke:none,font-size:11px",
        "  classDef cgEnd fill:none,stroke:none",
        f"  classDef cgOff stroke:{GREY},color:{GREY},stroke-dasharray:4 4",
        "  classDef cgOf stroke-width:3px",
    ]
    # `:::` takes one class; the extra ones are given with `class` statements.
    off = [ids[b.key] for b in pic.boxes if not b.on_path and b.kind in ("input", "node")]
    if off:
        lines.append(f"  class {','.join(off)} cgOff")
    lines += [f"  class {ids[b.key]} cgOf" for b in pic.boxes if b.is_of]
    if grey:
        lines.append(f"  linkStyle {','.join(grey)} stroke:{GREY},stroke-dasharray:4 4")
    for k, (opening, c) in enumerate(nesting(pic.clusters)):  # naming a box in a subgraph moves it there
        if opening:
            lines += [f'  subgraph s{k} ["{_m(c.label)}"]', f"    direction {direction}"]
            lines += [f"    {ids[m]}" for m in c.members]
        else:
            lines.append("  end")
    return "\n".join(lines) + "\n"


# ---- dot, SVG and PNG -----------------------------------------------------------------------


def have_dot() -> bool:
    return shutil.which("dot") is not None


def require_dot(fmt: str) -> str:
    """The path of Graphviz's dot; a UsageError (exit 2) that says how to install it if missing."""
    exe = shutil.which("dot")
    if exe is None:
        raise UsageError.one("CG320", f"cannot draw {fmt}: {NO_DOT}")
    return exe


def run_dot(dot_text: str, fmt: str, *, timeout: float = DOT_TIMEOUT) -> bytes:
    """`dot -T<fmt>` on the text: UsageError (exit 2) if Graphviz is missing, CgError if dot fails."""
    exe = require_dot(fmt)
    dpi = ["-Gdpi=144"] if fmt == "png" else []  # sharp on high-density screens and in slides
    try:
        proc = subprocess.run([exe, f"-T{fmt}", *dpi], input=dot_text.encode("utf-8"), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise CgError.one("CG321", f"dot took longer than {timeout:g} s; the graph is too big to lay out "
                          "(draw it as dot or mermaid text instead)") from None
    except OSError as e:
        raise UsageError.one("CG320", f"cannot run {exe}: {e.strerror or e}") from None
    if proc.returncode != 0 or not proc.stdout:
        said = proc.stderr.decode("utf-8", "replace").strip()[:300]
        raise CgError.one("CG321", f"dot failed (exit {proc.returncode}): {said}")
    return proc.stdout


def to_svg(subject: Result | Graph, *, values: bool = True, direction: str = "LR", precision: int = 4,
           composites: str = "node") -> str:
    dot = to_dot(subject, values=values, direction=direction, precision=precision, composites=composites)
    return run_dot(dot, "svg").decode("utf-8")


def to_png(subject: Result | Graph, *, values: bool = True, direction: str = "LR", precision: int = 4,
           composites: str = "node") -> bytes:
    return run_dot(to_dot(subject, values=values, direction=direction, precision=precision, composites=composites),
                   "png")


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
    extent.append((mx - lay.label_w, my - 20))
    for line, (text, colour) in enumerate([(a.value, GREEN), (a.grad, RED)]):
        if text is not None:  # value above the line, gradient below it, as in the notes' figures
            x, y, anchor = (mx, my - 5 + 18 * line, "") if lr else (mx + 6, my - 2 + 13 * line, ' text-anchor="start"')
            out.append(f'<text x="{x:.0f}" y="{y:.0f}" fill="{colour}"{anchor}>{_x(text)}</text>')
    return out


def _svg_box(b: Box, x: float, y: float, consts: list[str]) -> list[str]:
    colour = INK if b.on_path else GREY
    extra = ("" if b.on_path else ' stroke-dasharray="4 4"') + (' stroke-width="2"' if b.is_of else "")
    op = b.op + (f" ({', '.join(consts)})" if consts else "")
    return [
        f'<rect x="{x - BOX_W / 2:.0f}" y="{y - BOX_H / 2:.0f}" width="{BOX_W}" height="{BOX_H}" '
        f'rx="{BOX_H / 2 if b.kind == "input" else 6:.0f}" fill="white" stroke="{colour}"{extra}/>',
        f'<text x="{x:.0f}" y="{y - 3:.0f}" font-weight="bold" fill="{colour}">{_x(b.text)}</text>',
        f'<text x="{x:.0f}" y="{y + 13:.0f}" font-size="10" fill="{colour}">{_x(op)}</text>',
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
        if a.kind != "const":
            out += _svg_arrow(a, lay, seen[(a.src, a.dst)], pairs[(a.src, a.dst)], extent)
            seen[(a.src, a.dst)] += 1
    for b in pic.boxes:
        if b.key in lay.pos:
            out += _svg_box(b, *lay.pos[b.key], consts.get(b.key, []))
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
                    f'{_x(c.label)}</text>']
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
        body += [(n.id, _op_text(n), ", ".join(arg_text(a) for a in n.args), str(list(g.avals[n.id].shape)))
                 for n in shown_nodes(g)]
    docs = {i.name: i.doc for i in g.inputs} | {n.id: n.doc for n in g.nodes}  # shown on hovering the id
    head = "".join(f"<th>{_x(c)}</th>" for c in header)
    cells = "".join(  # a doc keeps its lines in the tooltip
        f'<tr><td title="{html.escape(printable_text(docs.get(r[0], "")))}">{_x(r[0])}</td>'
        + "".join(f"<td>{_x(c)}</td>" for c in r[1:]) + "</tr>\n"
        for r in body
    )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{cells}</tbody>\n</table>"


STYLE = f"""body {{ font-family: {FONT}; color: {INK}; margin: 1.5em; }}
.doc {{ white-space: pre-wrap; }} .legend {{ font-size: 0.9em; }}
.wrap {{ display: flex; flex-wrap: wrap; gap: 2em; align-items: flex-start; }}
figure {{ margin: 0; max-width: 100%; overflow: auto; }} figure svg {{ max-width: 100%; height: auto; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
th, td {{ border-bottom: 1px solid #d0d7de; padding: 0.25em 0.7em; text-align: left; }}
td:nth-child(n+5) {{ text-align: right; font-variant-numeric: tabular-nums; }}"""


def to_html(subject: Result | Graph, *, values: bool = True, direction: str = "LR", precision: int = 4,
            use_dot: bool | None = None, composites: str = "node") -> str:
    """One self-contained page (no scripts, no network): the picture as inline SVG beside the
    table of values and gradients. The SVG comes from dot when it is installed (use_dot None:
    if available; True: required; False: never), otherwise from layered_svg."""
    _check_direction(direction)
    pic = picture(subject, values=values, precision=precision, composites=composites)
    svg = None
    if use_dot or (use_dot is None and have_dot()):
        try:
            svg = run_dot(_dot_text(pic, direction, title=False), "svg").decode("utf-8")
        except CgError:
            if use_dot:
                raise
    if svg is None:
        svg = layered_svg(pic, direction)
    svg = svg[svg.find("<svg"):]  # inline SVG takes no XML declaration or doctype
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        # No request leaves the page: no scripts, fonts or images from anywhere.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "img-src data:\">",
        f"<title>{_x(pic.name)}</title>", f"<style>\n{STYLE}\n</style>", "</head>", "<body>",
        f"<h1>{_x(pic.name)}</h1>",
    ]
    if pic.doc:
        parts.append(f'<p class="doc">{html.escape(printable_text(pic.doc))}</p>')
    parts += [f'<p class="legend" style="color: {colour}">{_x(line)}</p>' for colour, line in pic.legend]
    if composites == "cluster":  # the table shows the inner nodes the picture shows
        subject = replace(subject, graph=expanded(subject.graph)) if isinstance(subject, Result) else expanded(subject)
    parts += ['<div class="wrap">', f"<figure>\n{svg.strip()}\n</figure>", _table(subject, values, precision),
              "</div>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"


def render(subject: Result | Graph, fmt: str, *, values: bool = True, direction: str = "LR",
           precision: int = 4, composites: str = "node") -> str | bytes:
    """The picture in one of FORMATS: text, except PNG (bytes)."""
    makers: dict[str, Callable[..., str | bytes]] = {
        "dot": to_dot, "mermaid": to_mermaid, "svg": to_svg, "png": to_png, "html": to_html,
    }
    if fmt not in makers:
        raise UsageError.one("CG300", f"unknown picture format {fmt!r}; one of {', '.join(FORMATS)}")
    return makers[fmt](subject, values=values, direction=direction, precision=precision, composites=composites)
