from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"


class CliResult:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def json(self) -> Any:
        return json.loads(self.out)

    def table(self) -> dict[str, dict[str, str]]:
        """The plain table, as {id: {column: cell}} (cells are split on runs of 2+ spaces)."""
        import re

        lines = self.out.splitlines()
        header = lines[0].split()
        starts = [lines[0].index(h) for h in header]
        rows = {}
        for line in lines[1:]:
            cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None])]
            rows[cells[0]] = dict(zip(header, cells))
        assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k) for k in rows)
        return rows


def cg(*args: str, stdin: str | None = None) -> CliResult:
    """Run the real `cg` entry point in a subprocess, as a user would (output piped)."""
    env = {**os.environ, "COLUMNS": "120"}  # rich's width when piped: fixed, so tables do not depend on the terminal
    proc = subprocess.run(
        [sys.executable, "-m", "cg", *args], capture_output=True, text=True, input=stdin, cwd=ROOT, timeout=120, env=env
    )
    result = CliResult(proc)
    assert "Traceback" not in result.out + result.err, result.err
    return result


@pytest.fixture
def run_cg() -> Any:
    return cg
