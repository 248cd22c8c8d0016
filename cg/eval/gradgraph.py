"""`cg grad`: the backward pass written as a cg graph. The new graph computes the forward values,
then, node by node in reverse order, the cotangents: each one the graph form of its op's VJP
(cg/ops/graphform.py), fan-out sums as `add` nodes, ids that read like the notes (dz_e, dz_x,
dz_x_from_a) and a doc on each naming the rule it applies. Its outputs are the value of `of`, then
the gradients asked for, so `cg run` on it shows everything, and cg can differentiate it again
(second derivatives: `cg hessian`, `cg check --order 2`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cg.errors import UsageError
from cg.graph.ir import Const, Graph, Node, unique_id
from cg.ops import REGISTRY
from cg.ops.graphform import Site, Val, Writer, const, vjp_graph

VALID = str.maketrans({c: "_" for c in "/.-"})


@dataclass
class _Doc:
    """The graph file being written: nodes in order, the ids taken, the shape of every name."""

    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    taken: set[str] = field(default_factory=set)
    fresh: list[str] = field(default_factory=list)  # nodes emitted for the current cotangent
    stem: str = "t"
    doc: str = ""

    def name(self, want: str) -> str:
        return unique_id(want, self.taken)

    def emit(self, op: str, args: list[Any], attrs: dict[str, Any]) -> str:
        key = self.name(f"{self.stem}_{len(self.fresh) + 1}")
        self.nodes[key] = {"op": op, "in": args, **attrs, "doc": self.doc}
        self.fresh.append(key)
        return key

    renamed: dict[str, str] = field(default_factory=dict)

    def rename(self, old: str, new: str, doc: str | None = None) -> None:
        """Give a node written in this step its readable id (dz_x, da_dx). Later steps use the new
        id; the node and this step's references to it are renamed once, at the end (finished)."""
        self.renamed[old] = new
        if doc is not None:
            self.nodes[old]["doc"] = doc

    def finished(self) -> dict[str, dict[str, Any]]:
        """The nodes with their readable ids: one pass over the graph."""
        new = self.renamed
        return {new.get(k, k): {**v, "in": [new.get(a, a) if isinstance(a, str) else a for a in v["in"]]}
                for k, v in self.nodes.items()}


def grad_document(graph: Graph, of: str | None = None, wrt: Sequence[str] | None = None, *,
                  seed: np.ndarray | None = None) -> dict[str, Any]:
    """The document of the gradient graph of `graph` (d of / d wrt; default: the first output and
    every float input). `seed`, the cotangent of `of`, lets a non-scalar `of` be differentiated
    (as <seed, of>); by default `of` must be a scalar, its cotangent 1."""
    of = of or graph.outputs[0]
    if seed is None or of not in graph.avals or np.shape(seed) != graph.avals[of].shape:
        _check_of(graph, of)
    wrt = list(wrt) if wrt else [i.name for i in graph.inputs if i.aval.dtype == "float"]
    _check_wrt(graph, wrt)
    ids = {i.name: i.name for i in graph.inputs}
    doc = _Doc(taken=set(ids))
    for n in graph.nodes:  # inlined calls have ids like h/z/Wx: valid ids here
        ids[n.id] = doc.name(n.id.translate(VALID))
    inputs = {i.name: _input(i) for i in graph.inputs}
    for n in graph.nodes:
        doc.nodes[ids[n.id]] = _forward(n, ids)
    shapes = {name: tuple(a.shape) for name, a in graph.avals.items()}
    totals = _backward(graph, of, set(wrt), ids, shapes, doc, 1.0 if seed is None else seed)
    outputs = [ids[of]] + [_output(doc, f"d{ids[of]}", name, totals.get(name), shapes[name]) for name in wrt]
    return {"cg": 1, "name": f"{graph.name}_grad", "doc": f"d{of}/d({', '.join(wrt)}) of {graph.name}: the forward "
            "pass, then the backward pass written as nodes (cg grad)", "inputs": inputs, "nodes": doc.finished(),
            "outputs": outputs}


