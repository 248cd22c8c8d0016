"""The op record and the constructors that build op families.

An op is defined once: forward rule, vector-Jacobian product (VJP), Jacobian-vector product
(JVP), shape rule, attributes, a doc line, how to sample test inputs and how `cg compile` writes
it, side by side. The maths is in cg/ops/kernels.py, called by the numeric rules and written
out by the code rule, so the two cannot disagree; elementwise ops derive VJP, JVP and code
from one derivative (df) or one set of partials, so those cannot disagree either.
"""

from __future__ import annotations

import dis
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, reduce
from typing import Any, TypeVar

import numpy as np

from cg.ops.code import CodeRule, Site, times
from cg.ops.formula import Formula, Formulas
from cg.ops.kernels import unbroadcast

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
class Batching:
    """How an op runs with a leading batch axis on every argument (cg/eval/batch.py): what a
    batching rule returns for the row shapes of the arguments and the node's attributes."""

    pads: tuple[Shape | None, ...]  # per argument: the row shape to give it first (leading 1s, then a
    # broadcast where sizes differ), or None to take it as it is
    attrs: dict[str, Any]  # the attributes of the batched call
    result: Shape | None = None  # the row shape to reshape the batched result to, or None
    loose: bool = True  # a size-1 batch axis broadcasts (elementwise, matmul): a constant needs no copy per row
    shape_attrs: tuple[str, ...] = ()  # attributes that are shapes of the batched value: B is put in front


# batch(row shapes, attrs) -> Batching: see Batching and cg/eval/batch.py
BatchRule = Callable[[Sequence[Shape], Mapping[str, Any]], Batching]


def pad_rank(shape: Sequence[int], rank: int) -> Shape:
    """shape with leading 1s up to `rank` axes."""
    return (1,) * (rank - len(shape)) + tuple(shape)


def batch_elementwise(rows: Sequence[Shape], attrs: Mapping[str, Any]) -> Batching:
    """Elementwise ops broadcast: every argument's row padded to the common rank with leading 1s,
    so that numpy lines the batch axes up with each other and not with a row axis."""
    rank = max(len(r) for r in rows)
    return Batching(tuple(None if len(r) == rank else pad_rank(r, rank) for r in rows), dict(attrs))


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
    # How tests sample each argument (last repeats): "real", "positive", "nonzero", "index" (an
    # integer below the first argument's last size), "class" (an integer from -n to n - 1, n an attribute)
    domain: tuple[str, ...] = ("real",)
    int_args: frozenset[int] = frozenset()  # argument positions that must be integers
    keeps_int: bool = False  # integer inputs give an integer output (add, max, reshape...)
    code: CodeRule | None = None  # how `cg compile` writes it (see CodeRule)
    # One-input elementwise ops: their derivative df(x, y). Their VJP is [g * df(x, y)] and their
    # JVP t * df(x, y), both made from it (df_rules); the plan multiplies by df directly on its
    # hottest path (a chain of such ops), which is why a VJP of another make is refused beside it.
    df: Callable[[Array, Array], Array] | None = None
    # Elementwise ops of several inputs: their partials(xs, y), one per input (ONE for a sum's). Their
    # VJP and JVP are made from it (partials_rules); the plan multiplies by them directly for scalar
    # nodes (a DAG of scalars), where nothing needs summing back over broadcast axes.
    partials: Partials | None = None
    # The VJP takes a keyword `needs`, a bool per argument: the plan passes it when some argument
    # needs no cotangent (the data of a layer), and the rule may skip that work and return None.
    needs: bool = False
    # The local derivative as formulas over the inputs, y, g and attributes (cg/ops/formula.py):
    # shown by `cg ops` and `cg run --edges`, and checked against the VJP by the op tests.
    formulas: Formulas | None = None
    # How a node of this op runs over a batch of rows (cg/eval/batch.py); every registered op has one.
    batch: BatchRule | None = None
    # What the VJP reads of the forward pass beyond shapes: argument positions and "y" (its output);
    # None: everything. The plan frees a value no VJP reads as soon as the forward pass is done
    # with it (cg/eval/lean.py), and hands the VJP a stand-in with its shape, all NaN, so that a
    # wrong entry here shows as NaN gradients (and fails the registry tests), never as wrong numbers.
    reads: frozenset[int | str] | None = None
    # VJPs through this op and the op that makes its first argument at once, by that op's name:
    # fuse(that node's attributes, its argument's number of dimensions) gives a VJP (g, y, xs) -> [the
    # cotangent of that node's argument] (xs: this node's arguments), or None where it does not apply.
    # A backward plan uses one where it is exact (cg/eval/plan.py): the first argument is used by
    # this node only, and its own gradient is not asked for.
    fuses: Mapping[str, Callable[[Mapping[str, Any], int], Callable[..., list[Array]] | None]] = field(
        default_factory=dict)

    def __post_init__(self) -> None:
        if self.df is not None and self.vjp is not df_rules(self.df)[0]:
            raise ValueError(f"op '{self.name}': its VJP is made from its df; give df=None with a VJP of another make")
        if self.partials is not None and self.vjp is not partials_rules(self.partials)[0]:
            raise ValueError(f"op '{self.name}': its VJP is made from its partials; give partials=None with a VJP "
                             "of another make")

    def arity_text(self) -> str:
        lo, hi = self.arity
        if hi is None:
            return f"{lo} or more inputs"
        if lo == hi:
            return f"{lo} input" + ("s" if lo != 1 else "")
        return f"{lo} to {hi} inputs"

    def domain_of(self, i: int) -> str:
        return self.domain[min(i, len(self.domain) - 1)]


