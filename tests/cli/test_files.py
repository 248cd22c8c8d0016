"""cg/files.py: output files that are never partial or clobbered, reads that never hang, and what
every command does with a full or closed stdout."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, cg

from cg.errors import LoadError, UsageError
from cg.files import OutputError, read_only, read_regular, write_file

LOG = "graphs/log3x2p5xy.yaml"


def device(tmp_path: Path, name: str) -> str:
    """/dev/null or /dev/full, as a private device node when we are root: a regression could then
    only replace the copy, never the machine's own /dev/null."""
    if os.geteuid() != 0:
        return f"/dev/{name}"  # not root: nobody can replace the real one
    path = tmp_path / name
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, {"null": 3, "full": 7}[name]))
    return str(path)


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


# ---- writing ---------------------------------------------------------------------------------------


def test_a_new_file_gets_the_umask_mode_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write_file(str(tmp_path / "new.txt"), "hello\n")
        assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o640
        (tmp_path / "old.txt").write_text("x")
        os.chmod(tmp_path / "old.txt", 0o604)
        write_file(str(tmp_path / "old.txt"), ["a", "b"])
        assert (tmp_path / "old.txt").read_text() == "ab"
        assert stat.S_IMODE((tmp_path / "old.txt").stat().st_mode) == 0o604
    finally:
        os.umask(old)
    assert leftovers(tmp_path) == []


def test_a_symlink_is_followed_and_stays_a_link(tmp_path: Path) -> None:
    (tmp_path / "target.txt").write_text("old")
    (tmp_path / "link.txt").symlink_to("target.txt")
    write_file(str(tmp_path / "link.txt"), "new")
    assert (tmp_path / "link.txt").is_symlink() and (tmp_path / "target.txt").read_text() == "new"
    (tmp_path / "dangling.txt").symlink_to("made.txt")  # as `>` would: the link's target is created
    write_file(str(tmp_path / "dangling.txt"), "made")
    assert (tmp_path / "dangling.txt").is_symlink() and (tmp_path / "made.txt").read_text() == "made"


def test_a_directory_is_an_error_and_nothing_is_left_in_it(tmp_path: Path) -> None:
    with pytest.raises(OutputError) as e:
        write_file(str(tmp_path), "the whole table")
    assert e.value.exit_code == 2 and "is a directory" in str(e.value)
    assert leftovers(tmp_path) == []


def test_a_failure_while_writing_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("the old result")

    def chunks() -> Iterator[str]:
        yield "half of the new"
        raise UsageError.one("CG300", "stopped half way")

    with pytest.raises(UsageError):
        write_file(str(target), chunks())
    assert target.read_text() == "the old result" and leftovers(tmp_path) == []


def test_devices_are_written_in_place_never_replaced(tmp_path: Path) -> None:
    null, full = device(tmp_path, "null"), device(tmp_path, "full")
    before = os.stat(null)
    write_file(null, "discarded")
    after = os.stat(null)
    assert stat.S_ISCHR(after.st_mode) and (before.st_ino, before.st_rdev) == (after.st_ino, after.st_rdev)
    with pytest.raises(OutputError) as e:
        write_file(full, "x" * 100_000)
    assert "No space left on device" in str(e.value)
    assert stat.S_ISCHR(os.stat(full).st_mode)


def test_a_fifo_is_written_to_its_reader_and_one_without_reader_is_an_error(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OutputError) as e:
        write_file(str(fifo), "nobody listens")
    assert "a FIFO that nobody reads" in str(e.value)
    got: list[bytes] = []
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader is there before the writer opens
    reader = threading.Thread(target=lambda: got.append(_read_all(fd)))
    write_file(str(fifo), "heard")
    reader.start()
    reader.join(5)
    assert got == [b"heard"] and stat.S_ISFIFO(fifo.stat().st_mode)


def _read_all(fd: int) -> bytes:
    os.set_blocking(fd, True)
    with os.fdopen(fd, "rb") as f:
        return f.read()


def test_a_file_size_limit_leaves_no_partial_file(tmp_path: Path) -> None:
    # In a process with RLIMIT_FSIZE of 1 KB: the write fails (EFBIG), the target stays as it was.
    target = tmp_path / "big.csv"
    target.write_text("old")
    graph = tmp_path / "many.yaml"  # 200 nodes: a CSV of about 10 KB
    graph.write_text("cg: 1\ninputs: {x: 1.0}\nnodes:\n" + "".join(
        f"  n{k}: {{op: sin, in: [{'x' if k == 0 else f'n{k - 1}'}]}}\n" for k in range(200)) + "outputs: [n199]\n")
    import forkserver  # POSIX: fork and rlimits

    logs = tmp_path / "logs"
    logs.mkdir()
    done = forkserver.client().run(["run", str(graph), "-f", "csv", "-o", str(target)], cwd=ROOT,
                                   stdin=Path(os.devnull), stdout=logs / "stdout", stderr=logs / "stderr",
                                   env=forkserver.clean_env(), timeout=60, fsize=1024)
    err = (logs / "stderr").read_text()
    assert done.code == 2 and not done.hung, err
    assert "cannot write" in err and "Traceback" not in err
    assert target.read_text() == "old" and leftovers(tmp_path) == []


