"""`cg compile`: the generated module agrees with the interpreter (cg.eval.interp.run) on every
example graph and on every op's test cases, reads like the notes' staged computation, and
passes ruff with the project's rules."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import GRAPHS, ROOT, cg

import cg as cglib
import cg.ops.kernels as kernels
from cg.check.fd import sample
from cg.compile import CompileError, compile_module, compile_source
from cg.errors import UsageError
from cg.eval.interp import run
from cg.graph.ir import Graph
from cg.ops import REGISTRY, Case, Op

RTOL, ATOL = 1e-12, 1e-13
EXAMPLES = sorted(GRAPHS.glob("*.yaml"))

# Ops that cg compile cannot write, each with the reason (none today: every op has a rule).
NO_CODE_RULE: dict[str, str] = {}


def inputs_for(graph: Graph, rng: np.random.Generator) -> dict[str, Any]:
    """The `expect` block's inputs, else the defaults, else random normal values."""
    given = dict(graph.expect.inputs) if graph.expect is not None and graph.expect.inputs else {}
    for inp in graph.inputs:
        if inp.name not in given and inp.default is None:
            given[inp.name] = rng.normal(size=inp.aval.shape)
    return given


def assert_agrees(graph: Graph, inputs: dict[str, Any], seed: Any = None, of: str | None = None,
                  dtype: str = "float64") -> Any:
    """Compiled forward values and backward gradients equal the interpreter's (in float32: to
    float32's precision, and every float value and gradient is float32)."""
    module = compile_module(graph, of=of, dtype=dtype)
    want = run(graph, inputs, seed=seed, of=of, dtype=dtype)
    rtol, atol = (RTOL, ATOL) if dtype == "float64" else (2e-5, 2e-6)
    field = {name: getattr(module, "RENAMED", {}).get(name, name) for name in graph.avals}
    values = module.forward(**{field[k]: np.asarray(v) for k, v in inputs.items()})
    grads = module.backward(values) if seed is None else module.backward(values, seed)
    ids = [i.name for i in graph.inputs] + [n.id for n in graph.nodes]
    assert list(values._fields) == [field[n] for n in ids]
    for name in ids:
        got = getattr(values, field[name])
        np.testing.assert_allclose(got, want.values[name], rtol=rtol, atol=atol, err_msg=name)
        if graph.avals[name].dtype == "float" and dtype == "float32":
            assert np.asarray(got).dtype == np.float32, name
    floats = [n for n in ids if graph.avals[n].dtype == "float"]
    assert list(grads._fields) == [field[n] for n in floats]
    for name in floats:
        got = getattr(grads, field[name])
        assert np.shape(got) == graph.avals[name].shape, name
        np.testing.assert_allclose(got, want.grads[name], rtol=rtol, atol=atol, err_msg=f"d/d{name}")
        assert dtype == "float64" or np.asarray(got).dtype == np.float32, f"d/d{name}"
    if hasattr(module, "value_and_grad"):  # array modules: the same numbers from the one-function pass
        assert_value_and_grad_agrees(module, graph, inputs, seed, of, values, grads)
    return module


def assert_value_and_grad_agrees(module: Any, graph: Graph, inputs: dict[str, Any], seed: Any, of: str | None,
                                 values: Any, grads: Any) -> None:
    """value_and_grad gives exactly what forward then backward give (the same lines, so the same
    bits), and leaves its inputs and seed as they were."""
    field = {name: getattr(module, "RENAMED", {}).get(name, name) for name in graph.avals}
    given = {field[k]: np.array(v) for k, v in inputs.items()}
    before = {k: v.copy() for k, v in given.items()}
    seed_before = None if seed is None else np.array(seed, copy=True)
    out, got = (module.value_and_grad(**given) if seed is None else module.value_and_grad(**given, seed=seed))
    np.testing.assert_array_equal(out, getattr(values, field[of or graph.outputs[0]]))
    assert np.asarray(out).dtype == np.asarray(getattr(values, field[of or graph.outputs[0]])).dtype
    assert got._fields == grads._fields
    for name, a, b in zip(got._fields, got, grads):
        assert np.shape(a) == np.shape(b) and np.asarray(a).dtype == np.asarray(b).dtype, name
        np.testing.assert_array_equal(a, b, err_msg=f"value_and_grad d/d{name}")
    assert all(np.array_equal(given[k], before[k]) for k in given)
    assert seed is None or np.array_equal(seed, seed_before)


