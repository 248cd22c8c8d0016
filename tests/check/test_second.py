"""`cg check --order 2` (cg/check/second.py): Hessian-vector products of the gradient graph against
differences of gradients, and per node, each op's second derivative; both catch a second-order
rule that is wrong although every first-order check passes."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
from conftest import cg

import cg as cglib
from cg.ops import REGISTRY, installed


def test_every_example_graph_passes_at_order_2() -> None:
    r = cg("check", "--order", "2", "--per-node", "graphs/")
    assert r.code == 0, r.out + r.err
    assert r.out.count("(H·v)") >= 13 and "FAIL" not in r.out


def test_a_wrong_second_order_rule_is_caught_where_order_1_sees_nothing(tmp_path: Any) -> None:
    """broadcast_to appears only in backward passes (the VJP of a sum): a wrong JVP of it leaves every
    first-order check right and the Hessian of z = (sum x)² wrong."""
    op = REGISTRY["broadcast_to"]
    path = tmp_path / "square_of_sum.yaml"
    path.write_text("cg: 1\ninputs:\n  x: [0.5, -1.0, 2.0]\nnodes:\n  s: {op: sum, in: [x]}\n"
                    "  z: {op: square, in: [s]}\noutputs: [z]\n", encoding="utf-8")

    def wrong_jvp(ts: Any, y: Any, xs: Any, **attrs: Any) -> Any:
        return 2 * op.jvp(ts, y, xs, **attrs)

    with installed(dataclasses.replace(op, jvp=wrong_jvp)):
        first = cg("check", str(path), "--per-node")
        second = cg("check", str(path), "--order", "2")
        per_node = cg("check", str(path), "--order", "2", "--per-node")
    good = cg("check", str(path), "--order", "2", "--per-node")
    assert first.code == 0 and good.code == 0, first.out + good.out
    assert second.code == 1 and "Hessian-vector product disagrees" in second.out + second.err
    assert per_node.code == 1 and "[CG404]" in per_node.out + per_node.err
    assert "node 's': op 'sum': second derivative disagrees" in per_node.out + per_node.err


def test_ops_with_a_zero_second_derivative_say_so() -> None:
    doc = {"cg": 1, "inputs": {"x": [0.5, -1.0, 2.0]}, "nodes": {"r": {"op": "relu", "in": ["x"]},
           "a": {"op": "abs", "in": ["r"]}, "z": {"op": "sum", "in": ["a"]}}, "outputs": ["z"]}
    report = cglib.check(cglib.loads(json.dumps(doc), "relu.json"), order=2)
    assert report.passed, str(report)
    assert any("abs, relu: second derivative 0 almost everywhere" in n for n in report.notes)
    rows = {r.name: r for r in report.rows}
    assert rows["x (H·v)"].ok and rows["x (H·v)"].abs_err == 0.0


def test_order_2_through_the_api_on_a_tensor_output() -> None:
    """A non-scalar output is checked as <r, out> for a random r, at order 2 as at order 1."""
    doc = {"cg": 1, "inputs": {"x": [0.5, -1.0, 2.0]}, "nodes": {"s": {"op": "softmax", "in": ["x"]}},
           "outputs": ["s"]}
    report = cglib.check(cglib.loads(json.dumps(doc), "softmax.json"), order=2)
    assert report.passed and "x (H·v)" in {r.name for r in report.rows}, str(report)
    assert np.isfinite(report.rows[-1].abs_err)
