"""The interpreter through the Python API: fan-out, repeated arguments, determinism, seeds,
numeric failures and run-time inputs."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import cg
from cg.errors import NumericError, UsageError
from cg.eval.interp import backward, forward

TEXTBOOK = """
cg: 1
inputs: {x: 2.0, y: 3.0}
nodes:
  z: {op: log, in: [e]}
  e: {op: add, in: [b, d]}
  d: {op: mul, in: [5, c]}
  c: {op: mul, in: [x, y]}
  b: {op: mul, in: [3, a]}
  a: {op: square, in: [x]}
outputs: [z]
"""


def test_nodes_in_any_order_are_sorted_deterministically() -> None:
    g = cg.loads(TEXTBOOK)
    # Declaration order breaks ties among ready nodes: d's chain (c, d) before b's (a, b).
    assert [n.id for n in g.nodes] == ["c", "d", "a", "b", "e", "z"]
    assert float(cg.run(g).grad("x")) == pytest.approx(27 / 42)


def test_order_does_not_depend_on_hash_seed() -> None:
    code = "import cg; print([n.id for n in cg.loads(open('graphs/staged.yaml').read()).nodes])"
    outs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}, check=True).stdout
        for seed in ("0", "1", "12345")
    }
    assert len(outs) == 1


def test_running_twice_gives_the_same_gradients() -> None:
    g = cg.loads(TEXTBOOK)
    first, second = cg.run(g), cg.run(g)
    assert all(np.array_equal(first.grads[k], second.grads[k]) for k in first.grads)
    env = forward(g, {"x": np.array(2.0), "y": np.array(3.0)})
    assert backward(g, env, "z", np.array(1.0)) == backward(g, env, "z", np.array(1.0))


def test_mul_x_x_gives_2x_and_fan_out_sums() -> None:
    text = "cg: 1\ninputs: {x: 3.0}\nnodes: {s: {op: mul, in: [x, x]}, t: {op: add, in: [s, x, x]}}\noutputs: [t]"
    g = cg.loads(text)
    assert float(cg.run(g).grad("x")) == 2 * 3.0 + 2


def test_unused_node_gets_zero_gradient_and_int_gets_none() -> None:
    g = cg.loads(
        "cg: 1\ninputs: {x: 1.0, k: {dtype: int, value: 2}}\n"
        "nodes: {y: {op: exp, in: [x]}, other: {op: sin, in: [x]}, kk: {op: add, in: [k, k]}}\noutputs: [y]"
    )
    r = cg.run(g)
    assert float(r.grad("other")) == 0.0 and r.grad("k") is None and r.grad("kk") is None
    assert r.value("kk").dtype.kind == "i" and int(r.value("kk")) == 4


def test_log_of_negative_names_the_node() -> None:
    g = cg.loads("cg: 1\ninputs: {x: -1.0}\nnodes:\n  a: {op: neg, in: [x]}\n  b: {op: log, in: [x]}\n"
                 "  c: {op: exp, in: [b]}\noutputs: [c]", "t.yaml")
    with pytest.raises(NumericError) as e:
        cg.run(g)
    d = e.value.diagnostics[0]
    assert d.node == "b" and d.code == "CG200" and "log(x)" in d.message and (d.pos.line, d.pos.col) == (5, 3)
    r = cg.run(g, on_nonfinite="keep")
    assert r.nonfinite[:2] == ("b", "c") and np.isnan(r.value("b"))


def test_overflow_is_reported() -> None:
    g = cg.loads("cg: 1\ninputs: {x: 1000.0}\nnodes: {e: {op: exp, in: [x]}}\noutputs: [e]")
    with pytest.raises(NumericError, match="non-finite value"):
        cg.run(g)


def test_nonfinite_gradient_blames_the_vjp_that_sent_it() -> None:
    g = cg.loads("cg: 1\ninputs: {x: 0.0}\nnodes: {r: {op: sqrt, in: [x]}}\noutputs: [r]")
    with pytest.raises(NumericError) as e:
        cg.run(g)
    assert e.value.diagnostics[0].node == "r" and "gradient" in e.value.diagnostics[0].message


def test_non_scalar_output_needs_a_seed() -> None:
    g = cg.loads("cg: 1\ninputs: {v: [1.0, 2.0, 3.0]}\nnodes: {s: {op: square, in: [v]}}\noutputs: [s]")
    with pytest.raises(UsageError, match="op: sum"):
        cg.run(g)
    r = cg.run(g, seed=np.array([1.0, 0.0, 0.0]))
    assert r.grad("v").tolist() == [2.0, 0.0, 0.0]
    with pytest.raises(UsageError, match="shape"):
        cg.run(g, seed=np.array([1.0, 0.0]))


def test_inputs_at_run_time() -> None:
    g = cg.loads("cg: 1\ninputs: {W: {shape: [2, 3]}, x: [1.0, 2.0, 3.0]}\n"
                 "nodes: {y: {op: matmul, in: [W, x]}, s: {op: sum, in: [y]}}\noutputs: [s]")
    with pytest.raises(UsageError, match="missing value for input W"):
        cg.run(g)
    with pytest.raises(UsageError, match=r"has shape \[2, 3\], got a value of shape \[3\]"):
        cg.run(g, {"W": np.ones(3)})
    with pytest.raises(UsageError, match="did you mean 'W'"):
        cg.run(g, {"w": np.ones((2, 3))})
    # x has only a default: another shape is accepted, and shapes are checked again.
    g2 = cg.loads("cg: 1\ninputs: {W: [[1.0, 1.0]], x: [1.0, 1.0]}\n"
                  "nodes: {y: {op: matmul, in: [W, x]}, s: {op: sum, in: [y]}}\noutputs: [s]")
    assert cg.run(g2, {"W": np.ones((2, 4)), "x": np.ones(4)}).value("s") == 8.0
    with pytest.raises(UsageError, match="inner dimensions"):
        cg.run(g, {"W": np.ones((2, 3)), "x": np.ones(4)})


def test_index_out_of_range_is_a_numeric_error() -> None:
    g = cg.loads("cg: 1\ninputs: {v: [1.0, 2.0], i: {dtype: int, value: 5}}\n"
                 "nodes: {p: {op: index, in: [v, i]}}\noutputs: [p]")
    with pytest.raises(NumericError, match="out of range"):
        cg.run(g)


def test_long_chain_has_no_recursion() -> None:
    n = 20_000  # 20 times the recursion limit (a run of 250,000 nodes: tests/cli/test_hardening.py)
    lines = ["cg: 1", "inputs: {x: 0.5}", "nodes:", "  n0: {op: sin, in: [x]}"]
    lines += [f"  n{i}: {{op: sin, in: [n{i - 1}]}}" for i in range(1, n)]
    lines.append(f"outputs: [n{n - 1}]")
    g = cg.loads("\n".join(lines))
    r = cg.run(g)
    x, d = 0.5, 1.0
    for _ in range(n):
        d *= np.cos(x)
        x = np.sin(x)
    assert float(r.value(f"n{n - 1}")) == pytest.approx(x) and float(r.grad("x")) == pytest.approx(d)


def test_nonfinite_gradient_is_blamed_on_the_user_that_sent_it() -> None:
    # z feeds sqrt (infinite slope at 0) and mul; the blame goes to the sqrt node, not the last user.
    g = cg.loads("cg: 1\ninputs: {z: 0.0}\nnodes:\n  q: {op: sqrt, in: [z]}\n  u: {op: mul, in: [3, z]}\n"
                 "  y: {op: add, in: [q, u]}\noutputs: [y]")
    with pytest.raises(NumericError) as e:
        cg.run(g)
    assert e.value.diagnostics[0].node == "q"


def test_the_result_reads_its_slots_when_asked() -> None:
    """cg.run's values and gradients are mappings over the plan's slot lists, made on first access
    (cg.eval.interp.Slots): the same entries as the dicts they replace, each made once."""
    from cg.eval.interp import Slots

    graph = cg.loads("cg: 1\ninputs: {x: 2.0, k: {value: 3, dtype: int}, u: 1.0}\n"
                        "nodes:\n  a: {op: mul, in: [x, k]}\n  b: {op: sin, in: [u]}\n  z: {op: log, in: [a]}\n"
                        "outputs: [z]\n", "lazy.yaml")
    result = cg.run(graph)
    assert isinstance(result.values, Slots) and isinstance(result.grads, Slots)
    assert list(result.values) == ["x", "k", "u", "a", "b", "z"] == list(result.grads)
    assert len(result.values) == 6 and "z" in result.values and "nope" not in result.grads
    assert result.values["a"] == 6.0 and isinstance(result.values["a"], np.ndarray)
    assert result.grads["x"] == pytest.approx(0.5) and result.grads["k"] is None  # an integer: no gradient
    assert result.grads["u"] == 0.0 and result.grads["b"].dtype == np.float64  # off the path to z: zeros
    assert result.grads["x"] is result.grads["x"]  # made once
    with pytest.raises(KeyError):
        result.values["nope"]
    assert dict(result.grads) == {k: result.grads[k] for k in result.grads}


@pytest.mark.parametrize("bad", ["x", "W"])
def test_the_one_vectorised_scan_still_names_what_is_not_finite(bad: str) -> None:
    """Numbers go through one float array, arrays one by one: a NaN in either is found and named."""
    graph = cg.loads("cg: 1\ninputs: {x: 1.0, W: [1.0, 2.0]}\n"
                        "nodes:\n  a: {op: log, in: [x]}\n  s: {op: sum, in: [W]}\n  v: {op: log, in: [W]}\n"
                        "  t: {op: sum, in: [v]}\n  z: {op: add, in: [a, s, t]}\noutputs: [z]\n", "scan.yaml")
    given = {"x": -1.0} if bad == "x" else {"W": np.array([1.0, -2.0])}
    result = cg.run(graph, given, on_nonfinite="keep")
    assert result.nonfinite[0] == ("a" if bad == "x" else "v")