# ---- the seed: z = log(3x^2 + 5xy) -------------------------------------------------------------


def test_seed_graph_reads_like_the_staged_computation_and_gives_its_numbers() -> None:
    graph = cglib.load(GRAPHS / "log3x2p5xy.yaml")
    source = compile_source(graph)
    for key in [
        "import math",
        "def forward(*, x: float = 2.0, y: float = 3.0) -> Values:",
        "    a = x ** 2  # a: square(x)",
        "    b = 3.0 * a  # b: mul(3, a)",
        "    d = 5.0 * c  # d: mul(5, c)",
        "    e = b + d  # e: add(b, d)",
        "    z = math.log(e)  # z: log(e)",
        "def backward(v: Values, seed: float = 1.0) -> Grads:",
        "    dz = seed  # the seed, d z / d z",
        "    de = (1.0 / e) * dz  # z: log(e)",
        "    dc = 5.0 * dd  # d: mul(5, c)",
        "    dx = y * dc  # c: mul(x, y)",
        "    dy = x * dc  # c: mul(x, y)",
        "    dx += (2.0 * x) * da  # a: square(x)",  # x fans out: its second stream adds up
    ]:
        assert key + "\n" in source, key
    assert "import numpy" not in source and "graphs/log3x2p5xy.yaml" in source.split('"""')[1]
    m = compile_module(graph)
    v = m.forward(x=2.0, y=3.0)
    g = m.backward(v)
    assert v.z == pytest.approx(np.log(42.0), rel=1e-15)
    assert g.x == pytest.approx(27 / 42, rel=1e-15) and g.y == pytest.approx(10 / 42, rel=1e-15)
    assert type(v.z) is float and type(g.x) is float  # Python floats and math, not numpy


def test_staged_graph_accumulates_like_the_notes() -> None:
    source = compile_source(cglib.load(GRAPHS / "staged.yaml"))
    assert "    dx += " in source and "    dy += " in source
    # sigmoid's kernel, written for Python floats: its two stable branches, math in place of numpy
    assert "    sigy = sigmoid(y)  #" in source and "import numpy" not in source
    assert "    e = math.exp(-abs(x))\n    return 1.0 / (1.0 + e) if x >= 0 else e / (1.0 + e)\n" in source
    assert "# f: mul(num, invden) -- (8)" in source


def test_the_helpers_of_a_module_are_the_kernels_cg_runs() -> None:
    # No kernel is written twice: a module defines the functions of cg/ops/kernels.py as they are
    # there (from `def`: the decorator is cg's), and only those its code calls, directly or not.
    source = compile_source(cglib.load(GRAPHS / "multiclass_logreg.yaml"))
    defined = re.findall(r"^def (\w+)\(", source, re.M)
    assert defined == ["shifted_max", "logsumexp", "softmax", "index_grad", "forward", "backward", "value_and_grad"]
    for name in defined[:-3]:
        text = inspect.getsource(kernels.KERNELS[name])
        assert text[text.index("def ") :] in source, name


# ---- agreement with the interpreter ------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_graph_agrees_with_the_interpreter(path: Path) -> None:
    graph = cglib.load(path)
    assert_agrees(graph, inputs_for(graph, np.random.default_rng(0)))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_graph_agrees_in_float32(path: Path) -> None:
    graph = cglib.load(path)
    assert_agrees(graph, inputs_for(graph, np.random.default_rng(0)), dtype="float32")


def op_graph(op: Op, case: Case, xs: list[Any], const: int | None = None) -> Graph:
    """A graph of one node applying `op` to inputs (argument `const` as a literal instead)."""
    inputs, args = {}, []
    for k, x in enumerate(xs):
        dtype = "int" if k in op.int_args else "float"
        if k == const:
            args.append(np.asarray(x).tolist())
            continue
        inputs[f"x{k}"] = {"value": np.asarray(x).tolist(), "dtype": dtype}
        args.append(f"x{k}")
    node = {"op": op.name, "in": args, **case.attrs}
    return cglib.loads(json.dumps({"cg": 1, "inputs": inputs, "nodes": {"y": node}, "outputs": ["y"]}))


