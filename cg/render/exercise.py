"""`cg exercise`: a worksheet (Markdown: the figure without numbers, the inputs, and a table with
blanks to fill) and its answer template (YAML), graded by `cg check FILE --answers`
(cg/check/answers.py); and the text of that grading."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from cg.check.answers import Grade
from cg.eval.interp import Result
from cg.printable import printable
from cg.render.dot import to_mermaid
from cg.render.export import md_cell, md_code, md_table, md_text
from cg.render.table import arg_text, fmt_value

BLANK = "____"
BLANKS = ("grads", "values", "both")


def blanked(result: Result, blank: str) -> dict[str, list[str]]:
    """The names to fill in: node values and/or the gradients of every float input and node."""
    g = result.graph
    values = [n.id for n in g.nodes] if blank in ("values", "both") else []
    names = [i.name for i in g.inputs] + [n.id for n in g.nodes]
    grads = [n for n in names if result.grads.get(n) is not None] if blank in ("grads", "both") else []
    return {"values": values, "grads": grads}


def sheet(result: Result, blank: str, command: str, precision: int) -> str:
    """The worksheet in Markdown."""
    g, of = result.graph, result.of or ""
    todo = blanked(result, blank)
    parts = [f"# Exercise: {md_text(g.name) or 'graph'}\n"]
    if g.doc.strip():
        parts.append(md_text(g.doc) + "\n")
    what = {"grads": "every gradient", "values": "every value (the forward pass)",
            "both": "every value, then every gradient"}[blank]
    parts.append(f"Fill in {what} marked {BLANK}, d{md_text(of)}/d(name) for the gradients, "
                 f"to {precision} decimals, in the answer file, then grade it with `{command}`.\n")
    parts.append("## Inputs\n\n" + md_table(("input", "value"), [
        [md_code(i.name), md_cell(fmt_value(result.values[i.name], precision))] for i in g.inputs], right=("value",)))
    parts.append("## Graph\n\n```mermaid\n" + to_mermaid(g, values=False).strip() + "\n```\n")
    rows = []
    for name, op, args in [(i.name, "input", "") for i in g.inputs] + [
            (n.id, n.op.name, ", ".join(printable(arg_text(a)) for a in n.args)) for n in g.nodes]:
        value = BLANK if name in todo["values"] else fmt_value(result.values[name], precision)
        grad = BLANK if name in todo["grads"] else "-"
        rows.append([md_code(name), md_cell(op), md_cell(args), md_cell(value), md_cell(grad)])
    parts.append("## To fill in\n\n" + md_table(("id", "op", "in", "value", f"d{of}/d(id)"), rows,
                                                  right=("value", f"d{of}/d(id)")))
    return "\n".join(parts)


def _yaml_value(v: np.ndarray) -> str:
    return json.dumps(v.tolist()) if v.ndim else repr(float(v)) if v.dtype.kind == "f" else str(int(v))


def template(result: Result, blank: str, file: str) -> str:
    """The answer file: the point of the exercise, and a null per blank (JSON-compatible YAML)."""
    todo = blanked(result, blank)
    lines = [f"# Answers for {printable(file)}: replace each null with a number (or a list for a tensor), then",
             f"#   cg check {printable(file)} --answers THIS_FILE",
             "inputs: {" + ", ".join(f"{i.name}: {_yaml_value(result.values[i.name])}" for i in result.graph.inputs)
             + "}", f"of: {result.of}"]
    for kind in ("values", "grads"):
        if todo[kind]:
            lines += [f"{kind}:", *(f"  {name}: null" for name in todo[kind])]
    return "\n".join(lines) + "\n"


def grades_text(file: str, of: str, grades: Sequence[Grade]) -> str:
    right = sum(g.right for g in grades)
    lines = [f"{printable(file)}: {right} of {len(grades)} right"]
    for g in grades:
        name = printable(g.name) if g.kind == "values" else f"d{printable(of)}/d{printable(g.name)}"
        if g.right:
            lines.append(f"  ok     {name}")
        else:
            lines.append(f"  WRONG  {name}: {g.problem}" + (f"; hint: {printable(g.hint)}" if g.hint else ""))
    return "\n".join(lines) + "\n"
