"""`cg` in a process of its own, without paying Python's start-up and cg's imports each time.

Some tests need each run of `cg` in a separate process: its peak memory (ru_maxrss from wait4)
is the point, or an address-space or file-size limit (setrlimit) that must not bind pytest, or a
time limit past which the run is killed as a hang, or real descriptors for stdin, stdout and stderr
(a device, a FIFO, a file). A fresh `python -m cg` costs about 0.25 s before cg does anything,
most of it importing numpy, yaml, jsonschema, rich and cg.

This module is both ends of a fork server. The server (`python tests/forkserver.py`, started once
per test session by `Client`) imports all of cg, then for each request forks a child that:

- sets the request's rlimits (RLIMIT_AS, RLIMIT_FSIZE),
- opens the request's stdin, stdout and stderr files onto descriptors 0, 1 and 2 and makes new
  sys.stdin/stdout/stderr over them, as the interpreter does at start-up (same encoding, errors,
  buffering),
- changes to the request's folder, replaces the whole environment with the request's,
- runs the console script's `main()` with sys.argv = ["cg", *argv], turns SystemExit into the exit
  code as the interpreter does, prints a traceback for anything else (exit 1), flushes stdout and
  stderr as the interpreter does at exit (a failed flush: "Exception ignored", exit 120), and
  leaves with os._exit.

The server waits for the child (killing it past the request's timeout) and answers with its exit
code, ru_maxrss and time. Every run is thus a separate process with its own memory, limits,
descriptors and exit code; what it shares with the others is only what the server did before the
fork: the interpreter's start-up and the imports, done under the server's environment. So a
request whose environment differs from the server's in what start-up or imports read (PYTHON*,
LANG, LC_*, the BLAS thread counts) is not sent to the server: `Client.run` starts a real process
for it. CG_TEST_PROCESS=1 sends every request to a real process (`python -m cg`), to check that
the two agree.

What the fork does not reproduce: the interpreter's start-up itself (its cost, and anything read
from the environment then), and atexit handlers (cg registers none). The tests of start-up, of
the real entry-point script, of signals and of terminals start real processes of their own.
"""

from __future__ import annotations

import io
import json
import os
import resource
import select
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_SCRIPT = Path(sys.executable).with_name("cg")
# The console script when the environment has one, as a user runs it; else `python -m cg`.
REAL_CG = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "cg"]
# What start-up or imports read: a request that changes any of these gets a real process.
STARTUP_PREFIXES = ("PYTHON", "LC_", "OPENBLAS", "OMP_", "MKL_", "NUMPY", "GOTO", "VECLIB")
STARTUP_NAMES = ("LANG", "LANGUAGE")


