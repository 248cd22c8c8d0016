"""The schema fast path: nodes it accepts without jsonschema are exactly nodes jsonschema accepts;
and the published schema (schema/graph.schema.json): strict about built-in ops where it can be."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from conftest import cg

from cg.errors import LoadError
from cg.ops import REGISTRY, installed
from cg.parse.yamldoc import load_file, load_text
from cg.schema.fast import plain_document
from cg.schema.schemas import _plain_node, _to_check, _validator, graph_schema, validate

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted([*ROOT.glob("graphs/*.yaml"), *ROOT.glob("tests/bad/*.yaml"), *ROOT.glob("tests/good/*.y*ml")])


def _messages(data: object) -> list[str]:
    return sorted(f"{list(e.absolute_path)} {e.validator}" for e in _validator().iter_errors(data))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_fast_path_finds_the_same_errors_as_the_full_schema(path: Path) -> None:
    try:
        doc = load_file(path)
    except LoadError:
        pytest.skip("not a YAML document")
    assert _messages(_to_check(doc.data)) == _messages(doc.data)


@pytest.mark.parametrize(
    "spec",
    [
        {"op": "add", "in": ["x", True]},  # a boolean is not a number
        {"op": "reshape", "in": ["x"]},  # a required attribute is missing
        {"op": "neg", "in": ["x"], "doc": 3},
        {"op": "neg", "in": ["x", "y"]},
        {"op": "add", "in": ["x"]},
        {"op": "sum", "in": ["x"], "axis": 0.0},  # jsonschema counts 0.0 as an integer: it decides
        {"op": "sum", "in": ["x"], "axis": [0, 0]},  # not unique
        {"op": "sum", "in": ["x"], "axis": "0"},
        {"op": "sum", "in": ["x"], "keepdims": 1},
        {"op": "sum", "in": ["x"], "axes": 0},
        {"op": "add", "in": ["x", "1y"]},
        {"op": "add", "in": ["x", [1, "y"]]},
        {"op": "add", "in": ["x", [1, [2, False]]]},
        {"op": "nope", "in": ["x"]},
        {"op": ["add"], "in": ["x", "y"]},
        {"in": ["x"]},
        "add",
    ],
)
def test_fast_path_sends_anything_unusual_to_jsonschema(spec: object) -> None:
    assert not _plain_node("n", spec)


def test_fast_path_accepts_plain_nodes_and_still_reports_bad_ones() -> None:
    assert _plain_node("e", {"op": "add", "in": ["b", "d", 3, 2.5], "doc": "sum"})
    assert not _plain_node("1e", {"op": "add", "in": ["b", "d"]})
    nodes = "\n".join(f"  n{i}: {{op: sin, in: [x]}}" for i in range(50))
    doc = load_text(f"cg: 1\ninputs: {{x: 1.0}}\nnodes:\n{nodes}\n  bad: {{op: sin, in: [x, x]}}\noutputs: [n0]\n", "t")
    assert [d.code for d in validate(doc)] == ["CG102"]


def test_fast_path_accepts_attributes_and_constants_the_schema_accepts() -> None:
    for spec in [
        {"op": "sum", "in": ["x"], "axis": 0, "keepdims": True},
        {"op": "sum", "in": ["x"], "axis": [0, 1]},
        {"op": "sum", "in": ["x"], "axis": None},
        {"op": "reshape", "in": ["x"], "shape": [2, -1]},
        {"op": "add", "in": ["x", [1, 2.5]]},
        {"op": "add", "in": ["x", [[1, 2], [3]]]},  # ragged: the schema allows it, the graph build refuses it
    ]:
        assert _plain_node("n", spec), spec
        assert not list(_validator().iter_errors({"cg": 1, "nodes": {"n": spec}, "outputs": ["n"]})), spec


def _mutations(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Variants of a valid document, each with one change that may or may not be valid."""
    odd: list[Any] = [None, True, 0, 1, 2.0, -1, "", "x", "1x", [], [1], [[1, 2], [3]], ["a", "a"], {}, {"a": 1}]
    for key in [*data, "extra"]:
        for value in odd:
            yield {**data, key: value}
    for section in ("inputs", "nodes", "expect"):
        entries = data.get(section)
        if not isinstance(entries, dict):
            continue
        for name, entry in entries.items():
            for value in odd:
                yield {**data, section: {**entries, name: value}}
            if isinstance(entry, dict):
                for key in [*entry, "axis", "keepdims", "shape", "value", "file", "key", "dtype", "doc", "tol", "of"]:
                    for value in odd:
                        yield {**data, section: {**entries, name: {**entry, key: value}}}


def _wrongly_accepted() -> tuple[int, list[str]]:
    """(how many documents plain_document accepts, those of them that jsonschema finds errors in).
    A document met again (a mutation that sets a value it already has) is checked once."""
    accepted, wrong, seen = 0, [], set()
    for path in FILES:
        try:
            data = load_file(path).data
        except LoadError:
            continue
        if not isinstance(data, dict):
            continue
        for variant in [data, *_mutations(data)]:
            if plain_document(variant) and (text := repr(variant)) not in seen:
                seen.add(text)
                if list(_validator().iter_errors(variant)):
                    wrong.append(f"{path.name}: {variant!r}"[:2000])
                # The published schema's ops rule too (sampled: the full check would double the time).
                elif not accepted % 25 and _published_errors(variant):
                    wrong.append(f"{path.name} (the published schema): {variant!r}"[:2000])
                accepted += 1
    return accepted, wrong


