"""`cg report`: one Markdown file about a run, to put in an issue, a pull request or course
notes: the graph's name and doc, the inputs used, the Mermaid picture, the value and
gradient table, and the command that makes the same file again.

Only click is imported here: numpy and the rest load when the command runs, so `cg --help`
stays fast.
"""

from __future__ import annotations

from typing import Any

import click

from cg.cli.common import guard, inner_of, load_document, warn_nonfinite, write_output
from cg.cli.options import inputs_option, nonfinite_option, output_option, precision_option

EPILOG = """\b
Exit codes: 0 ok, 1 invalid graph or failed run (NaN/Inf), 2 usage error."""


@click.command(epilog=EPILOG)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@inputs_option
@click.option("--of", metavar="NODE", help="The output to differentiate (default: the first output).")
@output_option
@precision_option
@nonfinite_option
def report(file: str, inputs: tuple[str, ...], of: str | None, output: str | None, precision: int,
           nonfinite: str) -> None:
    """Run FILE and write a Markdown report: name, doc, inputs, picture, values and gradients,
    and the command line that reproduces it (to stdout, or to -o FILE)."""

    guard(_report)(file, inputs, of, output, precision, nonfinite)


def _report(file: str, inputs: tuple[str, ...], of: str | None, output: str | None, precision: int,
            nonfinite: str) -> None:
    from cg.cli.values import parse_inputs
    from cg.eval.interp import run
    from cg.graph.builder import build

    graph = build(load_document(file))
    if inner_of(graph, of):
        from cg.graph.composite import expanded

        graph = expanded(graph)
    given = parse_inputs(list(inputs))
    from cg.cli.budget import require_run

    require_run(graph, given, edges=True, command="cg report")  # its picture carries every edge's flow
    result = run(graph, given, of=of, on_nonfinite=nonfinite)
    if result.nonfinite:
        warn_nonfinite(result.nonfinite)
    picture = _mermaid(result, precision)
    if picture is None:
        click.echo("cg: warning: no picture in the report (cg.render.draw is not available)", err=True)
    command = _command(file, inputs, of, output, precision, nonfinite)
    write_output(markdown_report(result, set(given), picture, command, precision), output)


def _mermaid(result: Any, precision: int) -> str | None:
    """The Mermaid source of the picture, or None when cg.render.draw is not there."""
    try:
        from cg.render.dot import to_mermaid
    except ImportError:
        return None
    text: str = to_mermaid(result, values=True, precision=precision)
    return text


def _command(file: str, inputs: tuple[str, ...], of: str | None, output: str | None, precision: int,
             nonfinite: str) -> str:
    """The options as parsed, in a fixed order, quoted for a POSIX shell (control characters as
    $'\x1b' escapes: the line is shown, and copied into a shell)."""
    from cg.printable import shell_word

    words = ["cg", "report", file]
    for text in inputs:
        words += ["--inputs", text]
    if of is not None:
        words += ["--of", of]
    if precision != 4:
        words += ["--precision", str(precision)]
    if nonfinite != "error":
        words += ["--nonfinite", nonfinite]
    if output is not None and output != "-":
        words += ["-o", _portable(output)]
    return " ".join(map(shell_word, words))


def _portable(path: str) -> str:
    """The -o path as the report shows it: relative to the current folder when it is inside it,
    else the file's name alone, so a report never carries the absolute paths of the machine that
    wrote it."""
    import os

    full = os.path.abspath(path)
    here = os.getcwd()
    if os.path.commonpath([full, here]) == here:
        return os.path.relpath(full, here)
    return os.path.basename(full)


def fence(body: str, info: str = "") -> str:
    """A fenced code block whose fence is longer than any run of backticks in the body."""
    import re

    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{info}\n{body.rstrip()}\n{ticks}\n"


def markdown_report(result: Any, given: set[str], picture: str | None, command: str, precision: int) -> str:
    """The whole report. `picture` is Mermaid source, with or without its ```mermaid fence."""
    from cg.render.export import md_code, md_text, to_markdown
    from cg.render.table import derivative_column

    g = result.graph
    parts = [f"# {md_text(' '.join(g.name.split())) or 'graph'}\n"]
    if g.doc.strip():
        parts.append(md_text(g.doc) + "\n")
    parts.append(f"File {md_code(g.file)}. {_meaning(result, derivative_column(result))}\n")
    if g.inputs:
        parts.append("## Inputs\n\n" + _inputs_table(result, given, precision))
    if picture is not None:
        mermaid = picture.strip()
        # Already fenced: keep the fence it came with.
        parts.append("## Graph\n\n" + (mermaid + "\n" if mermaid.startswith("```") else fence(mermaid, "mermaid")))
    parts.append("## Values and derivatives\n\n" + to_markdown(result, precision))
    parts.append("## Reproduce\n\n" + fence(command, "sh"))
    return "\n".join(parts)


def _inputs_table(result: Any, given: set[str], precision: int) -> str:
    from cg.render.export import md_cell, md_code, md_table
    from cg.render.table import fmt_value

    body = [[md_code(i.name), md_cell(fmt_value(result.values[i.name], precision)),
             "command line" if i.name in given else "file default", md_cell(i.doc)] for i in result.graph.inputs]
    return md_table(("input", "value", "from", "doc"), body, right=("value",))


def _meaning(result: Any, column: str) -> str:
    """What the derivative column holds, in words."""
    from cg.render.export import md_cell

    if column == "tangent":
        return f"Forward mode: `tangent` is d node / d ({md_cell(', '.join(result.wrt))})."
    if result.of is None:
        return "No output is differentiated."
    return f"`grad` is d {md_cell(result.of)} / d node (reverse mode)."
