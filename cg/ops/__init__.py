"""The op registry: the one table read by the schema, the validator, the interpreter, the docs
and the tests. Adding an op means adding its record to one of the tuples below (its maths, if
new, to cg/ops/kernels.py).

REGISTRY is read-only (a view of a private dict filled here, at import). A test that needs an op
of its own, such as one with a wrong rule for the gradient checker to catch, installs it for a
`with` block: `with installed(op): ...`. Caches built from the registry ask `revision()`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType

from cg.ops.base import Array, Attr, Case, Op, OpFailure, Shape, ShapeMismatch, Tangent
from cg.ops.elementwise import ELEMENTWISE
from cg.ops.nn import NN
from cg.ops.tensor import TENSOR

_OPS: dict[str, Op] = {}
REGISTRY: Mapping[str, Op] = MappingProxyType(_OPS)
_REVISION = [0]  # changed by installed(): caches of what the registry holds know they are stale


def _register(op: Op) -> None:
    if op.name in _OPS:
        raise ValueError(f"op '{op.name}' is registered twice")
    _OPS[op.name] = op


for _op in (*ELEMENTWISE, *TENSOR, *NN):
    _register(_op)


def revision() -> int:
    """A number that changes whenever installed() changes the registry."""
    return _REVISION[0]


@contextmanager
def installed(*ops: Op) -> Iterator[None]:
    """REGISTRY with these ops added (or, under a registered name, replacing the op) for the
    duration of the block, and as it was afterwards. For tests; not thread-safe."""
    before = {op.name: _OPS.get(op.name) for op in ops}
    _OPS.update((op.name, op) for op in ops)
    _REVISION[0] += 1
    try:
        yield
    finally:
        for name, op in before.items():
            if op is None:
                del _OPS[name]
            else:
                _OPS[name] = op
        _REVISION[0] += 1


__all__ = ["REGISTRY", "Array", "Attr", "Case", "Op", "OpFailure", "Shape", "ShapeMismatch", "Tangent",
           "installed", "revision"]
