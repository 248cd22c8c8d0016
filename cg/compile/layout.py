"""The layout of a compiled module: names for the graph's ids, constants, defaults, which
gradients backward computes (ModuleLayout). The module's own story is in cg/compile/__init__.py."""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from cg.errors import CgError, UsageError
from cg.eval.interp import require_name
from cg.graph.ir import Const, Graph, Node
from cg.ops.code import Site
from cg.ops.source import helper_names

__all__ = ["DTYPES", "CompileError", "ModuleLayout", "layout"]
DTYPES = ("float64", "float32")

# Names the generated code uses itself; an id equal to one of them is renamed (with a trailing _).
FIXED_NAMES = frozenset(
    {"np", "math", "NamedTuple", "Values", "Grads", "forward", "backward", "seed", "max", "min", "abs",
     "float", "int"}
    | helper_names()  # the kernels generated code calls by name (cg/ops/kernels.py)
)


class CompileError(CgError):
    """The graph cannot be written as Python (an op without a code rule). Exit code 1."""


class _Namer:
    """Unique Python names: an id stays itself unless it is not an identifier (a composite's
    `h/z`: `h_z`), is a keyword, starts with _ (a NamedTuple field cannot) or is taken; then it
    gets a trailing _ (more if needed)."""

    def __init__(self) -> None:
        self.taken: set[str] = set(FIXED_NAMES)

    def __call__(self, base: str) -> str:
        if not (base.isidentifier() and base.isascii()):
            base = re.sub(r"\W", "_", base, flags=re.ASCII)
            base = "n" + base if base[:1].isdigit() else base
        name = base if base[0] != "_" else base.lstrip("_") + "_" if base.strip("_") else "v_"
        while name in self.taken or keyword.iskeyword(name):
            name += "_"
        self.taken.add(name)
        return name


@dataclass
class ModuleLayout:
    """What the emitter needs: names, constants, the mode and the backward pass's scope."""

    graph: Graph
    of: str
    wrt: tuple[str, ...]  # the names whose gradients backward returns
    scalar: bool  # every value a float scalar: Python floats and math
    dtype: str  # of float values and gradients: float64 or float32
    names: dict[str, str] = field(default_factory=dict)  # id -> Python name of its value
    grads: dict[str, str] = field(default_factory=dict)  # id -> Python name of its gradient
    consts: list[tuple[str, str, str]] = field(default_factory=list)  # (name, literal, comment)
    args: dict[str, tuple[str, ...]] = field(default_factory=dict)  # node id -> argument expressions
    needed: set[str] = field(default_factory=set)  # names whose gradient backward computes
    defaults: dict[str, str | None] = field(default_factory=dict)  # input id -> default, as source
    defaults_text: list[str] = field(default_factory=list)  # module-level defaults of tensor inputs
    sites: dict[str, Site] = field(default_factory=dict)  # node id -> how its code rule sees it
    comments: dict[str, str] = field(default_factory=dict)  # node id -> `d: mul(5, c)`
    v: str = "v"  # backward's parameter (positional): v, unless the graph has a name v


# ---- planning ------------------------------------------------------------------------------


def layout(graph: Graph, of: str | None, wrt: Sequence[str] | None, dtype: str) -> ModuleLayout:
    missing = sorted({n.op.name for n in graph.nodes if n.op.code is None})
    if missing:
        ops = ", ".join(f"'{m}'" for m in missing)
        raise CompileError.one("CG700", f"cg compile cannot write op {ops} as Python: it has no code rule",
                               file=graph.file)
    if dtype not in DTYPES:
        raise UsageError.one("CG300", f"dtype {dtype!r} is not one of {', '.join(DTYPES)}", file=graph.file)
    of = _check_of(graph, of)
    targets = _check_wrt(graph, wrt)
    # Python floats are float64: float32 modules use numpy even for scalars.
    plan = ModuleLayout(graph, of, targets, dtype == "float64" and _all_scalar(graph), dtype)
    namer = _Namer()
    order = [i.name for i in graph.inputs] + [n.id for n in graph.nodes]
    plan.names = {name: namer(name) for name in order}
    plan.grads = {name: namer("d" + plan.names[name]) for name in order if graph.avals[name].dtype == "float"}
    plan.v = namer("v")
    for node in graph.nodes:
        plan.args[node.id] = tuple(_arg(plan, namer, node, k, a) for k, a in enumerate(node.args))
    for inp in graph.inputs:
        plan.defaults[inp.name] = None if inp.default is None else _default(plan, namer, inp.name, inp.default)
    plan.needed = _needed(graph, of, wrt)
    return plan