OP_CASES = [
    pytest.param(op, case, id=f"{op.name}-{'x'.join(str(list(s)) for s in case.shapes)}-{case.attrs or ''}")
    for op in REGISTRY.values()
    for case in (*op.cases, Case(((),) * op.arity[0]))
    if case.shapes != ((),) * op.arity[0] or op.code is None or op.code.scalar or case in op.cases
]


@pytest.mark.parametrize(("op", "case"), OP_CASES)
def test_every_op_case_agrees_with_the_interpreter(op: Op, case: Case) -> None:
    rng = np.random.default_rng(1)
    xs = sample(op, case.shapes, rng, case.attrs)
    graph = op_graph(op, case, xs)
    shape = graph.avals["y"].shape
    seed = rng.normal(size=shape) if shape != () else None
    module = assert_agrees(graph, {}, seed)
    # Every value a float scalar: Python floats and the math module.
    scalar = all(s == () for s in case.shapes) and not op.int_args and op.code is not None and op.code.scalar
    assert ("import numpy" not in compile_source(graph)) == scalar
    if op.arity[0] >= 2 and op.code is not None and op.code.broadcast:
        assert_agrees(op_graph(op, case, xs, const=0), {}, seed)  # a literal argument
    assert module.Values._fields[-1] == "y"
    assert_agrees(graph, {}, seed, dtype="float32")


def test_float32_with_integer_arguments_and_a_bad_dtype() -> None:
    # An int input in a float op promotes to float64 in numpy: the module casts back, as cg run does.
    graph = cglib.loads("cg: 1\ninputs: {x: [1.0, 2.0], k: {value: [3, 4], dtype: int}}\n"
                        "nodes: {y: {op: mul, in: [x, k]}, m: {op: maximum, in: [y, x]}, s: {op: sum, in: [m]}}\n"
                        "outputs: [s]\n")
    assert_agrees(graph, {}, dtype="float32")
    assert "import math" not in compile_source(cglib.load(GRAPHS / "log3x2p5xy.yaml"), dtype="float32")
    with pytest.raises(UsageError, match="float16"):
        compile_source(graph, dtype="float16")


EDGE_CASES = {
    # matmul of a 1-D operand by a batched one (the general form, batch axes summed back)
    "vector_by_batch": (f"{{v: [1.0, -2.0, 0.5], B: {np.linspace(-1, 1, 24).reshape(2, 3, 4).tolist()}}}",
                        "{y: {op: matmul, in: [v, B]}, s: {op: sum, in: [y]}}", "s"),
    "batch_by_vector": (f"{{A: {np.linspace(-1, 1, 12).reshape(2, 2, 3).tolist()}, v: [1.0, -2.0, 0.5]}}",
                        "{y: {op: matmul, in: [A, v]}, s: {op: sum, in: [y]}}", "s"),
    # a literal index, and a node with constants only (numpy, so it behaves as in cg run)
    "literal_index": ("{v: [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]}",
                      "{p: {op: index, in: [v, 2]}, k: {op: add, in: [1, 2]}, s: {op: sum, in: [p]},"
                      " t: {op: mul, in: [s, k]}}", "t"),
    # an output of shape [1, 1] (seed 1 by default), and one that is an input
    "one_element": ("{x: [[2.0]]}", "{y: {op: exp, in: [x]}}", "y"),
    "input_output": ("{x: 2.0, w: 3.0}", "{y: {op: mul, in: [x, w]}}", "x"),
}


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_edge_cases_agree_with_the_interpreter(name: str) -> None:
    inputs, nodes, out = EDGE_CASES[name]
    graph = cglib.loads(f"cg: 1\ninputs: {inputs}\nnodes: {nodes}\noutputs: [{out}]\n")
    assert_agrees(graph, {})


# x reaches l three times: through add's pass-through (the gradient itself) and through a sum's
# read-only broadcast view (also tests/compile/test_value_and_grad.py).
FAN_OUT = """
cg: 1
inputs: {x: [1.0, -2.0, 3.0], w: [[0.5, 1.0, 2.0], [1.5, -1.0, 0.25]]}
nodes:
  s: {op: add, in: [x, x]}
  m: {op: mul, in: [w, s]}
  r: {op: sum, in: [m], axis: 0}
  q: {op: sum, in: [x]}
  u: {op: add, in: [r, q, s]}
  l: {op: sum, in: [u]}
outputs: [l]
"""


