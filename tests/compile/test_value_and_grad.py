"""`cg compile`'s value_and_grad: in a module on numpy arrays, forward's lines then backward's in
one function, each name deleted after its last use. It gives the same numbers as
backward(forward(...)) (bit for bit: the same lines) and as cg.value_and_grad; the `del`s stand
right after each name's last use, so that only what it returns is alive at the end; modules on
Python floats have no such function."""

from __future__ import annotations

import ast
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import GRAPHS, ROOT, TANH_MLP
from test_compile import FAN_OUT

import cg as cglib
from cg.compile import compile_module, compile_source
from cg.graph.ir import Graph

EXAMPLES = sorted(GRAPHS.glob("*.yaml"))

PARAMS = ["W1", "b1", "W2", "b2"]


def inputs_for(graph: Graph, rng: np.random.Generator) -> dict[str, Any]:
    """The `expect` block's inputs, else the defaults, else random normal values."""
    given = dict(graph.expect.inputs) if graph.expect is not None and graph.expect.inputs else {}
    for inp in graph.inputs:
        if inp.name not in given and inp.default is None:
            given[inp.name] = rng.normal(size=inp.aval.shape)
    return given


def float_inputs(graph: Graph) -> list[str]:
    return [i.name for i in graph.inputs if i.aval.dtype == "float"]


# ---- the numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_value_and_grad_equals_forward_backward_and_the_interpreter(path: Path, dtype: str) -> None:
    graph = cglib.load(path)
    module = compile_module(graph, wrt=float_inputs(graph), dtype=dtype)
    if not hasattr(module, "value_and_grad"):  # a module on Python floats
        assert dtype == "float64" and "import numpy" not in compile_source(graph)
        return
    inputs = inputs_for(graph, np.random.default_rng(0))
    rename = getattr(module, "RENAMED", {})
    given = {rename.get(k, k): np.asarray(v) for k, v in inputs.items()}
    of = rename.get(graph.outputs[0], graph.outputs[0])
    out, grads = module.value_and_grad(**given)
    values = module.forward(**given)
    want = module.backward(values)
    np.testing.assert_array_equal(out, getattr(values, of))
    assert grads._fields == want._fields
    for name, a, b in zip(grads._fields, grads, want):
        np.testing.assert_array_equal(a, b, err_msg=name)
        assert np.asarray(a).dtype == np.dtype(dtype), name
    interp_out, interp = cglib.value_and_grad(graph, wrt=float_inputs(graph), dtype=dtype)(inputs)
    rtol, atol = (1e-12, 1e-13) if dtype == "float64" else (2e-5, 2e-6)
    np.testing.assert_allclose(out, interp_out, rtol=rtol, atol=atol)
    for name in float_inputs(graph):
        np.testing.assert_allclose(getattr(grads, rename.get(name, name)), interp[name], rtol=rtol, atol=atol,
                                   err_msg=name)


def test_every_example_graph_has_value_and_grad_when_it_works_on_arrays() -> None:
    arrays = [p.stem for p in EXAMPLES if "import numpy" in compile_source(cglib.load(p))]
    assert arrays, "no example graph works on arrays"
    for p in EXAMPLES:
        source = compile_source(cglib.load(p))
        assert ("def value_and_grad(" in source) == (p.stem in arrays), p.stem
        assert "def value_and_grad(" in compile_source(cglib.load(p), dtype="float32"), p.stem


def test_a_tensor_output_needs_its_seed_and_a_pruned_gradient_is_zero() -> None:
    graph = cglib.loads("cg: 1\ninputs: {x: [1.0, 2.0], w: 3.0, k: {value: [1, 2], dtype: int}}\n"
                        "nodes: {s: {op: mul, in: [x, x, k]}, t: {op: add, in: [s, x]}, u: {op: sin, in: [w]}}\n"
                        "outputs: [t, u]")
    module = compile_module(graph, wrt=["x", "w"])
    seed = np.array([1.0, -1.0])
    with pytest.raises(TypeError):
        module.value_and_grad(x=[1.0, 2.0], w=3.0, k=[1, 2])
    out, grads = module.value_and_grad(x=[1.0, 2.0], w=3.0, k=[1, 2], seed=seed)
    np.testing.assert_array_equal(out, [2.0, 10.0])  # x*x*k + x
    np.testing.assert_array_equal(grads.x, [3.0, -9.0])  # (2 x k + 1) * seed
    assert np.shape(grads.w) == () and float(grads.w) == 0.0  # no path from w to t (as backward: 0.0)
    assert seed.tolist() == [1.0, -1.0]
    assert "u = " not in source_of(compile_source(graph), "value_and_grad")  # t does not need u


