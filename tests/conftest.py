from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"
# Two tanh layers with a mean loss: small, but every array a node makes is one the lean passes
# (tests/eval/test_lean.py) and compiled value_and_grad (tests/compile/test_value_and_grad.py) free.
TANH_MLP = """
cg: 1
inputs:
  X: {shape: [4, 8]}
  W1: {shape: [8, 8]}
  b1: {shape: [8]}
  W2: {shape: [8, 8]}
  b2: {shape: [8]}
nodes:
  z1: {op: matmul, in: [X, W1]}
  a1: {op: add, in: [z1, b1]}
  h1: {op: tanh, in: [a1]}
  z2: {op: matmul, in: [h1, W2]}
  a2: {op: add, in: [z2, b2]}
  h2: {op: tanh, in: [a2]}
  loss: {op: mean, in: [h2]}
outputs: [loss]
"""


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


# ---- long runs in real processes, started early ----------------------------------------------------
#
# A few tests each run one `cg` process for 5 to 15 s: cg's own work on inputs at the limits, in a
# real process because its memory (RLIMIT_AS) and time are the point (tests/cli/test_hardening.py).
# Marked `@pytest.mark.early(job=job)`, such a test gets the job's result as its `early` argument and
# checks it as before; the jobs are started one after the other in a background thread as soon as
# the session starts, so that their processes run on a second core while the other tests run, and
# those tests are moved to the end of the session, by when their results are ready. A job is
# `job(folder) -> result`: it writes its inputs into its own new folder and runs the process
# (blocking in the process, not in Python, so the tests go on meanwhile).

Job = Callable[[Path], Any]


class _Early:
    def __init__(self) -> None:
        self.futures: dict[str, Future[Any]] = {}
        self.thread: threading.Thread | None = None
        self.stopping = False

    def start(self, jobs: list[tuple[str, Job, Path]]) -> None:
        self.futures = {nodeid: Future() for nodeid, _, _ in jobs}
        self.stopping = False

        def work() -> None:
            for nodeid, job, folder in jobs:
                future = self.futures[nodeid]
                if self.stopping or not future.set_running_or_notify_cancel():
                    continue
                try:
                    future.set_result(job(folder))
                except BaseException as e:  # the test re-raises it
                    future.set_exception(e)

        self.thread = threading.Thread(target=work, name="early cg runs", daemon=True)
        self.thread.start()

    def result(self, nodeid: str, job: Job, folder: Path) -> Any:
        future = self.futures.get(nodeid)
        return job(folder) if future is None else future.result()

    def stop(self) -> None:
        """At the end: jobs not started are dropped, a process under way is killed."""
        import forkserver

        self.stopping = True
        for future in self.futures.values():
            future.cancel()
        if self.thread is not None and self.thread.is_alive():  # the session was cut short
            forkserver.kill_running()
            self.thread.join()


_EARLY = _Early()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "early(job=job): run job(folder) in a background thread from the start of the "
                                       "session; the test gets its result as `early` (tests/conftest.py)")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    items[:] = [i for i in items if not i.get_closest_marker("early")] + \
               [i for i in items if i.get_closest_marker("early")]  # their results are ready by then


@pytest.fixture(scope="session", autouse=True)
def _early_jobs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    jobs = []
    for item in request.session.items:
        marker = item.get_closest_marker("early")
        if marker is not None:
            jobs.append((item.nodeid, marker.kwargs["job"], tmp_path_factory.mktemp("early")))
    if jobs:
        _EARLY.start(jobs)
    yield
    _EARLY.stop()


@pytest.fixture
def early(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The result of this test's `@pytest.mark.early(job=...)` job (run now if it was not started).
    (Not tmp_path: pytest's teardown of it fails when Ctrl-C stops a test in its set-up, here.)"""
    marker = request.node.get_closest_marker("early")
    assert marker is not None, "the `early` argument needs @pytest.mark.early(job=...)"
    return _EARLY.result(request.node.nodeid, marker.kwargs["job"], tmp_path_factory.mktemp("early"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import forkserver

    forkserver.close()  # the fork server of tests/forkserver.py, if a test started it