def _check_of(graph: Graph, of: str) -> None:
    if graph.node(of) is None:
        raise UsageError.one("CG301", f"--of {of}: not a node of the graph")
    if graph.avals[of].shape != ():
        raise UsageError.one("CG210", f"--of {of}: its value has shape {list(graph.avals[of].shape)}; cg grad "
                             "differentiates a scalar (sum it first, e.g. a `sum` node)")


def _check_wrt(graph: Graph, wrt: Sequence[str]) -> None:
    for name in wrt:
        found = graph.input(name)
        if found is None or found.aval.dtype != "float":
            raise UsageError.one("CG301", f"--wrt {name}: not a float input of the graph")


def _input(i: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"shape": list(i.aval.shape)} if i.default is None else {"value": i.default.tolist()}
    if i.aval.dtype == "int":
        entry["dtype"] = "int"
    if i.doc:
        entry["doc"] = i.doc
    return entry


def _forward(n: Node, ids: dict[str, str]) -> dict[str, Any]:
    attrs = {k: v for k, v in n.attrs.items() if v != n.op.attrs[k].default}
    args = [ids[a] if isinstance(a, str) else a.value.tolist() for a in n.args]
    return {"op": n.op.name, "in": args, **attrs, **({"doc": n.doc} if n.doc else {})}


def _needed(graph: Graph, of: str, wrt: set[str]) -> set[str]:
    """The names on a path from a wrt input to `of`: the only ones whose cotangents are written."""
    below: set[str] = {of}
    for n in reversed(graph.nodes):  # topological order: one pass each way, no recursion
        if n.id in below:
            below.update(a for a in n.args if isinstance(a, str))
    above = set(wrt)
    for n in graph.nodes:
        if any(isinstance(a, str) and a in above for a in n.args):
            above.add(n.id)
    return below & above


def _backward(graph: Graph, of: str, wrt: set[str], ids: dict[str, str], shapes: dict[str, tuple[int, ...]],
              doc: _Doc, seed: Any) -> dict[str, Val]:
    """Each needed name's cotangent, written in reverse order; the totals, by the graph's names."""
    needed = _needed(graph, of, wrt)
    sends = {name: 0 for name in needed}  # how many cotangents each name receives: one, or a fan-out sum
    for n in graph.nodes:
        if n.id in needed:
            for k, a in enumerate(n.args):
                if isinstance(a, str) and a in needed and n.op.formulas and n.op.formulas.rule(k) is not None:
                    sends[a] += 1
    arrived: dict[str, list[tuple[str, Val]]] = {name: [] for name in needed}
    totals: dict[str, Val] = {of: const(seed)}  # dz/dz = 1
    writer = Writer(REGISTRY, doc.emit)
    d = f"d{ids[of]}"
    for n in reversed(graph.nodes):
        if n.id not in needed:
            continue
        if n.id != of:
            totals[n.id] = _total(doc, d, ids[n.id], arrived[n.id], shapes[n.id])
        g = totals[n.id]
        args = [Val(ids[a], shapes[a]) if isinstance(a, str) else _const(a) for a in n.args]
        site_attrs = dict(n.attrs)
        for k, a in enumerate(n.args):
            if not isinstance(a, str) or a not in needed or graph.avals[a].dtype != "float":
                continue
            own = sends[a] == 1
            doc.stem, doc.fresh = (f"{d}_{ids[a]}" if own else f"{d}_{ids[a]}_from_{ids[n.id]}"), []
            doc.doc = _rule_doc(n, k, d, ids, own)
            cot = vjp_graph(writer, Site(n.op, k, args, Val(ids[n.id], shapes[n.id]), g, site_attrs))
            if cot is None:
                continue
            local = writer.local
            if local is not None and local.ref in doc.fresh and local.ref != cot.ref:  # ∂a/∂x: da_dx
                partial = f"d{ids[n.id]}/d{ids[a]}"
                doc.rename(local.ref, doc.name(f"d{ids[n.id]}_d{ids[a]}"), f"{partial} = {doc.doc.split(' * ')[-1]}")
            if cot.ref in doc.fresh:
                final = doc.name(doc.stem)
                doc.rename(cot.ref, final)
                cot = Val(final, cot.shape)
            arrived[a].append((ids[n.id], cot))
    for name in wrt:
        if name in needed and name not in totals:
            totals[name] = _total(doc, d, name, arrived[name], shapes[name])
    return totals


