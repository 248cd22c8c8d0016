"""`cg compile`: a graph as a readable Python module, the staged computation of the notes
written out: `forward` computes every value in topological order, one line per node, and
`backward` every gradient in reverse order, one line per edge, with `+=` where a name fans out.

    from cg.compile import compile_module
    m = compile_module(cg.load("graphs/log3x2p5xy.yaml"))
    v = m.forward(x=2.0, y=3.0)     # m.Values, a NamedTuple of every input and node: v.z
    g = m.backward(v)               # m.Grads: d z / d every float input and node: g.x
    g = m.backward(v, seed=s)       # the seed gradient of the output (required if it is a tensor)

Each op writes itself: its record in cg/ops/ holds a CodeRule (cg/ops/code.py) beside its
numpy rules; cg/compile_emit.py lays out the text. Shapes are known from the graph, so gradients
are summed back over broadcast axes with static axes. When every value is a float scalar the
module works on Python floats with the math module, several times faster than numpy on 0-d
arrays; otherwise on numpy arrays, in float64 or (dtype="float32") float32. The generated code
does not check for NaN or Inf, and on floats a value outside an op's domain raises (ValueError:
math domain error, ZeroDivisionError, OverflowError) where numpy gives NaN or Inf; the values
must have the shapes the graph declares (`cg run` re-infers shapes, this code does not).

The only exec is in compile_module, of source generated here from a validated graph: names
are the graph's ids (identifiers; others, keywords and the module's own names are renamed, see
_Namer) and constants are written as the repr of Python numbers or as np.array literals.
"""

from __future__ import annotations

import keyword
import linecache
import re
import types
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from cg.errors import CgError, UsageError
from cg.graph import Const, Graph, Node
from cg.interp import require_name
from cg.ops import REGISTRY
from cg.ops.code import Helper, Site

__all__ = ["DTYPES", "CompileError", "compile_module", "compile_source"]
DTYPES = ("float64", "float32")

# Names the generated code uses itself; an id equal to one of them is renamed (with a trailing _).
FIXED_NAMES = frozenset(
    {"np", "math", "NamedTuple", "Values", "Grads", "forward", "backward", "seed", "max", "min", "abs",
     "float", "int"}
    | {h.name for op in REGISTRY.values() if op.code for h in op.code.helpers}
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
class _Plan:
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
    helpers: dict[str, Helper] = field(default_factory=dict)
    defaults: dict[str, str | None] = field(default_factory=dict)  # input id -> default, as source
    defaults_text: list[str] = field(default_factory=list)  # module-level defaults of tensor inputs
    sites: dict[str, Site] = field(default_factory=dict)  # node id -> how its code rule sees it
    comments: dict[str, str] = field(default_factory=dict)  # node id -> `d: mul(5, c)`
    v: str = "v"  # backward's parameter (positional): v, unless the graph has a name v


def compile_source(
    graph: Graph, *, of: str | None = None, wrt: Sequence[str] | None = None, dtype: str = "float64"
) -> str:
    """The graph as a Python module (source text): forward, backward, Values and Grads.

    `of` is the differentiated output (default: the first); `wrt` limits backward to the
    gradients of these names (default: every float input and node; 0 where there is no path);
    `dtype` "float32" computes every float value and gradient in float32, as cg.interp.run's
    dtype does. Raises CompileError (an op without a code rule) or UsageError (a bad `of`, `wrt`
    or `dtype`)."""
    from cg.compile_emit import emit

    return emit(_plan(graph, of, wrt, dtype))


def compile_module(
    graph: Graph, *, of: str | None = None, wrt: Sequence[str] | None = None, dtype: str = "float64",
    name: str | None = None,
) -> types.ModuleType:
    """compile_source, executed in a fresh module: `m.forward(**inputs)`, `m.backward(values)`."""
    source = compile_source(graph, of=of, wrt=wrt, dtype=dtype)
    module = types.ModuleType(name or f"cg_compiled_{graph.name}")
    filename = f"<cg compile {graph.name}>"
    lines = source.splitlines(True)
    linecache.cache[filename] = (len(source), None, lines, filename)  # tracebacks show the generated lines
    # One top-level statement at a time: Python's compiler holds a whole module's syntax tree at
    # once (about 5 kB per line), so a 100,000-node graph peaks at half the memory this way. The
    # blank lines in front keep the line numbers of the file.
    starts = [k for k, text in enumerate(lines) if text.startswith(("def ", "class "))]
    for start, end in zip([0, *starts], [*starts, len(lines)]):
        chunk = "\n" * start + "".join(lines[start:end])
        exec(compile(chunk, filename, "exec"), module.__dict__)  # our own source, from a validated graph
    return module


# ---- planning ------------------------------------------------------------------------------


def _plan(graph: Graph, of: str | None, wrt: Sequence[str] | None, dtype: str) -> _Plan:
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
    plan = _Plan(graph, of, targets, dtype == "float64" and _all_scalar(graph), dtype)
    namer = _Namer()
    order = [i.name for i in graph.inputs] + [n.id for n in graph.nodes]
    plan.names = {name: namer(name) for name in order}
    plan.grads = {name: namer("d" + plan.names[name]) for name in order if graph.avals[name].dtype == "float"}
    plan.v = namer("v")
    for node in graph.nodes:
        plan.args[node.id] = tuple(_arg(plan, namer, node, k, a) for k, a in enumerate(node.args))
        for helper in node.op.code.helpers if node.op.code else ():
            plan.helpers.setdefault(helper.name, helper)
    for inp in graph.inputs:
        plan.defaults[inp.name] = None if inp.default is None else _default(plan, namer, inp.name, inp.default)
    plan.needed = _needed(graph, of, wrt)
    return plan


def _default(plan: _Plan, namer: _Namer, name: str, value: np.ndarray) -> str:
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
    """Names whose gradient backward computes: on a float path to `of` (as in cg.interp's
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


def _arg(plan: _Plan, namer: _Namer, node: Node, k: int, arg: str | Const) -> str:
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

