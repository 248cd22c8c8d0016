"""A corpus of hostile inputs, each run through `cg` in a process of its own (issue 10, "Done when"
item 3): outputs onto devices, symlinks, directories and FIFOs; reads of FIFOs, /dev/zero, loops and
sparse giants; `.npy` headers and snapshots that lie; escape sequences in ids, docs, names and file
names; numbers that overflow; every limit just under and just over; imports that reach outside.

Every case, whatever else it checks: the documented exit code, within a time limit (a hang is a
failure), under 1 GiB of peak memory (the child's ru_maxrss, from os.wait4), no traceback and no
"internal error", the file (or value) at fault named in the messages, no temporary `*.tmp` file left
anywhere, every file that was there before unchanged (bytes, mode, type, link target, device
number) unless the case says it may change, and stdout and stderr valid UTF-8 with no raw control
character (C0 but tab and line ends, DEL, C1, bidi controls): they must show escaped, as `\\x1b`.

Devices are private nodes made under tmp_path (as root; those cases skip otherwise): a regression
can then only replace a copy, never the machine's /dev/null.

Each process is forked from a server that has already imported cg (tests/forkserver.py): its own
descriptors, environment, folder, rlimits, exit code and peak memory, killed past the time limit,
without paying Python's start-up 200 times. A sample of cases also runs in a real `cg` process
started afresh, and must give the same exit code and output (test_forked_and_real_agree);
CG_TEST_PROCESS=1 runs every case that way.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import shutil
import socket
import stat
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import yaml

resource = pytest.importorskip("resource")  # ru_maxrss and the rlimits: POSIX only
import forkserver  # noqa: E402 - POSIX only, as resource

TIMEOUT = 20.0  # seconds per run: longer is a hang
MEMORY_KIB = 1024 * 1024  # 1 GiB, as ru_maxrss counts it on Linux
GUARD = 4 * 1024**3  # RLIMIT_AS: a runaway fails here instead of taking the machine with it

# ---- the texts ----------------------------------------------------------------------------------

# YAML double-quoted escapes: a window title, a clipboard write (OSC 52), a hidden link (OSC 8),
# a screen clear (CSI), NUL, BEL, the C1 CSI and a right-to-left override.
EVIL = r"\e]0;pwned\a \e]52;c;ZXZpbA==\a \e]8;;http://x\e\\link\e]8;;\e\\ \e[2J nul\0 bel\a csi\x9b31m rlo\u202e"
EVIL_TEXT: str = yaml.safe_load(f'x: "{EVIL}"\n')["x"]
# The same in a file name (no NUL: a path cannot hold one), and as cg shows it.
EVIL_NAME = "evil\x1b]0;T\x07\x9b\u202e.yaml"
EVIL_SHOWN = "evil\\x1b]0;T\\x07\\x9b\\u202e.yaml"

BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
RAW = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{BIDI}]")

LOG = """cg: 1
name: log3x2p5xy
doc: z = log(3x^2 + 5xy)
inputs:
  x: 2.0
  y: {value: 3.0}
nodes:
  a: {op: square, in: [x]}
  b: {op: mul, in: [3, a]}
  c: {op: mul, in: [x, y]}
  d: {op: mul, in: [5, c]}
  e: {op: add, in: [b, d]}
  z: {op: log, in: [e]}
outputs: [z]
"""

EVIL_GRAPH = f"""cg: 1
name: "evil {EVIL}"
doc: "first line {EVIL}\\nsecond\\tline"
functions:
  twice:
    doc: "fn {EVIL}"
    inputs: [a]
    nodes: {{t: {{op: mul, in: [2, a], doc: "inner {EVIL}"}}}}
    output: t
inputs:
  x: {{value: 2.0, doc: "input {EVIL}"}}
nodes:
  a: {{op: square, in: [x], doc: "node {EVIL}"}}
  b: {{op: twice, in: [a], doc: "call {EVIL}"}}
outputs: [b]
"""

# For the limits: 121 bytes, nesting 5 deep (mapping, inputs, v, value, row), 2 nodes, 4 numbers.
SMALL = """cg: 1
inputs:
  v: {value: [[1.0, 2.0], [3.0, 4.0]]}
nodes:
  a: {op: sin, in: [v]}
  s: {op: sum, in: [a]}
