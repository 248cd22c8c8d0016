"""Command-line values: numbers, bracketed lists, @file.npy / @file.json, and name=value lists."""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cg.cli.values import MAX_DEPTH, parse_assignments, parse_inputs, parse_value
from cg.errors import UsageError

EXPECTED = "expected a number or a bracketed list like [1, 2, 3]"


def nest(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def assert_usage(fn: Callable[[], object], substring: str) -> UsageError:
    """Every bad value is a usage error (exit code 2) with one CG300 diagnostic saying `substring`."""
    with pytest.raises(UsageError) as info:
        fn()
    err = info.value
    assert err.exit_code == 2
    assert [d.code for d in err.diagnostics] == ["CG300"]
    assert substring in err.diagnostics[0].message, err.diagnostics[0].message
    return err


# ---- parse_value: literals ------------------------------------------------------------------

GOOD_VALUES = [
    ("2", np.int64, (), 2),
    ("-3", np.int64, (), -3),
    ("0", np.int64, (), 0),
    ("  7  ", np.int64, (), 7),
    ("2.5", np.float64, (), 2.5),
    ("-0.0", np.float64, (), 0.0),
    ("1e3", np.float64, (), 1000.0),
    ("-2.5E-4", np.float64, (), -2.5e-4),
    ("1.5e+2", np.float64, (), 150.0),
    ("9223372036854775807", np.int64, (), 2**63 - 1),
    ("-9223372036854775808", np.int64, (), -(2**63)),
    ("1.7976931348623157e308", np.float64, (), 1.7976931348623157e308),
    ("[1,2,3]", np.int64, (3,), [1, 2, 3]),
    ("[ 1 ,\t2 , 3 ]", np.int64, (3,), [1, 2, 3]),
    ("[[1,2],[3,4]]", np.int64, (2, 2), [[1, 2], [3, 4]]),
    ("[[1, 2], [3, 4]]", np.int64, (2, 2), [[1, 2], [3, 4]]),
    ("[1, 2.5]", np.float64, (2,), [1.0, 2.5]),
    ("[[1, 2], [3, 4.0]]", np.float64, (2, 2), [[1, 2], [3, 4]]),
    ("[1e3]", np.float64, (1,), [1000.0]),
    ("[]", np.float64, (0,), []),
    ("[[], []]", np.float64, (2, 0), np.zeros((2, 0))),
    ("[[[1]], [[2]]]", np.int64, (2, 1, 1), [[[1]], [[2]]]),
    (nest(MAX_DEPTH), np.int64, (1,) * MAX_DEPTH, np.ones((1,) * MAX_DEPTH)),
]


@pytest.mark.parametrize(("text", "dtype", "shape", "expected"), GOOD_VALUES, ids=lambda v: str(v)[:30])
def test_good_values(text: str, dtype: type, shape: tuple[int, ...], expected: Any) -> None:
    got = parse_value(text, what="input 'x'")
    assert isinstance(got, np.ndarray)
    assert got.dtype == dtype
    assert got.shape == shape
    np.testing.assert_array_equal(got, expected)


BAD_VALUES = [
    ("abc", f"input 'x': {EXPECTED}, got 'abc'"),
    ("", f"input 'x': {EXPECTED}, got ''"),
    ("   ", f"input 'x': {EXPECTED}, got ''"),
    ("[1, abc]", "'abc' is not a number"),
    ("nan", "NaN and infinity are not allowed"),
    ("NaN", "NaN and infinity are not allowed"),
    ("inf", "NaN and infinity are not allowed"),
    ("-inf", "NaN and infinity are not allowed"),
    ("Infinity", "NaN and infinity are not allowed"),
    ("-Infinity", "NaN and infinity are not allowed"),
    ("[1, NaN]", "NaN and infinity are not allowed"),
    ("1e999", "'1e999' is too large for float64"),
    ("[1, -1e999]", "'-1e999' is too large for float64"),
    ("9223372036854775808", "does not fit in int64"),
    ("[1, -9223372036854775809]", "does not fit in int64"),
    ("1" * 5000, "does not fit in int64"),
    ("true", f"{EXPECTED}, got 'true': booleans and null are not allowed"),
    ("[true, false]", "booleans and null are not allowed"),
    ("null", "booleans and null are not allowed"),
    ('"abc"', "strings are not allowed"),
    ("['a']", "strings are not allowed"),
    ('{"a":1}', "objects are not allowed"),
    ('{"a": [1, 2]}', "objects are not allowed"),
    ("[[1,2],[3]]", "rows have different lengths"),
    ("[1,[2]]", "rows have different lengths"),
    ("[[1],2]", "rows have different lengths"),
    ("[1,2", "missing ']'"),
    ("1]", "unmatched ']'"),
    ("]", "unmatched ']'"),
    ("[1 2]", EXPECTED),
    ("[1,]", EXPECTED),
    ("[,1]", EXPECTED),
    ("1,2", EXPECTED),
    ("[1][2]", EXPECTED),
    ("01", f"{EXPECTED}, got '01'"),
    ("[01]", "'01' is not a number"),
    ("+1", f"{EXPECTED}, got '+1'"),
    ("[+1]", "'+1' is not a number"),
    (".5", "got '.5'"),
    ("[1.]", "'1.' is not a number"),
    ("0x10", "got '0x10'"),
    ("1_000", "got '1_000'"),
    (nest(MAX_DEPTH + 1), f"nested more than {MAX_DEPTH} levels deep"),
    (nest(5000), f"nested more than {MAX_DEPTH} levels deep"),
    ("[" * 5000, f"nested more than {MAX_DEPTH} levels deep"),
    ("@", "expected a file path after '@'"),
    ("@values.txt", "expected a .npy or .json file after '@', got 'values.txt'"),
]


@pytest.mark.parametrize(("text", "message"), BAD_VALUES, ids=lambda v: str(v)[:30])
def test_bad_values(text: str, message: str) -> None:
    assert_usage(lambda: parse_value(text, what="input 'x'"), message)


def test_message_names_what() -> None:
    assert_usage(lambda: parse_value("abc", what="--seed"), f"--seed: {EXPECTED}, got 'abc'")


def test_long_text_is_shortened_in_messages() -> None:
    err = assert_usage(lambda: parse_value(nest(5000), what="--seed"), "nested")
    assert len(err.diagnostics[0].message) < 200


# ---- parse_value: files ---------------------------------------------------------------------


def save_npy(tmp_path: Path, name: str, array: np.ndarray) -> str:
    path = tmp_path / name
    np.save(path, array, allow_pickle=True)
    return f"@{path}"


def write(tmp_path: Path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return f"@{path}"


GOOD_NPY = [
    (np.array([[1.5, 2.0], [3.0, 4.0]]), np.float64),
    (np.array([1, 2, 3], dtype=np.int32), np.int64),
    (np.array([1, 2, 3], dtype=np.uint8), np.int64),
    (np.array([2**63 - 1], dtype=np.uint64), np.int64),
    (np.array([0.5, 1.5], dtype=np.float32), np.float64),
    (np.array([0.5], dtype=np.float16), np.float64),
    (np.array([1, 2], dtype=">i4"), np.int64),
    (np.array(3.25), np.float64),
    (np.zeros((0, 3)), np.float64),
]


@pytest.mark.parametrize(("array", "dtype"), GOOD_NPY, ids=lambda v: str(getattr(v, "dtype", v)))
def test_good_npy(tmp_path: Path, array: np.ndarray, dtype: type) -> None:
    got = parse_value(save_npy(tmp_path, "v.npy", array), what="input 'img'")
    assert got.dtype == dtype
    assert got.shape == array.shape
    np.testing.assert_array_equal(got, array)


BAD_NPY = [
    (np.array([True, False]), "got dtype bool"),
    (np.array(["a", "b"]), "got dtype <U1"),
    (np.array([1 + 2j]), "got dtype complex128"),
    (np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]), "got dtype"),
    (np.array(["2020-01-01"], dtype="datetime64[D]"), "got dtype datetime64[D]"),
    (np.array([1, {"a": 1}], dtype=object), "refuses to unpickle"),
    (np.array([1.0, np.nan]), "NaN and infinity are not allowed"),
    (np.array([np.inf]), "NaN and infinity are not allowed"),
    (np.array([2**63], dtype=np.uint64), "do not fit in int64"),
]


