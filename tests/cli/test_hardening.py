"""Inputs built to break a loader, through the real command line: each one gets a clear error
(or a documented acceptance) within a time limit (the process is killed past it) and a memory
limit (2 GB of address space, set with RLIMIT_AS before cg runs), and never a traceback. Each run
is a process of its own, forked from the server of tests/forkserver.py (cg already imported)."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, CliResult

from cg.cli.values import MAX_ELEMENTS
from cg.parse.yamldoc import MAX_BYTES, MAX_DEPTH, MAX_VALUES

resource = pytest.importorskip("resource")  # RLIMIT_AS: POSIX only
import forkserver  # noqa: E402 - POSIX only, as resource

MEMORY = 2 * 1024**3
TAIL = "nodes:\n  n: {op: neg, in: [x]}\noutputs: [n]\n"


def cg(*args: str, stdin: bytes | None = None, timeout: float = 60, real: bool = False) -> CliResult:
    """`cg ...` in a process of its own under the memory limit; a failure past `timeout`. Forked
    from the server of tests/forkserver.py, or with `real` a process started afresh (the early jobs
    below, which run in a thread of their own)."""
    with tempfile.TemporaryDirectory() as tmp:
        files = Path(tmp)
        (files / "stdin").write_bytes(stdin or b"")
        how = forkserver.real_run if real else forkserver.client().run
        done = how(list(args), cwd=ROOT, stdin=files / "stdin", stdout=files / "stdout", stderr=files / "stderr",
                   env=forkserver.clean_env(), timeout=timeout, address_space=MEMORY)
        assert not done.hung, f"cg {' '.join(args)[:200]}: killed after {timeout} s"
        result = CliResult(done.code, (files / "stdout").read_bytes().decode("utf-8", "replace"),
                           (files / "stderr").read_bytes().decode("utf-8", "replace"))
    assert "Traceback" not in result.out + result.err, result.err[-2000:]
    assert "internal error" not in result.err, result.err[-2000:]
    return result


def refused(path: Path, code: str, words: str, timeout: float = 60) -> CliResult:
    return is_refusal(cg("validate", str(path), timeout=timeout), code, words)


def is_refusal(r: CliResult, code: str, words: str) -> CliResult:
    assert r.code == 1, r.out + r.err
    assert f"[{code}]" in r.out and words in r.out, r.out[:2000]
    assert max(len(line) for line in r.out.splitlines()) < 400  # messages never grow with the input
    return r


def write(tmp_path: Path, content: str | bytes, name: str = "g.yaml") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


# ---- YAML that explodes, recurses or runs on -------------------------------------------------


def test_alias_bomb_is_refused_at_the_first_anchor(tmp_path: Path) -> None:
    lines = ["cg: 1", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{k}: &a{k} [{', '.join([f'*a{k - 1}'] * 9)}]" for k in range(1, 10)]
    message = "YAML anchors (&a0) and aliases are not supported"
    r = refused(write(tmp_path, "\n".join(lines) + "\n"), "CG005", message, 20)
    assert ":2:5:" in r.out


@pytest.mark.parametrize("levels", [100, 30_000])
@pytest.mark.parametrize("kind", ["flow list", "flow mapping", "block mapping"])
def test_deep_nesting_is_refused_before_it_is_built(tmp_path: Path, levels: int, kind: str) -> None:
    if kind == "flow list":
        value = "[" * levels + "1" + "]" * levels
    elif kind == "flow mapping":
        value = "{a: " * levels + "1" + "}" * levels
    else:
        if levels > 1000:  # 30,000 indented levels would be 450 MB of spaces: the size limit's case
            pytest.skip("block nesting this deep is over the size limit first")
        value = "".join("\n" + " " * (2 + k) + "a:" for k in range(levels)) + " 1"
    refused(write(tmp_path, f"cg: 1\ninputs:\n  x: {value}\n{TAIL}"), "CG004",
            f"nesting is deeper than {MAX_DEPTH} levels", 30)


TEN_MB = 10 * 1024 * 1024


def test_a_10_mb_doc_line_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, f"cg: 1\ndoc: {'a' * TEN_MB}\ninputs: {{x: 1.0}}\n{TAIL}")
    r = cg("validate", str(path), timeout=60)
    assert r.code == 0 and "1 valid" in r.err


def test_a_10_mb_comment_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, f"# {'#' * TEN_MB}\ncg: 1\ninputs: {{x: 1.0}}\n{TAIL}")
    assert cg("validate", str(path)).code == 0


def test_a_10_mb_name_is_refused_briefly(tmp_path: Path) -> None:
    path = write(tmp_path, f"cg: 1\ninputs: {{x: 1.0}}\nnodes:\n  n: {{op: neg, in: [{'q' * TEN_MB}]}}\noutputs: [n]\n")
    refused(path, "CG110", "is not an input or node")


def test_a_10_mb_key_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, f"cg: 1\ninputs:\n  {'k' * TEN_MB}: 1.0\n{TAIL}")
    refused(path, "CG003", "invalid YAML")  # YAML's implicit keys are at most 1024 characters


def test_a_10_mb_number_is_refused_before_int_parsing(tmp_path: Path) -> None:
    refused(write(tmp_path, f"cg: 1\ninputs:\n  x: {'9' * TEN_MB}\n{TAIL}"), "CG007", "number too long")


# The four runs of 5 to 15 s each (cg's own work at the limits) are started early, in real processes
# on a second core, while the other tests run (tests/conftest.py: `early`); the tests check them.


def _ten_mb_list(folder: Path) -> CliResult:
    numbers = ",".join(["1"] * (TEN_MB // 2))
    return cg("validate", str(write(folder, f"cg: 1\ninputs:\n  x: [{numbers}]\n{TAIL}")), timeout=60, real=True)


@pytest.mark.early(job=_ten_mb_list)
def test_a_10_mb_list_of_numbers_is_over_the_value_limit(early: CliResult) -> None:
    is_refusal(early, "CG004", f"more than {MAX_VALUES:,} values")


# ---- numbers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "code", "words"), [
    ("1e999", "CG007", "number out of range: 1e999"),
    ("-1.7e309", "CG007", "number out of range"),
    ("9" * 5000, "CG007", "number too long (5000 digits"),
    ("0x" + "f" * 200, "CG007", "number too long (200 digits"),
    (".nan", "CG007", "non-finite numbers (.nan, .inf) are not allowed"),
    (".inf", "CG007", "non-finite numbers"),
    ("-.Inf", "CG007", "non-finite numbers"),
])  # fmt: skip
def test_numbers_that_cannot_be_used(tmp_path: Path, text: str, code: str, words: str) -> None:
    refused(write(tmp_path, f"cg: 1\ninputs:\n  x: {text}\n{TAIL}"), code, words)


def test_an_int_beyond_int64_is_a_float_or_named_as_such(tmp_path: Path) -> None:
    # A float input takes it as the float it is; an int input cannot hold it, and says why.
    assert cg("validate", str(write(tmp_path, f"cg: 1\ninputs:\n  x: 99999999999999999999\n{TAIL}"))).code == 0
    text = f"cg: 1\ninputs:\n  x: {{dtype: int, value: 99999999999999999999}}\n{TAIL}"
    r = cg("validate", str(write(tmp_path, text)))
    assert r.code == 1 and "rectangular" not in r.out and "int64" in r.out


def test_1e308_loads_and_its_overflow_is_a_runtime_error(tmp_path: Path) -> None:
    path = write(tmp_path, "cg: 1\ninputs:\n  x: 1e308\nnodes:\n  d: {op: mul, in: [10, x]}\noutputs: [d]\n")
    r = cg("run", str(path))
    assert r.code == 1 and "node 'd': mul(10, x): produced a non-finite value" in r.err and "[CG200]" in r.err


# ---- files that are not graph text --------------------------------------------------------------


@pytest.mark.parametrize(("content", "code", "words"), [
    (b"", "CG003", "empty file: expected a mapping with 'cg: 1'"),
    (b"   \n\n  \n", "CG003", "empty file"),
    (b"# only a comment\n", "CG003", "empty file"),
    (b"- cg: 1\n- nodes: {}\n", "CG003", "found a list"),
    (b"just some words\n", "CG003", "found a scalar"),
    (b"42\n", "CG003", "found a scalar"),
    (b"cg: 1\nx: caf\xe9\n", "CG002", "not UTF-8 text (invalid byte 0xe9 at line 2, column 7)"),
    ("cg: 1\n".encode("utf-16"), "CG002", "file is UTF-16 text; save it as UTF-8"),
    (b"cg: 1\ninputs:\n\tx: 1.0\n", "CG003", "tab character; indent with spaces, not tabs"),
    (b"cg: 1\ninputs: {x: 1.0}\x00\n", "CG002", "binary file, not text (NUL byte at line 2, column 17)"),
    (b"cg: 1\ninputs: {x: 1.0\x07}\n", "CG002", "control character U+0007 at line 2, column 16"),
])  # fmt: skip
def test_files_that_are_not_graph_text(tmp_path: Path, content: bytes, code: str, words: str) -> None:
    refused(write(tmp_path, content), code, words, 20)


def test_a_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    """Documented acceptance: Windows editors write a UTF-8 BOM; it is not part of the text."""
    path = write(tmp_path, b"\xef\xbb\xbfcg: 1\ninputs: {x: 2.0}\n" + TAIL.encode())
    assert cg("validate", str(path)).code == 0
    r = cg("run", str(path), "-f", "json")
    assert r.code == 0 and r.json()["nodes"][1]["value"] == -2.0


@pytest.mark.parametrize("seed", range(8))
def test_random_bytes_are_refused(tmp_path: Path, seed: int) -> None:
    junk = random.Random(seed).randbytes(64 * 1024)
    r = cg("validate", str(write(tmp_path, junk)), timeout=20)
    assert r.code == 1 and ("[CG002]" in r.out or "[CG003]" in r.out), r.out[:500]


def test_random_bytes_on_stdin_too() -> None:
    r = cg("validate", "-", stdin=random.Random(99).randbytes(4096), timeout=20)
    assert r.code == 1 and "<stdin>" in r.out


# ---- YAML 1.1 traps -----------------------------------------------------------------------------


def test_yes_no_on_off_are_names(tmp_path: Path) -> None:
    """Documented acceptance: in YAML 1.2 these are plain strings, so they work as names."""
    text = "cg: 1\ninputs: {yes: 1.0, no: 2.0}\nnodes:\n  on: {op: add, in: [yes, no]}\n  off: {op: neg, in: [on]}\n"
    r = cg("run", str(write(tmp_path, text + "outputs: [off]\n")), "-f", "json")
    assert r.code == 0
    assert {n["id"]: n["value"] for n in r.json()["nodes"]} == {"yes": 1.0, "no": 2.0, "on": 3.0, "off": -3.0}


@pytest.mark.parametrize(("where", "words"), [
    ("keepdims: yes", "got the string 'yes' (YAML 1.2 reads yes as text; write true)"),
    ("keepdims: off", "YAML 1.2 reads off as text; write false"),
])  # fmt: skip
def test_yes_where_a_boolean_is_expected_says_why(tmp_path: Path, where: str, words: str) -> None:
    text = f"cg: 1\ninputs: {{x: [1.0, 2.0]}}\nnodes:\n  s: {{op: sum, in: [x], {where}}}\noutputs: [s]\n"
    refused(write(tmp_path, text), "CG100", words)


def test_yes_where_a_number_is_expected_says_why(tmp_path: Path) -> None:
    refused(write(tmp_path, f"cg: 1\ninputs:\n  x: yes\n{TAIL}"), "CG100", "YAML 1.2 reads yes as text")


@pytest.mark.parametrize(("text", "value"), [("010", 10.0), ("0x10", 16.0), ("0o10", 8.0), ("1e3", 1000.0),
                                              ("+1.5", 1.5), ("-2E-1", -0.2)])
def test_yaml_12_numbers(tmp_path: Path, text: str, value: float) -> None:
    """Documented acceptance: 010 is ten (YAML 1.1 said eight), 1e3 a number (1.1: a string)."""
    r = cg("run", str(write(tmp_path, f"cg: 1\ninputs:\n  x: {text}\n{TAIL}")), "-f", "json")
    assert r.code == 0 and r.json()["nodes"][0]["value"] == value


# ---- limits -------------------------------------------------------------------------------------


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with open(path, "wb") as f:
        f.write(b"cg: 1\ninputs:\n  x: [")
        f.write(b"1, " * (MAX_BYTES // 3 + 10))  # a constant of ~17 million entries
        f.write(b"1]\n" + TAIL.encode())
    refused(path, "CG004", f"file is larger than the limit of {MAX_BYTES:,} bytes", 20)


def _three_million_entries(folder: Path) -> CliResult:
    rows = ", ".join(["[" + ", ".join(["0"] * 1000) + "]"] * 3000)
    text = f"cg: 1\ninputs: {{x: 1.0}}\nnodes:\n  n: {{op: mul, in: [x, [{rows}]]}}\noutputs: [n]\n"
    return cg("validate", str(write(folder, text)), timeout=60, real=True)


@pytest.mark.early(job=_three_million_entries)
def test_a_constant_of_three_million_entries_is_over_the_value_limit(early: CliResult) -> None:
    is_refusal(early, "CG004", f"more than {MAX_VALUES:,} values")


def _near_the_value_limit(folder: Path) -> CliResult:
    n = (MAX_VALUES - 100) // 8
    body = "".join(f"  x{i}: {{op: sin, in: [x{i - 1}]}}\n" for i in range(1, n + 1))
    path = write(folder, f"cg: 1\ninputs: {{x0: 1.0}}\nnodes:\n{body}outputs: [x{n}]\n")
    return cg("run", str(path), "-f", "json", "-o", str(folder / "out.json"), timeout=180, real=True)


@pytest.mark.early(job=_near_the_value_limit)
def test_a_graph_near_the_value_limit_still_runs(early: CliResult) -> None:
    """About 250,000 nodes (7 values each): within the limit, in bounded memory and time."""
    assert early.code == 0, early.err


def test_an_npy_value_of_10_to_the_8_numbers_is_refused_from_its_header(tmp_path: Path) -> None:
    path = tmp_path / "big.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (10**8,)})
        f.truncate(f.tell() + 8 * 10**8)  # sparse: 800 MB that take no disk and are never read
    graph = write(tmp_path, "cg: 1\ninputs: {x: {shape: [100000000]}}\nnodes: {s: {op: sum, in: [x]}}\noutputs: [s]\n")
    r = cg("--max-elements", "1e7", "run", str(graph), "--inputs", f"x=@{path}", timeout=20)
    assert r.code == 1 and "[CG004]" in r.err  # the graph's own input shape is over the limit
    small = write(tmp_path, "cg: 1\ninputs: {x: {shape: [10]}}\nnodes: {s: {op: sum, in: [x]}}\noutputs: [s]\n",
                  "s.yaml")
    r = cg("run", str(small), "--inputs", f"x=@{path}", timeout=20)
    assert r.code == 2 and f"100,000,000 numbers; cg refuses values of more than {MAX_ELEMENTS:,}" in r.err
    assert "[CG300]" in r.err


def _json_over_the_element_limit(folder: Path) -> CliResult:
    path = folder / "big.json"
    path.write_text("[" + "1," * MAX_ELEMENTS + "1]")
    graph = write(folder, f"cg: 1\ninputs: {{x: 1.0}}\n{TAIL}")
    return cg("run", str(graph), "--inputs", f"x=@{path}", timeout=60, real=True)


@pytest.mark.early(job=_json_over_the_element_limit)
def test_a_json_value_over_the_element_limit_is_refused(early: CliResult) -> None:
    assert early.code == 2 and f"more than {MAX_ELEMENTS:,} numbers" in early.err


def test_a_huge_declared_shape_fails_cleanly_when_drawn(tmp_path: Path) -> None:
    """A shape of 10^10 entries is over the element limit (CG004, tests/test_limits.py); with the
    limit raised it validates (no value is held), and drawing random values for it runs out of
    memory and says so, with exit code 1. The total budget refuses it first (tests/cli/test_budget.py)."""
    path = write(tmp_path, "cg: 1\ninputs:\n  W: {shape: [100000, 100000]}\nnodes:\n  s: {op: sum, in: [W]}\n"
                 "outputs: [s]\n")
    assert cg("validate", str(path)).code == 1
    assert cg("--max-elements", "1e11", "validate", str(path)).code == 0
    r = cg("--max-elements", "1e11", "check", str(path), timeout=60)
    assert r.code == 1 and "cg check would hold or compute" in r.out and "[CG004]" in r.out
    r = cg("--max-elements", "1e11", "--max-total", "1e15", "check", str(path), timeout=60)
    assert r.code == 1 and "too large" in r.err


# ---- NaN and Inf at run time: the first offending node is named ----------------------------------


@pytest.mark.parametrize(("op", "x", "args", "what"), [
    ("log", "-1.0", "[x]", "log(x): produced a non-finite value"),
    ("log", "0.0", "[x]", "log(x): produced a non-finite value"),
    ("sqrt", "0.0", "[x]", "sqrt(x): sent a non-finite gradient (NaN or Inf) back to 'x'"),
    ("div", "0.0", "[1, x]", "div(1, x): produced a non-finite value"),
    ("pow", "-1.0", "[x, 0.5]", "pow(x, 0.5): produced a non-finite value"),
    ("pow", "0.0", "[x, -1]", "pow(x, -1): produced a non-finite value"),
    ("exp", "1000.0", "[x]", "exp(x): produced a non-finite value"),
])  # fmt: skip
def test_nonfinite_names_the_first_offending_node(tmp_path: Path, op: str, x: str, args: str, what: str) -> None:
    nodes = f"  y: {{op: {op}, in: {args}}}\n  z: {{op: mul, in: [2, y]}}\n"
    text = f"cg: 1\ninputs:\n  x: {x}\nnodes:\n{nodes}outputs: [z]\n"
    path = write(tmp_path, text)
    r = cg("run", str(path))
    assert r.code == 1 and f"{path}:5:3: node 'y': {what}" in r.err and "[CG200]" in r.err
    kept = cg("run", str(path), "--nonfinite", "keep", "-f", "json")
    assert kept.code == 0 and kept.json()["nonfinite"]