def _default(plan: ModuleLayout, namer: _Namer, name: str, value: np.ndarray) -> str:
    if value.ndim == 0:
        return repr(int(value)) if value.dtype.kind in "iu" else repr(float(value))
    const = namer(plan.names[name].rstrip("_").upper() + "_DEFAULT")
    plan.defaults_text.append(f"{const} = {_array_literal(value)}")
    return const


def _check_of(graph: Graph, of: str | None) -> str:
    of = of or graph.outputs[0]
    require_name(graph, of, "--of")
    if graph.avals[of].dtype != "float":
        raise UsageError.one("CG303", f"'{of}' is an integer: it has no derivative", file=graph.file)
    return of


def _check_wrt(graph: Graph, wrt: Sequence[str] | None) -> tuple[str, ...]:
    if wrt is None:
        order = [i.name for i in graph.inputs] + [n.id for n in graph.nodes]
        return tuple(name for name in order if graph.avals[name].dtype == "float")
    for name in wrt:
        require_name(graph, name, "--wrt")
        if graph.avals[name].dtype != "float":
            raise UsageError.one("CG303", f"'{name}' is an integer: it has no gradient", file=graph.file)
    return tuple(dict.fromkeys(wrt))


def _all_scalar(graph: Graph) -> bool:
    """Every input, node and constant a float scalar, and every op with a math version."""
    return all(a.shape == () and a.dtype == "float" for a in graph.avals.values()) and all(
        n.op.code is not None and n.op.code.scalar and all(
            not isinstance(a, Const) or (a.value.shape == () and a.dtype == "float") for a in n.args)
        for n in graph.nodes
    )


def _needed(graph: Graph, of: str, wrt: Sequence[str] | None) -> set[str]:
    """Names whose gradient backward computes: on a float path to `of` (as in cg.eval.interp's
    backward), and, with `wrt`, downstream of one of those names. One sweep each way."""
    needed = {of}
    for node, targets in reversed(graph.grad_targets):
        if node.id in needed:
            needed.update(name for _, name in targets)
    if wrt is None:
        return needed
    below = set(wrt)
    for node in graph.nodes:
        if any(isinstance(a, str) and a in below for a in node.args):
            below.add(node.id)
    return needed & below


def _arg(plan: ModuleLayout, namer: _Namer, node: Node, k: int, arg: str | Const) -> str:
    """An argument as source: its name, a number, or the name of a module-level constant."""
    if isinstance(arg, str):
        return plan.names[arg]
    value = arg.value
    if value.ndim == 0:
        text = repr(int(value)) if arg.dtype == "int" else repr(float(value))
        if not plan.scalar and all(isinstance(a, Const) for a in node.args) and k == 0:
            # Only constants: make it numpy, so 1 / 0 and (-8) ** 0.5 behave as in cg run.
            return f"np.{'int64' if arg.dtype == 'int' else plan.dtype}({text})"
        return f"({text})" if text.startswith("-") else text
    name = namer(f"C{len(plan.consts) + 1}")
    plan.consts.append((name, _array_literal(value, plan.dtype), f"{node.id}: argument {k + 1} of {node.op.name}"))
    return name


def _array_literal(value: np.ndarray, dtype: str = "float64") -> str:
    kind = "int64" if value.dtype.kind in "iu" else dtype
    given = "" if kind == "float64" else f", dtype=np.{kind}"
    if value.size == 0:
        return f"np.zeros({value.shape}{given})"
    return f"np.array({value.tolist()!r}{given})"  # Python numbers: their repr reads back exactly

