"""Budgets: how many numbers a command will hold or compute, known from the shapes before
anything is allocated. Over the `max_total` limit (cg/limits.py) the command is refused with
CG004, where it used to die of MemoryError or run for minutes.

max_elements bounds each tensor; this bounds their sum, and the passes that `cg check` and
`cg jacobian` repeat. The count is in numbers (a float64 is 8 bytes):

- a command that runs the graph holds every value, and a gradient (reverse mode) or a tangent
  (forward mode) for every float value; `cg run --edges`, `cg draw` and `cg report` also each
  edge's flow (the size of its source) and its local Jacobian (when it has at most 64 entries);
- a number written out in full (`cg run -f json`/`-f csv`, every format of `cg jacobian`) counts
  TEXT more times. The run's JSON and CSV are streamed, so there it is time: ~0.6 us a number
  for JSON and ~0.9 us for CSV, against ~0.03 us for holding one; the Jacobian's text is built
  whole, ~110-130 bytes an entry (bench/scaling.py measures both);
- `cg check` computes central differences at up to 200 elements of each input (of each float
  node with --all): two passes per element over the nodes downstream of it, each copying the
  input and the environment of names; with --per-node the same for each node's own op; plus a
  forward-mode pass and the runs for `expect` and a snapshot;
- `cg jacobian` makes one backward pass per row (or one JVP pass per column), and the matrix.

In a pass that is repeated (those of check and jacobian), each node also counts STEP numbers:
calling an op costs about as much time as that much arithmetic, so a pass over many scalar nodes
is counted by its time too. The shapes are those of the run: `avals_for` infers them again when
values of other shapes are given on the command line.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cg.errors import GraphError
from cg.graph.ir import Aval, Const, Graph
from cg.graph.shapes import infer
from cg.limits import Limits
from cg.limits import current as current_limits

if TYPE_CHECKING:
    from cg.check.report import Options

TEXT = 20  # a number written out in full: its time (streamed), or its text (~130 bytes), in numbers held
TEXT_FORMATS = frozenset({"json", "csv"})  # the run's formats that write every number
STEP = 100  # a node's step in a repeated pass: an op call (~1 us) is worth ~100 numbers of arithmetic
SAMPLES = 200  # elements per tensor that `cg check` differentiates (cg.check.gradients.MAX_ELEMENTS)
LOCAL_LIMIT = 64  # the largest local Jacobian `--edges` shows (cg.eval.edges.JACOBIAN_LIMIT)
SHOWN = 3  # the biggest tensors a message names


@dataclass(frozen=True)
class Budget:
    """What one command will hold or compute, in numbers, part by part."""

    command: str  # "cg run", "cg check"...
    parts: tuple[tuple[str, int], ...]  # (what, numbers), e.g. ("gradients", 1_000)
    sizes: Mapping[str, int]  # elements of every input and node, as run
    complete: bool = True  # False: counting stopped once past the limit, the total is a lower bound

    @property
    def total(self) -> int:
        return sum(n for _, n in self.parts)

    def biggest(self, k: int = SHOWN) -> list[tuple[str, int]]:
        return heapq.nlargest(k, self.sizes.items(), key=lambda item: item[1])


# ---- shapes -----------------------------------------------------------------------------------


def avals_for(graph: Graph, given: Mapping[str, Any]) -> Mapping[str, Aval]:
    """The shapes a run will have: the graph's, or, when a value given for an input (`--inputs`)
    has another shape, those inferred again from it (as cg.eval.interp.check_shapes does). An input
    with a declared shape keeps it (the run refuses a value of another shape: a usage error, not
    this budget's CG004), and a node whose shape cannot be inferred keeps its own: the run
    reports the problem."""
    changed = {i.name: Aval(tuple(np.shape(given[i.name])), i.aval.dtype)
               for i in graph.inputs
               if not i.shape_given and i.name in given and tuple(np.shape(given[i.name])) != i.aval.shape}
    if not changed:
        return graph.avals
    avals = {**graph.avals, **changed}
    infer(graph.nodes, avals)
    return avals


def _sizes(avals: Mapping[str, Aval]) -> dict[str, int]:
    return {name: math.prod(a.shape) for name, a in avals.items()}


def _floats(avals: Mapping[str, Aval], sizes: Mapping[str, int]) -> int:
    """Numbers of the gradients (or tangents): one per element of every float value."""
    return sum(sizes[name] for name, a in avals.items() if a.dtype == "float")


def _values(graph: Graph, sizes: Mapping[str, int]) -> int:
    """Numbers of the values: every input and node, and the constants."""
    consts = sum(a.value.size for n in graph.nodes for a in n.args if isinstance(a, Const))
    return sum(sizes.values()) + consts


# ---- cg run (and draw, report, paths) ---------------------------------------------------------


def run_budget(graph: Graph, avals: Mapping[str, Aval] | None = None, *, forward: bool = False,
               edges: bool = False, output: str = "table", command: str = "cg run") -> Budget:
    """A run: every value and every gradient (tangent, `forward`), each edge's flow and local
    Jacobian (`edges`), and the numbers written out in full by `output` (json, csv)."""
    avals = graph.avals if avals is None else avals
    sizes = _sizes(avals)
    values, derivs = _values(graph, sizes), _floats(avals, sizes)
    parts = [("values", values), ("tangents" if forward else "gradients", derivs)]
    shown = values + derivs
    if edges:
        edge = _edges(graph, avals, sizes)
        parts.append(("edges", edge))
        shown += edge
    if output in TEXT_FORMATS:
        parts.append((f"{output} output", shown * TEXT))
    return Budget(command, tuple(parts), sizes)


def _edges(graph: Graph, avals: Mapping[str, Aval], sizes: Mapping[str, int]) -> int:
    """Per edge from a float name: its flow (the source's size) and its local Jacobian, if shown."""
    total = 0
    for node in graph.nodes:
        out = sizes[node.id]
        for a in node.args:
            if isinstance(a, str) and avals[a].dtype == "float":
                local = out * sizes[a]
                total += sizes[a] + (local if local <= LOCAL_LIMIT else 0)
    return total


# ---- the graph's structure ----------------------------------------------------------------------


def _users(graph: Graph) -> dict[str, list[str]]:
    """For each name, the nodes that take it as an argument (each once)."""
    users: dict[str, list[str]] = {}
    for node in graph.nodes:
        for a in dict.fromkeys(a for a in node.args if isinstance(a, str)):
            users.setdefault(a, []).append(node.id)
    return users


def _below(start: str, users: Mapping[str, list[str]]) -> Iterator[str]:
    """The nodes downstream of `start`, `start` left out, each once (an explicit stack)."""
    seen = {start}
    stack = [start]
    while stack:
        for user in users.get(stack.pop(), ()):
            if user not in seen:
                seen.add(user)
                stack.append(user)
                yield user


def _above(graph: Graph, end: str) -> set[str]:
    """The names `end` depends on, `end` included: one sweep against the topological order."""
    seen = {end}
    for node in reversed(graph.nodes):
        if node.id in seen:
            seen.update(a for a in node.args if isinstance(a, str))
    return seen


def _pass(names: Iterable[str], sizes: Mapping[str, int]) -> int:
    """One repeated pass over these nodes: their numbers, and a step each."""
    return sum(sizes[n] + STEP for n in names)


# ---- cg check ---------------------------------------------------------------------------------


def check_budget(graph: Graph, avals: Mapping[str, Aval] | None = None, opts: Options | None = None, *,
                 snapshot: bool = False, stop: int | None = None) -> Budget:
    """`cg check` of one graph with these options (cg.check.gradients.Options: all_nodes, per_node,
    max_elements). Counting stops once past `stop` (default: the max_total limit), so that the
    count itself stays cheap for a graph far over it."""
    avals = graph.avals if avals is None else avals
    stop = current_limits().max_total if stop is None else stop
    sizes = _sizes(avals)
    if not graph.outputs or avals.get(graph.outputs[0], Aval((), "int")).dtype != "float":
        return Budget("cg check", (), sizes)  # a library, or an integer output: nothing is run
    samples = SAMPLES if opts is None else opts.max_elements
    values, derivs = _values(graph, sizes), _floats(avals, sizes)
    parts = [("values", values), ("gradients", derivs), ("forward mode", derivs)]
    if graph.expect is not None:
        parts.append(("expect", values + derivs))
    if snapshot:
        parts.append(("snapshot", 2 * (values + derivs)))  # the saved result, and a run to compare
    spent = sum(n for _, n in parts)
    names = [i.name for i in graph.inputs] + ([n.id for n in graph.nodes] if opts and opts.all_nodes else [])
    differences, complete = _differences(graph, avals, sizes, [n for n in names if avals[n].dtype == "float"],
                                         samples, stop - spent)
    parts.append(("finite differences", differences))
    if complete and opts is not None and opts.per_node:
        per_node, complete = _per_node(graph, avals, sizes, samples, stop - spent - differences)
        parts.append(("per node", per_node))
    return Budget("cg check", tuple(parts), sizes, complete)


def _differences(graph: Graph, avals: Mapping[str, Aval], sizes: Mapping[str, int], names: list[str],
                 samples: int, room: int) -> tuple[int, bool]:
    """Central differences at up to `samples` elements of each name: 2 passes per element plus one
    at the point, each copying the environment and running the nodes below the name; and two
    copies of the name's value per element. (False: stopped once past `room`.)"""
    users, env = _users(graph), len(avals)
    total = 0
    for name in names:
        m = min(samples, sizes[name])
        total += (2 * m + 1) * (env + _pass(_below(name, users), sizes)) + 2 * m * sizes[name]
        if total > room:
            return total, False
    return total, True


def _per_node(graph: Graph, avals: Mapping[str, Aval], sizes: Mapping[str, int], samples: int,
              room: int) -> tuple[int, bool]:
    """--per-node: each float node's VJP against differences of its op at up to `samples` elements
    of each float argument, then its JVP along one direction (cg.check.gradients.check_node)."""
    total = 0
    for node in graph.nodes:
        if avals[node.id].dtype != "float":
            continue
        named = [a for k, a in enumerate(node.args)
                 if isinstance(a, str) and k not in node.op.int_args and avals[a].dtype == "float"]
        if not named:
            continue
        step = sizes[node.id] + STEP
        args = sum(sizes[a] if isinstance(a, str) else a.value.size for a in node.args)
        total += 7 * step + 6 * args  # the value, cotangent, VJP, tangents, JVP and its differences
        for a in named:
            m = min(samples, sizes[a])
            total += (2 * m + 1) * step + 2 * m * sizes[a]
        if total > room:
            return total, False
    return total, True


# ---- cg jacobian ------------------------------------------------------------------------------


def jacobian_budget(graph: Graph, avals: Mapping[str, Aval] | None = None, *, wrt: str, of: str | None = None,
                    mode: str = "auto", output: str = "table") -> Budget:
    """`cg jacobian`: one forward pass, then one backward pass per element of `of` (reverse mode)
    or one JVP pass per element of `wrt` (forward mode), as cg.eval.jacobian.choose picks, and the
    matrix, held and written out (every `output` writes it whole)."""
    from cg.errors import UsageError
    from cg.eval.jacobian import choose

    avals = graph.avals if avals is None else avals
    sizes = _sizes(avals)
    of = of if of is not None else (graph.outputs[0] if graph.outputs else "")
    parts = [("values", _values(graph, sizes))]
    if of not in avals or wrt not in avals:  # the command says which name is wrong
        return Budget("cg jacobian", tuple(parts), sizes)
    rows, cols = sizes[of], sizes[wrt]
    try:
        used, _ = choose(mode, rows, cols)
    except UsageError:  # a bad mode: the command says so
        used = "reverse"
    if used == "reverse":  # gradients of the float names above `of`, a step per node there
        above = _above(graph, of)
        size = sum(sizes[n] for n in above if avals[n].dtype == "float")
        size += STEP * sum(n.id in above for n in graph.nodes) + rows
        parts.append((f"backward passes ({rows:,})", rows * size))
    else:
        size = _pass(_below(wrt, _users(graph)), sizes) + 2 * cols
        parts.append((f"forward-mode passes ({cols:,})", cols * size))
    parts += [("matrix", rows * cols), (f"{output} output", rows * cols * TEXT)]
    return Budget("cg jacobian", tuple(parts), sizes)


# ---- the limit --------------------------------------------------------------------------------


def enforce(budget: Budget, graph: Graph, limit: int | None = None) -> None:
    """GraphError CG004 if the budget is over `limit` (default: the max_total limit in force),
    naming the file, the total and its parts, the limit, the biggest tensors and how to raise it;
    placed at the biggest tensor."""
    limit = current_limits().max_total if limit is None else limit
    total = budget.total
    if total <= limit:
        return
    biggest = budget.biggest()
    parts = ", ".join(f"{what} {n:,}" for what, n in budget.parts if n)
    more = "" if budget.complete else " or more"
    tensors = ", ".join(f"{_short(name)} ({n:,})" for name, n in biggest)
    message = (f"{budget.command} would hold or compute {total:,}{more} numbers ({parts}), more than the limit of"
               f" {limit:,}; the biggest tensors: {tensors}; {Limits().hint('max_total')}")
    where = (graph.input(biggest[0][0]) or graph.node(biggest[0][0])) if biggest else None
    raise GraphError.one("CG004", message, file=graph.file, pos=where.pos if where else None)


def _short(name: str, most: int = 40) -> str:
    return name if len(name) <= most else name[: most - 3] + "..."


# ---- one call per command -----------------------------------------------------------------------


def require_run(graph: Graph, given: Mapping[str, Any] | None = None, *, forward: bool = False,
                edges: bool = False, output: str = "table", command: str = "cg run") -> None:
    """CG004 unless a run of `graph` at the inputs `given` fits max_total (cg run, draw, report, paths)."""
    avals = avals_for(graph, given or {})
    enforce(run_budget(graph, avals, forward=forward, edges=edges, output=output, command=command), graph)


def require_check(graph: Graph, given: Mapping[str, Any] | None = None, opts: Options | None = None, *,
                  snapshot: bool = False) -> None:
    """CG004 unless `cg check` of `graph` with these options fits max_total."""
    enforce(check_budget(graph, avals_for(graph, given or {}), opts, snapshot=snapshot), graph)


def require_jacobian(graph: Graph, given: Mapping[str, Any] | None = None, *, wrt: str, of: str | None = None,
                     mode: str = "auto", output: str = "table") -> None:
    """CG004 unless `cg jacobian` of `graph` fits max_total."""
    avals = avals_for(graph, given or {})
    enforce(jacobian_budget(graph, avals, wrt=wrt, of=of, mode=mode, output=output), graph)
