"""Graph files written as JSON (`*.json`): the same documents as YAML, the same checks, and
diagnostics at the right line and column although the fast path (json.loads) has no positions."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import GRAPHS, ROOT, cg
from hypothesis import given, settings
from hypothesis import strategies as st

from cg.cli import main
from cg.errors import CgError, LoadError, Pos
from cg.parse.document import DeferredPos, Document
from cg.parse.jsondoc import _read_all, load_text
from cg.parse.source import decode, to_bytes
from cg.parse.yamldoc import load_file as load_yaml

EXAMPLES = sorted(p for p in GRAPHS.glob("*.yaml"))
GOOD = sorted((ROOT / "tests" / "good").glob("*.y*ml"))


def as_json(data: Any) -> str:
    return json.dumps(data, indent=2) + "\n"


@pytest.fixture(scope="module")
def json_graphs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every example graph, written as JSON (their `imports` are of cg:nn, found from anywhere)."""
    folder = tmp_path_factory.mktemp("graphs")
    for path in EXAMPLES:
        (folder / f"{path.stem}.json").write_text(as_json(load_yaml(path).data), encoding="utf-8")
    return folder


def refused(text: str | bytes, code: str, words: str, line: int | None, col: int | None) -> LoadError:
    with pytest.raises(LoadError) as info:
        load_text(text, "g.json")
    d = info.value.diagnostics[0]
    assert (d.code, d.file) == (code, "g.json"), info.value.diagnostics
    assert words in d.message, d.message
    assert d.pos == (None if line is None else Pos(line, col)), d.pos  # type: ignore[arg-type]
    return info.value


# ---------------------------------------------------------------- the same graphs


@pytest.mark.parametrize("path", [*EXAMPLES, *GOOD], ids=lambda p: p.name)
def test_json_gives_the_same_document_as_yaml(path: Path) -> None:
    data = load_yaml(path).data
    doc = load_text(as_json(data), path.stem + ".json")
    assert doc.data == data
    assert not doc.located  # the fast path: positions only when asked for
    assert doc.positions.keys() == load_yaml(path).positions.keys()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_run_of_a_json_graph_is_the_run_of_its_yaml(json_graphs: Path, path: Path) -> None:
    target = json_graphs / f"{path.stem}.json"
    got = CliRunner().invoke(main, ["run", str(target), "--format", "json"])
    want = CliRunner().invoke(main, ["run", str(path), "--format", "json"])
    assert got.exit_code == want.exit_code, got.output
    if want.exit_code == 0:
        assert {**json.loads(got.stdout), "file": ""} == {**json.loads(want.stdout), "file": ""}


def test_validate_and_check_take_json_files(json_graphs: Path) -> None:
    files = sorted(str(p) for p in json_graphs.glob("*.json"))
    result = cg("validate", *files)
    assert result.code == 0, result.out + result.err
    assert result.err.strip() == f"{len(files)} valid, 0 invalid ({len(files)} files)"
    assert cg("check", str(json_graphs / "log3x2p5xy.json")).code == 0


def test_directories_are_searched_for_yaml_only(tmp_path: Path) -> None:
    # Folders hold other JSON (results of `cg run -f json`, schemas, package.json): JSON graphs are named.
    (tmp_path / "g.json").write_text(as_json(load_yaml(GRAPHS / "square3x.yaml").data))
    result = cg("validate", str(tmp_path))
    assert result.code == 2 and "no *.yaml or *.yml files" in result.err
    shutil.copy(GRAPHS / "square3x.yaml", tmp_path / "g.yaml")
    assert cg("validate", str(tmp_path)).err.strip() == "1 valid, 0 invalid (1 file)"


def test_json_on_standard_input_is_read_as_yaml() -> None:
    text = as_json(load_yaml(GRAPHS / "square3x.yaml").data)
    assert cg("validate", "-", stdin=text).code == 0


def test_fmt_refuses_json_files(json_graphs: Path) -> None:
    result = cg("fmt", str(json_graphs / "square3x.json"))
    assert result.code == 2 and "cg fmt rewrites YAML files" in result.err


# ---------------------------------------------------------------- positions, found when needed


