"""The `expect` block of a graph file: values and gradients the graph must give at a point,
validated while the graph is built and compared by `cg check`."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np

from cg.errors import did_you_mean
from cg.graph.ir import Aval, Expect, Expected, Input, Node
from cg.graph.parts import Builder, literal_problem, to_array
from cg.graph.shapes import infer, short_lists
from cg.schema.messages import quote

EXPECT_TOL = 1e-4  # the default: numbers copied from `cg run`, which prints 4 decimals



def parse_expect(
    b: Builder, raw: dict[str, Any], inputs: list[Input], nodes: tuple[Node, ...], avals: dict[str, Aval],
    outputs: list[Any], declared: Collection[Any] = (),
) -> Expect:
    """The validated `expect` block; every problem is reported at its key or value. `declared` are
    the names the file declares: one of them missing from `avals` was not built because of a
    problem reported already, and is not reported again."""
    known = {i.name: i for i in inputs}
    unbuilt = _Unbuilt(declared, avals)
    point = {}
    for name, value in raw.get("inputs", {}).items():
        inp = known.get(name)
        if inp is None and name in unbuilt:
            continue
        if inp is None:
            what = "a node, not an input" if name in avals else f"not an input{did_you_mean(name, list(known))}"
            b.error("CG110", f"expect.inputs: {quote(name)} is {what}", ("expect", "inputs", name), None, key=True)
        elif (arr := _expect_literal(b, value, inp.aval.dtype, "inputs", name)) is not None:
            if inp.shape_given and arr.shape != inp.aval.shape:
                msg = f"expect.inputs: {quote(name)} has shape {list(inp.aval.shape)}, got {list(arr.shape)}"
                b.error("CG120", short_lists(msg), ("expect", "inputs", name), None)
            point[name] = arr
    at = _expect_avals(b, point, inputs, nodes, avals)
    of = raw.get("of", outputs[0] if outputs else "")
    if of in unbuilt:
        pass  # behind a problem reported already: one root cause, one diagnostic
    elif of not in avals:
        b.error("CG110", f"expect.of: {quote(of)} is not an input or node{did_you_mean(of, list(avals))}",
                ("expect", "of"), None)
    elif of in at and (at[of].dtype != "float" or (raw.get("grads") and math.prod(at[of].shape) != 1)):
        b.error("CG120", f"expect.of: {quote(of)} must be a float scalar to have gradients", ("expect", "of"), None)
    if raw.get("values") or raw.get("grads"):
        for inp in inputs:
            if inp.default is None and inp.name not in point:
                msg = f"expect: input {quote(inp.name)} has no default value; give it in expect.inputs"
                b.error("CG302", msg, ("expect",), None, key=True)
    values = _expected(b, raw, "values", avals, at, unbuilt)
    grads = _expected(b, raw, "grads", avals, at, unbuilt)
    pos = b.doc.pos(("expect",), key=True)
    tol, rtol = float(raw.get("tol", EXPECT_TOL)), float(raw.get("rtol", 0.0))
    return Expect(point, of, tol, rtol, values, grads, pos)


def _expect_avals(
    b: Builder, point: dict[str, np.ndarray], inputs: list[Input], nodes: tuple[Node, ...], avals: dict[str, Aval]
) -> dict[str, Aval]:
    """Shapes at the expect point: values in expect.inputs may change them, as inputs given at run time do."""
    changed = {n: Aval(v.shape, avals[n].dtype) for n, v in point.items() if v.shape != avals[n].shape}
    if not changed:
        return avals
    at = {i.name: i.aval for i in inputs} | changed
    problems = infer(nodes, at)
    if problems:
        node, code, message, _ = problems[0]
        b.error(code, f"with expect.inputs, node {quote(node.id)}: {message}", ("expect", "inputs"), None, key=True)
    return at


class _Unbuilt:
    """Names declared in the file but missing from the graph: nodes not built because of an earlier
    problem (an unknown op, a bad constant, a cycle, a shape error upstream)."""

    def __init__(self, declared: Collection[Any], avals: Mapping[str, Aval]) -> None:
        self.declared = {n for n in declared if isinstance(n, str)}
        self.avals = avals

    def __contains__(self, name: object) -> bool:
        return name in self.declared and name not in self.avals


def _expected(
    b: Builder, raw: dict[str, Any], section: str, avals: Mapping[str, Aval], at: Mapping[str, Aval],
    unbuilt: _Unbuilt,
) -> tuple[Expected, ...]:
    """Entries of expect.values or expect.grads: names that exist, with numbers of their shape at
    the expect point (`at`; a name missing there is behind a shape problem, reported already)."""
    out = []
    for name, value in raw.get(section, {}).items():
        path = ("expect", section, name)
        if name in unbuilt:
            continue
        if name not in avals:
            hint = did_you_mean(name, list(avals))
            b.error("CG110", f"expect.{section}: {quote(name)} is not an input or node{hint}", path, None, key=True)
            continue
        if name not in at:
            continue
        if section == "grads" and at[name].dtype != "float":
            b.error("CG121", f"expect.grads: {quote(name)} is an integer and has no gradient", path, None, key=True)
            continue
        arr = _expect_literal(b, value, "float", section, name)
        if arr is None:
            continue
        if arr.shape != at[name].shape:
            msg = f"expect.{section}: {quote(name)} has shape {list(at[name].shape)}, got {list(arr.shape)}"
            b.error("CG120", short_lists(msg), path, None)
            continue
        out.append(Expected(name, arr, b.doc.pos(path)))
    return tuple(out)


def _expect_literal(b: Builder, value: Any, dtype: str, section: str, name: str) -> np.ndarray | None:
    try:
        return to_array(value, dtype)
    except ValueError as e:
        where, problem = literal_problem(value, dtype, "value") or ((), f"value {e}")
        b.error("CG104", f"expect.{section}: {quote(name)}: {problem}", ("expect", section, name, *where), None)
        return None
