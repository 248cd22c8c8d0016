"""sign, step, broadcast_to, sum_to and onehot (the ops issue 14's VJP graphs are written with):
what the registry-wide tests cannot say: their values at chosen points, the dtypes they give, and
the shapes, attributes and indices they refuse, with the codes a user sees."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

import cg as cglib
from cg.check.fd import check_op
from cg.compile import compile_module
from cg.errors import CgError, NumericError
from cg.ops import REGISTRY, OpFailure, ShapeMismatch


def graph(nodes: str, inputs: str = "{x: [[1.0, -2.0, 0.0]], i: {dtype: int, value: [0, 2]}}") -> Any:
    return cglib.loads(f"cg: 1\ninputs: {inputs}\nnodes:\n  y: {nodes}\noutputs: [y]\n")


def refusal(nodes: str, inputs: str | None = None) -> tuple[str, str]:
    with pytest.raises(CgError) as e:
        graph(nodes) if inputs is None else graph(nodes, inputs)
    d = e.value.diagnostics[0]
    return d.code, d.message


# ---- sign and step ---------------------------------------------------------------------------------


def test_sign_and_step_values_and_their_zero_derivative() -> None:
    x = np.array([-2.0, -0.0, 0.0, 3.0])
    sign, step = REGISTRY["sign"], REGISTRY["step"]
    assert sign.forward(x).tolist() == [-1.0, 0.0, 0.0, 1.0]
    assert step.forward(x).tolist() == [0.0, 0.0, 0.0, 1.0]  # 0 at 0, as relu's derivative
    assert step.forward(x).tolist() == (REGISTRY["relu"].df(x, x) * 1.0).tolist()  # type: ignore[misc]
    g = np.array([1.0, 2.0, 3.0, 4.0])
    for op in (sign, step):
        assert op.vjp(g, op.forward(x), [x])[0].tolist() == [0.0] * 4
        assert op.jvp([g], op.forward(x), [x]).tolist() == [0.0] * 4


def test_sign_keeps_integers_and_step_gives_floats() -> None:
    g = cglib.loads("cg: 1\ninputs: {k: {dtype: int, value: [-3, 0, 5]}}\n"
                    "nodes: {s: {op: sign, in: [k]}, t: {op: step, in: [k]}}\noutputs: [s, t]\n")
    assert g.avals["s"].dtype == "int" and g.avals["t"].dtype == "float"
    r = cglib.run(g)
    assert r.values["s"].dtype.kind == "i" and r.values["s"].tolist() == [-1, 0, 1]
    assert r.values["t"].dtype == np.float64 and r.values["t"].tolist() == [0.0, 0.0, 1.0]
    x32 = np.array([-1.0, 2.0], np.float32)
    assert REGISTRY["step"].forward(x32).dtype == np.float32 and REGISTRY["sign"].forward(x32).dtype == np.float32


def test_the_checker_skips_the_jump_of_sign_at_0_and_still_catches_a_wrong_rule() -> None:
    x = np.array([-1.0, 0.0, 2.0])
    found = check_op(REGISTRY["sign"], [x], {}, np.random.default_rng(0))
    assert found.problem is None and found.kinks >= 1  # no derivative at 0: not checked there
    wrong = dataclasses.replace(REGISTRY["sign"], vjp=lambda g, y, xs: [g], df=None)
    found = check_op(wrong, [x], {}, np.random.default_rng(0))
    assert found.problem is not None and found.problem.startswith("VJP disagrees")  # -1 and 2 are checked


def test_sign_compiles_to_floats_on_python_floats() -> None:
    g = cglib.loads("cg: 1\ninputs: {x: -2.0}\nnodes: {s: {op: sign, in: [x]}, t: {op: step, in: [x]}}\n"
                    "outputs: [s]\n")
    module = compile_module(g)
    v = module.forward()
    assert v.s == -1.0 and type(v.s) is float and v.t == 0.0 and type(v.t) is float


# ---- broadcast_to and sum_to ----------------------------------------------------------------------


def test_broadcast_to_gives_a_new_array_and_sums_its_gradient_back() -> None:
    op = REGISTRY["broadcast_to"]
    x = np.array([[1.0], [2.0]])
    y = op.forward(x, shape=[3, 2, 2])
    assert y.shape == (3, 2, 2) and y.flags.writeable and not np.shares_memory(x, y)
    g = np.arange(12.0).reshape(3, 2, 2)
    assert op.vjp(g, y, [x], shape=[3, 2, 2])[0].tolist() == [[0 + 1 + 4 + 5 + 8 + 9], [2 + 3 + 6 + 7 + 10 + 11]]


def test_sum_to_sums_leading_and_size_1_axes_and_spreads_its_gradient() -> None:
    op = REGISTRY["sum_to"]
    x = np.arange(24.0).reshape(4, 2, 3)
    y = op.forward(x, shape=[1, 3])
    assert y.tolist() == [x.sum(axis=(0, 1)).tolist()]
    g = np.array([[1.0, 2.0, 3.0]])
    assert np.array_equal(op.vjp(g, y, [x], shape=[1, 3])[0], np.broadcast_to(g, (4, 2, 3)))
    assert np.array_equal(REGISTRY["broadcast_to"].forward(g, shape=[4, 2, 3]), op.vjp(g, y, [x], shape=[1, 3])[0])
    k = np.array([[1, 2], [3, 4]])
    assert op.forward(k, shape=[2]).tolist() == [4, 6] and op.forward(k, shape=[2]).dtype.kind == "i"


@pytest.mark.parametrize(("nodes", "words"), [
    ("{op: broadcast_to, in: [x], shape: [2, 2]}", "broadcast_to: cannot broadcast [1, 3] to [2, 2]"),
    ("{op: broadcast_to, in: [x], shape: [3]}", "broadcast_to: cannot broadcast [1, 3] to [3]"),  # more axes
    ("{op: sum_to, in: [x], shape: [2, 3]}", "sum_to: cannot sum [1, 3] to [2, 3]: the target must broadcast"),
    ("{op: sum_to, in: [x], shape: [1, 1, 3]}", "sum_to: cannot sum [1, 3] to [1, 1, 3]"),
    ("{op: sum_to, in: [x], shape: [2]}", "sum_to: cannot sum [1, 3] to [2]"),
])
def test_shapes_that_do_not_broadcast_are_refused(nodes: str, words: str) -> None:
    code, message = refusal(nodes)
    assert code == "CG120" and words in message, message


@pytest.mark.parametrize("name", ["broadcast_to", "sum_to"])
def test_the_shape_rules_refuse_what_the_schema_would(name: str) -> None:
    with pytest.raises(ShapeMismatch, match="negative"):
        REGISTRY[name].shape([(1, 3)], shape=[-1, 3])
    code, message = refusal(f"{{op: {name}, in: [x], shape: [-1, 3]}}")
    assert code == "CG100" and "must be 0 or more" in message, message
    code, message = refusal(f"{{op: {name}, in: [x]}}")
    assert code == "CG100" and "missing required key 'shape'" in message, message


def test_broadcast_to_and_sum_to_are_inverse_in_shape() -> None:
    both = cglib.loads("cg: 1\ninputs: {x: [[1.0, 2.0, 3.0]]}\nnodes:\n"
                       "  b: {op: broadcast_to, in: [x], shape: [4, 2, 3]}\n"
                       "  y: {op: sum_to, in: [b], shape: [1, 3]}\noutputs: [y]\n")
    r = cglib.run(both, seed=np.ones((1, 3)))
    assert r.values["y"].tolist() == [[8.0, 16.0, 24.0]] and r.grads["x"].tolist() == [[8.0, 8.0, 8.0]]


# ---- onehot -----------------------------------------------------------------------------------------


def test_onehot_counts_a_negative_index_from_the_end() -> None:
    op = REGISTRY["onehot"]
    y = op.forward(np.array([[0, -1], [2, -3]]), n=3)
    assert y.shape == (2, 2, 3) and y.dtype == np.float64
    assert y.tolist() == [[[1, 0, 0], [0, 0, 1]], [[0, 0, 1], [1, 0, 0]]]
    assert op.forward(np.array(1), n=2).tolist() == [0.0, 1.0]
    assert op.vjp(np.ones((2, 2, 3)), y, [np.zeros((2, 2), int)], n=3) == [None]


@pytest.mark.parametrize("i", [3, -4, [0, 7]])
def test_onehot_out_of_range_is_an_op_error_cg201(i: Any) -> None:
    with pytest.raises(OpFailure, match="out of range for onehot with n = 3"):
        REGISTRY["onehot"].forward(np.asarray(i), n=3)
    g = graph("{op: onehot, in: [i], n: 3}", f"{{i: {{dtype: int, value: {i}}}}}")
    with pytest.raises(NumericError) as e:
        cglib.run(g)
    d = e.value.diagnostics[0]
    assert d.code == "CG201" and "index" in d.message and "out of range" in d.message, d.message
    with pytest.raises(IndexError, match="out of range"):  # the compiled module refuses it too
        compile_module(g).forward()


@pytest.mark.parametrize(("n", "words"), [(0, "must be 1 or more, got 0"), (-2, "must be 1 or more, got -2"),
                                          (1.5, "1.5"), ("3", "'3'")])
def test_onehot_n_below_1_or_not_an_integer_is_refused_by_the_schema(n: Any, words: str) -> None:
    code, message = refusal(f"{{op: onehot, in: [i], n: {n!r}}}".replace("'", '"'))
    assert code == "CG100" and words.replace("'", '"') in message.replace("'", '"'), message


def test_onehot_needs_n_and_an_integer_index() -> None:
    code, message = refusal("{op: onehot, in: [i]}")
    assert code == "CG100" and "missing required key 'n'" in message, message
    code, message = refusal("{op: onehot, in: [x], n: 3}")
    assert code == "CG121" and "needs an integer" in message, message
    with pytest.raises(ShapeMismatch, match="at least 1"):
        REGISTRY["onehot"].shape([(2,)], n=0)  # the schema's rule, for callers of the op record


def test_cg_check_draws_an_onehot_index_in_range() -> None:
    from cg.check.gradients import draw_inputs

    g = cglib.loads("cg: 1\ninputs: {i: {dtype: int, shape: [50]}, w: [1.0, 2.0, 3.0]}\n"
                    "nodes: {o: {op: onehot, in: [i], n: 3}, y: {op: matmul, in: [o, w]}}\noutputs: [y]\n")
    values, drawn = draw_inputs(g, {}, np.random.default_rng(0))
    assert drawn == ["i"] and values["i"].min() >= 0 and values["i"].max() < 3
