"""Sum over paths (lecture notes 001): every path from x to z with the product of the local
derivatives on its edges; the products add up to reverse mode's dz/dx."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import GRAPHS, cg

import cg as cglib
from cg.errors import UsageError
from cg.eval.paths import count_paths, enumerate_paths, find_paths
from cg.render.reports import paths_json, plain_paths

INPUTS = {"logreg.yaml": {"x": 2.0, "y": 3.0}}
EXAMPLES = sorted(p.name for p in GRAPHS.glob("*.yaml"))

LOG3X2P5XY_TABLE = """\
2 paths from x to z in log3x2p5xy
path                   local derivatives                  product
x -> a -> b -> e -> z  4.0000 * 3.0000 * 1.0000 * 0.0238  0.2857
x -> c -> d -> e -> z  3.0000 * 5.0000 * 1.0000 * 0.0238  0.3571
sum over paths       = 0.6429
dz/dx (reverse mode) = 0.6429
"""


def layered(layers: int, width: int = 3, ops: tuple[str, ...] = ("add",)) -> str:
    """x feeds `width` nodes; each further layer's nodes take every node of the layer before
    (with ops[k % len(ops)]); z adds up the last layer: width ** layers paths from x to z."""
    lines = ["cg: 1", "inputs: {x: 0.5}", "nodes:"]
    lines += [f"  n1_{j}: {{op: mul, in: [x, {j + 1}.0]}}" for j in range(width)]
    for k in range(2, layers + 1):
        prev = ", ".join(f"n{k - 1}_{j}" for j in range(width))
        op = ops[k % len(ops)]
        lines += [f"  n{k}_{j}: {{op: {op}, in: [{prev}]}}" for j in range(width)]
    lines.append(f"  z: {{op: add, in: [{', '.join(f'n{layers}_{j}' for j in range(width))}]}}")
    lines.append("outputs: [z]")
    return "\n".join(lines) + "\n"


# ---- the library --------------------------------------------------------------------------


def test_log3x2p5xy_two_paths() -> None:
    report = find_paths(cglib.load(GRAPHS / "log3x2p5xy.yaml"), {"x": 2, "y": 3}, src="x", dst="z")
    assert report.count == 2
    assert [p.names for p in report.paths] == [("x", "a", "b", "e", "z"), ("x", "c", "d", "e", "z")]
    assert report.paths[0].locals == pytest.approx((4.0, 3.0, 1.0, 1 / 42))
    assert report.paths[1].locals == pytest.approx((3.0, 5.0, 1.0, 1 / 42))
    assert [p.product for p in report.paths] == pytest.approx([12 / 42, 15 / 42], rel=1e-15)
    assert report.total == pytest.approx(27 / 42, rel=1e-15)
    assert report.reverse == pytest.approx(report.total, rel=1e-15)
    assert plain_paths(report) == LOG3X2P5XY_TABLE


@pytest.mark.parametrize("name", EXAMPLES)
def test_sum_over_paths_is_reverse_mode(name: str) -> None:
    """Every pair (float input or node, node) of every example graph: the sum over paths equals
    reverse mode's derivative, or the pair is refused because a node on its paths is a tensor."""
    graph = cglib.load(GRAPHS / name)
    sources = [n for n, aval in graph.avals.items() if aval.dtype == "float"]
    checked = 0
    for src in sources:
        for node in graph.nodes:
            try:
                report = find_paths(graph, INPUTS.get(name), src=src, dst=node.id)
            except UsageError as e:
                assert e.diagnostics[0].code == "CG311" and "scalar" in e.diagnostics[0].message, (src, node.id)
                continue
            assert report.total == pytest.approx(report.reverse, rel=1e-12, abs=1e-15), (src, node.id)
            assert report.count == len(report.paths)
            checked += 1
    scalar_graph = all(graph.avals[n].shape == () for n in sources)
    assert checked == (len(sources) * len(graph.nodes) if scalar_graph else checked)
    assert checked > 0


def test_sincos_two_paths_article() -> None:
    report = find_paths(cglib.load(GRAPHS / "sincos.yaml"), src="x", dst="f")
    assert [p.names for p in report.paths] == [("x", "g1", "f"), ("x", "g2", "f")]
    import math

    assert report.total == pytest.approx(math.cos(4.0), rel=1e-12)  # cos(x)^2 - sin(x)^2 at x = 2


