"""Graphs from expressions: cg/graph/expr.py (the allow-list, the node scheme, columns of errors) and
`cg new --expr` (the graph file it writes, through the real CLI)."""

from __future__ import annotations

import builtins
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import ROOT, cg

import cg as cglib
from cg.cli import main
from cg.graph.expr import MAX_CHARS, MAX_DEPTH, ExprError, ExprGraph, default_name, parse_expr
from cg.ops import REGISTRY

SEED = "log(3*x**2 + 5*x*y)"


def shape_of(g: ExprGraph) -> list[tuple[str, str, tuple[Any, ...]]]:
    return [(n.id, n.op, n.args) for n in g.nodes]


def error(text: str, **kwargs: Any) -> ExprError:
    with pytest.raises(ExprError) as info:
        parse_expr(text, **kwargs)
    return info.value


def new(*args: str) -> Any:
    """`cg new` in-process (fast); the graph it printed, loaded."""
    r = CliRunner().invoke(main, ["new", *args])
    assert r.exit_code == 0, r.output
    return cglib.loads(r.stdout)


# ---- the seed: z = log(3x^2 + 5xy) ----------------------------------------------------------------


def test_seed_structure_is_the_notes_a_to_e() -> None:
    g = parse_expr(SEED)
    assert shape_of(g) == [
        ("a", "square", ("x",)),
        ("b", "mul", (3, "a")),
        ("c", "mul", ("x", "y")),
        ("d", "mul", (5, "c")),
        ("e", "add", ("b", "d")),
        ("f", "log", ("e",)),
    ]
    assert g.inputs == ("x", "y") and g.output == "f"
    assert [n.col for n in g.nodes] == [8, 6, 15, 15, 12, 1]  # **, *, the chain's first *, +, log


def test_seed_through_the_cli_matches_the_example_graph_and_its_numbers(tmp_path: Path) -> None:
    out = tmp_path / "g.yaml"
    r = cg("new", "--expr", SEED, "-o", str(out))
    assert r.code == 0 and r.out == "" and "wrote" in r.err
    text = out.read_text()
    assert "  a: {op: square, in: [x]}\n  b: {op: mul, in: [3, a]}\n  c: {op: mul, in: [x, y]}\n" in text
    assert "  d: {op: mul, in: [5, c]}\n  e: {op: add, in: [b, d]}\n  z: {op: log, in: [e]}\noutputs: [z]\n" in text
    assert "inputs:\n  x: {}\n  y: {}\n" in text and "doc: log(3*x**2 + 5*x*y)" in text
    example = cglib.load(ROOT / "graphs" / "log3x2p5xy.yaml")
    made = cglib.load(out)
    def structure(g: Any) -> list[tuple[str, str, list[Any]]]:
        return [(n.id, n.op.name, [a if isinstance(a, str) else a.value.tolist() for a in n.args]) for n in g.nodes]

    assert structure(made) == structure(example) and made.outputs == example.outputs
    rows = cg("run", str(out), "--inputs", "x=2,y=3").table()
    assert rows["z"]["value"] == f"{np.log(42):.4f}" == "3.7377"
    assert rows["x"]["grad"] == f"{27 / 42:.4f}" == "0.6429"
    assert rows["y"]["grad"] == f"{10 / 42:.4f}" == "0.2381"
    assert [rows[k]["value"] for k in "abcde"] == ["4.0000", "12.0000", "6.0000", "30.0000", "42.0000"]
    assert cg("validate", str(out)).code == 0
    assert cg("fmt", "--check", str(out)).code == 0  # written in canonical form


def test_cg_new_prints_to_stdout_and_keeps_existing_files(tmp_path: Path) -> None:
    r = cg("new", "--expr", SEED)
    assert r.code == 0 and r.out.startswith("cg: 1\nname: expr\n") and r.err == ""
    out = tmp_path / "g.yaml"
    out.write_text("mine\n")
    r = cg("new", "--expr", "x*y", "-o", str(out))
    assert r.code == 2 and "--force" in r.err and out.read_text() == "mine\n"
    assert cg("new", "--expr", "x*y", "-o", str(out), "--force", "--name", "prod").code == 0
    assert "name: prod\n" in out.read_text()


