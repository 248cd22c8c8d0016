"""Shared by the benchmark scripts: timing by median of rounds, and one row per figure.

Each workload script defines `rows() -> list[Row]` (it builds the computation as a cg graph and
by hand in the same process, checks they agree, times both) and prints them when run alone.
`bench/all.py` runs every script and writes the Markdown table. No test asserts a time.

One BLAS thread: importing this module sets OPENBLAS_NUM_THREADS, OMP_NUM_THREADS and
MKL_NUM_THREADS to 1 (unless they are set already), so it must be imported before numpy;
every script here does, and `make bench` also sets them. cg, numpy and PyTorch then all run
on one thread (torch.set_num_threads(1) in the scripts that time it).

One core: `pin_one_core()` pins the process to one CPU; bench/all.py calls it before anything
imports JAX, and each script at the top of its `__main__`. JAX sizes its thread pool from the
CPU affinity and ignores its threading flags, so pinning is the only way to time cg, numpy,
PyTorch and JAX all on one core.

JAX (optional, like PyTorch, never a dependency): `load_jax()` gives the module with float64
enabled, or None; `jax_time` times a jitted function with `.block_until_ready()`, compiled
before the timed region. Page faults: `minor_faults(fn)` counts minor page faults per call, each
result kept until the next call returns (array code that frees and reallocates big blocks pays
there, see notes/performance.md).
"""

from __future__ import annotations

import gc
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
if "numpy" in sys.modules:  # too late for the variables: say so rather than time two threads silently
    print("bench: numpy was imported before bench/common.py; BLAS may use several threads", file=sys.stderr)
TIMES = "\u00d7"  # the multiplication sign of the table's ratios

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
    limit: float | None = None  # the largest acceptable value of `cg` itself, in `unit`, if the issue sets one
    jax: float | None = None  # JAX, jitted, when installed (never a dependency), in `unit`
    faults: tuple[float, float] | None = None  # minor page faults per call: cg's, the baseline's

    @property
    def ratio(self) -> float:
        return self.cg / self.baseline

    @property
    def met(self) -> str:
        if self.target is None and self.limit is None:
            return ""
        ok = (self.target is None or self.ratio <= self.target) and (self.limit is None or self.cg <= self.limit)
        return "yes" if ok else "no"

    @property
    def goal(self) -> str:
        """The target in words: '≤ 1.1' and a multiplication sign (a ratio), '≤ 3 us/node' (a
        limit on cg itself), or both."""
        parts = [f"≤ {self.target:g}{TIMES}"] if self.target is not None else []
        parts += [f"≤ {self.limit:g} {self.unit}"] if self.limit is not None else []
        return ", ".join(parts)


def median_times(*fns: Callable[[], Any], rounds: int = 20, warmup: int = 3, number: int = 1) -> list[float]:
    """Median seconds per call of each fn, timed in turns (cg, baseline, cg, baseline...), so
    that a slow moment of the machine falls on both sides rather than on one."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for fn, out in zip(fns, times):
            start = time.perf_counter()
            for _ in range(number):
                fn()
            out.append((time.perf_counter() - start) / number)
    return [statistics.median(t) for t in times]


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


class no_gc:  # used as `with no_gc():`, like a function
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


def _faults(r: Row) -> str:
    return "" if r.faults is None else f"{r.faults[0]:.1f}, {r.faults[1]:.1f}"


def show(rows: list[Row]) -> None:
    """Print rows as aligned text (what a script prints when run alone)."""
    for r in rows:
        target = f"  target {r.goal}: {r.met}" if r.met else ""
        others = "".join(f"  {name} {fmt(t, r.unit)} ({t / r.baseline:.2f}x)"
                         for name, t in (("torch", r.torch), ("jax", r.jax)) if t is not None)
        faults = f"  faults/call cg, by hand {_faults(r)}" if r.faults is not None else ""
        print(f"{r.workload:58} cg {fmt(r.cg, r.unit):>12}  baseline {fmt(r.baseline, r.unit):>12}"
              f"  ratio {r.ratio:6.2f}{target}{others}{faults}{'  - ' + r.note if r.note else ''}")


def markdown(rows: list[Row]) -> str:
    head = ("| workload | cg | hand-written | cg / hand-written | target | met | PyTorch | JAX "
            "| page faults / call (cg, by hand) | note |\n")
    head += "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |\n"
    lines = []
    for r in rows:
        torch = fmt(r.torch, r.unit) if r.torch is not None else "-"
        jax = fmt(r.jax, r.unit) if r.jax is not None else "-"
        lines.append(f"| {r.workload} | {fmt(r.cg, r.unit)} | {fmt(r.baseline, r.unit)} | {r.ratio:.2f}{TIMES}"
                     f" | {r.goal} | {r.met} | {torch} | {jax} | {_faults(r)} | {r.note} |")
    return head + "\n".join(lines) + "\n"


def minor_faults(fn: Callable[[], Any], calls: int = 50) -> float:
    """Minor page faults per call of fn (after 3 warm-up calls): a fault is a fresh zeroed page
    that the kernel maps in, about 2 µs each, paid by code that frees and reallocates big blocks.
    fn is called as a training loop calls it: each result is kept until the next call returns
    (`loss, grads = f(...)`), so what a call frees at its end goes back to the kernel only if the
    call itself left it."""
    kept = fn()
    for _ in range(3):
        kept = fn()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(calls):
        kept = fn()
    del kept
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / calls


def pin_one_core() -> None:
    """Pin this process to one CPU (the first it may use), so every system runs on one core:
    JAX ignores its threading flags and sizes its pool from the affinity, so this must run
    before JAX is imported. No-op where the OS has no affinity call."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def load_jax() -> Any | None:
    """The jax module with float64 enabled (float32 arrays stay float32), or None when JAX is
    not installed."""
    try:
        import jax
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    return jax


def jax_time(fn: Callable[..., Any], *args: Any, rounds: int = 20, number: int = 1) -> float:
    """Median seconds per call of a jitted fn on args (moved to the device first), waiting for
    the result; the first call (the compile) is outside the timed region."""
    import jax

    args = jax.device_put(args)
    jax.block_until_ready(fn(*args))
    return median_time(lambda: jax.block_until_ready(fn(*args)), rounds=rounds, warmup=2, number=number)
