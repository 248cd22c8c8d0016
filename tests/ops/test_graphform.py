"""The graph form of every op's VJP (cg/ops/graphform.py), written from its formula: evaluated node
by node as it is written, it must equal the op's numeric VJP at every test case of the registry."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from cg.check.fd import sample
from cg.ops import REGISTRY, Case, Op
from cg.ops.graphform import Site, Val, Writer, vjp_graph

CASES = [pytest.param(op, case, id=f"{op.name}-{'x'.join(str(list(s)) for s in case.shapes)}-{case.attrs or ''}")
         for op in REGISTRY.values() for case in op.cases if op.formulas is not None]


class Evaluator:
    """An emitter that computes each node as it is written: the graph form, run."""

    def __init__(self, env: dict[str, Any]) -> None:
        self.env, self.ops = env, []

    def __call__(self, op: str, args: list[Any], attrs: dict[str, Any]) -> str:
        rule = REGISTRY[op]
        full = {k: a.default for k, a in rule.attrs.items()} | attrs
        values = [self.env[a] if isinstance(a, str) else np.asarray(a) for a in args]
        name = f"t{len(self.env)}"
        self.env[name] = rule.forward(*values, **full)
        self.ops.append(op)
        return name


def value(v: Val, env: dict[str, Any]) -> Any:
    return env[v.ref] if v.ref is not None else v.const


@pytest.mark.parametrize(("op", "case"), CASES)
def test_the_graph_form_is_the_vjp(op: Op, case: Case) -> None:
    rng = np.random.default_rng(0)
    xs = sample(op, case.shapes, rng, case.attrs)
    attrs = {k: a.default for k, a in op.attrs.items()} | case.attrs
    y = op.forward(*xs, **attrs)
    g = rng.standard_normal(np.shape(y))
    numeric = op.vjp(g, y, xs, **attrs)
    env: dict[str, Any] = {f"x{k}": x for k, x in enumerate(xs)} | {"y": y, "g": g}
    writer = Writer(REGISTRY, Evaluator(env))
    args = [Val(f"x{k}", np.shape(x)) for k, x in enumerate(xs)]
    for i in range(len(xs)):
        found = vjp_graph(writer, Site(op, i, args, Val("y", np.shape(y)), Val("g", np.shape(g)), attrs))
        if numeric[i] is None or np.asarray(xs[i]).dtype.kind in "iu":
            assert found is None
            continue
        assert found is not None and found.shape == np.shape(xs[i])
        np.testing.assert_allclose(value(found, env), numeric[i], rtol=1e-10, atol=1e-12, err_msg=f"input {i}")


def test_a_wrong_formula_gives_a_wrong_graph() -> None:
    """The graph form is read from the formula: change the formula and the graph changes with it."""
    from cg.ops.formula import Formula, Formulas

    op = REGISTRY["sigmoid"]
    bad = dataclasses.replace(op, formulas=Formulas((Formula("y * (2 - y)"),)))
    x = np.asarray([0.5, -1.0])
    y, g = op.forward(x), np.ones(2)
    env: dict[str, Any] = {"x0": x, "y": y, "g": g}
    site = Site(bad, 0, [Val("x0", (2,))], Val("y", (2,)), Val("g", (2,)), {})
    found = vjp_graph(Writer(REGISTRY, Evaluator(env)), site)
    assert found is not None and not np.allclose(value(found, env), op.vjp(g, y, [x])[0])
