"""A parsed graph file: its data, and where each value and each key starts in the file.

Positions are what diagnostics need, and a valid file needs none of them. So the fast readers
(cg/parse/yamlfast.py, cg/parse/jsondoc.py) build the data only and hand over a `locate` function, which
reads the file again with positions the first time one is asked for. The graph keeps the
position of every input and node for messages at run time (and of every expected value): for a
path that exists in the data, `pos()` returns a DeferredPos, which looks itself up only if a
message ever reads it.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from cg.errors import Pos

YamlPath = tuple[str | int, ...]
Positions = Mapping[YamlPath, Pos]  # dicts, or a view of a PositionTree


class PositionStore(Protocol):
    """Where values and keys start: what Document.pos asks of its positions."""

    def value(self, path: YamlPath) -> Pos | None: ...  # where the value at path starts

    def key(self, path: YamlPath) -> Pos | None: ...  # where the key of a mapping entry starts

    def nearest(self, path: YamlPath) -> Pos | None: ...  # path's value, else its nearest ancestor's


class PathPositions:
    """Positions kept in dicts keyed by whole paths, as cg/parse/yamldoc.py builds them (its depth is
    bounded by libyaml's 1,000 levels, so the path tuples stay small)."""

    def __init__(self, positions: Positions, key_positions: Positions) -> None:
        self.positions, self.key_positions = positions, key_positions

    def value(self, path: YamlPath) -> Pos | None:
        return self.positions.get(path)

    def key(self, path: YamlPath) -> Pos | None:
        return self.key_positions.get(path)

    def nearest(self, path: YamlPath) -> Pos | None:
        positions = self.positions
        for end in range(len(path), -1, -1):
            found = positions.get(path[:end])
            if found is not None:
                return found
        return None


class PositionTree:
    """Positions as a tree with one entry per value: entry 0 is the top value, and the entry of
    the value at key or index `step` of entry p's value is `children[(p, step)]`. A mapping
    entry's key and value share an entry. Offsets into the text are kept, and turned into a line
    and column only when one is asked for.

    Why not a dict keyed by paths: a value at depth d has a path of d steps, so a list nested
    50,000 deep would hold 1.25 billion steps (and hash as many). Here each value costs one
    dict entry and two array slots, whatever its depth, and a lookup walks its path once."""

    def __init__(self, text: str) -> None:
        self.children: dict[tuple[int, Any], int] = {}
        self.values = array("q", [-1])  # per entry, where its value starts (-1: nowhere)
        self.keys = array("q", [-1])  # per entry, where its key starts (-1: not a mapping entry)
        self._text = text
        self._starts: list[int] | None = None  # offsets of line starts, made on the first lookup

    def add(self, parent: int, step: Any, *, linked: bool = True) -> int:
        """A new entry under `parent`; an unlinked one (the value of a duplicate key, which the
        data drops) can be filled in but is never found by a path."""
        entry = len(self.values)
        self.values.append(-1)
        self.keys.append(-1)
        if linked:
            self.children[(parent, step)] = entry
        return entry

    def find(self, path: YamlPath) -> int | None:
        """The entry at path, or None if there is none."""
        entry = 0
        for step in path:
            found = self.children.get((entry, step))
            if found is None:
                return None
            entry = found
        return entry

    def value(self, path: YamlPath) -> Pos | None:
        entry = self.find(path)
        return None if entry is None else self.to_pos(self.values[entry])

    def key(self, path: YamlPath) -> Pos | None:
        entry = self.find(path)
        return None if entry is None else self.to_pos(self.keys[entry])

    def nearest(self, path: YamlPath) -> Pos | None:
        entry, best = 0, self.values[0]
        for step in path:
            found = self.children.get((entry, step))
            if found is None:
                break
            entry = found
            best = self.values[entry] if self.values[entry] >= 0 else best
        return self.to_pos(best)

    def to_pos(self, offset: int) -> Pos | None:
        if offset < 0:
            return None
        if self._starts is None:
            self._starts = [0, *(m.end() for m in re.finditer("\n", self._text))]
        line = bisect_right(self._starts, offset)
        return Pos(line, offset - self._starts[line - 1] + 1)

    def paths(self) -> list[YamlPath | None]:
        """Every entry's path (None for an unlinked one). A listing for tests and tools: its size
        is the sum of the depths, which is what the tree avoids holding."""
        out: list[YamlPath | None] = [None] * len(self.values)
        out[0] = ()
        for (parent, step), entry in self.children.items():  # a parent is always added before its children
            base = out[parent]
            out[entry] = None if base is None else (*base, step)
        return out


class TreeView(Mapping[YamlPath, Pos]):
    """A PositionTree seen as the dict `path -> Pos` of its values (or of its keys)."""

    def __init__(self, tree: PositionTree, keys: bool) -> None:
        self.tree, self.offsets = tree, tree.keys if keys else tree.values

    def __getitem__(self, path: YamlPath) -> Pos:
        entry = self.tree.find(path)
        found = None if entry is None else self.tree.to_pos(self.offsets[entry])
        if found is None:
            raise KeyError(path)
        return found

    def __iter__(self) -> Iterator[YamlPath]:
        offsets = self.offsets
        return (p for k, p in enumerate(self.tree.paths()) if p is not None and offsets[k] >= 0)

    def __len__(self) -> int:
        return sum(1 for k, p in enumerate(self.tree.paths()) if p is not None and self.offsets[k] >= 0)


Located = PositionStore | tuple[Positions, Positions]


class Document:
    """Data plus positions: `positions[path]` is where a value starts, `key_positions[path]`
    where the key of a mapping entry starts. Either they are given (as dicts, or as a store such
    as a PositionTree), or `locate` computes them on first use."""

    def __init__(
        self,
        data: Any,
        file: str,
        positions: Positions | None = None,
        key_positions: Positions | None = None,
        *,
        locate: Callable[[], Located] | None = None,
        store: PositionStore | None = None,
    ) -> None:
        self.data = data
        self.file = file
        self._locate = locate
        self._store: PositionStore = store if store is not None else PathPositions(
            positions if positions is not None else {}, key_positions if key_positions is not None else {})

    @property
    def located(self) -> bool:
        """Whether the positions are known (always, unless a fast reader made the document)."""
        return self._locate is None

    def _located(self) -> None:
        if self._locate is not None:
            locate, self._locate = self._locate, None  # once; it holds the source text
            found = locate()
            self._store = PathPositions(*found) if isinstance(found, tuple) else found

    @property
    def store(self) -> PositionStore:
        self._located()
        return self._store

    @property
    def positions(self) -> Positions:
        return self._view(keys=False)

    @property
    def key_positions(self) -> Positions:
        return self._view(keys=True)

    def _view(self, keys: bool) -> Positions:
        store = self.store
        if isinstance(store, PathPositions):
            return store.key_positions if keys else store.positions
        if isinstance(store, PositionTree):
            return TreeView(store, keys)
        raise TypeError(f"{type(store).__name__} has no mapping view")

    def pos(self, path: YamlPath, *, key: bool = False) -> Pos | None:
        """Position of path (of its key if key=True and known), else of the nearest ancestor that has one."""
        if self._locate is not None and _exists(self.data, path):
            return DeferredPos(self, path, key)
        store = self.store
        found = store.key(path) if key else None
        return found if found is not None else store.nearest(path)

    def __repr__(self) -> str:
        return f"Document(file={self.file!r}, data={type(self.data).__name__})"


def _exists(data: Any, path: YamlPath) -> bool:
    """Whether path names a value in data (so the file has a position for it)."""
    for step in path:
        found = (type(data) is dict and step in data) or (type(data) is list and type(step) is int
                                                          and 0 <= step < len(data))
        if not found:
            return False
        data = data[step]
    return True


class DeferredPos(Pos):
    """The position of a value (or of its key) that exists in the document, looked up the first
    time `line` or `col` is read. It equals, and hashes like, the Pos it stands for."""

    def __init__(self, doc: Document, path: YamlPath, key: bool) -> None:  # line and col come later
        object.__setattr__(self, "_where", (doc, path, key))

    def __getattr__(self, name: str) -> Any:  # only called while line and col are not set
        if name not in ("line", "col"):
            raise AttributeError(name)
        doc, path, key = self.__dict__["_where"]
        doc._located()
        found = doc.pos(path, key=key) or Pos(1, 1)
        object.__setattr__(self, "line", found.line)
        object.__setattr__(self, "col", found.col)
        return found.line if name == "line" else found.col

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pos):
            return NotImplemented
        return (self.line, self.col) == (other.line, other.col)

    def __hash__(self) -> int:
        return hash((self.line, self.col))

    def __repr__(self) -> str:
        return f"Pos(line={self.line}, col={self.col})"