def _const(c: Const) -> Val:
    return const(c.value)


def _rule_doc(n: Node, k: int, d: str, ids: dict[str, str], own: bool) -> str:
    """"dz/de = dz/dz * 1/e  (log)": which rule a cotangent node applies, in the graph's names."""
    from cg.eval.edges import formula_names
    from cg.ops.formula import show

    rule = n.op.formulas.rule(k) if n.op.formulas else None
    x = n.args[k]
    name, here = (ids[x] if isinstance(x, str) else "?"), ids[n.id]
    if rule is None:
        return f"{d}/d{name}: the VJP of {n.op.name}"
    names = {key: "*".join(ids.get(p, p) for p in parts) for key, parts in formula_names(n, k)}
    names["g"] = f"{d}/d{here}"
    text, sign = show(rule.tree, False, names), "=" if own else "+="
    if rule.kind == "local":
        return f"{d}/d{name} {sign} {d}/d{here} * {text}  ({n.op.name})"
    return f"{d}/d{name} {sign} {text}  ({n.op.name})"


def _total(doc: _Doc, d: str, name: str, arrived: list[tuple[str, Val]], shape: tuple[int, ...]) -> Val:
    """A name's cotangent: the one it received, or the sum of what its consumers sent (an add node)."""
    if not arrived:
        return const(np.zeros(shape))
    if len(arrived) == 1:
        return arrived[0][1]
    key = doc.name(f"{d}_{name}")
    doc.nodes[key] = {"op": "add", "in": [v.arg for _, v in arrived],
                      "doc": f"{d}/d{name} = the sum of what {' and '.join(c for c, _ in arrived)} sent"}
    return Val(key, shape)


def _output(doc: _Doc, d: str, name: str, total: Val | None, shape: tuple[int, ...]) -> str:
    """An output needs a node of its own: a cotangent that is a constant, or the cotangent of
    another name passed through unchanged, gets one."""
    want = f"{d}_{name}"
    if total is not None and total.ref == want:
        return want
    key = doc.name(want)
    if total is None or total.ref is None:
        value = np.zeros(shape) if total is None else total.const
        why = "no path leads from it to the output" if total is None else "a constant"
        doc.nodes[key] = {"op": "broadcast_to", "in": [np.asarray(value).tolist()], "shape": list(shape),
                          "doc": f"{d}/d{name}: {why}"}
    else:
        doc.nodes[key] = {"op": "mul", "in": [total.ref, 1.0],
                          "doc": f"{d}/d{name} = {total.ref} (the gradient passes through unchanged)"}
    return key


def grad_graph(graph: Graph, of: str | None = None, wrt: Sequence[str] | None = None) -> Graph:
    """The gradient graph itself, built and checked as any graph file is."""
    import json

    from cg.graph.builder import build
    from cg.parse.read import load_text

    return build(load_text(json.dumps(grad_document(graph, of, wrt)), f"{graph.file} (cg grad)"))


def hessian(graph: Graph, inputs: Any = None, *, of: str | None = None, wrt: str, mode: str = "forward",
            on_nonfinite: str = "error", progress: Any = None) -> Any:
    """d²of/dwrt², the Jacobian of the gradient graph's output d of/d wrt with respect to wrt:
    forward over reverse (one JVP pass of the gradient graph per element of wrt, the default) or
    reverse over reverse (one backward pass of it per element of the gradient)."""
    from cg.eval.jacobian import jacobian

    if mode not in ("forward", "reverse"):
        raise UsageError.one("CG300", f"mode must be forward (over reverse) or reverse (over reverse), not {mode!r}")
    grads = grad_graph(graph, of, [wrt])
    return jacobian(grads, inputs, of=grads.outputs[1], wrt=wrt, mode=mode, on_nonfinite=on_nonfinite,
                    progress=progress)
