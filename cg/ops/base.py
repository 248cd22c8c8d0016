"""The op record and the constructors that build op families.

An op is defined once: forward rule, vector-Jacobian product (VJP), Jacobian-vector product
(JVP), shape rule, attributes, a doc line and how to sample test inputs, side by side.
Elementwise ops derive both VJP and JVP from one partial-derivative rule, so they cannot
disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cg.ops.code import CodeRule, Helper, Template, partials_rule

Array = Any  # an np.ndarray or a numpy scalar: ufuncs on 0-d arrays return scalars
Shape = tuple[int, ...]
Tangent = Array | None  # None stands for a zero tangent (e.g. a constant argument)


class ShapeMismatch(Exception):
    """Raised by shape rules; the graph builder adds the node and its position."""

    def __init__(self, message: str, *, code: str = "CG120") -> None:
        super().__init__(message)
        self.code = code


class OpFailure(Exception):
    """Raised by a forward rule that cannot compute its value (e.g. an index out of range)."""


@dataclass(frozen=True)
class Attr:
    """One attribute of an op: its JSON Schema, its default and a doc line."""

    schema: dict[str, Any]
    doc: str
    default: Any = None
    required: bool = False


@dataclass(frozen=True)
class Case:
    """Argument shapes and attributes at which the tests check an op's rules."""

    shapes: tuple[Shape, ...]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Op:
    name: str
    doc: str
    arity: tuple[int, int | None]  # (min, max); max None means "or more"
    forward: Callable[..., Array]  # forward(*xs, **attrs) -> y
    vjp: Callable[..., list[Array | None]]  # vjp(g, y, xs, **attrs) -> one cotangent per input
    jvp: Callable[..., Array]  # jvp(ts, y, xs, **attrs) -> tangent of y
    shape: Callable[..., Shape]  # shape(shapes, **attrs) -> output shape, or ShapeMismatch
    cases: tuple[Case, ...]
    attrs: dict[str, Attr] = field(default_factory=dict)
    domain: tuple[str, ...] = ("real",)  # how tests sample each argument (last repeats)
    int_args: frozenset[int] = frozenset()  # argument positions that must be integers
    keeps_int: bool = False  # integer inputs give an integer output (add, max, reshape...)
    code: CodeRule | None = None  # how `cg compile` writes it (see CodeRule)
    # One-input elementwise ops: df(x, y), the derivative their VJP and JVP are made from.
    # The plan multiplies by it directly on its hottest path (a chain of such ops).
    df: Callable[[Array, Array], Array] | None = None

    def arity_text(self) -> str:
        lo, hi = self.arity
        if hi is None:
            return f"{lo} or more inputs"
        if lo == hi:
            return f"{lo} input" + ("s" if lo != 1 else "")
        return f"{lo} to {hi} inputs"

    def domain_of(self, i: int) -> str:
        return self.domain[min(i, len(self.domain) - 1)]


def multiplies_by_df(op: Op) -> Callable[[Array, Array], Array] | None:
    """op.df when op.vjp is the VJP made from it (g * df(x, y)), so that calling df directly
    gives the same cotangent; None otherwise (no df, or a VJP replaced since)."""
    df = op.df
    return df if df is not None and getattr(op.vjp, "df", None) is df else None


# ---- helpers shared by the rules ------------------------------------------------------


def unbroadcast(g: Array, shape: Shape) -> Array:
    """Sum a cotangent back to the shape of the input that was broadcast to make it."""
    try:
        gshape = g.shape  # arrays and numpy scalars; np.shape is a Python-level wrapper
    except AttributeError:  # a Python number
        gshape = ()
    if gshape == shape:
        return g
    lead = len(gshape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and gshape[lead + i] != 1
    )
    return np.sum(g, axis=axes, keepdims=True).reshape(shape)


def shapes_of(xs: Sequence[Array]) -> list[Shape]:
    """The shapes of the arguments, read as attributes (Python numbers have shape ())."""
    try:
        return [x.shape for x in xs]
    except AttributeError:
        return [np.shape(x) for x in xs]


def broadcast_shapes(shapes: Sequence[Shape]) -> Shape:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        listed = " and ".join(str(list(s)) for s in shapes)
        raise ShapeMismatch(f"cannot broadcast shapes {listed}") from None


