"""The total budget (cg/cli/budget.py, `--max-total`, `CG_MAX_TOTAL`): what a command will hold or
compute, known from the shapes before anything is allocated; over the limit, CG004 names the file
and the biggest tensors, and nothing is run. And the paths issue #10 made linear (deep JSON
positions, the ops a function body sees, counting expressions before expanding them), tested by
what they build or hold, never by a time (bench/scaling.py measures those)."""

from __future__ import annotations

import json
import os
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import GRAPHS, ROOT, cg

from cg.check import gradients as check_module
from cg.check.gradients import check_graph
from cg.check.report import Options
from cg.cli.budget import STEP, TEXT, avals_for, check_budget, jacobian_budget, run_budget
from cg.errors import GraphError, LoadError
from cg.eval.edges import compute_edges
from cg.eval.interp import run
from cg.eval.jacobian import jacobian
from cg.graph import expr as expr_module
from cg.graph import functions as functions_module
from cg.graph import scope as scope_module
from cg.graph.builder import build
from cg.graph.expr import parse_expr
from cg.graph.expr_nodes import count_operations, operations_bound
from cg.graph.ir import Graph
from cg.limits import Limits, raised, set_current
from cg.parse.read import load_file, load_text

LIMIT = Limits().max_total


def graph_of(path: Path) -> Graph:
    return build(load_file(str(path)))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def chain(path: Path, nodes: int, size: int) -> Path:
    """An input of `size` numbers, then `nodes` sines in a chain, summed: small text, big values."""
    lines = ["cg: 1", "inputs:", f"  x: {{shape: [{size}]}}", "nodes:", "  n0: {op: sin, in: [x]}"]
    lines += [f"  n{k}: {{op: sin, in: [n{k - 1}]}}" for k in range(1, nodes)]
    lines += [f"  s: {{op: sum, in: [n{nodes - 1}]}}", "outputs: [s]"]
    return write(path, "\n".join(lines) + "\n")


def small(path: Path) -> Path:
    """w (5 x 20, the biggest tensor, line 3) times x (20), tanh, summed: values in the file."""
    rows = ", ".join("[" + ", ".join(f"{(i * 20 + j) % 7 / 10:.1f}" for j in range(20)) + "]" for i in range(5))
    x = ", ".join(f"{j / 20:.2f}" for j in range(20))
    return write(path, f"cg: 1\ninputs:\n  w: [{rows}]\n  x: [{x}]\nnodes:\n  y: {{op: matmul, in: [w, x]}}\n"
                       "  t: {op: tanh, in: [y]}\n  s: {op: sum, in: [t]}\noutputs: [s]\n")


@pytest.fixture
def limits() -> Iterator[Callable[..., None]]:
    """Set limits for a test run in this process; the defaults come back after it."""
    yield lambda **changes: set_current(raised(**changes))
    set_current(None)


# ---- the counts, against independent counts ---------------------------------------------------------

INDEXED = ROOT / "tests" / "good" / "index_literal.yaml"  # an int input, a constant, floats


def test_a_run_counts_what_the_run_holds() -> None:
    """values: every array the run keeps, plus the constants in the file (the literal -1);
    gradients: every gradient it keeps (the int input `rows` has none)."""
    graph = graph_of(INDEXED)
    result = run(graph, {"M": np.ones((2, 3))})
    held = sum(np.size(v) for v in result.values.values())
    grads = sum(np.size(g) for g in result.grads.values() if g is not None)
    assert dict(run_budget(graph).parts) == {"values": held + 1, "gradients": grads}
    assert (held, grads) == (16, 14)


def test_edges_count_every_flow_and_every_local_jacobian_shown() -> None:
    graph = graph_of(INDEXED)
    edges = compute_edges(run(graph, {"M": np.ones((2, 3))}))
    shown = sum(np.size(e.flow) for e in edges if e.flow is not None)
    shown += sum(np.size(e.local) for e in edges if e.local is not None)
    assert dict(run_budget(graph, edges=True).parts)["edges"] == shown == 13 + 19


def test_forward_mode_counts_a_tangent_per_float_number() -> None:
    graph = graph_of(INDEXED)
    tangents = run(graph, {"M": np.ones((2, 3))}, tangents={"v": np.ones(3), "M": np.ones((2, 3))}).tangents or {}
    held = sum(np.size(t) for t in tangents.values() if t is not None)
    assert dict(run_budget(graph, forward=True).parts)["tangents"] == 14 >= held


