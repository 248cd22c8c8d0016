"""Loading graph files: what `cg validate` does (read, parse, schema, graph build), against
libyaml's own parse of the same file, and the same graphs written as JSON.

    python bench/load.py [N ...]        (default N = 1000 10000 100000)

Two families of files: `chain`, N scalar sin nodes (plain nodes: an op and ids), and `tensor`,
N nodes in blocks of four over 3-vectors: a constant list in `in`, a `sum` with the attributes
axis and keepdims, a `doc`. Rows, per family and size:

- validate YAML: `build(load_file(f))` against `yaml.load(text, Loader=yaml.CSafeLoader)` (the
  libyaml parse, no positions, YAML 1.1 rules); target 1.5x for 100,000 nodes (issue #7);
- load JSON vs YAML: cg's reader of the .json file against cg's reader of the .yaml file
  (text to document, no validation); target 0.1x, JSON at least 10x faster;
- load JSON vs json.loads: what cg's checks add to `json.loads` (no target);
- validate JSON vs YAML: `build(load_file(f))` of each (no target: both build the same graph).

Both sides of a row run with the cyclic garbage collector paused (cg pauses it anyway; libyaml's
load is 3-4x slower with it on), timed in turns, median of several rounds. No test asserts a time.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import common  # noqa: F401  (first: one BLAS thread, before numpy is imported)
import yaml
from common import Row, median_times, no_gc, show

from cg.graph.builder import build
from cg.parse.jsondoc import load_file as load_json
from cg.parse.read import load_file
from cg.parse.yamldoc import load_file as load_yaml

SIZES = (1_000, 10_000, 100_000)


def chain_text(n: int) -> str:
    lines = ["cg: 1", "inputs: {x: 0.5}", "nodes:", "  n0: {op: sin, in: [x]}"]
    lines += [f"  n{i}: {{op: sin, in: [n{i - 1}]}}" for i in range(1, n)]
    lines.append(f"outputs: [n{n - 1}]")
    return "\n".join(lines) + "\n"


def tensor_text(n: int) -> str:
    lines = ["cg: 1", "inputs:", "  v: {shape: [3], value: [0.1, 0.2, 0.3]}", "nodes:"]
    prev = "v"
    for i in range(max(1, n // 4)):
        lines += [
            f"  m{i}: {{op: mul, in: [{prev}, [0.5, 1.5, 2.5]]}}",
            f"  s{i}: {{op: sum, in: [m{i}], axis: 0, keepdims: true}}",
            f"  t{i}: {{op: tanh, in: [m{i}]}}",
            f"  a{i}: {{op: add, in: [t{i}, s{i}], doc: block {i}}}",
        ]
        prev = f"a{i}"
    lines += [f"  z: {{op: sum, in: [{prev}]}}", "outputs: [z]"]
    return "\n".join(lines) + "\n"


def json_text(data: dict[str, Any]) -> str:
    """The same document as JSON, one node per line (as a person or a generator would write it)."""
    head = {k: v for k, v in data.items() if k != "nodes"}
    nodes = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in data["nodes"].items())
    return json.dumps(head)[:-1] + ', "nodes": {\n' + nodes + "\n}}\n"


def rounds_for(seconds: float) -> int:
    return max(3, min(20, int(4.0 / max(seconds, 1e-3))))


def family_rows(family: str, n: int, folder: Path) -> list[Row]:
    text = (chain_text if family == "chain" else tensor_text)(n)
    yml, jsn = folder / f"{family}{n}.yaml", folder / f"{family}{n}.json"
    yml.write_text(text, encoding="utf-8")
    jsn.write_text(json_text(load_yaml(yml).data), encoding="utf-8")
    assert load_json(jsn).data == load_yaml(yml).data == yaml.load(text, Loader=yaml.CSafeLoader)

    def libyaml() -> Any:
        return yaml.load(yml.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)

    def plain_json() -> Any:
        return json.loads(jsn.read_text(encoding="utf-8"))

    label = f"{family} {n:,} nodes"
    mb = f"{len(text) / 1e6:.2f} MB of YAML"
    with no_gc():
        first = build(load_file(str(yml)))  # warms the caches; and the graph must be valid
        assert len(first.nodes) >= n
        k = rounds_for(sum(median_times(libyaml, rounds=1, warmup=0)) * 2)
        t_validate, t_parse = median_times(lambda: build(load_file(str(yml))), libyaml, rounds=k, warmup=1)
        t_json, t_yaml = median_times(lambda: load_json(jsn), lambda: load_yaml(yml), rounds=k, warmup=1)
        t_json2, t_loads = median_times(lambda: load_json(jsn), plain_json, rounds=k, warmup=1)
        v_json, v_yaml = median_times(lambda: build(load_file(str(jsn))), lambda: build(load_file(str(yml))),
                                      rounds=k, warmup=1)
    big = n >= 100_000
    return [
        Row(f"load: {label}, cg validate / libyaml parse", t_validate, t_parse, "s", 1.5 if big else None,
            f"yaml.load(CSafeLoader) of the same {mb}"),
        Row(f"load: {label}, JSON / YAML load (cg)", t_json, t_yaml, "s", 0.1 if big else None,
            "cg's reader of the .json file against its reader of the .yaml file"),
        Row(f"load: {label}, JSON load (cg) / json.loads", t_json2, t_loads, "s", None,
            "what cg's checks (duplicates, numbers, depth) add"),
        Row(f"load: {label}, cg validate JSON / YAML", v_json, v_yaml, "s", None, "schema and graph build included"),
    ]


def rows(sizes: tuple[int, ...] = SIZES) -> list[Row]:
    out: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for family in ("chain", "tensor"):
            for n in sizes:
                out += family_rows(family, n, Path(tmp))
    return out


if __name__ == "__main__":
    show(rows(tuple(int(a) for a in sys.argv[1:]) or SIZES))
