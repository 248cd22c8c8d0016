"""Every op's formulas (cg/ops/formula.py) evaluated at every one of its test cases and compared
with its VJP: a formula cannot drift from the rule it describes. A new op without formulas fails."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import cg

from cg.check.fd import sample
from cg.ops import REGISTRY, Case, Op
from cg.ops.formula import Formula, FormulaError, Formulas
from cg.ops.kernels import unbroadcast

RTOL = 1e-12
M = "\N{MINUS SIGN}"

CASES = [
    pytest.param(op, case, id=f"{op.name}-{'x'.join(str(list(s)) for s in case.shapes)}-{case.attrs or ''}")
    for op in REGISTRY.values()
    for case in op.cases
]


def formula_cotangents(op: Op, xs: list[np.ndarray], y: np.ndarray, g: np.ndarray, attrs: dict) -> list:
    """Each input's cotangent from the op's formulas alone: g times a local derivative, summed back
    over broadcast axes, or a VJP formula's value."""
    assert op.formulas is not None
    out = []
    for i, x in enumerate(xs):
        rule = op.formulas.rule(i)
        v = op.formulas.value(i, xs, y, g, attrs)
        if rule is not None and rule.kind == "local":
            v = unbroadcast(g * np.broadcast_to(v, np.shape(y)), np.shape(x))
        out.append(v)
    return out


def mismatches(op: Op, case: Case, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    xs = sample(op, case.shapes, rng, case.attrs)
    attrs = {name: a.default for name, a in op.attrs.items() if not a.required} | case.attrs
    y = op.forward(*xs, **attrs)
    g = rng.normal(size=np.shape(y))
    problems = []
    for i, (want, got) in enumerate(zip(op.vjp(g, y, xs, **attrs), formula_cotangents(op, xs, y, g, attrs))):
        if want is None or got is None:
            if not (want is None and got is None):
                problems.append(f"input {i}: VJP gives {want!r}, formula {got!r}")
            continue
        got = np.broadcast_to(got, np.shape(want))  # a constant partial (1, -1) is a number
        if not np.allclose(got, want, rtol=RTOL, atol=RTOL * float(np.max(np.abs(want), initial=1.0))):
            problems.append(f"input {i}: formula {op.formulas.rule(i).source!r} gives {got}, the VJP {want}")
    return problems


@pytest.mark.parametrize(("op", "case"), CASES)
def test_formulas_agree_with_the_vjp(op: Op, case: Case) -> None:
    assert mismatches(op, case) == []


def test_every_op_has_a_formula_for_every_input() -> None:
    for op in REGISTRY.values():
        assert op.formulas is not None, f"op '{op.name}' has no formulas"
        positions = range(max(op.arity[0], len(op.formulas.rules)))
        for i in positions:
            rule = op.formulas.rule(i)
            assert (rule is None) == (i in op.int_args), f"op '{op.name}' input {i}"
            if rule is not None:
                assert rule.kind in ("local", "vjp") and rule.text and rule.latex, op.name


@pytest.mark.parametrize(("name", "wrong"), [("log", "1 / x ** 2"), ("sigmoid", "y * (1 + y)"),
                                             ("matmul", "2 * (g @ T(B))"), ("softmax", "y * g"), ("mul", "1")])
def test_a_wrong_formula_is_caught(name: str, wrong: str) -> None:
    op = REGISTRY[name]
    assert op.formulas is not None
    rules = (Formula(wrong, op.formulas.rules[0].kind), *op.formulas.rules[1:])  # type: ignore[union-attr]
    bad = dataclasses.replace(op, formulas=Formulas(rules, op.formulas.names, op.formulas.matrices))
    assert any(mismatches(bad, case) for case in op.cases)


@pytest.mark.parametrize(("source", "text", "latex"), [
    ("1 / x", "1/x", r"\frac{1}{x}"),
    ("y * (1 - y)", f"y(1 {M} y)", r"y \left(1 - y\right)"),
    ("2 * x", "2x", "2 x"),
    ("b * a ** (b - 1)", f"b·a^(b {M} 1)", r"b \cdot a^{b - 1}"),
    ("a ** b * log(a)", "aᵇ·ln a", r"a^{b} \cdot \ln a"),
    ("g @ T(B)", "g Bᵀ", r"g \, B^\top"),
    ("x > 0", "[x > 0]", "[x > 0]"),
    ("-(a - b)", f"{M}(a {M} b)", r"-\left(a - b\right)"),
    ("a - (b - x)", f"a {M} (b {M} x)", r"a - \left(b - x\right)"),
])
def test_text_and_latex_come_from_the_one_source(source: str, text: str, latex: str) -> None:
    f = Formula(source)
    assert (f.text, f.latex) == (text, latex)


@pytest.mark.parametrize("source", ["__import__('os')", "x.T", "x[0]", "open(x)", "lambda: 1", "f(x=1)",
                                    "0 < x < 1", "np.exp(x)"])
def test_only_the_allowed_syntax_is_read(source: str) -> None:
    with pytest.raises(FormulaError):
        _ = Formula(source).tree


def test_a_formula_is_evaluated_not_eval_ed() -> None:
    f = Formulas((Formula("1 / x"),))
    assert f.value(0, [np.array(4.0)], np.log(4.0)) == 0.25


def test_the_readme_op_table_shows_every_formula() -> None:
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    table = readme.split("### Ops", 1)[1].split("###", 1)[0]
    for op in REGISTRY.values():
        assert op.formulas is not None
        for rule in op.formulas.rules:
            assert rule is None or rule.text in table, (op.name, rule.text)


def test_cg_ops_shows_the_formulas() -> None:
    r = cg("ops")
    out = r.out
    assert r.code == 0
    assert "∂y/∂x = 1/x" in out and "∂L/∂A = g Bᵀ; ∂L/∂B = Aᵀ g" in out and "∂y/∂xᵢ = ∏ⱼ≠ᵢ xⱼ" in out
    assert "∂y/∂a = b·a^(b \N{MINUS SIGN} 1); ∂y/∂b = aᵇ·ln a" in out