def test_mul_x_x_counts_both_edges() -> None:
    graph = cglib.loads("cg: 1\ninputs: {x: 3.0}\nnodes:\n  a: {op: mul, in: [x, x]}\n  z: {op: mul, in: [a, a]}\n"
                        "outputs: [z]\n")
    assert count_paths(graph, "x", "z") == 4
    report = find_paths(graph, src="x", dst="z")
    assert [p.args for p in report.paths] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert report.total == pytest.approx(4 * 3.0**3)  # d(x^4)/dx
    assert report.reverse == pytest.approx(report.total)
    assert "x -> a -> z (args 0, 1)" in plain_paths(report)


def test_layered_graph_counts_at_once_and_refuses() -> None:
    graph = cglib.loads(layered(20))
    start = time.perf_counter()
    assert count_paths(graph, "x", "z") == 3**20
    with pytest.raises(UsageError) as info:
        find_paths(graph, src="x", dst="z")
    assert time.perf_counter() - start < 5
    message = info.value.diagnostics[0].message
    assert info.value.exit_code == 2 and info.value.diagnostics[0].code == "CG310"
    assert f"{3**20:,} paths" in message and "--limit 1,000" in message
    reverse = cglib.run(graph, of="z").grads["x"]
    assert f"dz/dx = {float(reverse):.6g}" in message  # type: ignore[arg-type]


def test_small_layered_graph_enumerates() -> None:
    graph = cglib.loads(layered(4, width=2, ops=("add", "mul")))  # mul: locals differ from edge to edge
    report = find_paths(graph, src="x", dst="z", limit=16)
    assert report.count == len(report.paths) == 2**4
    assert len({(p.names, p.args) for p in report.paths}) == 16
    assert report.total == pytest.approx(report.reverse, rel=1e-12)


def test_from_a_node_and_to_itself() -> None:
    graph = cglib.load(GRAPHS / "staged.yaml")
    report = find_paths(graph, src="den", dst="f")
    assert [p.names for p in report.paths] == [("den", "invden", "f")]
    assert report.total == pytest.approx(report.reverse)
    same = find_paths(graph, src="f", dst="f")
    assert (same.count, same.total, same.reverse) == (1, 1.0, 1.0)


def test_no_path() -> None:
    report = find_paths(cglib.load(GRAPHS / "log3x2p5xy.yaml"), src="b", dst="c")
    assert (report.count, report.paths, report.total, report.reverse) == (0, (), 0.0, 0.0)
    assert plain_paths(report).startswith("no path from b to c in log3x2p5xy")


@pytest.mark.parametrize(
    ("src", "dst", "code", "words"),
    [
        ("xx", "z", "CG301", "unknown name 'xx' for --from (did you mean 'x'?)"),
        ("x", "Z", "CG301", "unknown name 'Z' for --to (did you mean 'z'?)"),
        ("x", "y", "CG301", "--to must be a node"),
    ],
)
def test_bad_names(src: str, dst: str, code: str, words: str) -> None:
    with pytest.raises(UsageError) as info:
        find_paths(cglib.load(GRAPHS / "log3x2p5xy.yaml"), src=src, dst=dst)
    assert info.value.diagnostics[0].code == code and words in info.value.diagnostics[0].message


def test_integer_source_and_tensor_nodes() -> None:
    graph = cglib.load(GRAPHS / "multiclass_logreg.yaml")
    with pytest.raises(UsageError, match="integer"):
        find_paths(graph, src="y", dst="l")
    with pytest.raises(UsageError) as info:
        find_paths(graph, src="b", dst="l")
    message = info.value.diagnostics[0].message
    assert "paths need scalar nodes" in message and "'b' has shape [3]" in message
    assert "cg run" in message and "--edges" in message
    with pytest.raises(UsageError, match="'Wx' has shape \\[3\\]"):
        find_paths(graph, src="W", dst="Wx")  # a tensor --to: refused the same way


def test_long_chain_without_recursion() -> None:
    n = 3000
    body = "".join(f"  n{i}: {{op: sin, in: [{'x' if i == 0 else f'n{i - 1}'}]}}\n" for i in range(n))
    graph = cglib.loads(f"cg: 1\ninputs: {{x: 0.5}}\nnodes:\n{body}outputs: [n{n - 1}]\n")
    report = find_paths(graph, src="x", dst=f"n{n - 1}")
    assert report.count == 1 and len(report.paths[0].names) == n + 1
    assert report.total == pytest.approx(report.reverse, rel=1e-9)
    assert len(enumerate_paths(graph, cglib.run(graph).values, "n5", "n9")) == 1


