"""Input files (`file:`, `key:`) on the command line: every command that loads a graph reads them,
`--inputs` overrides them, `cg --allow-path` and CG_ALLOW_PATH reach them in every command, and
each bad file is one line (file:line:col, the input, the code) with exit code 1, never a traceback.
The library-level cases are in tests/graph/test_weights.py."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import cg

GRAPH = """cg: 1
inputs:
  w: {file: weights.npz, key: w}
  x: {file: x.npy, doc: the point}
nodes:
  p: {op: mul, in: [w, x]}
  s: {op: sum, in: [p]}
outputs: [s]
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """g/g.yaml with w from g/weights.npz and x from g/x.npy; w = [2, 3], x = [1, 4]: s = 14."""
    g = tmp_path / "g"
    g.mkdir()
    np.savez(g / "weights.npz", w=np.array([2.0, 3.0]), other=np.ones(3))
    np.save(g / "x.npy", np.array([1.0, 4.0]))
    (g / "g.yaml").write_text(GRAPH, encoding="utf-8")
    return tmp_path


def test_run_uses_the_files_and_inputs_override_them(folder: Path) -> None:
    r = cg("run", "g/g.yaml", cwd=folder)
    assert r.code == 0, r.err
    rows = r.table()
    assert (rows["w"]["value"], rows["x"]["value"], rows["s"]["value"]) == ("[2.0000, 3.0000]", "[1.0000, 4.0000]",
                                                                           "14.0000")
    assert rows["w"]["grad"] == "[1.0000, 4.0000]"
    r = cg("run", "g/g.yaml", "--inputs", "w=[1,1]", cwd=folder)
    assert r.code == 0 and r.table()["s"]["value"] == "5.0000"
    np.save(folder / "w2.npy", np.array([0.5, 0.5]))
    r = cg("run", "g/g.yaml", "--inputs", "w=@w2.npy", cwd=folder)
    assert r.code == 0 and r.table()["s"]["value"] == "2.5000"


def test_relative_to_the_graph_file_not_to_the_current_directory(folder: Path) -> None:
    r = cg("run", str(folder / "g" / "g.yaml"))  # from the repository's root
    assert r.code == 0 and r.table()["s"]["value"] == "14.0000"
    r = cg("run", "-", stdin=GRAPH, cwd=folder / "g")  # standard input: the current directory
    assert r.code == 0 and r.table()["s"]["value"] == "14.0000"
    r = cg("run", "-", stdin=GRAPH, cwd=folder)
    assert r.code == 1 and "<stdin>:3:13: node 'w': cannot load 'weights.npz': no such file" in r.err


def _bad_files(g: Path) -> None:
    (g / "text.npz").write_text("not a zip")
    (g / "cut.npy").write_bytes(_npy(np.arange(5.0))[:-9])
    (g / "dir.npy").mkdir()
    np.save(g / "cplx.npy", np.array([1j]))
    with open(g / "big.npy", "wb") as f:  # 10^12 numbers claimed, none there
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)})


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


@pytest.mark.parametrize(("entry", "col", "code", "says"), [
    ("file: none.npy", 13, "CG141", "cannot load 'none.npy': no such file ('g/none.npy')"),
    ("file: dir.npy", 13, "CG141", "cannot load 'dir.npy': it is a directory, not a regular file"),
    ("file: ../w.npy", 13, "CG140", "cannot load '../w.npy': it is outside the folder of g.yaml (g/); allow it with"
                                    " `cg --allow-path DIR` (or CG_ALLOW_PATH)"),
    ("file: weights.npz, key: v", 31, "CG142", "cannot load 'v' of 'weights.npz': no such array (it holds 'w',"
                                               " 'other')"),
    ("file: weights.npz", 13, "CG142", "name its array with `key:` (it holds 'w', 'other')"),
    ("file: text.npz, key: w", 13, "CG143", "cannot load 'text.npz': not a valid .npz archive"),
    ("file: cut.npy", 13, "CG143", "but the file holds only 31 bytes of data (cut off?)"),
    ("file: cplx.npy", 13, "CG144", "got dtype complex128"),
    ("file: big.npy", 13, "CG004", "1,000,000,000,000 numbers; cg refuses values of more than 10,000,000"),
    ("file: x.npy, shape: [3]", 27, "CG120", "the array has shape [2] but shape says [3]"),
    ("file: weights.npz, key: w, dtype: int", 41, "CG144", "holds float64 numbers but dtype says int"),
])
def test_each_bad_file_is_one_line_with_its_place_and_exit_code_1(folder: Path, entry: str, col: int, code: str,
                                                                   says: str) -> None:
    _bad_files(folder / "g")
    (folder / "g" / "g.yaml").write_text(GRAPH.replace("file: weights.npz, key: w", entry), encoding="utf-8")
    for command in (("run", "g/g.yaml"), ("validate", "g/g.yaml")):
        r = cg(*command, cwd=folder)
        assert r.code == 1, r.out + r.err
        (line,) = (r.err if command[0] == "run" else r.out).splitlines()
        assert line.startswith(f"g/g.yaml:3:{col}: node 'w': ") and line.endswith(f" [{code}]"), line
        assert says in line and "Traceback" not in r.err