def test_text_outputs_count_each_number_written(tmp_path: Path) -> None:
    graph = graph_of(chain(tmp_path / "c.yaml", 3, 10))
    table = run_budget(graph).total
    assert run_budget(graph, output="json").total == table * (1 + TEXT)
    assert run_budget(graph, output="csv").total == table * (1 + TEXT)
    assert run_budget(graph, output="markdown").total == table  # a summary per tensor: what the table holds


def test_shapes_given_on_the_command_line_are_the_ones_counted(tmp_path: Path) -> None:
    """An input without a declared shape takes the shape of its value (and so do the nodes after
    it); a declared shape stays: the run refuses a value of another shape (a usage error)."""
    free = graph_of(write(tmp_path / "f.yaml", "cg: 1\ninputs: {x: [1.0, 2.0]}\nnodes:\n  a: {op: sin, in: [x]}\n"
                                               "  s: {op: sum, in: [a]}\noutputs: [s]\n"))
    assert run_budget(free).total == 2 * (2 + 2 + 1)
    assert run_budget(free, avals_for(free, {"x": np.zeros(1000)})).total == 2 * (1000 + 1000 + 1)
    pinned = graph_of(chain(tmp_path / "c.yaml", 3, 10))
    assert avals_for(pinned, {"x": np.zeros(1000)}) == pinned.avals


def test_check_counts_its_passes_by_hand(tmp_path: Path) -> None:
    """x (3) -> a = sin(x) (3) -> s = sum(a): 7 values, 7 gradients, 7 tangents; for each of the 3
    elements of x two passes, and one at the point (7), each copying the 3 names and running a
    and s; and 2 copies of x per element."""
    graph = graph_of(write(tmp_path / "c.yaml", "cg: 1\ninputs: {x: [0.5, 1.0, 1.5]}\nnodes:\n"
                                                "  a: {op: sin, in: [x]}\n  s: {op: sum, in: [a]}\noutputs: [s]\n"))
    budget = check_budget(graph, opts=Options())
    differences = 7 * (3 + (3 + STEP) + (1 + STEP)) + 2 * 3 * 3
    assert dict(budget.parts) == {"values": 7, "gradients": 7, "forward mode": 7, "finite differences": differences}
    assert budget.complete


