"""`cg check`'s reports: aligned text (plain), rich tables (human, on a terminal) and one JSON
document, from the FileReports of cg/check/report.py."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Any

from cg.check.report import FileReport, Options, Row
from cg.printable import printable
from cg.render.diagnostics import human, plain, to_dict
from cg.render.table import aligned

COLUMNS = ("name", "shape", "max abs err", "max rel err", "checked", "ok", "note")


def cells(row: Row) -> tuple[str, ...]:
    shape = "-" if row.shape is None else str(list(row.shape))
    rel = "-" if row.rel_err is None else f"{row.rel_err:.1e}"
    checked = str(row.checked) if row.checked == row.size else f"{row.checked}/{row.size}"
    return (row.name, shape, f"{row.abs_err:.1e}", rel, checked, "ok" if row.ok else "FAIL", row.note)


def plain_report(report: FileReport) -> str:
    """Aligned text, no colour: for pipes, files and CI logs."""
    lines = [f"{printable(report.file)}: {'ok' if report.ok else 'FAILED'}"]
    if report.rows:
        table = aligned([COLUMNS, *(cells(r) for r in report.rows)])
        lines += ["  " + line for line in table.splitlines()]
    lines += [f"  note: {printable(n)}" for n in report.notes]
    lines += [plain(d) for d in report.problems]
    return "\n".join(lines) + "\n"


def print_rich_report(report: FileReport) -> None:
    """Rich tables on the terminal, failures in red."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    status = ("ok", "green") if report.ok else ("FAILED", "bold red")
    if report.rows:
        table = Table(title=Text.assemble(printable(report.file), ": ", status), title_justify="left")
        for col in COLUMNS:
            left = col in ("name", "shape", "note")
            table.add_column(col, justify="left" if left else "right", no_wrap=col != "note")
        for row in report.rows:
            table.add_row(*(Text(c, style="" if row.ok else "red") for c in cells(row)))
        console.print(table)
    else:
        console.print(Text.assemble(printable(report.file), ": ", status))
    for note in report.notes:
        console.print(Text("  note: " + printable(note), style="dim"))
    for d in report.problems:
        console.print(human(d), soft_wrap=True)


def reports_json(reports: list[FileReport], opts: Options) -> str:
    def finite(x: Any) -> Any:  # strict JSON has no NaN: a failed comparison's error is null
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: finite(v) for k, v in x.items()}
        return [finite(v) for v in x] if isinstance(x, list) else x

    doc = {"ok": all(r.ok for r in reports), "options": asdict(opts), "files": [r.to_dict() for r in reports],
           "diagnostics": [to_dict(d) for r in reports for d in r.problems]}  # as `cg validate --format json`
    return json.dumps(finite(doc), indent=2) + "\n"
