"""Read a graph file written as JSON (`*.json`: the same schema, the same data as the YAML form).

The fast path is `json.loads` (C) plus a few checks done with C-level iteration, one pass per
nesting level: depth, number of values, integers of more than 100 digits, numbers that overflow
to infinity, and duplicate keys, which `json.loads` would silently resolve to the last one. The
duplicate check counts: every key has exactly one `:` after it and colons appear nowhere else
except inside strings, so when the keys of the data plus the colons inside its strings add up to
the colons of the text, no key was dropped.

Positions are found only when something needs one: on any problem, and for messages at run
time (cg/parse/document.py), a small reader written with an explicit stack goes over the text again,
records the position of every key and value, and reports every problem with its line and
column. It is the authority on what is refused; the fast path only recognises files that are
plainly fine. The rules match cg/parse/yamldoc.py's: NaN and Infinity are refused like YAML's .nan
(CG007), and so are integers of more than 100 digits and numbers beyond float64; a key written
twice is an error (CG006); nesting deeper than the depth limit is CG004; a byte order mark is
skipped; the text must be UTF-8 (CG002).
"""

from __future__ import annotations

import json
import os
import re
from itertools import chain, compress, repeat
from operator import is_
from typing import Any

from cg.errors import Diagnostic, LoadError, Pos
from cg.gcpause import paused_gc
from cg.limits import Limits
from cg.limits import current as current_limits
from cg.parse.document import Document, PositionStore, PositionTree
from cg.parse.source import char_pos, decode, fail, read_bytes, short, to_bytes

MAX_INT_DIGITS = 100
_BIG = 10**MAX_INT_DIGITS  # the smallest integer with one digit too many
_MAX_DIAGS = 100
_CONTAINERS = frozenset({dict, list})
_SURROGATE = re.compile("[\ud800-\udfff]")


def load_file(
    path: str | os.PathLike[str], *, display: str | None = None, max_bytes: int | None = None,
    max_depth: int | None = None,
) -> Document:
    """Read and parse a JSON graph file; display is the name used in messages (default: the path)."""
    name = display if display is not None else os.fspath(path)
    max_bytes = current_limits().max_bytes if max_bytes is None else max_bytes
    return load_text(read_bytes(os.fspath(path), name, max_bytes), name, max_bytes=max_bytes, max_depth=max_depth)


def load_text(
    text: str | bytes, file: str, *, max_bytes: int | None = None, max_depth: int | None = None,
    nonfinite: bool = False,
) -> Document:
    """Parse JSON text (bytes must be UTF-8) into a Document; raise LoadError on any problem.
    nonfinite: NaN, Infinity and -Infinity are read as those strings instead of refused (snapshots:
    Python's json module writes them)."""
    limits = current_limits()
    raw = to_bytes(text)
    source = decode(raw, file, limits.max_bytes if max_bytes is None else max_bytes, language="JSON")
    depth = limits.max_depth if max_depth is None else max_depth
    if not source.strip(" \t\n\r"):
        raise fail("CG003", "empty file: expected an object with \"cg\": 1", file, Pos(1, 1))
    with paused_gc():  # as for YAML: many acyclic objects, nothing for the collector to find
        data = _fast(source, raw, file, depth, limits.max_values)
    if data is None:  # something to report, or to look at closely
        return _read_all(source, file, depth, limits.max_values, nonfinite)

    def locate() -> PositionStore:
        return _read_all(source, file, depth, limits.max_values, nonfinite).store

    return Document(data, file, locate=locate)


class _Refused(Exception):
    """NaN or Infinity in the text: the full reader reports it."""


def _refuse(text: str) -> Any:
    raise _Refused(text)


def _fast(source: str, raw: bytes, file: str, max_depth: int, max_values: int) -> dict[str, Any] | None:
    """The data if the file is plainly fine, else None; a syntax error is reported here."""
    try:
        data = json.loads(source, parse_constant=_refuse)
    except json.JSONDecodeError as err:
        raise fail("CG003", f"invalid JSON: {_json_message(err.msg)}", file, Pos(err.lineno, err.colno)) from None
    except (_Refused, ValueError, RecursionError, MemoryError):  # NaN, a 5000-digit number, deep nesting
        return None
    if type(data) is not dict:
        return None
    if _screened(data, raw, max_depth, max_values) or _walked(data, source, max_depth, max_values):
        return data
    return None


