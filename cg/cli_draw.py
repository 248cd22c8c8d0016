"""`cg draw`: a picture of a graph with every edge's value (green) and the gradient flowing
back along it (red), as Graphviz DOT, Mermaid, SVG, PNG or one self-contained HTML page.

Only click is imported here: numpy and the rest load when the command runs, so `cg --help`
stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cg.cli_options import inputs_option, output_option, precision_option

EPILOG = """\b
Formats: dot, mermaid and html need nothing else; svg and png need Graphviz's
`dot` (Debian package graphviz). html uses dot when it is there.
Exit codes: 0 ok, 1 invalid graph or failed run, 2 usage error
(including svg or png without Graphviz)."""

if TYPE_CHECKING:
    from cg.graph import Graph
    from cg.interp import Result

FORMATS = ("dot", "mermaid", "svg", "png", "html")  # as cg.draw.FORMATS, which loads numpy: not imported here
SUFFIXES = {".dot": "dot", ".gv": "dot", ".mmd": "mermaid", ".mermaid": "mermaid", ".svg": "svg",
            ".png": "png", ".html": "html", ".htm": "html"}


@click.command(epilog=EPILOG)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@inputs_option
@output_option
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS),
              help="The picture's format (default: from the suffix of -o, else dot).")
@click.option("--no-values", is_flag=True, help="Draw the graph alone: no run, no values or gradients.")
@click.option("--direction", type=click.Choice(["LR", "TB"], case_sensitive=False), default="LR",
              metavar="[LR|TB]", show_default=True, help="Left to right, or top to bottom.")
@click.option("--composites", type=click.Choice(["node", "cluster"]), default="node", show_default=True,
              help="A call of a function as one box (node), or its inner nodes in a box around them (cluster).")
@precision_option
def draw(file: str, inputs: tuple[str, ...], output: str | None, fmt: str | None, no_values: bool,
         direction: str, composites: str, precision: int) -> None:
    """Draw FILE: each edge carries the value of its source (green) above the gradient that
    flows back along it (red); nodes with no path to the differentiated output are grey.

    \b
    cg draw graphs/log3x2p5xy.yaml --inputs x=2,y=3 -o picture.svg
    cg draw graphs/log3x2p5xy.yaml --inputs x=2,y=3 -f mermaid
    cg draw graphs/logreg.yaml --no-values | dot -Tpdf > graph.pdf"""
    # cg.cli imports this module while it loads: reach for its helpers only when run.
    from cg.cli import _guard

    _guard(_draw)(file, inputs, output, fmt, no_values, direction.upper(), precision, composites)


def _format(fmt: str | None, output: str | None) -> str:
    """--format, else the suffix of -o, else dot; a suffix that contradicts --format is refused
    rather than writing PNG bytes into a file called .svg."""
    from pathlib import PurePath

    if output is None or output == "-":
        return fmt or "dot"
    implied = SUFFIXES.get(PurePath(output).suffix.lower())
    if fmt is None and implied is None:
        known = ", ".join(SUFFIXES)
        raise click.UsageError(f"cannot tell the format from {output!r}: give --format, or a suffix ({known})")
    if fmt is not None and implied is not None and implied != fmt:
        raise click.UsageError(f"--format {fmt} does not fit the suffix of {output!r} ({implied})")
    return fmt or implied or "dot"


def _draw(file: str, inputs: tuple[str, ...], output: str | None, fmt: str | None, no_values: bool,
          direction: str, precision: int, composites: str = "node") -> None:
    import sys

    from cg.cli import _is_tty, _load, write_output
    from cg.draw import render, require_dot
    from cg.graph import build

    fmt = _format(fmt, output)
    to_stdout = output is None or output == "-"
    if fmt == "png" and to_stdout and _is_tty(sys.stdout):
        raise click.UsageError("PNG is binary and stdout is a terminal: give -o FILE.png, or redirect")
    if no_values and inputs:
        raise click.UsageError("--inputs is for drawing values; --no-values draws the graph alone")
    if fmt in ("svg", "png"):
        require_dot(fmt)  # before any work: the error says how to install Graphviz
    graph = build(_load(file))
    subject = graph if no_values else _run(graph, inputs)
    picture = render(subject, fmt, values=not no_values, direction=direction, precision=precision,
                     composites=composites)
    if isinstance(picture, str):
        write_output(picture, output)
    elif to_stdout:
        sys.stdout.buffer.write(picture)
        sys.stdout.buffer.flush()
    else:
        _write_bytes(picture, output or "")


def _run(graph: Graph, inputs: tuple[str, ...]) -> Result:
    """The run whose values are drawn; a missing input also suggests --no-values."""
    from cg.errors import Diagnostic, UsageError
    from cg.interp import run
    from cg.values import parse_inputs

    try:
        return run(graph, parse_inputs(list(inputs)))
    except UsageError as e:
        if not any(d.code == "CG302" for d in e.diagnostics):
            raise
        hint = " (or draw the graph without values: --no-values)"
        raise UsageError([Diagnostic(d.code, d.message + hint * (d.code == "CG302"), d.file, d.pos, d.node)
                          for d in e.diagnostics]) from None


def _write_bytes(data: bytes, output: str) -> None:
    """Write a file only once all of it exists: a temporary file beside it, then a rename."""
    import os
    import tempfile
    from pathlib import Path

    target = Path(output)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except OSError as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise click.UsageError(f"cannot write {output}: {e.strerror or e}") from None
