"""`cg new --expr`: write a graph file from an expression, one node per operation (cg/graph/expr.py
says how an expression becomes nodes and what it may contain).

Only click is imported here: numpy and the rest load when the command runs, so `cg --help`
stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cg.cli.common import guard, write_output
from cg.cli.options import output_option

if TYPE_CHECKING:
    from cg.errors import Diagnostic
    from cg.graph.expr import ExprGraph

EPILOG = """\b
Example: cg new --expr "log(3*x**2 + 5*x*y)" -o g.yaml, then cg run g.yaml --inputs x=2,y=3
\b
Exit codes: 0 ok, 1 an expression that is not allowed (or a graph that does not validate),
2 usage error (including an existing -o FILE without --force)."""
DEFAULT_OUTPUT = "z"
CARET_WINDOW = 60  # characters of the expression shown each side of an error's column


@click.command(epilog=EPILOG)
@click.option("-e", "--expr", "text", required=True, metavar="EXPR",
              help='The expression, e.g. "log(3*x**2 + 5*x*y)"; its free names become the inputs.')
@output_option
@click.option("--force", is_flag=True, help="Replace -o FILE if it exists.")
@click.option("--name", metavar="NAME", help="The graph's name (default: the stem of -o FILE, else 'expr').")
@click.option("--output-node", "out", metavar="ID",
              help=f"The id of the last node, the graph's output (default: {DEFAULT_OUTPUT}, unless that is a"
                   " name in the expression; then the last node keeps its letter).")
@click.option("-i", "--inputs", "inputs", multiple=True, metavar="NAME=VALUE,...",
              help="Default values for inputs, as for `cg run`: x=2,v=[1,2,3]. Repeatable.")
@click.option("--shape", "shapes", multiple=True, metavar="NAME=[DIMS],...",
              help="Shapes of inputs: v=[3],W=[10,784] (default: scalars, or the shape of the --inputs value)."
                   " Repeatable.")
def new(text: str, output: str | None, force: bool, name: str | None, out: str | None,
        inputs: tuple[str, ...], shapes: tuple[str, ...]) -> None:
    """Write a graph file computing EXPR: one node per operation (a, b, c, ...), the last one
    the output (z), each free name a float scalar input with no value (to stdout, or -o FILE).

    Allowed: numbers, names, + - * / ** @, unary -, parentheses, and ops called by name with
    their attributes as keywords: log(x), maximum(x, 0), sum(v, axis=0, keepdims=True)."""

    guard(_new)(text, output, force, name, out, inputs, shapes)


def _new(text: str, output: str | None, force: bool, name: str | None, out: str | None,
         inputs: tuple[str, ...], shapes: tuple[str, ...]) -> None:
    from cg.errors import CgError
    from cg.graph.expr import NAME_RE, ExprError, parse_expr
    from cg.printable import printable

    to_file = output is not None and output != "-"
    if to_file and Path(str(output)).exists() and not force:
        raise click.UsageError(f"{printable(str(output))} exists; --force replaces it")
    if name is not None and any(0xD800 <= ord(ch) < 0xE000 for ch in name):  # bytes that are not UTF-8
        raise click.UsageError(f"--name {printable(name)}: not UTF-8 text")
    if out is not None and not NAME_RE.match(out):
        raise click.UsageError(f"--output-node {out!r}: expected a name (letters, digits and _, not starting"
                               " with a digit)")
    try:
        graph = parse_expr(text, reserved=(out or DEFAULT_OUTPUT,))
        last = _output_id(graph, out)
        values, dims = _input_specs(graph, inputs, shapes)
        yaml_text = _checked(_graph_text(graph, last, text, _graph_name(name, output), values, dims), graph, last)
    except (ExprError, CgError) as e:
        if e.exit_code == 2:
            raise
        _report(e.diagnostics, text)
        raise SystemExit(1) from None
    write_output(yaml_text, output)
    if to_file:
        from cg.printable import printable

        n, names = len(graph.nodes), ", ".join(graph.inputs) or "(none)"
        click.echo(f"wrote {printable(str(output))}: {n} node{'s' * (n != 1)}, inputs {names}, output {last}", err=True)


def _output_id(graph: ExprGraph, out: str | None) -> str:
    if out is None:
        return graph.output if DEFAULT_OUTPUT in graph.inputs else DEFAULT_OUTPUT
    if out in graph.inputs:
        raise click.UsageError(f"--output-node {out}: '{out}' is a name in the expression; pick another id")
    return out


def _graph_name(name: str | None, output: str | None) -> str:
    if name is not None:
        return name
    return Path(output).stem if output is not None and output != "-" else "expr"


def _input_specs(graph: ExprGraph, inputs: tuple[str, ...], shapes: tuple[str, ...]) -> tuple[
        dict[str, Any], dict[str, list[int]]]:
    """Default values (--inputs) and shapes (--shape) by input name, as plain Python data."""
    from cg.cli.values import parse_inputs

    values = {k: v.tolist() for k, v in parse_inputs(list(inputs)).items()}
    dims: dict[str, list[int]] = {}
    for k, v in parse_inputs(list(shapes), option="--shape", what="shape").items():
        listed = v.reshape(-1).tolist() if v.ndim <= 1 else None
        if listed is None or any(not float(n).is_integer() or n < 0 for n in listed):
            raise click.UsageError(f"--shape {k}: expected a list of sizes like [10,784], got {v.tolist()}")
        dims[k] = [int(n) for n in listed]
    for option, given in (("--inputs", values), ("--shape", dims)):
        for k in given:
            if k not in graph.inputs:
                raise click.UsageError(f"{option}: '{k}' is not a name in the expression"
                                       f" (its names: {', '.join(graph.inputs) or 'none'})")
    return values, dims


def _graph_text(graph: ExprGraph, last: str, text: str, name: str, values: dict[str, Any],
                dims: dict[str, list[int]]) -> str:
    """The graph file; cg.fmt.write makes it canonical afterwards."""
    from cg.ops import REGISTRY

    ints = {a for n in graph.nodes for i, a in enumerate(n.args) if isinstance(a, str) and a in graph.inputs
            and i in REGISTRY[n.op].int_args}  # e.g. the i of index(v, i)
    doc = " ".join(text.split())
    lines = ["cg: 1", f"name: {json.dumps(name)}", f"doc: {json.dumps(doc)}"]
    if graph.inputs:
        lines.append("inputs:")
    for k in graph.inputs:
        spec = {"value": values.get(k), "shape": dims.get(k), "dtype": "int" if k in ints else None}
        given = {key: v for key, v in spec.items() if v is not None}
        lines.append(f"  {k}: {_flow(given['value'] if list(given) == ['value'] else given)}")  # short form
    lines.append("nodes:")
    rename = {graph.output: last}
    for n in graph.nodes:
        args = ", ".join(_flow(rename.get(a, a) if isinstance(a, str) else a) for a in n.args)
        attrs = "".join(f", {key}: {_flow(v)}" for key, v in n.attrs.items())
        lines.append(f"  {rename.get(n.id, n.id)}: {{op: {n.op}, in: [{args}]{attrs}}}")
    lines.append(f"outputs: [{last}]")
    return "\n".join(lines) + "\n"


def _flow(value: Any) -> str:
    """A value in YAML flow style: numbers as Python spells them (1e-05 reads back), lists, maps."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, str) else repr(value)


