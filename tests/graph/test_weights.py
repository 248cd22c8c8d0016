"""Inputs whose default value is an array in a .npy file or an .npz archive (cg/graph/weights.py,
cg/graph/arrays.py), at the library level (cg.load / cg.loads): the array is the default exactly
as if it were written inline; paths stay inside the graph's folder (or `allow_paths`); the header
is checked (limits, shape, dtype, zip bombs) before any data is read; nothing is unpickled; every
problem is one diagnostic with its code, place and input."""

from __future__ import annotations

import errno
import io
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import cg
from cg import limits
from cg.errors import Diagnostic, GraphError
from cg.graph import weights
from cg.limits import Limits

TAIL = "nodes:\n  s: {op: sum, in: [w]}\noutputs: [s]\n"


def graph(folder: Path, entry: str, name: str = "g.yaml", tail: str = TAIL) -> Path:
    """A graph whose input w (line 3) is `{entry}`; its `file:` value starts at column 13."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"cg: 1\ninputs:\n  w: {{{entry}}}\n{tail}", encoding="utf-8")
    return path


def problems(path: Path, **options: Any) -> list[Diagnostic]:
    with pytest.raises(GraphError) as e:
        cg.load(path, **options)
    return e.value.diagnostics


def one(path: Path, code: str, col: int = 13, **options: Any) -> str:
    """The message of the one diagnostic, checked to be `code` at line 3, `col`, for input w."""
    found = problems(path, **options)
    assert len(found) == 1, found
    d = found[0]
    assert (d.code, d.file, d.pos and (d.pos.line, d.pos.col), d.node) == (code, str(path), (3, col), "w"), d
    return d.message


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def header_only(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    """A .npy header claiming `shape`, and no data after it."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def zip_with(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)


@pytest.fixture
def data_never_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any array data is read (the header alone must decide)."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the data was read")

    monkeypatch.setattr(weights, "read_data", refuse)


@pytest.fixture
def lowered() -> Iterator[None]:
    yield
    limits.set_current(None)


# ---- the array is the default value -----------------------------------------------------------------


def test_a_npy_file_is_the_default_value_with_its_shape(tmp_path: Path) -> None:
    np.save(tmp_path / "b.npy", np.array([0.5, -1.5, 2.0]))
    g = cg.load(graph(tmp_path, "file: b.npy, doc: bias"))
    w = g.inputs[0]
    assert w.default is not None and w.default.dtype == np.float64 and w.aval.shape == (3,)
    np.testing.assert_array_equal(w.default, [0.5, -1.5, 2.0])
    assert w.doc == "bias" and not w.shape_given
    assert float(cg.run(g).value("s")) == 1.0


def test_a_member_of_an_npz_by_key_and_by_member_name(tmp_path: Path) -> None:
    np.savez(tmp_path / "w.npz", W1=np.arange(6.0).reshape(2, 3), b1=np.ones(2))
    np.savez_compressed(tmp_path / "z.npz", W1=np.arange(6.0).reshape(2, 3))
    for entry in ("file: w.npz, key: W1", "file: w.npz, key: W1.npy", "file: z.npz, key: W1, shape: [2, 3]"):
        g = cg.load(graph(tmp_path, entry))
        np.testing.assert_array_equal(g.inputs[0].default, np.arange(6.0).reshape(2, 3))
        assert float(cg.run(g).value("s")) == 15.0


def test_the_same_numbers_as_written_inline_and_run_time_values_override(tmp_path: Path) -> None:
    W = np.array([[1.0, -2.0], [0.5, 3.0]])
    np.savez(tmp_path / "w.npz", W=W)
    body = "nodes:\n  h: {expr: 'tanh(W @ x)'}\n  s: {op: sum, in: [h]}\noutputs: [s]\n"
    from_file = cg.load(graph(tmp_path, "file: w.npz, key: W", tail="  x: [0.3, 0.7]\n" + body.replace("W", "w")))
    inline = cg.loads("cg: 1\ninputs:\n  W: [[1.0, -2.0], [0.5, 3.0]]\n  x: [0.3, 0.7]\n" + body)
    a, b = cg.run(from_file), cg.run(inline)
    assert a.value("s") == b.value("s")
    np.testing.assert_array_equal(a.grad("w"), b.grad("W"))
    np.testing.assert_array_equal(a.grad("x"), b.grad("x"))
    other = cg.run(from_file, {"w": np.eye(2)})
    assert float(other.value("s")) == pytest.approx(np.tanh(0.3) + np.tanh(0.7))


