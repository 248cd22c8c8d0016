"""Code rules: how `cg compile` writes an op as Python source. Each op's rule sits in its
record (the `code` field of cg.ops.base.Op), beside its numpy rules; this module holds what the
rules share: the node as a rule sees it (Site), the rule itself (CodeRule) and the helpers that
build the source of products and of sums over broadcast axes."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Shape = tuple[int, ...]

Template = str | tuple[str, str]  # one text for numpy and math, or (numpy text, math text)


@dataclass(frozen=True)
class Site:
    """One node as `cg compile` writes it: its arguments as Python expressions (names or
    literals), their static shapes and dtypes, its own shape and attributes, the names of its
    value (y) and gradient (g), the module of its functions: "np", or "math" when every value
    of the graph is a float scalar, and the float type of the module (f: np.float64 or np.float32)."""

    args: tuple[str, ...]
    shapes: tuple[Shape, ...]
    dtypes: tuple[str, ...]
    shape: Shape
    attrs: Mapping[str, Any] = field(default_factory=dict)
    y: str = "y"
    g: str = "g"
    m: str = "np"
    f: str = "np.float64"

    def fill(self, template: Template) -> str:
        """A template with {0} {1}... (or {x}, {a}, {b}) for the arguments, {y}, {g}, {m} and {f}."""
        text = template if isinstance(template, str) else template[self.m == "math"]
        named = dict(zip("ab", self.args))
        return text.format(*self.args, x=self.args[0], y=self.y, g=self.g, m=self.m, f=self.f, **named)


@dataclass(frozen=True)
class Helper:
    """A function that generated code calls, emitted once in every module that uses it."""

    name: str
    source: str


@dataclass(frozen=True)
class CodeRule:
    """How `cg compile` writes an op: `forward(site)` is the expression of the node's value,
    `vjp(site)` per argument the expression of the gradient sent back to it (None: never, as
    for an integer index). `broadcast`: those expressions have the node's shape, and cg compile
    sums them back to each argument's shape. `fresh`: they are new arrays (never g itself nor
    a view), so a gradient may be accumulated into in place. `scalar`: the templates also work
    on Python floats with the math module. `keeps_dtype`: on float32 arguments the expressions
    give float32 (numpy's promotion rules); if not, a float32 module casts their results back."""

    forward: Callable[[Site], str]
    vjp: Callable[[Site], Sequence[str | None]]
    broadcast: bool = False
    fresh: bool = True
    scalar: bool = False
    helpers: tuple[Helper, ...] = ()
    keeps_dtype: bool = True


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


def partials_rule(
    forward: Template | Callable[[int], str],
    partials: Sequence[Template] | Callable[[int], Sequence[Template]],
    helpers: tuple[Helper, ...] = (),
    keeps_dtype: bool = True,
) -> CodeRule:
    """The code rule of an elementwise op from its forward template and the templates of its
    partial derivatives (as `partials` gives them to the VJP and the JVP); a template that
    depends on the number of arguments is a function of it."""

    def fwd(site: Site) -> str:
        return site.fill(forward(len(site.args)) if callable(forward) else forward)

    def vjp(site: Site) -> list[str | None]:
        ds = partials(len(site.args)) if callable(partials) else partials
        return [times(site.fill(d), site.g) for d in ds]

    return CodeRule(fwd, vjp, broadcast=True, scalar=True, helpers=helpers, keeps_dtype=keeps_dtype)


def axes_text(axes: Sequence[int]) -> str:
    """An `axis=` argument as source: 1 or (0, 2)."""
    return str(axes[0]) if len(axes) == 1 else str(tuple(axes))


def sum_to(expr: str, have: Shape, want: Shape) -> str:
    """Source that sums `expr` (of shape `have`) back to shape `want` over broadcast axes:
    unbroadcast with the axes known before the run."""
    if have == want:
        return expr
    lead = len(have) - len(want)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(want) if n == 1 and have[lead + i] != 1)
    if axes == tuple(range(len(have))) and want == ():
        return f"np.sum({expr})"
    summed = f"np.sum({expr}, axis={axes_text(axes)})"
    return summed if len(axes) == lead else f"{summed}.reshape({want})"
