"""`cg validate` on the bad-input corpus (tests/bad/) and the good one (tests/good/, graphs/).

Every file in tests/bad/ has its expected diagnostics in BAD, one table: file name ->
(code, line, col, node or None, message substring), or a list of them, in file order, for a
file with several problems. The tests run the real command line and check the exact
`file:line:col: node 'x': ` prefix, the code, the message, the exit code, and that no
traceback is ever printed.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import GRAPHS, ROOT, cg

from cg.cli import main

BAD_DIR = ROOT / "tests" / "bad"
GOOD_DIR = ROOT / "tests" / "good"

Expected = tuple[str, int, int, str | None, str]

# fmt: off
BAD: dict[str, Expected | list[Expected]] = {
    # -- YAML and bytes: CG002-CG007 --
    "empty.yaml": ("CG003", 1, 1, None, "empty file: expected a mapping with 'cg: 1'"),
    "only_comments.yaml": ("CG003", 1, 1, None, "empty file"),
    "list_file.yaml": ("CG003", 2, 1, None, "expected a mapping at the top level (like 'cg: 1'), found a list"),
    "scalar_file.yaml": ("CG003", 2, 1, None, "found a scalar"),
    "yaml_syntax.yaml": ("CG003", 6, 1, None, "flow mapping started at line 5, column 6"),
    "tabs.yaml": ("CG003", 5, 1, None, "tab character; indent with spaces, not tabs"),
    "two_documents.yaml": ("CG003", 7, 1, None, "more than one YAML document ('---')"),
    "non_utf8.yaml": ("CG002", 3, 9, None, "not UTF-8 text (invalid byte 0xe9 at line 3, column 9)"),
    "alias.yaml": ("CG005", 4, 6, None, "YAML anchors (&one) and aliases are not supported"),
    "tag.yaml": ("CG005", 4, 6, None, "tag !!python/object:os.system is not supported"),
    "duplicate_key.yaml": ("CG006", 6, 3, None, "duplicate key 'a' (first at line 5)"),
    "nan_value.yaml": ("CG007", 4, 6, None, "non-finite numbers (.nan, .inf) are not allowed"),
    "inf_constant.yaml": ("CG007", 5, 24, None, "non-finite numbers"),
    "huge_number.yaml": ("CG007", 4, 6, None, "number out of range: 1e999"),
    "long_integer.yaml": ("CG007", 4, 6, None, "number too long (101 digits; at most 100)"),
    "deep_nesting.yaml": ("CG004", 4, 68, None, "nesting is deeper than 64 levels; flatten the structure"),
    "nul_byte.yaml": ("CG002", 4, 9, None, "binary file, not text (NUL byte at line 4, column 9)"),
    "utf16.yaml": ("CG002", 1, 1, None, "file is UTF-16 text; save it as UTF-8"),
    "control_char.yaml": ("CG002", 6, 34, None, "control character U+0007 at line 6, column 34 is not allowed in YAML"),
    "list_as_key.yaml": ("CG003", 4, 3, None, "a list or mapping cannot be a mapping key; use a plain name"),
    # -- the top level --
    "missing_cg.yaml": ("CG100", 2, 1, None, "missing 'cg: 1' (the format version)"),
    "cg_version_2.yaml": ("CG100", 2, 5, None, "unsupported format version 2: this cg reads 'cg: 1'"),
    "missing_nodes.yaml": ("CG100", 2, 1, None, "missing required key 'nodes'"),
    "missing_outputs.yaml": ("CG100", 2, 1, None, "missing required key 'outputs'"),
    "empty_nodes.yaml": ("CG100", 4, 8, None, "'nodes' is empty: a graph needs at least one node"),
    "empty_outputs.yaml": ("CG100", 6, 10, None, "'outputs' is empty: a graph needs at least one output"),
    "outputs_not_list.yaml": ("CG100", 6, 10, None, "'outputs': expected a list, got the string 'n'"),
    "duplicate_output.yaml": ("CG100", 6, 14, None, "output 'n' is listed twice"),
    "unknown_top_key.yaml": ("CG100", 7, 1, None, "unknown key 'output' (did you mean 'outputs'?)"),
    "name_not_string.yaml": ("CG100", 3, 7, None, "'name': expected a string, got a list"),
    # -- names --
    "bad_name_digit.yaml": ("CG100", 5, 3, "1x", "'1x' is not a valid name: names use letters, digits and _"),
    "bad_name_dash.yaml": ("CG100", 5, 3, "a-b", "'a-b' is not a valid name: names use letters, digits and _, and do not start with a digit (e.g. 'a_b')"),  # noqa: E501
    "bad_output_name.yaml": ("CG100", 6, 11, None, "'n + 1' is not a valid name"),
    "ref_bad_name.yaml": ("CG100", 5, 21, "n", "'x-1' is not the name of an input or node"),
    # -- inputs --
    "input_unknown_key.yaml": ("CG100", 4, 26, "v", "unknown key 'shpe' (did you mean 'shape'?) (allowed: value, file, key, shape, dtype, doc)"),  # noqa: E501
    "dtype_double.yaml": ("CG100", 4, 26, "x", "'dtype': expected one of float, int, got the string 'double'"),
    "shape_negative.yaml": ("CG100", 4, 18, "v", "'shape[1]': must be 0 or more, got -3"),
    "shape_not_list.yaml": ("CG100", 4, 14, "v", "'shape': expected a list, got the number 3"),
    "yes_number.yaml": ("CG100", 4, 14, "x", "'value': expected a number or a nested list of numbers, got the string 'yes' (YAML 1.2 reads yes as text"),  # noqa: E501
    "value_shape_mismatch.yaml": ("CG120", 4, 14, "v", "value has shape [3] but shape says [2]"),
    "ragged_input.yaml": ("CG104", 4, 19, "W", "value is not rectangular: this row has 1 entry, the first row has 2"),
    "int_input_float.yaml": ("CG104", 5, 26, "i", "dtype is int, but 2.5 is not a whole number"),
    # -- nodes: op, in, attributes --
    "unknown_op.yaml": ("CG101", 5, 11, "e", "unknown op 'ad' (did you mean 'add'?)"),
    "unknown_op_no_match.yaml": ("CG101", 5, 11, "e", "unknown op 'frobnicate' (`cg ops` lists the ops)"),
    "op_not_string.yaml": ("CG100", 5, 11, "n", "'op': expected the name of an op (`cg ops` lists them), got the number 3"),  # noqa: E501
    "node_missing_op.yaml": ("CG100", 5, 3, "n", "missing required key 'op'"),
    "node_missing_in.yaml": ("CG100", 5, 3, "n", "missing required key 'in'"),
    "node_not_mapping.yaml": ("CG100", 5, 6, "n", "expected a mapping like {op: neg, in: [x]}, got the string 'neg'"),
    "in_not_list.yaml": ("CG100", 5, 20, "n", "'in': expected a list, got the string 'x'"),
    "arity_too_few.yaml": ("CG102", 5, 20, "s", "op 'add' takes 2 or more inputs, got 1"),
    "arity_too_many.yaml": ("CG102", 5, 20, "n", "op 'neg' takes 1 input, got 2"),
    "arity_binary_three.yaml": ("CG102", 7, 9, "d", "op 'sub' takes 2 inputs, got 3"),
    "unknown_attr.yaml": ("CG103", 5, 25, "s", "unknown attribute 'axes' for op 'sum' (did you mean 'axis'?) (allowed: axis, keepdims)"),  # noqa: E501
    "attr_on_op_without_attrs.yaml": ("CG103", 8, 5, "e", "unknown attribute 'axis': op 'exp' has no attributes"),
    "attr_axis_string.yaml": ("CG100", 5, 31, "s", "'axis': expected an integer, a list of integers or null, got the string 'x'"),  # noqa: E501
    "attr_keepdims_int.yaml": ("CG100", 5, 35, "s", "'keepdims': expected true or false, got the number 3"),
    "yes_keepdims.yaml": ("CG100", 5, 35, "s", "got the string 'yes' (YAML 1.2 reads yes as text; write true)"),
    "attr_softmax_axis_float.yaml": ("CG100", 5, 35, "p", "'axis': expected an integer, got the number 1.5"),
    "reshape_no_shape.yaml": ("CG100", 5, 3, "r", "missing required key 'shape'"),
    "ragged_constant.yaml": ("CG104", 5, 33, "m", "constant is not rectangular: this row has 1 entry, the first row has 2"),  # noqa: E501
    "constant_with_string.yaml": ("CG104", 5, 28, "m", "a constant holds only numbers, not the string 'y'"),
    # -- references, names used twice, cycles, outputs --
    "undefined_ref.yaml": ("CG110", 5, 24, "m", "'wieght' is not an input or node (did you mean 'weight'?)"),
    "input_and_node.yaml": ("CG111", 6, 3, "x", "'x' is both an input and a node; names must be unique"),
    "cycle2.yaml": ("CG112", 5, 3, "a", "cycle: a -> b -> a"),
    "cycle3.yaml": ("CG112", 5, 3, "a", "cycle: a -> b -> c -> a"),
    "self_loop.yaml": ("CG112", 5, 3, "a", "cycle: a -> a"),
    "output_missing.yaml": ("CG113", 6, 14, None, "output 'z' is not an input or node"),
    # -- shapes and dtypes --
    "matmul_inner.yaml": ("CG120", 7, 3, "Wx", "matmul of [10, 784] by [783]: inner dimensions differ (784 vs 783)"),
    "matmul_scalar.yaml": ("CG120", 5, 3, "m", "matmul needs inputs with at least one dimension"),
    "broadcast.yaml": ("CG120", 7, 3, "s", "add: cannot broadcast shapes [2, 3] and [4]"),
    "broadcast_constant.yaml": ("CG120", 6, 3, "s", "cannot broadcast shapes [3] and [2]"),
    "sum_axis_range.yaml": ("CG120", 6, 3, "s", "sum: axis 2 is out of range for an input with 2 dimensions"),
    "transpose_perm.yaml": ("CG120", 6, 3, "t", "axes [0, 0, 1] is not a permutation of the 3 axes"),
    "reshape_size.yaml": ("CG120", 6, 3, "r", "cannot reshape [2, 3] (6 values) to [4, 2]"),
    "softmax_scalar.yaml": ("CG120", 5, 3, "p", "softmax: needs an input with at least one dimension"),
    "index_float.yaml": ("CG121", 7, 26, "p", "op 'index' needs an integer as input 2"),
    "index_float_literal.yaml": ("CG121", 6, 26, "p", "op 'index' needs an integer as input 2"),
    "index_shape.yaml": ("CG120", 7, 3, "p", "index of [4, 5] by [3]: the index must be a scalar or have shape [4]"),
    # -- functions and imports (more in tests/graph/test_functions.py) --
    "fn_recursion.yaml": ("CG130", 8, 15, "b", "recursion: f -> g -> f; a function cannot call itself"),
    "fn_unknown.yaml": ("CG101", 11, 11, "y", "unknown op or function 'doubel' (did you mean 'double'?)"),
    "fn_arity.yaml": ("CG102", 12, 23, "h", "function 'affine' takes 3 inputs (W, x, b), got 2 (defined at "),
    "fn_body_shape.yaml": ("CG120", 8, 7, "h/Wx", "matmul of [1, 2] by [3]: inner dimensions differ (2 vs 3); in function 'affine' called at "),  # noqa: E501
    "fn_unknown_op_in_body.yaml": ("CG101", 8, 15, "b", "unknown op or function 'ad' (did you mean 'add'?)"),
    "fn_attribute.yaml": ("CG103", 11, 27, "t", "unknown attribute 'axis': function 'total' takes no attributes"),
    "fn_output_missing.yaml": ("CG113", 9, 13, None, "output 'c' is not a node of function 'f'"),
    "fn_named_like_op.yaml": ("CG132", 5, 3, None, "function 'sigmoid' has the name of a built-in op"),
    "import_missing.yaml": ("CG131", 3, 11, None, "cannot import 'no_such_library.yaml': no such file"),
    "import_graph.yaml": ("CG131", 3, 11, None, "'matmul_inner.yaml' is not a library"),
    "import_outside.yaml": ("CG131", 3, 11, None, "cannot import '../../graphs/neuron.yaml': it is outside"),
    "import_self.yaml": ("CG131", 3, 11, None, "import cycle: "),
    # -- several problems in one file: all of them, in file order --
    "multi_errors.yaml": [
        ("CG101", 7, 11, "a", "unknown op 'ad' (did you mean 'add'?)"),
        ("CG110", 8, 21, "b", "'y' is not an input or node"),
        ("CG120", 9, 3, "c", "matmul of [2, 4] by [3]: inner dimensions differ"),
        ("CG113", 11, 14, None, "output 'z' is not an input or node"),
    ],
    "multi_out_of_order.yaml": [  # found by checks that run in another order than the lines
        ("CG120", 6, 3, "s", "axis 5 is out of range"),
        ("CG112", 7, 3, "a", "cycle: a -> b -> a"),
        ("CG120", 9, 3, "t", "axes [0, 0] is not a permutation"),
        ("CG110", 10, 24, "u", "'q' is not an input or node"),
        ("CG103", 11, 25, "w", "op 'log' has no attributes"),
    ],
    "multi_yaml.yaml": [
        ("CG007", 4, 6, None, "non-finite numbers"),
        ("CG007", 5, 6, None, "number out of range: 1e999"),
        ("CG006", 6, 3, None, "duplicate key 'x' (first at line 4)"),
    ],
}

# The text each diagnostic must point at: the key of the node for node-level errors, the
# offending element (argument, entry, attribute) for the others.
POINTS_AT: dict[str, str | list[str]] = {
    "unknown_op.yaml": "ad,", "undefined_ref.yaml": "wieght]", "unknown_attr.yaml": "axes:",
    "attr_axis_string.yaml": '"x"', "attr_keepdims_int.yaml": "3}", "yes_keepdims.yaml": "yes}",
    "cycle2.yaml": "a:", "cycle3.yaml": "a:", "self_loop.yaml": "a:", "input_and_node.yaml": "x:",
    "matmul_inner.yaml": "Wx:", "broadcast.yaml": "s:", "index_float.yaml": "i]", "index_float_literal.yaml": "1.0]",
    "ragged_constant.yaml": "[3]", "ragged_input.yaml": "[3.0]", "constant_with_string.yaml": "y]",
    "int_input_float.yaml": "2.5}", "shape_negative.yaml": "-3]", "duplicate_output.yaml": "n]",
    "output_missing.yaml": "z]", "dtype_double.yaml": "double}", "input_unknown_key.yaml": "shpe:",
    "node_missing_op.yaml": "n:", "reshape_no_shape.yaml": "r:", "bad_name_digit.yaml": "1x:",
    "bad_name_dash.yaml": "a-b:", "unknown_top_key.yaml": "output:", "arity_too_few.yaml": "[x]",
    "duplicate_key.yaml": "a:", "huge_number.yaml": "1e999", "nan_value.yaml": ".nan", "alias.yaml": "&one",
    "tabs.yaml": "\t", "value_shape_mismatch.yaml": "[1.0, 2.0, 3.0]",
    "fn_recursion.yaml": "g,", "fn_unknown.yaml": "doubel,", "fn_arity.yaml": "[W, x]", "fn_body_shape.yaml": "Wx:",
    "fn_unknown_op_in_body.yaml": "ad,", "fn_attribute.yaml": "axis:", "fn_output_missing.yaml": "c",
    "fn_named_like_op.yaml": "sigmoid:", "import_missing.yaml": "no_such_library.yaml]",
    "import_graph.yaml": "matmul_inner.yaml]", "import_outside.yaml": "../../graphs/neuron.yaml]",
    "import_self.yaml": "import_self.yaml]",
    "multi_errors.yaml": ["ad,", "y]", "c:", "z]"],
    "multi_out_of_order.yaml": ["s:", "a:", "t:", "q]", "axis:"],
}
# fmt: on

LINE = re.compile(
    r"(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?:node '(?P<node>[^']*)': )?(?P<msg>.*) \[(?P<code>CG\d{3})\]"
)


def expectations(name: str) -> list[Expected]:
    entry = BAD[name]
    return entry if isinstance(entry, list) else [entry]


def validate(*args: str) -> Any:
    """`cg validate` in-process (fast enough for the whole corpus); output is not a terminal, so plain lines."""
    result = CliRunner().invoke(main, ["validate", *args])
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    # Any exception other than sys.exit would be a crash that a user would see as a traceback.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def diagnostics(stdout: str) -> list[re.Match[str]]:
    lines = stdout.splitlines()
    matches = [LINE.fullmatch(line) for line in lines]
    assert all(matches), f"a line without file:line:col: ... [CODE]:\n{stdout}"
    return matches  # type: ignore[return-value]


def check_line(line: str, path: str, expected: Expected) -> None:
    code, lineno, col, node, text = expected
    prefix = f"{path}:{lineno}:{col}: " + (f"node '{node}': " if node else "")
    assert line.startswith(prefix), f"expected the prefix {prefix!r} in\n{line}"
    if node is None:
        assert not line[len(prefix) :].startswith("node '"), line
    assert line.endswith(f" [{code}]"), line
    assert text in line, f"expected {text!r} in\n{line}"
    # The checkout's folder can be any length (CI's is longer than ours): count it as one word.
    message = line[len(prefix) : -len(f" [{code}]")].replace(os.path.dirname(path), "DIR")
    assert len(message) < 200, f"message of {len(message)} characters: {message}"


# ---------------------------------------------------------------- the bad corpus


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_file(name: str) -> None:
    path = str(BAD_DIR / name)
    result = validate(path)
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    expected = expectations(name)
    assert len(lines) == len(expected), f"expected {len(expected)} diagnostic(s), got:\n{result.stdout}"
    for line, exp in zip(lines, expected):
        check_line(line, path, exp)
    diagnostics(result.stdout)
    assert result.stderr.strip().endswith("0 valid, 1 invalid (1 file)")


@pytest.mark.parametrize("name", sorted(POINTS_AT))
def test_position_points_at_the_offending_token(name: str) -> None:
    source = (BAD_DIR / name).read_bytes().decode("utf-8").splitlines()
    tokens = POINTS_AT[name]
    tokens = tokens if isinstance(tokens, list) else [tokens]
    assert len(tokens) == len(expectations(name))
    for (_, line, col, _, _), token in zip(expectations(name), tokens):
        at = source[line - 1][col - 1 :]
        assert at.startswith(token), f"{name}:{line}:{col} is at {at!r}, not at {token!r}"


def test_every_bad_file_is_in_the_table() -> None:
    on_disk = {p.name for p in BAD_DIR.iterdir()}
    assert on_disk - set(BAD) == set(), "files in tests/bad/ with no expectation in BAD"
    assert set(BAD) - on_disk == set(), "expectations in BAD with no file in tests/bad/"
    assert set(POINTS_AT) <= set(BAD)
    assert len(BAD) >= 40


def test_single_problem_files_have_one_code_each() -> None:
    # One problem per file, except the multi_* files, which exist to have several.
    for name, entry in BAD.items():
        assert isinstance(entry, list) == name.startswith("multi_"), name


def test_whole_corpus_through_a_real_process() -> None:
    """The directory form, in a subprocess as a user runs it: every file, sorted, and the summary."""
    result = cg("validate", "tests/bad")
    assert result.code == 1
    expected_lines = []
    for name in sorted(BAD):
        expected_lines += [(f"tests/bad/{name}", exp) for exp in expectations(name)]
    lines = result.out.splitlines()
    assert len(lines) == len(expected_lines), result.out
    for line, (path, exp) in zip(lines, expected_lines):
        check_line(line, path, exp)
    assert result.err.strip() == f"0 valid, {len(BAD)} invalid ({len(BAD)} files)"


# ---------------------------------------------------------------- several problems in a file


def test_every_problem_is_reported_sorted_by_line(tmp_path: Path) -> None:
    """30 problems of 6 kinds, interleaved so that no check finds them in file order."""
    nodes = []
    for k in range(5):
        nodes += [
            f"  c{k}: {{op: neg, in: [d{k}]}}",  # cycle c -> d -> c
            f"  d{k}: {{op: exp, in: [c{k}]}}",
            f"  s{k}: {{op: sum, in: [v], axis: 3}}",  # shape
            f"  u{k}: {{op: mull, in: [v, v]}}",  # unknown op
            f"  r{k}: {{op: neg, in: [nope{k}]}}",  # reference
            f"  a{k}: {{op: neg, in: [v], axis: 0}}",  # attribute
        ]
    text = "cg: 1\ninputs:\n  v: {shape: [2]}\nnodes:\n" + "\n".join(nodes) + "\noutputs: [v]\n"
    path = tmp_path / "many.yaml"
    path.write_text(text)
    found = diagnostics(validate(str(path)).stdout)
    assert len(found) == 25  # a cycle is one problem, reported once at its first node
    places = [(int(m["line"]), int(m["col"])) for m in found]
    assert places == sorted(places)
    assert [m["code"] for m in found[:5]] == ["CG112", "CG120", "CG101", "CG110", "CG103"]
    assert {m["node"] for m in found} == {f"{p}{k}" for p in "csura" for k in range(5)}


def test_yaml_problems_are_all_reported_too(tmp_path: Path) -> None:
    lines = ["cg: 1", "inputs:"] + [f"  x{k}: {'.nan' if k % 2 else '1e999'}" for k in range(10)]
    path = tmp_path / "numbers.yaml"
    path.write_text("\n".join(lines) + "\nnodes: {n: {op: neg, in: [x0]}}\noutputs: [n]\n")
    found = diagnostics(validate(str(path)).stdout)
    assert [int(m["line"]) for m in found] == list(range(3, 13))
    assert {m["code"] for m in found} == {"CG007"}


# ---------------------------------------------------------------- short messages


def _big(n: int = 10_000) -> str:
    return ", ".join(str(k % 7) for k in range(n))


BIG_WRONG = {
    "value_vs_shape": f"inputs:\n  v: {{value: [{_big()}], shape: [2]}}\nnodes:\n  s: {{op: sum, in: [v]}}",
    "ragged_rows": "inputs: {x: 1.0}\nnodes:\n  m: {op: mul, in: [x, ["
    + ", ".join(f"[{_big(100 if r < 99 else 99)}]" for r in range(100))
    + "]]}",
    "name_in_constant": f"inputs: {{x: 1.0}}\nnodes:\n  m: {{op: mul, in: [x, [{_big()}, y]]}}",
    "bool_in_value": f"inputs:\n  v: [{_big()}, true]\nnodes:\n  m: {{op: neg, in: [v]}}",
    "fraction_in_int": f"inputs:\n  i: {{dtype: int, value: [{_big()}, 0.5]}}\nnodes:\n  m: {{op: neg, in: [i]}}",
    "matmul": f"inputs: {{x: [1.0, 2.0]}}\nnodes:\n  m: {{op: matmul, in: [[{_big()}], x]}}",
    "broadcast": f"inputs: {{x: [1.0, 2.0]}}\nnodes:\n  m: {{op: add, in: [[[{_big()}]], x]}}",
    "index": f"inputs: {{x: [1.0, 2.0]}}\nnodes:\n  m: {{op: index, in: [x, [{_big()}]]}}",
    "constant_as_op": f"inputs: {{x: 1.0}}\nnodes:\n  m: {{op: [{_big()}], in: [x]}}",
    "constant_as_dtype": f"inputs:\n  x: {{dtype: [{_big()}]}}\nnodes:\n  m: {{op: neg, in: [x]}}",
    "constant_as_attribute": f"inputs: {{x: [1.0]}}\nnodes:\n  m: {{op: sum, in: [x], keepdims: [{_big()}]}}",
    "transpose_axes": "inputs: {x: [1.0]}\nnodes:\n  m: {op: transpose, in: [x], axes: ["
    + ", ".join(map(str, range(10_000)))
    + "]}",
    "reshape_target": f"inputs: {{x: [1.0]}}\nnodes:\n  m: {{op: reshape, in: [x], shape: [{_big(30)}]}}",
    "input_shape": f"inputs:\n  x: {{shape: [{_big()}]}}\nnodes:\n  m: {{op: neg, in: [x]}}",
    "arity": f"inputs: {{x: 1.0}}\nnodes:\n  m: {{op: neg, in: [{_big()}]}}",
    "long_op_name": "inputs: {x: 1.0}\nnodes:\n  m: {op: " + "a" * 10_000 + ", in: [x]}",
    "long_reference": "inputs: {x: 1.0}\nnodes:\n  m: {op: neg, in: [" + "b" * 10_000 + "]}",
    "list_as_name": f"name: [{_big()}]\ninputs: {{x: 1.0}}\nnodes:\n  m: {{op: neg, in: [x]}}",
    "list_as_version": f"inputs: {{x: 1.0}}\nnodes:\n  m: {{op: neg, in: [x]}}\ncg: [{_big()}]",
}


@pytest.mark.parametrize("case", sorted(BIG_WRONG))
def test_messages_stay_short_for_a_10000_element_mistake(tmp_path: Path, case: str) -> None:
    path = tmp_path / "big.yaml"
    header = "" if case == "list_as_version" else "cg: 1\n"
    path.write_text(f"{header}{BIG_WRONG[case]}\noutputs: [m]\n")
    result = validate(str(path))
    assert result.exit_code == 1
    found = diagnostics(result.stdout)
    assert found, result.stdout
    for m in found:
        assert len(m["msg"]) < 200, m["msg"]
        assert len(m.group(0)) - len(str(path)) < 230, m.group(0)


def test_long_cycles_are_named_briefly(tmp_path: Path) -> None:
    n = 500
    nodes = "\n".join(f"  n{k}: {{op: neg, in: [n{(k + 1) % n}]}}" for k in range(n))
    path = tmp_path / "ring.yaml"
    path.write_text(f"cg: 1\nnodes:\n{nodes}\noutputs: [n0]\n")
    (found,) = diagnostics(validate(str(path)).stdout)
    assert found["code"] == "CG112" and found["node"] == "n0" and len(found["msg"]) < 200
    assert found["msg"].startswith("cycle: n0 -> n499 -> n498 -> ... -> n0 (500 nodes)")


# ---------------------------------------------------------------- one root cause, one diagnostic


def _broken_copy(tmp_path: Path, source: Path, mistake: str) -> Path:
    """A copy of an example graph (its folder too, so imports resolve) with one mistake in its first node."""
    folder = tmp_path / "graphs"
    shutil.copytree(GRAPHS, folder)
    path = folder / source.name
    text = path.read_text(encoding="utf-8")
    m = re.search(r"^  (\w+): \{op: (\w+), in: \[([^\]]*)\]", text, flags=re.M)
    assert m is not None, source
    if mistake == "op typo":
        text = text[: m.start(2)] + m.group(2) + "x" + text[m.end(2) :]
    else:  # matmul of the first argument by a vector that fits nothing in these graphs
        first = m.group(3).split(",")[0].strip()
        line_end = text.index("\n", m.start())
        wrong = f"  {m.group(1)}: {{op: matmul, in: [{first}, [1, 2, 3, 4, 5, 6, 7]]}}"
        text = text[: m.start()] + wrong + text[line_end:]
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("mistake", ["op typo", "shape"])
@pytest.mark.parametrize("source", sorted(GRAPHS.glob("*.yaml")), ids=lambda p: p.name)
def test_one_mistake_gives_one_diagnostic(tmp_path: Path, source: Path, mistake: str) -> None:
    # Every example graph has an `expect` block naming nodes downstream of the mistake: none of them
    # may be reported as missing (they were not built because of the one real problem).
    path = _broken_copy(tmp_path, source, mistake)
    for fmt in ("plain", "github"):
        result = validate("-f", fmt, str(path))
        lines = result.stdout.splitlines()
        assert len(lines) == 1, result.stdout
        assert ("CG101" if mistake == "op typo" else "CG120") in lines[0], lines[0]


def test_a_real_mistake_in_the_expect_block_is_still_reported(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("cg: 1\ninputs: {x: 1.0}\nnodes:\n  y: {op: sin, in: [x]}\n  h: {op: exp, in: [y]}\n"
                    "outputs: [h]\nexpect:\n  of: hh\n  values: {yy: 1.0}\n", encoding="utf-8")
    lines = validate(str(path)).stdout.splitlines()
    assert len(lines) == 2 and all("is not an input or node" in line for line in lines), lines


# ---------------------------------------------------------------- good files and the command line


def test_example_graphs_validate() -> None:
    result = cg("validate", "graphs")
    count = len(list(GRAPHS.rglob("*.yaml")))
    assert count >= 10
    assert (result.code, result.out) == (0, "")
    assert result.err.strip() == f"{count} valid, 0 invalid ({count} files)"


@pytest.mark.parametrize("path", sorted(GRAPHS.glob("*.yaml")) + sorted(GOOD_DIR.glob("*.y*ml")), ids=lambda p: p.name)
def test_each_good_file_validates(path: Path) -> None:
    result = validate(str(path))
    assert (result.exit_code, result.stdout) == (0, ""), result.stdout


def test_directory_finds_yaml_and_yml_recursively(tmp_path: Path) -> None:
    shutil.copy(GRAPHS / "logreg.yaml", tmp_path / "a.yaml")
    (tmp_path / "sub").mkdir()
    shutil.copy(BAD_DIR / "unknown_op.yaml", tmp_path / "sub" / "b.yml")
    (tmp_path / "notes.txt").write_text("cg: 2\n")  # neither .yaml nor .yml: not a graph file
    result = validate(str(tmp_path))
    assert result.exit_code == 1
    (found,) = diagnostics(result.stdout)
    assert found["file"] == str(tmp_path / "sub" / "b.yml") and found["code"] == "CG101"
    assert result.stderr.strip().endswith("1 valid, 1 invalid (2 files)")


def test_good_directory_is_exit_0() -> None:
    result = cg("validate", "tests/good", "graphs/logreg.yaml")
    count = len(list(GOOD_DIR.glob("*.y*ml"))) + 1
    assert (result.code, result.out) == (0, "")
    assert result.err.strip() == f"{count} valid, 0 invalid ({count} files)"
    assert any(p.suffix == ".yml" for p in GOOD_DIR.iterdir())


def test_stdin() -> None:
    text = (BAD_DIR / "unknown_op.yaml").read_text()
    result = cg("validate", "-", stdin=text)
    assert result.code == 1
    check_line(result.out.strip(), "<stdin>", expectations("unknown_op.yaml")[0])
    good = cg("validate", "-", stdin=(GRAPHS / "logreg.yaml").read_text())
    assert (good.code, good.out) == (0, "")


def test_stdin_bytes_are_checked_like_a_file() -> None:
    result = CliRunner().invoke(main, ["validate", "-"], input=(BAD_DIR / "non_utf8.yaml").read_bytes())
    assert result.exit_code == 1
    assert result.stdout.startswith("<stdin>:3:9: not UTF-8 text"), result.stdout


@pytest.mark.parametrize("args", [["no/such/file.yaml"], ["graphs/logreg.yaml", "no/such/dir"]])
def test_missing_path_is_a_usage_error(args: list[str]) -> None:
    result = cg("validate", *args)
    assert result.code == 2
    assert args[-1] in result.err and result.out == ""


def test_no_path_is_a_usage_error() -> None:
    assert cg("validate").code == 2


def test_a_mix_of_good_and_bad_files_is_exit_1() -> None:
    result = cg("validate", "graphs/logreg.yaml", "tests/bad/cycle2.yaml", "graphs/linreg.yaml")
    assert result.code == 1
    assert result.out.strip() == "tests/bad/cycle2.yaml:5:3: node 'a': cycle: a -> b -> a [CG112]"
    assert result.err.strip() == "2 valid, 1 invalid (3 files)"
