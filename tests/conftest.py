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
    def __init__(self, code: int, out: str, err: str, out_bytes: bytes | None = None) -> None:
        self.code = code
        self.out = out
        self.err = err
        self.out_bytes = out.encode() if out_bytes is None else out_bytes  # stdout as written (a PNG)

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


def cg(*args: str, stdin: str | None = None, env: dict[str, str | None] | None = None,
       cwd: Path = ROOT) -> CliResult:
    """Run `cg` with these arguments, output captured (not a terminal), from `cwd` (the repository
    root); `env` sets variables for the run (None removes one).

    In-process through click's CliRunner: the same entry point, exit codes and streams, without
    paying Python's start-up per call. Tests where a real process is the point (start-up, signals,
    tty, closed or full stdout, memory) call `cg_process` (or tests/forkserver.py); CG_TEST_PROCESS=1
    runs every call in a real process, to check that the two agree."""
    if os.environ.get("CG_TEST_PROCESS"):
        return cg_process(*args, stdin=stdin, env=env, cwd=cwd)
    from click.testing import CliRunner

    from cg.cli import main

    before = os.getcwd()
    os.chdir(cwd)
    try:
        got = CliRunner().invoke(main, list(args), input=stdin, env={"COLUMNS": "120", **(env or {})}, prog_name="cg")
    finally:
        os.chdir(before)
    if got.exception is not None and not isinstance(got.exception, SystemExit):
        raise got.exception  # a bug of ours: the test shows its traceback
    result = CliResult(got.exit_code, got.stdout, got.stderr, got.stdout_bytes)
    assert "internal error" not in result.err, result.err
    return result


def cg_process(*args: str, stdin: str | None = None, env: dict[str, str | None] | None = None,
               cwd: Path = ROOT) -> CliResult:
    """Run the real `cg` entry point in a subprocess, as a user would (output piped)."""
    # rich's width when piped: fixed, so tables do not depend on the terminal
    full = {**os.environ, "COLUMNS": "120", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "cg", *args], capture_output=True, cwd=cwd, timeout=120,
                          input=None if stdin is None else stdin.encode(),
                          env={k: v for k, v in full.items() if v is not None})
    result = CliResult(proc.returncode, _text(proc.stdout), _text(proc.stderr), proc.stdout)
    assert "Traceback" not in result.out + result.err, result.err
    return result


def _text(data: bytes) -> str:
    """As subprocess's text mode reads it (universal newlines); binary stdout (a PNG) replaced."""
    try:
        text = data.decode()
    except UnicodeDecodeError:
        text = data.decode(errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


@pytest.fixture
def run_cg() -> Any:
    return cg


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import forkserver

    forkserver.close()  # the fork server of tests/forkserver.py, if a test started it
