"""The Dask path of `cg run --data` against the in-memory path: a logistic regression (10 features)
over 200,000 rows (CSV, generated in a temporary folder), as one file for the in-memory path and as
8 files for `--engine dask` on a local cluster of 2 worker processes (1 thread each).

    python bench/dask_rows.py

Each side is the real command (`python -m cg run ... --data ...`) in a fresh process, timed inside
it (cg's imports, reading, running, and for Dask starting and closing the cluster: its fixed cost
is timed apart, on a file of 10 rows). Peak memory is the resident set's high-water mark (VmHWM in
/proc) of the command's process and, for Dask, the largest resident
size of it or of one of its children (the scheduler runs in it, the workers are its children),
and of them all together, sampled every 5 ms with psutil (it comes with distributed); the same
on a file of 10 rows gives what the imports and the cluster take before any data. Skipped (no
rows) without dask.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import common  # noqa: F401  (first: one BLAS thread, before numpy is imported)
import numpy as np
from common import Row, show

N, D, FILES, ROUNDS = 200_000, 10, 8, 3
GRAPH = f"""
cg: 1
imports: [cg:nn]
inputs:
  w: {{shape: [{D}], value: {[0.1] * D}}}
  b: 0.2
  x: {{shape: [{D}]}}
  y: {{shape: []}}
nodes:
  z: {{expr: "w @ x + b"}}
  p: {{op: sigmoid, in: [z]}}
  loss: {{op: bce, in: [p, y]}}
outputs: [loss]
"""
# Runs `cg ARGS...` in this process, then prints the seconds it took and the peak resident sizes (MB):
# its own (VmHWM, exact), and of it with its children (the workers) sampled every 5 ms with psutil.
# bench/all.py pins itself to one core and its children inherit that: the 2 workers get both cores back.
RUNNER = """
import json, os, sys, threading, time
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, range(os.cpu_count() or 1))
import psutil
peak = {"tree": 0, "largest": 0}
done = threading.Event()
def sample():
    me = psutil.Process()
    while not done.wait(0.005):
        try:
            sizes = [p.memory_info().rss for p in [me, *me.children(recursive=True)]]
        except psutil.Error:
            continue
        peak["tree"], peak["largest"] = max(peak["tree"], sum(sizes)), max(peak["largest"], *sizes)
threading.Thread(target=sample, daemon=True).start()
start = time.perf_counter()
from cg.cli import main
try:
    main(sys.argv[1:], prog_name="cg")
except SystemExit as e:
    assert not e.code, e.code
seconds = time.perf_counter() - start
done.set()
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"seconds": seconds, "self_mb": hwm / 1024, "tree_mb": peak["tree"] / 2**20,
                  "largest_mb": max(peak["largest"] / 2**20, hwm / 1024)}))
"""
ROOT = Path(__file__).resolve().parent.parent


def write_data(folder: Path) -> tuple[str, str, str]:
    """The graph, the one CSV file and the glob of its 8 parts."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, D))
    y = (rng.random(N) < 1 / (1 + np.exp(-x[:, 0]))).astype(int)
    header = ",".join([*(f"x_{k}" for k in range(D)), "y"])
    lines = [",".join([*(f"{v:.4f}" for v in row), str(label)]) for row, label in zip(x.tolist(), y.tolist())]
    (folder / "all.csv").write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    for k, part in enumerate(np.array_split(np.arange(N), FILES)):
        text = "\n".join([header, *(lines[i] for i in part.tolist())]) + "\n"
        (folder / f"rows-{k}.csv").write_text(text, encoding="utf-8")
    (folder / "tiny.csv").write_text("\n".join([header, *lines[:10]]) + "\n", encoding="utf-8")
    (folder / "logreg.yaml").write_text(GRAPH, encoding="utf-8")
    return str(folder / "logreg.yaml"), str(folder / "all.csv"), str(folder / "rows-*.csv")


def command(*args: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", RUNNER, *args], capture_output=True, text=True, env=env, check=True)
    stats: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return stats


def timed(*args: str) -> tuple[float, dict[str, float]]:
    """The median seconds over ROUNDS runs, and the highest of each peak memory (MB)."""
    runs = [command(*args) for _ in range(ROUNDS)]
    peaks = {k: max(r[k] for r in runs) for k in ("self_mb", "tree_mb", "largest_mb")}
    return statistics.median(r["seconds"] for r in runs), peaks


def rows() -> list[Row]:
    try:
        import dask.dataframe  # noqa: F401
        import distributed  # noqa: F401
    except ImportError:
        print("bench/dask_rows.py: dask is not installed (pip install cg-graphs[dask]): skipped", file=sys.stderr)
        return []
    with tempfile.TemporaryDirectory() as tmp:
        graph, one, many = write_data(Path(tmp))
        out = [str(Path(tmp) / f"{k}.json") for k in ("memory", "dask")]
        common_args = ["run", graph, "-f", "json", "--of", "loss"]
        t_mem, mb_mem = timed(*common_args, "--data", one, "-o", out[0])
        t_dask, mb_dask = timed(*common_args, "--data", many, "--engine", "dask", "-o", out[1])
        t_fixed, mb_fixed = timed(*common_args, "--data", str(Path(tmp) / "tiny.csv"), "--engine", "dask",
                                  "-o", out[1])
        _, mb_small = timed(*common_args, "--data", str(Path(tmp) / "tiny.csv"), "-o", out[1])
        command(*common_args, "--data", many, "--engine", "dask", "-o", out[1])  # the sums, compared below
        a, b = (json.loads(Path(p).read_text(encoding="utf-8")) for p in out)
        assert a["rows"] == b["rows"] == N and abs(a["loss"] - b["loss"]) <= 1e-12 * abs(a["loss"])
        for p, q in zip(a["params"], b["params"]):
            np.testing.assert_allclose(p["grad"], q["grad"], rtol=1e-12)
    work = f"cg run --data, logistic regression ({D} features), {N:,} rows"
    return [
        Row(f"{work}: --engine dask, {FILES} files, 2 workers", t_dask, t_mem, "s",
            note=f"baseline: the in-memory path on one file; dask's fixed cost (cluster up and down, on 10 rows):"
                 f" {t_fixed:.2f} s; sums equal to 1e-12"),
        Row(f"{work}: peak memory of the largest process", mb_dask["largest_mb"], mb_mem["self_mb"], "MB",
            note=f"resident, VmHWM (/proc) and psutil sampled every 5 ms; on 10 rows: {mb_small['self_mb']:.0f} MB in"
                 f" memory, {mb_fixed['largest_mb']:.0f} MB on dask; all dask processes together: "
                 f"{mb_dask['tree_mb']:.0f} MB ({mb_fixed['tree_mb']:.0f} MB on 10 rows)"),
    ]


if __name__ == "__main__":
    show(rows())
