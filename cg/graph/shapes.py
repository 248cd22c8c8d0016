"""Shape and dtype inference over nodes in topological order, with short messages for what fails."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping

from cg.graph.ir import MAX_DIMS, Aval, Const, Node
from cg.limits import Limits
from cg.limits import current as current_limits
from cg.ops import Shape, ShapeMismatch


def _arg_avals(node: Node, avals: Mapping[str, Aval]) -> list[Aval] | None:
    """Shapes and dtypes of a node's arguments, or None if one of them is unknown."""
    out = []
    for a in node.args:
        aval = Aval(a.value.shape, a.dtype) if isinstance(a, Const) else avals.get(a)
        if aval is None:
            return None
        out.append(aval)
    return out


def too_big(shape: Shape, most: int) -> bool:
    """Over the element limit; a dimension over it too, even with a 0 elsewhere ([0, 10**20] holds
    no number, but numpy cannot make it)."""
    return math.prod(shape) > most or max(shape, default=0) > most


def size_text(shape: Shape) -> str:
    size = math.prod(shape)
    return f"{size:,} numbers" if size else f"a dimension of {max(shape):,}"


def _checked_shape(node: Node, shapes: list[Shape]) -> Shape:
    shape = node.op.shape(shapes, **node.attrs)
    # numpy cannot hold more dimensions (64, 32 before numpy 2): refuse now, not mid-run.
    if len(shape) > MAX_DIMS:
        raise ShapeMismatch(f"{node.op.name}: the result would have {len(shape)} dimensions; at most {MAX_DIMS}")
    if too_big(shape, most := current_limits().max_elements):  # refuse now, not by MemoryError mid-run
        msg = f"{node.op.name}: the result would have {size_text(shape)}, more than {most:,};"
        raise ShapeMismatch(f"{msg} {Limits().hint('max_elements')}", code="CG004")
    return shape


def short_lists(message: str) -> str:
    """Shapes and axes of any length appear in shape messages; keep each to a few entries."""

    def cut(m: re.Match[str]) -> str:
        items = m.group(1).split(", ")
        return m.group(0) if len(items) <= 8 else f"[{', '.join(items[:4])}, ... ({len(items)} entries)]"

    return re.sub(r"\[(-?\d+(?:, -?\d+)*)\]", cut, message)


def infer(nodes: Iterable[Node], avals: dict[str, Aval]) -> list[tuple[Node, str, str, int | None]]:
    """Shapes and dtypes of every node, in order, into `avals`.

    Returns the problems as (node, code, message, argument index); a node whose arguments
    are unknown (because of an earlier problem) is skipped quietly.
    """
    problems: list[tuple[Node, str, str, int | None]] = []
    for node in nodes:
        arg_avals = _arg_avals(node, avals)
        if arg_avals is None:
            continue
        bad = next((k for k in node.op.int_args if arg_avals[k].dtype != "int"), None)
        if bad is not None:
            msg = (
                f"op '{node.op.name}' needs an integer as input {bad + 1} "
                "(an input with dtype: int, or an integer literal)"
            )
            problems.append((node, "CG121", msg, bad))
            continue
        try:
            shape = _checked_shape(node, [a.shape for a in arg_avals])
        except ShapeMismatch as e:
            # Some shape rules do not say which op they are; the reader needs it with the node.
            message = short_lists(str(e) if node.op.name in str(e) else f"{node.op.name}: {e}")
            problems.append((node, e.code, message, None))
            continue
        floats = [a.dtype for k, a in enumerate(arg_avals) if k not in node.op.int_args]
        dtype = "int" if node.op.keeps_int and all(d == "int" for d in floats) else "float"
        avals[node.id] = Aval(shape, dtype)
    return problems
