"""Scaling of the paths issue #10 (part 6) made linear, and the memory behind `--max-total`.

    python bench/scaling.py [scaling|memory]      (default: both)

scaling: each case is timed at size n and at 2n in this process (median of rounds, in turns with
its baseline), next to a plain baseline of the same size that is linear by construction. The
ratio 2n / n is about 2 when linear, about 4 when quadratic; a case is linear when its ratio is
the baseline's (start-up costs and caches bend both the same way). The cases:
- deep JSON: reading a JSON file nested n levels deep with its positions (a raised --max-depth),
  and the position of the deepest value; baseline: the same reader on a flat list of n numbers;
- functions: building a graph of n functions, each called once (Scope.ops() per body);
  baseline: building a graph of 2n plain nodes (n functions make n body nodes and n calls);
- expressions over the node limit: building a file of n long `expr:` nodes whose count passes
  max_nodes halfway (CG004 from the count, nothing expanded); baseline: reading the same file,
  which any command does first.

Measured (2 cores, Python 3.11, one BLAS thread), seconds at n and 2n, ratio 2n / n:

    deep JSON (levels)          n=100,000:  0.22 s  0.46 s  x2.08;  baseline (flat list)      x1.97
    functions                   n=  5,000:  2.95 s  5.90 s  x2.00;  baseline (2n nodes)       x1.98
    expressions over the limit  n=    250:  0.74 s  1.50 s  x2.02;  baseline (reading it)     x1.90

and the commit before the fixes (its cg/ exported with `git archive`, measured by this script):

    deep JSON (levels)          n=  5,000:  0.16 s  0.73 s  x4.47  (now 0.01 s  0.02 s  x2.14)
    functions                   n=  2,500:  2.25 s  6.33 s  x2.81  (now 1.51 s  3.01 s  x1.99)
    expressions over the limit  n=    125:  3.08 s  6.23 s  x2.02  (now 0.40 s  0.80 s  x2.01: every
                                            expression was expanded before the count; now none is)

The functions' remaining cost, ~0.6 ms each, is jsonschema validating each body (linear).

memory: the peak resident memory (and time) of `cg` processes whose total budget (cg/cli/budget.py)
is just under the default --max-total, for each command and the options that cost most: the
figures behind the comment in cg/limits.py and the README. Measured, 100,000,000 numbers:

    cg run (4 sin nodes of 10 M)               883 MB   3.0 s
    cg run (4 pow nodes of 10 M, x reused)    1274 MB   2.6 s   <- the most memory per number
    cg run --tangent (4 sin nodes)             959 MB   1.4 s
    cg run --edges (table, 4 pow nodes)       1043 MB   2.6 s
    cg run -f json / -f csv -o (1 node)      81-84 MB   2.4 / 3.1 s (streamed: a number written costs
                                                        time, ~0.6 us (json) to 0.9 us (csv), so it counts 20)
    cg draw -f mermaid (4 pow nodes)           958 MB   3.4 s
    cg report (4 pow nodes)                    999 MB   2.0 s
    cg jacobian (square, 2,039 x 2,039)        457 MB   3.9 s (json: 559 MB, 2.1 s)
    cg jacobian (chain of 10-vectors)          260 MB   4.0 s (90,089 nodes, 10 backward passes)
    cg check (1 node of 123,814)                48 MB   1.8 s
    cg check --all --per-node (800 scalars)     56 MB   1.9 s
    cg check (280,001 chained scalars)         685 MB  12.1 s (the file's --max-values stops it first)
    cg run (10 matmuls of 2000 x 2000)         864 MB  10.7 s

No test asserts a time: this prints, people read.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import common  # noqa: F401  (first: one BLAS thread, for this process and the ones it starts)
from common import median_times, no_gc

ROOT = Path(__file__).resolve().parent.parent
CG = [sys.executable, "-m", "cg"]


# ---- scaling, in this process ------------------------------------------------------------------------


def deep_json(n: int) -> Callable[[], Any]:
    """Read n levels of lists with their positions, and find the deepest one."""
    from cg.parse.jsondoc import load_text

    text = f'{{"cg": 1, "inputs": {{"x": {"[" * n}1{"]" * n}}}, "nodes": {{}}, "outputs": []}}'
    path: tuple[str | int, ...] = ("inputs", "x", *([0] * n))

    def work() -> Any:
        pos = load_text(text, "deep.json").pos(path)
        assert pos is not None and pos.col == 27 + n
        return pos

    return work


def flat_json(n: int) -> Callable[[], Any]:
    from cg.parse.jsondoc import load_text

    text = f'{{"cg": 1, "inputs": {{"x": [{", ".join(["1"] * n)}]}}, "nodes": {{}}, "outputs": []}}'
    return lambda: load_text(text, "flat.json").pos(("inputs", "x", n - 1))


def functions(n: int) -> Callable[[], Any]:
    """n functions, each called once, in a chain."""
    lines = ["cg: 1", "functions:"]
    for k in range(n):
        lines += [f"  f{k}:", "    inputs: [a]", "    nodes:", "      b: {op: sin, in: [a]}", "    output: b"]
    lines += ["inputs: {x: 1.0}", "nodes:", "  n0: {op: f0, in: [x]}"]
    lines += [f"  n{k}: {{op: f{k}, in: [n{k - 1}]}}" for k in range(1, n)]
    lines += [f"outputs: [n{n - 1}]"]
    return _built("\n".join(lines) + "\n")


def plain_nodes(n: int) -> Callable[[], Any]:
    """As many nodes as n functions make (n body nodes and n calls), none of them a call."""
    lines = ["cg: 1", "inputs: {x: 1.0}", "nodes:", "  n0: {op: sin, in: [x]}"]
    lines += [f"  n{k}: {{op: sin, in: [n{k - 1}]}}" for k in range(1, 2 * n)]
    lines += [f"outputs: [n{2 * n - 1}]"]
    return _built("\n".join(lines) + "\n")


def expressions_text(n: int) -> str:
    """n expressions of 800 terms each (8,800 characters, 1,601 nodes each)."""
    expr = " + ".join(["sin(x)*x"] * 800)
    lines = ["cg: 1", "inputs: {x: 1.0}", "nodes:"] + [f'  e{k}: {{expr: "{expr}"}}' for k in range(n)]
    return "\n".join([*lines, f"outputs: [e{n - 1}]"]) + "\n"


def expressions(n: int) -> Callable[[], Any]:
    """Over a node limit of 800 n, the count passes it halfway through the file: CG004."""
    from cg.errors import GraphError
    from cg.limits import raised, set_current

    work = _built(expressions_text(n))

    def over() -> None:
        set_current(raised(max_nodes=800 * n))
        try:
            work()
        except GraphError as e:
            assert e.diagnostics[0].code == "CG004", e
        else:
            raise AssertionError("the node limit did not fire")
        finally:
            set_current(None)

    return over


def reading(n: int) -> Callable[[], Any]:
    from cg.parse.read import load_text

    text = expressions_text(n)
    return lambda: load_text(text, "expr.yaml")


def _built(text: str) -> Callable[[], Any]:
    from cg.graph.builder import build
    from cg.parse.read import load_text

    return lambda: build(load_text(text, "g.yaml"))


CASES: list[tuple[str, Callable[[int], Callable[[], Any]], str, Callable[[int], Callable[[], Any]], int]] = [
    ("deep JSON (levels)", deep_json, "flat list", flat_json, 100_000),
    ("functions", functions, "2n nodes", plain_nodes, 5_000),
    ("expressions over the limit", expressions, "reading it", reading, 250),
]


def scaling() -> None:
    from cg.limits import raised, set_current

    print("scaling: seconds at n and 2n, in this process; ratios near 2 are linear, near 4 quadratic")
    for name, case, base_name, base, n in CASES:
        set_current(raised(max_depth=2 * n + 10))  # deep JSON needs it; the others do not care
        try:
            with no_gc():  # as the CLI runs (cg/cli/group.py turns the collector off)
                t1, b1 = median_times(case(n), base(n), rounds=3, warmup=1)
                t2, b2 = median_times(case(2 * n), base(2 * n), rounds=3, warmup=1)
        finally:
            set_current(None)
        print(f"  {name:28} n={n:>7,}: {t1:6.2f} s {t2:6.2f} s  x{t2 / t1:.2f};  baseline ({base_name})"
              f" {b1:6.2f} s {b2:6.2f} s  x{b2 / b1:.2f}")


# ---- memory at the budget, one `cg` process each ----------------------------------------------------


# Linux keeps a process's peak memory across exec, and a child started from this process (which
# holds big graphs by now) starts with this process's pages: `cg` is started from a small Python
# process instead, which reports the peak of its child alone (and the exit code) on its last line.
LAUNCHER = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=sys.stdout, stderr=subprocess.STDOUT)
_, status, usage = os.wait4(proc.pid, 0)
print(usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def measure(argv: list[str]) -> tuple[float, float, int, str]:
    """Seconds, peak resident MB, exit code and the first line of the output of one `cg` process
    (the commands write their results with -o: the output is a message, if anything)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", LAUNCHER, *CG, *argv], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    seconds = time.perf_counter() - start
    *lines, last = done.stdout.strip().splitlines()
    peak, code = (int(word) for word in last.split())
    return seconds, peak / 1024, code, (lines[0] if lines else "")[:150]


