"""Evaluation: a forward pass in topological order and a backward pass in reverse order,
as short loops over an environment dict. Gradients live in a dict of their own, never on
nodes, so running twice gives the same numbers."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from cg.errors import CgError, NumericError, UsageError, did_you_mean
from cg.gcpause import paused_gc
from cg.graph import Aval, Graph, Node, infer, to_array
from cg.ops import Array, OpFailure


def _args(node: Node, env: Mapping[str, Array]) -> list[Array]:
    # `type(a) is str` rather than isinstance: this runs once per node per pass.
    return [env[a] if type(a) is str else a.value for a in node.args]  # type: ignore[union-attr]


def forward(graph: Graph, values: Mapping[str, Array]) -> dict[str, Array]:
    """Every node's value, given the value of every input."""
    env = dict(values)
    for node in graph.nodes:
        try:
            env[node.id] = node.op.forward(*_args(node, env), **node.attrs)
        except OpFailure as e:
            raise _numeric(graph, node, "CG201", str(e)) from None
    return env


def backward(graph: Graph, env: Mapping[str, Array], of: str, seed: Array) -> dict[str, Array]:
    """d(of)/d(name) for every float input and node that `of` depends on.

    Contributions from several consumers are added up (fan-out), and an argument used twice
    (mul(x, x)) gets both contributions. Constants and integers get none.
    """
    grads: dict[str, Array] = {of: seed}
    for node, targets in reversed(graph.grad_targets):
        g = grads.get(node.id)
        if g is None:
            continue
        xs = [env[a] if type(a) is str else a.value for a in node.args]  # type: ignore[union-attr]
        cotangents = node.op.vjp(g, env[node.id], xs, **node.attrs)
        for k, name in targets:
            prev = grads.get(name)
            grads[name] = cotangents[k] if prev is None else prev + cotangents[k]
    return grads


# ---- the run that the CLI and the Python API share ------------------------------------


@dataclass(frozen=True)
class Result:
    graph: Graph
    values: dict[str, np.ndarray]
    grads: dict[str, np.ndarray | None]  # None for integer values, which have no gradient
    of: str | None  # the differentiated output
    nonfinite: tuple[str, ...]  # ids whose value or gradient has a NaN or Inf

    def value(self, name: str) -> np.ndarray:
        return self.values[name]

    def grad(self, name: str) -> np.ndarray | None:
        return self.grads[name]


def _numeric(graph: Graph, node: Node, code: str, what: str) -> NumericError:
    ins = ", ".join(a if isinstance(a, str) else _short(a.value) for a in node.args)
    return NumericError.one(code, f"{node.op.name}({ins}): {what}", file=graph.file, pos=node.pos, node=node.id)


def _short(v: Array) -> str:
    arr = np.asarray(v)
    if arr.size == 1:
        return f"{arr.item():.6g}"
    return f"<{arr.dtype.name} {list(arr.shape)}>"