def test_cg_new_errors_name_the_column_and_leave_no_file(tmp_path: Path) -> None:
    out = tmp_path / "g.yaml"
    r = cg("new", "--expr", "log(3*x**2 + 5*x*lgo(y))", "-o", str(out))
    assert r.code == 1 and r.out == "" and not out.exists()
    lines = r.err.splitlines()
    assert lines[0] == "expr:1:18: unknown function 'lgo' (did you mean 'log'?): the functions are the ops" \
        " (`cg ops` lists them) [CG101]"
    assert lines[1:] == ["  log(3*x**2 + 5*x*lgo(y))", "  " + " " * 17 + "^"]
    assert list(tmp_path.iterdir()) == []
    r = cg("new", "--expr", "__import__('os').system('touch pwned')")
    assert r.code == 1 and "expr:1:1: unknown function '__import__'" in r.err and not (ROOT / "pwned").exists()


def test_cg_new_output_node_and_usage_errors() -> None:
    assert [n.id for n in new("--expr", "x*y", "--output-node", "prod").nodes] == ["prod"]
    # z is an input: the last node keeps its letter
    assert new("--expr", "x*y*z").outputs == ("a",)
    r = CliRunner().invoke(main, ["new", "--expr", "x*y", "--output-node", "y"])
    assert r.exit_code == 2 and "is a name in the expression" in r.output
    r = CliRunner().invoke(main, ["new", "--expr", "x*y", "--output-node", "1a"])
    assert r.exit_code == 2
    r = CliRunner().invoke(main, ["new", "--expr", "x*y", "--inputs", "q=1"])
    assert r.exit_code == 2 and "'q' is not a name in the expression" in r.output
    assert CliRunner().invoke(main, ["new"]).exit_code == 2


def test_cg_new_inputs_shapes_and_integer_indices() -> None:
    g = new("--expr", "sum(v @ W + b)", "--shape", "v=[3],W=[3,2]", "--inputs", "b=[1,2]")
    assert g.avals["W"].shape == (3, 2) and g.avals["b"].shape == (2,)
    r = cglib.run(g, {"v": np.ones(3), "W": np.ones((3, 2))})
    assert float(r.value("z")) == 9.0
    g = new("--expr", "index(v, i)", "--inputs", "v=[1,2,3]")
    assert g.avals["i"].dtype == "int" and float(cglib.run(g, {"i": 2}).value("z")) == 3.0
    r = CliRunner().invoke(main, ["new", "--expr", "sum(v, axis=0)"])  # v is a scalar: shape error, placed
    assert r.exit_code == 1 and r.stderr.startswith("expr:1:1: node 'z': sum: axis 0") and "--shape" in r.stderr


# ---- the node scheme ------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "nodes"), [
    ("x + y + 1", [("a", "add", ("x", "y", 1))]),
    ("x - y - 1", [("a", "sub", ("x", "y")), ("b", "sub", ("a", 1))]),
    ("x / y", [("a", "div", ("x", "y"))]),
    ("x @ y", [("a", "matmul", ("x", "y"))]),
    ("x ** 3", [("a", "pow", ("x", 3))]),
    ("x ** 2.0", [("a", "square", ("x",))]),
    ("2 ** x", [("a", "pow", (2, "x"))]),
    ("x ** -0.5", [("a", "pow", ("x", -0.5))]),
    ("-x", [("a", "neg", ("x",))]),
    ("-3 * x", [("a", "mul", (-3, "x"))]),
    ("+x * y", [("a", "mul", ("x", "y"))]),
    ("x * y * w", [("a", "mul", ("x", "y", "w"))]),
    ("2 * x * 3 * y", [("a", "mul", ("x", "y")), ("b", "mul", (2, 3, "a"))]),
    ("x * (y * w)", [("a", "mul", ("y", "w")), ("b", "mul", ("x", "a"))]),  # grouping kept
    ("2 * 3", [("a", "mul", (2, 3))]),
    ("x * x", [("a", "mul", ("x", "x"))]),
    ("a * b + c", [("d", "mul", ("a", "b")), ("e", "add", ("d", "c"))]),  # free names are skipped
    ("maximum(x, 0) + minimum(x, 0)",
     [("a", "maximum", ("x", 0)), ("b", "minimum", ("x", 0)), ("c", "add", ("a", "b"))]),
    ("add(x, y, 1) * mul(x, y)", [("a", "add", ("x", "y", 1)), ("b", "mul", ("x", "y")), ("c", "mul", ("a", "b"))]),
    ("pow(x, 2)", [("a", "pow", ("x", 2))]),  # only ** 2 becomes square
    ("exp(exp)", [("a", "exp", ("exp",))]),  # a name may be spelled like an op
    ("  x\n *\ty", [("a", "mul", ("x", "y"))]),
])
def test_node_scheme(text: str, nodes: list[tuple[str, str, tuple[Any, ...]]]) -> None:
    assert shape_of(parse_expr(text)) == nodes