def chain(folder: Path, name: str, nodes: int, size: int, op: str = "sin", binary: bool = False) -> str:
    """x of `size` numbers (a scalar for 0), `nodes` ops in a chain (binary ones take x again), summed."""
    path = folder / f"{name}.yaml"
    shape = f"[{size}]" if size else "[]"
    lines = ["cg: 1", "inputs:", f"  x: {{shape: {shape}}}", "nodes:"]
    prev = "x"
    for k in range(nodes):
        lines.append(f"  n{k}: {{op: {op}, in: [{prev}{', x' if binary else ''}]}}")
        prev = f"n{k}"
    lines += [f"  s: {{op: sum, in: [{prev}]}}", "outputs: [s]"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def vector(folder: Path, name: str, size: int) -> str:
    """y = sin(x) of `size` numbers: a square Jacobian."""
    path = folder / f"{name}.yaml"
    path.write_text(f"cg: 1\ninputs:\n  x: {{shape: [{size}]}}\nnodes:\n  y: {{op: sin, in: [x]}}\noutputs: [y]\n",
                    encoding="utf-8")
    return str(path)


def matmuls(folder: Path, name: str, k: int, n: int = 2000) -> str:
    """k matmuls of n x n matrices in a chain (each squares the last), summed."""
    path = folder / f"{name}.yaml"
    lines = ["cg: 1", "inputs:", f"  x: {{shape: [{n}, {n}]}}", f"  w: {{shape: [{n}, {n}]}}", "nodes:",
             "  a0: {op: matmul, in: [x, w]}"]
    lines += [f"  a{j}: {{op: matmul, in: [a{j - 1}, w]}}" for j in range(1, k)]
    lines += [f"  s: {{op: sum, in: [a{k - 1}]}}", "outputs: [s]"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def largest(fits: Callable[[int], bool], high: int) -> int:
    """The largest n in [1, high] with fits(n) (fits is monotone)."""
    low = 1
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if fits(mid) else (low, mid - 1)
    return low


def memory(folder: Path) -> None:
    import numpy as np

    from cg.check.report import Options
    from cg.cli.budget import check_budget, jacobian_budget, run_budget
    from cg.graph.builder import build
    from cg.graph.ir import Graph
    from cg.limits import Limits
    from cg.parse.read import load_file

    limit = Limits().max_total
    print(f"memory: peak resident MB and seconds of commands just under --max-total {limit:,}")

    def graph(path: str) -> Graph:
        return build(load_file(path))

    def under(make: Callable[[int], str], count: Callable[[Graph], int], high: int) -> tuple[str, int]:
        """The file at the largest size whose count fits the limit, and that count."""
        n = largest(lambda k: count(graph(make(k))) <= limit, high)
        path = make(n)
        return path, count(graph(path))

    def affine(make: Callable[[int], str], count: Callable[[Graph], int], most: int) -> tuple[str, int]:
        """As `under`, for a count a + b n (a chain's length): two probes, not twenty big graphs;
        at most `most` (a YAML file holds at most --max-values values: ~7 a node)."""
        c1, c2 = count(graph(make(1000))), count(graph(make(2000)))
        n = min(most, 1000 + (limit - c1) * 1000 // (c2 - c1))
        while count(graph(make(n))) > limit:
            n -= 1
        path = make(n)
        return path, count(graph(path))

    def values(path: str, **extra: Any) -> str:
        """--inputs for every input of the file, from .npy files of its shapes (in [0.5, 1.5])."""
        given = []
        for inp in graph(path).inputs:
            shape = inp.aval.shape
            data = folder / f"{inp.name}{'x'.join(map(str, shape)) or 's'}.npy"
            if not data.exists():
                size = int(np.prod(shape))
                np.save(data, np.linspace(0.5, 1.5, size).reshape(shape) / (max(shape) if len(shape) == 2 else 1))
            given.append(f"{inp.name}=@{data}")
        return ",".join(given)

    out = str(folder / "out")
    rows: list[tuple[str, list[str], int]] = []

    def add(name: str, found: tuple[str, int], options: list[str], command: str = "run") -> None:
        path, total = found
        rows.append((name, [command, path, "--inputs", values(path), *options], total))

    ten = 10_000_000
    add("cg run (4 sin nodes)", under(lambda k: chain(folder, "run4", 4, k), lambda g: run_budget(g).total, ten),
        ["-o", out])
    pow4 = under(lambda k: chain(folder, "pow4", 4, k, "pow", True), lambda g: run_budget(g).total, ten)
    add("cg run (4 pow nodes, x reused)", pow4, ["-o", out])
    path, total = under(lambda k: chain(folder, "fwd4", 4, k), lambda g: run_budget(g, forward=True).total, ten)
    rows.append(("cg run --tangent (4 sin nodes)", ["run", path, "--inputs", values(path), "--tangent",
                                                    values(path), "-o", out], total))
    add("cg run --edges (table, 4 pow nodes)",
        under(lambda k: chain(folder, "edges4", 4, k, "pow", True), lambda g: run_budget(g, edges=True).total, ten),
        ["--edges", "-o", out])
    for fmt in ("json", "csv"):
        add(f"cg run -f {fmt} -o (1 node)", under(partial(chain, folder, f"{fmt}1", 1),
                                                  lambda g, f=fmt: run_budget(g, output=f).total, ten),  # type: ignore[misc]
            ["-f", fmt, "-o", out])
    add("cg run --edges -f json -o (1 node)", under(lambda k: chain(folder, "edgesj", 1, k),
                                                    lambda g: run_budget(g, edges=True, output="json").total, ten),
        ["--edges", "-f", "json", "-o", out])
    drawn = under(lambda k: chain(folder, "draw4", 4, k, "pow", True), lambda g: run_budget(g, edges=True).total, ten)
    add("cg draw -f mermaid (4 pow nodes)", drawn, ["-f", "mermaid", "-o", out], "draw")
    add("cg report (4 pow nodes)", drawn, ["-o", out], "report")
    square = under(lambda k: vector(folder, "jac", k), lambda g: jacobian_budget(g, wrt="x").total, 100_000)
    add("cg jacobian (square, table)", square, ["--wrt", "x", "-o", out], "jacobian")
    add("cg jacobian (square, json)", square, ["--wrt", "x", "-f", "json", "-o", out], "jacobian")
    path, total = affine(lambda k: chain(folder, "jac10", k, 10),
                         lambda g: jacobian_budget(g, wrt="x", of=g.nodes[-2].id).total, 280_000)
    add("cg jacobian (chain of 10-vectors)", (path, total), ["--wrt", "x", "--of", graph(path).nodes[-2].id,
                                                             "-o", out], "jacobian")
    add("cg check (1 node)", under(lambda k: chain(folder, "check1", 1, k),
                                   lambda g: check_budget(g, opts=Options()).total, ten), ["-o", out], "check")
    every = Options(all_nodes=True, per_node=True)
    add("cg check --all --per-node (scalars)", under(lambda k: chain(folder, "checka", k, 0),
                                                     lambda g: check_budget(g, opts=every).total, 5_000),
        ["--all", "--per-node", "-o", out], "check")
    add("cg check (chained scalars)", affine(lambda k: chain(folder, "checkn", k, 0),
                                             lambda g: check_budget(g, opts=Options()).total, 280_000),
        ["-o", out], "check")
    add("cg run (matmuls of 2000 x 2000)", under(lambda k: matmuls(folder, "mm", k), lambda g: run_budget(g).total,
                                                 100), ["-o", out])
    for name, argv, total in rows:
        seconds, mb, code, message = measure(argv)
        size = graph(argv[1]).avals["x"].shape
        print(f"  {name:38} x {list(size)!s:14} nodes {len(graph(argv[1]).nodes):>7,} budget {total:>11,}:"
              f" {mb:6.0f} MB {seconds:6.1f} s" + (f"  exit {code}: {message}" if code else ""))


def main(which: list[str]) -> None:
    if not which or "scaling" in which:
        scaling()
    if not which or "memory" in which:
        with tempfile.TemporaryDirectory() as tmp:
            memory(Path(tmp))


if __name__ == "__main__":
    main(sys.argv[1:])