def _json_message(msg: str) -> str:
    hint = " (JSON has no trailing commas and no comments)" if msg.startswith("Expecting property name") else ""
    return msg[:1].lower() + msg[1:] + hint


def _table(pairs: dict[bytes, bytes]) -> bytes:
    table = bytearray(b" " * 256)
    for chars, to in pairs.items():
        for c in chars:
            table[c] = to[0]
    return bytes(table)


# Digits become 0, the exponent mark e, signs +: a 101-digit integer is a run of 101 zeros.
_NUMBER_SHAPE = _table({b"0123456789": b"0", b"eE": b"e", b"+-": b"+"})
_EXPONENT = re.compile(rb"0e\+?000")  # a digit, then e and three digits: 1e308 and beyond
_NOT_QUOTES_OR_BRACKETS = bytes(c for c in range(256) if c not in b'"[]{}')
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
_BRACKETS = _table({b"[{": b"(", b"]}": b")"})


def _screened(data: dict[str, Any], raw: bytes, max_depth: int, max_values: int) -> bool:
    """True when counts over the bytes show the file is fine; False when they cannot tell."""
    shape = raw.translate(_NUMBER_SHAPE)
    if b"0" * (MAX_INT_DIGITS + 1) in shape or _EXPONENT.search(shape):
        return False  # a long integer, or an exponent of three digits: maybe beyond the limits
    colons = raw.count(b":")
    # A value takes two bytes at least (its first one and the one after it); and every value is the
    # top one, a key, the value of a key, or an item of a list (the first, or after a comma).
    if (len(raw) + 1) // 2 > max_values and 1 + 2 * colons + raw.count(b",") + raw.count(b"[") > max_values:
        return False
    # Without escapes and without brackets inside strings, the brackets of the text are the structure.
    marks = raw.translate(None, _NOT_QUOTES_OR_BRACKETS)
    if b"\\" in raw or marks.count(b'""') * 2 != marks.count(b'"'):
        return False
    brackets = raw.translate(_BRACKETS, _NOT_BRACKETS)
    for _ in range(max_depth):  # each pass takes away the innermost pairs: one level of nesting
        if not brackets:
            break
        brackets = brackets.replace(b"()", b"")
    if brackets:
        return False
    # Keys of the top three levels (graph, sections, entries): if they account for every colon of
    # the text, no key was dropped as a duplicate and nothing deeper has keys.
    keys = len(data)
    for section in data.values():
        if type(section) is dict:
            entries = section.values()
            keys += len(section)
            if set(map(type, entries)) == {dict}:  # nodes: every entry a mapping
                keys += sum(map(len, entries))
            else:
                keys += sum(map(len, compress(entries, map(is_, map(type, entries), repeat(dict)))))
    return keys == colons


def _walked(data: dict[str, Any], source: str, max_depth: int, max_values: int) -> bool:
    """The same checks on the data, exactly, one nesting level at a time with C-level iteration."""
    level: list[Any] = [data]
    depth, keys, values = 0, 0, 1
    strings: list[str] = []
    while level:
        depth += 1
        if depth > max_depth:
            return False
        types = list(map(type, level))
        dicts = list(compress(level, map(is_, types, repeat(dict))))
        found = list(chain(chain.from_iterable(map(dict.values, dicts)),
                           chain.from_iterable(compress(level, map(is_, types, repeat(list))))))
        count = sum(map(len, dicts))
        keys += count
        values += count + len(found)
        if values > max_values:
            return False
        strings.append("".join(chain.from_iterable(dicts)))  # the keys
        kinds = list(map(type, found))
        strings.append("".join(compress(found, map(is_, kinds, repeat(str)))))
        ints = list(compress(found, map(is_, kinds, repeat(int))))
        if ints and (max(ints) >= _BIG or min(ints) <= -_BIG):
            return False
        floats = list(compress(found, map(is_, kinds, repeat(float))))
        if floats and max(map(abs, floats)) == float("inf"):
            return False
        level = list(compress(found, map(_CONTAINERS.__contains__, kinds)))
    # Every key has one colon after it, and other colons are inside strings: when the keys plus
    # the colons inside the data's strings add up to the text's colons, no key was dropped.
    text = "".join(strings)
    if _SURROGATE.search(text):  # \ud800 alone: not a character; the full reader says where
        return False
    colons = source.count(":")
    if "\\u003a" in source or "\\u003A" in source:  # an escaped colon is a colon in the data only
        return keys == colons
    return keys + text.count(":") == colons