def test_keyword_attributes_become_attributes() -> None:
    g = parse_expr("sum(v, axis=[0, 1], keepdims=True) + mean(v, axis=(0,)) + max(v, axis=None)")
    assert [n.attrs for n in g.nodes] == [{"axis": [0, 1], "keepdims": True}, {"axis": [0]}, {"axis": None}, {}]
    assert parse_expr("reshape(W, shape=[-1, 2])").nodes[0].attrs == {"shape": [-1, 2]}
    assert parse_expr("softmax(v, axis=-1)").nodes[0].attrs == {"axis": -1}


def test_ids_default_scheme_custom_names_reserved_and_known() -> None:
    assert [default_name(i) for i in (0, 25, 26, 27, 51, 52, 701, 702)] == \
        ["a", "z", "aa", "ab", "az", "ba", "zz", "aaa"]
    big = parse_expr(" + ".join(f"sin(x{i})" for i in range(30)))
    assert [n.id for n in big.nodes][24:] == ["y", "z", "aa", "ab", "ac", "ad", "ae"]
    assert parse_expr("x*y + 1", reserved=("a",)).output == "c"
    g = parse_expr("x*y + 1", names=lambda i: f"n_{i}")
    assert shape_of(g) == [("n_0", "mul", ("x", "y")), ("n_1", "add", ("n_0", 1))] and g.output == "n_1"
    assert error("x*y + 1", names=lambda i: "x").code == "CG111"
    assert error("x*y + 1", names=lambda i: "n").code == "CG111"
    assert parse_expr("x*y", known={"x", "y"}).inputs == ("x", "y")
    e = error("x*yy + 1", known={"x", "y"})
    assert (e.code, e.col, e.message) == ("CG110", 3, "unknown name 'yy' (did you mean 'y'?)")


def test_numbers_of_every_op_family_match_the_registry() -> None:
    """Every op, called by its name, gives the op's own forward value (the allow-list is the registry)."""
    v = np.array([0.5, 1.5, 2.0])
    w = np.array([1.0, -2.0, 3.0])
    tried = set()
    for op in REGISTRY.values():
        if any(a.required for a in op.attrs.values()) or op.int_args:
            continue
        args = ["v", "w", "v"][: op.arity[0]]
        g = new("--expr", f"{op.name}({', '.join(args)})", "--shape", ",".join(f"{a}=[3]" for a in set(args)))
        want = op.forward(*[{"v": v, "w": w}[a] for a in args])
        got = cglib.run(g, {a: {"v": v, "w": w}[a] for a in args}, seed=np.ones(np.shape(want)))
        np.testing.assert_allclose(got.value("z"), want)
        tried.add(op.name)
    assert len(tried) >= 25
    W = np.arange(6.0).reshape(2, 3)
    cases = {
        "sum(W, axis=0, keepdims=True)": W.sum(axis=0, keepdims=True),
        "transpose(W, axes=[1, 0]) @ v": W.T @ v[:2],
        "reshape(W, shape=[3, -1])": W.reshape(3, -1),
        "index(W, 2)": W[..., 2],
        "softmax(W, axis=0)": np.exp(W) / np.exp(W).sum(axis=0),
        "x ** 3 - 2 / x + -x": 8 - 1 - 2.0,
    }
    values = {"W": W, "v": v[:2], "x": np.float64(2.0)}
    for text, want in cases.items():
        used = parse_expr(text).inputs
        g = new("--expr", text, "--shape", ",".join(f"{k}={list(values[k].shape)}".replace(" ", "") for k in used))
        r = cglib.run(g, {k: values[k] for k in used}, seed=np.ones(np.shape(want)))
        np.testing.assert_allclose(r.value("z"), want)


# ---- what is refused, and where -------------------------------------------------------------------


