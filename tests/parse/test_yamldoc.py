"""cg.parse.yamldoc: YAML text to plain data with positions, and every way a file can be refused."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

import cg.parse.yamldoc as yamldoc
from cg.errors import Diagnostic, LoadError, Pos
from cg.parse.yamldoc import MAX_DEPTH, Document, load_file, load_text

EXAMPLE = textwrap.dedent(
    """\
    # yaml-language-server: $schema=../schema/graph.schema.json
    cg: 1
    name: log3x2p5xy
    doc: z = log(3x^2 + 5xy)
    inputs:
      x: 2.0
      y: {value: 3.0}
    nodes:
      a: {op: square, in: [x]}
      b: {op: mul, in: [3, a]}
      c: {op: mul, in: [x, y]}
      d: {op: mul, in: [5, c]}
      e: {op: add, in: [b, d]}
      z: {op: log, in: [e]}
    outputs: [z]
    """
)


def refused(text: str | bytes, code: str, substring: str, line: int | None, col: int | None) -> LoadError:
    """Loading text fails with a first diagnostic of `code` saying `substring` at line:col."""
    with pytest.raises(LoadError) as info:
        load_text(text, "g.yaml")
    first = info.value.diagnostics[0]
    assert (first.code, first.file) == (code, "g.yaml"), first
    assert substring in first.message, first.message
    assert first.pos == (Pos(line, col) if line is not None and col is not None else None)
    assert len(first.message) < 200  # short, even when the input is huge
    return info.value


def data(text: str) -> Any:
    return load_text(text, "g.yaml").data


# ---------------------------------------------------------------- the happy path


def test_example_round_trips_with_positions() -> None:
    doc = load_text(EXAMPLE, "log.yaml")
    assert doc.data == yaml.safe_load(EXAMPLE)
    assert list(doc.data) == ["cg", "name", "doc", "inputs", "nodes", "outputs"]  # key order kept
    assert list(doc.data["nodes"]) == ["a", "b", "c", "d", "e", "z"]
    assert doc.file == "log.yaml"
    assert doc.positions[()] == Pos(2, 1)  # the comment line is skipped
    assert doc.positions[("nodes", "b", "in", 0)] == Pos(10, 21)  # the 3 in `b: {op: mul, in: [3, a]}`
    assert doc.positions[("nodes", "b", "in")] == Pos(10, 20)
    assert doc.positions[("nodes", "b")] == Pos(10, 6)
    assert doc.key_positions[("nodes", "e")] == Pos(13, 3)
    assert doc.key_positions[("nodes", "b", "op")] == Pos(10, 7)
    assert doc.positions[("inputs", "x")] == Pos(6, 6)
    assert doc.positions[("outputs", 0)] == Pos(15, 11)


def test_pos_prefers_key_then_falls_back_to_ancestor() -> None:
    doc = load_text(EXAMPLE, "log.yaml")
    assert doc.pos(("nodes", "e"), key=True) == Pos(13, 3)
    assert doc.pos(("nodes", "e")) == Pos(13, 6)
    assert doc.pos(("outputs", 0), key=True) == Pos(15, 11)  # list items have no key
    assert doc.pos(("nodes", "e", "missing", 3)) == Pos(13, 6)
    assert doc.pos(("nowhere",), key=True) == Pos(2, 1)
    assert Document({}, "x").pos(("a",)) is None


def test_load_file_and_display_name(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(EXAMPLE, encoding="utf-8")
    assert load_file(path).file == str(path)
    doc = load_file(str(path), display="graphs/g.yaml")
    assert doc.file == "graphs/g.yaml" and doc.data["name"] == "log3x2p5xy"


def test_load_file_errors_are_cg001(tmp_path: Path) -> None:
    for missing in (tmp_path / "nope.yaml", tmp_path):  # no such file; a directory
        with pytest.raises(LoadError) as info:
            load_file(missing, display="x.yaml")
        (diag,) = info.value.diagnostics
        assert (diag.code, diag.file, diag.pos) == ("CG001", "x.yaml", None)
        assert diag.message.startswith("cannot read file: ")


def test_load_file_reads_no_more_than_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"a: 1\n" * 1000)
    with pytest.raises(LoadError) as info:
        load_file(path, max_bytes=100)
    assert info.value.diagnostics[0].code == "CG004"
    assert "100 bytes" in info.value.diagnostics[0].message


# ---------------------------------------------------------------- scalars (YAML 1.2 core)


def test_floats_with_exponents_are_numbers() -> None:
    assert data("a: 1e3\nb: -2E-5\nc: 6.02e23\nd: .5\ne: 1.\nf: +3.25") == {
        "a": 1000.0, "b": -2e-05, "c": 6.02e23, "d": 0.5, "e": 1.0, "f": 3.25,
    }  # fmt: skip
    assert type(data("a: 1e3")["a"]) is float


def test_ints_are_decimal_unless_0o_or_0x() -> None:
    got = data("a: 010\nb: 0x10\nc: 0o17\nd: -7\ne: +5\nf: 0x1F")
    assert got == {"a": 10, "b": 16, "c": 15, "d": -7, "e": 5, "f": 31}
    assert all(type(v) is int for v in got.values())


def test_yaml_1_1_traps_stay_strings() -> None:
    text = (
        "a: yes\nb: no\nc: on\nd: off\ne: y\nf: n\ng: 1_000\nh: 0x_\ni: 2020-01-01\nj: -0x1\nk: nan\nl: 0b101"
    )
    assert data(text) == {
        "a": "yes", "b": "no", "c": "on", "d": "off", "e": "y", "f": "n",
        "g": "1_000", "h": "0x_", "i": "2020-01-01", "j": "-0x1", "k": "nan", "l": "0b101",
    }  # fmt: skip


def test_null_bool_and_quoting() -> None:
    text = "a: ~\nb: null\nc: NULL\nd:\ne: true\nf: FALSE\ng: '1'\nh: \"true\"\ni: ''\nj: |\n  1\n"
    assert data(text) == {
        "a": None, "b": None, "c": None, "d": None, "e": True, "f": False,
        "g": "1", "h": "true", "i": "", "j": "1\n",
    }  # fmt: skip


def test_keys_are_resolved_too() -> None:
    assert data("1: x\nfalse: y\n'2': z\n~: w") == {1: "x", False: "y", "2": "z", None: "w"}
    # Python thinks 1 == True, so one dict cannot hold both: reported like a duplicate.
    refused("1: x\ntrue: y\n", "CG006", "duplicate key 'true' (first at line 1)", 2, 1)


def test_standard_tags_are_honoured() -> None:
    got = data(
        "a: !!str 5\nb: !!int '7'\nc: !!float 3\nd: !!bool 'true'\ne: !!null ''\nf: ! 5\ng: !!map {x: 1}"
    )
    assert got == {"a": "5", "b": 7, "c": 3.0, "d": True, "e": None, "f": "5", "g": {"x": 1}}
    assert type(got["c"]) is float
    assert data("!!map\ncg: !!seq [1]") == {"cg": [1]}
    refused("a: !!int x", "CG005", "'x' is not a valid !!int", 1, 4)


def test_non_finite_and_out_of_range_numbers() -> None:
    for text in (".nan", ".NaN", ".inf", "-.inf", "+.INF", ".Inf"):
        refused(f"a: {text}", "CG007", "non-finite numbers (.nan, .inf) are not allowed in graph files", 1, 4)
    refused("cg: 1\nx: 1e999", "CG007", "number out of range: 1e999", 2, 4)
    refused("cg: 1\nx: !!float .inf", "CG007", "non-finite", 2, 4)


def test_huge_int_is_refused_before_int_parsing() -> None:
    err = refused("cg: 1\nx: " + "9" * 5000, "CG007", "number too long (5000 digits", 2, 4)
    assert "9" * 50 not in str(err)
    assert data("x: " + "9" * 100) == {"x": int("9" * 100)}


def test_scalar_problems_are_all_reported() -> None:
    with pytest.raises(LoadError) as info:
        load_text("a: .nan\nb: 1e999\n.inf: 2\nc: ok\n", "g.yaml")
    assert [(d.code, d.pos) for d in info.value.diagnostics] == [
        ("CG007", Pos(1, 4)), ("CG007", Pos(2, 4)), ("CG007", Pos(3, 1)),
    ]  # fmt: skip


# ---------------------------------------------------------------- structure


def test_duplicate_keys_are_all_reported() -> None:
    text = "cg: 1\nname: a\nnodes:\n  a: {op: x}\n  a: {op: y}\nname: b\n"
    with pytest.raises(LoadError) as info:
        load_text(text, "g.yaml")
    assert info.value.diagnostics == [
        Diagnostic("CG006", "duplicate key 'a' (first at line 4)", "g.yaml", Pos(5, 3)),
        Diagnostic("CG006", "duplicate key 'name' (first at line 2)", "g.yaml", Pos(6, 1)),
    ]


def test_duplicate_in_flow_mapping_and_after_it() -> None:
    with pytest.raises(LoadError) as info:
        load_text("a: {x: 1, y: 2, x: 3}\nb: [{k: 1, k: 2}]\n", "g.yaml")
    got = [(d.code, d.message, d.pos) for d in info.value.diagnostics]
    assert got == [
        ("CG006", "duplicate key 'x' (first at line 1)", Pos(1, 17)),
        ("CG006", "duplicate key 'k' (first at line 2)", Pos(2, 12)),
    ]


def test_empty_files() -> None:
    for text in ("", "\n\n", "# just a comment\n# and another\n", "---\n", b"\xef\xbb\xbf"):
        refused(text, "CG003", "empty file: expected a mapping with 'cg: 1'", 1, 1)


def test_top_level_must_be_a_mapping() -> None:
    refused(
        "# c\n- 1\n- 2\n", "CG003", "expected a mapping at the top level (like 'cg: 1'), found a list", 2, 1
    )
    refused("hello", "CG003", "expected a mapping at the top level (like 'cg: 1'), found a scalar", 1, 1)
    refused("~", "CG003", "found a scalar", 1, 1)


def test_one_document_per_file() -> None:
    refused("cg: 1\n---\ncg: 2\n", "CG003", "more than one YAML document", 2, 1)


def test_collection_as_key_is_refused() -> None:
    refused("? [a, b]\n: 1\n", "CG003", "cannot be a mapping key", 1, 3)


def test_comment_line_first_then_cg() -> None:
    doc = load_text("# yaml-language-server: $schema=../schema/graph.schema.json\ncg: 1\n", "g.yaml")
    assert doc.data == {"cg": 1}
    assert doc.key_positions[("cg",)] == Pos(2, 1) and doc.positions[("cg",)] == Pos(2, 5)


def test_large_flat_mapping_loads() -> None:
    text = "".join(f"k{i}: {i}\n" for i in range(100_000))
    doc = load_text(text, "g.yaml")
    assert len(doc.data) == 100_000 and doc.data["k99999"] == 99999
    assert doc.positions[("k99999",)] == Pos(100_000, 9)


# ---------------------------------------------------------------- YAML syntax


def test_tabs_for_indentation() -> None:
    refused("cg: 1\nnodes:\n\ta: {op: x}\n", "CG003", "indent with spaces, not tabs", 3, 1)


def test_unclosed_bracket() -> None:
    err = refused(
        "cg: 1\noutputs: [z, y\nname: x\n", "CG003", "invalid YAML: did not find expected ',' or ']'", 3, 5
    )
    assert "flow sequence started at line 2, column 10" in err.diagnostics[0].message


def test_bad_mapping_syntax() -> None:
    refused("a: b: c\n", "CG003", "invalid YAML: mapping values are not allowed", 1, 5)


def test_pyyaml_internal_errors_become_load_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        yield from ()
        raise KeyError("odd")

    monkeypatch.setattr(yaml, "parse", broken)
    refused("a: 1", "CG003", "invalid YAML", None, None)


# ---------------------------------------------------------------- YAML features we refuse


def test_alias_bomb_fails_fast() -> None:
    lol = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lol.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    text = "\n".join(lol) + "\n"
    assert len(text) < 450
    start = time.perf_counter()
    refused(text, "CG005", "YAML anchors (&a) and aliases are not supported in graph files; write the value out", 1, 4)
    assert time.perf_counter() - start < 1.0


def test_an_anchor_without_an_alias_is_refused_too() -> None:
    # The README promises anchors are refused: an anchor alone is harmless, but it is YAML cg does not read.
    refused("a: &x 1\nb: 2", "CG005", "YAML anchors (&x) and aliases are not supported", 1, 4)
    refused("a: &x [1, 2]\nb: 2", "CG005", "YAML anchors (&x)", 1, 4)


def test_python_tags_are_refused() -> None:
    refused(
        "cg: 1\nx: !!python/object/apply:os.system [ls]\n", "CG005", "tag !!python/object/apply:os.sy", 2, 4
    )
    refused("x: !!python/object:foo.Bar a", "CG005", "is not supported in graph files; remove it", 1, 4)
    refused("x: !custom 1", "CG005", "tag !custom is not supported", 1, 4)
    refused("x: !!set {a, b}", "CG005", "tag !!set is not supported", 1, 4)


# ---------------------------------------------------------------- depth limits


def nest(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def test_nesting_up_to_the_limit_loads() -> None:
    doc = load_text("a: " + nest(MAX_DEPTH - 1), "g.yaml")  # the top mapping is level 1
    value = doc.data["a"]
    for _ in range(MAX_DEPTH - 2):
        value = value[0]
    assert value == [1]


def test_nesting_too_deep() -> None:
    refused("a: " + nest(100), "CG004", f"nesting is deeper than {MAX_DEPTH} levels", 1, 3 + MAX_DEPTH)
    with pytest.raises(LoadError) as info:
        load_text("a: " + nest(5), "g.yaml", max_depth=3)
    assert info.value.diagnostics[0].pos == Pos(1, 6)


def test_block_nesting_too_deep() -> None:
    text = "".join("  " * i + "a:\n" for i in range(100))
    refused(text, "CG004", "nesting is deeper", MAX_DEPTH + 1, 2 * MAX_DEPTH + 1)


def test_very_deep_nesting_does_not_crash_the_interpreter() -> None:
    # A subprocess, so a regression (recursion, stack overflow) fails this test instead of pytest.
    code = (
        "from cg.errors import LoadError\n"
        "from cg.parse.yamldoc import load_text\n"
        "for text in ('[' * 30000 + ']' * 30000, '{a: ' * 30000 + '}' * 30000):\n"
        "    try:\n"
        "        load_text(text, 'deep.yaml')\n"
        "    except LoadError as err:\n"
        "        print(err.diagnostics[0].code)\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout.split()) == (0, ["CG004", "CG004"]), out.stderr


def test_a_limit_raised_past_the_parsers_ceiling_says_where_the_ceiling_is() -> None:
    # libyaml >= 0.2.6 stops at 1,000 levels by itself; older libyaml and the pure-Python parser do
    # not. Either way the answer is CG004, never a syntax error (CG003).
    with pytest.raises(LoadError) as info:
        load_text("a: " + nest(1500), "g.yaml", max_depth=5000)
    d = info.value.diagnostics[0]
    assert d.code == "CG004", d
    assert "the most the YAML parser (libyaml) reads" in d.message, d.message


def test_the_libyaml_ceiling_is_a_depth_error_below_the_limit_too() -> None:
    # The parser reads a flow collection ahead: its own stop can come before cg counts 64 levels.
    with pytest.raises(LoadError) as info:
        load_text("a: " + nest(2000), "g.yaml")
    assert info.value.diagnostics[0].code == "CG004"
    assert f"nesting is deeper than {MAX_DEPTH} levels" in info.value.diagnostics[0].message


# ---------------------------------------------------------------- bytes


def test_bom_is_accepted_and_not_counted() -> None:
    doc = load_text(b"\xef\xbb\xbfcg: 1\n", "g.yaml")
    assert doc.data == {"cg": 1} and doc.key_positions[("cg",)] == Pos(1, 1)
    assert load_text("\ufeffcg: 1\n", "g.yaml").data == {"cg": 1}


def test_invalid_utf8() -> None:
    refused(
        b"cg: 1\nname: caf\xe9 x\n", "CG002", "not UTF-8 text (invalid byte 0xe9 at line 2, column 10)", 2, 10
    )
    # columns count characters, not bytes
    refused("cg: 1\nn: é".encode() + b"\xff", "CG002", "invalid byte 0xff at line 2, column 5", 2, 5)


def test_nul_bytes_mean_binary() -> None:
    refused(b"cg: 1\nx: a\x00b\n", "CG002", "binary file", 2, 5)
    refused(b"\x89PNG\r\n\x1a\n\x00\x00", "CG002", "binary file", 3, 1)


def test_utf16_and_control_characters() -> None:
    refused("cg: 1\n".encode("utf-16"), "CG002", "UTF-16", 1, 1)
    refused("cg: 1\nx: a\x07b\n", "CG002", "control character U+0007 at line 2, column 5", 2, 5)


def test_size_limit() -> None:
    with pytest.raises(LoadError) as info:
        load_text("a: 1234\n", "g.yaml", max_bytes=5)
    diag = info.value.diagnostics[0]
    assert diag.code == "CG004" and "limit of 5 bytes" in diag.message
    assert load_text("a: 1\n", "g.yaml", max_bytes=5).data == {"a": 1}


def test_str_with_lone_surrogate_is_not_utf8() -> None:
    refused("cg: 1\nx: \udcff\n", "CG002", "not UTF-8 text", 2, 4)


# ---------------------------------------------------------------- the pure-Python parser


def test_pure_python_parser_gives_the_same_document(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = load_text(EXAMPLE, "g.yaml")
    monkeypatch.setattr(yamldoc, "_Loader", yaml.SafeLoader)
    slow = load_text(EXAMPLE, "g.yaml")
    assert (slow.data, slow.positions, slow.key_positions) == (fast.data, fast.positions, fast.key_positions)
    assert data("a: 010\nb: '1'\nc: 1e3") == {"a": 10, "b": "1", "c": 1000.0}
    refused("a: " + nest(100), "CG004", "nesting is deeper", 1, 3 + MAX_DEPTH)
    refused("a: [1, 2\n", "CG003", "invalid YAML", 2, 1)