def test_schema_and_graph_errors_point_into_the_json_text(tmp_path: Path) -> None:
    text = """{
  "cg": 1,
  "inputs": {"x": 1.0},
  "nodes": {
    "a": {"op": "ad", "in": ["x", "x"]},
    "b": {"op": "neg", "in": ["wieght"]},
    "c": {"op": "sum", "in": ["x"], "axes": 0}
  },
  "outputs": ["a", "zz"]
}
"""
    path = tmp_path / "bad.json"
    path.write_text(text)
    result = CliRunner().invoke(main, ["validate", str(path)])
    lines = result.stdout.splitlines()
    assert result.exit_code == 1, result.output
    expected = [("CG101", 5, 17, '"ad"'), ("CG110", 6, 31, '"wieght"'), ("CG103", 7, 37, '"axes"'),
                ("CG113", 9, 20, '"zz"')]
    assert len(lines) == len(expected), lines
    source = text.splitlines()
    for line, (code, row, col, token) in zip(lines, expected):
        assert line.startswith(f"{path}:{row}:{col}: ") and line.endswith(f"[{code}]"), line
        assert source[row - 1][col - 1 :].startswith(token), (line, source[row - 1])


def test_run_time_errors_name_the_node_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "nan.json"
    path.write_text('{"cg": 1, "inputs": {"x": -1.0},\n "nodes": {\n  "y": {"op": "log", "in": ["x"]}},\n'
                    ' "outputs": ["y"]}\n')
    result = cg("run", str(path))
    assert result.code == 1
    assert result.err.startswith(f"{path}:3:3: node 'y': "), result.err


def test_node_positions_are_deferred_until_read() -> None:
    doc = load_text('{"cg": 1,\n "nodes": {"a": {"op": "neg", "in": ["x"]}}}', "g.json")
    pos = doc.pos(("nodes", "a"), key=True)
    assert isinstance(pos, DeferredPos) and not doc.located
    assert pos == Pos(2, 12) and Pos(2, 12) == pos and hash(pos) == hash(Pos(2, 12)) and doc.located
    assert (pos.line, pos.col) == (2, 12) and repr(pos) == "Pos(line=2, col=12)"
    assert type(doc.pos(("nodes", "a"), key=True)) is Pos  # located now: a plain Pos
    assert doc.pos(("nodes", "a", "in", 0)) == Pos(2, 38)
    assert Document({}, "x").pos(("a",)) is None


# ---------------------------------------------------------------- what is refused, and where


def test_duplicate_keys_are_errors_at_any_depth() -> None:
    refused('{"cg": 1, "cg": 1}', "CG006", "duplicate key 'cg' (first at line 1)", 1, 11)
    err = refused('{"nodes": {\n "a": {"op": "neg",\n  "op": "exp", "in": []}}}', "CG006", "duplicate key 'op'", 3, 3)
    assert "first at line 2" in err.diagnostics[0].message
    refused('{"x": [{"a": 1, "a": 2}]}', "CG006", "duplicate key 'a'", 1, 17)


def test_duplicates_are_found_even_when_colons_or_escapes_confuse_the_count() -> None:
    refused('{"doc": "a: b", "k": 1, "k": 2}', "CG006", "duplicate key 'k'", 1, 25)
    refused('{"a\\u003a": 1, "k": 1, "k": 2}', "CG006", "duplicate key 'k'", 1, 24)
    refused('{"k": 1, "k\\u003a": 2, "k": 3}', "CG006", "duplicate key 'k'", 1, 24)
    assert load_text('{"doc": "a: [b", "k\\u003a": 1, "x": "]"}', "g.json").data == {
        "doc": "a: [b", "k:": 1, "x": "]"}


@pytest.mark.parametrize(
    ("text", "words", "col"),
    [
        ('{"a": NaN}', "non-finite numbers (NaN) are not allowed", 7),
        ('{"a": [1, Infinity]}', "non-finite numbers (Infinity)", 11),
        ('{"a": -Infinity}', "non-finite numbers (-Infinity)", 7),
        ('{"a": 1e999}', "number out of range: 1e999", 7),
        ('{"a": -2.5E+400}', "number out of range", 7),
        ('{"a": ' + "9" * 400 + ".0}", "number out of range", 7),
        ('{"a": ' + "1" * 101 + "}", "number too long (101 digits; at most 100)", 7),
        ('{"a": -' + "1" * 5000 + "}", "number too long (5000 digits", 7),
    ],
)
def test_numbers_cg_cannot_use(text: str, words: str, col: int) -> None:
    refused(text, "CG007", words, 1, col)


def test_numbers_near_the_limits_load() -> None:
    text = '{"a": [1e308, -1.7976931348623157e308, 1e-400, ' + "9" * 100 + ", 0.5e-05, 2E+2]}"
    assert load_text(text, "g.json").data["a"] == [1e308, -1.7976931348623157e308, 0.0, int("9" * 100), 5e-06, 200.0]
    assert load_text('{"x1e100": 1, "node100": 2}', "g.json").data == {"x1e100": 1, "node100": 2}


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    ok = '{"a": ' + "[" * 63 + "1" + "]" * 63 + "}"
    assert load_text(ok, "g.json").data["a"] is not None
    refused('{"a": ' + "[" * 64 + "1" + "]" * 64 + "}", "CG004", "nesting is deeper than 64 levels", 1, 70)
    refused("[" * 100_000 + "]" * 100_000, "CG004", "nesting is deeper", 1, 65)  # json.loads: RecursionError
    refused('{"a": "[[[[", "b": ' + "[" * 70 + "]" * 70 + "}", "CG004", "nesting is deeper", 1, 83)