@pytest.mark.parametrize(("text", "code", "col", "says"), [
    ("x.exp", "CG601", 3, "attribute access (.exp)"),
    ("np.exp(x)", "CG601", 4, "attribute access"),
    ("x[0]", "CG601", 2, "index(v, i)"),
    ("lambda: 1", "CG601", 1, "lambda"),
    ("[i for i in x]", "CG601", 1, "comprehension"),
    ("sum(i for i in x)", "CG601", 4, "comprehension"),
    ("'x'", "CG601", 1, "strings"),
    ("f'{x}'", "CG601", 1, "f-string"),
    ("x < y", "CG601", 3, "comparisons"),
    ("x + (y >= 1)", "CG601", 8, "comparisons"),
    ("x and y", "CG601", 3, "'and' and 'or'"),
    ("not x", "CG601", 1, "'not'"),
    ("~x", "CG601", 1, "'~'"),
    ("x if y else 1", "CG601", 1, "conditional"),
    ("(y := 2)", "CG601", 2, "assignment"),
    ("x // y", "CG601", 3, "//"),
    ("x % y", "CG601", 3, "%"),
    ("x ^ 2", "CG601", 3, "x**2"),
    ("x | y", "CG601", 3, "|"),
    ("x * True", "CG601", 5, "attribute (keepdims=True)"),
    ("None", "CG601", 1, "None"),
    ("1j * x", "CG601", 1, "complex"),
    ("[1, 2]", "CG601", 1, "a list"),
    ("x, y", "CG601", 1, "a tuple"),
    ("{1: 2}", "CG601", 1, "a dict"),
    ("log(*x)", "CG601", 5, "unpacking (*)"),
    ("sum(x, **k)", "CG601", 8, "unpacking (**)"),
    ("(log)(x)(y)", "CG601", 9, "write (log)(x)*(y)"),
    ("x # comment", "CG601", 3, "comments"),
    ("log(x).y + lgo(x)", "CG601", 8, "attribute access (.y)"),  # the leftmost problem is the one reported
    ("lgo(x) // 2", "CG101", 1, "unknown function 'lgo'"),
    ("x // y // lgo(z)", "CG601", 3, "//"),
    ("__import__('os').system('ls')", "CG101", 1, "unknown function '__import__'"),
    ("lgo(x)", "CG101", 1, "unknown function 'lgo' (did you mean 'log'?)"),
    ("2 * Exp(x)", "CG101", 5, "(did you mean 'exp'?)"),
    ("min(x, y)", "CG101", 1, "(did you mean 'minimum'?)"),
    ("ln(x)", "CG101", 1, "(did you mean 'log'?)"),
    ("__import__('os')", "CG101", 1, "unknown function '__import__'"),
    ("eval('1')", "CG101", 1, "unknown function 'eval'"),
    ("max(x, y)", "CG102", 1, "maximum(a, b)"),
    ("sum(v, 0)", "CG102", 1, "attributes are keywords"),
    ("log()", "CG102", 1, "log takes 1 input, got 0"),
    ("x + pow(x)", "CG102", 5, "pow takes 2 inputs, got 1"),
    ("sum(v, axes=0)", "CG103", 8, "(did you mean 'axis'?)"),
    ("exp(v, axis=0)", "CG103", 8, "its attributes: none"),
    ("sum(v, axis=1.5)", "CG100", 13, "axis=1.5 does not fit"),
    ("sum(v, keepdims=1)", "CG100", 17, "keepdims=1 does not fit"),
    ("sum(v, axis=x)", "CG100", 13, "takes a number"),
    ("reshape(v)", "CG100", 1, "needs the attribute shape="),
    ("x", "CG602", 1, "has no operation"),
    ("  -3", "CG602", 3, "has no operation"),
    ("x * 1e999", "CG007", 5, "not finite"),
    ("x * 99999999999999999999", "CG007", 5, "out of range"),
    ("x * 2²", "CG600", 6, "ASCII"),
    ("x\x00", "CG600", 2, "ASCII"),
    ("", "CG600", 1, "empty"),
    ("x = 1", "CG600", 3, "syntax error"),
    ("log(x", "CG600", 4, "syntax error: '(' was never closed"),
    ("import os", "CG600", 1, "syntax error"),
])
def test_refused_with_code_and_column(text: str, code: str, col: int, says: str) -> None:
    e = error(text)
    assert (e.code, e.col) == (code, col), e.message
    assert says in e.message
    assert str(e) == f"expr:1:{col}: {e.message}"  # a GraphError: the CLI prints it like any diagnostic