def test_fan_out_accumulates_in_place_without_touching_other_gradients() -> None:
    # x reaches s three times, through add's pass-through (the gradient itself) and through a sum's
    # read-only broadcast view: += must work on a copy, and ds must stay what it was.
    graph = cglib.loads(FAN_OUT)
    module = assert_agrees(graph, {})
    source = compile_source(graph)
    assert "np.copy(" in source and "ds += " in source and "dx += " in source
    v = module.forward()
    first, second = module.backward(v), module.backward(v)  # nothing is modified between calls
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


def test_tensor_output_needs_a_seed_and_the_seed_is_not_modified() -> None:
    graph = cglib.loads("cg: 1\ninputs: {x: [1.0, 2.0]}\nnodes: {s: {op: add, in: [x, x]}}\noutputs: [s]")
    seed = np.array([1.0, -1.0])
    module = assert_agrees(graph, {}, seed)
    assert seed.tolist() == [1.0, -1.0]
    with pytest.raises(TypeError):
        module.backward(module.forward())
    assert "def backward(v: Values, seed: np.ndarray) -> Grads:" in compile_source(graph)


def test_of_and_wrt_choose_the_output_and_prune_the_backward_pass() -> None:
    graph = cglib.load(GRAPHS / "binary_logreg.yaml")
    assert_agrees(graph, {}, of="nll")
    module = compile_module(graph, wrt=["w", "b"])
    g = module.backward(module.forward())
    want = run(graph)
    assert g._fields == ("w", "b")
    np.testing.assert_allclose(g.w, want.grads["w"], rtol=RTOL)
    source = compile_source(graph, wrt=["w", "b"])
    assert "dx = " not in source  # x's gradient is not on the way to w and b
    with pytest.raises(UsageError, match=r"unknown name 'nope'"):
        compile_source(graph, wrt=["nope"])
    int_graph = cglib.load(GRAPHS / "multiclass_logreg.yaml")
    with pytest.raises(UsageError, match="integer"):
        compile_source(int_graph, wrt=["y"])


NAMES_PYTHON_CHANGES = """
cg: 1
inputs: {x: 0.5, dx: 2.0, np: 1.5, _h: 0.25, l: 3.0}
nodes:
  if: {op: mul, in: [x, dx]}
  math: {op: sin, in: [if]}
  seed: {op: add, in: [math, np, _h, l]}
  v: {op: mul, in: [seed, seed, -2]}
  max: {op: relu, in: [v]}
outputs: [max]
"""


def test_names_that_python_needs_to_change_still_work() -> None:
    graph = cglib.loads(NAMES_PYTHON_CHANGES)
    module = assert_agrees(graph, {})
    assert module.Values._fields == ("x", "dx", "np_", "h_", "l", "if_", "math_", "seed_", "v", "max_")
    assert module.RENAMED == {"np": "np_", "_h": "h_", "if": "if_", "math": "math_", "seed": "seed_", "max": "max_"}
    assert "def backward(v_: Values, seed: float = 1.0) -> Grads:" in compile_source(graph)  # the graph has a v
    # A composite's nodes have ids such as h/z: they become h_z.
    mlp = cglib.load(GRAPHS / "mlp.yaml") if (GRAPHS / "mlp.yaml").exists() else None
    if mlp is not None and any("/" in n.id for n in mlp.nodes):
        assert all("/" not in f for f in compile_module(mlp).Values._fields)


def test_an_op_without_a_code_rule_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    graph = cglib.load(GRAPHS / "sincos.yaml")
    nodes = tuple(dataclasses.replace(n, op=dataclasses.replace(n.op, code=None)) if n.op.name == "cos" else n
                  for n in graph.nodes)
    with pytest.raises(CompileError, match="'cos'") as e:
        compile_source(dataclasses.replace(graph, nodes=nodes))
    assert e.value.diagnostics[0].code == "CG700"