# ---- helpers shared by the rules ------------------------------------------------------


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


# ---- elementwise families ------------------------------------------------------------

BINARY_CASES = (
    Case(((3,), (3,))),
    Case(((2, 3), (3,))),
    Case(((2, 1), (1, 4))),
    Case(((), (2, 2))),
    Case(((2, 3, 1), ())),
)
UNARY_CASES = (Case(((),)), Case(((4,),)), Case(((2, 3),)))
ONE = None  # a partial derivative that is exactly 1 (a sum's): the cotangent passes unchanged
T = TypeVar("T")
Partials = Callable[[Sequence[Array], Array], Sequence[Array]]


def kernel_reads(kernel: Callable[..., Any], names: Sequence[str]) -> frozenset[int | str] | None:
    """Which of a kernel's parameters its code reads (Op.reads): positions of the arguments named
    in `names` (the last one, "y", as "y"), read off its bytecode, so that the kernel itself says
    and cannot disagree. None (everything) for a function without Python code (a numpy ufunc)."""
    code = getattr(kernel, "__code__", None)
    if code is None:
        return None
    loaded: set[str] = set()
    for ins in dis.get_instructions(code):
        if ins.opname.startswith("LOAD_FAST"):  # LOAD_FAST_LOAD_FAST (3.13) loads a pair
            loaded.update(ins.argval if isinstance(ins.argval, tuple) else (ins.argval,))
    params = code.co_varnames[: code.co_argcount]
    return frozenset(("y" if k == len(names) - 1 else k) for k, name in enumerate(names)
                     if k < len(params) and params[k] in loaded)


@cache
def df_rules(df: Callable[[Array, Array], Array]) -> tuple[Callable[..., list[Array | None]], Callable[..., Array]]:
    """The VJP and JVP of a one-input elementwise op with derivative df(x, y); one pair per df,
    so that an op's VJP can be known to be the one made from its df (Op.__post_init__)."""

    def vjp(g: Array, y: Array, xs: Sequence[Array]) -> list[Array | None]:
        return [g * df(xs[0], y)]  # input and output have one shape: nothing to sum back

    def jvp(ts: Sequence[Tangent], y: Array, xs: Sequence[Array]) -> Array:
        t = ts[0]
        if t is None:
            return np.zeros_like(y)
        out = t * df(xs[0], y)
        return out if np.shape(out) == np.shape(y) else np.broadcast_to(out, np.shape(y))  # df a constant: t's shape

    return vjp, jvp


@cache
def partials_rules(partials: Partials) -> tuple[Callable[..., list[Array | None]], Callable[..., Array]]:
    """The VJP and JVP of an elementwise op from `partials(xs, y)`, the partial derivative of y
    with respect to each input: the VJP multiplies the cotangent by each (and sums back over
    broadcast axes), the JVP each tangent, and adds. A partial that is ONE passes the cotangent or
    tangent through unchanged (a sum's): the plan never updates a gradient in place (it adds
    contributions into a new array), so sharing g is safe."""

    def vjp(g: Array, y: Array, xs: Sequence[Array]) -> list[Array | None]:
        gs = [g if d is ONE else g * d for d in partials(xs, y)]  # y's shape, as g
        shape = getattr(g, "shape", ())
        if shape == ():  # y, so every input, is a scalar: nothing to sum back
            return gs
        return [c if s == shape else unbroadcast(c, s) for c, s in zip(gs, shapes_of(xs))]

    def jvp(ts: Sequence[Tangent], y: Array, xs: Sequence[Array]) -> Array:
        out: Tangent = None
        for t, d in zip(ts, partials(xs, y)):
            if t is not None:
                out = add_tangents(out, t if d is ONE else t * d)
        if out is None:
            return np.zeros_like(y)
        return out if np.shape(out) == np.shape(y) else np.broadcast_to(out, np.shape(y))  # one argument broadcast

    return vjp, jvp


