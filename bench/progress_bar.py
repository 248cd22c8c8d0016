"""What the progress bar costs (cg/progress.py): a run of the 100,000-node chain of W2 with the
bar drawn on a terminal against the same run with none, in-process and as `cg run` end to end.

    python bench/progress_bar.py [N]

In-process: cg.eval.interp.run with the bar's hook (the plan's passes run in ~100 spans and report
after each) while the bar is drawn on a pseudo-terminal, against run() with no hook and no bar.
End to end: `cg run chain.yaml` on a pseudo-terminal (stdin, stdout and stderr), with the bar
against CG_NO_PROGRESS=1; and the same command into a pipe, which gets every row as plain text
where the terminal gets the summarised table. Turns alternate, so a slow moment of the machine
falls on both sides. No test asserts a time.
"""

from __future__ import annotations

import os
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import common  # noqa: F401  (first: one BLAS thread, before numpy is imported)
from common import Row, show
from w2_chain import N, chain_text

import cg
from cg.eval.interp import run
from cg.progress import progress

ROOT = Path(__file__).resolve().parent.parent
CG = [sys.executable, "-m", "cg"]


def _drain(fd: int, stop: threading.Event) -> None:
    """Read a pseudo-terminal's output until stop, so that its writer never blocks."""
    while not stop.is_set():
        if select.select([fd], [], [], 0.05)[0]:
            try:
                os.read(fd, 1 << 16)
            except OSError:
                return


def in_process(n: int, rounds: int = 17) -> Row:
    graph = cg.loads(chain_text(n), "chain.yaml")
    parent, child = pty.openpty()
    stop = threading.Event()
    reader = threading.Thread(target=_drain, args=(parent, stop), daemon=True)
    reader.start()
    saved = sys.stderr
    shown: list[float] = []
    plain: list[float] = []
    try:
        with open(child, "w", encoding="utf-8", closefd=False) as terminal:
            sys.stderr = terminal  # rich sees a terminal: the bar is drawn
            with progress("bench", after=0) as bar:
                while bar._bar is None:  # the timer thread draws it at once
                    time.sleep(0.01)
                live, hook = bar._bar, bar.hook
                assert hook is not None
                for k in range(rounds):  # in turns, the order swapped each round (a restart is not timed)
                    for drawn in (k % 2 == 0, k % 2 == 1):
                        if not drawn:
                            live.stop()
                        start = time.perf_counter()
                        run(graph, progress=hook if drawn else None)
                        elapsed = time.perf_counter() - start
                        if not drawn:
                            live.start()
                            time.sleep(0.05)  # its first frame drawn before the next turn
                        if k > 1:  # the first two rounds warm up
                            (shown if drawn else plain).append(elapsed)
    finally:
        sys.stderr = saved
        stop.set()
        reader.join()
        os.close(child)
        os.close(parent)
    return Row(f"progress: cg.run of a {n:,}-node chain, bar drawn + hook / neither", statistics.median(shown),
               statistics.median(plain), "s", target=1.03, note="in-process; the bar on a pseudo-terminal")


def on_a_terminal(args: list[str], env: dict[str, str]) -> float:
    """Seconds of `cg ARGS` with stdin, stdout and stderr on a pseudo-terminal (output read and dropped)."""
    parent, child = pty.openpty()
    start = time.perf_counter()
    proc = subprocess.Popen([*CG, *args], stdin=child, stdout=child, stderr=child, cwd=ROOT, env=env)
    os.close(child)
    while True:
        if select.select([parent], [], [], 0.1)[0]:
            try:
                if not os.read(parent, 1 << 16):
                    break
            except OSError:  # the child closed the terminal
                break
        elif proc.poll() is not None:
            break
    proc.wait()
    elapsed = time.perf_counter() - start
    os.close(parent)
    return elapsed


def end_to_end(n: int, rounds: int = 5) -> list[Row]:
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "120"}
    env.pop("CG_NO_PROGRESS", None)
    quiet = {**env, "CG_NO_PROGRESS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chain.yaml"
        path.write_text(chain_text(n), encoding="utf-8")
        args = ["run", str(path)]
        times: dict[str, list[float]] = {"bar": [], "none": [], "pipe": []}
        for _ in range(rounds):
            times["bar"].append(on_a_terminal(args, env))
            times["none"].append(on_a_terminal(args, quiet))
            start = time.perf_counter()
            subprocess.run([*CG, *args], cwd=ROOT, env=env, capture_output=True, check=True)
            times["pipe"].append(time.perf_counter() - start)
    bar, none, pipe = (statistics.median(times[k]) for k in ("bar", "none", "pipe"))
    return [
        Row(f"progress: `cg run` of a {n:,}-node chain on a terminal, bar / CG_NO_PROGRESS=1", bar, none, "s",
            target=1.05, note="end to end, pseudo-terminal; the table shows the first and last 100 rows"),
        Row(f"`cg run` of a {n:,}-node chain: on a terminal (summary) / into a pipe (every row)", none, pipe, "s",
            note="no bar on either side"),
    ]


def rows(n: int = N) -> list[Row]:
    return [in_process(n), *end_to_end(n)]


if __name__ == "__main__":
    show(rows(int(sys.argv[1]) if len(sys.argv) > 1 else N))