def test_validate_names_the_new_codes_in_json(folder: Path) -> None:
    (folder / "g" / "g.yaml").write_text(GRAPH.replace("weights.npz", "../w.npz"), encoding="utf-8")
    r = cg("validate", "--format", "json", "g/g.yaml", cwd=folder)
    assert r.code == 1
    (d,) = json.loads(r.out)
    assert (d["code"], d["name"], d["node"], d["line"], d["column"]) == ("CG140", "file-outside", "w", 3, 13)


def test_a_pickled_object_array_is_never_unpickled(folder: Path) -> None:
    marker = folder / "pwned"

    class Boom:
        def __reduce__(self) -> tuple[object, ...]:
            return (open, (str(marker), "w"))

    np.save(folder / "g" / "x.npy", np.array([Boom(), Boom()], dtype=object), allow_pickle=True)
    r = cg("check", "g/g.yaml", cwd=folder)
    assert r.code == 1 and "cannot load 'x.npy': holds Python objects, which cg refuses to unpickle [CG144]" in r.out
    assert not marker.exists()


def test_a_zip_bomb_is_refused_before_it_inflates(folder: Path) -> None:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (2,)})
    with zipfile.ZipFile(folder / "g" / "weights.npz", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("w.npy", header.getvalue() + b"\0" * 20_000_000)
    r = cg("run", "g/g.yaml", cwd=folder)
    assert r.code == 1 and "the member declares 20,000,128 bytes but its header needs 144" in r.err


# ---- --allow-path reaches every command that loads a graph --------------------------------------------

SCALAR = """cg: 1
inputs:
  w: {file: ../shared/w.npz, key: w}
  x: 2.0
nodes:
  p: {op: mul, in: [w, x]}
  s: {op: sin, in: [p]}
outputs: [s]
"""

COMMANDS = [
    ("run", "g/g.yaml"),
    ("check", "g/g.yaml"),
    ("validate", "g/g.yaml"),
    ("draw", "g/g.yaml", "-f", "dot"),
    ("fmt", "--check", "g/g.yaml"),
    ("paths", "g/g.yaml", "--from", "x", "--to", "s"),
    ("report", "g/g.yaml"),
    ("step", "g/g.yaml"),
    ("jacobian", "g/g.yaml", "--wrt", "x"),
    ("exercise", "g/g.yaml", "-o", "sheet.md"),
    ("compile", "g/g.yaml"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_allow_path_reaches_every_command(tmp_path: Path, command: tuple[str, ...]) -> None:
    (tmp_path / "g").mkdir()
    (tmp_path / "shared").mkdir()
    np.savez(tmp_path / "shared" / "w.npz", w=np.array(1.5))
    (tmp_path / "g" / "g.yaml").write_text(SCALAR, encoding="utf-8")
    refused = cg(*command, cwd=tmp_path)
    assert refused.code == 1 and "[CG140]" in refused.out + refused.err, refused.out + refused.err
    allowed = cg("--allow-path", "shared", *command, cwd=tmp_path)
    assert allowed.code == 0, allowed.out + allowed.err
    by_env = cg(*command, cwd=tmp_path, env={"CG_ALLOW_PATH": str(tmp_path / "shared")})
    assert by_env.code == 0, by_env.out + by_env.err
    assert cg(*command, cwd=tmp_path).code == 1  # neither stays for the next run in the same process


def test_the_help_says_the_option_covers_input_files() -> None:
    r = cg("--help")
    assert "--allow-path DIR" in r.out and "input files" in r.out


def test_fmt_keeps_file_and_key_entries(folder: Path) -> None:
    text = GRAPH.replace("{file: weights.npz, key: w}", "{key: w, file: weights.npz}  # trained")
    (folder / "g" / "g.yaml").write_text(text, encoding="utf-8")
    r = cg("fmt", "g/g.yaml", cwd=folder)
    assert r.code == 0, r.out + r.err
    assert (folder / "g" / "g.yaml").read_text() == GRAPH.replace("key: w}", "key: w}  # trained")
    assert cg("fmt", "--check", "g/g.yaml", cwd=folder).code == 0


def test_no_file_is_read_twice_by_accident(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`cg run` reads each input file once."""
    opened: list[str] = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda p, *a, **k: opened.append(os.path.basename(p)) or real_open(p, *a, **k))
    assert cg("run", "g/g.yaml", cwd=folder).code == 0
    assert sorted(n for n in opened if n.endswith((".npy", ".npz"))) == ["weights.npz", "x.npy"]