def bind_inputs(graph: Graph, given: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The value of every input: given on the command line or the file's default."""
    names = [i.name for i in graph.inputs]
    for name in given:
        if graph.input(name) is None:
            more = did_you_mean(name, names) or f" (inputs: {', '.join(names) or 'none'})"
            raise UsageError.one("CG301", f"unknown input '{name}'{more}", file=graph.file)
    values: dict[str, np.ndarray] = {}
    missing = []
    for inp in graph.inputs:
        if inp.name in given:
            try:
                value = to_array(given[inp.name], inp.aval.dtype)
            except ValueError as e:
                raise UsageError.one("CG300", f"input '{inp.name}' {e}", file=graph.file) from None
            if inp.shape_given and value.shape != inp.aval.shape:
                msg = f"input '{inp.name}' has shape {list(inp.aval.shape)}, got a value of shape {list(value.shape)}"
                raise UsageError.one("CG300", msg, file=graph.file)
            values[inp.name] = value
        elif inp.default is not None:
            values[inp.name] = inp.default
        else:
            missing.append(inp)
    if missing:
        listed = ", ".join(f"{i.name} (shape {list(i.aval.shape)})" for i in missing)
        example = ",".join(f"{i.name}=1" for i in missing if i.aval.shape == ())
        how = f", e.g. --inputs {example}" if example else ""
        raise UsageError.one("CG302", f"missing value for input {listed}: give it with --inputs{how}", file=graph.file)
    return values


def _check_shapes(graph: Graph, values: Mapping[str, np.ndarray]) -> None:
    """Inputs given at run time may change shapes: infer them again before any arithmetic."""
    avals = {name: Aval(v.shape, graph.avals[name].dtype) for name, v in values.items()}
    if all(avals[i.name] == i.aval for i in graph.inputs):
        return
    problems = infer(graph.nodes, avals)
    if problems:
        node, code, message, _ = problems[0]
        raise UsageError.one(code, f"with the given inputs: {message}", file=graph.file, pos=node.pos, node=node.id)


def _seed(graph: Graph, of: str, value: np.ndarray, seed: np.ndarray | None) -> np.ndarray:
    if seed is None:
        if np.size(value) != 1:
            raise UsageError.one(
                "CG210",
                f"output '{of}' has shape {list(np.shape(value))}, not a scalar: add a node that "
                "reduces it (e.g. op: sum) or give a seed gradient of that shape with --seed",
                file=graph.file,
            )
        return np.ones(np.shape(value))
    if np.shape(seed) != np.shape(value):
        raise UsageError.one(
            "CG300", f"--seed has shape {list(np.shape(seed))} but output '{of}' has shape {list(np.shape(value))}",
            file=graph.file,
        )
    return np.asarray(seed, dtype=np.float64)


def _finite(v: Any) -> bool:
    # numpy float64 scalars are Python floats: math.isfinite is 10x cheaper than np.isfinite.
    return math.isfinite(v) if isinstance(v, float) else bool(np.isfinite(v).all())


def _nonfinite(graph: Graph, named: Mapping[str, Any]) -> list[str]:
    order = [i.name for i in graph.inputs] + [n.id for n in graph.nodes]
    return [n for n in order if named.get(n) is not None and not _finite(named[n])]


def run(
    graph: Graph,
    inputs: Mapping[str, Any] | None = None,
    *,
    of: str | None = None,
    seed: Any = None,
    on_nonfinite: str = "error",
) -> Result:
    """Forward and backward passes. `on_nonfinite` is "error" (raise NumericError naming the
    first node that produced a NaN or Inf) or "keep" (finish and list them in the result)."""
    given = {k: np.asarray(v) for k, v in (inputs or {}).items()}
    values = bind_inputs(graph, given)
    _check_shapes(graph, values)
    of = of or (graph.outputs[0] if graph.outputs else None)
    if of is not None and of not in graph.avals:
        raise UsageError.one("CG301", f"'{of}' is not an input or node of the graph", file=graph.file)
    # Non-finite values are reported by name below, so numpy's warnings would only repeat them.
    with np.errstate(all="ignore"), paused_gc():
        env = forward(graph, values)
        bad = _nonfinite(graph, env)
        if bad and on_nonfinite == "error":
            raise _first_bad(graph, bad[0])
        grads: dict[str, Array] = {}
        if of is not None and graph.avals[of].dtype == "float":
            grads = backward(graph, env, of, _seed(graph, of, env[of], seed))
        bad_grads = [n for n in _nonfinite(graph, grads) if n not in bad]
        if bad_grads and on_nonfinite == "error":
            raise _first_bad(graph, bad_grads[-1], gradient=True)
    values_out = {k: np.asarray(v) for k, v in env.items()}
    grads_out = {
        name: (np.asarray(grads[name]) if name in grads else np.zeros(aval.shape)) if aval.dtype == "float" else None
        for name, aval in graph.avals.items()
    }
    return Result(graph, values_out, grads_out, of, tuple(bad + bad_grads))


def _first_bad(graph: Graph, name: str, *, gradient: bool = False) -> CgError:
    """The error for the first non-finite value (in forward order) or gradient (in backward
    order). A bad gradient is blamed on the node whose VJP sent it back."""
    hint = " (run with --nonfinite keep to finish the run and see every value)"
    if gradient:
        culprit = next(n for n in reversed(graph.nodes) if name in n.args)
        return _numeric(graph, culprit, "CG200", f"sent a non-finite gradient (NaN or Inf) back to '{name}'{hint}")
    node = graph.node(name)
    if node is None:
        return NumericError.one("CG200", f"input '{name}' is not finite{hint}", file=graph.file, node=name)
    return _numeric(graph, node, "CG200", f"produced a non-finite value (NaN or Inf){hint}")
