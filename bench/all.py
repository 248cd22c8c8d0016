"""Run every benchmark script of bench/ that defines `rows()`, print the rows and write them as
one Markdown table to bench/results.md (the table of the README's Performance section).

    python bench/all.py [NAME ...]      (`make bench`; names pick scripts, e.g. w1_textbook)

The workloads W1-W5 come first, then the other scripts in alphabetical order. The process is
pinned to one core before any script runs (common.pin_one_core: JAX sizes its thread pool from
the CPU affinity), so cg, numpy, PyTorch and JAX are all timed on one core. A script that
fails is reported on stderr and the others still run; the exit code is then 1. No test
asserts a time.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import common  # noqa: F401  (first: one BLAS thread, before any script imports numpy)
from common import Row, markdown, pin_one_core, show

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.md"


def scripts(names: list[str]) -> list[str]:
    """Module names of the scripts that define rows(), W1-W5 first."""
    found = []
    for path in sorted(HERE.glob("*.py")):
        if path.stem in ("all", "common") or (names and path.stem not in names):
            continue
        if "\ndef rows(" in path.read_text(encoding="utf-8"):
            found.append(path.stem)
    return sorted(found, key=lambda s: (not (s[:1] == "w" and s[1:2].isdigit()), s))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import numpy as np

    try:
        import torch

        torch_text = f"PyTorch {torch.__version__}"
    except ImportError:
        torch_text = "PyTorch not installed"
    try:
        import jax

        jax_text = f"JAX {jax.__version__}"
    except ImportError:
        jax_text = "JAX not installed"
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "?")
    return (f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, numpy {np.__version__}, "
            f"{torch_text}, {jax_text}; OPENBLAS_NUM_THREADS={threads}; running on {cores()} core(s)")


def cores() -> str:
    """How many cores this process may use (1 once pinned)."""
    return f"{len(os.sched_getaffinity(0))}" if hasattr(os, "sched_getaffinity") else "?"


def main(names: list[str]) -> int:
    pin_one_core()  # before any script imports JAX (it sizes its thread pool from the affinity)
    rows: list[Row] = []
    failed = []
    start = time.perf_counter()
    for name in scripts(names):
        print(f"== {name}", flush=True)
        try:
            got = importlib.import_module(name).rows()
        except Exception:
            traceback.print_exc()
            print(f"bench: {name} failed", file=sys.stderr)
            failed.append(name)
            continue
        show(got)
        rows.extend(got)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    head = (f"<!-- written by `make bench` (bench/all.py) on {stamp}, in {time.perf_counter() - start:.0f} s -->\n"
            f"Machine: {machine()}.\n\n")
    RESULTS.write_text(head + markdown(rows), encoding="utf-8")
    print(f"\nwrote {RESULTS.relative_to(HERE.parent)}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
