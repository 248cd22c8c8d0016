"""`cg.value_and_grad(graph, wrt=..., of=...)`: the forward and backward passes as one Python
function of the inputs, for a caller that runs the same graph many times (a training loop, a
benchmark). Everything that does not depend on the input values is done once, when the
function is made: names are checked, the graph's plan is built (cg/eval/plan.py), and the backward
steps are cut down to the nodes between `of` and the names in `wrt`.

Per call it only converts the inputs: values that already have the right dtype and the
declared shape are used as they are (not copied); anything else goes through the same
checks as cg.run, with the same errors. Unlike cg.run it does not look for NaN or Inf (they
come back in the numbers, with numpy's own warnings) and returns only the output's value
and the gradients asked for.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from cg.errors import UsageError
from cg.eval.interp import _cast, _numeric, _scalar, _seed, bind_inputs, check_shapes, plan_or_usage, require_name
from cg.eval.lean import lean, run_backward, run_forward
from cg.eval.plan import StepFailure
from cg.graph.ir import Graph
from cg.ops import Array


class ValueAndGrad:
    """f(inputs) -> (value of `of`, {name: d of / d name for name in wrt}), as numpy arrays."""

    def __init__(self, graph: Graph, *, of: str | None = None, wrt: Iterable[str] | None = None,
                 dtype: str = "float64") -> None:
        self.graph = graph
        self.plan = plan = plan_or_usage(graph, dtype)
        self.dtype = dt = plan.dtype
        of = of if of is not None else (graph.outputs[0] if graph.outputs else "")
        require_name(graph, of, "of=")
        if isinstance(wrt, str):
            wrt = [wrt]
        names = [i.name for i in graph.inputs if i.aval.dtype == "float"] if wrt is None else list(wrt)
        for name in names:
            require_name(graph, name, "wrt=")
        for name in (of, *names):
            if graph.avals[name].dtype != "float":
                raise UsageError.one("CG303", f"'{name}' is an integer: it has no derivative", file=graph.file)
        self.of, self.wrt = of, tuple(names)
        self.steps = plan.backward_plan(of, frozenset(names), fuse=True)  # no NaN to blame on a node here
        self.of_slot = plan.index[of]
        self.wrt_slots = tuple(plan.index[n] for n in names)
        # The same passes freeing each array after its last use, for inputs of the declared shapes.
        self.lean = lean(plan, self.steps, frozenset({self.of_slot}), frozenset(self.wrt_slots))
        # Per input: its position among the free values, dtype, declared shape and default.
        self.pos = {inp.name: k for k, inp in enumerate(graph.inputs)}
        self.dtypes = [dt if inp.aval.dtype == "float" else np.dtype(np.int64) for inp in graph.inputs]
        self.shapes = [inp.aval.shape for inp in graph.inputs]
        self.defaults: list[Array | None] = [
            None if inp.default is None else _scalar(_cast(inp.default, dt)) for inp in graph.inputs
        ]

    def __call__(self, inputs: Mapping[str, Any] | None = None, *,
                 seed: Any = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        free, declared = self._bind(inputs or {})
        plan, lean_plan = self.plan, self.lean if declared else None
        was = gc.isenabled()
        gc.disable()  # many short-lived objects, no cycles: see cg/gcpause.py
        try:
            try:
                if lean_plan is None:
                    vals = plan.forward(free)
                else:
                    vals = plan.start(free)
                    run_forward(plan, lean_plan.forward, vals)
            except StepFailure as e:
                raise _numeric(self.graph, e.node, "CG201", str(e)) from None
            y = vals[self.of_slot]
            if seed is None and y.shape == ():
                g = self.dtype.type(1.0)
            else:
                g = _seed(self.graph, self.of, y, seed, self.dtype)
            if lean_plan is None:
                grads = plan.backward(self.steps, vals, g)
            else:
                grads = [None] * len(vals)
                grads[self.of_slot] = g
                run_backward(lean_plan.backward, vals, grads)
        finally:
            if was:
                gc.enable()
        out = {}
        # A VJP may pass its cotangent through unchanged (add does), so two names, or a name and
        # the caller's seed, can get the same array: copy repeats, so that each gradient
        # returned is the caller's own to update in place.
        seen = {id(g)} if seed is not None else set()
        for name, slot in zip(self.wrt, self.wrt_slots):
            d = grads[slot]
            if d is None:
                out[name] = np.zeros(np.shape(vals[slot]), self.dtype)
                continue
            d = np.asarray(d)
            if id(d) in seen:
                d = d.copy()
            seen.add(id(d))
            out[name] = d
        return np.asarray(y), out

    def _bind(self, inputs: Mapping[str, Any]) -> tuple[list[Array], bool]:
        """The free values in order, and whether they have the declared shapes. The fast path
        takes arrays and numpy scalars of the right dtype (and Python floats for float inputs)
        and checks only their shapes; anything else goes through cg.run's checks."""
        free = self.defaults.copy()
        pos, dtypes = self.pos, self.dtypes
        for name, v in inputs.items():
            k = pos.get(name)
            if k is None:
                return self._slow(inputs), False
            want = dtypes[k]
            if (type(v) is np.ndarray or isinstance(v, np.generic)) and v.dtype == want:  # not np.matrix
                free[k] = v
            elif type(v) is float and want.kind == "f":
                free[k] = want.type(v)
            else:
                return self._slow(inputs), False
        for v, shape in zip(free, self.shapes):
            if v is None or v.shape != shape:
                return self._slow(inputs), False
        return free, True  # type: ignore[return-value]

    def _slow(self, inputs: Mapping[str, Any]) -> list[Array]:
        values = bind_inputs(self.graph, {k: np.asarray(v) for k, v in inputs.items()})
        check_shapes(self.graph, values)
        return [_scalar(_cast(values[n], self.dtype)) for n in self.plan.free]


def value_and_grad(graph: Graph, *, of: str | None = None, wrt: Iterable[str] | None = None,
                   dtype: str = "float64") -> ValueAndGrad:
    """The function inputs -> (value of `of`, {name: gradient}) for the names in `wrt`
    (default: every float input), computed in `dtype` ("float64" or "float32"). `of`
    defaults to the first output; it must have one element unless a `seed` is given per call.
    Raises UsageError for unknown or integer names now, and NumericError (an op that failed,
    such as an index out of range) or UsageError (bad inputs) per call."""
    return ValueAndGrad(graph, of=of, wrt=wrt, dtype=dtype)


__all__ = ["ValueAndGrad", "value_and_grad"]
