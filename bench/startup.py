"""Start-up: how long a `cg` process takes, against bare imports of what it needs.

    python bench/startup.py [ROUNDS]        (default 30)

Each command runs as a fresh process (output to /dev/null, so `cg run` prints its plain table
and never loads rich); the commands take turns, round after round, and each row is the median
of its rounds. `cg` is the console script installed beside this Python (`.venv/bin/cg`) when
there is one, else `python -m cg`; the row's note says which. Rows (targets of issue #7):

- `cg --version` and `cg --help` against `python -c "import click"`: 1.3x;
- `cg run graphs/log3x2p5xy.yaml --inputs x=2,y=3` against
  `python -c "import numpy, yaml, jsonschema, click, rich"`: 1.3x.

No test asserts a time; tests/cli/test_startup.py checks which modules each command imports.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common  # noqa: F401  (first: one BLAS thread for the processes started here too)
from common import Row, show

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).parent / "cg"


def cg_command() -> tuple[list[str], str]:
    if SCRIPT.is_file():
        return [str(SCRIPT)], f"the console script {SCRIPT.parent.name}/{SCRIPT.name}"
    return [sys.executable, "-m", "cg"], "python -m cg"


def timings(commands: dict[str, list[str]], rounds: int, warmup: int = 2) -> dict[str, float]:
    """Median wall time of each command, in seconds, the commands taking turns. Bytecode is
    cached in a temporary folder (the warm-up rounds write it), as it is for a user after the first
    run, even where PYTHONDONTWRITEBYTECODE is set: otherwise cg would be compiled at every start
    and the libraries, installed with their bytecode, would not."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NO_COLOR": "1", "PYTHONPYCACHEPREFIX": cache}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        for k in range(warmup + rounds):
            for name, argv in commands.items():
                start = time.perf_counter()
                subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               check=True)
                if k >= warmup:
                    times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def rows(rounds: int = 30) -> list[Row]:
    cg, how = cg_command()
    py = sys.executable
    t = timings({
        "click": [py, "-c", "import click"],
        "version": [*cg, "--version"],
        "help": [*cg, "--help"],
        "five": [py, "-c", "import numpy, yaml, jsonschema, click, rich"],
        "run": [*cg, "run", "graphs/log3x2p5xy.yaml", "--inputs", "x=2,y=3"],
        "python": [py, "-c", "pass"],
    }, rounds)
    ms = {name: 1000 * v for name, v in t.items()}
    bare = f"python itself starts in {ms['python']:.0f} ms"
    return [
        Row("start-up: cg --version", ms["version"], ms["click"], "ms", 1.3,
            f'baseline: python -c "import click"; cg is {how}; {bare}; bytecode cached'),
        Row("start-up: cg --help", ms["help"], ms["click"], "ms", 1.3, 'baseline: python -c "import click"'),
        Row("start-up: cg run textbook graph (piped)", ms["run"], ms["five"], "ms", 1.3,
            'baseline: python -c "import numpy, yaml, jsonschema, click, rich"'),
    ]


if __name__ == "__main__":
    show(rows(int(sys.argv[1]) if len(sys.argv) > 1 else 30))