# ---------------------------------------------------------------- the full reader


_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"(-?(?:0|[1-9][0-9]*))(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_LITERALS = {"true": True, "false": False, "null": None}
_NON_FINITE = ("NaN", "Infinity", "-Infinity")
_VALUE, _KEY, _AFTER = 0, 1, 2


class _Frame:
    __slots__ = ("container", "drop", "entry", "key", "key_entry")

    def __init__(self, container: Any, entry: int) -> None:
        self.container, self.entry = container, entry  # entry: the container's in the position tree
        self.key: Any = None
        self.key_entry = 0  # the entry of the current key (and of its value)
        self.drop = False  # the current key is a duplicate: read its value, keep the first


class _Reader:
    """JSON text to data with the offset of every value and key (in a PositionTree: linear in the
    number of values at any depth), and every problem of the file."""

    def __init__(self, source: str, file: str, max_depth: int, max_values: int, nonfinite: bool = False) -> None:
        self.source, self.file, self.max_depth, self.max_values = source, file, max_depth, max_values
        self.nonfinite = nonfinite
        self.tree = PositionTree(source)
        self.diags: list[Diagnostic] = []
        self.values = 0

    def pos(self, offset: int) -> Pos:
        return char_pos(self.source, offset)

    def stop(self, code: str, message: str, offset: int) -> LoadError:
        return LoadError([*self.diags, Diagnostic(code, message, self.file, self.pos(offset))])

    def report(self, code: str, message: str, offset: int) -> None:
        self.diags.append(Diagnostic(code, message, self.file, self.pos(offset)))
        if len(self.diags) >= _MAX_DIAGS:
            raise LoadError(self.diags)

    def count(self, offset: int) -> None:
        self.values += 1
        if self.values > self.max_values:
            message = (f"more than {self.max_values:,} values (numbers, names, lists, mappings); split the graph up"
                       f" or {Limits().hint('max_values')}")
            raise self.stop("CG004", message, offset)

    def run(self) -> Any:
        s, n = self.source, len(self.source)
        stack: list[_Frame] = []
        root: Any = None
        expect = _VALUE
        i = _WS.match(s, 0).end()  # type: ignore[union-attr]
        while True:
            c = s[i] if i < n else ""
            if expect == _VALUE:
                frame = stack[-1] if stack else None
                entry = self.entry(frame)
                self.count(i)
                if c in ("{", "["):
                    if len(stack) >= self.max_depth:
                        message = (f"nesting is deeper than {self.max_depth} levels; flatten the structure"
                                   f" ({Limits().hint('max_depth')})")
                        raise self.stop("CG004", message, i)
                    value: Any = {} if c == "{" else []
                    self.attach(frame, entry, value, i)
                    stack.append(_Frame(value, entry))
                    i = _WS.match(s, i + 1).end()  # type: ignore[union-attr]
                    if s[i : i + 1] == ("}" if c == "{" else "]"):
                        stack.pop()
                        i, expect = i + 1, _AFTER
                    else:
                        expect = _KEY if c == "{" else _VALUE
                else:
                    value, end = self.scalar(i)
                    self.attach(frame, entry, value, i)
                    i, expect = end, _AFTER
                if frame is None:
                    root = value
            elif expect == _KEY:
                if c != '"':
                    raise self.stop("CG003", "invalid JSON: expecting a key in double quotes", i)
                key, end = self.string(i)
                self.key(stack[-1], key, i)
                i = _WS.match(s, end).end()  # type: ignore[union-attr]
                if s[i : i + 1] != ":":
                    raise self.stop("CG003", "invalid JSON: expecting ':' after the key", i)
                i, expect = i + 1, _VALUE
            else:  # after a value: a comma, the end of the open collection, or the end of the text
                if not stack:
                    if i < n:
                        raise self.stop("CG003", "invalid JSON: extra data after the top-level value", i)
                    return root
                top = stack[-1]
                closing = "}" if type(top.container) is dict else "]"
                if c == ",":
                    top.key = None
                    i, expect = i + 1, _KEY if closing == "}" else _VALUE
                elif c == closing:
                    stack.pop()
                    i += 1
                else:
                    raise self.stop("CG003", f"invalid JSON: expecting ',' or '{closing}'", i)
            i = _WS.match(s, i).end()  # type: ignore[union-attr]

    def entry(self, frame: _Frame | None) -> int:
        """The tree entry of the value read next: the top one, a list item's, or the current key's."""
        if frame is None:
            return 0
        if type(frame.container) is list:
            return self.tree.add(frame.entry, len(frame.container))
        return frame.key_entry

    def key(self, frame: _Frame, key: str, offset: int) -> None:
        frame.key, frame.drop = key, key in frame.container
        self.count(offset)
        tree = self.tree
        if frame.drop:
            first = self.pos(tree.keys[tree.children[(frame.entry, key)]]).line
            self.report("CG006", f"duplicate key '{short(key)}' (first at line {first})", offset)
            frame.key_entry = tree.add(frame.entry, key, linked=False)  # what is inside it is read, not kept
        else:
            frame.key_entry = tree.add(frame.entry, key)
            tree.keys[frame.key_entry] = offset

    def attach(self, frame: _Frame | None, entry: int, value: Any, offset: int) -> None:
        if frame is None or not frame.drop:
            self.tree.values[entry] = offset
        if frame is None:
            return
        if type(frame.container) is list:
            frame.container.append(value)
        elif not frame.drop:
            frame.container[frame.key] = value

    def string(self, i: int) -> tuple[str, int]:
        try:
            text, end = json.decoder.scanstring(self.source, i + 1)  # type: ignore[attr-defined]
        except json.JSONDecodeError as err:
            raise self.stop("CG003", f"invalid JSON: {_json_message(err.msg)}", err.pos) from None
        lone = _SURROGATE.search(text)
        if lone is not None:  # the escape of half a UTF-16 pair: no character, and no way to print it
            at = self.source.find("\\u", i, end)
            message = f"invalid JSON: \\u{ord(lone.group()):04x} is half of a surrogate pair, not a character"
            self.report("CG003", message, at if at >= 0 else i)
        return text, end

    def scalar(self, i: int) -> tuple[Any, int]:
        s = self.source
        if s[i : i + 1] == '"':
            return self.string(i)
        for word, value in _LITERALS.items():
            if s.startswith(word, i):
                return value, i + len(word)
        for word in _NON_FINITE:
            if s.startswith(word, i):
                if self.nonfinite:
                    return word, i + len(word)
                self.report("CG007", f"non-finite numbers ({word}) are not allowed in graph files", i)
                return object(), i + len(word)  # a stand-in; the file is refused
        m = _NUMBER.match(s, i)
        if m is None:
            raise self.stop("CG003", "invalid JSON: expecting a value", i)
        text = m.group()
        if m.group(2) is None and m.group(3) is None:
            digits = len(text.lstrip("-"))
            if digits <= MAX_INT_DIGITS:
                return int(text), m.end()
            self.report("CG007", f"number too long ({digits} digits; at most {MAX_INT_DIGITS})", i)
            return object(), m.end()
        number = float(text)
        if number in (float("inf"), float("-inf")):
            self.report("CG007", f"number out of range: {short(text)} (the limit is about 1.8e308)", i)
            return object(), m.end()
        return number, m.end()

    def document(self, root: Any) -> Document:
        if self.diags:
            raise LoadError(self.diags)
        if type(root) is not dict:
            found = "a list" if type(root) is list else "a scalar"
            message = f"expected an object at the top level (like {{\"cg\": 1, ...}}), found {found}"
            raise LoadError([Diagnostic("CG003", message, self.file, self.pos(self.tree.values[0]))])
        return Document(root, self.file, store=self.tree)


def _read_all(source: str, file: str, max_depth: int, max_values: int, nonfinite: bool = False) -> Document:
    reader = _Reader(source, file, max_depth, max_values, nonfinite)
    with paused_gc():
        return reader.document(reader.run())
