"""Every registered op, at every one of its test cases: shape rule, VJP and JVP against
central differences, with the checker `cg check --per-node` uses. A new op is tested the moment
it is registered."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from cg.check.fd import check_op, sample
from cg.ops import REGISTRY, Case, Op, installed

TOL = 1e-6

CASES = [
    pytest.param(op, case, id=f"{op.name}-{'x'.join(str(list(s)) for s in case.shapes)}-{case.attrs or ''}")
    for op in REGISTRY.values()
    for case in op.cases
]


@pytest.mark.parametrize(("op", "case"), CASES)
def test_rules_match_finite_differences(op: Op, case: Case) -> None:
    rng = np.random.default_rng(0)
    xs = sample(op, case.shapes, rng, case.attrs)
    result = check_op(op, xs, case.attrs, rng)  # the checker `cg check --per-node` uses (cg/check/fd.py)
    assert result.problem is None, result.problem
    assert result.vjp_error < TOL and result.jvp_error < TOL


def test_every_op_has_doc_and_broadcast_or_several_cases() -> None:
    for op in REGISTRY.values():
        assert op.doc and len(op.cases) >= 3, op.name


@pytest.mark.parametrize("name", ["exp", "mul", "matmul", "softmax", "sum"])
def test_checker_catches_a_wrong_vjp(name: str) -> None:
    op = REGISTRY[name]

    def wrong_vjp(g, y, xs, **attrs):  # type: ignore[no-untyped-def]
        return [None if c is None else 1.5 * c for c in op.vjp(g, y, xs, **attrs)]

    bad = dataclasses.replace(op, vjp=wrong_vjp, df=None, partials=None)  # the VJP is no longer made from them
    rng = np.random.default_rng(1)
    case = op.cases[1]
    result = check_op(bad, sample(bad, case.shapes, rng), case.attrs, rng)
    assert result.problem is not None and result.problem.startswith("VJP disagrees"), result.problem
    assert result.vjp_error > 1e-3


@pytest.mark.parametrize("name", ["exp", "mul", "matmul", "softmax", "sum"])
def test_checker_catches_a_wrong_jvp(name: str) -> None:
    op = REGISTRY[name]
    bad = dataclasses.replace(op, jvp=lambda ts, y, xs, **attrs: 0.5 * op.jvp(ts, y, xs, **attrs))
    rng = np.random.default_rng(2)
    case = op.cases[1]
    result = check_op(bad, sample(bad, case.shapes, rng), case.attrs, rng)
    assert result.problem is not None and result.problem.startswith("JVP disagrees"), result.problem
    assert result.jvp_error > 1e-3


def test_checker_catches_a_wrong_shape_rule() -> None:
    op = REGISTRY["sum"]
    bad = dataclasses.replace(op, shape=lambda shapes, **attrs: (1,))
    case = op.cases[1]
    rng = np.random.default_rng(3)
    result = check_op(bad, sample(bad, case.shapes, rng), case.attrs, rng)
    assert result.problem is not None and result.problem.startswith("the shape rule gives [1]"), result.problem


def test_sigmoid_and_softmax_are_stable_at_1000() -> None:
    s = REGISTRY["sigmoid"].forward(np.array([-1000.0, 0.0, 1000.0]))
    assert np.allclose(s, [0.0, 0.5, 1.0]) and np.all(np.isfinite(s))
    sm = REGISTRY["softmax"].forward(np.array([1000.0, 1000.0]))
    assert np.allclose(sm, [0.5, 0.5])
    lsm = REGISTRY["log_softmax"].forward(np.array([1000.0, 0.0]))
    assert np.allclose(lsm, [0.0, -1000.0])
    lse = REGISTRY["logsumexp"].forward(np.array([1000.0, 1000.0]))
    assert np.isclose(lse, 1000.0 + np.log(2.0))


def test_max_gate_routes_and_ties_split() -> None:
    op = REGISTRY["maximum"]
    a, b = np.array([3.0, 1.0, 2.0]), np.array([1.0, 3.0, 2.0])
    ga, gb = op.vjp(np.ones(3), op.forward(a, b), [a, b])
    assert ga.tolist() == [1.0, 0.0, 0.5] and gb.tolist() == [0.0, 1.0, 0.5]


def test_mul_of_the_same_input_twice_gives_2x() -> None:
    x = np.array(3.0)
    op = REGISTRY["mul"]
    grads = op.vjp(np.array(1.0), op.forward(x, x), [x, x])
    assert float(grads[0] + grads[1]) == 6.0


NEEDS_CASES = [pytest.param(op, case, id=f"{op.name}-{'x'.join(str(list(s)) for s in case.shapes)}")
               for op in REGISTRY.values() if op.needs for case in op.cases]


def test_some_op_takes_needs() -> None:
    assert NEEDS_CASES  # matmul does: the plan skips the gradient of a layer's data


@pytest.mark.parametrize(("op", "case"), NEEDS_CASES)
def test_a_vjp_with_needs_gives_the_same_cotangents_it_is_asked_for(op: Op, case: Case) -> None:
    rng = np.random.default_rng(3)
    xs = sample(op, case.shapes, rng, case.attrs)
    full = {name: a.default for name, a in op.attrs.items()} | case.attrs
    y = op.forward(*xs, **full)
    g = rng.normal(size=np.shape(y))
    every = op.vjp(g, y, xs, **full)
    for mask in itertools.product((False, True), repeat=len(xs)):
        got = op.vjp(g, y, xs, needs=mask, **full)
        assert len(got) == len(xs)
        for c, want, need, x in zip(got, every, mask, xs):
            if need:
                assert c is not None and c.shape == np.shape(x) and np.array_equal(c, want)


def test_df_is_what_the_vjp_multiplies_by() -> None:
    rng = np.random.default_rng(4)
    with_df = [op for op in REGISTRY.values() if op.df is not None]
    assert len(with_df) >= 11  # every one-input elementwise op declares it
    for op in with_df:
        x = sample(op, [(3,)], rng)[0]
        y, g = op.forward(x), rng.normal(size=3)
        assert np.array_equal(op.vjp(g, y, [x])[0], g * op.df(x, y)), op.name


def test_a_vjp_of_another_make_beside_a_df_is_refused() -> None:
    # The plan calls df in place of the VJP: a replaced VJP must take its df away with it.
    exp = REGISTRY["exp"]
    wrong = lambda g, y, xs: [2.0 * g * y]
    with pytest.raises(ValueError, match="df=None"):
        dataclasses.replace(exp, vjp=wrong)
    assert dataclasses.replace(exp, vjp=wrong, df=None).df is None
    assert dataclasses.replace(exp, name="exp2").df is exp.df  # a copy under another name keeps it


@pytest.mark.parametrize("name", ["relu", "maximum", "minimum", "pow", "max", "index", "log_softmax", "matmul"])
def test_float32_arguments_give_float32_results_and_cotangents(name: str) -> None:
    op = REGISTRY[name]
    case = op.cases[1]
    rng = np.random.default_rng(5)
    xs = [x.astype(np.float32) if x.dtype.kind == "f" else x for x in sample(op, case.shapes, rng, case.attrs)]
    y = op.forward(*xs, **case.attrs)
    assert y.dtype == np.float32, name
    g = np.ones(np.shape(y), np.float32)
    for c in op.vjp(g, y, xs, **case.attrs):
        assert c is None or c.dtype == np.float32, name


def test_the_registry_is_read_only_and_installed_ops_last_one_block() -> None:
    exp = REGISTRY["exp"]
    with pytest.raises(TypeError):
        REGISTRY["exp2"] = exp  # type: ignore[index]
    extra, replaced = dataclasses.replace(exp, name="exp2"), dataclasses.replace(exp, doc="another exp")
    with installed(extra, replaced):
        assert REGISTRY["exp2"] is extra and REGISTRY["exp"] is replaced
    assert "exp2" not in REGISTRY and REGISTRY["exp"] is exp
    with pytest.raises(KeyError), installed(extra):
        raise KeyError("a failing test")
    assert "exp2" not in REGISTRY
