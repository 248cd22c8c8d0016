"""The graph IR: immutable records (Const, Aval, Input, Node, Graph, and what a graph keeps of its
calls and its `expect` block: CallOp, Composite, Expect). Every later stage reads them; the
pieces that build them are above: cg/graph/order.py (topological order, cycles),
cg/graph/shapes.py (shape inference), cg/graph/parts.py (literals, the Builder),
cg/graph/builder.py (build)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from cg.errors import Pos
from cg.ops import Op, Shape
from cg.printable import printable
from cg.schema.messages import ID_PATTERN


@dataclass(frozen=True)
class Const:
    """A literal argument such as the 3 in `in: [3, a]`."""

    value: np.ndarray

    @property
    def dtype(self) -> str:
        return "int" if self.value.dtype.kind in "iu" else "float"


Arg = str | Const
_ID = re.compile(ID_PATTERN)
MAX_DIMS = 32  # numpy 1 holds at most 32 dimensions (numpy 2: 64); no graph needs more


@dataclass(frozen=True)
class Aval:
    """What is known of a value before it is computed: its shape and dtype."""

    shape: Shape
    dtype: str  # "float" or "int"


@dataclass(frozen=True)
class Input:
    name: str
    aval: Aval
    default: np.ndarray | None
    shape_given: bool  # a declared shape pins the shape of values given at run time
    doc: str
    pos: Pos | None

@dataclass(frozen=True)
class Node:
    id: str
    op: Op
    args: tuple[Arg, ...]
    attrs: Mapping[str, Any]  # every attribute of the op, defaults filled in
    doc: str
    pos: Pos | None

    def arg_values(self, env: Mapping[str, Any]) -> list[Any]:
        """The values of the arguments: a name's from env, a constant's own (the one gatherer)."""
        # `type(a) is str` rather than isinstance: this runs once per node per pass.
        return [env[a] if type(a) is str else a.value for a in self.args]  # type: ignore[union-attr]


@dataclass(frozen=True)
class Graph:
    name: str
    doc: str
    file: str
    inputs: tuple[Input, ...]
    nodes: tuple[Node, ...]  # topological order; declaration order breaks ties
    outputs: tuple[str, ...]
    avals: Mapping[str, Aval]  # shapes and dtypes inferred from the declared inputs
    expect: Expect | None = None
    composites: tuple[Composite, ...] = ()  # calls of functions, inlined: see cg/graph/composite.py

    def __repr__(self) -> str:
        """<Graph mlp: 6 inputs, 3 nodes (19 inlined), outputs [loss]>: short, whatever the graph's size
        (the dataclass's repr would print every node and array)."""
        if not self.outputs:
            return f"<Graph {brief(self.name, 30)}: a library, no outputs>"
        hidden = {i for c in self.composites if c.parent is None for i in c.inner if i != c.output}
        shown = len(self.nodes) - len(hidden)
        nodes = plural(shown, "node") + (f" ({len(self.nodes)} inlined)" if hidden else "")
        return f"<Graph {brief(self.name, 30)}: {plural(len(self.inputs), 'input')}, {nodes}, outputs" \
               f" [{names_text(self.outputs)}]>"

    def input(self, name: str) -> Input | None:
        return self._inputs_by_name.get(name)

    def node(self, name: str) -> Node | None:
        return self._nodes_by_name.get(name)

    # Built on first lookup: callers look names up in loops over the graph.
    @cached_property
    def _inputs_by_name(self) -> dict[str, Input]:
        return {i.name: i for i in self.inputs}

    @cached_property
    def _nodes_by_name(self) -> dict[str, Node]:
        return {n.id: n for n in self.nodes}

    @cached_property
    def grad_targets(self) -> tuple[tuple[Node, tuple[tuple[int, str], ...]], ...]:
        """Per node in order, the (argument position, name) pairs that receive a gradient in
        the backward pass: float inputs and nodes, never constants or integers."""
        return tuple(
            (n, tuple((k, a) for k, a in enumerate(n.args) if isinstance(a, str) and self.avals[a].dtype == "float"))
            for n in self.nodes
        )


def brief(name: str, most: int = 16) -> str:
    """A name for a repr: control characters escaped, cut to `most` characters."""
    name = printable(name)
    return name if len(name) <= most else name[: most - 3] + "..."


def names_text(names: Sequence[str], most: int = 5) -> str:
    """'a, b, c' for a repr: the names, each cut; beyond `most` + 1, the first `most` and how many in all."""
    if len(names) <= most + 1:
        return ", ".join(brief(n) for n in names)
    return ", ".join(brief(n) for n in names[:most]) + f", ... ({len(names)} in all)"


def unique_id(want: str, taken: set[str]) -> str:
    """`want`, or `want_2`, `want_3`... the first not in `taken`, which it joins: the one rule for
    the ids of nodes that cg writes (imports, gradient graphs, batched graphs)."""
    found, k = want, 2
    while found in taken:
        found, k = f"{want}_{k}", k + 1
    taken.add(found)
    return found


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'s' * (n != 1)}"


def _inlined(*_: Any, **__: Any) -> Any:
    raise RuntimeError("a call of a function is inlined when the graph is built; its op never runs")


@dataclass(frozen=True)
class CallOp(Op):
    """The op of a node that calls a function (or of an expression node). Only its name, doc,
    arity and integer arguments are read: calls are inlined when the graph is built."""

    key: tuple[str, str] = ("", "")  # (file, name): two libraries may not share a name in one scope
    params: tuple[str, ...] = ()


def call_op(name: str, doc: str, params: tuple[str, ...], int_params: frozenset[int], file: str) -> CallOp:
    n = len(params)
    return CallOp(name, doc, (n, n), _inlined, _inlined, _inlined, _inlined, (), int_args=int_params,
                  key=(file, name), params=params)


@dataclass(frozen=True)
class Composite:
    """One call, as inlined: which nodes it became, and where its arguments went."""

    id: str  # the call's path: `h1`, or `h1/n` for the call `n` inside h1's function
    output: str  # the node holding the call's value: the call's own id at the top level
    op: CallOp  # the function called
    args: tuple[Arg, ...]  # the call's arguments as names of the flat graph, or constants
    inner: tuple[str, ...]  # every node inlined for it (nested calls' too), the output included
    uses: tuple[tuple[tuple[str, int], ...], ...]  # per argument: the (node, argument position) it feeds
    parent: str | None  # the enclosing call, None at the top level
    doc: str
    pos: Pos | None  # the call in the file the graph was read from
    text: str = ""  # what a table shows as the op: the function's name, or an expression


@dataclass(frozen=True)
class Expected:
    """One value or gradient stated in the `expect` block, and where it is written."""

    name: str
    value: np.ndarray  # float64, the shape of the node
    pos: Pos | None


@dataclass(frozen=True)
class Expect:
    """The `expect` block: what the graph must give at a point (checked by `cg check`)."""

    inputs: Mapping[str, np.ndarray]  # the point, over the inputs' defaults
    of: str  # the differentiated output
    tol: float  # |actual - expected| <= tol + rtol * |expected|, elementwise
    rtol: float
    values: tuple[Expected, ...]
    grads: tuple[Expected, ...]  # d(of)/d(name)
    pos: Pos | None
