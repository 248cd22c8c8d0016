"""cg ids from ONNX names: made valid (letters, digits and _, not starting with a digit) and unique."""

from __future__ import annotations

import re

from cg.graph.ir import unique_id

_BAD = re.compile(r"[^A-Za-z0-9_]+")


class Namer:
    """Hands out ids: the same ONNX name always gets the same id; two names never share one."""

    def __init__(self, taken: set[str] | None = None) -> None:
        self.ids: dict[str, str] = {}
        self.taken: set[str] = set(taken or ())

    def id(self, name: str) -> str:
        if name not in self.ids:
            self.ids[name] = self.fresh(name)
        return self.ids[name]

    def fresh(self, name: str) -> str:
        """A new id like `name`: `/0/Gemm_output_0` -> `_0_Gemm_output_0`, then `_2`, `_3`... if taken."""
        base = _BAD.sub("_", name).strip("_") or "v"
        base = "_" + base if base[0].isdigit() else base
        return unique_id(base, self.taken)