@pytest.mark.parametrize(("array", "entry", "dtype"), [
    (np.array([1, 2, 3], dtype=np.int32), "file: a.npy", np.float64),  # as an inline [1, 2, 3] is
    (np.array([1, 2, 3], dtype=np.uint8), "file: a.npy, dtype: int", np.int64),
    (np.array([0.5, 1.5], dtype=np.float32), "file: a.npy", np.float64),
    (np.array([1, 2], dtype=">i8"), "file: a.npy, dtype: int", np.int64),
    (np.asfortranarray(np.arange(6, dtype=">f8").reshape(2, 3)), "file: a.npy", np.float64),
    (np.array(2.5), "file: a.npy, shape: []", np.float64),
    (np.zeros((0, 3)), "file: a.npy", np.float64),
])
def test_dtypes_and_layouts_that_are_taken(tmp_path: Path, array: np.ndarray, entry: str, dtype: type) -> None:
    np.save(tmp_path / "a.npy", array)
    w = cg.load(graph(tmp_path, entry)).inputs[0]
    assert w.default is not None and w.default.dtype == dtype and w.default.shape == array.shape
    np.testing.assert_array_equal(w.default, array)


def test_a_json_graph_file(tmp_path: Path) -> None:
    np.save(tmp_path / "b.npy", np.array([1.0, 2.0]))
    path = tmp_path / "g.json"
    path.write_text('{"cg": 1,\n "inputs": {\n  "w": {"file": "b.npy"}},\n "nodes": {"s": {"op": "sum", "in": ["w"]}},'
                    ' "outputs": ["s"]}\n', encoding="utf-8")
    assert float(cg.run(cg.load(path)).value("s")) == 3.0
    path.write_text(path.read_text().replace("b.npy", "c.npy"))
    (d,) = problems(path)
    assert d.code == "CG141" and d.pos is not None and d.pos.line == 3 and d.node == "w"


def test_text_without_a_file_reads_from_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    np.save(tmp_path / "b.npy", np.array([1.0, 2.0]))
    monkeypatch.chdir(tmp_path)
    assert float(cg.run(cg.loads("cg: 1\ninputs:\n  w: {file: b.npy}\n" + TAIL)).value("s")) == 3.0


# ---- where files may come from ----------------------------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "shared"
    folder.mkdir()
    np.save(folder / "w.npy", np.array([1.0, 2.0]))
    return folder


@pytest.mark.parametrize("entry", ["../shared/w.npy", "sub/../../shared/w.npy", "{outside}/w.npy", "/etc/passwd.npy"])
def test_a_path_that_leaves_the_folder_is_refused(tmp_path: Path, outside: Path, entry: str) -> None:
    path = graph(tmp_path / "g", f"file: {entry.format(outside=outside)}")
    message = one(path, "CG140")
    assert message.endswith(f": it is outside the folder of g.yaml ({tmp_path / 'g'}{os.sep}); allow it with "
                            "`cg --allow-path DIR` (or CG_ALLOW_PATH)")
    assert message.startswith("cannot load '")


def test_a_symlink_out_is_refused_and_one_inside_is_followed(tmp_path: Path, outside: Path) -> None:
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "out.npy").symlink_to(outside / "w.npy")
    assert "is outside" in one(graph(tmp_path / "g", "file: out.npy"), "CG140")
    (tmp_path / "g" / "linked").symlink_to(outside, target_is_directory=True)
    assert "is outside" in one(graph(tmp_path / "g", "file: linked/w.npy"), "CG140")
    (tmp_path / "g" / "sub").mkdir()
    np.save(tmp_path / "g" / "sub" / "real.npy", np.array([4.0]))
    (tmp_path / "g" / "in.npy").symlink_to(tmp_path / "g" / "sub" / "real.npy")
    for entry in ("file: in.npy", "file: sub/real.npy", "file: ./sub/../sub/real.npy"):
        assert float(cg.run(cg.load(graph(tmp_path / "g", entry))).value("s")) == 4.0


