"""A graph as a neutral picture: boxes and arrows with their texts, before any format.

As in the lecture notes' figures, every edge carries the value of its source in green above
the gradient that flows back along it in red (cg.eval.edges gives the flows, so the streams leaving
a name add up to its gradient). cg/render/dot.py writes a Picture as DOT, Mermaid, SVG and PNG,
cg/render/draw.py as one HTML page, and picks the format.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field

import numpy as np

from cg.errors import UsageError
from cg.eval.edges import compute_edges, formula_text, stream_sums
from cg.eval.interp import Result
from cg.eval.plan import reachable
from cg.graph.composite import call_flows, shown_nodes
from cg.graph.ir import Const, Graph, Node
from cg.printable import printable, printable_text
from cg.render.clusters import MODES, Cluster, bands, clusters, is_gradient_graph
from cg.render.table import arg_text, fmt_value, is_number

GREEN, RED, GREY, INK, BLUE = "#1a7f37", "#cf222e", "#8c959f", "#24292f", "#0969da"
FONT = "Helvetica,Arial,sans-serif"
DIRECTIONS = ("LR", "TB")
FORMATS = ("dot", "mermaid", "svg", "png", "pdf", "html")
DOT_TIMEOUT = 60.0  # seconds; dot's layout can take very long on graphs with thousands of nodes
NO_DOT = ("Graphviz's `dot` program is not installed; it draws svg, png and pdf (install the Debian "
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
    grad: str | None = None  # its total gradient d of / d name (red), when the figure shows gradients
    tangent: str | None = None  # forward mode: d name / d direction (blue)


@dataclass(frozen=True)
class Arrow:
    src: str
    dst: str
    kind: str  # "arg" (name to node), "const" (constant to node) or "end" (out of a result)
    value: str | None  # the value it carries, formatted; None without a run
    grad: str | None  # the gradient flowing back along it; None where nothing flows
    on_path: bool
    formula: str | None = None  # its local derivative as the op's formula in the node's names ("2x")


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

SHOWS = ("both", "values", "grads", "none")


@dataclass(frozen=True)
class View:
    """What a figure shows of a run: values (green), gradients (red, on edges and on nodes), both,
    or none (the figure of an exercise, with blanks); and each edge's formula."""

    show: str = "both"
    formulas: bool = False

    def __post_init__(self) -> None:
        if self.show not in SHOWS:
            raise UsageError.one("CG300", f"show must be one of {', '.join(SHOWS)}, not {self.show!r}")

    @property
    def values(self) -> bool:
        return self.show in ("both", "values")

    @property
    def grads(self) -> bool:
        return self.show in ("both", "grads")



def _text(v: np.ndarray | None, precision: int) -> str | None:
    """A scalar as cg prints it; a tensor with its shape in front of its values or summary."""
    if v is None:
        return None
    shown = fmt_value(v, precision)
    return shown if v.ndim == 0 else f"{list(v.shape)} {shown}"


def op_text(node: Node) -> str:
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
    view: View = View()
    formulas: dict[tuple[str, int], str] = field(default_factory=dict)  # (node, argument) -> "2x"

    def value(self, name: str) -> str | None:
        if self.result is None or not self.view.values:
            return None
        return _text(self.result.values[name], self.precision)

    def flow(self, node: str, arg: int) -> str | None:
        return _text(self.flows.get((node, arg)), self.precision) if self.view.grads else None

    def tangent(self, name: str) -> str | None:
        """Forward mode: d name / d direction, on its box."""
        tangents = None if self.result is None else self.result.tangents
        t = None if tangents is None or not self.view.grads else tangents.get(name)
        return None if t is None else _text(np.asarray(t), self.precision)

    def grad(self, name: str) -> str | None:
        """A name's total gradient, on its box; none in forward mode or off the path."""
        if self.result is None or not self.view.grads or (self.seed is None and not self.flows):
            return None
        g = self.result.grads.get(name)
        return None if g is None or name not in self.result.on_path else _text(np.asarray(g), self.precision)


def _shown(subject: Result | Graph, values: bool, of: str | None, precision: int, calls: bool = False,
           view: View = View()) -> _Shown:
    """calls: composites are drawn as one box, so the flows along their arguments are needed."""
    if not values or not isinstance(subject, Result):
        return _Shown(None, precision, {}, None, view)
    if subject.tangents is not None:  # forward mode: values, and each edge's local derivative
        return _Shown(subject, precision, {}, None, view, _forward_locals(subject, view, precision))
    if of is None:
        return _Shown(subject, precision, {}, None, view)
    edges = compute_edges(subject)
    formulas = {(e.dst, e.arg): text for e in edges
                if view.formulas and (text := formula_text(e, safe=printable)) is not None}
    total = subject.grads.get(of)
    # The output's gradient is the seed plus what its users send back (when it is used).
    seed = None if total is None else np.asarray(total - stream_sums(edges).get(of, 0.0))
    flows = {(e.dst, e.arg): e.flow for e in edges}
    if calls:  # a call's argument carries back what flows along the inner edges it feeds
        flows |= call_flows(subject.graph, flows)
    return _Shown(subject, precision, flows, seed, view, formulas)