def add_tangents(a: Tangent, b: Tangent) -> Tangent:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


# ---- elementwise family ---------------------------------------------------------------

ONE = None  # a partial derivative that is exactly 1: the cotangent or tangent passes unchanged

BINARY_CASES = (
    Case(((3,), (3,))),
    Case(((2, 3), (3,))),
    Case(((2, 1), (1, 4))),
    Case(((), (2, 2))),
    Case(((2, 3, 1), ())),
)
UNARY_CASES = (Case(((),)), Case(((4,),)), Case(((2, 3),)))


def elementwise(
    name: str,
    doc: str,
    fn: Callable[..., Array],
    partials: Callable[..., Sequence[Array]],
    code: Template | Callable[[int], str] | None = None,
    dcode: Sequence[Template] | Callable[[int], Sequence[Template]] | None = None,
    *,
    arity: tuple[int, int | None],
    cases: tuple[Case, ...] = BINARY_CASES,
    domain: tuple[str, ...] = ("real",),
    keeps_int: bool = False,
    helpers: tuple[Helper, ...] = (),
    keeps_dtype: bool = True,
) -> Op:
    """An op applied element by element with numpy broadcasting.

    `partials(xs, y)` gives the partial derivative of y with respect to each input, evaluated
    elementwise (ONE, i.e. None, for a partial that is exactly 1: the input passes through);
    the VJP multiplies the cotangent by it (and sums back over broadcast axes), the JVP
    multiplies each tangent by it and adds: both come from the same rule. `code` and `dcode`
    are the same two rules as Python source templates, for `cg compile`.

    A cotangent passed through is the same object as g: the plan never updates a gradient in
    place (it adds contributions into a new array), so sharing it is safe.
    """

    def vjp(g: Array, y: Array, xs: Sequence[Array]) -> list[Array | None]:
        gs = [g if d is ONE else g * d for d in partials(xs, y)]  # each of y's shape, as g
        shape = getattr(g, "shape", ())
        if shape == ():  # y, so every input, is a scalar: nothing to sum back
            return gs
        return [c if s == shape else unbroadcast(c, s) for c, s in zip(gs, shapes_of(xs))]

    def jvp(ts: Sequence[Tangent], y: Array, xs: Sequence[Array]) -> Array:
        out: Tangent = None
        for t, d in zip(ts, partials(xs, y)):
            if t is not None:
                out = add_tangents(out, t if d is ONE else t * d)
        return np.zeros_like(y) if out is None else np.broadcast_to(out, np.shape(y))

    def shape(shapes: Sequence[Shape]) -> Shape:
        return broadcast_shapes(shapes)

    rule = None if code is None or dcode is None else partials_rule(code, dcode, helpers, keeps_dtype)
    return Op(name, doc, arity, fn, vjp, jvp, shape, cases, domain=domain, keeps_int=keeps_int, code=rule)


def unary(
    name: str,
    doc: str,
    fn: Callable[[Array], Array],
    df: Callable[[Array, Array], Array],
    code: Template | None = None,
    dcode: Template | None = None,
    *,
    domain: str = "real",
    keeps_int: bool = False,
    helpers: tuple[Helper, ...] = (),
) -> Op:
    """A one-input elementwise op; `df(x, y)` is its derivative, from which both the VJP and
    the JVP are made. Input and output have one shape, so nothing is summed back (this is
    the hot path of long scalar chains). `code` and `dcode` are `fn` and `df` as Python
    source templates ({x}, {y}; {m} is np or math), for `cg compile`."""

    def vjp(g: Array, y: Array, xs: Sequence[Array]) -> list[Array | None]:
        return [g * df(xs[0], y)]

    vjp.df = df  # type: ignore[attr-defined]  # see multiplies_by_df

    def jvp(ts: Sequence[Tangent], y: Array, xs: Sequence[Array]) -> Array:
        t = ts[0]
        return np.zeros_like(y) if t is None else np.broadcast_to(t * df(xs[0], y), np.shape(y))

    rule = None if code is None or dcode is None else partials_rule(code, (dcode,), helpers)
    return Op(name, doc, (1, 1), fn, vjp, jvp, lambda shapes: shapes[0], UNARY_CASES,
              domain=(domain,), keeps_int=keeps_int, code=rule, df=df)
