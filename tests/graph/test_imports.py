"""What a graph may import (cg/graph/imports.py): its own folder tree, folders allowed with
`cg --allow-path` / CG_ALLOW_PATH, and the libraries shipped with cg (`cg:nn`); refusals say
nothing about the refused file, messages never quote an imported file, and a failed import is the
only diagnostic of its root cause.

The CLI runs in-process (click's CliRunner), except where a real process is the point (a FIFO
that could hang it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import ROOT, CliResult

from cg import limits
from cg.cli import main
from cg.graph import imports

SECRET = "hunter2-very-secret"
GRAPH = "inputs: {{x: 0.5}}\nnodes:\n  y: {{op: {op}, in: [x]}}\noutputs: [y]\n"
LIBRARY = "cg: 1\nfunctions:\n  twice: {inputs: [a], nodes: {b: {op: mul, in: [a, 2]}}, output: b}\n"


def cg(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> CliResult:
    """`cg ARGS` in this process, as a CliResult (conftest's: .code, .out, .err, .table())."""
    r = CliRunner().invoke(main, list(args), env=env, input=stdin, catch_exceptions=False)
    return CliResult(r.exit_code, r.stdout, r.stderr)


def graph(folder: Path, imports: str, op: str = "twice", name: str = "g.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"cg: 1\nimports: [{imports}]\n" + GRAPH.format(op=op), encoding="utf-8")
    return path


def refusal(path: Path, *options: str, env: dict[str, str] | None = None) -> str:
    """The one line `cg validate` prints for a graph whose import fails."""
    r = cg(*options, "validate", str(path), env=env)
    assert r.code == 1, r.out + r.err
    lines = r.out.splitlines()
    assert len(lines) == 1, r.out  # the import, and nothing downstream of it
    assert "[CG131]" in lines[0] and SECRET not in r.out + r.err
    return lines[0]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A library with a secret in it, in a folder beside the graph's."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "lib.yaml").write_text(LIBRARY + f"# {SECRET}\n", encoding="utf-8")
    return folder


# ---- containment ----------------------------------------------------------------------------------


def test_an_absolute_path_outside_is_refused_the_same_whether_or_not_it_exists(tmp_path: Path,
                                                                               outside: Path) -> None:
    os.mkfifo(outside / "fifo.yaml")  # refused before it is opened: no wait for a writer either
    folder = tmp_path / "g"
    there, missing, fifo = (refusal(graph(folder, str(outside / name)))
                            for name in ("lib.yaml", "nothing.yaml", "fifo.yaml"))
    assert there.startswith(f"{folder / 'g.yaml'}:2:11: cannot import '")  # (a long path is shortened)
    assert there.endswith(f"': it is outside the folder of g.yaml ({folder}{os.sep}); allow it with "
                          "`cg --allow-path DIR` (or CG_ALLOW_PATH) [CG131]")
    assert there.replace("lib.yaml", "X") == missing.replace("nothing.yaml", "X") == fifo.replace("fifo.yaml", "X")
    assert refusal(graph(folder, "/etc/shadow")).endswith(there.split("'", 2)[2])


def test_dot_dot_and_a_symlink_pointing_out_are_refused(tmp_path: Path, outside: Path) -> None:
    assert "is outside the folder of" in refusal(graph(tmp_path / "g", "../elsewhere/lib.yaml"))
    assert "is outside" in refusal(graph(tmp_path / "g", "sub/../../elsewhere/lib.yaml"))
    (tmp_path / "g" / "link.yaml").symlink_to(outside / "lib.yaml")
    assert "is outside" in refusal(graph(tmp_path / "g", "link.yaml"))
    (tmp_path / "g" / "linked").symlink_to(outside, target_is_directory=True)  # a folder link too
    assert "is outside" in refusal(graph(tmp_path / "g", "linked/lib.yaml"))


def test_the_target_is_not_looked_at_before_the_check(tmp_path: Path, outside: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the resolution of symlinks (os.path.realpath) touches the path before it is refused."""
    looked: list[str] = []
    for module, name in ((os, "open"), (os, "stat"), (os.path, "exists"), (os.path, "lexists"), (os.path, "isfile")):
        real = getattr(module, name)

        def spy(path: Any, *args: Any, real: Any = real, **kwargs: Any) -> Any:
            if str(outside) in str(path):
                looked.append(str(path))
            return real(path, *args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    refusal(graph(tmp_path / "g", str(outside / "lib.yaml")))
    assert looked == []


def test_subfolders_and_links_inside_are_inside(tmp_path: Path) -> None:
    (tmp_path / "g" / "lib").mkdir(parents=True)
    (tmp_path / "g" / "lib" / "more.yaml").write_text(LIBRARY, encoding="utf-8")
    (tmp_path / "g" / "alias.yaml").symlink_to(tmp_path / "g" / "lib" / "more.yaml")
    for entry in ("lib/more.yaml", "alias.yaml", "./lib/../lib/more.yaml"):
        r = cg("run", str(graph(tmp_path / "g", entry)))
        assert r.code == 0 and r.table()["y"]["value"] == "1.0000", r.out + r.err


def test_standard_input_imports_from_the_current_directory(tmp_path: Path, outside: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lib.yaml").write_text(LIBRARY, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    r = cg("run", "-", stdin="cg: 1\nimports: [lib.yaml]\n" + GRAPH.format(op="twice"))
    assert r.code == 0 and r.table()["y"]["value"] == "1.0000"
    monkeypatch.chdir(tmp_path / "elsewhere")
    r = cg("validate", "-", stdin="cg: 1\nimports: [../lib.yaml]\n" + GRAPH.format(op="twice"))
    assert r.code == 1 and "cannot import '../lib.yaml': it is outside the current directory;" in r.out


# ---- --allow-path and CG_ALLOW_PATH ---------------------------------------------------------------


def test_allow_path_and_the_variable_allow_a_folder(tmp_path: Path, outside: Path) -> None:
    path = graph(tmp_path / "g", "../elsewhere/lib.yaml")
    r = cg("--allow-path", str(outside), "run", str(path))
    assert r.code == 0 and r.table()["y"]["value"] == "1.0000"
    r = cg("--allow-path", "/nowhere", "--allow-path", str(tmp_path), "run", str(path))  # repeatable
    assert r.code == 0 and r.table()["y"]["value"] == "1.0000"
    r = cg("validate", str(path), env={"CG_ALLOW_PATH": f"/nowhere{os.pathsep}{outside}"})
    assert r.code == 0, r.out
    r = cg("--allow-path", "/nowhere", "validate", str(path), env={"CG_ALLOW_PATH": str(outside)})
    assert r.code == 0, r.out  # the option adds to the variable
    refusal(path)  # and neither stays for the next run in the same process, nor for the library
    assert limits.allowed_paths() == tuple(p for p in os.environ.get("CG_ALLOW_PATH", "").split(os.pathsep) if p)


def test_an_allowed_folder_does_not_allow_its_neighbours(tmp_path: Path, outside: Path) -> None:
    (tmp_path / "elsewhere-too").mkdir()
    (tmp_path / "elsewhere-too" / "lib.yaml").write_text(LIBRARY + f"# {SECRET}\n", encoding="utf-8")
    path = graph(tmp_path / "g", "../elsewhere-too/lib.yaml")
    assert "is outside" in refusal(path, "--allow-path", str(outside))  # a prefix of the name is not the folder


def test_the_option_and_the_variable_are_in_the_help() -> None:
    r = cg("--help")
    assert "--allow-path DIR" in r.out and "CG_ALLOW_PATH" in r.out


# ---- the shipped library --------------------------------------------------------------------------


def test_the_shipped_library_is_importable_from_anywhere(tmp_path: Path) -> None:
    path = tmp_path / "anywhere" / "g.yaml"
    path.parent.mkdir()
    path.write_text("cg: 1\nimports: [cg:nn]\ninputs: {p: [1.0, 3.0], t: [0.0, 1.0]}\n"
                    "nodes:\n  loss: {op: mse, in: [p, t]}\noutputs: [loss]\n", encoding="utf-8")
    r = cg("run", str(path))
    assert r.code == 0, r.out + r.err
    assert r.table()["loss"]["value"] == "2.5000"  # ((1 - 0)^2 + (3 - 1)^2) / 2
    assert r.table()["p"]["grad"] == "[1.0000, 2.0000]"  # p - t
    assert r.table()["t"]["grad"] == "[-1.0000, -2.0000]"


def test_the_shipped_library_is_the_file_in_the_package() -> None:
    assert imports.SHIPPED == ROOT / "cg" / "lib" and imports.shipped_libraries() == ["cg:nn"]
    assert not (ROOT / "graphs" / "lib").exists()


def test_an_unknown_shipped_library_lists_the_ones_there_are(tmp_path: Path) -> None:
    for name in ("cg:nope", "cg:../lib/nn", "cg:NN"):
        line = refusal(graph(tmp_path, name))
        assert f"cannot import '{name}': cg ships no such library (it ships cg:nn)" in line, line


# ---- what an imported file may be, and what messages say about it ---------------------------------


def test_a_fifo_is_refused_without_waiting(tmp_path: Path) -> None:
    """A process of its own (tests/forkserver.py), killed past 30 s: if the FIFO were opened for
    reading it would wait for a writer forever."""
    import forkserver

    os.mkfifo(tmp_path / "lib.yaml")
    path = graph(tmp_path, "lib.yaml")
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    done = forkserver.client().run(["validate", str(path)], cwd=ROOT, stdin=Path(os.devnull), stdout=out, stderr=err,
                                   env=forkserver.clean_env(), timeout=30)
    assert not done.hung, "cg waited for a writer"
    assert done.code == 1, out.read_text() + err.read_text()
    assert out.read_text() == (f"{path}:2:11: cannot import 'lib.yaml': {tmp_path / 'lib.yaml'}: it is a FIFO (named "
                               "pipe), not a regular file (CG001) [CG131]\n")
    assert "Traceback" not in err.read_text()


def test_a_directory_and_a_file_over_the_size_limit_are_refused(tmp_path: Path) -> None:
    (tmp_path / "dir.yaml").mkdir()
    assert "dir.yaml: it is a directory, not a regular file (CG001)" in refusal(graph(tmp_path, "dir.yaml"))
    (tmp_path / "big.yaml").write_text(LIBRARY + f"# {SECRET}\n" * 100, encoding="utf-8")
    line = refusal(graph(tmp_path, "big.yaml"), "--max-bytes", "1000")
    assert "big.yaml: file is larger than the limit of 1,000 bytes" in line and "--max-bytes" in line


@pytest.mark.parametrize(("text", "kind"), [
    (f"cg: 1\nnodes: {{a: {{op: sin, in: [x]}}}}\ninputs: {{x: 1}}\noutputs: [a]\n# {SECRET}\n",
     "'lib.yaml' is not a library: a library file has `functions` and no nodes or outputs"),
    (f"{SECRET}: [unclosed\n", "invalid-yaml (CG003)"),
    (f"cg: 1\nfunctions:\n  f: {{inputs: [a]\n  # {SECRET}\n", "invalid-yaml (CG003)"),  # the parser quotes lines
    (f"cg: 1\nfunctions:\n  {SECRET}: 1\n  {SECRET}: 2\n", "duplicate-key (CG006)"),
    (f"cg: 1\nfunctions: *{SECRET}\n", "unsupported-yaml (CG005)"),
    (f"{SECRET}\n\0\n", "not-text (CG002)"),
], ids=["a graph", "not YAML", "unclosed", "duplicate key", "alias", "binary"])
def test_messages_about_an_imported_file_never_quote_it(tmp_path: Path, text: str, kind: str) -> None:
    (tmp_path / "lib.yaml").write_text(text, encoding="utf-8")
    line = refusal(graph(tmp_path, "lib.yaml"))
    assert kind in line, line


def test_the_place_inside_an_imported_file_is_given(tmp_path: Path) -> None:
    (tmp_path / "lib.yaml").write_text(f"cg: 1\nfunctions:\n  {SECRET}: [\n", encoding="utf-8")
    line = refusal(graph(tmp_path, "lib.yaml"))
    assert line == f"{tmp_path / 'g.yaml'}:2:11: cannot import 'lib.yaml': {tmp_path / 'lib.yaml'}:4:1: invalid-yaml " \
                   "(CG003) [CG131]"


# ---- one root cause, one diagnostic ---------------------------------------------------------------

CALLS = ("inputs: {x: 0.5}\nnodes:\n  y: {op: twice, in: [x]}\n  z: {op: twice, in: [y]}\n"
         "  w: {op: sin, in: [z]}\noutputs: [w]\nexpect:\n  values: {w: 0.8415}\n")


@pytest.mark.parametrize(("entry", "setup", "says"), [
    ("missing.yaml", None, "cannot import 'missing.yaml': no such file"),
    ("../elsewhere/lib.yaml", None, "cannot import '../elsewhere/lib.yaml': it is outside"),
    ("bad.yaml", f"{SECRET}: [\n", "cannot import 'bad.yaml':"),
    ("graph.yaml", "cg: 1\ninputs: {a: 1.0}\nnodes: {b: {op: neg, in: [a]}}\noutputs: [b]\n", "is not a library"),
    ("cg:nope", None, "cg ships no such library"),
], ids=["missing", "outside", "invalid", "not a library", "unknown shipped"])
def test_a_failed_import_is_the_one_diagnostic_of_its_calls(tmp_path: Path, outside: Path, entry: str,
                                                            setup: str | None, says: str) -> None:
    """The calls of `twice` would each be an unknown op, and the nodes after them missing: the
    failed import is the one cause, reported once, by every command."""
    folder = tmp_path / "g"
    folder.mkdir()
    if setup is not None:
        (folder / entry).write_text(setup, encoding="utf-8")
    path = folder / "main.yaml"
    path.write_text(f"cg: 1\nimports: [{entry}]\n{CALLS}", encoding="utf-8")
    assert says in refusal(path)
    for command in ("run", "check"):
        r = cg(command, str(path))
        assert r.code == 1 and "CG131" in r.out + r.err and "CG101" not in r.out + r.err, r.out + r.err
        assert (r.out + r.err).count("[CG") == 1, r.out + r.err


def test_a_failed_import_inside_a_library_is_its_one_diagnostic(tmp_path: Path) -> None:
    (tmp_path / "lib.yaml").write_text("cg: 1\nimports: [missing.yaml]\nfunctions:\n"
                                       "  twice: {inputs: [a], nodes: {b: {op: half, in: [a]}}, output: b}\n",
                                       encoding="utf-8")
    line = refusal(graph(tmp_path, "lib.yaml"))
    assert line.startswith(f"{tmp_path / 'lib.yaml'}:2:11: cannot import 'missing.yaml': no such file")


def test_an_unknown_op_is_still_reported_when_the_imports_are_fine(tmp_path: Path) -> None:
    (tmp_path / "lib.yaml").write_text(LIBRARY, encoding="utf-8")
    r = cg("validate", str(graph(tmp_path, "lib.yaml", op="thrice")))
    assert r.code == 1 and "unknown op or function 'thrice'" in r.out and "[CG101]" in r.out
