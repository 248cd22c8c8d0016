"""`cg step -f html`: one self-contained page that steps through the passes. The picture (Graphviz's
SVG when it is installed, else the built-in one), Prev/Next buttons and the arrow keys, the
current node and its edges highlighted, and the step's lines beside the picture. No request leaves
the page: a small inline script and inline styles only. `#step=N` in the address opens step N.

Both SVGs title each node's group with its name and each edge's with "src->dst" (Graphviz does
it itself, cg/render/draw.py's layered_svg the same way), which is how the script finds them.
"""

from __future__ import annotations

import html
import json
import re
from typing import TypedDict

from cg.eval.steps import Steps
from cg.printable import printable_text
from cg.render.draw import PAGE_STYLE, inline_svg, page_head
from cg.render.picture import INK, RED, View, picture, svg_text
from cg.render.steps import all_steps

STYLE = PAGE_STYLE + f"""
#text {{ font-family: ui-monospace, monospace; white-space: pre; font-size: 0.95em; min-width: 30em; }}
button {{ font-size: 1em; margin-right: 0.5em; }}
.cg-on polygon, .cg-on ellipse, .cg-on rect, .cg-on path {{ stroke: {RED} !important; stroke-width: 3; }}
.cg-on text {{ font-weight: bold; }}"""

# Shows step k: its lines, and the node and edges it names highlighted. The steps are JSON data.
SCRIPT = """const steps = JSON.parse(document.getElementById('steps').textContent);
let k = 0;
function titled(kind, title) {
  return [...document.querySelectorAll('g.' + kind)].filter(g => g.querySelector('title')?.textContent === title);
}
function show(n) {
  k = Math.max(0, Math.min(steps.length - 1, n));
  const s = steps[k];
  document.getElementById('text').textContent = s.text;
  document.getElementById('where').textContent = (k + 1) + ' of ' + steps.length;
  document.querySelectorAll('.cg-on').forEach(g => g.classList.remove('cg-on'));
  s.nodes.forEach(n => titled('node', n).forEach(g => g.classList.add('cg-on')));
  s.edges.forEach(e => titled('edge', e).forEach(g => g.classList.add('cg-on')));
  history.replaceState(null, '', '#step=' + (k + 1));
}
document.getElementById('prev').onclick = () => show(k - 1);
document.getElementById('next').onclick = () => show(k + 1);
document.addEventListener('keydown', e => {
  if (e.key === 'ArrowRight' || e.key === 'ArrowDown' || e.key === ' ') { show(k + 1); e.preventDefault(); }
  if (e.key === 'ArrowLeft' || e.key === 'ArrowUp') { show(k - 1); e.preventDefault(); }
});
const m = location.hash.match(/step=(\\d+)/);
show(m ? parseInt(m[1], 10) - 1 : 0);"""


def _svg(s: Steps, precision: int) -> str:
    return inline_svg(picture(s.result, precision=precision, view=View()))


class Step(TypedDict):
    text: str
    nodes: list[str]  # the boxes to light: the step's node, or the inputs in the last step
    edges: list[str]  # "src->dst", as both SVGs title the edges' groups


def _data(s: Steps, precision: int) -> list[Step]:
    """Per step: its lines, the node it is about and its edges (into it going forward, out of it
    and into it going backward); the last step, the inputs' sums, lights the inputs and their edges."""
    nodes = [[f.node.id] for f in s.forward] + [[b.node.id] for b in s.backward]
    nodes.append([name for name, streams in s.inputs.items() if streams])
    edges = [[f"{e.src}->{e.dst}" for e in f.incoming] for f in s.forward]
    edges += [[f"{e.src}->{e.dst}" for e in (*b.arrived, *(sh.edge for sh in b.shares))] for b in s.backward]
    edges.append([f"{e.src}->{e.dst}" for streams in s.inputs.values() for e in streams])
    return [Step(text=printable_text("\n".join(block)), nodes=nodes[k], edges=edges[k])
            for k, block in enumerate(all_steps(s, precision))]


