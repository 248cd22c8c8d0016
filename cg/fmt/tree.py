"""A graph file as `cg fmt` sees it: a tree of entries (mapping keys and list items) in file order,
each with the comments that belong to it, read from libyaml's events (cg/fmt/write.py writes it
back). Where each comment goes, and why not ruamel.yaml, is in cg/fmt/write.py's docstring."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from cg.errors import CgError, Diagnostic, Pos
from cg.parse.yaml12 import resolve_scalar
from cg.parse.yamldoc import LOADER

CODE = "CG500"


class FormatError(CgError):
    """The file is valid but cannot be rewritten without moving or losing a comment (exit 1)."""


# ---- the file as a tree of entries --------------------------------------------------------------


@dataclass(slots=True, eq=False)  # slots: a big file has millions of these
class Scalar:
    value: Any
    source: str | None  # the text of a plain number, kept as written


@dataclass(slots=True, eq=False)
class Coll:
    is_map: bool
    entries: list[Entry] = field(default_factory=list)
    parent: Entry | None = None
    commented: bool = False  # a comment hangs on an entry inside: block style


@dataclass(slots=True, eq=False)
class Entry:
    """A key and its value, or a list item; with the comments that belong to it."""

    key: Scalar | None
    value: Scalar | Coll  # a stand-in null until the parser reaches the value
    parent: Coll
    line: int  # 0-based line and column where it starts (its key, or the item)
    col: int
    end: int = -1  # the line its value ends on
    leading: list[str] = field(default_factory=list)  # comment lines before it; "" is a blank line
    comment: tuple[int, str] | None = None  # (column, text) of the comment at the end of its line


@dataclass
class Tree:
    root: Coll
    entries: list[Entry]  # in file order
    header: list[str]  # comment lines above the first key
    trailer: list[str]  # comment lines after everything
    comments: list[str]  # every comment's text, for the check that none was lost


def read_tree(source: str) -> Tree:
    """The tree of a document that cg.parse.yamldoc has accepted, with every comment hung on an entry.
    ValueError if the text is not one mapping (only possible for text that yamldoc refuses)."""
    lines = re.split(r"\r\n|[\r\n\x85\u2028\u2029]", source)  # libyaml's line breaks
    builder = _TreeBuilder({n for n, line in enumerate(lines) if "#" in line})
    for event in yaml.parse(source, Loader=LOADER):
        builder.event(event)
    if builder.root is None or not builder.root.is_map:
        raise ValueError("not a mapping")
    tree = Tree(builder.root, builder.entries, [], [], [])
    _attach(tree, lines, _covered(builder.spans))
    return tree


class _TreeBuilder:
    """Entries in file order from libyaml's events, and the span (line, col, end line, end col)
    of every scalar, with an explicit stack (depth was bounded by yamldoc)."""

    def __init__(self, hash_lines: set[int]) -> None:
        self.hash_lines = hash_lines  # only scalars on these lines, or over several, can hide a '#'
        self.root: Coll | None = None
        self.entries: list[Entry] = []
        self.spans: list[tuple[int, int, int, int]] = []
        self.stack: list[tuple[Coll, Entry | None]] = []  # open collections, and a key waiting for its value

    def event(self, event: Any) -> None:
        kind = type(event)
        if kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            coll, _ = self.stack.pop()
            if coll.parent is not None:
                coll.parent.end = event.end_mark.line
        elif kind is yaml.ScalarEvent:
            start, end = event.start_mark, event.end_mark
            if start.line != end.line or start.line in self.hash_lines:
                self.spans.append((start.line, start.column, end.line, end.column))
            plain = event.value if event.tag is None and event.implicit[0] else None
            self.item(Scalar(resolve_scalar(event), plain), event)
        elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            self.item(Coll(kind is yaml.MappingStartEvent), event)

    def item(self, item: Scalar | Coll, event: Any) -> None:
        if not self.stack:
            if isinstance(item, Coll):
                self.root = item
                self.stack.append((item, None))
            return
        coll, waiting = self.stack[-1]
        line, col = event.start_mark.line, event.start_mark.column
        if coll.is_map and waiting is None:
            if not isinstance(item, Scalar):
                raise ValueError("a collection as a key")
            self.stack[-1] = (coll, self.new(coll, item, line, col))  # a key: its value comes next
            return
        if coll.is_map and waiting is not None:
            entry = waiting
            self.stack[-1] = (coll, None)
        else:
            entry = self.new(coll, None, line, col)
        entry.value, entry.end = item, event.end_mark.line
        if isinstance(item, Coll):
            item.parent = entry
            self.stack.append((item, None))

    def new(self, coll: Coll, key: Scalar | None, line: int, col: int) -> Entry:
        entry = Entry(key, Scalar(None, None), coll, line, col)
        coll.entries.append(entry)
        self.entries.append(entry)
        return entry


def _covered(spans: list[tuple[int, int, int, int]]) -> dict[int, list[tuple[int, float]]]:
    """Per line, the column ranges that scalars cover: a '#' there is text, not a comment."""
    out: dict[int, list[tuple[int, float]]] = {}
    for line, col, end_line, end_col in spans:
        if line == end_line:
            out.setdefault(line, []).append((col, end_col))
            continue
        out.setdefault(line, []).append((col, float("inf")))
        for inner in range(line + 1, end_line):
            out.setdefault(inner, []).append((0, float("inf")))
        out.setdefault(end_line, []).append((0, end_col))
    return out


def _comment_at(text: str, ranges: list[tuple[int, float]]) -> int:
    """Column of the comment in a line, or -1."""
    start = text.find("#")
    while start >= 0:
        free = not any(a <= start < b for a, b in ranges)
        if free and (start == 0 or text[start - 1] in " \t"):
            return start
        start = text.find("#", start + 1)
    return -1


def _attach(tree: Tree, lines: list[str], covered: dict[int, list[tuple[int, float]]]) -> None:
    starts = [e.line for e in tree.entries]
    for n, text in enumerate(lines):
        ranges = covered.get(n, [])
        whole_line = any(a == 0 and b == float("inf") for a, b in ranges)
        if not text.strip():
            if not whole_line:
                _leading(tree, starts, n, "")
            continue
        col = _comment_at(text, ranges) if "#" in text else -1
        if col < 0:
            continue
        comment = text[col:].rstrip()
        tree.comments.append(comment)
        if not text[:col].strip():
            _leading(tree, starts, n, comment)
        else:
            _trailing(tree, starts, n, col, comment, text[:col].strip())


def _leading(tree: Tree, starts: list[int], line: int, text: str) -> None:
    """A comment line (or blank line) belongs to the next entry."""
    k = bisect.bisect_right(starts, line)
    if k == len(starts):
        tree.trailer.append(text)
    elif k == 0:
        tree.header.append(text)
    else:
        entry = _outermost(tree.entries[k])
        entry.leading.append(text)
        if text:
            _mark(entry)


def _outermost(entry: Entry) -> Entry:
    """A list item's mapping or list starts on the dash's line (`- a: 1`), so a comment above
    its first entry is a comment above the item: hang it there, as a second reading would."""
    while entry.parent.entries[0] is entry and entry.parent.parent is not None and entry.parent.parent.key is None:
        entry = entry.parent.parent
    return entry


def _trailing(tree: Tree, starts: list[int], line: int, col: int, text: str, code: str) -> None:
    """A comment at the end of a line belongs to the entry on that line."""
    lo, hi = bisect.bisect_left(starts, line), bisect.bisect_right(starts, line)
    on_line = tree.entries[lo:hi]
    entry = next((e for e in on_line if e.end == line), on_line[0] if on_line else None)
    if entry is None and code == "-" and lo < len(tree.entries):
        entry = tree.entries[lo]  # a bare dash: its item's value starts on the next line
    elif entry is None:
        if lo == 0:
            tree.header.append(text)
            return
        entry = tree.entries[lo - 1]  # no entry starts here (a closing bracket): the last one before
    if entry.comment is not None:
        where = Pos(line + 1, col + 1)
        raise FormatError([Diagnostic(CODE, "cg fmt cannot keep this comment in its place (another comment"
                                      " would share its line); move it to a line of its own", None, where)])
    entry.comment = (col, text)
    _mark(entry)


def _mark(entry: Entry) -> None:
    """Every collection around a commented entry is written in block style."""
    coll: Coll | None = entry.parent
    while coll is not None and not coll.commented:
        coll.commented = True
        coll = coll.parent.parent if coll.parent is not None else None


# ---- writing ------------------------------------------------------------------------------------
