"""Read a graph file's YAML into plain Python data, with the source position of every value.

Why not ``yaml.safe_load``: it forgets positions, silently keeps the last of two duplicate
keys, expands aliases (a 400-byte "billion laughs" file becomes gigabytes), recurses once per
nesting level (a deep ``[[[[...`` crashes the interpreter) and applies YAML 1.1 rules (``yes`` is
True, ``010`` is 8, ``1e3`` is a string). So we walk libyaml's flat event stream with an explicit
stack and resolve scalars ourselves.

Two walks: cg/parse/yamlfast.py builds the data of a plainly valid file with no positions, in one
loop; the builder here records every position and every problem, and runs when the fast walk
gives up (it is the one that decides and reports) and when a diagnostic first needs a position.

Scalar resolution follows the YAML 1.2 core schema, for PLAIN (unquoted) scalars only; quoted
and block (``|``, ``>``) scalars are always strings:

- null:  ``~ null Null NULL`` and the empty scalar
- bool:  ``true True TRUE false False FALSE`` (``yes no on off y n`` stay strings)
- int:   ``[-+]?[0-9]+`` is decimal (``010`` is 10); ``0o17`` octal, ``0x1F`` hex; at most 100 digits
- float: ``[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?`` (``1e3`` is 1000.0); must be finite
- ``.inf -.inf +.inf .nan`` (any of the core spellings) are rejected: graphs hold finite numbers
- str:   anything else (``1_000``, ``2020-01-01``, ``0x_``); the schema decides if it is allowed

Anchors (``&a``) and aliases (``*a``) are refused (CG005), so no alias bomb can be built.

Keys are resolved the same way. Explicit tags ``!!str !!int !!float !!bool !!null`` (and ``!``)
are honoured on scalars, ``!!map``/``!!seq`` on collections; any other tag is refused.

Codes: CG001 cannot read, CG002 not UTF-8 text, CG003 not YAML / not a mapping,
CG004 size, depth or value-count limit, CG005 unsupported YAML feature, CG006 duplicate key, CG007 bad number.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any, cast

import yaml

from cg.errors import Diagnostic, LoadError, Pos
from cg.gcpause import paused_gc
from cg.limits import Limits
from cg.limits import current as current_limits
from cg.parse.document import Document, Positions, YamlPath
from cg.parse.source import decode, read_bytes, to_bytes
from cg.parse.source import fail as _fail
from cg.parse.source import short as _short
from cg.parse.yaml12 import _COLLECTION_TAGS, _BadScalar, _unsupported_tag, resolve_scalar
from cg.parse.yamlfast import read

# libyaml is ~10x faster; the pure-Python parser yields the same events, just slower.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
LOADER = _Loader

# The default limits (cg/limits.py says how to raise them); the ones in force are limits.current().
MAX_BYTES = Limits.max_bytes
MAX_DEPTH = Limits.max_depth
MAX_VALUES = Limits.max_values
_MAX_DIAGS = 100  # past this, more messages help nobody: stop and report

__all__ = ["LOADER", "MAX_BYTES", "MAX_DEPTH", "MAX_VALUES", "Document", "YamlPath", "load_file", "load_text"]


def load_file(
    path: str | os.PathLike[str],
    *,
    display: str | None = None,
    max_bytes: int | None = None,
    max_depth: int | None = None,
) -> Document:
    """Read and parse a graph file; display is the name used in messages (default: the path).
    The limits default to those in force (cg.limits.current())."""
    name = display if display is not None else os.fspath(path)
    max_bytes = current_limits().max_bytes if max_bytes is None else max_bytes
    raw = read_bytes(os.fspath(path), name, max_bytes)
    return load_text(raw, name, max_bytes=max_bytes, max_depth=max_depth)


def load_text(
    text: str | bytes, file: str, *, max_bytes: int | None = None, max_depth: int | None = None
) -> Document:
    """Parse YAML text (bytes must be UTF-8) into a Document; raise LoadError on any problem."""
    limits = current_limits()
    source = decode(to_bytes(text), file, limits.max_bytes if max_bytes is None else max_bytes)
    depth, loader = limits.max_depth if max_depth is None else max_depth, _Loader
    # libyaml >= 0.2.6 stops at LIBYAML_DEPTH by itself; older libyaml (PyYAML < 6.0.4's wheels) and
    # the pure-Python parser do not: cg stops there too, so a file loads alike with every PyYAML.
    depth = min(depth, LIBYAML_DEPTH)
    # Building makes millions of acyclic objects: pausing the GC halves the time on 100,000 nodes.
    with paused_gc():
        fast = read(source, loader, depth, limits.max_values)
    if fast is None:  # something to report, or to look at closely: the full builder does both
        return _read_all(source, file, depth, limits.max_values, loader)

    def locate() -> tuple[Positions, Positions]:
        doc = _read_all(source, file, depth, limits.max_values, loader)
        return doc.positions, doc.key_positions

    return Document(fast, file, locate=locate)


def _read_all(source: str, file: str, max_depth: int, max_values: int, loader: Any) -> Document:
    """The full builder: every value's path and position, and every problem of the file."""
    builder = _Builder(file, max_depth, max_values)
    with paused_gc():
        builder.run(_events(source, file, loader, max_depth))
    return builder.finish()