def test_every_registered_op_has_a_code_rule_or_a_documented_reason() -> None:
    for op in REGISTRY.values():
        assert op.code is not None or op.name in NO_CODE_RULE, f"op '{op.name}' has no code rule"


def test_a_long_scalar_chain_compiles_without_recursion() -> None:
    n = 20_000
    lines = ["cg: 1", "inputs: {x: 0.5}", "nodes:", "  n0: {op: sin, in: [x]}"]
    lines += [f"  n{i}: {{op: sin, in: [n{i - 1}]}}" for i in range(1, n)]
    graph = cglib.loads("\n".join([*lines, f"outputs: [n{n - 1}]"]) + "\n")
    module = compile_module(graph)
    g = module.backward(module.forward())
    want = run(graph)
    assert g.x == pytest.approx(float(want.grads["x"]), rel=1e-9)


# ---- ruff and the command line -----------------------------------------------------------------


def ruff() -> str:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if exe is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    return exe


def test_generated_modules_pass_ruff_with_the_project_rules(tmp_path: Path) -> None:
    exe = ruff()
    sources = {p.stem: compile_source(cglib.load(p)) for p in EXAMPLES}
    sources |= {f"{p.stem}_float32": compile_source(cglib.load(p), dtype="float32") for p in EXAMPLES}
    sources["renamed"] = compile_source(cglib.loads(NAMES_PYTHON_CHANGES))
    long = "a_very_long_name_" * 8
    doc = '"\u03c3 \u00d7 2 \u2013 na\u00efve \\"quotes\\" \\\\ and more"'  # confusables, quotes, a backslash
    sources["odd_names"] = compile_source(cglib.loads(
        f"cg: 1\ndoc: {doc}\ninputs: {{l: 1.0, I: [1.0, 2.0]}}\nnodes:\n"
        f"  {long}: {{op: mul, in: [l, I, [[3.0, 1.0]], 2.0]}}\n"
        f"  O: {{op: sum, in: [{long}], doc: {doc}}}\noutputs: [O]\n"))
    for op in REGISTRY.values():
        scalar = (Case(((),) * op.arity[0]),) if op.code is not None and op.code.scalar else ()
        for k, case in enumerate((*op.cases, *scalar)):  # on Python floats too: helpers translated to math
            xs = sample(op, case.shapes, np.random.default_rng(0), case.attrs)
            sources[f"op_{op.name}_{k}"] = compile_source(op_graph(op, case, xs))
    for name, source in sources.items():
        (tmp_path / f"{name}.py").write_text(source)
    proc = subprocess.run([exe, "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cli_compile_prints_or_writes_the_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r = cg("compile", "graphs/log3x2p5xy.yaml")
    monkeypatch.chdir(ROOT)  # the docstring names the file as given
    assert r.code == 0 and r.out == compile_source(cglib.load("graphs/log3x2p5xy.yaml"))
    out = tmp_path / "module.py"
    r = cg("compile", "graphs/multiclass_logreg.yaml", "-o", str(out), "--wrt", "W", "--wrt", "b", "--dtype", "float32")
    assert r.code == 0 and r.out == "" and "def backward" in out.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["module.py"]  # no temporary file left behind
    proc = subprocess.run([sys.executable, "-c", f"import runpy; m = runpy.run_path({str(out)!r}); "
                           "print(m['backward'](m['forward']())._fields)"], capture_output=True, text=True)
    assert proc.stdout.strip() == "('W', 'b')", proc.stderr
    assert "np.asarray(W, dtype=np.float32)" in out.read_text()


def test_cli_compile_errors() -> None:
    assert cg("compile", "nope.yaml").code == 2
    bad = cg("compile", "tests/bad/cycle2.yaml")
    assert bad.code == 1 and "CG112" in bad.err
    r = cg("compile", "graphs/multiclass_logreg.yaml", "--of", "y")
    assert r.code == 2 and "integer" in r.err and "CG303" in r.err
    r = cg("compile", "graphs/log3x2p5xy.yaml", "--of", "zz")
    assert r.code == 2 and "CG301" in r.err


def test_the_readme_shows_the_real_output_for_the_seed_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    source = compile_source(cglib.load("graphs/log3x2p5xy.yaml"))
    assert source[source.index("def forward"):].rstrip("\n") in (ROOT / "README.md").read_text()
