"""Gradient tables for export: CSV for spreadsheets and pandas, Markdown for READMEs and
issues, LaTeX for papers, and HTML for notebooks.

CSV is long ("tidy"): columns id, op, inputs, shape, index, value, grad; one row per element
of every input and node, in topological order. A scalar is one row with an empty index; a
tensor is one row per entry in C order, its index written like its shape (`[1, 0]`); an empty
tensor is one row with empty index, value and derivative. We chose this over a JSON array
per cell because every value and gradient cell is then a plain number: a spreadsheet can
sort, filter, sum and chart the column, and `pandas.read_csv` gives float64 columns at once
(`df[df.id == "W"].value.to_numpy().reshape(shape)` recovers a tensor), where JSON cells
would be text to parse row by row in both.

Numbers have full float64 precision (`repr`: they read back to the same float), integers
stay integers, NaN and infinities are `nan`, `inf`, `-inf` (Python's float() and pandas read
them back; a spreadsheet shows them as text), and a missing derivative (an integer value) is
an empty cell. Constants in the inputs column are exact too (`3.0, a`). Cells hold only ids,
op names and numbers, never free text, so a file cannot smuggle a spreadsheet formula in (nor
a control character: the text cells go through cg.printable all the same, a no-op on them).
Lines end in "\\n": the text is written in text mode, which gives the platform's ending.
iter_csv gives the text in pieces of CHUNK lines, so a result of any size is written in little
memory.

Markdown, LaTeX and HTML show control characters in names and docs as escapes (cg.printable).

Markdown and LaTeX show the terminal table (cg.render.table.rows: same columns and precision).
Forward-mode results export the `tangent` column instead of `grad` in every format.
"""

from __future__ import annotations

import csv
import html
import io
import itertools
import math
import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from cg.eval.interp import Result
from cg.graph.composite import shown_nodes
from cg.graph.ir import Const
from cg.printable import printable, printable_lines
from cg.render.table import CHUNK, derivative, derivative_column, rows

NUMERIC = ("value", "grad", "tangent")  # right-aligned columns


# ---- CSV ----------------------------------------------------------------------------


def exact(v: Any) -> str:
    """A number as text that reads back to the same float64 (or int)."""
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    x = float(v)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(x)


def _nested(v: Any) -> str:
    """A constant argument as a nested list of exact numbers: 3.0, [1.0, 2.0]."""
    if isinstance(v, list):
        return "[" + ", ".join(_nested(e) for e in v) + "]"
    return exact(v)


def _arg(a: str | Const) -> str:
    return a if isinstance(a, str) else _nested(a.value.tolist())


def _entries(result: Result) -> Iterator[tuple[str, str, str]]:
    """(id, op, inputs text) for every input and node, in topological order. They are checked
    names and numbers; printable all the same, as every cell cg writes."""
    for inp in result.graph.inputs:
        yield printable(inp.name), "input", ""
    for node in shown_nodes(result.graph):  # a composite as one row, unless shown expanded
        yield printable(node.id), printable(node.op.name), printable(", ".join(_arg(a) for a in node.args))


def csv_rows(result: Result) -> Iterator[list[str]]:
    """The header, then one row per element of every input and node (a Python list per row:
    iter_csv writes the same text faster)."""
    yield ["id", "op", "inputs", "shape", "index", "value", derivative_column(result)]
    for name, op, ins in _entries(result):
        value = result.values[name]
        d = derivative(result, name)
        values = value.ravel().tolist()
        derivs = [""] * len(values) if d is None else [exact(x) for x in np.ravel(d).tolist()]
        shape = str(list(value.shape))
        if not values:  # an empty tensor still gets its row, or the node would vanish
            yield [name, op, ins, shape, "", "", ""]
        for idx, v, g in zip(np.ndindex(value.shape), values, derivs):
            yield [name, op, ins, shape, str(list(idx)) if idx else "", exact(v), g]


