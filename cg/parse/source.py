"""Bytes to text, shared by the YAML and the JSON readers: the size limit, UTF-16, the byte order
mark, NUL bytes and invalid UTF-8 are refused (CG002, CG004) with the line and column where they are."""

from __future__ import annotations

import re

from cg.errors import Diagnostic, LoadError, Pos
from cg.files import read_regular
from cg.limits import Limits

_NOT_PRINTABLE = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def read_bytes(path: str, name: str, max_bytes: int) -> bytes:
    """The file's bytes, at most one past the limit (enough to know it is too big); CG001 if it is
    unreadable or not a regular file (a FIFO or a device is never waited on or read forever)."""
    return read_regular(path, max_bytes, name, LoadError)


def decode(raw: bytes, file: str, max_bytes: int, *, language: str = "YAML") -> str:
    """UTF-8 text without its byte order mark. For YAML, control characters outside the printable
    set are refused here too (libyaml refuses them with a byte offset and no line); JSON's own
    parser says where a raw control character is."""
    if len(raw) > max_bytes:
        message = f"file is larger than the limit of {max_bytes:,} bytes; split it up or {Limits().hint('max_bytes')}"
        raise fail("CG004", message, file)
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):  # e.g. PowerShell 5 redirection writes UTF-16
        raise fail("CG002", "file is UTF-16 text; save it as UTF-8", file, Pos(1, 1))
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    nul = raw.find(b"\0")
    if nul >= 0:
        pos = byte_pos(raw, nul)
        message = f"binary file, not text (NUL byte at line {pos.line}, column {pos.col})"
        raise fail("CG002", message, file, pos)
    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        pos = byte_pos(raw, err.start)
        message = f"not UTF-8 text (invalid byte 0x{raw[err.start]:02x} at line {pos.line}, column {pos.col})"
        raise fail("CG002", message + "; save the file as UTF-8", file, pos) from None
    if language == "YAML":
        bad = _NOT_PRINTABLE.search(source)
        if bad is not None:
            pos = char_pos(source, bad.start())
            message = f"control character U+{ord(bad.group()):04X} at line {pos.line}, column {pos.col}"
            raise fail("CG002", message + " is not allowed in YAML; remove it", file, pos)
    return source


def to_bytes(text: str | bytes) -> bytes:
    # str goes through bytes too, so both get the same size, NUL and UTF-8 checks.
    return text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text


def byte_pos(raw: bytes, offset: int) -> Pos:
    start = raw.rfind(b"\n", 0, offset) + 1
    col = len(raw[start:offset].decode("utf-8", "replace")) + 1  # columns count characters
    return Pos(raw.count(b"\n", 0, offset) + 1, col)


def char_pos(text: str, offset: int) -> Pos:
    return Pos(text.count("\n", 0, offset) + 1, offset - text.rfind("\n", 0, offset))


def short(text: str, limit: int = 40) -> str:
    """Quoted text in messages: one line, at most limit characters."""
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fail(code: str, message: str, file: str, pos: Pos | None = None) -> LoadError:
    return LoadError([Diagnostic(code, message, file, pos)])
