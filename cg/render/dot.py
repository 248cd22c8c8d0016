"""A Picture in Graphviz DOT and in Mermaid, and as SVG or PNG through Graphviz's `dot` program
(run with a timeout, its failures reported as errors)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter

from cg.errors import CgError, UsageError
from cg.eval.interp import Result
from cg.graph.ir import Graph
from cg.render.clusters import Cluster, nesting
from cg.render.picture import (
    BLUE,
    DOT_TIMEOUT,
    FONT,
    GREEN,
    GREY,
    INK,
    NO_DOT,
    RED,
    Arrow,
    Box,
    Picture,
    View,
    check_direction,
    clean,
    dot_label,
    dot_quote,
    picture,
)


def _title(pic: Picture) -> str:
    parts = [f"<B>{dot_label(pic.name)}</B>"]
    if pic.doc:
        parts.append(dot_label(pic.doc))
    # One line per colour: SVG viewers drop a space at the end of a text run, so none is left there.
    for colour, line in pic.legend:
        word, _, rest = line.partition(":")
        parts.append(f'<FONT POINT-SIZE="10"><FONT COLOR="{colour}">{word}</FONT>{dot_label(":" + rest)}</FONT>')
    return '<BR ALIGN="LEFT"/>'.join(parts) + '<BR ALIGN="LEFT"/>'


def _attrs(attrs: dict[str, str]) -> str:
    """` [k="v", ...]`: labels are HTML-like (<...>) already, everything else is quoted."""
    if not attrs:
        return ""
    return " [" + ", ".join(f"{k}={v if k == 'label' else dot_quote(v)}" for k, v in attrs.items()) + "]"


def _dot_box(b: Box) -> str:
    attrs: dict[str, str] = {}
    if b.kind == "end":
        attrs = {"shape": "point", "style": "invis", "width": "0.01"}
    elif b.kind == "const":
        attrs = {"shape": "plaintext", "fontsize": "10", "fontcolor": "#57606a", "width": "0", "height": "0",
                 "margin": "0.02", "label": f"<{dot_label(b.text)}>"}
    else:
        grad = f'<BR/><FONT POINT-SIZE="10" COLOR="{RED}">{dot_label(b.grad)}</FONT>' if b.grad else ""
        grad += f'<BR/><FONT POINT-SIZE="10" COLOR="{BLUE}">{dot_label(b.tangent)}</FONT>' if b.tangent else ""
        attrs["label"] = f'<<B>{dot_label(b.text)}</B><BR/><FONT POINT-SIZE="10">{dot_label(b.op)}</FONT>{grad}>'
        attrs["shape"] = "ellipse" if b.kind == "input" else "box"
        attrs["style"] = "rounded" if b.kind == "node" else "solid"
        if b.is_of:
            attrs["penwidth"] = "2"
        if not b.on_path:
            attrs.update(style=attrs["style"] + ",dashed", color=GREY, fontcolor=GREY)
    return f"  {dot_quote(b.key)}{_attrs(attrs)};"


def _edge_label(a: Arrow, direction: str) -> str | None:
    """Value (green) above gradient (red). Beside a vertical edge (TB) the lines are left-aligned
    after a small gap, so that they do not touch the edge."""
    lines = [(t, c) for t, c in ((a.value, GREEN), (a.grad, RED), (a.formula and f"∂: {a.formula}", INK))
             if t is not None]
    if not lines:
        return None
    gap, align = ('<TD WIDTH="6"></TD>', ' ALIGN="LEFT"') if direction == "TB" else ("", "")
    rows = "".join(f'<TR>{gap}<TD{align}><FONT COLOR="{c}">{dot_label(t)}</FONT></TD></TR>' for t, c in lines)
    return f'<<TABLE BORDER="0" CELLPADDING="0" CELLSPACING="0">{rows}</TABLE>>'


def _arrow_style(a: Arrow) -> dict[str, str]:
    if a.kind == "const":
        return {"color": GREY, "arrowsize": "0.5"}
    return {} if a.on_path else {"color": GREY, "style": "dashed"}


def _dot_arrow(a: Arrow, direction: str) -> str:
    label = _edge_label(a, direction)
    attrs = ({} if label is None else {"label": label}) | _arrow_style(a)
    return f"  {dot_quote(a.src)} -> {dot_quote(a.dst)}{_attrs(attrs)};"


def _homes(found: tuple[Cluster, ...]) -> dict[str, list[str]]:
    """Per box in a cluster, the clusters around it, innermost first."""
    parent = {c.key: c.parent for c in found}
    home: dict[str, list[str]] = {}
    for c in found:
        for m in c.members:
            chain: list[str] = []
            at: str | None = c.key
            while at is not None:
                chain.append(at)
                at = parent[at]
            home[m] = chain
    return home


def _shared(home: dict[str, list[str]], src: str, dst: str) -> str | None:
    """The innermost cluster around both ends of an edge: where its label belongs."""
    around = set(home.get(dst, ()))
    return next((c for c in home.get(src, ()) if c in around), None)


def to_dot(subject: Result | Graph, *, values: bool = True, direction: str = "LR", precision: int = 4,
           composites: str = "node", view: View | None = None) -> str:
    """Graphviz DOT text: inputs (ellipses) on the left, results on the right, constants small;
    each edge labelled with its value (green) above its gradient (red); nodes with no path to
    the differentiated output grey and dashed; the graph's name, doc and a legend on top."""
    check_direction(direction)
    return dot_text(picture(subject, values=values, precision=precision, composites=composites, view=view), direction)


