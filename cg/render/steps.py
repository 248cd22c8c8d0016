"""`cg step`'s text: each step of the passes as the lines a teacher would write on the board.

    backward 4 of 6: c = mul(x, y)
      dz/dc = 0.1190 (from d)
      dz/dx = dz/dc × ∂c/∂x = 0.1190 × 3.0000 = 0.3571   (∂c/∂x = y = 3.0000)
      dz/dy = dz/dc × ∂c/∂y = 0.1190 × 2.0000 = 0.2381   (∂c/∂y = x = 2.0000)

A share that is not the first for its name is written `+=` with the new total, and an input's
gradient is shown at the end as the sum of what arrived from each consumer (the fan-out sum).
Each local derivative is also shown as its op's formula in the node's own names (cg/ops/formula.py);
edges between tensors show the vector-Jacobian product's formula and value (the local derivative
is a Jacobian there, not a number).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from cg.eval.edges import Edge, formula_text
from cg.eval.steps import BackwardStep, ForwardStep, Share, Steps
from cg.graph.ir import Node
from cg.printable import printable
from cg.render.table import arg_text, fmt_value, is_number


def _name(name: str) -> str:
    """A name in d z/d name: an inner id of a call (h/z) in parentheses, so d(loss)/d(loss/ll) reads right."""
    shown = printable(name)
    return f"({shown})" if "/" in shown else shown


def d(of: str, name: str) -> str:
    return f"d{_name(of)}/d{_name(name)}"


def _num(v: np.ndarray | None, precision: int) -> str:
    return fmt_value(None if v is None else np.asarray(v), precision)


def _scalar(v: np.ndarray | None) -> bool:
    return v is not None and np.size(v) == 1


def _call(node: Node) -> str:
    return f"{printable(node.id)} = {node.op.name}({', '.join(printable(arg_text(a)) for a in node.args)})"


def forward_lines(s: Steps, step: ForwardStep, k: int, precision: int) -> list[str]:
    lines = [f"forward {k} of {len(s.forward)}: {_call(step.node)} = {_num(step.value, precision)}"]
    if s.result.tangents is not None:
        lines.append("  " + _tangent(s, step, precision))
    return lines


def _dir(s: Steps, name: str) -> str:
    """d name / d (the direction): d a/d x for one --wrt input, else ṫ(a)."""
    wrt = s.result.wrt
    return f"d{_name(name)}/d{_name(wrt[0])}" if len(wrt) == 1 else f"t({name})"


def _tangent(s: Steps, step: ForwardStep, precision: int) -> str:
    """The node's tangent as the sum of local derivative × the argument's tangent, edge by edge."""
    tangents = s.result.tangents or {}
    node, terms, numbers = step.node, [], []
    for e in step.incoming:
        t = tangents.get(e.src)
        if t is None:
            continue  # no tangent reaches that argument
        terms.append(f"∂{_name(node.id)}/∂{_name(e.src)} × {_dir(s, e.src)}")
        if _scalar(e.local) and _scalar(t):
            numbers.append(f"{_num(e.local, precision)} × {_num(t, precision)}")
    name = _dir(s, node.id)
    if step.tangent is None or not terms:
        return f"{name} = 0 (no tangent reaches it)"
    shown = f" = {' + '.join(numbers)}" if len(numbers) == len(terms) else ""
    return f"{name} = {' + '.join(terms)}{shown} = {_num(step.tangent, precision)}"


def backward_lines(s: Steps, step: BackwardStep, k: int, precision: int) -> list[str]:
    of, node = s.result.of or "", step.node
    d_node = d(of, node.id)
    lines = [f"backward {k} of {len(s.backward)}: {_call(node)}",
             "  " + _arrived(d_node, step.grad, step.arrived, precision, seed=node.id == of)]
    lines += ["  " + _share(of, d_node, share, step.grad, precision) for share in step.shares]
    return lines


def _arrived(d: str, grad: np.ndarray, edges: tuple[Edge, ...], precision: int, *, seed: bool = False) -> str:
    """d = what each consumer sent, added up (the fan-out sum), or the seed."""
    if seed and not edges:
        return f"{d} = {_num(grad, precision)} (the seed: the output itself)"
    if len(edges) == 1 and not seed:
        return f"{d} = {_num(grad, precision)} (from {printable(edges[0].dst)})"
    parts = [f"{_num(e.flow, precision)} from {printable(e.dst)}" for e in edges]
    parts = (["the seed 1"] if seed else []) + parts
    return f"{d} = {' + '.join(parts)} = {_num(grad, precision)}"


def _share(of: str, d_node: str, share: Share, grad: np.ndarray, precision: int) -> str:
    e = share.edge
    d_src = d(of, e.src)
    sign = "=" if share.before is None else "+="
    formula = formula_text(e, safe=printable)
    partial = f"∂{_name(e.dst)}/∂{_name(e.src)}"
    if _scalar(e.local) and _scalar(grad):
        number = _num(e.local, precision)
        local = f"{partial} = {formula}" if formula and e.formula_value is not None else partial
        if not is_number(formula):  # "∂e/∂b = 1", not "= 1 = 1.0000"
            local += f" = {number}"
        text = (f"{d_src} {sign} {d_node} × {partial} = {_num(grad, precision)} × {number}"
                f" = {_num(e.flow, precision)}   ({local})")
    elif formula and e.formula is not None and e.formula.kind == "local":  # elementwise, on tensors
        text = f"{d_src} {sign} {d_node} × {formula}, elementwise: {_num(e.flow, precision)}"
    else:  # the local derivative is a Jacobian; what flows is the VJP, with g = d_node
        rule = f"{formula}, g = {d_node}" if formula else f"the VJP of {_name(e.dst)}"
        text = f"{d_src} {sign} {rule}: {_num(e.flow, precision)}"
    if share.before is not None:
        text += f", so {d_src} = {_num(share.after, precision)}"
    return text


def input_lines(s: Steps, precision: int) -> list[str]:
    """Each float input's gradient as the sum of the streams it received."""
    of = s.result.of or ""
    lines = []
    for name, edges in s.inputs.items():
        grad = s.result.grads.get(name)
        if grad is None or not edges:
            continue
        lines.append("  " + _arrived(d(of, name), np.asarray(grad), edges, precision))
    return ["inputs (no step of their own: each gets the sum of what its consumers sent)", *lines] if lines else []


