"""`cg check --order 2`: second derivatives, which cg gets by differentiating the gradient graph
(cg/eval/gradgraph.py). Hessian-vector products H·v, forward mode over the gradient graph, are
compared with central differences of the gradients along v (each a reverse-mode run of the graph);
with --per-node, each node's VJP in graph form is differentiated the same way and compared with
central differences of its numeric VJP, which names the op whose second derivative is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from cg.check.fd import check_derivative
from cg.check.report import FileReport, Options, Row, row
from cg.errors import Diagnostic
from cg.eval.gradgraph import grad_document
from cg.eval.interp import Result, jvp, run
from cg.graph.ir import Graph, Node
from cg.ops import REGISTRY
from cg.ops.graphform import Site, Val, Writer, vjp_graph

# Ops whose VJP is piecewise constant in their inputs (steps, signs): d²/dx² is 0 almost everywhere.
FLAT = frozenset({"relu", "abs", "maximum", "minimum", "max", "sign", "step"})


def hvp_rows(graph: Graph, result: Result, seed: np.ndarray, opts: Options, rng: np.random.Generator,
             report: FileReport) -> list[Row]:
    """H·v for a random v over the float inputs, per input, against differences of the gradients."""
    from cg.graph.builder import build
    from cg.parse.read import load_text

    assert result.of is not None
    floats = [i.name for i in graph.inputs if i.aval.dtype == "float"]
    text = json.dumps(grad_document(graph, result.of, floats, seed=seed))
    grads = build(load_text(text, f"{graph.file} (cg grad)"))
    point = {i.name: result.values[i.name] for i in graph.inputs}
    v = {n: _relative(rng, np.asarray(point[n])) for n in floats}
    env = run(grads, point, seed=None if not grads.avals[grads.outputs[0]].shape else
              np.ones(grads.avals[grads.outputs[0]].shape)).values
    tangents = jvp(grads, env, v)
    hv = [np.asarray(tangents.get(out, np.zeros(np.shape(point[n]))), np.float64).reshape(-1)
          for n, out in zip(floats, grads.outputs[1:])]
    sizes = [h.size for h in hv]

    def gradient_along(t: np.ndarray) -> np.ndarray:
        moved = {n: (point[n] + float(t.reshape(-1)[0]) * v[n]) if n in v else point[n] for n in point}
        found = run(graph, moved, of=result.of, seed=None if seed.shape == () else seed, on_nonfinite="keep")
        return np.concatenate([np.asarray(found.grads[n], np.float64).reshape(-1) for n in floats])

    actual = np.concatenate(hv).reshape(1, -1)
    c = check_derivative(actual, gradient_along, np.zeros(1), np.arange(1), opts)
    rows, start = [], 0
    for name, size in zip(floats, sizes):
        part = slice(start, start + size)
        start += size
        rows.append(row(f"{name} (H·v)", tuple(np.shape(point[name])), c.err[0, part], c.central[0, part],
                        c.allowed[0, part], size, "forward over reverse vs differences of gradients"))
    flat = sorted({n.op.name for n in graph.nodes} & FLAT)
    if flat:
        report.notes.append(f"order 2: {', '.join(flat)}: second derivative 0 almost everywhere (their gradients "
                            "are steps)")
    return rows


def _relative(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """A random direction scaled by |x| (1 where x is 0), as cg/check/fd.py's tangents: a step along
    it is relative for every element, so log at 1e-5 is not stepped below 0."""
    return rng.normal(size=x.shape) * np.where(x == 0, 1.0, np.abs(x))


def first_bad_second(graph: Graph, env: Mapping[str, Any], opts: Options,
                     rng: np.random.Generator) -> Diagnostic | None:
    """The first node whose VJP, written as a graph and differentiated in forward mode, disagrees
    with central differences of its numeric VJP: its op's second derivative is wrong."""
    for node in graph.nodes:
        problem = _second(node, env, opts, rng)
        if problem is not None:
            return Diagnostic("CG404", f"op '{node.op.name}': {problem}", graph.file, node.pos, node.id)
    return None