@pytest.mark.parametrize(("text", "code", "col", "says"), [
    ("2x + 1", "CG600", 1, "'2x' is not a product: write 2*x"),
    ("x*2y", "CG600", 3, "write 2*y"),
    ("log(3x**2 + 5*x*y)", "CG600", 5, "write 3*x"),
    ("2.5x", "CG600", 1, "write 2.5*x"),
    ("1e3x", "CG600", 1, "write 1e3*x"),
    ("2(x + 1)", "CG601", 2, "write 2*(x + 1)"),
    ("(x+1)(x-1)", "CG601", 6, "write (x+1)*(x-1)"),
    ("x(y + 1)", "CG101", 1, "to multiply, write x*(y + 1)"),
    ("e**x", "CG601", 1, "did you mean exp(x)?"),
    ("e^x", "CG601", 1, "did you mean exp(x)?"),
    ("y + e**(2*x)", "CG601", 5, "did you mean exp(2*x)?"),
])
def test_what_students_write_gets_what_they_meant(text: str, code: str, col: int, says: str) -> None:
    """Implicit products and Euler's e: Python reads them otherwise; the message says what to write."""
    e = error(text)
    assert (e.code, e.col) == (code, col), e.message
    assert says in e.message, e.message


def test_hints_stay_out_of_the_way() -> None:
    assert parse_expr("x*0x1f").inputs == ("x",)  # a hex number is a number, not 0 times x1f
    assert "to multiply" not in error("lgo(x)").message  # a near op name is the better hint
    assert parse_expr("e**x", known={"e", "x"}).inputs == ("e", "x")  # a graph's own node named e
    assert parse_expr("e*x").inputs == ("e", "x")  # e is only suspicious as a base
    assert "exp(x)" not in error("x^2").message and "x**2" in error("x^2").message


def test_forbidden_syntax_says_what_is_allowed() -> None:
    assert "allowed: numbers, names, + - * / ** @" in error("x.y").message
    assert "`cg ops` lists them" in error("foo(x)").message


def test_eval_is_never_used(monkeypatch: pytest.MonkeyPatch) -> None:
    source = (ROOT / "cg" / "graph" / "expr.py").read_text() + (ROOT / "cg" / "cli" / "new.py").read_text()
    assert not re.search(r"(?<![.\w])(eval|exec|literal_eval|compile|__import__)\(", source)  # re.compile is fine

    def trap(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("eval/exec called")

    monkeypatch.setattr(builtins, "eval", trap)
    monkeypatch.setattr(builtins, "exec", trap)
    for text in ("__import__('os').system('echo pwned')", "().__class__.__bases__[0].__subclasses__()",
                 "open('/etc/passwd')", "globals()"):
        assert error(text).code in ("CG101", "CG601")
    assert parse_expr(SEED).output == "f"


def test_deep_nesting_and_long_text_are_bounded() -> None:
    e = error("x" * (MAX_CHARS + 1))
    assert (e.code, e.col) == ("CG004", MAX_CHARS + 1)
    assert error("-" * (MAX_DEPTH + 10) + "x").code == "CG004"  # ours: our walk is not recursive anyway
    # Python's parser stops at 200 nested brackets with a syntax error: the README promises the depth limit.
    for text in ("exp(" * (MAX_DEPTH + 10) + "x" + ")" * (MAX_DEPTH + 10), "(" * 1000 + "x" + ")" * 1000,
                 "-" * 5000 + "x", "x**" * 3000 + "x", "sum(v, axis=" + "[" * 500 + "]" * 500 + ")"):
        assert len(text) <= MAX_CHARS
        e = error(text)
        assert e.code == "CG004" and "nested" in str(e), (text[:20], e)
    assert error("+".join(["x"] * 4999)).code in ("CG004", "CG100")  # long, not deep
    assert len(parse_expr(" + ".join(["x"] * 1000)).nodes) == 1  # a long chain is one add, not deep
    r = cg("new", "--expr", "-" * 5000 + "x")
    assert r.code == 1 and r.err.startswith("expr:1:")