def startup_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(STARTUP_PREFIXES) or k in STARTUP_NAMES}


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a run: this one without CG_* (the defaults, whatever the shell says),
    rich's width fixed, one BLAS thread (each thread reserves address space of its own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CG_")}
    env.update({"COLUMNS": "120", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
    env.update(extra or {})
    return env


RUNNING: set[int] = set()  # the real processes of real_run under way, not reaped yet
_LOCK = threading.Lock()


def kill_running() -> None:
    """SIGKILL the processes of real_run under way (the session stops; their waits then end)."""
    with _LOCK:
        for pid in RUNNING:
            os.kill(pid, 9)  # our own child, by its id, not reaped yet


@dataclass
class Run:
    code: int
    maxrss_kib: int  # peak resident memory of the process, as wait4 reports it
    seconds: float
    hung: bool  # killed past the timeout
    forked: bool  # False: a real process was started


# ---- the server ---------------------------------------------------------------------------------


def _preload() -> None:
    """Import every module of cg (and with them numpy, yaml, jsonschema, rich), so children do not."""
    import importlib
    import pkgutil

    import cg
    import cg.cli

    for info in pkgutil.walk_packages(cg.__path__, "cg."):
        if not info.name.endswith("__main__"):  # importing it runs the command line
            importlib.import_module(info.name)
    assert cg.cli.main is not None


def _text_stream(fd: int, like: Any, write: bool) -> io.TextIOWrapper:
    """A new sys.std* over `fd`, made as the interpreter makes it at start-up (like the server's own)."""
    buffer: Any = open(fd, "wb" if write else "rb", closefd=False)  # noqa: SIM115 - kept open as sys.std*
    return io.TextIOWrapper(buffer, encoding=like.encoding, errors=like.errors, newline="\n",
                            line_buffering=fd == 2 or buffer.isatty(), write_through=False)


def _exit_code(code: object) -> int:
    """What the interpreter exits with for SystemExit(code)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _child(request: dict[str, Any], protocol: tuple[int, ...]) -> None:
    """In the forked child: become the `cg` process the request describes, run it, and exit."""
    code = 1
    try:
        for fd in protocol:
            os.close(fd)
        if request["address_space"] is not None:
            limit = request["address_space"]
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        if request["fsize"] is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (request["fsize"], request["fsize"]))
        os.chdir(request["cwd"])
        fds = [os.open(request["stdin"], os.O_RDONLY),
               os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
               os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)]
        for target, fd in enumerate(fds):
            if fd != target:
                os.dup2(fd, target)
        for fd in set(fds) - {0, 1, 2}:
            os.close(fd)
        for fd, name in enumerate(("stdin", "stdout", "stderr")):
            stream = _text_stream(fd, getattr(sys, f"__{name}__"), write=fd > 0)
            setattr(sys, name, stream)
            setattr(sys, f"__{name}__", stream)
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = [request["argv0"], *request["argv"]]
        from cg.cli import main

        try:
            main()
            code = 0
        except SystemExit as e:
            code = _exit_code(e.code)
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        try:  # what the interpreter does at exit
            sys.stdout.flush()
        except BaseException:
            import traceback

            print("Exception ignored in: <_io.TextIOWrapper name='<stdout>'>", file=sys.stderr)
            traceback.print_exc()
            code = 120
        try:
            sys.stderr.flush()
        except BaseException:
            code = 120
    except BaseException:
        import traceback

        try:
            traceback.print_exc()
            sys.stderr.flush()
        except BaseException:
            pass
    finally:
        os._exit(code)


def _reap(pid: int, block: bool) -> tuple[int, int, Any]:
    """wait4, and the pid leaves RUNNING as it is reaped (under the lock: kill_running never
    signals a pid that was reaped, and may since name another process)."""
    with _LOCK:
        done, status, usage = os.wait4(pid, 0 if block else os.WNOHANG)
        if done:
            RUNNING.discard(pid)
        return done, status, usage


def _wait(pid: int, timeout: float) -> tuple[int, Any, bool]:
    """wait4 the child; SIGKILL it past `timeout`. (status, rusage, hung)."""
    end = time.monotonic() + timeout
    hung = False
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    try:
        while True:
            done, status, usage = _reap(pid, block=False)
            if done:
                return status, usage, hung
            left = end - time.monotonic()
            if left <= 0:
                os.kill(pid, 9)  # our own child, by its id, not reaped yet
                _, status, usage = _reap(pid, block=True)
                return status, usage, True
            if pidfd is not None:
                select.select([pidfd], [], [], left)
            else:
                time.sleep(min(left, 0.002))
    finally:
        if pidfd is not None:
            os.close(pidfd)


def serve() -> None:
    _preload()
    import gc

    gc.collect()
    gc.freeze()  # the children do not copy the preloaded objects' pages to collect them
    requests = os.fdopen(0, "rb", buffering=0)
    replies = os.fdopen(1, "wb", buffering=0)
    pending = b""
    replies.write(b'{"ready": true}\n')
    while True:
        while b"\n" not in pending:
            chunk = requests.read(1 << 16)
            if not chunk:
                return
            pending += chunk
        line, pending = pending.split(b"\n", 1)
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _child(request, (0, 1))
        status, usage, hung = _wait(pid, request["timeout"])
        reply = {"code": os.waitstatus_to_exitcode(status), "maxrss_kib": usage.ru_maxrss,
                 "seconds": time.monotonic() - start, "hung": hung}
        replies.write(json.dumps(reply).encode() + b"\n")


# ---- the client (in the pytest process) --------------------------------------------------------------


class Client:
    """Sends runs to one fork server, started on first use with the given environment."""

    def __init__(self, env: Mapping[str, str], log: Path) -> None:
        self.env = dict(env)
        self.log = log
        self._proc: subprocess.Popen[bytes] | None = None
        self._pending = b""

    def _server(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            with open(self.log, "ab") as log:
                self._proc = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE,
                                              stdout=subprocess.PIPE, stderr=log, cwd=ROOT, env=self.env)
            self._pending = b""
            assert json.loads(self._read_line(self._proc, 120)) == {"ready": True}
        return self._proc

    def _read_line(self, proc: subprocess.Popen[bytes], timeout: float) -> bytes:
        assert proc.stdout is not None
        end = time.monotonic() + timeout
        while b"\n" not in self._pending:
            left = end - time.monotonic()
            if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
                self.close()
                raise AssertionError(f"the fork server did not answer in {timeout} s ({self.log})")
            chunk = os.read(proc.stdout.fileno(), 1 << 16)
            if not chunk:
                self.close()
                raise AssertionError(f"the fork server died: {self.log.read_text(errors='replace')[-3000:]}")
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        return line

    def run(self, argv: list[str], *, cwd: Path, stdin: Path, stdout: Path, stderr: Path, env: Mapping[str, str],
            timeout: float, address_space: int | None = None, fsize: int | None = None) -> Run:
        """`cg argv` in a process of its own: forked from the server, or started afresh when it
        must be (CG_TEST_PROCESS=1, or an environment that start-up would read differently)."""
        if os.environ.get("CG_TEST_PROCESS") or startup_env(env) != startup_env(self.env):
            return real_run(argv, cwd=cwd, stdin=stdin, stdout=stdout, stderr=stderr, env=env, timeout=timeout,
                            address_space=address_space, fsize=fsize)
        proc = self._server()
        assert proc.stdin is not None
        request = {"argv": [os.fsdecode(a) for a in argv], "argv0": REAL_CG[-1] if len(REAL_CG) == 1 else "cg",
                   "cwd": str(cwd), "stdin": str(stdin), "stdout": str(stdout), "stderr": str(stderr),
                   "env": dict(env), "timeout": timeout, "address_space": address_space, "fsize": fsize}
        proc.stdin.write(json.dumps(request).encode() + b"\n")
        proc.stdin.flush()
        reply = json.loads(self._read_line(proc, timeout + 60))
        return Run(reply["code"], reply["maxrss_kib"], reply["seconds"], reply["hung"], forked=True)

    def close(self) -> None:
        if self._proc is not None:
            if self._proc.stdin:
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()  # our own server, by its handle
                self._proc.wait()
            if self._proc.stdout:
                self._proc.stdout.close()
            self._proc = None


_client: Client | None = None
def client() -> Client:
    """The session's fork server (started on first use; conftest.py closes it at the end)."""
    global _client
    if _client is None:
        import atexit
        import tempfile

        _client = Client(clean_env(), Path(tempfile.mkdtemp(prefix="cg-forkserver-")) / "log")
        atexit.register(close)  # also when the session ends without pytest_sessionfinish
    return _client


def close() -> None:
    global _client
    if _client is not None:
        _client.close()
        log = _client.log
        if not log.exists() or not log.read_bytes():
            log.unlink(missing_ok=True)
            log.parent.rmdir()
        _client = None


def real_run(argv: list[str], *, cwd: Path, stdin: Path, stdout: Path, stderr: Path, env: Mapping[str, str],
             timeout: float, address_space: int | None = None, fsize: int | None = None) -> Run:
    """The same run in a real process: the console script (or `python -m cg`), started afresh."""

    def limits() -> None:
        if address_space is not None:
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    start = time.monotonic()
    fin = os.open(stdin, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO without a writer must not block pytest
    try:
        os.set_blocking(fin, True)
        with open(stdout, "wb") as fout, open(stderr, "wb") as ferr:
            proc = subprocess.Popen([*REAL_CG, *argv], stdin=fin, stdout=fout, stderr=ferr, cwd=cwd, env=dict(env),
                                    preexec_fn=limits)
    finally:
        os.close(fin)
    with _LOCK:
        RUNNING.add(proc.pid)
    status, usage, hung = _wait(proc.pid, timeout)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(proc.returncode, usage.ru_maxrss, time.monotonic() - start, hung, forked=False)


if __name__ == "__main__":
    serve()