def _csv_line(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    return out.getvalue()


def _index_texts(shape: tuple[int, ...], start: int, stop: int) -> Iterator[str]:
    """The index cells of entries start..stop (C order), quoted as the csv module quotes them
    ("[1, 0]" holds the delimiter; "[3]" does not)."""
    if len(shape) == 1:
        return map("[{}]".format, range(start, stop))
    idx = np.unravel_index(np.arange(start, stop), shape)
    return map(('"[' + ", ".join(["{}"] * len(shape)) + ']"').format, *(a.tolist() for a in idx))


def _tensor_lines(prefix: str, value: np.ndarray, d: np.ndarray | None) -> Iterator[str]:
    """The lines of one input or node, CHUNK entries at a time: numbers as repr writes them (what
    exact() gives for the floats and ints of tolist: nan, inf, -inf included), no Python loop."""
    if value.ndim == 0:
        yield f"{prefix},{exact(value.item())},{'' if d is None else exact(np.asarray(d).item())}\n"
        return
    line = prefix.replace("{", "{{").replace("}", "}}") + "{},{},{}\n"
    for start in range(0, value.size, CHUNK):
        stop = min(start + CHUNK, value.size)
        # .flat[a:b]: entries a..b in C order, copied one piece at a time even from a transposed view
        derivs = itertools.repeat("") if d is None else map(repr, np.asarray(d).flat[start:stop].tolist())
        texts = map(line.format, _index_texts(value.shape, start, stop), map(repr, value.flat[start:stop].tolist()),
                    derivs)
        yield "".join(texts)


def iter_csv(result: Result) -> Iterator[str]:
    """The text of to_csv in pieces of about CHUNK lines (byte for byte what csv.writer writes
    of csv_rows): a result of any size is written in little memory."""
    yield _csv_line(["id", "op", "inputs", "shape", "index", "value", derivative_column(result)])
    for name, op, ins in _entries(result):
        value = result.values[name]
        head = _csv_line([name, op, ins, str(list(value.shape)), ""])[:-2]  # "id,op,ins,shape" (no index yet)
        if value.size == 0:  # an empty tensor still gets its row, or the node would vanish
            yield head + ",,,\n"
        else:
            yield from _tensor_lines(head + ",", value, derivative(result, name))


def to_csv(result: Result) -> str:
    return "".join(iter_csv(result))


# ---- Markdown -------------------------------------------------------------------------

# Markdown (GitHub flavour) syntax anywhere in a line: emphasis, code, HTML, `|`, GitHub's `$`
# math, `&` entities, and a bracket only where it would make a link (`](`, `][`, `]:`), so
# shapes stay readable as `[2, 3]`. A backslash before ASCII punctuation always means the character.
_MD_INLINE = re.compile(r"([\\`*_<>|~$&#]|\[(?=[^\]]*\][(\[:])|\](?=[(\[:]))")
# Line starts that make a block (`>` and `#` are escaped above): a list item or a heading
# underline, and an ordered list, whose "." or ")" takes the backslash (before a digit it is
# no escape).
_MD_BLOCK = re.compile(r"^[-+=]|^\d{1,9}(?=[.)](\s|$))")


def _block_escape(m: re.Match[str]) -> str:
    return m.group(0) + "\\" if m.group(0)[0].isdigit() else "\\" + m.group(0)


def md_text(text: str) -> str:
    """User text for a Markdown paragraph or title: shown as written, never as markup, and
    control characters as escapes (cg.printable: the lines first, then each line)."""
    lines = [_MD_INLINE.sub(r"\\\1", line.strip()) for line in printable_lines(text.strip())]
    return "\n".join(_MD_BLOCK.sub(_block_escape, line, count=1) for line in lines)


def md_cell(text: str) -> str:
    """User text for a table cell: one line, `|` escaped (GitHub splits cells before anything)."""
    return _MD_INLINE.sub(r"\\\1", printable(" ".join(text.split())))


def md_code(text: str) -> str:
    """A code span for a name or path: fenced by more backticks than any run inside (padded
    with spaces then); `|` still needs its backslash inside a table."""
    text = printable(" ".join(text.split())).replace("|", "\\|")
    ticks = "`" * (max((len(m) for m in re.findall("`+", text)), default=0) + 1)
    pad = " " if "`" in text else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def md_table(header: tuple[str, ...], body: list[list[str]], right: tuple[str, ...] = ()) -> str:
    """A GitHub table of cells that are already Markdown (header cells are escaped here)."""
    rule = ["---:" if h in right else "---" for h in header]
    lines = [[md_cell(h) for h in header], rule, *body]
    return "".join("| " + " | ".join(r) + " |\n" for r in lines)


def to_markdown(result: Result, precision: int = 4) -> str:
    header = ("id", "op", "in", "shape", "value", derivative_column(result))
    body = [[md_code(r[0]), *(md_cell(c) for c in r[1:])] for r in rows(result, precision)]
    return md_table(header, body, right=NUMERIC)


# ---- LaTeX ----------------------------------------------------------------------------

_TEX = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    # The default (OT1) font encoding has no glyphs for these three in text.
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
}
_TEX_RE = re.compile("|".join(re.escape(c) for c in _TEX))