def all_steps(s: Steps, precision: int) -> Iterator[list[str]]:
    """The steps in the order cg runs them: each one a block of lines."""
    for k, f in enumerate(s.forward, 1):
        yield forward_lines(s, f, k, precision)
    for k, b in enumerate(s.backward, 1):
        yield backward_lines(s, b, k, precision)
    if s.backward and (lines := input_lines(s, precision)):
        yield lines


def to_text(s: Steps, precision: int) -> str:
    return "".join("\n".join(block) + "\n" for block in all_steps(s, precision))


def to_markdown(s: Steps, precision: int) -> str:
    """The steps as a worksheet: a heading per pass, a numbered item per step, its lines below."""
    title = printable(s.result.graph.name or "graph")
    out = [f"# The passes of {title}, step by step", ""]
    heading = None
    for block in all_steps(s, precision):
        kind = block[0].split(" ", 1)[0]
        if kind != heading:
            heading = kind
            out += ([""] if heading and len(out) > 2 else []) + [
                f"## {kind.capitalize()}" if kind in ("forward", "backward") else "## Inputs", ""]
        if kind in ("forward", "backward"):
            where, _, what = block[0].partition(": ")
            out.append(f"- **{where}:** `{what}`")
        else:
            out.append(f"- {block[0]}")
        out += [f"    - `{line.strip()}`" for line in block[1:]]  # code: ids with _ stay as they are
    return "\n".join(out) + "\n"
