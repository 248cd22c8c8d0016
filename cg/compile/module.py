"""compile_source and compile_module: the text of cg/compile/emit.py, and that text executed."""

from __future__ import annotations

import linecache
import types
from collections.abc import Sequence

from cg.compile.emit import emit
from cg.compile.layout import layout
from cg.graph.ir import Graph


def compile_source(
    graph: Graph, *, of: str | None = None, wrt: Sequence[str] | None = None, dtype: str = "float64"
) -> str:
    """The graph as a Python module (source text): forward, backward, Values and Grads.

    `of` is the differentiated output (default: the first); `wrt` limits backward to the
    gradients of these names (default: every float input and node; 0 where there is no path);
    `dtype` "float32" computes every float value and gradient in float32, as cg.eval.interp.run's
    dtype does. Raises CompileError (an op without a code rule) or UsageError (a bad `of`, `wrt`
    or `dtype`)."""
    return emit(layout(graph, of, wrt, dtype))


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
