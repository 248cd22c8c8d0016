"""`cg.check`: the checks of `cg check` from Python, for tests. The same machinery as the command
(cg/check/gradients.py, against.py, snapshot.py); what it finds is in the report it returns, and
the report prints as the command's plain table, so `assert report.passed, report` says what failed.
It never prints and never exits; what cannot be checked at all raises a CgError."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cg.check.gradients import check_graph
from cg.check.report import FileReport, Options, Row
from cg.check.snapshot import Snapshot, from_mapping, from_result, load_snapshot
from cg.errors import Diagnostic
from cg.eval.interp import Result
from cg.graph.ir import Graph
from cg.printable import printable
from cg.render.checks import plain_report

Against = str | os.PathLike[str] | Mapping[str, Any] | Result | Snapshot


@dataclass(frozen=True)
class CheckReport:
    """What `cg.check` found: `passed`, a row per compared quantity (rows), each failure with its
    file, line and column (diagnostics), and what the reader should know (notes). str() is the
    table `cg check -f plain` prints; repr() one line with the first problem."""

    file: str
    passed: bool
    rows: tuple[Row, ...]
    diagnostics: tuple[Diagnostic, ...]
    notes: tuple[str, ...]

    def __str__(self) -> str:
        report = FileReport(self.file, list(self.rows), list(self.diagnostics), list(self.notes))
        return plain_report(report).rstrip("\n")

    def __repr__(self) -> str:
        """One line: pytest shows `assert report.passed, report` through repr(), cut to 240 characters,
        so the first problem comes first (str(report) is the whole table)."""
        name = printable(os.path.basename(self.file))[:40]
        if self.passed:
            return f"<CheckReport {name}: passed, {len(self.rows)} rows>"
        n = len(self.diagnostics)
        first = ""
        if self.diagnostics:
            d = self.diagnostics[0]
            text = printable((f"node '{d.node}': " if d.node else "") + f"{d.message} [{d.code}]")
            first = f"; {text[:150] + '...' if len(text) > 150 else text}"
        return f"<CheckReport {name}: FAILED, {n} problem{'s' * (n != 1)}{first}>"


def snapshot_of(against: Against) -> Snapshot:
    """A snapshot from a path, a mapping in the partial format, a Result of cg.run, or a Snapshot."""
    if isinstance(against, Snapshot):
        return against
    if isinstance(against, Result):
        return from_result(against)
    if isinstance(against, Mapping):
        return from_mapping(against)
    if isinstance(against, (str, os.PathLike)):
        return load_snapshot(os.fspath(against))
    raise TypeError(f"against: expected a path, a mapping or a cg Result, not {type(against).__name__}")


def check(graph: Graph, inputs: Mapping[str, Any] | None = None, against: Against | None = None, *,
          per_node: bool = False, rtol: float = 1e-5, atol: float = 1e-7, of: str | None = None,
          all_nodes: bool = False, seed: int = 0, order: int = 1) -> CheckReport:
    """Every check of `cg check` on one graph: its gradients against finite differences, forward
    against reverse mode, its `expect` block, and `against` (a snapshot: see snapshot_of). `inputs`
    win over the snapshot's point and the defaults; inputs left without a value are drawn at random
    (numpy's default_rng(seed)) for the finite differences. `of` is the output differentiated
    (default: the first). Raises UsageError for inputs or `of` that do not fit the graph,
    SnapshotError for a snapshot that cannot be used."""
    snapshot = None if against is None else snapshot_of(against)
    opts = Options(rtol=rtol, atol=atol, all_nodes=all_nodes, seed=seed, per_node=per_node, order=order)
    found = check_graph(graph, dict(inputs or {}), opts, snapshot, of=of)
    return CheckReport(found.file, found.ok, tuple(found.rows), tuple(found.problems), tuple(found.notes))
