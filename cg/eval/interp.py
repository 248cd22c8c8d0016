"""Evaluation: a forward pass in topological order and a backward pass in reverse order.
The loops run over the graph's plan (cg/eval/plan.py: slots in lists, made once per graph); the
functions here take and return dicts of name -> value. Gradients live apart from the nodes,
so running twice gives the same numbers. `run` is what the CLI and cg.run share."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cg.errors import CgError, NumericError, UsageError, did_you_mean
from cg.eval.plan import Plan, Report, StepFailure, plan_for, reachable
from cg.gcpause import paused_gc
from cg.graph.ir import Aval, Graph, Node, brief, names_text, plural
from cg.graph.parts import to_array
from cg.graph.shapes import infer
from cg.ops import Array


def _cut(name: str, most: int = 40) -> str:
    """A name from the command line, quoted and cut: a message never grows with what it quotes."""
    return f"'{name}'" if len(name) <= most else f"'{name[: most - 3]}...'"


def forward(graph: Graph, values: Mapping[str, Array]) -> dict[str, Array]:
    """Every node's value, given the value of every input."""
    plan = plan_for(graph)
    vals = _forward(plan, [values[n] for n in plan.free])
    env = dict(values)
    env.update(zip(plan.names[plan.base :], vals[plan.base : len(plan.names)]))
    return env


def _forward(plan: Plan, free: list[Array], progress: Report | None = None) -> list[Array]:
    try:
        return plan.forward(free, progress)
    except StepFailure as e:
        raise _numeric(plan.graph, e.node, "CG201", str(e)) from None


def backward(graph: Graph, env: Mapping[str, Array], of: str, seed: Array) -> dict[str, Array]:
    """d(of)/d(name) for every float input and node that `of` depends on.

    Contributions from several consumers are added up (fan-out), and an argument used twice
    (mul(x, x)) gets both contributions. Constants and integers get none.
    """
    plan = plan_for(graph)
    steps = plan.backward_plan(of)
    grads = plan.backward(steps, plan.values(env), seed)
    return {name: grads[slot] for name, slot in zip(steps.names, steps.slots)}  # type: ignore[misc]


def jvp(graph: Graph, env: Mapping[str, Array], tangents: Mapping[str, Array]) -> dict[str, Array]:
    """Forward mode: d(node)/d(direction) for every node that depends on an input with a
    tangent, pushed through the graph in topological order. One pass per direction."""
    plan = plan_for(graph)
    tans = plan.jvp(plan.values(env), {plan.index[n]: t for n, t in tangents.items() if n in plan.index})
    out = dict(tangents)
    out.update((n, t) for n, t in zip(plan.names, tans) if t is not None)
    return out


# ---- the run that the CLI and the Python API share ------------------------------------


class Slots(Mapping[str, Any]):
    """name -> array, read off a pass's slot list when asked (cg.run's values, gradients and
    tangents). Converting every slot up front (np.asarray, zeros for the float names that got no
    gradient) was two thirds of a cg.run of a long scalar graph, and most callers read a few.
    Each entry is made once, on first access: a float name without a derivative reads as zeros
    of its value's shape (given `values`), an integer name as None."""

    __slots__ = ("_dtype", "_floats", "_index", "_made", "_slots", "_values")

    def __init__(self, index: Mapping[str, int], slots: Sequence[Any], *, values: Sequence[Any] | None = None,
                 dtype: np.dtype[Any] | None = None, floats: Sequence[bool] = ()) -> None:
        self._index, self._slots = index, slots
        self._made: dict[str, Any] = {}
        self._values, self._dtype, self._floats = values, dtype, floats

    def __getitem__(self, name: str) -> Any:
        made = self._made.get(name, self)
        if made is not self:
            return made
        k = self._index[name]  # KeyError for a name the graph does not have, as a dict
        v = self._slots[k]
        if self._values is None:  # values
            made = np.asarray(v)
        elif not self._floats[k]:  # an integer: no derivative
            made = None
        else:
            made = np.zeros(np.shape(self._values[k]), self._dtype) if v is None else np.asarray(v)
        self._made[name] = made
        return made

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:
        return f"<{len(self)} slots: {names_text(list(self._index), 5)}>"