def _second(node: Node, env: Mapping[str, Any], opts: Options, rng: np.random.Generator) -> str | None:
    op = node.op
    xs = [np.asarray(x) for x in node.arg_values(env)]
    diff = [k for k, x in enumerate(xs)
            if isinstance(node.args[k], str) and k not in op.int_args and x.dtype.kind == "f"]  # not constants
    if not diff or op.formulas is None or not all(np.isfinite(x).all() for x in xs):
        return None
    attrs = dict(node.attrs)
    y = np.asarray(op.forward(*xs, **attrs), np.float64)
    g = rng.normal(size=y.shape)
    ts = {k: _relative(rng, xs[k]) for k in diff}
    tg = rng.normal(size=y.shape)
    for i in diff:
        mini, out = _vjp_as_graph(node, i, xs, y, g, attrs)
        if out is None:
            continue
        values = run(mini, on_nonfinite="keep", seed=None if not mini.avals[mini.outputs[0]].shape else
                     np.ones(mini.avals[mini.outputs[0]].shape)).values
        # The cotangent g moves too: in forward over reverse, it depends on the inputs downstream.
        tangent = jvp(mini, values, {**{f"x{k}": t for k, t in ts.items()}, "g": tg}).get(out)
        actual = np.zeros(xs[i].size) if tangent is None else np.asarray(tangent, np.float64).reshape(-1)

        def vjp_along(t: np.ndarray, i: int = i) -> np.ndarray:
            s = float(t.reshape(-1)[0])
            moved = [x + s * ts[k] if k in ts else x for k, x in enumerate(xs)]
            ym = op.forward(*moved, **attrs)
            return np.asarray(op.vjp(g + s * tg, ym, moved, **attrs)[i], np.float64).reshape(-1)

        c = check_derivative(actual.reshape(1, -1), vjp_along, np.zeros(1), np.arange(1), opts)
        if not c.ok and not c.skipped.all():
            return f"second derivative disagrees with finite differences (input {i + 1}, max error " \
                   f"{float(np.nanmax(c.err)):.3g})"
    return None


def _vjp_as_graph(node: Node, i: int, xs: list[np.ndarray], y: np.ndarray, g: np.ndarray,
                  attrs: dict[str, Any]) -> tuple[Graph, str | None]:
    """A graph of node's op on inputs x0.. and g (the cotangent arriving), computing the
    cotangent of input i as the op's graph form writes it."""
    from cg.graph.builder import build
    from cg.parse.read import load_text

    nodes: dict[str, dict[str, Any]] = {}

    def emit(op: str, args: list[Any], extra: dict[str, Any]) -> str:
        key = f"t{len(nodes)}"
        nodes[key] = {"op": op, "in": args, **extra}
        return key

    own = {k: v for k, v in attrs.items() if v != node.op.attrs[k].default}
    nodes["y"] = {"op": node.op.name, "in": [f"x{k}" for k in range(len(xs))], **own}
    args = [Val(f"x{k}", x.shape) for k, x in enumerate(xs)]
    found = vjp_graph(Writer(REGISTRY, emit), Site(node.op, i, args, Val("y", y.shape), Val("g", g.shape), attrs))
    if found is None or found.ref is None:
        return build(load_text(json.dumps(_doc(xs, g, nodes, ["y"])), "<per node>")), None
    return build(load_text(json.dumps(_doc(xs, g, nodes, [found.ref])), "<per node>")), found.ref


def _doc(xs: list[np.ndarray], g: np.ndarray, nodes: dict[str, Any], outputs: list[str]) -> dict[str, Any]:
    inputs = {f"x{k}": {"value": x.tolist(), **({"dtype": "int"} if x.dtype.kind in "iu" else {})}
              for k, x in enumerate(xs)}
    return {"cg": 1, "inputs": {**inputs, "g": {"value": g.tolist()}}, "nodes": nodes, "outputs": outputs}
