"""Reading and writing files so that nothing can hang, exhaust memory or clobber what it should not.

Reads: only regular files (and standard input), read up to a size limit and refused beyond it. A
FIFO, a device or a directory is an error, never a wait for a writer that does not come or an
endless read of /dev/zero.

Writes (`-o FILE`, `cg fmt`): a regular file, or a new one, is written into a temporary file in
its folder, flushed to disk (fsync) and renamed onto it, so a reader sees the old file or the new
one and a failure (no space, a file-size limit, an interrupt) leaves the old file as it was and no
temporary file behind. An existing file keeps its mode (and, when cg runs as root, its owner); a
new one gets the mode the umask gives. A symlink is followed and its target replaced, so the link
stays a link. What is not a regular file is never replaced: a device or a FIFO is written directly
as a shell redirection would (`-o /dev/null` discards, `-o /dev/full` fails), and a directory is an
error.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import tempfile
from collections.abc import Iterable
from typing import IO, BinaryIO

from cg.errors import CgError, Diagnostic, UsageError

Chunks = str | bytes | Iterable[str] | Iterable[bytes]


class OutputError(UsageError):
    """An output file that cannot be written: a directory, no permission, no space (exit code 2:
    the -o value given cannot be used)."""


# ---- reading -------------------------------------------------------------------------------------


def kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_regular(path: str, limit: int, name: str, error: type[CgError], *, what: str = "file") -> bytes:
    """At most limit + 1 bytes of a regular file (one byte over tells the caller it is too big).

    `error` is the CgError raised (code CG001) when the file cannot be read or is not a regular
    file: LoadError for a graph file, UsageError for a command-line value."""
    try:
        # O_NONBLOCK: if a FIFO takes the file's place between the check and the open, the open
        # returns at once instead of waiting for a writer.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        if err.errno == errno.ENXIO:  # a socket (opening one fails so): say what it is
            with contextlib.suppress(OSError):
                mode = os.stat(path).st_mode
                raise error.one("CG001", f"cannot read {what}: it is {kind(mode)}, not a regular file",
                                file=name) from None
        raise error.one("CG001", f"cannot read {what}: {err.strerror or err}", file=name) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise error.one("CG001", f"cannot read {what}: it is {kind(mode)}, not a regular file", file=name)
    with os.fdopen(fd, "rb") as f:
        try:
            return f.read(limit + 1)
        except OSError as err:
            raise error.one("CG001", f"cannot read {what}: {err.strerror or err}", file=name) from None


def read_stdin(limit: int) -> bytes:
    """At most limit + 1 bytes of standard input (a pipe or /dev/zero is bounded by the limit)."""
    stream: BinaryIO = sys.stdin.buffer
    return stream.read(limit + 1)


# ---- writing -------------------------------------------------------------------------------------


def write_output(data: Chunks, output: str | None) -> None:
    """Write text or bytes (whole, or an iterable of chunks) to stdout (None or '-') or to a file."""
    if output is None or output == "-":
        write_stdout(data)
    else:
        write_file(output, data)


def write_stdout(data: Chunks) -> None:
    binary = isinstance(data, bytes)
    stream: IO[bytes] | IO[str] = sys.stdout.buffer if binary else sys.stdout
    for chunk in _chunks(data):
        stream.write(chunk)  # type: ignore[arg-type]
    stream.flush()


def _chunks(data: Chunks) -> Iterable[str | bytes]:
    return (data,) if isinstance(data, (str, bytes)) else data


def write_file(output: str, data: Chunks) -> None:
    """Write `data` to the file `output` by the rules of this module's docstring; OutputError if it
    cannot be written (the file is then as it was)."""
    try:
        st = os.stat(output)  # follows symlinks
    except FileNotFoundError:
        st = None
    except OSError as err:
        raise _cannot(output, err) from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputError.one("CG330", f"cannot write {output}: it is a directory")
    if st is not None and stat.S_ISSOCK(st.st_mode):
        raise OutputError.one("CG330", f"cannot write {output}: it is a socket")
    if st is not None and not stat.S_ISREG(st.st_mode):
        _write_special(output, data)
        return
    if st is not None and not st.st_mode & 0o222:  # root could, but the file's mode says nobody should
        raise OutputError.one("CG330", f"cannot write {output}: it is read-only")
    # A regular file (or a dangling symlink, or nothing yet): replace the target of any link.
    target = os.path.realpath(output) if os.path.islink(output) else output
    _replace(target, output, data, st)


def _write_special(output: str, data: Chunks) -> None:
    """A device or a FIFO: written in place, as `> output` would; a FIFO nobody reads is an error."""
    try:
        fd = os.open(output, os.O_WRONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        if err.errno == errno.ENXIO:  # a FIFO with no reader: waiting would hang
            raise OutputError.one("CG330", f"cannot write {output}: a FIFO that nobody reads") from None
        raise _cannot(output, err) from None
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)  # a reader is there: write at its pace
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in _chunks(data):
                f.write(chunk if isinstance(chunk, bytes) else chunk.encode("utf-8"))
    except OSError as err:
        raise _cannot(output, err) from None


def _replace(target: str, output: str, data: Chunks, st: os.stat_result | None) -> None:
    folder, name = os.path.split(target)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder or ".", prefix=f".{name}.", suffix=".tmp")
    except OSError as err:
        raise _cannot(output, err) from None
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in _chunks(data):
                f.write(chunk if isinstance(chunk, bytes) else chunk.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        _same_mode(tmp, st)
        os.replace(tmp, target)
    except BaseException as err:  # an interrupt too: never leave the temporary file behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise _cannot(output, err) from None
        raise


def _same_mode(tmp: str, st: os.stat_result | None) -> None:
    """mkstemp makes 0600: give the file the old file's mode (and owner), or the umask's."""
    if st is None:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        return
    os.chmod(tmp, stat.S_IMODE(st.st_mode))
    if hasattr(os, "geteuid") and os.geteuid() == 0 and (st.st_uid, st.st_gid) != (0, 0):
        with contextlib.suppress(OSError):
            os.chown(tmp, st.st_uid, st.st_gid)


def _cannot(output: str, err: OSError) -> OutputError:
    return OutputError([Diagnostic("CG330", f"cannot write {output}: {err.strerror or err}")])


def read_only(path: str) -> bool:
    """Whether nobody may write the file (its mode has no w bit): root could, but `cg fmt` must not."""
    try:
        return not os.stat(path).st_mode & 0o222
    except OSError:
        return False
