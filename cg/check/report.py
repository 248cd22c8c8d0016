"""What a check of one graph reports: the options it ran with, a row per compared quantity, and
the problems found, with positions (`cg check`'s table, JSON and diagnostics are made from it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from cg.check.fd import Tolerance
from cg.errors import Diagnostic


@dataclass(frozen=True)
class Options(Tolerance):
    """What `cg check` compares, and how closely (rtol, atol, max_elements: cg/check/fd.py)."""

    all_nodes: bool = False  # the gradient of every float node, not only of the inputs
    seed: int = 0  # random inputs, tangents, cotangents and sampled elements
    per_node: bool = False
    order: int = 1  # 2: also Hessian-vector products (and, per node, each op's second derivative)


@dataclass(frozen=True)
class Row:
    """One compared quantity and its worst error over the elements compared."""

    name: str
    shape: tuple[int, ...] | None  # None for the aggregate rows (forward mode, expect, snapshot)
    abs_err: float
    rel_err: float | None  # None when every reference is 0
    ok: bool
    checked: int  # elements compared
    size: int  # elements in all
    note: str = ""


@dataclass
class FileReport:
    file: str
    rows: list[Row] = field(default_factory=list)
    problems: list[Diagnostic] = field(default_factory=list)  # each failure, with its position
    notes: list[str] = field(default_factory=list)  # what the reader should know (random inputs, kinks)

    @property
    def ok(self) -> bool:
        return not self.problems and all(r.ok for r in self.rows)

    def to_dict(self) -> dict[str, Any]:
        problems = [{"code": d.code, "message": d.message, "line": d.pos.line if d.pos else None,
                     "col": d.pos.col if d.pos else None, "node": d.node, "text": str(d)} for d in self.problems]
        rows = [asdict(r) | {"shape": None if r.shape is None else list(r.shape)} for r in self.rows]
        return {"file": self.file, "ok": self.ok, "rows": rows, "problems": problems, "notes": self.notes}


def row(name: str, shape: tuple[int, ...] | None, err: np.ndarray, ref: np.ndarray, allowed: np.ndarray,
         size: int, note: str = "") -> Row:
    nonzero = np.abs(ref) > 0
    rel = float(np.max(err[nonzero] / np.abs(ref[nonzero]))) if nonzero.any() else None
    ok = bool(np.all(err <= allowed))  # NaN fails
    return Row(name, shape, float(np.max(err, initial=0.0)), rel, ok, int(err.size), size, note)
