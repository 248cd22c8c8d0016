"""`cg compile`: a graph as a readable Python module, the staged computation of the notes
written out: `forward` computes every value in topological order, one line per node, and
`backward` every gradient in reverse order, one line per edge, with `+=` where a name fans out.

    from cg.compile import compile_module
    m = compile_module(cg.load("graphs/log3x2p5xy.yaml"))
    v = m.forward(x=2.0, y=3.0)     # m.Values, a NamedTuple of every input and node: v.z
    g = m.backward(v)               # m.Grads: d z / d every float input and node: g.x
    g = m.backward(v, seed=s)       # the seed gradient of the output (required if it is a tensor)

On numpy arrays the module also has `value_and_grad(**inputs, seed=...) -> (value, Grads)`:
forward's lines then backward's in one function, each name deleted (`del`) after the line that
reads it last, so that only the output's value and the gradients returned stay alive (emit.py's
_value_and_grad and _deaths). Nodes the output does not depend on are not computed there. A
module on Python floats has none: there is nothing worth freeing, and it would double the size
of a long scalar chain.

Each op writes itself: its record in cg/ops/ holds a CodeRule (cg/ops/code.py) beside its
numpy rules; cg/compile/emit.py writes the text, over the names and choices of
cg/compile/layout.py (module.py runs it). Shapes are known from the graph, so gradients
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

from typing import Any

__all__ = ["DTYPES", "CompileError", "compile_module", "compile_source"]


def __getattr__(name: str) -> Any:
    """The public names, imported on first use (numpy stays out of `import cg.compile.emit`'s way)."""
    if name in ("compile_module", "compile_source"):
        from cg.compile import module

        return getattr(module, name)
    if name in ("CompileError", "DTYPES"):
        from cg.compile import layout

        return getattr(layout, name)
    raise AttributeError(f"module 'cg.compile' has no attribute {name!r}")
