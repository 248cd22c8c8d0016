"""`cg fmt`: a graph file rewritten in canonical form, its comments kept.

Canonical form: top-level keys in the order cg, name, doc, imports, functions, inputs, nodes,
outputs, expect; a function's doc, inputs, nodes, output; a node's keys expr or op, in, then its
attributes (in the op's order), then doc; an input's value (or file and key), shape, dtype, doc;
expect's inputs, of, tol, rtol, values, grads. `inputs`, `nodes`, `expect`, `functions` and each
function's `nodes` hold one entry per line; everything else is written in flow style (`{op: mul,
in: [x, y]}`) when it fits in WIDTH columns, else in block style, one entry per line (long lists of
numbers are wrapped).
Numbers keep the text they were written with (0.1190 stays 0.1190, 010 stays 010); strings are
plain where YAML allows, else double-quoted. Inputs and nodes stay in the order of the file.

Comments, and why not ruamel.yaml: PyYAML drops comments, and fmt must never drop one silently.
ruamel.yaml round-trips comments, but it would be a run-time dependency of every install for
one command, and its comments hang on the previous key in ways that go wrong exactly when keys
are reordered and a block mapping becomes a flow one, which is what fmt does. Graph files have a
small, known shape, so fmt finds the comments itself (a `#` outside every scalar that libyaml
reports) and hangs each on the entry (mapping key or list item) it belongs to:

- a comment on its own line belongs to the next entry and moves with it (blank lines too, one
  at most); comments before the first key (the yaml-language-server modeline) stay on top;
- a comment at the end of a line belongs to the entry that line holds (the first that starts and
  ends on it, else the first that starts on it) and stays at the end of that entry's line, at its
  old column where it fits;
- any comment inside a mapping or list makes it block style, so every comment keeps a line.

Two comments that would land on one line, and any result that does not read back to the same
data and the same comments (a safety net that should never fire), make fmt refuse the file with
CG500 and leave it as it was. Invalid graphs are never rewritten: their diagnostics are raised.
"""

from __future__ import annotations

import io
import re
from typing import Any

import yaml

from cg.errors import Diagnostic
from cg.fmt.tree import CODE, Coll, Entry, FormatError, Scalar, Tree, read_tree
from cg.gcpause import paused_gc
from cg.parse.yaml12 import plain_value
from cg.parse.yamldoc import load_text

WIDTH = 120  # the project's line length (ruff); every example graph's flow lines fit
INDENT = 2
ROOT_ORDER = ("cg", "name", "doc", "imports", "functions", "inputs", "nodes", "outputs", "expect")
FUNCTION_ORDER = ("doc", "inputs", "nodes", "output")
INPUT_ORDER = ("value", "file", "key", "shape", "dtype", "doc")
EXPECT_ORDER = ("inputs", "of", "tol", "rtol", "values", "grads")
BLOCK_SECTIONS = {("inputs",), ("nodes",), ("expect",), ("functions",)}


