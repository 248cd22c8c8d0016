"""The schema fast path: nodes it accepts without jsonschema are exactly nodes jsonschema accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from cg.errors import LoadError
from cg.schema import _plain_node, _to_check, _validator, validate
from cg.yamldoc import load_file, load_text

ROOT = Path(__file__).resolve().parent.parent
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
        {"op": "sum", "in": ["x"], "axis": 0},  # attributes go to jsonschema
        {"op": "add", "in": ["x", "1y"]},
        {"op": "add", "in": ["x", [1, 2]]},
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