def test_check_makes_the_passes_it_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The passes of the real check: 2 m + 1 evaluations of the output for an input of m elements
    (m <= 200), or 2 * 200 + 1 for a bigger one, sampled; nodes below it only."""
    graph = graph_of(chain(tmp_path / "c.yaml", 2, 300))
    calls: dict[str, int] = {}
    original = check_module.output_of

    def counted(graph: Graph, env: Any, of: str, seed: Any, name: str) -> Callable[[np.ndarray], float]:
        f = original(graph, env, of, seed, name)

        def g(value: np.ndarray) -> float:
            calls[name] = calls.get(name, 0) + 1
            return f(value)

        return g

    monkeypatch.setattr(check_module, "output_of", counted)
    report = check_graph(graph, {}, Options(all_nodes=True))
    assert report.ok, report.rows
    assert calls == {"x": 401, "n0": 401, "n1": 401, "s": 3}  # s is a scalar: 1 element, 3 passes
    budget = dict(check_budget(graph, opts=Options(all_nodes=True)).parts)
    env = 4  # x, n0, n1, s
    expected = sum(calls[name] * (env + sum(size + STEP for size in below)) + (calls[name] - 1) * own
                   for name, own, below in (("x", 300, (300, 300, 1)), ("n0", 300, (300, 1)), ("n1", 300, (1,)),
                                            ("s", 1, ())))
    assert budget["finite differences"] == expected


def test_jacobian_counts_its_passes_and_its_matrix(tmp_path: Path) -> None:
    path = write(tmp_path / "j.yaml", "cg: 1\ninputs: {x: [0.5, 1.0, 1.5]}\nnodes:\n  a: {op: sin, in: [x]}\n"
                                      "  s: {op: sum, in: [a]}\noutputs: [a, s]\n")
    graph = graph_of(path)
    for mode, passes, per_pass in (("reverse", 3, (3 + 3) + STEP + 3), ("forward", 3, (3 + STEP) + (1 + STEP) + 6)):
        result = jacobian(graph, wrt="x", of="a", mode=mode)
        assert (result.mode, result.passes) == (mode, passes)
        parts = dict(jacobian_budget(graph, wrt="x", of="a", mode=mode).parts)
        label = "backward passes (3)" if mode == "reverse" else "forward-mode passes (3)"
        assert parts == {"values": 7, label: passes * per_pass, "matrix": 9, "table output": 9 * TEXT}


def test_a_library_or_an_integer_output_costs_no_check(tmp_path: Path) -> None:
    graph = build(load_file(str(write(tmp_path / "i.yaml", "cg: 1\ninputs: {i: {value: 3, dtype: int}}\n"
                                                           "nodes:\n  j: {op: add, in: [i, i]}\noutputs: [j]\n"))))
    assert check_budget(graph, opts=Options()).total == 0


def test_counting_a_check_stops_soon_past_the_limit(tmp_path: Path) -> None:
    """5,000 chained scalars with --all: 12.5 million node passes to add up; stopped at once."""
    graph = graph_of(chain(tmp_path / "c.yaml", 5000, 1))
    budget = check_budget(graph, opts=Options(all_nodes=True, per_node=True), stop=1_000_000)
    assert not budget.complete and 1_000_000 < budget.total < 10 * 1_000_000
    assert "per node" not in dict(budget.parts)


# ---- the limit, from the command line ----------------------------------------------------------------


def _commands(path: Path) -> dict[str, tuple[list[str], Callable[[Graph], int]]]:
    p = str(path)
    return {
        "run": (["run", p], lambda g: run_budget(g).total),
        "run -f json": (["run", p, "-f", "json"], lambda g: run_budget(g, output="json").total),
        "run --edges": (["run", p, "--edges"], lambda g: run_budget(g, edges=True).total),
        "run --tangent": (["run", p, "--tangent", "x=[" + ",".join(["1"] * 20) + "]"],
                          lambda g: run_budget(g, forward=True).total),
        "check": (["check", p], lambda g: check_budget(g, opts=Options()).total),
        "check --all --per-node": (["check", p, "--all", "--per-node"],
                                   lambda g: check_budget(g, opts=Options(all_nodes=True, per_node=True)).total),
        "jacobian": (["jacobian", p, "--wrt", "w"], lambda g: jacobian_budget(g, wrt="w").total),
        "jacobian -f json": (["jacobian", p, "--wrt", "x", "-f", "json"],
                             lambda g: jacobian_budget(g, wrt="x", output="json").total),
        "draw": (["draw", p], lambda g: run_budget(g, edges=True).total),
        "report": (["report", p], lambda g: run_budget(g, edges=True).total),
        "paths": (["paths", p, "--from", "y", "--to", "s"], lambda g: run_budget(g).total),
    }


COMMANDS = list(_commands(Path("g.yaml")))


@pytest.mark.parametrize("command", COMMANDS)
def test_just_under_runs_and_just_over_is_refused(tmp_path: Path, command: str) -> None:
    path = small(tmp_path / "small.yaml")
    argv, count = _commands(path)[command]
    total = count(graph_of(path))
    under = cg("--max-total", str(total), *argv)
    word = command.split()[0]
    if word == "paths":  # paths need scalar nodes: past the budget, the command's own refusal
        assert under.code == 2 and "[CG311]" in under.err
    else:
        assert under.code == 0, under.out + under.err
    over = cg("--max-total", str(total - 1), *argv)
    assert over.code == 1, over.out + over.err
    message = over.out + over.err
    assert f"{path}:3:3: cg {word} would hold or compute {total:,}" in message
    assert f"more than the limit of {total - 1:,}; the biggest tensors: w (100), x (20)" in message
    assert "raise it with CG_MAX_TOTAL=N or `cg --max-total N` [CG004]" in message


def test_check_goes_on_with_the_files_that_fit(tmp_path: Path) -> None:
    big = chain(tmp_path / "big.yaml", 40, 1_000_000)
    r = cg("check", str(big), str(GRAPHS / "logreg.yaml"))
    assert r.code == 1
    assert f"{big}: FAILED" in r.out and "note: over the total budget: not run" in r.out
    assert "logreg.yaml: ok" in r.out and "1 passed, 1 failed" in r.err


def test_the_variable_and_the_option_raise_it_and_bad_values_are_usage_errors(tmp_path: Path) -> None:
    path = str(small(tmp_path / "small.yaml"))
    total = run_budget(graph_of(Path(path))).total
    r = cg("run", path, env={"CG_MAX_TOTAL": str(total - 1)})
    assert r.code == 1 and "[CG004]" in r.err
    assert cg("run", path, env={"CG_MAX_TOTAL": str(total)}).code == 0
    assert cg("--max-total", "1_000_000", "run", path, env={"CG_MAX_TOTAL": "10"}).code == 0  # the option wins
    for bad in ("lots", "0", "-5", "1.5", "inf"):
        r = cg("--max-total", bad, "run", path)
        assert r.code == 2 and "--max-total must be a positive whole number" in r.err, bad
        r = cg("run", path, env={"CG_MAX_TOTAL": bad})
        assert r.code == 2 and "CG_MAX_TOTAL must be a positive whole number" in r.err, bad


def test_the_help_names_the_default_and_the_variable() -> None:
    r = cg("--help")
    assert "--max-total N" in r.out and f"{LIMIT:,}" in r.out and "CG_MAX_TOTAL" in r.out


def test_a_value_of_another_shape_for_a_declared_input_is_a_usage_error(tmp_path: Path) -> None:
    """Not CG004 from the budget counted with the wrong shape: the run's own refusal."""
    path = chain(tmp_path / "c.yaml", 400, 10)
    values = tmp_path / "x.json"
    values.write_text(json.dumps([0.5] * 300_000), encoding="utf-8")
    assert LIMIT < 400 * 300_000  # counted with the value's shape, the 400 sines alone are over the budget
    r = cg("run", str(path), "--inputs", f"x=@{values}")
    assert r.code == 2 and "has shape [10], got a value of shape [300000]" in r.err