_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ANALYZER = yaml.emitter.Emitter(io.StringIO())
# Characters written as they are; the rest as escapes. Not the bidi controls (U+061C, U+200E,
# U+200F, U+202A-U+202E, U+2066-U+2069): written raw they reorder what a reader sees ("Trojan Source").
_SAFE = re.compile("[\x20-\x7e\xa0-\u061b\u061d-\u200d\u2010-\u2027\u202f-\u2065\u206a-\ud7ff"
                   "\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


_SHIPPED = re.compile(r"cg:[a-z][a-z0-9_]*")  # a shipped library's name in `imports:`


def _plain_ok(text: str, flow: bool) -> bool:
    if not text or text != text.strip():
        return False
    try:
        value = plain_value(text)
    except ValueError:  # .nan and friends: refused, so they must be quoted
        return False
    if type(value) is not str:
        return False  # it would read back as a number, a boolean or null
    if _ID.fullmatch(text) or _SHIPPED.fullmatch(text):  # ids, and `cg:nn` (YAML 1.2 reads it plain in a flow list)
        return True
    if not all(_SAFE.fullmatch(ch) for ch in text):  # a control or bidi character: quoted, as an escape
        return False
    found = _ANALYZER.analyze_scalar(text)
    return bool(found.allow_flow_plain if flow else found.allow_block_plain) and not found.multiline


def _quoted(text: str) -> str:
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif _SAFE.fullmatch(ch):
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def _string(text: str, flow: bool) -> str:
    return text if _plain_ok(text, flow) else _quoted(text)


def _scalar(s: Scalar, flow: bool) -> str:
    v = s.value
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return s.source if s.source is not None else repr(v)
    return _string(str(v), flow)


def _literal(s: Scalar) -> str | None:
    """'|' or '|-' for a multi-line string that a literal block keeps exactly, else None."""
    v = s.value
    if not isinstance(v, str) or "\n" not in v or v[:1] in (" ", "\t") or v.endswith("\n\n"):
        return None
    found = _ANALYZER.analyze_scalar(v)
    if not found.allow_block or not all(_SAFE.fullmatch(ch) or ch == "\t" for ch in v.replace("\n", "")):
        return None
    return "|" if v.endswith("\n") else "|-"


def _order(coll: Coll, path: tuple[str, ...]) -> list[Entry]:
    if not coll.is_map:
        return coll.entries
    order: tuple[str, ...] = ()
    if path == ():
        order = ROOT_ORDER
    elif path == ("expect",):
        order = EXPECT_ORDER
    elif len(path) == 2 and path[0] == "inputs":
        order = INPUT_ORDER
    elif (len(path) == 2 and path[0] == "nodes") or (len(path) == 4 and path[0] == "functions" and path[2] == "nodes"):
        order = _node_order(coll)
    elif len(path) == 2 and path[0] == "functions":
        order = FUNCTION_ORDER
    rank = {k: i for i, k in enumerate(order)}
    return sorted(coll.entries, key=lambda e: rank.get(_key(e), len(rank)))  # stable: others keep their order


def _node_order(coll: Coll) -> tuple[str, ...]:
    from cg.ops import REGISTRY

    op = next((e.value.value for e in coll.entries if _key(e) == "op" and isinstance(e.value, Scalar)), None)
    attrs = tuple(REGISTRY[op].attrs) if isinstance(op, str) and op in REGISTRY else ()
    return ("expr", "op", "in", *attrs, "doc")


def _key(e: Entry) -> str:
    return str(e.key.value) if e.key is not None else ""


def _child(path: tuple[str, ...], e: Entry) -> tuple[str, ...]:
    return (*path, _key(e)) if e.key is not None else (*path, "-")


def _flow(item: Scalar | Coll, path: tuple[str, ...]) -> str | None:
    """The value in flow style on one line, or None if it has to be written in block style."""
    if isinstance(item, Scalar):
        return None if isinstance(item.value, str) and "\n" in item.value else _scalar(item, True)
    block = path in BLOCK_SECTIONS or (len(path) == 3 and path[0] == "functions" and path[2] == "nodes")
    if item.commented or (block and item.entries):
        return None
    parts = []
    for e in _order(item, path):
        text = _flow(e.value, _child(path, e))
        if text is None:
            return None
        parts.append(f"{_string(_key(e), True)}: {text}" if item.is_map else text)
    return ("{%s}" if item.is_map else "[%s]") % ", ".join(parts)


class _Writer:
    def __init__(self) -> None:
        self.out: list[str] = []

    def trivia(self, lines: list[str], indent: int, first: bool) -> None:
        """Comment lines and single blank lines (none at the top of a collection)."""
        for text in lines:
            if text:
                self.out.append(" " * indent + text)
            elif not first and self.out and self.out[-1] != "":
                self.out.append("")
            first = first and not text

    def collection(self, coll: Coll, path: tuple[str, ...], indent: int) -> None:
        for k, e in enumerate(_order(coll, path)):
            self.trivia(e.leading, indent, k == 0)
            head = " " * indent + (f"{_string(_key(e), False)}:" if coll.is_map else "-")
            self.entry(e, head, _child(path, e), indent)

    def entry(self, e: Entry, head: str, path: tuple[str, ...], indent: int) -> None:
        value = e.value
        if isinstance(value, Scalar):
            self.scalar(e, head, value, indent)
            return
        flow = _flow(value, path)
        if flow is not None and len(head) + 1 + len(flow) <= WIDTH:
            self.line(f"{head} {flow}", e)
        elif _vector(value) and not value.commented:
            self.wrapped(head, value, indent, e)
        else:
            self.block(e, head, value, path, indent)

    def scalar(self, e: Entry, head: str, value: Scalar, indent: int) -> None:
        literal = _literal(value)
        self.line(f"{head} {literal or _scalar(value, False)}", e)
        if literal:
            body = str(value.value).removesuffix("\n").split("\n")
            self.out += [" " * (indent + INDENT) + t if t else "" for t in body]

    def block(self, e: Entry, head: str, value: Coll, path: tuple[str, ...], indent: int) -> None:
        self.line(head, e)
        mark = len(self.out)
        self.collection(value, path, indent + INDENT)
        first = self.out[mark].lstrip() if mark < len(self.out) else ""
        # A list item starts its mapping on the dash's line (`- a: 1`) unless a comment is in the way.
        if e.key is None and e.comment is None and first and not first.startswith("#"):
            self.out[mark - 1 : mark + 1] = [f"{head} {first}"]

    def wrapped(self, head: str, value: Coll, indent: int, e: Entry) -> None:
        """A long list of numbers in flow style, filled to WIDTH."""
        items = [_scalar(x.value, True) for x in value.entries if isinstance(x.value, Scalar)]
        lines, current = [], head + " ["
        pad = " " * (indent + 2 * INDENT)
        for k, text in enumerate(items):
            piece = text + ("]" if k == len(items) - 1 else ",")
            if len(current) + 1 + len(piece) > WIDTH and not current.endswith("["):
                lines.append(current)
                current = pad + piece
            else:
                current += ("" if current.endswith("[") else " ") + piece
        lines.append(current)
        self.line(lines[0], e)
        self.out += lines[1:]

    def line(self, text: str, e: Entry) -> None:
        if e.comment is not None:
            col, comment = e.comment
            text = text + " " * max(2, col - len(text)) + comment
        self.out.append(text)


def _vector(coll: Coll) -> bool:
    return not coll.is_map and bool(coll.entries) and all(
        isinstance(e.value, Scalar) and isinstance(e.value.value, (int, float)) and not e.leading
        for e in coll.entries
    )


def write_tree(tree: Tree) -> str:
    w = _Writer()
    w.trivia(tree.header, 0, True)
    w.collection(tree.root, (), 0)
    w.trivia(tree.trailer, 0, False)
    while w.out and w.out[-1] == "":
        w.out.pop()
    return "\n".join(w.out) + "\n"


# ---- the command's library ----------------------------------------------------------------------


def format_text(raw: bytes | str, file: str) -> str:
    """The canonical text of a graph file; raises the file's diagnostics if it is not a valid
    graph, and FormatError if it cannot be rewritten faithfully."""
    from cg.graph.builder import build

    build(load_text(raw, file), library=True)  # every check of cg validate: invalid graphs are not rewritten
    source = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    # Millions of small objects, all freed at once at the end: the collector would rescan them
    # over and over (cg/gcpause.py); this halves the time on a 100,000-node file.
    with paused_gc():
        try:
            tree = read_tree(source.removeprefix("\ufeff"))
        except FormatError as e:
            raise FormatError([Diagnostic(d.code, d.message, file, d.pos) for d in e.diagnostics]) from None
        text = write_tree(tree)
        _check_same(tree, text, file)
    return text


def _check_same(tree: Tree, text: str, file: str) -> None:
    """The new text must read back to the same data and the same comments, or nothing is written."""
    try:
        again = read_tree(text)
        same = _same(tree.root, again.root) and sorted(again.comments) == sorted(tree.comments)
    except (yaml.YAMLError, ValueError):  # not YAML, or a scalar cg refuses
        same = False
    if not same:
        message = "cg fmt could not rewrite this file faithfully, so it is left as it is; please report it"
        raise FormatError([Diagnostic(CODE, message, file)])


def _same(a: Scalar | Coll, b: Scalar | Coll) -> bool:
    """The same data, with the same types all the way down (1 and 1.0 differ for an index);
    mappings in any order, since fmt reorders keys."""
    if isinstance(a, Scalar) or isinstance(b, Scalar):
        return isinstance(a, Scalar) and isinstance(b, Scalar) and _same_scalar(a, b)
    if a.is_map != b.is_map or len(a.entries) != len(b.entries):
        return False
    if not a.is_map:
        return all(_same(x.value, y.value) for x, y in zip(a.entries, b.entries))
    theirs = {_typed(e.key): e.value for e in b.entries}
    return all(_typed(e.key) in theirs and _same(e.value, theirs[_typed(e.key)]) for e in a.entries)


def _same_scalar(a: Scalar, b: Scalar) -> bool:
    return type(a.value) is type(b.value) and bool(a.value == b.value)


def _typed(key: Scalar | None) -> tuple[type, Any]:
    value = key.value if key is not None else None
    return type(value), value
