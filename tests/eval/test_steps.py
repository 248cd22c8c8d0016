"""`cg step`: the passes one node at a time (cg/eval/steps.py, cg/render/steps.py, cg/cli/step.py),
checked against the notes' own worked examples and, on every example graph, against `cg run`."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import GRAPHS, cg

import cg as cglib
from cg.check.gradients import draw_inputs
from cg.eval.steps import steps

EXAMPLES = sorted(p.name for p in GRAPHS.glob("*.yaml") if cglib.load(p).outputs)


def test_the_notes_backward_pass_ends_with_the_fan_out_sum() -> None:
    r = cg("step", "graphs/log3x2p5xy.yaml", "--inputs", "x=2,y=3", "--all")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    order = [m.group(1) for line in lines if (m := re.match(r"backward \d of 6: (\w+) =", line))]
    assert order == ["z", "e", "d", "c", "b", "a"]  # reverse topological order
    assert "  dz/dx = dz/dc × ∂c/∂x = 0.1190 × 3.0000 = 0.3571   (∂c/∂x = y = 3.0000)" in lines
    assert "  dz/dx += dz/da × ∂a/∂x = 0.0714 × 4.0000 = 0.2857   (∂a/∂x = 2x = 4.0000), so dz/dx = 0.6429" in lines
    assert "  dz/de = dz/dz × ∂z/∂e = 1.0000 × 0.0238 = 0.0238   (∂z/∂e = 1/e = 0.0238)" in lines  # the notes' 1/e
    assert "  dz/db = dz/de × ∂e/∂b = 0.0238 × 1.0000 = 0.0238   (∂e/∂b = 1)" in lines
    assert lines[-2:] == ["  dz/dx = 0.2857 from a + 0.3571 from c = 0.6429", "  dz/dy = 0.2381 (from c)"]


def test_the_staged_computation_with_its_accumulations() -> None:
    """003's staged computation: dx = (4), dx += (3), dx += (2); dy = (4), dy += (1), same numbers."""
    out = cg("step", "graphs/staged.yaml", "--all").out
    writes = re.findall(r"^  (df/d[xy]) (\+?=) df/d\w+ × ∂\w+/∂[xy] = (-?[\d.]+) × (-?[\d.]+) = (-?[\d.]+)", out, re.M)
    assert [(w[0], w[1], w[4]) for w in writes] == [
        ("df/dx", "=", "1.5832"), ("df/dy", "=", "1.5832"),  # (4) xpy = x + y
        ("df/dx", "+=", "-0.0358"),  # (3) sigx
        ("df/dx", "+=", "0.5121"),  # (2) num
        ("df/dy", "+=", "0.0090"),  # (1) sigy
    ]
    assert "so df/dx = 2.0596" in out and "so df/dy = 1.5922" in out  # the notes' dx and dy
    assert "  df/dden = df/dinvden × ∂invden/∂den = 3.0180 × -0.2623 = -0.7916" in out  # (7)
    assert "(∂sigx/∂x = sigx(1 − sigx) = 0.0452)" in out  # (3): the notes' (1 - sigx) * sigx


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_steps_add_up_to_the_run(name: str) -> None:
    """Every node's gradient when its step runs, and every name's last running total, are the run's."""
    graph = cglib.load(GRAPHS / name)
    given = dict(graph.expect.inputs) if graph.expect else {}
    result = cglib.run(graph, draw_inputs(graph, given, np.random.default_rng(0))[0])
    s = steps(result)
    assert [f.node.id for f in s.forward] == [n.id for n in graph.nodes]
    totals: dict[str, np.ndarray] = {}
    for b in s.backward:
        assert np.allclose(b.grad, result.grads[b.node.id])
        if b.node.id != result.of:  # its gradient is what its consumers sent, added up
            assert np.allclose(sum(e.flow for e in b.arrived), b.grad)  # type: ignore[misc]
        for share in b.shares:
            assert (share.before is None) == (share.edge.src not in totals)  # `=` first, then `+=`
            totals[share.edge.src] = share.after
    for name_, total in totals.items():
        assert np.allclose(total, result.grads[name_]), name_


def test_tensor_edges_show_the_vjp_formula() -> None:
    out = cg("step", "graphs/multiclass_logreg.yaml", "--all").out
    assert "  dl/dx = Wᵀ g, g = dl/dWx: [-0.2071, 0.7401, 0.0890, -2.2890]" in out
    assert "  dl/dp = dl/dlogp × 1/p, elementwise: [0.0000, 0.0000, 51819.4428]" in out


def test_forward_mode_steps_the_tangents() -> None:
    out = cg("step", "graphs/log3x2p5xy.yaml", "--inputs", "x=2,y=3", "--wrt", "x").out
    assert "  dc/dx = ∂c/∂x × dx/dx + ∂c/∂y × dy/dx = 3.0000 × 1.0000 + 2.0000 × 0.0000 = 3.0000" in out
    assert out.splitlines()[-1] == "  dz/dx = ∂z/∂e × de/dx = 0.0238 × 27.0000 = 0.6429"
    assert "backward" not in out


def test_markdown_worksheet_and_usage_errors() -> None:
    md = cg("step", "graphs/log3x2p5xy.yaml", "-f", "markdown").out
    assert md.startswith("# The passes of log3x2p5xy, step by step\n")
    assert "## Forward" in md and "## Backward" in md and "    - `dz/dx = 0.2857 from a + 0.3571 from c = 0.6429`" in md
    bad = cg("step", "graphs/log3x2p5xy.yaml", "--wrt", "x", "--of", "z")
    assert bad.code == 2 and "--of is for the backward pass" in bad.err


def test_on_a_terminal_one_step_per_enter_and_q_quits(monkeypatch: pytest.MonkeyPatch) -> None:
    import cg.cli.step as step_module

    monkeypatch.setattr(step_module, "is_tty", lambda stream: True)
    r = cg("step", "graphs/log3x2p5xy.yaml", stdin="\n\nq\n")
    assert r.code == 0, r.err
    assert re.findall(r"^forward \d", r.out, re.M) == ["forward 1", "forward 2", "forward 3"]  # Enter, Enter, q
    assert "Enter: next step, q: quit" in r.err