outputs: [s]
"""
MATRIX = "cg: 1\ninputs:\n  W: {shape: [2, 3]}\nnodes:\n  s: {op: sum, in: [W]}\noutputs: [s]\n"
UNSHAPED = "cg: 1\ninputs:\n  v: 1.0\nnodes:\n  s: {op: sum, in: [v]}\noutputs: [s]\n"  # any shape given
VECTOR = "cg: 1\ninputs:\n  v: {shape: [600]}\nnodes:\n  s: {op: sum, in: [v]}\noutputs: [s]\n"


def log_snapshot(ids: Mapping[str, str] | None = None, **values: float) -> str:
    """What `cg run LOG -f json` writes (computed by hand), with some values or ids replaced."""
    ops = {"x": ("input", []), "y": ("input", []), "a": ("square", ["x"]), "b": ("mul", ["3.0", "a"]),
           "c": ("mul", ["x", "y"]), "d": ("mul", ["5.0", "c"]), "e": ("add", ["b", "d"]), "z": ("log", ["e"])}
    value = {"x": 2.0, "y": 3.0, "a": 4.0, "b": 12.0, "c": 6.0, "d": 30.0, "e": 42.0, "z": math.log(42.0)}
    grad = {"x": 27 / 42, "y": 10 / 42, "a": 3 / 42, "b": 1 / 42, "c": 5 / 42, "d": 1 / 42, "e": 1 / 42, "z": 1.0}
    value.update(values)
    nodes = [{"id": (ids or {}).get(k, k), "op": op, "in": args, "shape": [], "value": value[k], "grad": grad[k]}
             for k, (op, args) in ops.items()]
    return json.dumps({"graph": "log3x2p5xy", "file": "g.yaml", "outputs": ["z"], "nodes": nodes})


def chain(n: int) -> str:
    """n sines in a chain: a graph whose outputs (CSV, a report, a module) are a few KB."""
    body = "".join(f"  n{k}: {{op: sin, in: [{'x' if k == 0 else f'n{k - 1}'}]}}\n" for k in range(n))
    return f"cg: 1\ninputs: {{x: 1.0}}\nnodes:\n{body}outputs: [n{n - 1}]\n"


def evil_node(kind: str) -> str:
    """A graph with the kind's name and EVIL as an id, an input name, an op, a reference, a function
    name or a key (shown escaped, "id" + EVIL starts "id\\x1b]0;pwned")."""
    bad = f'"{kind}{EVIL}"'
    return {
        "id": f"cg: 1\ninputs: {{x: 1.0}}\nnodes:\n  {bad}: {{op: sin, in: [x]}}\noutputs: [x]\n",
        "input": f"cg: 1\ninputs: {{{bad}: 1.0}}\nnodes:\n  a: {{op: sin, in: [x]}}\noutputs: [a]\n",
        "op": f"cg: 1\ninputs: {{x: 1.0}}\nnodes:\n  a: {{op: {bad}, in: [x]}}\noutputs: [a]\n",
        "ref": f"cg: 1\ninputs: {{x: 1.0}}\nnodes:\n  a: {{op: sin, in: [{bad}]}}\noutputs: [a]\n",
        "function": f"cg: 1\nfunctions:\n  {bad}: {{inputs: [a], nodes: {{t: {{op: sin, in: [a]}}}}, output: t}}\n"
                    "inputs: {x: 1.0}\nnodes:\n  a: {op: sin, in: [x]}\noutputs: [a]\n",
        "key": f"cg: 1\ninputs: {{x: 1.0}}\nnodes:\n  a: {{op: sin, in: [x]}}\noutputs: [a]\n{bad}: 1\n",
    }[kind]


# ---- .npy files, honest and not -----------------------------------------------------------------


def npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def npy_raw(header: str, data: bytes = b"", version: int = 1) -> bytes:
    """A .npy file with exactly this header text (a dict literal, or anything else)."""
    h = header.encode("latin1")
    h += b" " * ((64 - (10 + len(h) + 1) % 64) % 64) + b"\n"
    if version == 1:
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + data
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<I", len(h)) + h + data


def npy_shape(shape: str, data: bytes = b"\0" * 16) -> bytes:
    return npy_raw(f"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}", data)


def npz() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, x=np.ones(2))
    return buf.getvalue()


# ---- what a case puts in its folder ---------------------------------------------------------------

Maker = Callable[[Path], None]


def text(data: str | bytes, mode: int | None = None) -> Maker:
    def make(path: Path) -> None:
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        if mode is not None:
            os.chmod(path, mode)

    return make


def fifo() -> Maker:
    return lambda path: os.mkfifo(path)


def folder() -> Maker:
    return lambda path: path.mkdir()


def link(target: str) -> Maker:
    return lambda path: path.symlink_to(target)


def sparse(size: int) -> Maker:
    def make(path: Path) -> None:
        with open(path, "wb") as f:
            f.truncate(size)  # no disk, and never read whole

    return make


def device(name: str) -> Maker:
    """A private copy of /dev/null, /dev/full or /dev/zero (as root only: the case skips otherwise)."""

    def make(path: Path) -> None:
        if os.geteuid() != 0:
            pytest.skip("private device nodes need root")
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, {"null": 3, "zero": 5, "full": 7}[name]))

    return make


def without_graphviz(data: str) -> Maker:
    """A file for a case about svg without Graphviz (skipped where `dot` is installed)."""

    def make(path: Path) -> None:
        if shutil.which("dot"):
            pytest.skip("Graphviz is installed")
        text(data)(path)

    return make


def unix_socket() -> Maker:
    def make(path: Path) -> None:
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(path))

    return make


# ---- a case and its run -----------------------------------------------------------------------------


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    maxrss_kib: int
    seconds: float
    folder: Path

    @property
    def both(self) -> str:
        return self.out + self.err


Check = Callable[[Outcome], None]


@dataclass(frozen=True)
class Case:
    name: str
    argv: tuple[str, ...]  # after `cg`, run in the case's folder; "{total}" is replaced by a budget
    code: int | tuple[int, ...]
    files: Mapping[str, str | bytes | Maker] = field(default_factory=dict)
    named: tuple[str, ...] = ()  # what is at fault, as cg must show it (escaped) in stdout or stderr
    says: tuple[str, ...] = ()  # more text the messages must hold (a CG code, the reason)
    hidden: tuple[str, ...] = ()  # text that must not appear (an imported file's content)
    changes: tuple[str, ...] = ()  # files the command may write; every other one stays as it was
    absent: tuple[str, ...] = ()  # files that must not exist afterwards
    stdin: str | None = None  # a file of the case's folder as standard input (default: an empty file)
    env: Mapping[str, str] = field(default_factory=dict)
    fsize: int | None = None  # RLIMIT_FSIZE for the child, in bytes
    budget: int | None = None  # replace "{total}" by the command's exact total plus this
    check: Check | None = None  # anything else

    def __str__(self) -> str:
        return self.name


def _env(extra: Mapping[str, str]) -> dict[str, str]:
    return forkserver.clean_env(extra)  # without CG_*: the defaults, whatever the shell says


def run_cg(argv: list[str], cwd: Path, stdin: Path, env: Mapping[str, str] | None = None, fsize: int | None = None,
           timeout: float = TIMEOUT, real: bool = False) -> Outcome:
    """`cg argv` in a process of its own (forked from tests/forkserver.py's server, or with
    `real` started afresh); its peak memory from wait4; killed (a failure) past `timeout`."""
    logs = cwd.parent / "logs"
    logs.mkdir(exist_ok=True)
    out_path, err_path = logs / "stdout", logs / "stderr"
    how = forkserver.real_run if real else forkserver.client().run
    done = how(argv, cwd=cwd, stdin=stdin, stdout=out_path, stderr=err_path, env=_env(env or {}), timeout=timeout,
               address_space=GUARD, fsize=fsize)
    if done.hung:
        pytest.fail(f"cg {' '.join(argv)!r} hung: killed after {timeout} s")
    raw_out, raw_err = out_path.read_bytes(), err_path.read_bytes()
    for what, raw in (("stdout", raw_out), ("stderr", raw_err)):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as e:
            pytest.fail(f"{what} is not UTF-8 (a raw byte {raw[e.start:e.end]!r} at {e.start}): "
                        f"{raw[max(0, e.start - 80):e.start + 40]!r}")
    return Outcome(done.code, raw_out.decode(), raw_err.decode(), done.maxrss_kib, done.seconds, cwd)


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything under root, as lstat sees it: type, mode, bytes (hashed), link target, device."""
    seen: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath) / name
            st = path.lstat()
            mode = stat.S_IMODE(st.st_mode)
            rel = str(path.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                seen[rel] = ("link", os.readlink(path))
            elif stat.S_ISREG(st.st_mode) and st.st_size and not st.st_blocks:
                seen[rel] = ("holes", mode, st.st_size)  # sparse, no data: any write would take a block
            elif stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256()
                with open(path, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        digest.update(block)
                seen[rel] = ("file", mode, st.st_size, digest.hexdigest())
            elif stat.S_ISDIR(st.st_mode):
                seen[rel] = ("dir", mode)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                seen[rel] = ("device", mode, st.st_rdev, st.st_ino)
            else:
                seen[rel] = ("special", stat.S_IFMT(st.st_mode), mode, st.st_ino)
    return seen


def _total(case: Case, total: int) -> tuple[list[str], dict[str, str]]:
    """The case's argv and environment with "{total}" replaced."""
    argv = [a.replace("{total}", str(total)) for a in case.argv]
    return argv, {k: v.replace("{total}", str(total)) for k, v in case.env.items()}


def exact_total(case: Case, cwd: Path, stdin: Path, real: bool = False) -> int:
    """The command's exact total budget: cg names it when refusing (for `cg check`, a count that
    stops at the limit: "N or more"), so raise the limit to what it said until it runs. (In a
    folder of its own: the run that succeeds writes its -o file.)"""
    limit = 1
    for _ in range(8):
        argv, env = _total(case, limit)
        r = run_cg(argv, cwd, stdin, env, real=real)
        found = re.search(r"would hold or compute ([\d,]+)", r.both)
        if found is None:
            assert r.code == 0, r.both
            return limit
        limit = int(found.group(1).replace(",", ""))
    pytest.fail(f"no fixed point for the budget of {case.argv}")


def _show(text: str) -> str:
    return text[-3000:]


def populate(case: Case, cwd: Path) -> None:
    cwd.mkdir()
    for name, spec in case.files.items():
        path = cwd / name
        path.parent.mkdir(parents=True, exist_ok=True)
        (text(spec) if isinstance(spec, (str, bytes)) else spec)(path)


def play(case: Case, tmp_path: Path, real: bool = False) -> Outcome:
    """Run the case and check everything the module's docstring lists (`real`: in a real process)."""
    tmp_path.mkdir(exist_ok=True)
    cwd = tmp_path / "case"
    populate(case, cwd)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    stdin = empty if case.stdin is None else cwd / case.stdin
    argv, env = list(case.argv), dict(case.env)
    if case.budget is not None:
        populate(case, tmp_path / "probe")
        probe_stdin = empty if case.stdin is None else tmp_path / "probe" / case.stdin
        argv, env = _total(case, exact_total(case, tmp_path / "probe", probe_stdin, real) + case.budget)
    before = snapshot(cwd)

    r = run_cg(argv, cwd, stdin, env, case.fsize, real=real)

    shown = f"exit {r.code}\n--- stdout\n{_show(r.out)}\n--- stderr\n{_show(r.err)}"
    codes = case.code if isinstance(case.code, tuple) else (case.code,)
    assert r.code in codes, shown
    assert "Traceback" not in r.both and "internal error" not in r.err, shown
    assert r.maxrss_kib < MEMORY_KIB, f"peak memory {r.maxrss_kib / 1024:.0f} MiB"
    for name in case.named:
        assert name in r.both, f"{name!r} is not named\n{shown}"
    for words in case.says:
        assert words in r.both, f"{words!r} is not said\n{shown}"
    for words in case.hidden:
        assert words not in r.both, f"{words!r} is shown\n{shown}"
    for where, out in (("stdout", r.out), ("stderr", r.err)):
        found = RAW.findall(out)
        assert not found, f"raw control characters {sorted(set(found))!r} in {where}\n{shown!r}"
    after = snapshot(cwd)
    leftovers = [p for p in after if p.endswith(".tmp") and p not in before]
    assert not leftovers, f"temporary files left: {leftovers}"
    for name, was in before.items():
        if name in case.changes or any(name.startswith(c + "/") for c in case.changes):
            continue
        assert after.get(name) == was, f"{name!r} changed: {was} -> {after.get(name)}\n{shown}"
    for name in case.absent:
        assert not os.path.lexists(cwd / name), f"{name!r} exists\n{shown}"
    if case.check is not None:
        case.check(r)
    return r


# ---- extra checks --------------------------------------------------------------------------------


def link_kept(name: str, target: str, starts: str) -> Check:
    def check(r: Outcome) -> None:
        assert (r.folder / name).is_symlink() and os.readlink(r.folder / name) == target
        assert (r.folder / target).read_text().startswith(starts)

    return check


def written(name: str, starts: str) -> Check:
    def check(r: Outcome) -> None:
        assert (r.folder / name).read_text().startswith(starts)

    return check


def clean_file(name: str) -> Check:
    """A file cg wrote holds no raw control character either (a report, a reformatted graph)."""

    def check(r: Outcome) -> None:
        found = RAW.findall((r.folder / name).read_text(encoding="utf-8"))
        assert not found, f"raw control characters {sorted(set(found))!r} in {name}"

    return check


def json_out(test: Callable[[object], bool]) -> Check:
    def check(r: Outcome) -> None:
        assert test(json.loads(r.out)), r.out[:2000]

    return check


def short_lines(most: int = 1000) -> Check:
    def check(r: Outcome) -> None:
        assert max(map(len, r.both.splitlines()), default=0) < most

    return check


def evil_json_graph(doc: object) -> bool:
    """A run's JSON keeps the exact text (in JSON's escapes): the name round-trips."""
    return isinstance(doc, dict) and doc["graph"] == f"evil {EVIL_TEXT}"


def evil_json_node(prefix: str) -> Callable[[object], bool]:
    return lambda doc: isinstance(doc, list) and any(d.get("node") == prefix + EVIL_TEXT for d in doc)


# ---- the corpus ------------------------------------------------------------------------------------

G = {"g.yaml": LOG}
OLD = "the old contents\n"
OUT = "cannot write"

OUTPUTS = [
    # -o onto what is not a plain new file, for every command that writes one.
    Case("run -o a directory", ("run", "g.yaml", "-o", "out"), 2, {**G, "out": folder()},
         named=("out",), says=("[CG330]", "is a directory")),
    Case("run -f csv -o a symlink: followed, the link kept", ("run", "g.yaml", "-f", "csv", "-o", "link"), 0,
         {**G, "target.csv": OLD, "link": link("target.csv")}, changes=("target.csv",),
         check=link_kept("link", "target.csv", "id,op")),
    Case("run -f json -o a dangling symlink: its target made", ("run", "g.yaml", "-f", "json", "-o", "dangle"), 0,
         {**G, "dangle": link("made.json")}, check=link_kept("dangle", "made.json", "{")),
    Case("run -o a private null device: discarded", ("run", "g.yaml", "-o", "null"), 0, {**G, "null": device("null")}),
    Case("run -f json -o a full device", ("run", "g.yaml", "-f", "json", "-o", "full"), 2,
         {**G, "full": device("full")}, named=("full",), says=("[CG330]", "No space left on device")),
    Case("run -o a FIFO nobody reads", ("run", "g.yaml", "-o", "pipe"), 2, {**G, "pipe": fifo()},
         named=("pipe",), says=("[CG330]", "FIFO")),
    Case("run -o a read-only file", ("run", "g.yaml", "-o", "ro.txt"), 2, {**G, "ro.txt": text(OLD, 0o444)},
         named=("ro.txt",), says=("[CG330]",)),
    Case("run -o a file in a missing folder", ("run", "g.yaml", "-f", "csv", "-o", "missing/x.csv"), 2, G,
         named=("missing/x.csv",), says=("[CG330]", "No such file or directory"), absent=("missing",)),
    Case("run -o below a file", ("run", "g.yaml", "-o", "plain.txt/x"), 2, {**G, "plain.txt": OLD},
         named=("plain.txt/x",), says=("[CG330]", "Not a directory")),
    Case("run -o a symlink loop", ("run", "g.yaml", "-o", "loop1"), 2,
         {**G, "loop1": link("loop2"), "loop2": link("loop1")}, named=("loop1",), says=("[CG330]",)),
    Case("run -o a socket", ("run", "g.yaml", "-o", "sock"), 2, {**G, "sock": unix_socket()},
         named=("sock",), says=("[CG330]", "socket")),
    Case("run -o control characters in a missing folder's name", ("run", "g.yaml", "-o", "miss\x1b]0;T\x07/x.txt"),
         2, G, named=("miss\\x1b]0;T\\x07/x.txt",), says=("[CG330]",)),
    Case("run -o control characters in a new file's name", ("run", "g.yaml", "-f", "csv", "-o", "ok\x1b[31m\u202e.csv"),
         0, G, check=written("ok\x1b[31m\u202e.csv", "id,op")),
    Case("run -f table -o a full device", ("run", "g.yaml", "-f", "table", "-o", "full"), 2,
         {**G, "full": device("full")}, named=("full",), says=("[CG330]",)),
    Case("run -f markdown -o a directory", ("run", "g.yaml", "-f", "markdown", "-o", "out"), 2,
         {**G, "out": folder()}, named=("out",), says=("[CG330]",)),
    Case("run -f latex -o a FIFO", ("run", "g.yaml", "-f", "latex", "-o", "pipe"), 2, {**G, "pipe": fifo()},
         named=("pipe",), says=("[CG330]",)),
    Case("run -f csv over a file-size limit: the old file kept", ("run", "big.yaml", "-f", "csv", "-o", "old.csv"),
         2, {"big.yaml": chain(200), "old.csv": OLD}, fsize=2048, named=("old.csv",), says=(OUT,)),
    Case("report -o a directory", ("report", "g.yaml", "-o", "out"), 2, {**G, "out": folder()},
         named=("out",), says=("[CG330]",)),
    Case("report -o a full device", ("report", "g.yaml", "-o", "full"), 2, {**G, "full": device("full")},
         named=("full",), says=("[CG330]", "No space left on device")),
    Case("report -o a symlink", ("report", "g.yaml", "-o", "link.md"), 0,
         {**G, "r.md": OLD, "link.md": link("r.md")}, changes=("r.md",), check=link_kept("link.md", "r.md", "#")),
    Case("report -o a read-only file", ("report", "g.yaml", "-o", "ro.md"), 2, {**G, "ro.md": text(OLD, 0o444)},
         named=("ro.md",), says=("[CG330]",)),
    Case("report over a file-size limit", ("report", "big.yaml", "-o", "old.md"), 2,
         {"big.yaml": chain(200), "old.md": OLD}, fsize=2048, named=("old.md",), says=(OUT,)),
    Case("draw -f html -o a directory", ("draw", "g.yaml", "-f", "html", "-o", "out"), 2, {**G, "out": folder()},
         named=("out",), says=("[CG330]",)),
    Case("draw -f html -o a private null device", ("draw", "g.yaml", "-f", "html", "-o", "null"), 0,
         {**G, "null": device("null")}),
    Case("draw -f html -o a FIFO", ("draw", "g.yaml", "-f", "html", "-o", "pipe"), 2, {**G, "pipe": fifo()},
         named=("pipe",), says=("[CG330]",)),
    Case("compile -o a FIFO", ("compile", "g.yaml", "-o", "pipe.py"), 2, {**G, "pipe.py": fifo()},
         named=("pipe.py",), says=("[CG330]",)),
    Case("compile -o a full device", ("compile", "g.yaml", "-o", "full"), 2, {**G, "full": device("full")},
         named=("full",), says=("[CG330]",)),
    Case("compile -o a dangling symlink", ("compile", "g.yaml", "-o", "m.py"), 0, {**G, "m.py": link("real.py")},
         check=link_kept("m.py", "real.py", '"""')),
    Case("compile -o a read-only file", ("compile", "g.yaml", "-o", "ro.py"), 2, {**G, "ro.py": text(OLD, 0o444)},
         named=("ro.py",), says=("[CG330]",)),
    Case("compile over a file-size limit", ("compile", "big.yaml", "-o", "old.py"), 2,
         {"big.yaml": chain(200), "old.py": OLD}, fsize=2048, named=("old.py",), says=(OUT,)),
    Case("draw -o an svg without Graphviz: the old picture kept", ("draw", "g.yaml", "-o", "pic.svg"), 2,
         {**G, "pic.svg": without_graphviz(OLD)}, named=("svg",), says=("[CG320]",)),
    Case("fmt a symlink: followed, the link kept", ("fmt", "link.yaml"), 0,
         {"real.yaml": LOG.replace("nodes:\n", "nodes:\n\n\n"), "link.yaml": link("real.yaml")},
         changes=("real.yaml",), check=link_kept("link.yaml", "real.yaml", "cg: 1")),
    Case("fmt a read-only file", ("fmt", "ro.yaml"), 1, {"ro.yaml": text(LOG + "\n\n", 0o444)},
         named=("ro.yaml",), says=("read-only",)),
    Case("fmt over a file-size limit: the old file kept", ("fmt", "big.yaml"), (1, 2),
         {"big.yaml": chain(200).replace("nodes:\n", "nodes:\n\n\n")}, fsize=2048, named=("big.yaml",),
         says=(OUT,)),
    Case("jacobian -o a directory", ("jacobian", "g.yaml", "--wrt", "x", "-o", "out"), 2, {**G, "out": folder()},
         named=("out",), says=("[CG330]",)),
    Case("jacobian -f json -o a full device", ("jacobian", "g.yaml", "--wrt", "x", "-f", "json", "-o", "full"), 2,
         {**G, "full": device("full")}, named=("full",), says=("[CG330]",)),
    Case("paths -f json -o a FIFO", ("paths", "g.yaml", "--from", "x", "--to", "z", "-f", "json", "-o", "pipe"), 2,
         {**G, "pipe": fifo()}, named=("pipe",), says=("[CG330]",)),
    Case("check -o a full device", ("check", "g.yaml", "-o", "full"), 2, {**G, "full": device("full")},
         named=("full",), says=("[CG330]",)),
    Case("new -o an existing file without --force", ("new", "-e", "x+1", "-o", "old.yaml"), 2, {"old.yaml": OLD},
         named=("old.yaml",), says=("--force",)),
    Case("new --force -o a full device", ("new", "-e", "x+1", "--force", "-o", "full"), 2, {"full": device("full")},
         named=("full",), says=("[CG330]",)),
    Case("new --force -o a FIFO", ("new", "-e", "x+1", "--force", "-o", "pipe"), 2, {"pipe": fifo()},
         named=("pipe",), says=("[CG330]",)),
    Case("new -o a control-character name: the message escaped", ("new", "-e", "x+1", "-o", "n\x1b]0;T\x07\u202e.yaml"),
         0, {}, named=("n\\x1b]0;T\\x07\\u202e.yaml",), check=written("n\x1b]0;T\x07\u202e.yaml", "cg: 1")),
]

READS = [
    Case("validate a FIFO", ("validate", "g.yaml"), 1, {"g.yaml": fifo()}, named=("g.yaml",),
         says=("[CG001]", "FIFO")),
    Case("run a FIFO", ("run", "g.yaml"), 1, {"g.yaml": fifo()}, named=("g.yaml",), says=("[CG001]",)),
    Case("run a directory", ("run", "g.yaml"), 2, {"g.yaml": folder()}, named=("g.yaml",), says=("directory",)),
    Case("validate a private zero device", ("validate", "zero"), 1, {"zero": device("zero")}, named=("zero",),
         says=("[CG001]", "device")),
    Case("check a symlink to a zero device", ("check", "g.yaml"), 1, {"zero": device("zero"), "g.yaml": link("zero")},
         named=("g.yaml",), says=("[CG001]",)),
    Case("fmt a symlink loop", ("fmt", "loop1.yaml"), 1, {"loop1.yaml": link("loop2.yaml"),
                                                          "loop2.yaml": link("loop1.yaml")},
         named=("loop1.yaml",), says=("[CG001]",)),
    Case("validate a socket", ("validate", "s.yaml"), 1, {"s.yaml": unix_socket()}, named=("s.yaml",),
         says=("[CG001]", "socket")),
    Case("validate a 60 MB sparse file", ("validate", "huge.yaml"), 1, {"huge.yaml": sparse(60 * 2**20)},
         named=("huge.yaml",), says=("[CG004]", "larger than the limit")),
    Case("validate a folder of FIFOs, devices and dangling links", ("validate", "scan"), 1,
         {"scan/g.yaml": LOG, "scan/f.yaml": fifo(), "scan/z.yaml": device("zero"), "scan/d.yaml": link("no.yaml"),
          "scan/dir.yaml": folder(), "scan/sub/up": link("..")},
         named=("scan/f.yaml", "scan/z.yaml", "scan/d.yaml", "scan/dir.yaml"), says=("1 valid, 4 invalid",)),
    Case("validate - from a zero device", ("validate", "-"), 1, {"zero": device("zero")}, stdin="zero",
         env={"CG_MAX_BYTES": "1000000"}, named=("<stdin>",), says=("[CG004]",)),
    Case("run - from a zero device", ("run", "-"), 1, {"zero": device("zero")}, stdin="zero",
         env={"CG_MAX_BYTES": "1000000"}, named=("<stdin>",), says=("[CG004]",)),
    Case("fmt - from a zero device", ("fmt", "-"), 1, {"zero": device("zero")}, stdin="zero",
         env={"CG_MAX_BYTES": "1000000"}, named=("<stdin>",), says=("[CG004]",)),
    # --against
    Case("check --against a FIFO", ("check", "g.yaml", "--against", "snap.json"), 2, {**G, "snap.json": fifo()},
         named=("snap.json",), says=("FIFO",)),
    Case("check --against a zero device", ("check", "g.yaml", "--against", "zero"), 2,
         {**G, "zero": device("zero")}, named=("zero",), says=("device",)),
    Case("check --against a directory", ("check", "g.yaml", "--against", "snap"), 2, {**G, "snap": folder()},
         named=("snap",), says=("directory",)),
    # What a readable snapshot holds is checked like a graph file: a bad one fails (1), at its position.
    Case("check --against non-UTF-8 bytes", ("check", "g.yaml", "--against", "snap.json"), 1,
         {**G, "snap.json": b"\xff\xfe{\x9b\x1b]0;T\x07"}, named=("snap.json",), says=("UTF-", "[CG002]")),
    Case("check --against JSON garbage", ("check", "g.yaml", "--against", "snap.json"), 1,
         {**G, "snap.json": '{"nodes": [1, 2'}, named=("snap.json:1:",), says=("[CG003]",)),
    Case("check --against 100,000 nested lists", ("check", "g.yaml", "--against", "snap.json"), 1,
         {**G, "snap.json": '{"nodes": ' + "[" * 100_000 + "]" * 100_000 + "}"}, named=("snap.json:1:",),
         says=("[CG004]",)),
    Case("check --against a 60 MB sparse file", ("check", "g.yaml", "--against", "snap.json"), 2,
         {**G, "snap.json": sparse(60 * 2**20)}, named=("snap.json",), says=("[CG004]",)),
    # @file values
    Case("--inputs x=@ a FIFO", ("run", "g.yaml", "--inputs", "x=@p.npy,y=3"), 2, {**G, "p.npy": fifo()},
         named=("p.npy",), says=("[CG300]", "FIFO")),
    Case("--inputs x=@ a directory", ("run", "g.yaml", "--inputs", "x=@d.json,y=3"), 2, {**G, "d.json": folder()},
         named=("d.json",), says=("[CG300]",)),
    Case("--inputs x=@ a zero device", ("run", "g.yaml", "--inputs", "x=@z.json,y=3"), 2,
         {**G, "zero": device("zero"), "z.json": link("zero")}, named=("z.json",), says=("device",)),
    Case("--inputs x=@ a text file named .npy", ("run", "g.yaml", "--inputs", "x=@t.npy"), 2,
         {**G, "t.npy": "[1, 2, 3]\n"}, named=("t.npy",), says=("not a .npy file",)),
    Case("--inputs x=@ an .npy whose header claims 10^10 numbers", ("run", "g.yaml", "--inputs", "x=@lie.npy"), 2,
         {**G, "lie.npy": npy_shape("(100000, 100000)")}, named=("lie.npy",), says=("10,000,000,000 numbers",)),
    Case("--inputs x=@ an .npy whose header claims 10^30 numbers", ("run", "g.yaml", "--inputs", "x=@lie.npy"), 2,
         {**G, "lie.npy": npy_shape(f"({10**30},)")}, named=("lie.npy",), says=("[CG300]",)),
    Case("--inputs x=@ an .npy whose header claims more than it holds", ("run", "g.yaml", "--inputs", "x=@s.npy"), 2,
         {**G, "s.npy": npy_shape("(1000,)")}, named=("s.npy",), says=("the header says 1,000 numbers",)),
    Case("--inputs x=@ an .npy with a negative shape", ("run", "g.yaml", "--inputs", "x=@neg.npy"), 2,
         {**G, "neg.npy": npy_shape("(-1,)")}, named=("neg.npy",), says=("[CG300]",)),
    Case("--inputs x=@ an .npy of no numbers past numpy's largest shape", ("run", "g.yaml", "--inputs", "x=@z.npy"), 2,
         {**G, "z.npy": npy_shape(f"(0, {10**22})", b"")}, named=("z.npy",), says=("[CG300]",)),
    Case("--inputs x=@ an .npy with a boolean shape", ("run", "g.yaml", "--inputs", "x=@b.npy"), 2,
         {**G, "b.npy": npy_shape("(True,)")}, named=("b.npy",), says=("[CG300]",)),
    Case("--inputs x=@ an .npy whose header length claims 4 GB", ("run", "g.yaml", "--inputs", "x=@h.npy"), 2,
         {**G, "h.npy": b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFFF0) + b"{'descr'"},
         named=("h.npy",), says=("[CG300]",)),
    Case("--inputs x=@ an .npy whose header is code", ("run", "g.yaml", "--inputs", "x=@c.npy"), 2,
         {**G, "c.npy": npy_raw("__import__('os').system('touch pwned')", b"\0" * 8)},
         named=("c.npy",), says=("not a valid .npy file",), absent=("pwned",)),
    Case("--inputs x=@ an .npy of Python objects", ("run", "g.yaml", "--inputs", "x=@o.npy"), 2,
         {**G, "o.npy": npy(np.array([1, {"a": 1}], dtype=object))}, named=("o.npy",), says=("unpickle",)),
    Case("--inputs x=@ an .npy holding NaN", ("run", "g.yaml", "--inputs", "x=@n.npy"), 2,
         {**G, "n.npy": npy(np.array(np.nan))}, named=("n.npy",), says=("NaN",)),
    Case("--inputs x=@ an .npz renamed .npy", ("run", "g.yaml", "--inputs", "x=@a.npy"), 2,
         {**G, "a.npy": npz()}, named=("a.npy",), says=(".npz",)),
    Case("--inputs x=@ a truncated .npy", ("run", "g.yaml", "--inputs", "x=@t.npy"), 2,
         {**G, "t.npy": npy(np.arange(5.0))[:-9]}, named=("t.npy",), says=("cut off",)),
    Case("--inputs W=@ a big-endian Fortran-order .npy works", ("run", "m.yaml", "--inputs", "W=@f.npy", "-f", "json"),
         0, {"m.yaml": MATRIX, "f.npy": npy(np.asfortranarray(np.arange(6, dtype=">f8").reshape(2, 3)))},
         check=json_out(lambda d: isinstance(d, dict) and d["nodes"][0]["value"] == [[0, 1, 2], [3, 4, 5]])),
    Case("--inputs x=@ a 60 MB sparse .json", ("run", "g.yaml", "--inputs", "x=@big.json"), 2,
         {**G, "big.json": sparse(60 * 2**20)}, named=("big.json",), says=("[CG004]",)),
]

EVIL_FILES = {"evil.yaml": EVIL_GRAPH}
ESCAPES = [
    # Errors that quote a hostile name, in every diagnostics format.
    Case("validate: a hostile node id", ("validate", "g.yaml"), 1, {"g.yaml": evil_node("id")},
         named=("g.yaml", "id\\x1b]0;pwned\\x07")),
    Case("validate -f human: a hostile input name", ("validate", "-f", "human", "g.yaml"), 1,
         {"g.yaml": evil_node("input")}, named=("g.yaml", "input\\x1b]0;pwned")),
    Case("validate -f json: a hostile node id, exact in JSON", ("validate", "-f", "json", "g.yaml"), 1,
         {"g.yaml": evil_node("id")}, named=("g.yaml",), check=json_out(evil_json_node("id"))),
    Case("validate -f github: a hostile op", ("validate", "-f", "github", "g.yaml"), 1, {"g.yaml": evil_node("op")},
         named=("g.yaml", "op\\x1b]0;pwned"), says=("::error",)),
    Case("validate -f plain: a hostile reference", ("validate", "-f", "plain", "g.yaml"), 1,
         {"g.yaml": evil_node("ref")}, named=("g.yaml", "ref\\x1b]0;pwned")),
    Case("validate: a hostile function name", ("validate", "g.yaml"), 1, {"g.yaml": evil_node("function")},
         named=("g.yaml", "function\\x1b]0;pwned")),
    Case("run: a hostile unknown key", ("run", "g.yaml"), 1, {"g.yaml": evil_node("key")},
         named=("g.yaml", "key\\x1b]0;pwned")),
    Case("check: a hostile op", ("check", "g.yaml"), 1, {"g.yaml": evil_node("op")}, named=("g.yaml", "op\\x1b]0;")),
    # Hostile docs and names in every format that prints them.
    Case("run: hostile name and docs, table", ("run", "evil.yaml"), 0, EVIL_FILES),
    Case("run -f markdown", ("run", "evil.yaml", "-f", "markdown"), 0, EVIL_FILES),
    Case("run -f latex", ("run", "evil.yaml", "-f", "latex"), 0, EVIL_FILES, says=("\\x1b]0;pwned",)),
    Case("run -f csv", ("run", "evil.yaml", "-f", "csv"), 0, EVIL_FILES),
    Case("run -f json keeps the exact name", ("run", "evil.yaml", "-f", "json"), 0, EVIL_FILES,
         check=json_out(evil_json_graph)),
    Case("run --edges --expand", ("run", "evil.yaml", "--edges", "--expand"), 0, EVIL_FILES),
    Case("check", ("check", "evil.yaml"), 0, EVIL_FILES),
    Case("check -f json", ("check", "evil.yaml", "-f", "json"), 0, EVIL_FILES, check=json_out(lambda d: True)),
    Case("report", ("report", "evil.yaml"), 0, EVIL_FILES, says=("\\x1b]0;pwned",)),
    Case("draw -f html", ("draw", "evil.yaml", "-f", "html"), 0, EVIL_FILES),
    Case("draw (dot)", ("draw", "evil.yaml", "--composites", "cluster"), 0, EVIL_FILES),
    Case("draw -f mermaid", ("draw", "evil.yaml", "-f", "mermaid"), 0, EVIL_FILES),
    Case("paths", ("paths", "evil.yaml", "--from", "x", "--to", "b"), 0, EVIL_FILES),
    Case("jacobian", ("jacobian", "evil.yaml", "--wrt", "x"), 0, EVIL_FILES),
    Case("jacobian -f json", ("jacobian", "evil.yaml", "--wrt", "x", "-f", "json"), 0, EVIL_FILES,
         check=json_out(evil_json_graph)),
    Case("compile", ("compile", "evil.yaml"), 0, EVIL_FILES),
    Case("fmt -", ("fmt", "-"), 0, EVIL_FILES, stdin="evil.yaml"),
    Case("fmt keeps escapes escaped in the file", ("fmt", "rlo.yaml"), 0,
         {"rlo.yaml": 'cg: 1\nname: "safe \\u202e here"\ninputs: {x: 1.0}\nnodes:\n  a: {op: sin, in: [x]}\n'
                      "outputs: [a]\n"}, changes=("rlo.yaml",), check=clean_file("rlo.yaml")),
    # Hostile file names.
    Case("validate a file with a hostile name", ("validate", EVIL_NAME), 1, {EVIL_NAME: evil_node("ref")},
         named=(EVIL_SHOWN,)),
    Case("run a file with a hostile name", ("run", EVIL_NAME), 1, {EVIL_NAME: evil_node("ref")}, named=(EVIL_SHOWN,)),
    Case("fmt --check a file with a hostile name", ("fmt", "--check", EVIL_NAME), 1, {EVIL_NAME: LOG + "\n\n"},
         named=(EVIL_SHOWN,)),
    Case("report a file with a hostile name, and its Reproduce line", ("report", EVIL_NAME, "-o", "r.md"), 0,
         {EVIL_NAME: EVIL_GRAPH}, check=clean_file("r.md")),
    Case("run -f json: a hostile file name round-trips", ("run", EVIL_NAME, "-f", "json"), 0, {EVIL_NAME: EVIL_GRAPH},
         check=json_out(lambda d: isinstance(d, dict) and d["file"] == EVIL_NAME)),
    Case("check --against a missing file with a hostile name", ("check", "g.yaml", "--against", EVIL_NAME), 2, G,
         named=(EVIL_SHOWN,)),
    # A file name that is not UTF-8 at all: the byte 0x9b alone, C1's CSI.
    Case("validate a file whose name is not UTF-8", ("validate", "raw\udc9b.yaml"), 1,
         {"raw\udc9b.yaml": evil_node("ref")}, named=("raw",)),
    Case("validate -f json a file whose name is not UTF-8", ("validate", "-f", "json", "raw\udc9b.yaml"), 1,
         {"raw\udc9b.yaml": evil_node("ref")}, named=("raw",), check=json_out(lambda d: True)),
    Case("check a file whose name is not UTF-8", ("check", "raw\udc9b.yaml"), 1, {"raw\udc9b.yaml": "cg: 1\n"},
         named=("raw",)),
    Case("run a file whose name is not UTF-8", ("run", "raw\udc9b.yaml"), 1, {"raw\udc9b.yaml": "cg: 1\n"},
         named=("raw",)),
    # Hostile command-line values.
    Case("run --of a hostile name", ("run", "g.yaml", "--of", "q\x1b]0;T\x07\u202e"), 2, G,
         named=("q\\x1b]0;T\\x07\\u202e",), says=("[CG301]",)),
    Case("jacobian --wrt a hostile name", ("jacobian", "g.yaml", "--wrt", "q\x1b]52;c;eA==\x07"), 2, G,
         named=("q\\x1b]52;c;eA==\\x07",)),
    Case("paths --from a hostile name", ("paths", "g.yaml", "--from", "q\x9b2J", "--to", "z"), 2, G,
         named=("q\\x9b2J",)),
    Case("run --seed a hostile value", ("run", "g.yaml", "--seed", "\x1b]0;T\x07"), 2, G, named=("\\x1b]0;T\\x07",)),
    Case("new -e with an escape", ("new", "-e", "q\x1b]0;T\x07+1"), 1, {}, named=("\\x1b",), says=("[CG600]",)),
    Case("new --output-node a hostile name", ("new", "-e", "x+1", "--output-node", "q\x1b]0;T\x07"), 2, {},
         named=("q\\x1b]0;T\\x07",)),
    Case("new --name with escapes and a bidi control", ("new", "-e", "x+1", "--name", "a\x1b]0;T\x07\u202e\x9b"), 0, {},
         says=("cg: 1",)),
    Case("new --name that is not UTF-8", ("new", "-e", "x+1", "--name", "a\udc9b"), 2, {}, named=("--name",)),
]

NUMBERS = [
    Case("--inputs x=1e400", ("run", "g.yaml", "--inputs", "x=1e400"), 2, G, named=("1e400",), says=("[CG300]",)),
    Case("--inputs x=nan", ("run", "g.yaml", "--inputs", "x=nan"), 2, G, named=("input 'x'",), says=("NaN",)),
    Case("--inputs that overflow at run time", ("run", "g.yaml", "--inputs", "x=1e308,y=1e308"), 1, G,
         named=("g.yaml", "node 'a'"), says=("[CG200]",)),
    Case("--inputs nested 5,000 deep", ("run", "g.yaml", "--inputs", "x=" + "[" * 5000 + "1" + "]" * 5000), 2, G,
         named=("input 'x'",), says=("nested",), check=short_lines()),
    Case("--inputs of 100,000 digits", ("run", "g.yaml", "--inputs", "x=" + "7" * 100_000), 2, G,
         named=("input 'x'",), check=short_lines()),
    Case("--of a name of 100,000 letters", ("run", "g.yaml", "--of", "q" * 100_000), 2, G, named=("g.yaml",),
         check=short_lines()),
    Case("a constant 1e400 in the graph", ("validate", "g.yaml"), 1, {"g.yaml": LOG.replace("x: 2.0", "x: 1e400")},
         named=("g.yaml:5",), says=("[CG007]",)),
    Case("a declared shape of 10^10 numbers", ("run", "g.yaml"), 1,
         {"g.yaml": "cg: 1\ninputs:\n  W: {shape: [100000, 100000]}\nnodes:\n  s: {op: sum, in: [W]}\noutputs: [s]\n"},
         named=("g.yaml:3",), says=("[CG004]",)),
    Case("a declared shape of 10^23 numbers", ("check", "g.yaml"), 1,
         {"g.yaml": f"cg: 1\ninputs:\n  W: {{shape: [{10**23}]}}\nnodes:\n  s: {{op: sum, in: [W]}}\noutputs: [s]\n"},
         named=("g.yaml:3",), says=("[CG004]",)),
    Case("check: a shape of no numbers past numpy's largest", ("check", "g.yaml"), 1,
         {"g.yaml": f"cg: 1\ninputs:\n  W: {{shape: [0, {10**20}]}}\nnodes:\n  s: {{op: sum, in: [W]}}\n"
                    "outputs: [s]\n"}, named=("g.yaml",)),
    Case("a list nested 10,000 deep", ("validate", "g.yaml"), 1,
         {"g.yaml": "cg: 1\ninputs:\n  x: " + "[" * 10_000 + "1" + "]" * 10_000 + "\n"}, named=("g.yaml",),
         says=("[CG004]",)),
    Case("a 5 MB line", ("validate", "g.yaml"), 1,
         {"g.yaml": f"cg: 1\ninputs: {{x: 1.0}}\nnodes:\n  n: {{op: neg, in: [{'q' * 5_000_000}]}}\noutputs: [n]\n"},
         named=("g.yaml:4",), check=short_lines()),
    Case("check --against a snapshot that says Infinity", ("check", "g.yaml", "--against", "snap.json"), 1,
         {**G, "snap.json": log_snapshot(x=float("inf"))}, named=("node 'x'",), says=("[CG402]",)),
    Case("check --against a snapshot with a hostile id", ("check", "g.yaml", "--against", "snap.json"), 1,
         {**G, "snap.json": log_snapshot(ids={"x": "x\x1b]0;pwned\x07"})},
         named=("x\\x1b]0;pwned\\x07",), says=("[CG402]",)),
]

_SIZE = len(SMALL.encode())
V_JSON = "[" + ", ".join(["1.5"] * 600) + "]"  # 3,000 bytes
_V = np.array([[1.0, 2.0], [3.0, 4.0]])
SNAPSHOT = json.dumps({"graph": "s", "file": "s.yaml", "outputs": ["s"], "nodes": [  # what `cg run -f json` says
    {"id": "v", "op": "input", "in": [], "shape": [2, 2], "value": _V.tolist(), "grad": np.cos(_V).tolist()},
    {"id": "a", "op": "sin", "in": ["v"], "shape": [2, 2], "value": np.sin(_V).tolist(), "grad": [[1.0] * 2] * 2},
    {"id": "s", "op": "sum", "in": ["a"], "shape": [], "value": float(np.sin(_V).sum()), "grad": 1.0}]})
LIMITS = [
    Case("--max-bytes just under", ("--max-bytes", str(_SIZE), "run", "s.yaml"), 0, {"s.yaml": SMALL}),
    Case("--max-bytes just over", ("--max-bytes", str(_SIZE - 1), "run", "s.yaml"), 1, {"s.yaml": SMALL},
         named=("s.yaml",), says=("[CG004]",)),
    Case("CG_MAX_BYTES just over", ("validate", "s.yaml"), 1, {"s.yaml": SMALL}, env={"CG_MAX_BYTES": str(_SIZE - 1)},
         named=("s.yaml",), says=("[CG004]",)),
    Case("--max-depth just under", ("--max-depth", "5", "check", "s.yaml"), 0, {"s.yaml": SMALL}),
    Case("--max-depth just over", ("--max-depth", "4", "check", "s.yaml"), 1, {"s.yaml": SMALL},
         named=("s.yaml:3",), says=("[CG004]",)),
    Case("--max-nodes just under", ("--max-nodes", "2", "jacobian", "s.yaml", "--wrt", "v"), 0, {"s.yaml": SMALL}),
    Case("--max-nodes just over", ("--max-nodes", "1", "jacobian", "s.yaml", "--wrt", "v"), 1, {"s.yaml": SMALL},
         named=("s.yaml",), says=("[CG004]",)),
    Case("CG_MAX_NODES just over", ("draw", "s.yaml"), 1, {"s.yaml": SMALL}, env={"CG_MAX_NODES": "1"},
         named=("s.yaml",), says=("[CG004]",)),
    Case("--max-elements just under", ("--max-elements", "4", "run", "s.yaml", "-f", "json"), 0, {"s.yaml": SMALL},
         check=json_out(lambda d: True)),
    Case("--max-elements just over", ("--max-elements", "3", "run", "s.yaml", "-f", "json"), 1, {"s.yaml": SMALL},
         named=("s.yaml:3", "node 'v'"), says=("[CG004]",)),
    Case("--max-elements just under, from --inputs", ("--max-elements", "6", "run", "u.yaml", "-i", "v=[1,2,3,4,5,6]"),
         0, {"u.yaml": UNSHAPED}),
    Case("--max-elements just over, from --inputs", ("--max-elements", "5", "run", "u.yaml", "-i", "v=[1,2,3,4,5,6]"),
         2, {"u.yaml": UNSHAPED}, named=("input 'v'",), says=("[CG300]",)),
    Case("--max-bytes just under, an @file.json value",
         ("--max-bytes", str(len(V_JSON)), "run", "v.yaml", "-i", "v=@v.json"), 0,
         {"v.yaml": VECTOR, "v.json": V_JSON}),
    Case("--max-bytes just over, an @file.json value",
         ("--max-bytes", str(len(V_JSON) - 1), "run", "v.yaml", "-i", "v=@v.json"), 2,
         {"v.yaml": VECTOR, "v.json": V_JSON}, named=("v.json",), says=("[CG004]",)),
    Case("--max-bytes just under, a saved result",
         ("--max-bytes", str(len(SNAPSHOT)), "check", "s.yaml", "--against", "s.json"), 0,
         {"s.yaml": SMALL, "s.json": SNAPSHOT}),
    Case("--max-bytes just over, a saved result",
         ("--max-bytes", str(len(SNAPSHOT) - 1), "check", "s.yaml", "--against", "s.json"), 2,
         {"s.yaml": SMALL, "s.json": SNAPSHOT}, named=("s.json",), says=("[CG004]",)),
]

BUDGET = ("g.yaml",)
BUDGETS = [
    Case("--max-total just under: run", ("--max-total", "{total}", "run", "g.yaml"), 0, G, budget=0),
    Case("--max-total just over: run", ("--max-total", "{total}", "run", "g.yaml"), 1, G, budget=-1,
         named=BUDGET, says=("[CG004]", "cg run would hold or compute")),
    Case("--max-total just under: run -f json", ("--max-total", "{total}", "run", "g.yaml", "-f", "json"), 0, G,
         budget=0),
    Case("--max-total just over: run -f json", ("--max-total", "{total}", "run", "g.yaml", "-f", "json", "-o",
                                                "old.json"), 1,
         {**G, "old.json": OLD}, budget=-1, named=BUDGET, says=("[CG004]",)),
    Case("--max-total just under: check", ("--max-total", "{total}", "check", "g.yaml"), 0, G, budget=0),
    Case("--max-total just over: check", ("--max-total", "{total}", "check", "g.yaml"), 1, G, budget=-1,
         named=BUDGET, says=("[CG004]", "cg check would hold or compute")),
    Case("--max-total just under: jacobian", ("--max-total", "{total}", "jacobian", "g.yaml", "--wrt", "x"), 0, G,
         budget=0),
    Case("--max-total just over: jacobian", ("--max-total", "{total}", "jacobian", "g.yaml", "--wrt", "x"), 1, G,
         budget=-1, named=BUDGET, says=("[CG004]", "cg jacobian would hold or compute")),
    Case("CG_MAX_TOTAL just under: report", ("report", "g.yaml"), 0, G, env={"CG_MAX_TOTAL": "{total}"}, budget=0),
    Case("CG_MAX_TOTAL just over: report", ("report", "g.yaml"), 1, G, env={"CG_MAX_TOTAL": "{total}"}, budget=-1,
         named=BUDGET, says=("[CG004]",)),
]

SECRET = "SECRET-CONTENT-4f2a"
LIBRARY = f"cg: 1\nfunctions:\n  f: {{inputs: [a], nodes: {{t: {{op: sin, in: [a]}}}}, output: t}}\n# {SECRET}\n"


def importing(path: str) -> str:
    return f"cg: 1\nimports: [{path}]\ninputs: {{x: 1.0}}\nnodes:\n  a: {{op: f, in: [x]}}\noutputs: [a]\n"


IMPORTS = [
    Case("imports: [/etc/passwd]", ("validate", "proj/g.yaml"), 1, {"proj/g.yaml": importing("/etc/passwd")},
         named=("proj/g.yaml:2", "/etc/passwd"), says=("[CG131]",), hidden=("root:",)),
    Case("imports: [../outside/lib.yaml]", ("run", "proj/g.yaml"), 1,
         {"proj/g.yaml": importing("../outside/lib.yaml"), "outside/lib.yaml": LIBRARY},
         named=("proj/g.yaml:2", "../outside/lib.yaml"), says=("[CG131]", "--allow-path"), hidden=(SECRET,)),
    Case("imports: a missing file outside says nothing more", ("run", "proj/g.yaml"), 1,
         {"proj/g.yaml": importing("../outside/none.yaml")}, named=("proj/g.yaml:2",), says=("[CG131]",),
         hidden=("No such file",)),
    Case("imports: a symlink inside that points at /etc/shadow", ("check", "proj/g.yaml"), 1,
         {"proj/g.yaml": importing("lib.yaml"), "proj/lib.yaml": link("/etc/shadow")},
         named=("proj/g.yaml:2",), says=("[CG131]",), hidden=("root:",)),
    Case("imports: a broken library is not quoted", ("validate", "proj/g.yaml"), 1,
         {"proj/g.yaml": importing("lib.yaml"), "proj/lib.yaml": f"{SECRET}: [\n"},
         named=("proj/g.yaml:2", "lib.yaml"), says=("[CG131]",), hidden=(SECRET,)),
    Case("imports: a library that is not one is not quoted", ("validate", "proj/g.yaml"), 1,
         {"proj/g.yaml": importing("lib.yaml"), "proj/lib.yaml": f"cg: 1\n{SECRET}: {SECRET}\n"},
         named=("proj/g.yaml:2", "lib.yaml"), says=("[CG131]",), hidden=(SECRET,)),
    Case("imports: a FIFO", ("run", "proj/g.yaml"), 1, {"proj/g.yaml": importing("lib.yaml"), "proj/lib.yaml": fifo()},
         named=("proj/g.yaml:2", "lib.yaml"), says=("[CG131]",)),
    Case("imports: a zero device in the folder", ("run", "proj/g.yaml"), 1,
         {"proj/g.yaml": importing("lib.yaml"), "proj/lib.yaml": device("zero")},
         named=("proj/g.yaml:2", "lib.yaml"), says=("[CG131]",)),
    Case("imports: /dev/zero", ("run", "proj/g.yaml"), 1, {"proj/g.yaml": importing("/dev/zero")},
         named=("proj/g.yaml:2", "/dev/zero"), says=("[CG131]",)),
    Case("imports: from stdin, ../ is outside the current folder", ("run", "-"), 1,
         {"g.yaml": importing("../lib.yaml")}, stdin="g.yaml", named=("<stdin>",), says=("[CG131]",)),
    Case("imports: --allow-path lets the folder in", ("--allow-path", "outside", "run", "proj/g.yaml"), 0,
         {"proj/g.yaml": importing("../outside/lib.yaml"), "outside/lib.yaml": LIBRARY}),
]

CASES = OUTPUTS + READS + ESCAPES + NUMBERS + LIMITS + BUDGETS + IMPORTS


def test_the_corpus_is_big_and_every_failure_names_its_cause() -> None:
    assert len(CASES) >= 60
    assert len({c.name for c in CASES}) == len(CASES)
    for case in CASES:
        if case.code != 0:
            assert case.named, f"{case.name}: a failing case must say what it names"


@pytest.mark.parametrize("case", CASES, ids=str)
def test_hostile(case: Case, tmp_path: Path) -> None:
    play(case, tmp_path)


# One case of each kind, also in a real process started afresh: the fork server must change nothing.
AGREE = ["run -f json -o a full device", "run -o a FIFO nobody reads", "run -f csv over a file-size limit: the old "
         "file kept", "validate - from a zero device", "run -f latex", "validate a file whose name is not UTF-8",
         "--max-total just over: check", "imports: [../outside/lib.yaml]"]


@pytest.mark.parametrize("name", AGREE)
def test_forked_and_real_agree(name: str, tmp_path: Path) -> None:
    (case,) = [c for c in CASES if c.name == name]
    real = play(case, tmp_path / "real", real=True)
    forked = play(case, tmp_path / "forked")
    assert (forked.code, forked.out, forked.err) == (real.code, real.out.replace(str(real.folder), str(forked.folder)),
                                                     real.err.replace(str(real.folder), str(forked.folder)))