def test_read_only_means_the_mode_not_the_user(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("x")
    os.chmod(path, 0o444)
    assert read_only(str(path))
    os.chmod(path, 0o644)
    assert not read_only(str(path))


# ---- reading ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", ["fifo", "directory", "device"])
def test_reads_refuse_what_is_not_a_regular_file(tmp_path: Path, make: str) -> None:
    path = tmp_path / "g.yaml"
    if make == "fifo":
        os.mkfifo(path)
    elif make == "directory":
        path.mkdir()
    else:
        path.symlink_to("/dev/zero")
    with pytest.raises(LoadError) as e:
        read_regular(str(path), 100, "g.yaml", LoadError)
    assert e.value.diagnostics[0].code == "CG001" and "not a regular file" in e.value.diagnostics[0].message


# ---- the commands ----------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["run", LOG, "--inputs", "x=2,y=3"], ["validate", "tests/bad"], ["schema"], ["ops"],
                                  ["check", LOG]])
def test_a_full_stdout_is_one_line_and_exit_1(args: list[str]) -> None:
    with open("/dev/full", "w") as full:
        out = subprocess.run([sys.executable, "-m", "cg", *args], cwd=ROOT, stdout=full, stderr=subprocess.PIPE,
                             text=True, timeout=60)
    assert out.returncode == 1
    assert out.stderr.splitlines()[-1] == "cg: cannot write output: No space left on device" or \
        "cg: cannot write output: No space left on device" in out.stderr
    assert "Traceback" not in out.stderr and "internal error" not in out.stderr


@pytest.mark.parametrize("args", [["schema"], ["run", LOG, "--inputs", "x=2,y=3", "-f", "json"], ["ops"]])
def test_a_closed_stdout_stops_quietly(args: list[str]) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "cg", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(10)
    proc.stdout.close()  # as `| head -c 10` does
    err = proc.stderr.read().decode()
    proc.wait(60)
    assert err == "" and proc.returncode in (0, 1)


def test_output_onto_a_directory_is_a_usage_error_with_nothing_left(tmp_path: Path) -> None:
    r = cg("run", LOG, "--inputs", "x=2,y=3", "-o", str(tmp_path))
    assert r.code == 2 and "is a directory" in r.err and "[CG330]" in r.err
    assert list(tmp_path.iterdir()) == []


def test_output_onto_dev_null_discards_and_dev_full_fails_cleanly(tmp_path: Path) -> None:
    null, full = device(tmp_path, "null"), device(tmp_path, "full")
    assert cg("run", LOG, "--inputs", "x=2,y=3", "-o", null).code == 0
    assert stat.S_ISCHR(os.stat(null).st_mode)
    r = cg("run", LOG, "--inputs", "x=2,y=3", "-f", "json", "-o", full)
    assert r.code == 2 and "No space left on device" in r.err and stat.S_ISCHR(os.stat(full).st_mode)
    assert leftovers(tmp_path) == []


def test_fmt_refuses_a_read_only_file_and_keeps_owner_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("cg: 1\nnodes: {z: {in: [x], op: sin}}\ninputs: {x: 1.0}\noutputs: [z]\n")
    os.chmod(path, 0o444)
    before = path.read_text()
    r = cg("fmt", str(path))
    assert r.code == 1 and "read-only" in r.err and path.read_text() == before
    os.chmod(path, 0o640)
    if os.geteuid() == 0:
        os.chown(path, 65534, 65534)  # as root, fmt must not make the file root's
    assert cg("fmt", str(path)).code == 0 and path.read_text() != before
    st = path.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (65534, 65534)


def test_inputs_from_a_fifo_and_against_a_fifo_do_not_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "x.npy")
    r = cg("run", LOG, "--inputs", f"x=@{tmp_path / 'x.npy'},y=3")
    assert r.code == 2 and "FIFO" in r.err
    os.mkfifo(tmp_path / "snap.json")
    r = cg("check", LOG, "--against", str(tmp_path / "snap.json"))
    assert r.code == 2 and "FIFO" in r.err


def test_against_dev_zero_and_stdin_dev_zero_are_bounded(tmp_path: Path) -> None:
    """Each in a process of its own (tests/forkserver.py), killed past 60 s."""
    import forkserver  # POSIX: fork and rlimits

    env = forkserver.clean_env({"CG_MAX_BYTES": "1000000"})
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    for args, stdin in ((["check", LOG, "--against", "/dev/zero"], None), (["validate", "-"], "/dev/zero")):
        done = forkserver.client().run(args, cwd=ROOT, stdin=Path(stdin or os.devnull), stdout=out, stderr=err,
                                       env=env, timeout=60)
        said, warned = out.read_text(), err.read_text()
        assert done.code in (1, 2) and not done.hung and "Traceback" not in warned, warned
        assert "device" in said + warned or "larger than the limit" in said, warned