def test_allow_paths_lets_a_folder_in_and_only_that_folder(tmp_path: Path, outside: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    path = graph(tmp_path / "g", "file: ../shared/w.npy")
    assert float(cg.run(cg.load(path, allow_paths=[outside])).value("s")) == 3.0
    assert float(cg.run(cg.load(path, allow_paths=str(outside))).value("s")) == 3.0  # one folder alone
    (tmp_path / "shared-too").mkdir()
    np.save(tmp_path / "shared-too" / "w.npy", np.array([1.0]))
    one(graph(tmp_path / "g", "file: ../shared-too/w.npy", "h.yaml"), "CG140", allow_paths=[outside])  # not a prefix
    monkeypatch.setenv("CG_ALLOW_PATH", str(outside))
    assert cg.load(path).inputs[0].default is not None  # default: the variable's folders
    one(path, "CG140", allow_paths=())  # given: exactly those


def test_allow_paths_reaches_imports_too(tmp_path: Path, outside: Path) -> None:
    (outside / "lib.yaml").write_text("cg: 1\nfunctions:\n  twice: {inputs: [a], nodes: {b: {op: mul, in: [a, 2]}},"
                                      " output: b}\n", encoding="utf-8")
    path = tmp_path / "g" / "g.yaml"
    path.parent.mkdir()
    path.write_text("cg: 1\nimports: [../shared/lib.yaml]\ninputs:\n  w: {file: ../shared/w.npy}\nnodes:\n"
                    "  t: {op: twice, in: [w]}\n  s: {op: sum, in: [t]}\noutputs: [s]\n", encoding="utf-8")
    assert [d.code for d in problems(path)] == ["CG131", "CG140"]
    assert float(cg.run(cg.load(path, allow_paths=[outside])).value("s")) == 6.0


def test_the_target_is_not_looked_at_before_the_check(tmp_path: Path, outside: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    looked: list[str] = []
    for module, name in ((os, "open"), (os, "stat"), (os.path, "exists"), (os.path, "lexists"), (os.path, "isfile")):
        real = getattr(module, name)

        def spy(path: Any, *args: Any, real: Any = real, **kwargs: Any) -> Any:
            if str(outside) in str(path):
                looked.append(str(path))
            return real(path, *args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    one(graph(tmp_path / "g", f"file: {outside / 'w.npy'}"), "CG140")
    one(graph(tmp_path / "g", f"file: {outside / 'nothing.npy'}"), "CG140")  # the same whether or not it exists
    assert looked == []


# ---- files that cannot be read ----------------------------------------------------------------------


def test_a_missing_file_a_directory_and_a_fifo(tmp_path: Path) -> None:
    missing = one(graph(tmp_path, "file: none.npy"), "CG141")
    assert missing.startswith("cannot load 'none.npy': no such file ('/") and missing.endswith("none.npy')")
    (tmp_path / "d.npy").mkdir()
    assert one(graph(tmp_path, "file: d.npy"), "CG141") == "cannot load 'd.npy': it is a directory, not a regular file"
    os.mkfifo(tmp_path / "p.npz")  # refused at once, never waited on
    fifo = one(graph(tmp_path, "file: p.npz, key: w"), "CG141")
    assert fifo == "cannot load 'p.npz': it is a FIFO (named pipe), not a regular file"
    (tmp_path / "dangling.npy").symlink_to(tmp_path / "gone.npy")
    assert "No such file or directory" in one(graph(tmp_path, "file: dangling.npy"), "CG141")


def test_a_file_that_cannot_be_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    np.save(tmp_path / "w.npy", np.ones(2))
    real_open = os.open

    def denied(path: Any, *args: Any, **kwargs: Any) -> int:
        if str(path).endswith("w.npy"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)
    assert one(graph(tmp_path, "file: w.npy"), "CG141") == "cannot load 'w.npy': Permission denied"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_file_without_read_permission(tmp_path: Path) -> None:
    np.save(tmp_path / "w.npy", np.ones(2))
    (tmp_path / "w.npy").chmod(0)
    assert one(graph(tmp_path, "file: w.npy"), "CG141") == "cannot load 'w.npy': Permission denied"


def test_a_name_that_is_not_npy_or_npz(tmp_path: Path) -> None:
    (tmp_path / "w.txt").write_text("1 2 3")
    assert "expected a .npy file (numpy.save) or an .npz archive" in one(graph(tmp_path, "file: w.txt"), "CG141")


def test_a_path_with_a_nul_byte_names_no_file(tmp_path: Path) -> None:
    message = one(graph(tmp_path, 'file: "w\\0.npy"'), "CG141")
    assert message == "cannot load 'w\x00.npy': a path cannot hold a NUL character"  # cg prints it escaped
    path = tmp_path / "i.yaml"  # imports: the same rule (it was an internal error)
    path.write_text('cg: 1\nimports: ["a\\0.yaml"]\ninputs: {x: 1.0}\nnodes: {y: {op: neg, in: [x]}}\noutputs: [y]\n')
    (d,) = problems(path)
    assert d.code == "CG131" and d.message.endswith(": a path cannot hold a NUL character")


# ---- keys -------------------------------------------------------------------------------------------


def test_a_missing_key_lists_the_keys_that_are_there(tmp_path: Path) -> None:
    np.savez(tmp_path / "w.npz", W1=np.ones(2), b1=np.ones(2), W2=np.ones(2))
    message = one(graph(tmp_path, "file: w.npz, key: W3"), "CG142", col=25)  # at the key
    assert message == "cannot load 'W3' of 'w.npz': no such array (it holds 'W1', 'b1', 'W2')"
    np.savez(tmp_path / "many.npz", **{f"a{k}": np.ones(1) for k in range(12)})
    assert one(graph(tmp_path, "file: many.npz, key: b"), "CG142", col=28).endswith("'a9', ... (12 in all))")


def test_an_npz_needs_a_key_and_an_npy_takes_none(tmp_path: Path) -> None:
    np.savez(tmp_path / "w.npz", W1=np.ones(2))
    np.save(tmp_path / "b.npy", np.ones(2))
    assert one(graph(tmp_path, "file: w.npz"), "CG142") == ("cannot load 'w.npz': an .npz archive: name its array"
                                                            " with `key:` (it holds 'W1')")
    assert "a .npy file holds one array" in one(graph(tmp_path, "file: b.npy, key: b"), "CG142", col=25)


# ---- damaged files ----------------------------------------------------------------------------------


def test_damaged_and_disguised_files(tmp_path: Path) -> None:
    (tmp_path / "t.npy").write_bytes(npy_bytes(np.arange(5.0))[:-9])
    assert "the header says 5 numbers of 8 bytes, but the file holds only 31 bytes of data (cut off?)" in one(
        graph(tmp_path, "file: t.npy"), "CG143")
    (tmp_path / "text.npy").write_text("[1, 2, 3]\n")
    assert "not a .npy file (it does not start with numpy's magic" in one(graph(tmp_path, "file: text.npy"), "CG143")
    np.savez(tmp_path / "z.npy", x=np.ones(2))  # np.savez names it z.npy.npz
    os.rename(tmp_path / "z.npy.npz", tmp_path / "z.npy")
    assert "an .npz archive, not a .npy array file" in one(graph(tmp_path, "file: z.npy"), "CG143")
    (tmp_path / "a.npz").write_bytes(npy_bytes(np.ones(2)))
    assert "not a valid .npz archive (File is not a zip file)" in one(graph(tmp_path, "file: a.npz, key: x"), "CG143")
    (tmp_path / "h.npy").write_bytes(b"\x93NUMPY\x01\x00\x50\x00__import__('os').system('touch pwned')" + b" " * 80)
    assert "not a valid .npy file" in one(graph(tmp_path, "file: h.npy"), "CG143")
    assert not Path("pwned").exists()


def test_a_cut_or_damaged_npz(tmp_path: Path) -> None:
    np.savez_compressed(tmp_path / "w.npz", w=np.arange(2000.0))
    data = (tmp_path / "w.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    assert "not a valid .npz archive" in one(graph(tmp_path, "file: cut.npz, key: w"), "CG143")
    middle = len(data) // 2
    (tmp_path / "bad.npz").write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 64])
                                       + data[middle + 64 :])
    one(graph(tmp_path, "file: bad.npz, key: w"), "CG143")  # zlib's error, or the CRC's


def test_a_member_whose_header_promises_more_than_it_holds(tmp_path: Path) -> None:
    zip_with(tmp_path / "w.npz", {"w.npy": header_only((1000,)) + b"\0" * 80})
    assert "the header says 1,000 numbers of 8 bytes, but the member holds only 80 bytes" in one(
        graph(tmp_path, "file: w.npz, key: w"), "CG143")


def test_a_zip_bomb_is_refused_from_the_declared_size(tmp_path: Path, data_never_read: None) -> None:
    """A member that inflates to far more than its header needs (50 MB of zeros after 2 numbers): the
    size the archive declares for it is checked against the header before anything is inflated."""
    member = header_only((2,)) + b"\0" * 16 + b"\0" * 50_000_000
    zip_with(tmp_path / "bomb.npz", {"w.npy": member}, zipfile.ZIP_DEFLATED)
    assert (tmp_path / "bomb.npz").stat().st_size < 100_000
    message = one(graph(tmp_path, "file: bomb.npz, key: w"), "CG143")
    assert message == ("cannot load 'w' of 'bomb.npz': the member declares 50,000,144 bytes but its header needs 144"
                       " (2 numbers of 8 bytes)")


# ---- limits, before any data ------------------------------------------------------------------------


def test_a_header_claiming_10_to_the_12_numbers_with_no_data_is_over_the_limit(tmp_path: Path,
                                                                               data_never_read: None) -> None:
    (tmp_path / "big.npy").write_bytes(header_only((10**6, 10**6)))
    zip_with(tmp_path / "big.npz", {"W.npy": header_only((10**6, 10**6))}, zipfile.ZIP_DEFLATED)
    for entry in ("file: big.npy", "file: big.npz, key: W"):
        message = one(graph(tmp_path, entry), "CG004")
        assert message.endswith(": 1,000,000,000,000 numbers; cg refuses values of more than 10,000,000 (raise it"
                                " with CG_MAX_ELEMENTS=N or `cg --max-elements N`)")


def test_the_element_limit_decides_from_the_header(tmp_path: Path, lowered: None, data_never_read: None) -> None:
    np.save(tmp_path / "w.npy", np.ones(6))
    limits.set_current(Limits(max_elements=5))
    assert "6 numbers; cg refuses values of more than 5" in one(graph(tmp_path, "file: w.npy"), "CG004")


def test_the_numbers_of_all_the_files_count_against_the_total(tmp_path: Path, lowered: None) -> None:
    np.save(tmp_path / "w.npy", np.ones(3))
    path = tmp_path / "g.yaml"
    path.write_text("cg: 1\ninputs:\n  a: {file: w.npy}\n  b: {file: w.npy}\nnodes:\n  s: {op: add, in: [a, b]}\n"
                    "outputs: [s]\n", encoding="utf-8")
    limits.set_current(Limits(max_total=5))
    (d,) = problems(path)
    assert (d.code, d.node, d.message) == ("CG004", "b", "cannot load 'w.npy': the input files hold more than 5 numbers"
                                           " in all; raise it with CG_MAX_TOTAL=N or `cg --max-total N`")


def test_too_many_dimensions(tmp_path: Path) -> None:
    (tmp_path / "d.npy").write_bytes(header_only((1,) * 40) + b"\0" * 8)
    assert "40 dimensions is too many; at most 32" in one(graph(tmp_path, "file: d.npy"), "CG120")


# ---- shapes and dtypes ------------------------------------------------------------------------------


def test_the_declared_shape_must_be_the_array_s(tmp_path: Path, data_never_read: None) -> None:
    np.save(tmp_path / "w.npy", np.ones((2, 3)))
    message = one(graph(tmp_path, "file: w.npy, shape: [3, 2]"), "CG120", col=27)  # at the shape
    assert message == "cannot load 'w.npy': the array has shape [2, 3] but shape says [3, 2]"


def test_dtype_int_needs_integers(tmp_path: Path, data_never_read: None) -> None:
    np.save(tmp_path / "w.npy", np.ones(2))
    message = one(graph(tmp_path, "file: w.npy, dtype: int"), "CG144", col=27)  # at the dtype
    assert message == ("cannot load 'w.npy': the array holds float64 numbers but dtype says int (save it with"
                       " .astype(np.int64))")


@pytest.mark.parametrize(("array", "code", "says"), [
    (np.array([True, False]), "CG144", "expected integer or float numbers, got dtype bool"),
    (np.array([1 + 2j]), "CG144", "got dtype complex128"),
    (np.array(["a", "b"]), "CG144", "got dtype <U1"),
    (np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]), "CG144", "got dtype"),
    (np.array(["2020-01-01"], dtype="datetime64[D]"), "CG144", "got dtype datetime64[D]"),
    (np.array([1, {"a": 1}], dtype=object), "CG144", "holds Python objects, which cg refuses to unpickle"),
    (np.array([1.0, np.nan]), "CG007", "NaN and infinity are not allowed"),
    (np.array([2**63], dtype=np.uint64), "CG007", "values do not fit in int64"),
], ids=lambda v: str(getattr(v, "dtype", v)))
def test_arrays_cg_refuses(tmp_path: Path, array: np.ndarray, code: str, says: str) -> None:
    (tmp_path / "a.npy").write_bytes(npy_bytes(array))
    assert says in one(graph(tmp_path, "file: a.npy"), code)


