"""The op registry: the one table read by the schema, the validator, the interpreter,
the docs and the tests. Adding an op means adding its record to one of the tuples below."""

from __future__ import annotations

from cg.ops.base import Array, Attr, Case, Op, OpFailure, Shape, ShapeMismatch, Tangent
from cg.ops.elementwise import ELEMENTWISE
from cg.ops.nn import NN
from cg.ops.tensor import TENSOR

REGISTRY: dict[str, Op] = {op.name: op for op in (*ELEMENTWISE, *TENSOR, *NN)}

__all__ = ["REGISTRY", "Array", "Attr", "Case", "Op", "OpFailure", "Shape", "ShapeMismatch", "Tangent"]