# ---------------------------------------------------------------- events


def _events(source: str, file: str, loader: Any, max_depth: int = MAX_DEPTH) -> Iterator[yaml.Event]:
    """The parser's events; its exceptions become LoadError (ours, raised in the loop, pass through)."""
    stream = cast(Generator[yaml.Event, None, None], yaml.parse(source, Loader=loader))
    try:
        while True:
            try:
                event = next(stream)
            except StopIteration:
                return
            except yaml.YAMLError as err:
                raise _syntax_error(err, source, file, max_depth) from None
            except (ValueError, KeyError, RecursionError, OverflowError) as err:
                # Seen from PyYAML on odd inputs; a message beats a traceback.
                raise _fail("CG003", f"invalid YAML: {_short(str(err))}", file) from None
            yield event
    finally:
        stream.close()  # frees libyaml's parser now, not at garbage collection


# libyaml 0.2.6 and later stop by themselves at this depth ("exceeded maximum nesting depth"),
# before cg's own limit can see the events when the parser reads ahead (flow collections).
LIBYAML_DEPTH = 1000


def _syntax_error(err: yaml.YAMLError, source: str, file: str, max_depth: int = MAX_DEPTH) -> LoadError:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    pos = Pos(mark.line + 1, mark.column + 1) if mark is not None else None
    if "maximum nesting depth" in str(getattr(err, "problem", None) or err):
        return _fail("CG004", _too_deep(max_depth), file, pos)
    if pos is not None and _char_at(source, pos) == "\t":  # libyaml's wording does not say "tab"
        return _fail("CG003", "invalid YAML: tab character; indent with spaces, not tabs", file, pos)
    message = "invalid YAML: " + _short(getattr(err, "problem", None) or str(err), 80)
    context, cmark = getattr(err, "context", None), getattr(err, "context_mark", None)
    if context and cmark is not None and pos != Pos(cmark.line + 1, cmark.column + 1):
        message += f" ({context} started at line {cmark.line + 1}, column {cmark.column + 1})"
    return _fail("CG003", message, file, pos)


def _char_at(source: str, pos: Pos) -> str:
    lines = source.split("\n", pos.line)
    return lines[pos.line - 1][pos.col - 1 : pos.col] if len(lines) >= pos.line else ""


# ---------------------------------------------------------------- building the data


_NO_KEY: Any = object()  # "no key read yet" in a mapping frame, and "no root yet"


@dataclass(slots=True)
class _Frame:
    container: Any  # dict or list being filled
    path: tuple[Any, ...]
    key: Any = _NO_KEY  # mappings: the key whose value comes next
    drop: bool = False  # that key is a duplicate: parse its value, do not store it