def test_bytes_and_syntax() -> None:
    refused(b'{"a": "caf\xe9"}', "CG002", "not UTF-8 text (invalid byte 0xe9 at line 1, column 11)", 1, 11)
    refused('{"a": 1}'.encode("utf-16"), "CG002", "file is UTF-16 text", 1, 1)
    refused(b'{"a":\x00 1}', "CG002", "binary file, not text (NUL byte", 1, 6)
    assert load_text(b'\xef\xbb\xbf{"cg": 1}', "g.json").data == {"cg": 1}  # a byte order mark is skipped
    refused("", "CG003", "empty file", 1, 1)
    refused(" \n\t", "CG003", "empty file", 1, 1)
    refused('{"a": 1,\n}', "CG003", "no trailing commas and no comments", 2, 1)
    refused('{"a": [1, 2}', "CG003", "invalid JSON: expecting ',' delimiter", 1, 12)
    refused('{"a": "x\ty"}', "CG003", "invalid JSON: invalid control character", 1, 9)
    refused('{"a": 1} 2', "CG003", "invalid JSON: extra data", 1, 10)
    refused("[1, 2]", "CG003", "expected an object at the top level", 1, 1)
    refused('\n  "cg"', "CG003", "found a scalar", 2, 3)


def test_half_a_surrogate_pair_is_refused_and_a_whole_one_is_a_character() -> None:
    refused('{"a": 1, "b": "x\\ud800"}', "CG003", "\\ud800 is half of a surrogate pair, not a character", 1, 17)
    assert load_text('{"a": "\\ud83d\\ude00"}', "g.json").data == {"a": "\U0001f600"}


def test_errors_found_by_the_full_reader_are_all_reported_in_order() -> None:
    with pytest.raises(LoadError) as info:
        load_text('{"a": NaN,\n "b": 1e999,\n "a": 3}', "g.json")
    found = [(d.code, d.pos) for d in info.value.diagnostics]
    assert found == [("CG007", Pos(1, 7)), ("CG007", Pos(2, 7)), ("CG006", Pos(3, 2))]


def test_the_value_limit_holds_for_json(tmp_path: Path) -> None:
    path = tmp_path / "many.json"
    path.write_text('{"cg": 1, "x": [' + ",".join(["0"] * 30) + "]}")
    result = cg("--max-values", "20", "validate", str(path))
    assert result.code == 1 and "[CG004]" in result.out and "more than 20 values" in result.out


# ---------------------------------------------------------------- the fast path agrees with the full reader


_KEYS = st.sampled_from(["a", "b", "op", "in", "a:b", "x[1]", 'q"q', "k\\", "\u00e9", "n0", ""])
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**120), 10**120), st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=':,[]{}"\\ab\n\u00e9\U0001f600\ud800', max_size=6),
)
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(_KEYS, inner, max_size=4)), max_leaves=30)


def _outcome(load: Any, text: str) -> Any:
    try:
        return ("ok", load(text).data)
    except CgError as err:
        return ("error", [(d.code, d.pos) for d in err.diagnostics])


@settings(max_examples=int(os.environ.get("CG_FUZZ_EXAMPLES", "300")), deadline=None,
          derandomize="CG_FUZZ_EXAMPLES" not in os.environ)  # as tests/cli/test_fuzz.py: the same examples in CI
@given(data=st.dictionaries(_KEYS, _VALUES, max_size=5), indent=st.sampled_from([None, 1]),
       duplicate=st.booleans(), ascii_only=st.booleans())
def test_fast_path_and_full_reader_agree(data: dict[str, Any], indent: int | None, duplicate: bool,
                                         ascii_only: bool) -> None:
    text = json.dumps(data, indent=indent, ensure_ascii=ascii_only)
    if duplicate and data:  # write the first entry twice: the same text again before the closing brace
        first = json.dumps(dict([next(iter(data.items()))]), ensure_ascii=ascii_only)[1:-1]
        text = text[: text.rindex("}")] + ", " + first + "}"
    fast = _outcome(lambda t: load_text(t, "g.json"), text)
    full = _outcome(lambda t: _read_all(decode(to_bytes(t), "g.json", 10**9, language="JSON"), "g.json", 64,
                                         2_000_000), text)
    assert fast == full
    if fast[0] == "ok":
        assert fast[1] == json.loads(text)