@pytest.mark.parametrize(("array", "message"), BAD_NPY, ids=lambda v: str(getattr(v, "dtype", v)))
def test_bad_npy(tmp_path: Path, array: np.ndarray, message: str) -> None:
    value = save_npy(tmp_path, "v.npy", array)
    err = assert_usage(lambda: parse_value(value, what="input 'img'"), message)
    assert err.diagnostics[0].message.startswith("input 'img' (file '")


class _Boom:
    """Unpickling this would create a marker file, proving code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


def test_npy_never_runs_pickles(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    in_npy = np.array([_Boom(str(marker))], dtype=object)
    value = save_npy(tmp_path, "evil.npy", in_npy)
    assert_usage(lambda: parse_value(value, what="input 'img'"), "refuses to unpickle")
    raw = write(tmp_path, "raw.npy", pickle.dumps(_Boom(str(marker))))
    assert_usage(lambda: parse_value(raw, what="input 'img'"), "not a .npy file")
    assert not marker.exists()


def test_npz_renamed_to_npy(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", x=np.ones(2))
    os.rename(tmp_path / "a.npz", tmp_path / "a.npy")
    assert_usage(lambda: parse_value(f"@{tmp_path / 'a.npy'}", what="input 'img'"), "npz")


def test_text_named_npy_is_not_a_npy_file(tmp_path: Path) -> None:
    value = write(tmp_path, "t.npy", b"[1, 2, 3]\n")
    assert_usage(lambda: parse_value(value, what="input 'v'"), "not a .npy file (it does not start with numpy's magic")


def test_npy_header_that_lies_is_refused_before_reading(tmp_path: Path) -> None:
    # A 144-byte file whose header claims 10^10 numbers: over the element limit, refused from the header.
    from numpy.lib import format as npy

    def header(shape: tuple[int, ...]) -> bytes:
        import io

        buf = io.BytesIO()
        npy.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": shape})
        return buf.getvalue()

    big = write(tmp_path, "big.npy", header((100000, 100000)) + b"\0" * 16)
    assert len((tmp_path / "big.npy").read_bytes()) < 200
    assert_usage(lambda: parse_value(big, what="input 'W'"), "10,000,000,000 numbers; cg refuses")
    short = write(tmp_path, "short.npy", header((1000,)) + b"\0" * 80)  # 10 numbers where 1,000 are promised
    assert_usage(lambda: parse_value(short, what="input 'W'"), "the header says 1,000 numbers")


def test_npy_in_fortran_order_and_big_endian(tmp_path: Path) -> None:
    a = np.asfortranarray(np.arange(6, dtype=">f4").reshape(2, 3))
    np.save(tmp_path / "f.npy", a)
    assert np.array_equal(parse_value(f"@{tmp_path / 'f.npy'}", what="x"), a.astype(np.float64))


def test_fifo_and_device_are_refused_not_waited_on(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "p.npy")
    assert_usage(lambda: parse_value(f"@{tmp_path / 'p.npy'}", what="x"), "a FIFO (named pipe), not a regular file")
    os.symlink("/dev/zero", tmp_path / "z.json")
    assert_usage(lambda: parse_value(f"@{tmp_path / 'z.json'}", what="x"), "a device, not a regular file")


def test_garbage_npy(tmp_path: Path) -> None:
    value = write(tmp_path, "g.npy", b"\x93NUMPY garbage")
    assert_usage(lambda: parse_value(value, what="input 'img'"), "not a valid .npy file")


@pytest.mark.parametrize("name", ["missing.npy", "missing.json"])
def test_missing_file(name: str) -> None:
    assert_usage(lambda: parse_value(f"@{name}", what="input 'img'"), f"cannot read file '{name}'")


def test_directory_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "d.json").mkdir()
    assert_usage(lambda: parse_value(f"@{tmp_path / 'd.json'}", what="input 'c'"), "cannot read file")


GOOD_JSON = [
    ("3", np.int64, 3),
    ("2.5\n", np.float64, 2.5),
    ("[[1, 2],\n [3, 4]]\n", np.int64, [[1, 2], [3, 4]]),
    ("[1, 2.0]", np.float64, [1.0, 2.0]),
    ("[]", np.float64, []),
]


@pytest.mark.parametrize(("content", "dtype", "expected"), GOOD_JSON)
def test_good_json(tmp_path: Path, content: str, dtype: type, expected: Any) -> None:
    got = parse_value(write(tmp_path, "vals.json", content), what="input 'cfg'")
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, expected)


BAD_JSON: list[tuple[str | bytes, str]] = [
    ('{"a": 1}', "objects are not allowed"),
    ('"abc"', "strings are not allowed"),
    ("true", "booleans and null are not allowed"),
    ("[1, NaN]", "NaN and infinity are not allowed"),
    ("1e999", "too large for float64"),
    ("[[1, 2], [3]]", "rows have different lengths"),
    ("", EXPECTED),
    (nest(5000), f"nested more than {MAX_DEPTH} levels deep"),
    (b"[1, \xff]", "not UTF-8 text"),
]


@pytest.mark.parametrize(("content", "message"), BAD_JSON, ids=lambda v: str(v)[:30])
def test_bad_json(tmp_path: Path, content: str | bytes, message: str) -> None:
    value = write(tmp_path, "vals.json", content)
    err = assert_usage(lambda: parse_value(value, what="input 'cfg'"), message)
    assert err.diagnostics[0].message.startswith("input 'cfg' (file '")


def test_tilde_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    write(tmp_path, "v.json", "[1, 2]")
    np.testing.assert_array_equal(parse_value("@~/v.json", what="input 'v'"), [1, 2])


# ---- parse_assignments ----------------------------------------------------------------------

GOOD_ASSIGNMENTS = [
    ("", []),
    ("   ", []),
    ("x=2", [("x", "2")]),
    (
        "x=2,y=3,v=[1,2,3],W=[[1,2],[3,4]]",
        [("x", "2"), ("y", "3"), ("v", "[1,2,3]"), ("W", "[[1,2],[3,4]]")],
    ),
    (" x = 2 , y=3 ", [("x", "2"), ("y", "3")]),
    ("v=[ [1, 2], [3, 4] ], s=5", [("v", "[ [1, 2], [3, 4] ]"), ("s", "5")]),
    ("img=@pic.npy,cfg=@vals.json", [("img", "@pic.npy"), ("cfg", "@vals.json")]),
    ("_a1=1,B_2=-2.5e3", [("_a1", "1"), ("B_2", "-2.5e3")]),
    ("x=abc", [("x", "abc")]),  # values are checked later, by parse_value
]


@pytest.mark.parametrize(("text", "expected"), GOOD_ASSIGNMENTS)
def test_good_assignments(text: str, expected: list[tuple[str, str]]) -> None:
    assert parse_assignments(text) == expected


BAD_ASSIGNMENTS = [
    ("x=", "got 'x=' (missing value)"),
    ("x", "got 'x' (missing '=')"),
    ("x=1,y", "got 'y' (missing '=')"),
    ("=2", "got '=2' (missing name)"),
    ("1x=2", "got '1x=2': a name is a letter or '_'"),
    ("x-y=2", "got 'x-y=2': a name"),
    ("x y=2", "got 'x y=2': a name"),
    ("x=1,,y=2", "got an empty item in 'x=1,,y=2'"),
    ("x=1,", "got an empty item"),
    (",x=1", "got an empty item"),
    (",", "got an empty item"),
    ("v=[1,2", "missing ']' in 'v=[1,2'"),
    ("x=1,v=[[1,2]", "missing ']' in 'v=[[1,2]'"),
    ("]", "unmatched ']' in ']'"),
    ("x=1,y=2]", "unmatched ']' in 'y=2]'"),
    ("x=1,x=2", "name 'x' given twice"),
]


@pytest.mark.parametrize(("text", "message"), BAD_ASSIGNMENTS)
def test_bad_assignments(text: str, message: str) -> None:
    assert_usage(lambda: parse_assignments(text), message)


def test_deep_brackets_in_assignments() -> None:
    """The split is a loop, not recursion; the depth cap then applies to the value."""
    assert parse_assignments(f"x={nest(5000)}") == [("x", nest(5000))]
    assert_usage(lambda: parse_inputs([f"x={nest(5000)}"]), "input 'x': ")


# ---- parse_inputs ---------------------------------------------------------------------------


def test_inputs_from_several_options_keep_order(tmp_path: Path) -> None:
    img = save_npy(tmp_path, "pic.npy", np.arange(6, dtype=np.float32).reshape(2, 3))
    cfg = write(tmp_path, "vals.json", json.dumps([[1, 2], [3, 4]]))
    got = parse_inputs(["x=2,y=3.5,v=[1,2,3]", f"W=[[1,2],[3,4]],img={img}", f"cfg={cfg}"])
    assert list(got) == ["x", "y", "v", "W", "img", "cfg"]
    assert got["x"].dtype == np.int64 and got["x"].shape == ()
    assert got["y"].dtype == np.float64
    assert got["v"].tolist() == [1, 2, 3]
    assert got["W"].shape == (2, 2)
    assert got["img"].dtype == np.float64 and got["img"].shape == (2, 3)
    assert got["cfg"].dtype == np.int64 and got["cfg"].tolist() == [[1, 2], [3, 4]]


def test_no_inputs() -> None:
    assert parse_inputs([]) == {}
    assert parse_inputs([""]) == {}


BAD_INPUTS = [
    (["x=1", "x=2"], "input 'x' given more than once"),
    (["x=1,x=2"], "name 'x' given twice"),
    (["x=abc"], f"input 'x': {EXPECTED}, got 'abc'"),
    (["x=1", "y=[1,[2]]"], "input 'y': "),
    (["x=1", "y"], "missing '='"),
    (["img=@nowhere.npy"], "input 'img': cannot read file 'nowhere.npy'"),
]


@pytest.mark.parametrize(("texts", "message"), BAD_INPUTS)
def test_bad_inputs(texts: list[str], message: str) -> None:
    assert_usage(lambda: parse_inputs(texts), message)