class _Builder:
    """Turns events into data with an explicit stack, so depth costs memory, not recursion."""

    def __init__(self, file: str, max_depth: int, max_values: int = MAX_VALUES) -> None:
        self.file, self.max_depth, self.max_values = file, max_depth, max_values
        self.stack: list[_Frame] = []
        self.root: Any = _NO_KEY
        self.root_event: yaml.NodeEvent | None = None
        self.documents = 0
        self.positions: dict[YamlPath, Pos] = {}
        self.key_positions: dict[YamlPath, Pos] = {}
        self.diags: list[Diagnostic] = []
        self.values = 0  # scalars (keys too) and collections, against max_values

    def run(self, events: Iterator[yaml.Event]) -> None:
        for event in events:
            kind = type(event)  # exact type checks: cheaper than isinstance on ~10 events a node
            if kind is yaml.ScalarEvent:
                self.scalar(event)  # type: ignore[arg-type]
            elif kind is yaml.MappingStartEvent:
                self.open(event, {})  # type: ignore[arg-type]
            elif kind is yaml.SequenceStartEvent:
                self.open(event, [])  # type: ignore[arg-type]
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                self.stack.pop()
            elif kind is yaml.AliasEvent:
                name = _short(getattr(event, "anchor", None) or "")
                message = f"YAML aliases (*{name}) are not supported in graph files; write the value out"
                raise _fail("CG005", message, self.file, _pos(event))
            elif kind is yaml.DocumentStartEvent:
                self.documents += 1
                if self.documents > 1:
                    message = "more than one YAML document ('---'); keep one graph per file"
                    raise _fail("CG003", message, self.file, _pos(event))

    def no_anchor(self, event: yaml.NodeEvent) -> None:
        """Anchors are refused where they are written: an alias needs one, so no alias bomb can start."""
        if event.anchor is not None:
            message = (f"YAML anchors (&{_short(event.anchor)}) and aliases are not supported in graph files;"
                       " write the value out")
            raise _fail("CG005", message, self.file, _pos(event))

    def count(self, event: yaml.NodeEvent) -> None:
        self.values += 1
        if self.values > self.max_values:
            message = (f"more than {self.max_values:,} values (numbers, names, lists, mappings); split the graph up"
                       f" or {Limits().hint('max_values')}")
            raise _fail("CG004", message, self.file, _pos(event))

    def scalar(self, event: yaml.ScalarEvent) -> None:
        self.count(event)
        self.no_anchor(event)
        try:
            value = resolve_scalar(event)
        except _BadScalar as bad:
            self.report(bad.code, bad.message, _pos(event))
            value = object()  # a stand-in we never return; unique, so never a duplicate key
        frame = self.stack[-1] if self.stack else None
        if frame is not None and frame.key is _NO_KEY and type(frame.container) is dict:
            self.set_key(frame, value, event)
        else:
            self.put(value, event)

    def open(self, event: yaml.CollectionStartEvent, container: dict[Any, Any] | list[Any]) -> None:
        self.count(event)
        self.no_anchor(event)
        frame = self.stack[-1] if self.stack else None
        if frame is not None and frame.key is _NO_KEY and type(frame.container) is dict:
            message = "a list or mapping cannot be a mapping key; use a plain name"
            raise _fail("CG003", message, self.file, _pos(event))
        if event.tag not in _COLLECTION_TAGS:
            self.report("CG005", _unsupported_tag(event.tag), _pos(event))
        # Checked before the push, so no deeper level is ever built, let alone recursed into.
        if len(self.stack) >= self.max_depth:
            raise _fail("CG004", _too_deep(self.max_depth), self.file, _pos(event))
        path = self.put(container, event)
        self.stack.append(_Frame(container, path))

    def set_key(self, frame: _Frame, key: Any, event: yaml.ScalarEvent) -> None:
        pos = _pos(event)
        path = (*frame.path, key)
        if key in frame.container:
            first = self.key_positions[path]
            self.report("CG006", f"duplicate key '{_short(event.value)}' (first at line {first.line})", pos)
            frame.drop = True
        else:
            self.key_positions[path] = pos
        frame.key = key

    def put(self, value: Any, event: yaml.NodeEvent) -> tuple[Any, ...]:
        """Attach a value to the open collection (or make it the root); return its path."""
        if not self.stack:
            self.root, self.root_event = value, event
            self.positions[()] = _pos(event)
            return ()
        frame = self.stack[-1]
        if type(frame.container) is list:
            path = (*frame.path, len(frame.container))
            frame.container.append(value)
        else:
            key, frame.key = frame.key, _NO_KEY
            path = (*frame.path, key)
            if frame.drop:  # a duplicate's value: we are going to fail anyway, keep the first
                frame.drop = False
                return path
            frame.container[key] = value
        self.positions[path] = _pos(event)
        return path

    def report(self, code: str, message: str, pos: Pos) -> None:
        self.diags.append(Diagnostic(code, message, self.file, pos))
        if len(self.diags) >= _MAX_DIAGS:
            raise LoadError(self.diags)

    def finish(self) -> Document:
        root, event = self.root, self.root_event
        # No document at all, or a bare '---': both are an empty file to the user.
        if root is _NO_KEY or (isinstance(event, yaml.ScalarEvent) and event.value == "" and root is None):
            raise _fail("CG003", "empty file: expected a mapping with 'cg: 1'", self.file, Pos(1, 1))
        if type(root) is not dict:
            found = "a list" if type(root) is list else "a scalar"
            message = f"expected a mapping at the top level (like 'cg: 1'), found {found}"
            self.diags.append(Diagnostic("CG003", message, self.file, self.positions[()]))
        if self.diags:
            raise LoadError(self.diags)
        return Document(root, self.file, self.positions, self.key_positions)


# ---------------------------------------------------------------- helpers


def _too_deep(max_depth: int) -> str:
    """The depth message: cg's limit, or libyaml's own ceiling when the limit was raised past it."""
    if max_depth < LIBYAML_DEPTH:
        return f"nesting is deeper than {max_depth} levels; flatten the structure ({Limits().hint('max_depth')})"
    return (f"nesting is deeper than {LIBYAML_DEPTH:,} levels, the most the YAML parser (libyaml) reads whatever"
            " --max-depth says; flatten the structure, or write the graph as JSON")


def _pos(event: yaml.Event) -> Pos:
    mark = event.start_mark
    return Pos(mark.line + 1, mark.column + 1) if mark is not None else Pos(1, 1)