class _Boom:
    """Unpickling this would create a marker file, proving code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


def test_a_pickled_object_array_is_refused_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = np.array([_Boom(str(marker))], dtype=object)
    np.save(tmp_path / "evil.npy", evil, allow_pickle=True)
    np.savez(tmp_path / "evil.npz", w=evil)  # numpy.savez pickles object arrays too
    assert "refuses to unpickle" in one(graph(tmp_path, "file: evil.npy"), "CG144")
    assert "refuses to unpickle" in one(graph(tmp_path, "file: evil.npz, key: w"), "CG144")
    assert not marker.exists()
    np.load(tmp_path / "evil.npy", allow_pickle=True)  # the marker works: unpickling would have made it
    assert marker.exists()


# ---- the schema, libraries, and several problems at once ---------------------------------------------


@pytest.mark.parametrize(("entry", "says"), [
    ("value: 1.0, file: w.npy", "'value' and 'file' cannot both be given"),
    ("value: 1.0, key: w", "'key' needs 'file'"),
    ("file: 3", "'file': expected a string"),
    ("file: w.npy, key: [a]", "'key': expected a string"),
    ('file: ""', "'file': must not be empty"),
])
def test_schema_rules_of_the_mapping(tmp_path: Path, entry: str, says: str, data_never_read: None) -> None:
    np.save(tmp_path / "w.npy", np.ones(2))
    found = problems(graph(tmp_path, entry))
    assert [d.code for d in found] == ["CG100"] and says in found[0].message and found[0].node == "w", found


def test_a_library_file_declares_no_input_files_and_none_is_read(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda p, *a, **k: opened.append(str(p)) or real_open(p, *a, **k))
    np.save(tmp_path / "w.npy", np.ones(2))
    lib = tmp_path / "lib.yaml"
    lib.write_text("cg: 1\ninputs:\n  w: {file: w.npy}\nfunctions:\n  f: {inputs: [a], nodes: {b: {op: neg, in: [a]}},"
                   " output: b}\n", encoding="utf-8")
    (d,) = problems(lib)
    assert d.code == "CG100" and "a library file (functions, no nodes or outputs) takes no 'inputs'" in d.message
    path = tmp_path / "g.yaml"
    path.write_text("cg: 1\nimports: [lib.yaml]\ninputs: {x: 1.0}\nnodes:\n  y: {op: f, in: [x]}\noutputs: [y]\n")
    assert [d.code for d in problems(path)] == ["CG100"]
    assert not [p for p in opened if p.endswith("w.npy")]


def test_each_input_has_its_own_diagnostic(tmp_path: Path) -> None:
    np.save(tmp_path / "ok.npy", np.ones(2))
    path = tmp_path / "g.yaml"
    path.write_text("cg: 1\ninputs:\n  a: {file: none.npy}\n  b: {file: ok.npy}\n  c: {file: ../x.npy}\n"
                    "nodes:\n  s: {op: add, in: [a, b]}\n  t: {op: add, in: [s, c]}\noutputs: [t]\n")
    found = problems(path)
    assert [(d.code, d.node, d.pos and d.pos.line) for d in found] == [("CG141", "a", 3), ("CG140", "c", 5)]
