"""Stage 4, graph: a Document -> the immutable, validated Graph.

`ir.py` holds the records (Graph, Node, Input, Const, Aval...) that every later stage reads;
`builder.py` checks a document and builds them (schema, names, references, cycles, shapes),
with `scope.py`, `imports.py` and `functions.py` for libraries and function definitions,
`folders.py` for where imports and input files may come from, `weights.py` and `arrays.py` for
inputs whose default value is in a .npy or .npz file, `expr.py` and `expr_nodes.py` for `expr`
nodes, `composite.py` and `inline.py` for calls, and `expect.py` for the `expect` block.

    from cg.graph import Graph, build    # the documented names, imported on first use
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cg.graph.builder import build
    from cg.graph.ir import Graph

__all__ = ["Graph", "build"]


def __getattr__(name: str) -> Any:
    """cg.graph.build and cg.graph.Graph, imported on first use (start-up stays small)."""
    if name == "build":
        from cg.graph import builder

        return builder.build
    if name == "Graph":
        from cg.graph import ir

        return ir.Graph
    raise AttributeError(f"module 'cg.graph' has no attribute {name!r}")
