"""Op.reads, over the registry: what an op's VJP reads of the forward pass beyond shapes. The
lean passes (cg/eval/lean.py) free the rest and hand the VJP an all-NaN stand-in of the same shape,
so each op's VJP must give the same cotangents with those stand-ins, at every test case."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cg.check.fd import sample
from cg.ops import REGISTRY, Case, Op
from cg.ops.base import kernel_reads
from cg.ops.kernels import d_exp, d_sin, d_tanh, div_partials, sub_partials

CASES = [
    pytest.param(op, case, id=f"{op.name}-{'x'.join(str(list(s)) for s in case.shapes)}-{case.attrs or ''}")
    for op in REGISTRY.values()
    for case in op.cases
]


def nan_like(v: np.ndarray) -> np.ndarray:
    return np.broadcast_to(np.array(np.nan), np.shape(v))


def stand_ins(op: Op, xs: list[np.ndarray], y: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """The arguments and output with what the op says it does not read replaced by NaN stand-ins
    (integer arguments are kept: the plan frees float values only)."""
    reads = op.reads
    if reads is None:
        return xs, y
    kept = [x if k in reads or k in op.int_args else nan_like(x) for k, x in enumerate(xs)]
    return kept, y if "y" in reads else nan_like(y)


@pytest.mark.parametrize(("op", "case"), CASES)
def test_a_vjp_reads_nothing_beyond_op_reads(op: Op, case: Case) -> None:
    rng = np.random.default_rng(0)
    xs = sample(op, case.shapes, rng, case.attrs)
    y = op.forward(*xs, **case.attrs)
    g = rng.normal(size=np.shape(y))
    want = op.vjp(g, y, xs, **case.attrs)
    xs2, y2 = stand_ins(op, xs, y)
    got = op.vjp(g, y2, xs2, **case.attrs)
    for w, c in zip(want, got):
        assert (w is None) == (c is None)
        if w is not None:
            assert np.array_equal(np.asarray(w), np.asarray(c)), op.name


def test_kernel_reads_comes_from_the_kernel_code() -> None:
    assert kernel_reads(d_tanh, ("x", "y")) == {"y"}
    assert kernel_reads(d_exp, ("x", "y")) == {"y"}
    assert kernel_reads(d_sin, ("x", "y")) == {0}
    assert kernel_reads(sub_partials, ("a", "b", "y")) == frozenset()
    assert kernel_reads(div_partials, ("a", "b", "y")) == {1, "y"}
    assert kernel_reads(np.sin, ("x", "y")) is None  # no Python code: everything


def test_a_wrong_reads_is_caught() -> None:
    """tanh's VJP reads y: an Op.reads that says it reads x instead gives NaN cotangents."""
    op = dataclasses.replace(REGISTRY["tanh"], reads=frozenset({0}))
    x = np.linspace(-1, 1, 5)
    y = op.forward(x)
    xs2, y2 = stand_ins(op, [x], y)
    assert np.isnan(op.vjp(np.ones(5), y2, xs2)[0]).all()