def dot_text(pic: Picture, direction: str, *, title: bool = True) -> str:
    label = f", label=<{_title(pic)}>" if title else ""  # the HTML page has the title already
    lines = [
        # Not the graph's name: Graphviz reads escapes (\N, \G) in IDs in ways that differ by version.
        "digraph cg {",
        f'  graph [rankdir={direction}, fontname="{FONT}", fontsize=13, labelloc=t, labeljust=l, '
        # With clusters each labelled edge is two ranks (its label is a node): closer ranks keep it compact.
        f'nodesep=0.45, ranksep={0.2 if pic.clusters else 0.7}{label}];',
        f'  node [fontname="{FONT}", fontsize=13, color="{INK}", margin="0.14,0.05", height=0.4];',
        f'  edge [fontname="{FONT}", fontsize=11, color="{INK}", arrowsize=0.7];',
    ]
    lines += [_dot_box(b) for b in pic.boxes]
    members = {c.key: list(c.members) for c in pic.clusters}
    if pic.clusters:  # dot keeps other nodes out of a cluster's frame, but not edge labels: make them nodes
        home = _homes(pic.clusters)
        for k, a in enumerate(pic.arrows):
            text = _edge_label(a, "LR")  # centred on its own node: no gap from an edge beside it
            if text is None:
                lines.append(_dot_arrow(a, direction))
                continue
            key = dot_quote(f"label {k}")
            lines.append(f'  {key} [shape=plaintext, margin=0, width=0, height=0, label={text}];')
            lines.append(f"  {dot_quote(a.src)} -> {key}{_attrs(_arrow_style(a) | {'arrowhead': 'none'})};")
            lines.append(f"  {key} -> {dot_quote(a.dst)}{_attrs(_arrow_style(a))};")
            shared = _shared(home, a.src, a.dst)
            if shared is not None:
                members[shared].append(f"label {k}")
    else:
        lines += [_dot_arrow(a, direction) for a in pic.arrows]
    for opening, c in nesting(pic.clusters):  # a box named inside a cluster's block is drawn in it
        name, label = dot_quote("cluster_" + c.key), dot_label(c.label)
        inside = "".join(" " + dot_quote(k) + ";" for k in members[c.key])
        lines.append(f'  subgraph {name} {{ label=<<I>{label}</I>>; style="rounded,dashed"; '
                     f'color="{GREY}";{inside}' if opening else "  }")
    for rank, kind in (("source", "input"), ("sink", "end")):
        keys = [dot_quote(b.key) for b in pic.boxes if b.kind == kind]
        if keys:
            lines.append(f"  {{rank={rank}; {'; '.join(keys)};}}")
    return "\n".join([*lines, "}"]) + "\n"


# ---- Mermaid --------------------------------------------------------------------------------


def _m(text: str) -> str:
    """Text inside a quoted Mermaid label: its own entity codes for the characters it reads."""
    text = clean(text)
    for ch, code in (("#", "#35;"), ("&", "#amp;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"),
                     ("`", "#96;"), ("|", "#124;"), ("%", "#37;")):
        text = text.replace(ch, code)
    return text.replace("\n", "<br/>")


def to_mermaid(subject: Result | Graph, *, values: bool = True, direction: str = "LR", precision: int = 4,
               composites: str = "node", view: View | None = None) -> str:
    """A Mermaid flowchart (renders in GitHub Markdown): the same boxes and arrows as to_dot,
    with edge labels `value / ∂ gradient`. Ids are generated (n0, c0, o0) since Mermaid gives
    names like `end` a meaning; the names themselves are in the labels."""
    check_direction(direction)
    pic = picture(subject, values=values, precision=precision, composites=composites, view=view)
    colours = {colour for colour, _ in pic.legend}
    key = f" (edge labels: value / ∂ = d {pic.of} / d value)" if {GREEN, RED} <= colours else ""
    key += " (∂: an edge's local derivative)" if any(a.formula for a in pic.arrows) else ""
    title = clean(pic.name + (f": {pic.doc}" if pic.doc else "") + key).replace("\n", " ")
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
        label += f"<br/>∂ {_m(b.grad)}" if b.grad else ""
        label += f"<br/>tangent {_m(b.tangent)}" if b.tangent else ""
        lines.append(f"  {ids[b.key]}{shapes[b.kind].format(label)}:::cg{b.kind.capitalize()}")
    grey: list[str] = []
    for k, a in enumerate(pic.arrows):
        parts = [p for p in (a.value, None if a.grad is None else f"∂ {a.grad}",
                             None if a.formula is None else f"∂: {a.formula}") if p is not None]
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
           composites: str = "node", view: View | None = None) -> str:
    dot = to_dot(subject, values=values, direction=direction, precision=precision, composites=composites, view=view)
    return run_dot(dot, "svg").decode("utf-8")


def to_png(subject: Result | Graph, *, values: bool = True, direction: str = "LR", precision: int = 4,
           composites: str = "node", view: View | None = None) -> bytes:
    return run_dot(to_dot(subject, values=values, direction=direction, precision=precision, composites=composites,
                          view=view),
                   "png")


def to_pdf(subject: Result | Graph, *, values: bool = True, direction: str = "LR", precision: int = 4,
           composites: str = "node", view: View | None = None) -> bytes:
    """A vector figure for LaTeX slides and handouts (\\includegraphics{fig.pdf})."""
    return run_dot(to_dot(subject, values=values, direction=direction, precision=precision, composites=composites,
                          view=view),
                   "pdf")