def _in_a_process(folder: Path) -> tuple[int, list[str]]:
    """_wrongly_accepted() in a process of its own: 15 s of jsonschema, started early, on a second
    core, while the other tests run (tests/conftest.py: `early`)."""
    here, tests = str(Path(__file__).parent), str(Path(__file__).parents[1])  # test_schema, and conftest
    code = (f"import json, sys\nsys.path[:0] = [{here!r}, {tests!r}]\nimport test_schema\n"
            "print(json.dumps(test_schema._wrongly_accepted()))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    accepted, wrong = json.loads(proc.stdout.splitlines()[-1])
    return accepted, wrong


@pytest.mark.early(job=_in_a_process)
def test_documents_the_fast_path_accepts_are_valid_for_jsonschema(early: tuple[int, list[str]]) -> None:
    """Whenever plain_document says yes, jsonschema finds nothing: over every graph of the corpora
    and thousands of one-change mutations of them."""
    accepted, wrong = early
    assert not wrong, "\n".join(wrong[:5])
    assert accepted > 100


# ---- the published schema knows the built-in ops ----------------------------------------------------

PUBLISHED = ROOT / "schema" / "graph.schema.json"
TYPO = 'cg: 1\ninputs: {x: 1.0}\nnodes:\n  y: {op: ad, in: [x, x]}\n  z: {expr: "x*y"}\noutputs: [z]\n'


@cache
def _published() -> Any:
    """A validator of the committed schema: what editors and check-jsonschema use (with the enum)."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(PUBLISHED.read_text(encoding="utf-8")))


def _published_errors(data: Any) -> list[Any]:
    return list(_published().iter_errors(data))


def test_an_unknown_op_fails_the_published_schema_with_the_list_of_ops() -> None:
    """What check-jsonschema and the YAML language server say about `op: ad` in a file that has
    no functions and no imports: the op, and the ops there are."""
    (error,) = _published_errors(load_text(TYPO, "t.yaml").data)
    assert list(error.absolute_path) == ["nodes", "y", "op"] and error.validator == "enum"
    assert list(error.validator_value) == list(REGISTRY)  # every registered op, the moment it is registered
    assert "'ad' is not one of ['neg'" in error.message


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_built_in_op_is_in_the_published_enum(name: str) -> None:
    """A newly registered op is covered at once (a stale committed copy fails here and in test_cli)."""
    assert name in _published().schema["$defs"]["builtin_node"]["properties"]["op"]["enum"]


def test_cg_validates_with_the_published_schema_minus_the_ops_rule() -> None:
    """The only difference is the enum for files without functions or imports: so the fast path,
    which agrees with cg's validator and accepts only registered ops in such files, agrees with
    the published schema too, and the enum never doubles cg's CG101."""
    published = json.loads(PUBLISHED.read_text(encoding="utf-8"))
    (rule,) = published.pop("allOf")
    assert rule["if"] == {"not": {"anyOf": [{"required": ["functions"]}, {"required": ["imports"]}]}}
    assert published["$defs"].pop("builtin_node")["properties"]["op"]["enum"] == list(REGISTRY)
    assert published == graph_schema(strict_ops=False) == _validator().schema


def test_the_bad_corpus_typo_fails_the_published_schema_at_the_op() -> None:
    (error,) = _published_errors(load_file(ROOT / "tests" / "bad" / "unknown_op.yaml").data)
    assert list(error.absolute_path) == ["nodes", "e", "op"] and error.instance == "ad"


@pytest.mark.parametrize("extra", ["functions: {}\n", "imports: [cg:nn]\n"])
def test_with_functions_or_imports_any_name_may_be_called(extra: str) -> None:
    assert _published_errors(load_text(TYPO + extra, "t.yaml").data) == []


@pytest.mark.parametrize(
    "path",
    [*ROOT.glob("graphs/*.yaml"), *ROOT.glob("tests/good/*.y*ml"), *ROOT.glob("cg/lib/*.yaml")],
    ids=lambda p: p.name,
)
def test_every_good_file_passes_the_published_schema(path: Path) -> None:
    assert _published_errors(load_file(path).data) == []


def test_cg_itself_reports_the_unknown_op_once() -> None:
    """cg validates without the enum: its CG101 says it once, with a "did you mean"."""
    result = cg("validate", "--format", "json", "-", stdin=TYPO)
    assert result.code == 1
    (d,) = result.json()
    assert (d["code"], d["node"], d["line"], d["column"]) == ("CG101", "y", 4, 11)
    assert d["message"] == "unknown op 'ad' (did you mean 'add'?)"


def test_an_op_installed_later_has_its_rules_in_the_validator() -> None:
    """The validator is made from the registry once; cg.ops.installed (for tests) changes the
    registry, so it is made again: the installed op's attributes are checked while it is there."""
    doc = load_text("cg: 1\ninputs: {v: [1.0, 2.0]}\nnodes: {s: {op: total, in: [v], axis: 0.5}}\noutputs: [s]\n",
                    "t.yaml")
    assert validate(doc) == []  # no such op here: cg says so later (CG101), not the schema
    with installed(dataclasses.replace(REGISTRY["sum"], name="total")):
        (error,) = validate(doc)
    assert "0.5" in error.message and error.node == "s"
    assert validate(doc) == []