def _checked(yaml_text: str, graph: ExprGraph, last: str) -> str:
    """The canonical text (cg fmt's), once the graph is valid; its problems are placed in the
    expression (a node's column is where its operation is written)."""
    from cg.errors import CgError, Diagnostic, GraphError, Pos
    from cg.fmt.write import format_text

    try:
        return format_text(yaml_text, "<new>")
    except CgError as e:
        if e.exit_code == 2:
            raise
        cols = {n.id: n.col for n in graph.nodes} | {last: graph.nodes[-1].col}
        hint = " (inputs are float scalars unless --shape or --inputs says otherwise)"
        raise GraphError([
            Diagnostic(d.code, d.message + (hint if d.code in ("CG120", "CG121") else ""), "expr",
                       Pos(1, cols.get(d.node or "", 1)), d.node)
            for d in e.diagnostics]) from None


def _report(diags: list[Diagnostic], text: str) -> None:
    """Each problem as `expr:1:COL: message [CODE]`, then the expression with a caret under COL."""
    from cg.render.diagnostics import plain

    shown = "".join(" " if ch in "\t\n\r" else ch if ch.isprintable() else "?" for ch in text)
    for d in diags:
        click.echo(plain(d), err=True)
        if d.pos is None or not shown or d.pos.col > len(shown) + 1:
            continue
        start = max(0, d.pos.col - 1 - CARET_WINDOW)
        piece = shown[start:d.pos.col - 1 + CARET_WINDOW]
        lead = "..." if start else ""
        tail = "..." if start + len(piece) < len(shown) else ""
        click.echo(f"  {lead}{piece}{tail}\n  {' ' * (len(lead) + d.pos.col - 1 - start)}^", err=True)