def to_stepper(s: Steps, precision: int) -> str:
    """The page."""
    g = s.result.graph
    steps_json = json.dumps(_data(s, precision), ensure_ascii=False).replace("</", "<\\/")  # no </script> inside
    parts = page_head(f"{g.name}: step by step", STYLE, script=True)
    if g.doc:
        parts.append(f"<p>{html.escape(printable_text(g.doc))}</p>")
    parts += ['<p><button id="prev">&larr; Prev</button><button id="next">Next &rarr;</button>'
              '<span id="where"></span> (or the arrow keys)</p>',
              '<div class="wrap">', f"<figure>\n{_svg(s, precision).strip()}\n</figure>", '<div id="text"></div>',
              "</div>", f'<script type="application/json" id="steps">{steps_json}</script>',
              f"<script>\n{SCRIPT}\n</script>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"


# ---- one picture per step, for slides --------------------------------------------------------

_GROUP = re.compile(r'(<g\b[^>]*class=")(node|edge)("[^>]*>\s*<title>)([^<]*)(</title>)')
_VIEWBOX = re.compile(r'viewBox="([-\d.]+) ([-\d.]+) ([-\d.]+) ([-\d.]+)"')
_HEIGHT = re.compile(r'(<svg\b[^>]*?\bheight=")([\d.]+)([a-z]*)(")')
LINE = 15  # the caption's line height, in the picture's units


def _lit(svg: str, step: Step) -> str:
    """The picture with the step's nodes and edges drawn in red (their groups get the class cg-on)."""
    wanted = {*(("node", n) for n in step["nodes"]), *(("edge", e) for e in step["edges"])}

    def mark(m: re.Match[str]) -> str:
        on = (m[2], html.unescape(m[4])) in wanted
        return f"{m[1]}{m[2]}{' cg-on' if on else ''}{m[3]}{m[4]}{m[5]}"

    style = f"<style>.cg-on polygon, .cg-on ellipse, .cg-on rect, .cg-on path {{ stroke: {RED}; stroke-width: 3; }}" \
            " .cg-on text { font-weight: bold; }</style>"
    svg = _GROUP.sub(mark, svg)
    return re.sub(r"(<svg\b[^>]*>)", lambda m: m[1] + style, svg, count=1)


def _captioned(svg: str, text: str) -> str:
    """The picture with the step's lines below it: the view box and the height grow to hold them."""
    lines = text.splitlines()
    box = _VIEWBOX.search(svg)
    if box is None:
        return svg
    x0, y0, w, h = (float(v) for v in box.groups())
    extra = LINE * (len(lines) + 1)
    svg = svg.replace(box[0], f'viewBox="{x0:.2f} {y0:.2f} {w:.2f} {h + extra:.2f}"', 1)
    svg = _HEIGHT.sub(lambda m: f"{m[1]}{float(m[2]) * (h + extra) / h:.0f}{m[3]}{m[4]}", svg, count=1)
    caption = "".join(f'<text x="{x0 + 8:.0f}" y="{y0 + h + LINE * (k + 1):.0f}" font-family="monospace" '
                      f'font-size="11" fill="{INK}" text-anchor="start" style="white-space: pre">'
                      f"{svg_text(line)}</text>" for k, line in enumerate(lines))
    return svg.replace("</svg>", caption + "</svg>")


def step_pictures(s: Steps, precision: int) -> list[tuple[str, str]]:
    """(file name, SVG) per step: step-01.svg, ...: the picture with the step lit and its lines below."""
    svg = _svg(s, precision)
    data = _data(s, precision)
    width = len(str(len(data)))
    pictures = []
    for k, step in enumerate(data):
        pictures.append((f"step-{k + 1:0{width}d}.svg", _captioned(_lit(svg, step), step["text"])))
    return pictures
