"""Sum over paths: dz/dx as the sum, over every path from x to z, of the product of the local
derivatives on the path's edges (the lecture notes' picture of the chain rule).

For scalar graphs only: a path's product is a product of numbers when every node on it has
one entry. The paths are counted before any is listed (their number grows exponentially with
depth), and the total is checked against the backward pass, which gets it in one sweep.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from cg.errors import UsageError
from cg.eval.edges import local_jacobian
from cg.eval.interp import Result, require_name, run
from cg.eval.plan import between
from cg.graph.ir import Graph
from cg.ops import Array

DEFAULT_LIMIT = 1000

Step = tuple[str, int, float]  # (consuming node, argument position, local derivative)


@dataclass(frozen=True)
class Path:
    names: tuple[str, ...]  # from --from to --to
    args: tuple[int, ...]  # each step's argument position in its node's `in` (mul(x, x) has two)
    locals: tuple[float, ...]  # the local derivative on each edge
    product: float


@dataclass(frozen=True)
class PathReport:
    graph: str
    file: str
    src: str
    dst: str
    count: int
    paths: tuple[Path, ...]
    total: float  # the sum over the paths of their products
    reverse: float  # d dst / d src from the backward pass: equals total


def _usage(graph: Graph, code: str, message: str) -> UsageError:
    return UsageError.one(code, message, file=graph.file)


def check_names(graph: Graph, src: str, dst: str) -> None:
    """--from must be an input or node with a derivative, --to a node."""
    for option, name in (("--from", src), ("--to", dst)):
        require_name(graph, name, option)
    if graph.node(dst) is None:
        raise _usage(graph, "CG301", f"--to must be a node, and '{dst}' is an input: no path ends at an input")
    if graph.avals[src].dtype == "int":
        raise _usage(graph, "CG311", f"'{src}' is an integer: it has no derivative, so there is nothing to sum")


def count_paths(graph: Graph, src: str, dst: str) -> int:
    """The number of paths from src to dst, without listing them: one sweep in topological
    order with exact Python ints (a node's count is the sum of its arguments' counts, so an
    argument used twice, as in mul(x, x), counts twice)."""
    counts = {src: 1}
    for node in graph.nodes:
        if node.id == src:
            continue
        n = sum(counts.get(a, 0) for a in node.args if isinstance(a, str))
        if n:
            counts[node.id] = n
    return counts.get(dst, 0)


def _steps(graph: Graph, values: Mapping[str, Array], on: frozenset[str]) -> dict[str, list[Step]]:
    """For each name on the paths, the edges out of it that stay on the paths."""
    out: dict[str, list[Step]] = {name: [] for name in on}
    with np.errstate(all="ignore"):
        for node in graph.nodes:
            if node.id not in on:
                continue
            xs, y = node.arg_values(values), values[node.id]
            for k, a in enumerate(node.args):
                if isinstance(a, str) and a in on:
                    local = local_jacobian(node, k, xs, y)
                    assert local is not None  # every name on the paths is a scalar
                    out[a].append((node.id, k, float(local.reshape(-1)[0])))
    return out


def enumerate_paths(graph: Graph, values: Mapping[str, Array], src: str, dst: str) -> list[Path]:
    """Every path from src to dst with its local derivatives, depth first with an explicit
    stack (no recursion: a path may be as long as the graph). Scalar nodes only."""
    on = between(graph, src, dst)
    if not on:
        return []
    if src == dst:
        return [Path((src,), (), (), 1.0)]
    out = _steps(graph, values, on)
    found: list[Path] = []
    # The current path, grown and shrunk in place: copying it at every step would cost its length squared.
    names, prods = [src], [1.0]
    args: list[int] = []
    locs: list[float] = []
    stack: list[Iterator[Step]] = [iter(out[src])]
    while stack:
        step = next(stack[-1], None)
        if step is None:  # every edge out of names[-1] is done: step back
            stack.pop()
            names.pop()
            prods.pop()
            if args:
                args.pop()
                locs.pop()
            continue
        name, k, d = step
        if name == dst:
            found.append(Path((*names, name), (*args, k), (*locs, d), prods[-1] * d))
            continue
        names.append(name)
        args.append(k)
        locs.append(d)
        prods.append(prods[-1] * d)
        stack.append(iter(out[name]))
    return found


def _reverse(graph: Graph, inputs: Mapping[str, Any] | None, dst: str) -> Result:
    """The run whose backward pass starts at dst; a tensor dst is the scalar check's first failure."""
    try:
        return run(graph, inputs, of=dst)
    except UsageError as e:
        if e.diagnostics[0].code == "CG210":
            raise _not_scalar(graph, [dst], {dst: list(graph.avals[dst].shape)}) from None
        raise


def _not_scalar(graph: Graph, names: list[str], shapes: Mapping[str, list[int]]) -> UsageError:
    listed = ", ".join(f"'{n}' has shape {shapes[n]}" for n in names[:3]) + (", ..." if len(names) > 3 else "")
    file = graph.file if graph.file and not graph.file.startswith("<") else "FILE"
    hint = f"see each edge's local Jacobian with `cg run {file} --edges` instead"
    return _usage(graph, "CG311", f"paths need scalar nodes (one entry each): {listed}; {hint}")


def _check_scalars(graph: Graph, result: Result, on: frozenset[str]) -> None:
    order = [i.name for i in graph.inputs] + [n.id for n in graph.nodes]
    big = [n for n in order if n in on and result.values[n].size != 1]
    if big:
        raise _not_scalar(graph, big, {n: list(result.values[n].shape) for n in big})


def find_paths(
    graph: Graph, inputs: Mapping[str, Any] | None = None, *, src: str, dst: str, limit: int = DEFAULT_LIMIT
) -> PathReport:
    """Every path from src to dst with the product of its local derivatives, their total and
    reverse mode's d dst / d src. UsageError if a name is wrong, a node on the paths is not a
    scalar, or there are more than `limit` paths (the message still gives the derivative)."""
    check_names(graph, src, dst)
    result = _reverse(graph, inputs, dst)
    _check_scalars(graph, result, between(graph, src, dst) | {src, dst})
    grad = result.grads[src]
    assert grad is not None  # src is a float (check_names)
    reverse = float(grad.reshape(-1)[0])
    count = count_paths(graph, src, dst)
    if count > limit:
        msg = (
            f"there are {count:,} paths from {src} to {dst}, more than --limit {limit:,}; raise --limit to "
            f"list them. Their sum is still d{dst}/d{src} = {reverse:.6g} (from reverse mode)"
        )
        raise _usage(graph, "CG310", msg)
    paths = enumerate_paths(graph, result.values, src, dst)
    total = math.fsum(p.product for p in paths)
    return PathReport(graph.name, graph.file, src, dst, count, tuple(paths), total, reverse)