def _forward_locals(result: Result, view: View, precision: int) -> dict[tuple[str, int], str]:
    """Forward mode draws the local derivative on each edge, as the notes do: its formula with its
    value with --formulas, else the value (scalar edges; a tensor edge's is a Jacobian, not drawn)."""
    found = {}
    for e in compute_edges(result):
        number = None if e.local is None or e.local.size != 1 else fmt_value(e.local.reshape(()), precision)
        text = formula_text(e, safe=printable) if view.formulas else None
        if shown := f"{text} = {number}" if text and number and not is_number(text) else text or number:
            found[(e.dst, e.arg)] = shown
    return found


def _node_parts(node: Node, live: bool, of: str | None, shown: _Shown) -> tuple[list[Box], list[Arrow]]:
    """A node's box, and an arrow per argument: from a name, or from a small constant box."""
    boxes = [Box(node.id, "node", node.id, op_text(node), node.doc, live, node.id == of, shown.grad(node.id),
                 shown.tangent(node.id))]
    arrows = []
    for k, arg in enumerate(node.args):
        if isinstance(arg, Const):
            boxes.append(Box(f"{node.id}.in{k}", "const", arg_text(arg), "", "", live))
            arrows.append(Arrow(f"{node.id}.in{k}", node.id, "const", None, None, live))
        else:
            arrows.append(Arrow(arg, node.id, "arg", shown.value(arg), shown.flow(node.id, k) if live else None, live,
                                shown.formulas.get((node.id, k))))
    return boxes, arrows


def picture(subject: Result | Graph, *, values: bool = True, precision: int = 4, composites: str = "node",
            view: View | None = None) -> Picture:
    """Boxes for inputs, nodes and constants, and one arrow per argument (mul(x, x) has two),
    plus an arrow out of every output and every unused name to show the value it ends with.
    A composite is one box (composites="node") or a cluster around its inner nodes ("cluster").
    `view` picks the numbers shown (values, gradients, both or none) and the edges' formulas."""
    view = view or View()
    if composites not in MODES:
        raise UsageError.one("CG300", f"composites must be node or cluster, not {composites!r}")
    graph = subject.graph if isinstance(subject, Result) else subject
    reverse = isinstance(subject, Result) and subject.tangents is None
    of = subject.of if isinstance(subject, Result) and reverse else (graph.outputs[0] if graph.outputs else None)
    banded = is_gradient_graph(graph)
    if banded and view.show == "both":  # d(first output)/d(a backward node) is 0 by construction: noise
        view = View("values", view.formulas)
    # A gradient graph's backward nodes lie on no path to its first output, by construction: not grey.
    on_path = reachable(graph, of, downstream=False) if of is not None and not banded else frozenset(graph.avals)
    shown = _shown(subject, values, of, precision, calls=composites == "node", view=view)
    input_op = {"float": "input", "int": "input (int)"}
    boxes = [Box(i.name, "input", i.name, input_op[i.aval.dtype], i.doc, i.name in on_path, grad=shown.grad(i.name),
                 tangent=shown.tangent(i.name)) for i in graph.inputs]
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
            grad = _text(shown.seed, precision) if name == of and view.grads else None
            arrows.append(Arrow(name, f"{name}.out", "end", shown.value(name), grad, live))
    legend: tuple[tuple[str, str], ...] = ()
    if shown.result is not None and view.values:
        legend = ((GREEN, "green: the value an edge carries (forward pass)"),)
    if shown.result is not None and view.grads and (shown.flows or shown.seed is not None):
        legend += ((RED, f"red: the gradient d {of} / d value flowing back along an edge, and each name's total"
                    " on its box (backward pass)"),)
    if isinstance(subject, Result) and subject.tangents is not None and view.grads:
        wrt = subject.wrt[0] if len(subject.wrt) == 1 else "the direction"
        legend += ((BLUE, f"blue: d name / d {wrt} on each box, the forward derivative (tangent)"),)
    if any(a.formula for a in arrows):
        legend += ((INK, "∂: each edge's local derivative d node / d argument" + (", as its op's formula"
                                                                                   if view.formulas else "")),)
    keys = [b.key for b in boxes]
    found = bands(graph, keys) if banded else clusters(graph, keys) if composites == "cluster" else ()
    return Picture(graph.name, graph.doc, of, legend, tuple(boxes), tuple(arrows), found)


# ---- text in pictures ---------------------------------------------------------------------


def clean(text: str) -> str:
    """No control characters (XML and DOT refuse them, terminals obey them): tabs become spaces,
    newlines stay, the others are printable's escapes (`\\x1b`)."""
    return printable_text(text.replace("\t", " "))


def svg_text(text: str) -> str:
    """One line of text in SVG or HTML."""
    return html.escape(printable(text.replace("\n", " ")))


def dot_label(text: str) -> str:
    """Text inside a DOT HTML-like label. Graphviz reads backslash escapes (\\N is the node's
    name) even there, after the XML entities, so a backslash is doubled to stay one."""
    return html.escape(clean(text), quote=True).replace("\\", "\\\\").replace("\n", '<BR ALIGN="LEFT"/>')


def dot_quote(text: str) -> str:
    """A DOT double-quoted string, for ids (names, which need no escapes) and attribute values."""
    body = clean(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{body}"'


def check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise UsageError.one("CG300", f"direction must be LR or TB, not {direction!r}")
