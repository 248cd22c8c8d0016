"""Code rules: how `cg compile` writes an op as Python source. Each op's rule sits in its
record (the `code` field of cg.ops.base.Op), beside its numpy rules, and writes calls of the same
kernels those rules call (cg/ops/kernels.py; their source: cg/ops/source.py). This module holds
what the rules share: the node as a rule sees it (Site), the rule itself (CodeRule) and the
helpers that build the source of products and of sums over broadcast axes."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cg.ops.kernels import summed_axes
from cg.ops.source import SOURCE, fold_template, plain_template, template, templates

Shape = tuple[int, ...]
Kernel = Callable[..., Any]


@dataclass(frozen=True)
class Site:
    """One node as `cg compile` writes it: its arguments as Python expressions (names or
    literals), their static shapes and dtypes, its own shape and attributes, the names of its
    value (y) and gradient (g), and the module's numbers: "np" (numpy arrays), or "math" when
    every value of the graph is a float scalar (Python floats)."""

    args: tuple[str, ...]
    shapes: tuple[Shape, ...]
    dtypes: tuple[str, ...]
    shape: Shape
    attrs: Mapping[str, Any] = field(default_factory=dict)
    y: str = "y"
    g: str = "g"
    m: str = "np"

    def call(self, kernel: Kernel, *args: Any, **keywords: Any) -> str:
        """The source of kernel(*args, **keywords): a str argument is source (a name, a literal),
        any other value a constant written in (an axis, a shape, a flag)."""
        if keywords or not all(isinstance(a, str) for a in args):
            consts = tuple(SOURCE if isinstance(a, str) else a for a in args)
            return _fill(template(kernel, consts, tuple(keywords.items()), self.m == "math"), args)
        # The common case, once per node of a long chain: names only.
        return _fill(plain_template(kernel, len(args), self.m == "math"), args)

    def calls(self, kernel: Kernel, *args: Any) -> list[str]:
        """The sources of the items of the tuple that an @inline kernel returns."""
        consts = tuple(SOURCE if isinstance(a, str) else a for a in args)
        return [_fill(t, args) for t in templates(kernel, consts, self.m == "math")]

    def fold(self, kernel: Kernel, args: Sequence[str]) -> str:
        """kernel folded over args: `a + b + c` for operator.add."""
        return _fill(fold_template(kernel, len(args), self.m == "math"), args)


def _fill(text: str, args: Sequence[Any]) -> str:
    # Placeholders stand where a name would: an argument that is not one (or is negated) gets brackets.
    return text.format(*(a if not isinstance(a, str) or a.isidentifier() or (atomic(a) and a[:1] != "-")
                         else f"({a})" for a in args))


@dataclass(frozen=True)
class CodeRule:
    """How `cg compile` writes an op: `forward(site)` is the expression of the node's value,
    `vjp(site)` per argument the expression of the gradient sent back to it (None: never, as
    for an integer index). `broadcast`: those expressions have the node's shape, and cg compile
    sums them back to each argument's shape. `fresh`: they are new arrays (never g itself nor
    a view), so a gradient may be accumulated into in place. `scalar`: they also work on Python
    floats (Site.m == "math"). On float32 arguments they give float32, as the kernels do."""

    forward: Callable[[Site], str]
    vjp: Callable[[Site], Sequence[str | None]]
    broadcast: bool = False
    fresh: bool = True
    scalar: bool = False


def _closes_at_end(expr: str, start: int) -> bool:
    """The bracket opened at expr[start] is closed by the last character."""
    depth = 0
    for i in range(start, len(expr)):
        depth += expr[i] in "([{"
        depth -= expr[i] in ")]}"
        if depth == 0:
            return i == len(expr) - 1
    return False


def atomic(expr: str) -> bool:
    """`expr` binds at least as tightly as a product operand: a name, a number, a call, an
    attribute, a subscript or a bracketed expression, possibly negated."""
    body = expr[1:] if expr.startswith("-") else expr
    head = len(body) - len(body.lstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_."))
    if head == len(body):
        return bool(body)
    return body[head] in "([" and _closes_at_end(body, head)


def times(d: str, g: str) -> str:
    """The product `d * g` of a local derivative and a gradient, written as simply as it reads."""
    if d == "1.0":
        return g
    if d == "-1.0":
        return f"-{g}"
    return f"{d if atomic(d) else f'({d})'} * {g}"


def axes_text(axes: Sequence[int]) -> str:
    """An `axis=` argument as source: 1 or (0, 2)."""
    return str(axes[0]) if len(axes) == 1 else str(tuple(axes))


def sum_to(expr: str, have: Shape, want: Shape) -> str:
    """Source that sums `expr` (of shape `have`) back to shape `want` over broadcast axes:
    unbroadcast with the axes known before the run."""
    if have == want:
        return expr
    lead = len(have) - len(want)
    axes = summed_axes(have, want)  # unbroadcast's, with shapes known before the run
    if axes == tuple(range(len(have))) and want == ():
        return f"np.sum({expr})"
    summed = f"np.sum({expr}, axis={axes_text(axes)})"
    return summed if len(axes) == lead else f"{summed}.reshape({want})"
