"""The limits of cg/limits.py: each refuses with CG004 and a position, and each can be raised for
one run by an option of `cg` or an environment variable."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import GRAPHS, cg

from cg.limits import Limits, LimitValueError, from_env, parse_limit

BIG_INPUT = """cg: 1
inputs:
  W: {shape: [100000, 100000]}
nodes:
  s: {op: sum, in: [W]}
outputs: [s]
"""

BIG_NODE = """cg: 1
inputs:
  p: {shape: [4000, 1]}
  r: {shape: [1, 4000]}
nodes:
  q: {op: add, in: [p, r]}
  s: {op: sum, in: [q]}
outputs: [s]
"""


def write(tmp_path: Path, text: str, name: str = "g.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def with_env(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`cg ARGS` with these variables set (in-process: tests/conftest.py)."""
    r = cg(*args, env=dict(env))
    return subprocess.CompletedProcess(["cg", *args], r.code, r.out, r.err)


def test_an_input_too_big_is_refused_at_its_shape(tmp_path: Path) -> None:
    path = write(tmp_path, BIG_INPUT)
    r = cg("validate", str(path))
    assert r.code == 1
    assert r.out == (f"{path}:3:14: node 'W': 10,000,000,000 numbers in one tensor, more than 10,000,000;"
                     " raise it with CG_MAX_ELEMENTS=N or `cg --max-elements N` [CG004]\n")
    assert cg("check", str(path)).code == 1  # before any random input is drawn: no MemoryError


def test_a_node_too_big_is_refused_where_it_is_made_and_the_limit_can_be_raised(tmp_path: Path) -> None:
    path = write(tmp_path, BIG_NODE)
    r = cg("validate", str(path))
    assert r.code == 1 and r.out.startswith(f"{path}:6:3: node 'q': add: the result would have 16,000,000 numbers")
    assert "[CG004]" in r.out
    assert cg("--max-elements", "2e7", "validate", str(path)).code == 0
    assert with_env("validate", str(path), CG_MAX_ELEMENTS="20_000_000").returncode == 0


def test_file_size_limit_by_option_and_environment() -> None:
    path = str(GRAPHS / "logreg.yaml")
    r = cg("--max-bytes", "100", "validate", path)
    assert r.code == 1 and "file is larger than the limit of 100 bytes" in r.out and "CG_MAX_BYTES" in r.out
    assert with_env("validate", path, CG_MAX_BYTES="100").returncode == 1
    assert with_env("validate", path, CG_MAX_BYTES="1e6").returncode == 0


def test_depth_and_value_count_limits_can_be_lowered(tmp_path: Path) -> None:
    path = write(tmp_path, "cg: 1\ninputs: {x: [[[1.0]]]}\nnodes: {s: {op: sum, in: [x]}}\noutputs: [s]\n")
    assert cg("validate", str(path)).code == 0
    r = cg("--max-depth", "3", "validate", str(path))
    assert r.code == 1 and "nesting is deeper than 3 levels" in r.out and "CG_MAX_DEPTH" in r.out
    r = cg("--max-values", "5", "validate", str(path))
    assert r.code == 1 and "more than 5 values" in r.out and "[CG004]" in r.out


def test_command_line_values_obey_the_element_limit() -> None:
    r = cg("--max-elements", "3", "run", str(GRAPHS / "log3x2p5xy.yaml"), "--inputs", "x=[1,2,3,4],y=3")
    assert r.code == 2 and "more than 3 numbers" in r.err and "CG_MAX_ELEMENTS" in r.err


@pytest.mark.parametrize("command", [["validate"], ["run", "--inputs", "x=2,y=3"], ["check"]])
def test_the_node_limit_holds_for_graphs_without_functions(command: list[str]) -> None:
    """logreg.yaml has 4 nodes and no function calls or expressions: the limit used to be checked
    only when calls were expanded."""
    r = cg("--max-nodes", "3", command[0], str(GRAPHS / "logreg.yaml"), *command[1:])
    assert r.code == 1, r.out + r.err
    assert "the graph has more than 3 nodes" in r.out + r.err and "[CG004]" in r.out + r.err
    assert cg("--max-nodes", "4", command[0], str(GRAPHS / "logreg.yaml"), *command[1:]).code == 0


@pytest.mark.parametrize("bad", ["0", "-5", "abc", "1.5", "1e-3", "nan", "1e400"])
def test_bad_limits_are_usage_errors(bad: str) -> None:
    r = cg("--max-nodes", bad, "validate", str(GRAPHS))
    assert r.code == 2 and "--max-nodes must be a positive whole number" in r.err
    p = with_env("validate", str(GRAPHS), CG_MAX_NODES=bad)
    assert p.returncode == 2 and "CG_MAX_NODES must be a positive whole number" in p.stderr
    assert "Traceback" not in p.stderr


def test_parse_limit_and_from_env() -> None:
    assert parse_limit("1e9", "x") == 10**9 and parse_limit("1_000", "x") == 1000
    with pytest.raises(LimitValueError):
        parse_limit("2.5", "x")
    assert from_env({"CG_MAX_NODES": "7"}) == Limits(max_nodes=7)
    assert from_env({}) == Limits()