def tex_text(text: str) -> str:
    """User text for a LaTeX cell, in one line (control characters as printable's escapes)."""
    return _TEX_RE.sub(lambda m: _TEX[m.group(0)], printable(" ".join(text.split())))


def _tex_number(text: str) -> str:
    # A hyphen is not a minus sign (ids have none, so only numbers change); a lone "-" (no
    # derivative) becomes an en dash.
    return "--" if text == "-" else tex_text(text).replace("-", "$-$")


def to_latex(result: Result, precision: int = 4) -> str:
    """A `tabular` that compiles in a bare `article` (plain \\hline, no packages)."""
    header = ("id", "op", "in", "shape", "value", derivative_column(result))
    spec = "".join("r" if h in NUMERIC else "l" for h in header)
    lines = [f"% {printable(' '.join(result.graph.name.split()))}: value and {header[-1]} of every input and node (cg)",
             f"\\begin{{tabular}}{{{spec}}}", "\\hline", " & ".join(header) + " \\\\", "\\hline"]
    for r in rows(result, precision):
        # The first cell is never bare text, so a "[" can never be read as an option of "\\".
        cells = [f"\\texttt{{{tex_text(r[0])}}}", *map(_tex_number, r[1:])]
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\hline", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


# ---- HTML (the notebook's table) -------------------------------------------------------


def to_html_table(result: Result, precision: int = 4) -> str:
    """An HTML table: what a notebook shows when there is no picture."""
    header = ("id", "op", "in", "shape", "value", derivative_column(result))

    def tr(cells: tuple[str, ...], tag: str) -> str:
        return "<tr>" + "".join(
            f'<{tag} style="text-align:{"right" if h in NUMERIC else "left"}">{html.escape(printable(c))}</{tag}>'
            for h, c in zip(header, cells)
        ) + "</tr>"

    body = "\n".join(tr(r, "td") for r in rows(result, precision))
    return f'<table class="cg-result">\n<thead>{tr(header, "th")}</thead>\n<tbody>\n{body}\n</tbody>\n</table>\n'


# ---- the notebook's display ------------------------------------------------------------

PICTURE_LIMIT = 300  # names: a bigger picture is unreadable, and dot may take a minute on it


def picture_svg(result: Result, precision: int = 4) -> str | None:
    """The picture as inline SVG (Graphviz when installed, else cg.render.draw's simple layout), or
    None when cg.render.draw is missing, the graph is too big, or drawing fails."""
    if len(result.graph.avals) > PICTURE_LIMIT:
        return None
    try:
        from cg.render.draw import inline_svg
        from cg.render.picture import picture
    except ImportError:
        return None
    try:  # dot failing or timing out falls back to the simple layout inside inline_svg
        return inline_svg(picture(result, precision=precision), title=True)
    except Exception:
        return None


def notebook_html(result: Result, precision: int = 4) -> str:
    """The picture beside the table, as a fragment for a notebook cell: no page around it and
    no <style>, which would restyle the whole notebook."""
    table = to_html_table(result, precision)
    svg = picture_svg(result, precision)
    if svg is None:
        return table
    return ('<div class="cg-result" style="display:flex;flex-wrap:wrap;gap:2em;align-items:flex-start">\n'
            f'<div style="max-width:100%;overflow:auto">{svg}</div>\n{table}</div>\n')
