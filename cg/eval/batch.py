"""A graph over a batch of rows, vectorised: `batched` turns a graph of row shapes into one where
every input has a leading batch axis of B rows (the parameters too, tiled, so that their
gradients stay per row), each node the same op with its attributes moved past the batch axis by
its op's batching rule (Op.batch, cg/ops/base.py: Batching), and `reshape` / `broadcast_to` nodes
where an argument must be padded or a result reshaped back. The ordinary run (cg.eval.interp.run)
then does forward and backward on it, seeded with ones of shape [B]: each row's gradient is its own,
since no op mixes rows. `run_rows` runs a graph over a data set, chunk by chunk.

Ids are unchanged: a node's value is its row value with the batch axis in front; the nodes added
have ids of their own (x_padded, y_batched...), which no chunk reports."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from cg.errors import NumericError, UsageError, did_you_mean
from cg.eval.interp import run
from cg.eval.plan import Report
from cg.graph.ir import Aval, Const, Graph, Input, Node, unique_id
from cg.graph.parts import to_array
from cg.graph.shapes import infer
from cg.ops import REGISTRY, Shape
from cg.ops.base import Batching, pad_rank

# ---- the batch transform ----------------------------------------------------------------------


def _ranked(row: Shape, target: Shape) -> Shape:
    """What a row is reshaped to on its way to the target row shape: the target itself when it holds
    as many numbers (the 1s of matmul's [1, n] and [n, 1], leading 1s), else the row with leading 1s
    (then broadcast to the target: index's i)."""
    return target if math.prod(target) == math.prod(row) else pad_rank(row, len(target))


@dataclass
class _Writer:
    """The batched graph being written: its nodes in order, the names taken, the row shape of each."""

    rows: int
    rows_of: dict[str, Shape]  # the row shape of every name of the original graph
    taken: set[str]
    nodes: list[Node] = field(default_factory=list)
    pads: dict[tuple[str, Shape], str] = field(default_factory=dict)  # (name, padded row) -> its node

    def fresh(self, want: str) -> str:
        return unique_id(want, self.taken)

    def emit(self, node: Node) -> None:
        self.nodes.append(node)

    def helper(self, like: Node, op: str, arg: str, shape: Shape, want: str) -> str:
        """A reshape or broadcast_to of `arg` to [B, *shape], placed where `like` stood."""
        key = self.fresh(want)
        self.emit(Node(key, REGISTRY[op], (arg,), {"shape": [self.rows, *shape]}, f"batching: {op} of {arg}",
                       like.pos))
        return key

    def padded(self, like: Node, name: str, row: Shape, target: Shape) -> str:
        """`name` ([B, *row]) given the row shape target: a reshape, then a broadcast; made once per target."""
        key = (name, target)
        if key not in self.pads:
            ranked, ref = _ranked(row, target), name
            if ranked != row:
                ref = self.helper(like, "reshape", ref, ranked, f"{name}_padded")
            if ranked != target:
                ref = self.helper(like, "broadcast_to", ref, target, f"{name}_spread")
            self.pads[key] = ref
        return self.pads[key]

    def const(self, c: Const, target: Shape | None, loose: bool) -> Const:
        """A constant has no batch axis: a leading 1 (a loose op broadcasts it), or B copies."""
        row = tuple(c.value.shape)
        target = row if target is None else target
        value = np.broadcast_to(c.value.reshape((1, *_ranked(row, target))), (1, *target))
        if not loose:
            value = np.broadcast_to(value, (self.rows, *target))
        return Const(np.ascontiguousarray(value))

    def node(self, n: Node) -> None:
        rule = n.op.batch
        if rule is None:
            raise UsageError.one("CG300", f"op '{n.op.name}' (node '{n.id}') has no batching rule: it cannot "
                                 "run over a batch of rows", node=n.id)
        rows = [c.value.shape if isinstance(c, Const) else self.rows_of[c] for c in n.args]
        b: Batching = rule(rows, n.attrs)
        loose = b.loose and any(isinstance(a, str) for a in n.args)  # only constants: B copies
        args = tuple(self.const(a, pad, loose) if isinstance(a, Const)
                     else a if pad is None else self.padded(n, a, self.rows_of[a], pad)
                     for a, pad in zip(n.args, b.pads))
        attrs = {k: [self.rows, *v] if k in b.shape_attrs else v for k, v in b.attrs.items()}
        if b.result is None:
            self.emit(Node(n.id, n.op, args, attrs, n.doc, n.pos))
            return
        inner = self.fresh(f"{n.id}_batched")
        self.emit(Node(inner, n.op, args, attrs, f"batching: {n.id} before its reshape", n.pos))
        self.emit(Node(n.id, REGISTRY["reshape"], (inner,), {"shape": [self.rows, *b.result]}, n.doc, n.pos))


def batched(graph: Graph, rows: int) -> Graph:
    """The graph over a batch of `rows` rows: every input and node [rows, *its row shape], ids unchanged."""
    if rows < 1:
        raise UsageError.one("CG300", f"a batch has at least 1 row, not {rows}", file=graph.file)
    rows_of = {name: aval.shape for name, aval in graph.avals.items()}
    writer = _Writer(rows, rows_of, set(rows_of))
    for n in graph.nodes:
        writer.node(n)
    inputs = tuple(Input(i.name, Aval((rows, *i.aval.shape), i.aval.dtype), None, True, i.doc, i.pos)
                   for i in graph.inputs)
    avals = {i.name: i.aval for i in inputs}
    problems = infer(writer.nodes, avals)
    if problems:
        node, code, message, _ = problems[0]
        raise UsageError.one(code, f"over a batch of {rows} rows: {message}", file=graph.file, pos=node.pos,
                             node=node.id)
    return Graph(f"{graph.name}_batched", graph.doc, graph.file, inputs, tuple(writer.nodes), graph.outputs, avals)


# ---- running over rows --------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """The rows start..stop-1 of a run over a data set."""

    start: int
    stop: int
    values: dict[str, np.ndarray]  # every input and node: [stop - start, *row shape]
    grads: dict[str, np.ndarray | None]  # d of_row / d name, per row: [stop - start, *row shape]; None for ints


def _fail(message: str, graph: Graph, code: str = "CG300") -> UsageError:
    return UsageError.one(code, message, file=graph.file)


def _known(graph: Graph, name: str, what: str) -> None:
    if graph.input(name) is None:
        names = [i.name for i in graph.inputs]
        more = did_you_mean(name, names) or f" (inputs: {', '.join(names) or 'none'})"
        raise _fail(f"unknown input {_quote(name)} in {what}{more}", graph, "CG301")


def _quote(name: str, most: int = 40) -> str:
    return f"'{name}'" if len(name) <= most else f"'{name[: most - 3]}...'"


def _array(graph: Graph, name: str, value: Any, what: str) -> np.ndarray:
    inp = graph.input(name)
    assert inp is not None
    try:
        return to_array(value, inp.aval.dtype)
    except ValueError as e:
        raise _fail(f"{what} '{name}' {e}", graph) from None


def _columns(graph: Graph, data: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], int]:
    """The data columns, checked: inputs of the graph, [N, *row shape], one N for all."""
    if not data:
        raise _fail("no data columns: give at least one input's rows", graph)
    columns: dict[str, np.ndarray] = {}
    count: tuple[str, int] | None = None
    for name, value in data.items():
        _known(graph, name, "the data")
        if graph.avals[name].dtype == "int" and np.asarray(value).dtype.kind == "f":
            raise _fail(f"data column '{name}' holds floats but input '{name}' has dtype int", graph)
        column = _array(graph, name, value, "data column")
        row = graph.avals[name].shape
        if column.ndim == 0 or column.shape[1:] != row:
            raise _fail(f"data column '{name}' has shape {list(column.shape)}; rows of input '{name}' have shape "
                        f"{list(row)}, so the column must have shape [N, {', '.join(map(str, row)) or ''}]"
                        .replace(", ]", "]"), graph)
        if count is not None and column.shape[0] != count[1]:
            raise _fail(f"data column '{name}' has {column.shape[0]} rows but '{count[0]}' has {count[1]}", graph)
        count = count or (name, column.shape[0])
        columns[name] = column
    assert count is not None
    return columns, count[1]


def _params(graph: Graph, given: Mapping[str, Any], columns: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The value of every input that is not a data column: given, or its default."""
    for name in given:
        _known(graph, name, "the given inputs")
        if name in columns:
            raise _fail(f"input '{name}' is given both as a data column and as a fixed value", graph)
    params: dict[str, np.ndarray] = {}
    for inp in graph.inputs:
        if inp.name in columns:
            continue
        if inp.name in given:
            value = _array(graph, inp.name, given[inp.name], "input")
            if value.shape != inp.aval.shape:
                raise _fail(f"input '{inp.name}' has shape {list(inp.aval.shape)}, got a value of shape "
                            f"{list(value.shape)}", graph)
        elif inp.default is not None:
            value = inp.default
        else:
            raise _fail(f"missing value for input '{inp.name}' (shape {list(inp.aval.shape)}): give it as a data "
                        "column or a fixed value", graph, "CG302")
        params[inp.name] = value
    return params


def _of(graph: Graph, of: str | None) -> str:
    if of is None:
        if not graph.outputs:
            raise _fail("the graph has no outputs: name the value to differentiate (of)", graph, "CG301")
        of = graph.outputs[0]
    if of not in graph.avals:
        raise _fail(f"{_quote(of)} is not an input or node of the graph", graph, "CG301")
    if graph.avals[of].shape != ():
        raise _fail(f"'{of}' has shape {list(graph.avals[of].shape)} per row, not a scalar: add a node that "
                    "reduces it (e.g. op: sum)", graph, "CG210")
    return of


def run_rows(graph: Graph, data: Mapping[str, np.ndarray], given: Mapping[str, Any] | None = None, *,
             of: str | None = None, chunk: int = 1024, progress: Report | None = None,
             on_nonfinite: str = "error") -> Iterator[Chunk]:
    """Per-row values and gradients of `graph` over the rows of `data` (input name -> [N, *row shape]);
    the other inputs take `given` or their defaults, the same for every row. `of` (default the first
    output) is a scalar per row; each row's gradients are d of_row / d name. Chunks of at most `chunk`
    rows, each computed in one vectorised run; `progress(what, done, total)` hears the rows done.
    The arguments are checked here, before the first chunk is asked for. A NaN or Inf raises
    NumericError naming the example (0-based) and the node, or with on_nonfinite "keep" stays in the
    chunk for the caller to report (`cg run --data` names the data file's row)."""
    if on_nonfinite not in ("error", "keep"):
        raise _fail(f"on_nonfinite must be error or keep, not {on_nonfinite!r}", graph)
    if chunk < 1:
        raise _fail(f"chunk must be at least 1 row, not {chunk}", graph)
    of = _of(graph, of)
    columns, count = _columns(graph, data)
    params = _params(graph, given or {}, columns)
    return _chunks(graph, columns, params, count, of, chunk, progress, on_nonfinite == "error")


def _chunks(graph: Graph, columns: Mapping[str, np.ndarray], params: Mapping[str, np.ndarray], count: int, of: str,
            chunk: int, progress: Report | None, strict: bool) -> Iterator[Chunk]:
    graphs: dict[int, Graph] = {}  # at most two: full chunks and the last
    names = [i.name for i in graph.inputs] + [n.id for n in graph.nodes]
    for start in range(0, count, chunk):
        stop = min(start + chunk, count)
        b = stop - start
        if b not in graphs:
            graphs[b] = batched(graph, b)
        inputs = {name: column[start:stop] for name, column in columns.items()}
        inputs.update((name, np.broadcast_to(value, (b, *value.shape))) for name, value in params.items())
        try:
            result = run(graphs[b], inputs, of=of, seed=np.ones(b), on_nonfinite="keep")
        except NumericError as e:  # an op failed (an index out of range): say which rows were running
            raise NumericError([replace(d, message=f"in examples {start} to {stop - 1}: {d.message}")
                                for d in e.diagnostics]) from None
        if result.nonfinite and strict:
            raise _nonfinite(graph, result.values, result.grads, names, start)
        yield Chunk(start, stop, {n: result.values[n] for n in names}, {n: result.grads[n] for n in names})
        if progress is not None:
            progress("rows", stop, count)


def _nonfinite(graph: Graph, values: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray | None],
               names: Sequence[str], start: int) -> NumericError:
    """Which row went wrong, and where: the first value with a NaN or Inf in the order of the graph,
    else the last gradient (the backward pass goes up the graph: the first one it reached)."""
    for name in names:
        bad = ~np.isfinite(values[name]).reshape(len(values[name]), -1).all(axis=1)
        if bad.any():
            row = start + int(np.argmax(bad))
            return NumericError.one("CG200", f"example {row}: '{name}' is not finite (NaN or Inf)", file=graph.file,
                                    node=name)
    for name in reversed(names):
        g = grads.get(name)
        if g is not None and not np.isfinite(g).all():
            row = start + int(np.argmax(~np.isfinite(g).reshape(len(g), -1).all(axis=1)))
            return NumericError.one("CG200", f"example {row}: the gradient of '{name}' is not finite (NaN or Inf)",
                                    file=graph.file, node=name)
    return NumericError.one("CG200", f"rows from {start}: a helper node of the batched graph is not finite",
                            file=graph.file)