def test_an_output_that_is_an_input_is_returned_in_the_module_dtype() -> None:
    graph = cglib.loads("cg: 1\ninputs: {x: [2.0, 1.0], w: 3.0}\nnodes: {y: {op: mul, in: [x, w]}}\noutputs: [x]\n")
    module = compile_module(graph, dtype="float32")
    out, grads = module.value_and_grad(seed=[1.0, 2.0])
    assert out.dtype == np.float32 and out.tolist() == [2.0, 1.0]
    assert grads.x.tolist() == [1.0, 2.0] and grads.y.tolist() == [0.0, 0.0]


# ---- the dels ----------------------------------------------------------------------------------


def source_of(source: str, function: str) -> str:
    tree = ast.parse(source)
    fn = next(f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == function)
    return ast.get_source_segment(source, fn) or ""


def liveness(source: str) -> tuple[list[ast.stmt], dict[str, int], dict[str, int], set[str], set[str]]:
    """value_and_grad's statements (its docstring left out), and per name: the index of the
    statement that last reads or writes it (other than a del), the index of its del; the names
    bound (parameters included) and the names the return statement reads."""
    tree = ast.parse(source)
    fn = next(f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "value_and_grad")
    body = fn.body[1:]
    bound = {a.arg for a in fn.args.kwonlyargs}
    last: dict[str, int] = {}
    deleted: dict[str, int] = {}
    returned: set[str] = set()
    for k, stmt in enumerate(body):
        names = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)}
        if isinstance(stmt, ast.Delete):
            for target in stmt.targets:
                assert isinstance(target, ast.Name)
                assert target.id not in deleted, f"{target.id} deleted twice"
                deleted[target.id] = k
            continue
        if isinstance(stmt, ast.Return):
            returned = names
            continue
        for name in names:
            last[name] = k
        bound |= {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return body, last, deleted, bound, returned


def assert_dels_after_last_use(source: str) -> None:
    """Every name bound in value_and_grad is deleted right after the statement that uses it last
    (the dels of one statement may follow each other), save the names returned and the seed."""
    body, last, deleted, bound, returned = liveness(source)
    for name in bound:
        if name in returned or name == "seed" or name not in last:
            assert name not in deleted, name
            continue
        assert name in deleted, f"{name} is never deleted"
        k = deleted[name]
        assert k > last[name], f"{name} deleted before its last use"
        assert all(isinstance(s, ast.Delete) for s in body[last[name] + 1: k + 1]), f"{name} deleted late"
    alive = bound - set(deleted)
    unused = {n for n in bound if n not in last}  # parameters of inputs the output does not depend on
    assert alive - unused == (returned & bound) | {"seed"}


def test_the_small_mlp_deletes_each_array_after_its_last_use() -> None:
    graph = cglib.loads(TANH_MLP)
    source = compile_source(graph, wrt=PARAMS)
    assert_dels_after_last_use(source)
    returned = liveness(source)[4]
    assert returned == {"Grads", "loss", "dW1", "db1", "dW2", "db2"}
    text = source_of(source, "value_and_grad")
    for before, after in [
        ("    z1 = X @ W1  # z1: matmul(X, W1)\n", "    del W1\n"),  # dX is not asked for: W1 is not read again
        ("    a1 = z1 + b1  # a1: add(z1, b1)\n", "    del b1, z1\n"),  # add's VJP reads neither argument
        ("    h1 = np.tanh(a1)  # h1: tanh(a1)\n", "    del a1\n"),  # tanh's VJP reads its output, not a1
        ("    h2 = np.tanh(a2)  # h2: tanh(a2)\n", "    del a2\n"),
        ("    da2 = (1.0 - h2 * h2) * dh2  # h2: tanh(a2)\n", "    del h2, dh2\n"),
        ("    dh1 = dz2 @ W2.T  # z2: matmul(h1, W2)\n", "    del W2\n"),
        ("    dW2 = h1.T @ dz2  # z2: matmul(h1, W2)\n", "    del dz2\n"),
        ("    da1 = (1.0 - h1 * h1) * dh1  # h1: tanh(a1)\n", "    del h1, dh1\n"),
        ("    dW1 = X.T @ dz1  # z1: matmul(X, W1)\n", "    del X, dz1\n"),
    ]:
        assert before + after in text, before
    assert text.rstrip().endswith("return loss, Grads(dW1, db1, dW2, db2)")
    # forward's lines and backward's (less its reading of v), in their order, and nothing else but dels
    def statements(name: str) -> list[str]:
        fn = next(f for f in ast.parse(source).body if isinstance(f, ast.FunctionDef) and f.name == name)
        return [ast.unparse(s) for s in fn.body[1:] if not isinstance(s, (ast.Return, ast.Delete))]

    assert statements("value_and_grad") == statements("forward") + statements("backward")[1:]
    assert statements("backward")[0] == "X, W2, h1, h2 = (v.X, v.W2, v.h1, v.h2)"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_array_module_deletes_after_last_use(path: Path, dtype: str) -> None:
    graph = cglib.load(path)
    for wrt in (None, float_inputs(graph)):
        source = compile_source(graph, wrt=wrt, dtype=dtype)
        if "def value_and_grad(" in source:
            assert_dels_after_last_use(source)


def test_fan_out_and_repeated_calls_keep_their_numbers() -> None:
    # x reaches l three times (a gradient accumulated with += into a copy); nothing a call
    # deletes or adds into is anything the caller or a later call sees.
    graph = cglib.loads(FAN_OUT)
    module = compile_module(graph)
    assert_dels_after_last_use(compile_source(graph))
    first, second = module.value_and_grad(), module.value_and_grad()
    want = module.backward(module.forward())
    assert first[0] == second[0] and all(np.array_equal(a, b) and np.array_equal(a, c)
                                         for a, b, c in zip(first[1], second[1], want))


def deep_mlp(layers: int, width: int, batch: int) -> str:
    lines = ["cg: 1", "inputs:", f"  X: {{shape: [{batch}, {width}]}}"]
    for k in range(1, layers + 1):
        lines += [f"  W{k}: {{shape: [{width}, {width}]}}", f"  b{k}: {{shape: [{width}]}}"]
    lines.append("nodes:")
    h = "X"
    for k in range(1, layers + 1):
        lines += [f"  z{k}: {{op: matmul, in: [{h}, W{k}]}}", f"  a{k}: {{op: add, in: [z{k}, b{k}]}}",
                  f"  h{k}: {{op: tanh, in: [a{k}]}}"]
        h = f"h{k}"
    return "\n".join([*lines, f"  loss: {{op: mean, in: [{h}]}}", "outputs: [loss]"]) + "\n"


def test_a_deep_mlp_holds_less_memory_at_its_peak() -> None:
    # 10 layers of 32x64 activations: forward + backward keep all 31 of them (and every gradient)
    # alive at once; value_and_grad only the tanh outputs the backward pass reads, one at a time fewer.
    layers, width, batch = 10, 64, 32
    graph = cglib.loads(deep_mlp(layers, width, batch))
    params = [p for k in range(1, layers + 1) for p in (f"W{k}", f"b{k}")]
    module = compile_module(graph, wrt=params)
    rng = np.random.default_rng(0)
    values = {"X": rng.normal(size=(batch, width))}
    values |= {p: rng.normal(size=(width, width) if p[0] == "W" else width) / 8 for p in params}

    def peak(fn: Any) -> int:
        fn()
        tracemalloc.start()
        try:
            kept = fn()
            return tracemalloc.get_traced_memory()[1] - sum(a.nbytes for a in kept[1])  # less the results
        finally:
            tracemalloc.stop()

    split = peak(lambda: (None, module.backward(module.forward(**values))))
    lean = peak(lambda: module.value_and_grad(**values))
    activation = batch * width * 8
    # what stays alive besides the results: at most the 10 tanh outputs and a few temporaries
    assert lean <= (layers + 4) * activation < split / 2, (lean, split, activation)


def test_the_readme_shows_the_real_value_and_grad(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    source = compile_source(cglib.load("graphs/linreg.yaml"), wrt=["W", "b"])
    text = source[source.index("def value_and_grad"):].rstrip("\n")
    assert "\n".join("  " + ln if ln else ln for ln in text.split("\n")) in (ROOT / "README.md").read_text()