# ---- 40 nodes of 10 M numbers: a 1 KB file that needs 6 GB ----------------------------------------------


def _peak(argv: list[str], tmp_path: Path) -> tuple[int, str, int]:
    """Exit code, output and peak resident memory (KiB) of one `cg` process: forked from the server
    of tests/forkserver.py, so the peak is cg's (with Python and its imports), not pytest's. (A
    child of pytest would start with pytest's pages, and Linux keeps the peak across exec.)"""
    import forkserver

    out, err = tmp_path / "stdout", tmp_path / "stderr"
    done = forkserver.client().run(argv, cwd=ROOT, stdin=Path(os.devnull), stdout=out, stderr=err,
                                   env=forkserver.clean_env(), timeout=120)
    assert not done.hung, f"cg {argv}: killed after 120 s"
    return done.code, out.read_text(encoding="utf-8") + err.read_text(encoding="utf-8"), done.maxrss_kib


@pytest.mark.parametrize("command", [
    ["run", "{path}", "--inputs", "x=@{npy}"],  # the 80 MB input is read; nothing else that big
    ["run", "{path}", "-f", "json", "-o", "{out}"],
    ["check", "{path}", "--all"],
    ["jacobian", "{path}", "--wrt", "x", "--of", "n39"],
    ["draw", "{path}", "-o", "{out}.dot"],
    ["report", "{path}"],
])  # fmt: skip
def test_a_small_file_of_huge_tensors_is_refused_before_it_is_allocated(tmp_path: Path, command: list[str]) -> None:
    path = chain(tmp_path / "big.yaml", 40, 10_000_000)
    assert path.stat().st_size < 2_000
    npy = tmp_path / "x.npy"
    if "x=@{npy}" in command:
        np.save(npy, np.zeros(10_000_000))
    argv = [a.format(path=path, npy=npy, out=tmp_path / "out") for a in command]
    code, message, peak = _peak(argv, tmp_path)
    assert code == 1, message
    assert "[CG004]" in message and f"{path}:3:3: cg {command[0]} would hold or compute" in message
    assert "the biggest tensors: x (10,000,000), n0 (10,000,000)" in message and "Traceback" not in message
    assert peak < 1024 * 1024  # KiB: under 1 GiB
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.dot").exists()


def test_every_shipped_and_test_graph_fits_the_default() -> None:
    """Every command, with its most expensive options, on every example and test graph."""
    paths = [*GRAPHS.glob("*.yaml"), *(ROOT / "tests" / "good").glob("*.y*ml")]
    assert len(paths) > 10
    for path in paths:
        graph = graph_of(path)
        assert run_budget(graph, edges=True, output="json").total < LIMIT / 100, path
        assert check_budget(graph, opts=Options(all_nodes=True, per_node=True), snapshot=True).total < LIMIT / 100, path
        for name in (i.name for i in graph.inputs if i.aval.dtype == "float"):
            assert jacobian_budget(graph, wrt=name, output="json").total < LIMIT / 100, (path, name)


# ---- the paths made linear ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["x**2", "2*x*3", "-x", "sin(x)*x + 3", "x @ y", "a/b - c", "(x+y)*(x-y)",
                                  "x*y*z*2*3", "2*3", "exp(-x**2/2)", "x ** 3", "x + y + z - w", "-(-x)", "2*x + 3*y",
                                  "log(sigmoid(a*b))", "x - -y", "max(x, axis=0)", "-2*x", "x*y*2*z"])
