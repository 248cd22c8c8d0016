"""Exercises graded per blank: a worksheet's answers (values and gradients a student filled in)
against the run, each wrong one with a hint built from the step view: which formula, which
neighbours' gradients, which fan-out sum. `cg exercise` writes the sheet and the answer
template; `cg check FILE --answers answers.yaml` grades it.

The answer file is YAML: `inputs` (the point of the exercise, written by cg exercise), `of`, and
`values` / `grads` mapping names to numbers (or nested lists for tensors; null: not answered).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from cg.errors import UsageError
from cg.eval.edges import Edge, formula_text
from cg.eval.interp import Result
from cg.eval.steps import Steps

KINDS = ("values", "grads")
RTOL, ATOL = 1e-3, 5e-4  # four decimals, as the notes and the worksheet print them


@dataclass(frozen=True)
class Answers:
    inputs: dict[str, Any]
    of: str | None
    blanks: dict[str, dict[str, Any]]  # "values" / "grads" -> name -> what was written (None: nothing)


@dataclass(frozen=True, eq=False)
class Grade:
    kind: str  # "values" or "grads"
    name: str
    given: Any
    right: bool
    problem: str  # why it is wrong: "not answered", "not a number", "off", "shape [2] where [3] is expected"
    hint: str  # empty when right


def read_answers(data: Any, where: str) -> Answers:
    """The answers from a parsed YAML document; UsageError CG300 naming the file if it is not one."""
    if not isinstance(data, Mapping):
        raise UsageError.one("CG300", f"{where}: not an answer file (a mapping with values: and grads:)")
    unknown = sorted(str(k) for k in data if k not in ("inputs", "of", *KINDS))
    if unknown:
        raise UsageError.one("CG300", f"{where}: unknown key {unknown[0]!r}; an answer file has inputs, of, values,"
                             " grads")
    blanks = {}
    for kind in KINDS:
        part = data.get(kind) or {}
        if not isinstance(part, Mapping) or not all(isinstance(k, str) for k in part):
            raise UsageError.one("CG300", f"{where}: {kind}: must map names to numbers")
        blanks[kind] = dict(part)
    inputs = data.get("inputs") or {}
    of = data.get("of")
    if not isinstance(inputs, Mapping) or (of is not None and not isinstance(of, str)):
        raise UsageError.one("CG300", f"{where}: inputs must map names to values, and of must be a name")
    return Answers(dict(inputs), of, blanks)


def _number(given: Any) -> np.ndarray | None:
    """What was written as an array of floats, or None if it is not numbers."""
    if isinstance(given, bool):
        return None
    try:
        arr = np.asarray(given, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr if np.all(np.isfinite(arr)) else None


def grade(steps: Steps, answers: Answers) -> list[Grade]:
    """Every blank of the answer file, in the order of the file."""
    result = steps.result
    grades = []
    for kind in KINDS:
        truth = result.values if kind == "values" else result.grads
        for name, given in answers.blanks[kind].items():
            if name not in truth or truth[name] is None:
                grades.append(Grade(kind, name, given, False, f"'{name}' has no {kind[:-1]} in this graph", ""))
                continue
            grades.append(_one(steps, kind, name, given, np.asarray(truth[name], dtype=np.float64)))
    return grades


def _one(steps: Steps, kind: str, name: str, given: Any, want: np.ndarray) -> Grade:
    if given is None:
        problem = "not answered"
    elif (got := _number(given)) is None:
        problem = "not a number"
    elif got.shape != want.shape:
        problem = f"shape {list(got.shape)} where {list(want.shape)} is expected"
    elif np.allclose(got, want, rtol=RTOL, atol=ATOL):
        return Grade(kind, name, given, True, "", "")
    else:
        problem = "off"
    hint = grad_hint(steps, name) if kind == "grads" else value_hint(steps.result, name)
    return Grade(kind, name, given, False, problem, hint)


def value_hint(result: Result, name: str) -> str:
    node = result.graph.node(name)
    if node is None:
        return f"{name} is an input: its value is given"
    args = ", ".join(a if isinstance(a, str) else "a constant" for a in node.args)
    return f"{name} = {node.op.name}({args}): apply {node.op.name} to the values of {args}"


def grad_hint(steps: Steps, name: str) -> str:
    """Where the gradient of `name` comes from: the seed, or the sum over its consumers of their
    gradient times the local derivative (with the formula of each)."""
    of = steps.result.of or ""
    if name == of:
        return f"d{of}/d{of} is the seed of the backward pass"
    out = steps.inputs.get(name) or next((b.arrived for b in steps.backward if b.node.id == name), ())
    if not out:
        return f"nothing flows back to {name} from {of}"
    terms = [_term(of, e) for e in out]
    many = f", added up over its {len(out)} consumers (fan-out)" if len(out) > 1 else ""
    return f"d{of}/d{name} = {' + '.join(terms)}{many}"


def _term(of: str, e: Edge) -> str:
    formula = formula_text(e)
    if formula and e.formula is not None and e.formula.kind == "vjp":  # a tensor op: its VJP in terms of g
        return f"{formula} with g = d{of}/d{e.dst}"
    partial = f"∂{e.dst}/∂{e.src}"
    return f"d{of}/d{e.dst} × {partial}" + (f" ({partial} = {formula})" if formula else "")