@dataclass(frozen=True)
class Result:
    graph: Graph
    values: Mapping[str, np.ndarray]
    grads: Mapping[str, np.ndarray | None]  # None for integer values, which have no gradient
    of: str | None  # the differentiated output
    nonfinite: tuple[str, ...]  # ids whose value or gradient has a NaN or Inf
    on_path: frozenset[str] = frozenset()  # ids on a path to `of` (reverse) or from the tangents (forward)
    tangents: Mapping[str, np.ndarray | None] | None = None  # forward mode: d(node)/d(direction)
    wrt: tuple[str, ...] = ()  # forward mode: the inputs that have a tangent

    def __repr__(self) -> str:
        """<Result of mlp: loss=0.749118, 6 inputs, 19 nodes, grads d loss/d [W1, b1, w2, b2, x, y]>:
        short, with no array in it (the dataclass's repr would print every value and gradient)."""
        g = self.graph
        shown = self.of if self.of is not None else (g.outputs[0] if g.outputs else None)
        head = ""
        if shown is not None and shown in self.values:
            head = f"{brief(shown)}={_brief_value(self.values[shown])}, "
        counts = f"{plural(len(g.inputs), 'input')}, {plural(len(self.values) - len(g.inputs), 'node')}"
        if self.tangents is not None:
            what = f"forward mode, tangents along [{names_text(self.wrt)}]"
        elif self.of is not None:
            wrt = [i.name for i in g.inputs if self.grads.get(i.name) is not None]
            what = f"grads d {brief(self.of)}/d [{names_text(wrt)}]"
        else:
            what = "no gradients"
        bad = f", NaN or Inf in [{names_text(self.nonfinite, 3)}]" if self.nonfinite else ""
        return f"<Result of {brief(g.name, 30)}: {head}{counts}, {what}{bad}>"

    def value(self, name: str) -> np.ndarray:
        return self.values[name]

    def grad(self, name: str) -> np.ndarray | None:
        return self.grads[name]

    # Jupyter shows a Result as its picture beside its table. Evaluation knows nothing of how a
    # result is drawn: the renderers are looked up in DISPLAY, which the facade (cg.run) fills.
    # A repr must never raise (the notebook would show a traceback instead of the object): on
    # failure Jupyter falls back to the plain repr.
    def _repr_html_(self) -> str | None:
        return _display("html", self)

    def _repr_svg_(self) -> str | None:
        return _display("svg", self)


# How a Result shows itself in a notebook: "html" (picture and table), "svg" (the picture alone).
DISPLAY: dict[str, Callable[[Result], str | None]] = {}


def _display(kind: str, result: Result) -> str | None:
    try:
        show = DISPLAY.get(kind)
        return show(result) if show is not None else None
    except Exception:
        return None


def _brief_value(value: Any) -> str:
    """A value in a repr: a number, or its dtype and shape."""
    arr = np.asarray(value)
    if arr.size == 1:
        item = arr.reshape(-1)[0].item()
        return f"{item:.6g}" if isinstance(item, float) else str(item)
    return f"<{arr.dtype.name} {list(arr.shape)}>"


def _numeric(graph: Graph, node: Node, code: str, what: str) -> NumericError:
    ins = ", ".join(a if isinstance(a, str) else _short(a.value) for a in node.args)
    return NumericError.one(code, f"{node.op.name}({ins}): {what}", file=graph.file, pos=node.pos, node=node.id)


def _short(v: Array) -> str:
    arr = np.asarray(v)
    if arr.size == 1:
        return f"{arr.item():.6g}"
    return f"<{arr.dtype.name} {list(arr.shape)}>"


def require_name(graph: Graph, name: str, option: str) -> None:
    """A name given on the command line (`--of`, `--wrt`, `--from`...) must be an input or node."""
    if name not in graph.avals:
        names = [i.name for i in graph.inputs] + [n.id for n in graph.nodes]
        more = did_you_mean(name, names) or f" (names: {', '.join(names[:10])}{', ...' * (len(names) > 10)})"
        raise UsageError.one("CG301", f"unknown name {_cut(name)} for {option}{more}", file=graph.file)