def test_expressions_are_counted_exactly_before_they_are_expanded(text: str) -> None:
    nodes = len(parse_expr(text).nodes)
    assert count_operations(text) == nodes <= operations_bound(text)


def _expressions(n: int, terms: int) -> str:
    expr = " + ".join(["sin(x)*x"] * terms)
    return "cg: 1\ninputs: {x: 1.0}\nnodes:\n" + "".join(f'  e{k}: {{expr: "{expr}"}}\n' for k in range(n)) + \
        f"outputs: [e{n - 1}]\n"


def _count_calls(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[int]:
    calls = [0]
    original = getattr(module, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_the_node_limit_fires_before_any_expression_is_expanded(monkeypatch: pytest.MonkeyPatch,
                                                                limits: Callable[..., None]) -> None:
    """200 expressions of 201 nodes each (an add of 100 products and 100 sines), 2,000 allowed:
    CG004 at the 10th, and not one expression parsed into nodes."""
    limits(max_nodes=2_000)
    parsed = _count_calls(monkeypatch, expr_module, "parse_expr")
    with pytest.raises(GraphError) as e:
        build(load_text(_expressions(200, 100), "many.yaml"))
    (d,) = e.value.diagnostics
    assert d.code == "CG004" and d.node == "e9" and "more than 2,000 nodes" in d.message
    assert parsed == [0]
    build(load_text(_expressions(9, 100), "fits.yaml"))  # 9 x 201 = 1,809: built, each parsed once
    assert parsed == [9]


def test_the_node_limit_fires_before_any_function_body_is_built(monkeypatch: pytest.MonkeyPatch,
                                                                limits: Callable[..., None]) -> None:
    limits(max_nodes=1_000)
    expr = " + ".join(["sin(a)*a"] * 100)
    functions = "".join(f'  f{k}:\n    inputs: [a]\n    nodes:\n      b: {{expr: "{expr}"}}\n    output: b\n'
                        for k in range(20))
    text = f"cg: 1\nfunctions:\n{functions}inputs: {{x: 1.0}}\nnodes:\n  y: {{op: f0, in: [x]}}\noutputs: [y]\n"
    parsed = _count_calls(monkeypatch, expr_module, "parse_expr")
    bodies = _count_calls(monkeypatch, functions_module, "_body")
    with pytest.raises(GraphError) as e:
        build(load_text(text, "f.yaml"))
    assert [d.code for d in e.value.diagnostics] == ["CG004"] and "more than 1,000 nodes" in str(e.value)
    assert parsed == bodies == [0]


def test_one_view_of_the_ops_per_file_however_many_functions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scope.ops() used to merge every function into a new dict for each function body: n bodies,
    n dicts of n entries. Now one live view per file."""
    made = _count_calls(monkeypatch, scope_module.ScopeOps, "__init__")
    functions = "".join(f"  f{k}:\n    inputs: [a]\n    nodes:\n      b: {{op: sin, in: [a]}}\n    output: b\n"
                        for k in range(2_000))
    calls = "".join(f"  n{k}: {{op: f{k}, in: [{'x' if k == 0 else f'n{k - 1}'}]}}\n" for k in range(2_000))
    graph = build(load_text(f"cg: 1\nfunctions:\n{functions}inputs: {{x: 1.0}}\nnodes:\n{calls}outputs: [n1999]\n",
                            "f.yaml"))
    assert len(graph.nodes) == 2_000 and made == [1]
    assert np.isclose(run(graph).values["n1999"], _sines(1.0, 2_000))


def _sines(x: float, n: int) -> float:
    for _ in range(n):
        x = float(np.sin(x))
    return x


def test_deep_json_positions_take_memory_linear_in_the_depth(limits: Callable[..., None]) -> None:
    """A list nested 20,000 deep: a dict of paths would hold 200 million steps (1.6 GB); the
    position tree one entry per value. And the deepest position is still right."""
    depth = 20_000
    limits(max_depth=depth + 10)
    text = f'{{"cg": 1, "inputs": {{"x": {"[" * depth}1{"]" * depth}}}, "nodes": {{}}, "outputs": []}}'
    tracemalloc.start()
    try:
        try:
            doc = load_text(text, "deep.json")
        except LoadError as e:  # json.loads may give up this deep: the reader with positions reports it
            pytest.fail(str(e))
        where = doc.pos(("inputs", "x", *([0] * depth)))
        assert where is not None
        line, col = where.line, where.col  # a deferred position is located here
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (line, col) == (1, 27 + depth)
    assert peak < 50 * 1024 * 1024