def unary(name: str, doc: str, fn: Callable[[Array], Array], df: Callable[[Array, Array], Array], formula: str, *,
          domain: str = "real", keeps_int: bool = False) -> Op:
    """A one-input elementwise op y = fn(x) with derivative df(x, y), both kernels (or numpy's
    functions): its VJP, JVP and code are made from them. The hot path of long scalar chains.
    `formula`: df as a formula over x and y (cg/ops/formula.py), e.g. "1 / x"."""
    vjp, jvp = df_rules(df)
    code = CodeRule(lambda s: s.call(fn, s.args[0]), lambda s: [times(s.call(df, s.args[0], s.y), s.g)],
                    broadcast=True, scalar=True)
    return Op(name, doc, (1, 1), fn, vjp, jvp, lambda shapes: shapes[0], UNARY_CASES, domain=(domain,),
              keeps_int=keeps_int, code=code, df=df, formulas=Formulas((Formula(formula),)),
              batch=batch_elementwise, reads=kernel_reads(df, ("x", "y")))


def binary(name: str, doc: str, fn: Callable[[Array, Array], Array],
           partials: Callable[[Array, Array, Array], Sequence[Array]], formulas: tuple[str, str], *,
           domain: tuple[str, ...] = ("real",), keeps_int: bool = False) -> Op:
    """A two-input elementwise op y = fn(a, b) with numpy broadcasting; `partials(a, b, y)` is an
    @inline kernel returning its two partial derivatives, from which VJP, JVP and code are made;
    `formulas`: the two partials as formulas over a, b and y."""
    pair: Partials = lambda xs, y: partials(xs[0], xs[1], y)
    vjp, jvp = partials_rules(pair)
    code = CodeRule(lambda s: s.call(fn, *s.args), lambda s: [times(d, s.g) for d in s.calls(partials, *s.args, s.y)],
                    broadcast=True, scalar=True)
    return Op(name, doc, (2, 2), fn, vjp, jvp, broadcast_shapes, BINARY_CASES, domain=domain, keeps_int=keeps_int,
              code=code, formulas=Formulas(tuple(Formula(f) for f in formulas), ("a", "b")), batch=batch_elementwise,
              reads=kernel_reads(partials, ("a", "b", "y")), partials=pair)


def others(items: Sequence[T]) -> list[list[T]]:
    """For each position, the other items in order: the factors of a product's partials."""
    return [[*items[:i], *items[i + 1 :]] for i in range(len(items))]


def fold(name: str, doc: str, fn: Callable[[Array, Array], Array], *, product: bool, cases: tuple[Case, ...]) -> Op:
    """An op of 2 or more inputs that folds the operator fn over them (x1 + x2 + ...). The partial
    with respect to each input is 1 for a sum, the fold of the other inputs for a product
    (computed without dividing by the input, so zeros are exact)."""

    def forward(*xs: Array) -> Array:
        return fn(xs[0], xs[1]) if len(xs) == 2 else reduce(fn, xs)

    def partials(xs: Sequence[Array], y: Array) -> Sequence[Array]:
        if not product:
            return [ONE] * len(xs)
        return (xs[1], xs[0]) if len(xs) == 2 else [reduce(fn, rest) for rest in others(xs)]

    def code_partials(s: Site) -> list[str | None]:
        if not product:
            return [s.g] * len(s.args)
        return [times(s.fold(fn, rest), s.g) for rest in others(s.args)]

    vjp, jvp = partials_rules(partials)
    code = CodeRule(lambda s: s.fold(fn, s.args), code_partials, broadcast=True, scalar=True)
    formula = Formula("others" if product else "1")  # one rule for input i
    return Op(name, doc, (2, None), forward, vjp, jvp, broadcast_shapes, cases, keeps_int=True, code=code,
              formulas=Formulas((formula,)), batch=batch_elementwise, partials=partials,
              reads=None if product else frozenset())  # a product reads every factor; a sum, only shapes
