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
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code = code
        self.out = out
        self.err = err

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
    """Run `cg` with these arguments, output captured (not a terminal), from the repository root.

    In-process through click's CliRunner: the same entry point, exit codes and streams, without
    paying Python's start-up per call. Tests where a real process is the point (start-up, signals,
    tty, closed or full stdout, memory) call `cg_process`; CG_TEST_PROCESS=1 runs every call in a
    real process, to check that the two agree."""
    if os.environ.get("CG_TEST_PROCESS"):
        return cg_process(*args, stdin=stdin)
    from click.testing import CliRunner

    from cg.cli import main

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        got = CliRunner().invoke(main, list(args), input=stdin, env={"COLUMNS": "120"}, prog_name="cg")
    finally:
        os.chdir(cwd)
    if got.exception is not None and not isinstance(got.exception, SystemExit):
        raise got.exception  # a bug of ours: the test shows its traceback
    result = CliResult(got.exit_code, got.stdout, got.stderr)
    assert "internal error" not in result.err, result.err
    return result


def cg_process(*args: str, stdin: str | None = None) -> CliResult:
    """Run the real `cg` entry point in a subprocess, as a user would (output piped)."""
    env = {**os.environ, "COLUMNS": "120"}  # rich's width when piped: fixed, so tables do not depend on the terminal
    proc = subprocess.run(
        [sys.executable, "-m", "cg", *args], capture_output=True, text=True, input=stdin, cwd=ROOT, timeout=120, env=env
    )
    result = CliResult(proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in result.out + result.err, result.err
    return result


@pytest.fixture
def run_cg() -> Any:
    return cg