def test_paths_json() -> None:
    report = find_paths(cglib.load(GRAPHS / "log3x2p5xy.yaml"), src="x", dst="z")
    doc = json.loads(paths_json(report))
    assert doc["from"] == "x" and doc["to"] == "z" and doc["count"] == 2 and doc["graph"] == "log3x2p5xy"
    assert doc["paths"][0] == {"names": ["x", "a", "b", "e", "z"], "args": [0, 1, 0, 0],
                               "locals": [4.0, 3.0, 1.0, 1 / 42], "product": pytest.approx(12 / 42, rel=1e-15)}
    assert doc["total"] == pytest.approx(27 / 42, rel=1e-15) and doc["reverse"] == pytest.approx(27 / 42, rel=1e-15)


# ---- the command line -------------------------------------------------------------------


def test_cli_log3x2p5xy() -> None:
    r = cg("paths", "graphs/log3x2p5xy.yaml", "--from", "x", "--to", "z")
    assert r.code == 0 and r.err == ""
    assert r.out == LOG3X2P5XY_TABLE


def test_cli_inputs_precision_and_json() -> None:
    r = cg("paths", "graphs/logreg.yaml", "--inputs", "x=2,y=3", "--from", "x", "--to", "p", "-p", "6")
    assert r.code == 0 and "x -> wx -> z -> p" in r.out
    lines = r.out.splitlines()
    assert lines[-2].split("=")[1].strip() == lines[-1].split("=")[1].strip()
    assert len(lines[-1].split("=")[1].strip().split(".")[1]) == 6
    doc = cg("paths", "graphs/logreg.yaml", "-i", "x=2,y=3", "--from", "w1", "--to", "p", "-f", "json").json()
    assert doc["total"] == pytest.approx(doc["reverse"], rel=1e-15) and doc["count"] == 1


def test_cli_output_file(tmp_path: Path) -> None:
    target = tmp_path / "paths.json"
    r = cg("paths", "graphs/sincos.yaml", "--from", "x", "--to", "f", "-f", "json", "-o", str(target))
    assert r.code == 0 and r.out == ""
    assert json.loads(target.read_text())["count"] == 2


def test_cli_too_many_paths(tmp_path: Path) -> None:
    file = tmp_path / "layered.yaml"
    file.write_text(layered(20))
    start = time.perf_counter()
    r = cg("paths", str(file), "--from", "x", "--to", "z")
    assert time.perf_counter() - start < 20
    assert r.code == 2 and r.out == ""
    assert "3,486,784,401 paths from x to z" in r.err and "raise --limit" in r.err and "dz/dx = " in r.err
    assert "[CG310]" in r.err


def test_cli_limit() -> None:
    r = cg("paths", "graphs/log3x2p5xy.yaml", "--from", "x", "--to", "z", "--limit", "1")
    assert r.code == 2 and "there are 2 paths" in r.err and "dz/dx = 0.642857" in r.err
    assert cg("paths", "graphs/log3x2p5xy.yaml", "--from", "x", "--to", "z", "--limit", "2").code == 0


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--from", "xx", "--to", "z"], 2, "did you mean 'x'?"),
        (["--from", "x", "--to", "zz"], 2, "did you mean 'z'?"),
        (["--from", "x", "--to", "y"], 2, "--to must be a node"),
        (["--from", "x", "--to", "z", "--inputs", "q=1"], 2, "unknown input 'q'"),
        (["--from", "x"], 2, "Missing option '--to'"),
        (["--from", "x", "--to", "z", "--limit", "-1"], 2, "--limit"),
    ],
)
def test_cli_usage_errors(args: list[str], code: int, words: str) -> None:
    r = cg("paths", "graphs/log3x2p5xy.yaml", *args)
    assert r.code == code and words in r.err and r.out == ""


def test_cli_tensor_graph_points_to_edges() -> None:
    r = cg("paths", "graphs/linreg.yaml", "--from", "W", "--to", "l")
    assert r.code == 2 and "paths need scalar nodes" in r.err
    assert "cg run graphs/linreg.yaml --edges" in r.err


def test_cli_no_path_and_missing_file() -> None:
    r = cg("paths", "graphs/log3x2p5xy.yaml", "--from", "y", "--to", "b")
    assert r.code == 0 and r.out.startswith("no path from y to b") and "db/dy (reverse mode) = 0.0000" in r.out
    missing = cg("paths", "graphs/nope.yaml", "--from", "x", "--to", "z")
    assert missing.code == 2 and "no such file" in missing.err


def test_cli_invalid_graph_exit_1(tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text("cg: 1\ninputs: {x: 1.0}\nnodes:\n  a: {op: ad, in: [x, x]}\noutputs: [a]\n")
    r = cg("paths", str(file), "--from", "x", "--to", "a")
    assert r.code == 1 and "unknown op 'ad'" in r.err
