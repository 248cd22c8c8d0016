"""Every registered op, at every one of its test cases: shape rule, VJP and JVP against
central differences. A new op is tested the moment it is registered."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cg.numcheck import check_op, sample
from cg.ops import REGISTRY, Case, Op

TOL = 1e-6

CASES = [
    pytest.param(op, case, id=f"{op.name}-{'x'.join(str(list(s)) for s in case.shapes)}-{case.attrs or ''}")
    for op in REGISTRY.values()
    for case in op.cases
]


@pytest.mark.parametrize(("op", "case"), CASES)
def test_rules_match_finite_differences(op: Op, case: Case) -> None:
    rng = np.random.default_rng(0)
    xs = sample(op, case.shapes, rng)
    result = check_op(op, xs, case.attrs, rng)
    assert result.shape_ok
    assert result.vjp_error < TOL
    assert result.jvp_error < TOL
    assert result.transpose_error < TOL


def test_every_op_has_doc_and_broadcast_or_several_cases() -> None:
    for op in REGISTRY.values():
        assert op.doc and len(op.cases) >= 3, op.name


@pytest.mark.parametrize("name", ["exp", "mul", "matmul", "softmax", "sum"])
def test_checker_catches_a_wrong_vjp(name: str) -> None:
    op = REGISTRY[name]

    def wrong_vjp(g, y, xs, **attrs):  # type: ignore[no-untyped-def]
        return [None if c is None else 1.5 * c for c in op.vjp(g, y, xs, **attrs)]

    bad = dataclasses.replace(op, vjp=wrong_vjp)
    rng = np.random.default_rng(1)
    case = op.cases[1]
    result = check_op(bad, sample(bad, case.shapes, rng), case.attrs, rng)
    assert result.vjp_error > 1e-3 and result.transpose_error > 1e-3


@pytest.mark.parametrize("name", ["exp", "mul", "matmul", "softmax", "sum"])
def test_checker_catches_a_wrong_jvp(name: str) -> None:
    op = REGISTRY[name]
    bad = dataclasses.replace(op, jvp=lambda ts, y, xs, **attrs: 0.5 * op.jvp(ts, y, xs, **attrs))
    rng = np.random.default_rng(2)
    case = op.cases[1]
    result = check_op(bad, sample(bad, case.shapes, rng), case.attrs, rng)
    assert result.jvp_error > 1e-3


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