def bind_inputs(graph: Graph, given: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The value of every input: given on the command line or the file's default."""
    names = [i.name for i in graph.inputs]
    for name in given:
        if graph.input(name) is None:
            more = did_you_mean(name, names) or f" (inputs: {', '.join(names) or 'none'})"
            raise UsageError.one("CG301", f"unknown input {_cut(name)}{more}", file=graph.file)
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


def check_shapes(graph: Graph, values: Mapping[str, np.ndarray]) -> None:
    """Inputs given at run time may change shapes: infer them again before any arithmetic."""
    avals = {name: Aval(v.shape, graph.avals[name].dtype) for name, v in values.items()}
    if all(avals[i.name] == i.aval for i in graph.inputs):
        return
    problems = infer(graph.nodes, avals)
    if problems:
        node, code, message, _ = problems[0]
        raise UsageError.one(code, f"with the given inputs: {message}", file=graph.file, pos=node.pos, node=node.id)


def _seed(graph: Graph, of: str, value: Array, seed: Any, dtype: np.dtype[Any]) -> Array:
    if seed is None:
        if np.size(value) != 1:
            raise UsageError.one(
                "CG210",
                f"output '{of}' has shape {list(np.shape(value))}, not a scalar: add a node that "
                "reduces it (e.g. op: sum) or give a seed gradient of that shape with --seed",
                file=graph.file,
            )
        return _scalar(np.ones(np.shape(value), dtype))  # a number for a number: cheaper arithmetic
    if np.shape(seed) != np.shape(value):
        raise UsageError.one(
            "CG300", f"--seed has shape {list(np.shape(seed))} but output '{of}' has shape {list(np.shape(value))}",
            file=graph.file,
        )
    return np.asarray(seed, dtype=dtype)


def finite(v: Any) -> bool:
    # numpy float64 scalars are Python floats: math.isfinite is 10x cheaper than np.isfinite.
    return math.isfinite(v) if isinstance(v, float) else bool(np.isfinite(v).all())


def nonfinite(graph: Graph, named: Mapping[str, Any], only: frozenset[str] | None = None) -> list[str]:
    """Names with a NaN or Inf in `named` (and in `only`, if given), in topological order."""
    order = [i.name for i in graph.inputs] + [n.id for n in graph.nodes]
    return [n for n in order if named.get(n) is not None and (only is None or n in only) and not finite(named[n])]


def _nonfinite(names: Sequence[str], vals: Sequence[Any]) -> list[str]:
    """nonfinite() on a plan's lists (None: no derivative there). One vectorised check first:
    the numbers (numpy scalars) go into one float array, the arrays are checked each, and when
    all is finite, as it nearly always is, nothing is looked at one by one by name."""
    numbers = [v for v in vals if v is not None and type(v) is not np.ndarray]
    if np.isfinite(np.fromiter(numbers, np.float64, len(numbers))).all() and all(
        np.isfinite(v).all() for v in vals if type(v) is np.ndarray
    ):
        return []
    isfinite, scalar = math.isfinite, (float, np.floating, np.integer)
    return [
        n for n, v in zip(names, vals)
        if v is not None and not (isfinite(v) if isinstance(v, scalar) else np.isfinite(v).all())
    ]


def plan_or_usage(graph: Graph, dtype: str) -> Plan:
    """The graph's plan for dtype ("float64" or "float32"); a UsageError for another dtype."""
    try:
        return plan_for(graph, dtype)
    except ValueError as e:
        raise UsageError.one("CG300", str(e), file=graph.file) from None


def run(
    graph: Graph,
    inputs: Mapping[str, Any] | None = None,
    *,
    of: str | None = None,
    seed: Any = None,
    on_nonfinite: str = "error",
    tangents: Mapping[str, Any] | None = None,
    dtype: str = "float64",
    progress: Report | None = None,
) -> Result:
    """The forward pass, then either the backward pass (reverse mode, the default) or, when
    `tangents` are given (input name -> direction), the forward-mode pass instead.

    `on_nonfinite` is "error" (raise NumericError naming the first node that produced a NaN
    or Inf) or "keep" (finish and list them in the result). `dtype` "float32" computes every
    float value, gradient and tangent in float32 (inputs and constants are cast to it).
    `progress(what, done, total)` hears how far each pass is (cg.eval.plan.Report; the CLI's bar)."""
    plan = plan_or_usage(graph, dtype)
    dt = plan.dtype
    given = {k: np.asarray(v) for k, v in (inputs or {}).items()}
    values = bind_inputs(graph, given)
    check_shapes(graph, values)
    if tangents is not None:
        tangents = {n: t.astype(dt, copy=False) for n, t in bind_tangents(graph, values, tangents).items()}
    else:
        of = of or (graph.outputs[0] if graph.outputs else None)
        if of is not None and of not in graph.avals:
            raise UsageError.one("CG301", f"{_cut(of)} is not an input or node of the graph", file=graph.file)
    free = [_scalar(_cast(values[n], dt)) for n in plan.free]
    names = plan.names
    # Non-finite values are reported by name below, so numpy's warnings would only repeat them.
    with np.errstate(all="ignore"), paused_gc():
        vals = _forward(plan, free, progress)
        bad = _nonfinite(names, vals)
        if bad and on_nonfinite == "error":
            raise blame(graph, bad[0], "value")
        derivs: list[Array | None] = [None] * len(vals)
        if tangents is not None:
            derivs = plan.jvp(vals, {plan.index[n]: t for n, t in tangents.items()}, progress)
        elif of is not None and graph.avals[of].dtype == "float":
            steps = plan.backward_plan(of)
            derivs = plan.backward(steps, vals, _seed(graph, of, vals[plan.index[of]], seed, dt), progress)
        seen = set(bad)
        bad_derivs = [n for n in _nonfinite(names, derivs) if n not in seen]
        if bad_derivs and on_nonfinite == "error":
            # Forward mode goes down the graph, reverse mode up it: blame the first one reached.
            if tangents:
                raise blame(graph, bad_derivs[0], "tangent")
            env = dict(zip(names, vals))
            named = {n: d for n, d in zip(names, derivs) if d is not None}
            raise blame(graph, bad_derivs[-1], "gradient", gradient_sender(graph, env, named, bad_derivs[-1]))
    index = plan.index if len(plan.index) == len(names) else {n: k for k, n in enumerate(names)}
    values_out = Slots(index, vals)
    full = Slots(index, derivs, values=vals, dtype=dt, floats=plan.is_float)
    flagged = tuple(bad + bad_derivs)
    if tangents is not None:
        on_path = frozenset().union(*(reachable(graph, n, downstream=True) for n in tangents))
        return Result(graph, values_out, {}, None, flagged, on_path, full, tuple(tangents))
    on_path = reachable(graph, of, downstream=False) if of is not None else frozenset()
    return Result(graph, values_out, full, of, flagged, on_path)


def _cast(value: np.ndarray, dt: np.dtype[Any]) -> np.ndarray:
    return value.astype(dt) if value.dtype.kind == "f" and value.dtype != dt else value


def _scalar(value: np.ndarray) -> Array:
    """A 0-d array as a numpy scalar, on which arithmetic is several times cheaper (ufuncs
    return scalars for 0-d arrays anyway, so every node's value is one already)."""
    return value[()] if value.ndim == 0 else value


def bind_tangents(graph: Graph, values: Mapping[str, np.ndarray], given: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Directions for forward mode: each a float input's tangent, shaped like its value."""
    if not given:
        raise UsageError.one("CG303", "forward mode needs a direction: --wrt INPUT or --tangent NAME=VALUE")
    out: dict[str, np.ndarray] = {}
    names = [i.name for i in graph.inputs]
    for name, t in given.items():
        if name not in values:
            more = did_you_mean(name, names) or f" (inputs: {', '.join(names) or 'none'})"
            raise UsageError.one("CG301", f"unknown input {_cut(name)} for a tangent{more}", file=graph.file)
        if graph.avals[name].dtype != "float":
            raise UsageError.one("CG303", f"input '{name}' is an integer: it has no derivative", file=graph.file)
        shape = np.shape(values[name])
        tangent = np.broadcast_to(np.asarray(t, dtype=np.float64), shape) if np.size(t) == 1 else np.asarray(t)
        if np.shape(tangent) != shape:
            msg = f"tangent of '{name}' has shape {list(np.shape(t))}, but the input has shape {list(shape)}"
            raise UsageError.one("CG303", msg, file=graph.file)
        out[name] = np.asarray(tangent, dtype=np.float64)
    return out


HINT = " (run with --nonfinite keep to finish the run and see every value)"


def gradient_sender(
    graph: Graph, env: Mapping[str, Array], grads: Mapping[str, Array], name: str, on: frozenset[str] | None = None
) -> Node | None:
    """The node (on the names `on`, if given) whose VJP sent a non-finite gradient back to
    `name`. The sum at `name` cannot say which of its users it came from, so run their VJPs
    again and look (only on this error path)."""
    users = [
        n for n in reversed(graph.nodes)
        if (on is None or n.id in on) and name in n.args and grads.get(n.id) is not None
    ]
    for node in users:
        cts = node.op.vjp(grads[node.id], env[node.id], node.arg_values(env), **node.attrs)
        if any(a == name and cts[k] is not None and not finite(cts[k]) for k, a in enumerate(node.args)):
            return node
    return users[0] if users else None


def blame(graph: Graph, name: str, kind: str, sender: Node | None = None, hint: str = HINT) -> CgError:
    """The error for a non-finite value or tangent (made by node `name`), or gradient (sent
    back to `name` by `sender`)."""
    if kind == "gradient" and sender is not None:
        return _numeric(graph, sender, "CG200", f"sent a non-finite gradient (NaN or Inf) back to '{name}'{hint}")
    node = graph.node(name)
    if node is None:
        return NumericError.one("CG200", f"input '{name}' is not finite{hint}", file=graph.file, node=name)
    return _numeric(graph, node, "CG200", f"produced a non-finite {kind} (NaN or Inf){hint}")
