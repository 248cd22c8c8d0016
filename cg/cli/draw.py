"""`cg draw`: a picture of a graph with every edge's value (green) and the gradient flowing
back along it (red), as Graphviz DOT, Mermaid, SVG, PNG or one self-contained HTML page.

Only click is imported here: numpy and the rest load when the command runs, so `cg --help`
stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from cg.cli.common import before_writing, guard, is_tty, load_document, shown, write_output
from cg.cli.options import inputs_option, output_option, precision_option

EPILOG = """\b
Formats: dot, mermaid and html need nothing else; svg, png and pdf need
Graphviz's `dot` (Debian package graphviz). html uses dot when it is there.
Exit codes: 0 ok, 1 invalid graph or failed run, 2 usage error
(including svg, png or pdf without Graphviz)."""

if TYPE_CHECKING:
    from cg.eval.interp import Result
    from cg.eval.plan import Report
    from cg.graph.ir import Graph

# More inputs and nodes than this make a picture nobody can read: the HTML page's picture of a
# chain of 2,000 is 460,000 px wide (228,000 px tall with TB), and Mermaid's renderer refuses a
# text of more than 50,000 characters by default (a chain of ~700). cg is quick at this size
# (0.5 s in any format, start-up included; 100,000 nodes take 8 s and a 53 MB page). --force.
DRAW_LIMIT = 2_000
FORMATS = ("dot", "mermaid", "svg", "png", "pdf", "html")  # as cg.render.draw.FORMATS (which loads numpy)
SUFFIXES = {".dot": "dot", ".gv": "dot", ".mmd": "mermaid", ".mermaid": "mermaid", ".svg": "svg",
            ".png": "png", ".pdf": "pdf", ".html": "html", ".htm": "html"}


@click.command(epilog=EPILOG)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@inputs_option
@output_option
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS),
              help="The picture's format (default: from the suffix of -o, else dot).")
@click.option("--no-values", is_flag=True, help="Draw the graph alone: no run, no values or gradients.")
@click.option("--direction", type=click.Choice(["LR", "TB"], case_sensitive=False), metavar="[LR|TB]",
              help="Left to right (the default), or top to bottom (the default with --composites cluster: "
              "a deep graph then fits a slide).")
@click.option("--composites", type=click.Choice(["node", "cluster"]), default="node", show_default=True,
              help="A call of a function as one box (node), or its inner nodes in a box around them (cluster).")
@click.option("--force", is_flag=True,
              help=f"Draw a picture of more than {DRAW_LIMIT:,} inputs and nodes all the same (too big to read: "
              "refused without this, CG322).")
@click.option("--show", type=click.Choice(["both", "values", "grads", "none"]), default="both", show_default=True,
              help="The numbers drawn: values (green), gradients (red: on each edge, and each name's total on its"
              " box), both, or none (a figure with blanks, for an exercise).")
@click.option("--of", metavar="NODE", help="The output to differentiate (default: the first output).")
@click.option("--formulas", is_flag=True, help="Write each edge's local derivative as its op's formula (∂: 2x).")
@click.option("--wrt", multiple=True, metavar="INPUT",
              help="Forward mode: each box shows d name / d INPUT (blue), each edge its local derivative.")
@click.option("--tangent", "tangent_texts", multiple=True, metavar="NAME=VALUE,...",
              help="Forward mode along a direction, e.g. v=[1,0,0]. Repeatable.")
@precision_option
def draw(file: str, inputs: tuple[str, ...], output: str | None, fmt: str | None, no_values: bool,
         direction: str | None, composites: str, show: str, of: str | None, formulas: bool, wrt: tuple[str, ...],
         tangent_texts: tuple[str, ...], precision: int, force: bool) -> None:
    """Draw FILE: each edge carries the value of its source (green) above the gradient that
    flows back along it (red); nodes with no path to the differentiated output are grey.

    \b
    cg draw graphs/log3x2p5xy.yaml --inputs x=2,y=3 -o picture.svg
    cg draw graphs/log3x2p5xy.yaml --inputs x=2,y=3 -f mermaid
    cg draw graphs/logreg.yaml --no-values | dot -Tpdf > graph.pdf
    cg draw graphs/log3x2p5xy.yaml --show none --formulas -o exercise.html"""
    if no_values and (show != "both" or of is not None or formulas or wrt or tangent_texts):
        raise click.UsageError("--show, --of, --formulas, --wrt and --tangent need a run: leave out --no-values")
    if of is not None and (wrt or tangent_texts):
        raise click.UsageError("--of is for the backward pass; forward mode takes --wrt or --tangent")
    direction = (direction or ("TB" if composites == "cluster" else "LR")).upper()
    guard(_draw)(file, inputs, output, fmt, no_values, direction, precision, composites, force,
                 (show, of, formulas), (wrt, tangent_texts))


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
          direction: str, precision: int, composites: str = "node", force: bool = False,
          view: tuple[str, str | None, bool] = ("both", None, False),
          forward: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())) -> None:
    import sys

    from cg.graph.builder import build
    from cg.render.dot import require_dot
    from cg.render.draw import render
    from cg.render.picture import View

    fmt = _format(fmt, output)
    to_stdout = output is None or output == "-"
    if fmt in ("png", "pdf") and to_stdout and is_tty(sys.stdout):
        raise click.UsageError(f"{fmt.upper()} is binary and stdout is a terminal: give -o FILE.{fmt}, or redirect")
    if no_values and inputs:
        raise click.UsageError("--inputs is for drawing values; --no-values draws the graph alone")
    if fmt in ("svg", "png", "pdf"):
        require_dot(fmt)  # before any work: the error says how to install Graphviz
    from cg.progress import progress

    # On a terminal, a bar once the work has taken half a second (cg/progress.py), erased at the end.
    bar = click.get_current_context().with_resource(progress(f"reading {shown(file)}"))
    graph = build(load_document(file))
    size = _boxes(graph, composites)
    if size > DRAW_LIMIT and not force:
        from cg.errors import UsageError

        raise UsageError.one("CG322", f"the picture would have {size:,} inputs and nodes, more than anyone can "
                             f"read (the limit is {DRAW_LIMIT:,}); draw a part of the graph, or give --force "
                             "to draw it all the same", file=file)
    if not no_values:
        bar.step(f"running {len(graph.nodes):,} node{'s' * (len(graph.nodes) != 1)}")
    show, of, formulas = view
    tangents = None
    if forward[0] or forward[1]:
        from cg.cli.run import tangents_of

        tangents = tangents_of(*forward)
    subject = graph if no_values else _run(graph, inputs, bar.hook, of, tangents)
    bar.step(f"drawing {size:,} inputs and nodes as {fmt}")
    picture = render(subject, fmt, values=not no_values, direction=direction, precision=precision,
                     composites=composites, view=View(show, formulas))
    before_writing(bar, None if to_stdout else output, "the picture")
    write_output(picture, output)  # text or PNG bytes; a file gets the umask's mode, PNG included


def _boxes(graph: Graph, composites: str) -> int:
    """The inputs and nodes the picture draws: a call of a function is one, unless drawn as a cluster."""
    from cg.graph.composite import shown_nodes

    return len(graph.inputs) + len(graph.nodes if composites == "cluster" else shown_nodes(graph))


def _run(graph: Graph, inputs: tuple[str, ...], progress: Report | None = None, of: str | None = None,
         tangents: dict[str, Any] | None = None) -> Result:
    """The run whose values are drawn; a missing input also suggests --no-values."""
    from cg.cli.budget import require_run
    from cg.cli.values import parse_inputs
    from cg.errors import Diagnostic, UsageError
    from cg.eval.interp import run

    given = parse_inputs(list(inputs))
    require_run(graph, given, edges=True, command="cg draw")  # every edge carries its flow, as --edges
    try:
        return run(graph, given, of=of, progress=progress, tangents=tangents)
    except UsageError as e:
        if not any(d.code == "CG302" for d in e.diagnostics):
            raise
        hint = " (or draw the graph without values: --no-values)"
        raise UsageError([Diagnostic(d.code, d.message + hint * (d.code == "CG302"), d.file, d.pos, d.node)
                          for d in e.diagnostics]) from None
