"""The YAML fast path (cg/parse/yamlfast.py) against the full builder of cg/parse/yamldoc.py: the same data
whenever the fast path answers, and no answer whenever the full builder refuses the file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import GRAPHS, ROOT
from hypothesis import given, settings
from hypothesis import strategies as st

from cg.errors import CgError
from cg.parse import yamlfast
from cg.parse.yamldoc import LOADER, MAX_DEPTH, MAX_VALUES, _read_all, load_text

FILES = sorted([*GRAPHS.glob("**/*.yaml"), *(ROOT / "tests" / "good").glob("*.y*ml"),
                *(ROOT / "tests" / "bad").glob("*.yaml")])


def outcomes(text: str) -> tuple[Any, Any]:
    """(fast data or None, full builder's data or its diagnostics)."""
    fast = yamlfast.read(text, LOADER, MAX_DEPTH, MAX_VALUES)
    try:
        full: Any = ("ok", _read_all(text, "g.yaml", MAX_DEPTH, MAX_VALUES, LOADER).data)
    except CgError as err:
        full = ("error", [(d.code, d.pos) for d in err.diagnostics])
    return fast, full


def agree(text: str) -> None:
    fast, full = outcomes(text)
    if full[0] == "error":
        assert fast is None, (text, full)
    else:
        assert fast is None or fast == full[1], text


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_corpus(path: Path) -> None:
    try:
        text = path.read_bytes().decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        pytest.skip("not UTF-8: refused before either path runs")
    agree(text)
    if "bad" not in path.parts:
        assert outcomes(text)[0] is not None, "a valid graph should take the fast path"


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\na: 2\n", "a: &x 1\nb: *x\n", "a: !!str 1\n", "a: !!binary aGk=\n", "a: !custom 1\n",
        "a: .nan\n", "a: 1e999\n", "a: " + "1" * 101 + "\n", "- 1\n", "1\n", "", "---\n", "a: 1\n---\nb: 2\n",
        "[a]: 1\n", "{a: 1}: 2\n", "a: [1, 2\n", "a: " + "[" * 70 + "]" * 70 + "\n", "? a\n", "a:\n",
        "true: 1\n1: 2\n", "1: a\n1.0: b\n", "a: yes\nb: 010\nc: 0x1F\nd: 1e3\ne: ~\nf: 'true'\n",
        "a: !!int '7'\nb: !!float 1\nc: !!null ''\nd: !!bool true\n", "a: !!map {b: 1}\nc: !!seq [1]\n",
    ],
)
def test_cases(text: str) -> None:
    agree(text)


def test_load_text_takes_the_fast_path_and_locates_later() -> None:
    doc = load_text("cg: 1\nnodes:\n  a: {op: neg, in: [x]}\n", "g.yaml")
    assert not doc.located
    assert doc.pos(("nodes", "a", "in", 0)).line == 3 and doc.located  # type: ignore[union-attr]


_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**110), 10**110), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["yes", "no", "010", "0x1F", "0o17", "1e3", ".inf", "-.INF", ".NaN", "~", "null", "", "a: b",
                     "- x", "&a", "*a", "!!str", "#c", "[x]", "1_000"]),
    st.text(max_size=5),
)
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(_SCALARS, inner, max_size=4)),
                       max_leaves=25)


@settings(max_examples=int(os.environ.get("CG_FUZZ_EXAMPLES", "300")), deadline=None,
          derandomize="CG_FUZZ_EXAMPLES" not in os.environ)  # as tests/cli/test_fuzz.py: the same examples in CI
@given(data=st.dictionaries(st.text(max_size=4), _VALUES, max_size=5), flow=st.sampled_from([None, True, False]),
       edit=st.integers(0, 6), where=st.integers(0, 10_000))
def test_random_documents(data: dict[Any, Any], flow: bool | None, edit: int, where: int) -> None:
    text = yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True, sort_keys=False)
    lines = text.splitlines(keepends=True)
    k = where % max(1, len(lines))
    if edit == 1 and lines:  # a line twice: often a duplicate key
        lines.insert(k, lines[k])
    elif edit == 2 and lines:  # an anchor, an alias, a tag, a plain number
        lines[k] = lines[k].replace(": ", ": &a ", 1)
    elif edit == 3 and lines:
        lines[k] = lines[k].replace(": ", ": *a ", 1)
    elif edit == 4 and lines:
        lines[k] = lines[k].replace(": ", ": !!str ", 1)
    elif edit == 5 and lines:
        lines[k] = lines[k].replace("'", "", 2)  # a quoted scalar becomes plain: resolved by the YAML 1.2 rules
    agree("".join(lines))
