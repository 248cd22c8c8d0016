"""Shared by the benchmark scripts: timing by median of rounds, and one row per figure.

Each workload script defines `rows() -> list[Row]` (it builds the computation as a cg graph and
by hand in the same process, checks they agree, times both) and prints them when run alone.
`bench/all.py` runs every script and writes the Markdown table. No test asserts a time.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

sys.path.insert(0, __file__.rsplit("/", 2)[0])  # run from a clone without installing: `python bench/x.py`


@dataclass
class Row:
    workload: str  # e.g. "W1 z = log(3x²+5xy), fwd+bwd per call"
    cg: float  # seconds (or bytes, see unit) for cg
    baseline: float  # the same for the hand-written baseline, in the same process
    unit: str  # "s", "us", "us/node", "MB"...: how `cg` and `baseline` are shown
    target: float | None = None  # the largest acceptable ratio cg / baseline, if the issue sets one
    note: str = ""  # what the baseline is, or why a target is missed
    torch: float | None = None  # PyTorch, when installed (never a dependency)

    @property
    def ratio(self) -> float:
        return self.cg / self.baseline

    @property
    def met(self) -> str:
        if self.target is None:
            return ""
        return "yes" if self.ratio <= self.target else "no"


def median_time(fn: Callable[[], Any], *, rounds: int = 20, warmup: int = 3, number: int = 1) -> float:
    """Median seconds per call of fn over `rounds` rounds of `number` calls, after warm-up."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return statistics.median(times)


class no_gc:  # noqa: N801 - used as `with no_gc():`, like a function
    """Pause the cyclic collector for a timed section (both sides get the same treatment)."""

    def __enter__(self) -> None:
        gc.collect()
        self.was = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self.was:
            gc.enable()


def fmt(value: float, unit: str) -> str:
    return f"{value:.3g} {unit}"


def show(rows: list[Row]) -> None:
    """Print rows as aligned text (what a script prints when run alone)."""
    for r in rows:
        target = f"  target ≤ {r.target:g}x: {r.met}" if r.target is not None else ""
        torch = f"  torch {fmt(r.torch, r.unit)} ({r.torch / r.baseline:.2f}x)" if r.torch is not None else ""
        print(f"{r.workload:58} cg {fmt(r.cg, r.unit):>12}  baseline {fmt(r.baseline, r.unit):>12}"
              f"  ratio {r.ratio:6.2f}{target}{torch}{'  - ' + r.note if r.note else ''}")


def markdown(rows: list[Row]) -> str:
    head = "| workload | cg | hand-written | cg / hand-written | target | met | PyTorch | note |\n"
    head += "| --- | ---: | ---: | ---: | ---: | --- | ---: | --- |\n"
    lines = []
    for r in rows:
        target = f"≤ {r.target:g}×" if r.target is not None else ""
        torch = fmt(r.torch, r.unit) if r.torch is not None else "–"
        lines.append(f"| {r.workload} | {fmt(r.cg, r.unit)} | {fmt(r.baseline, r.unit)} | {r.ratio:.2f}× | {target}"
                     f" | {r.met} | {torch} | {r.note} |")
    return head + "\n".join(lines) + "\n"
