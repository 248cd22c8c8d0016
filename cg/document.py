"""A parsed graph file: its data, and where each value and each key starts in the file.

Positions are what diagnostics need, and a valid file needs none of them. So the fast readers
(cg/yamlfast.py, cg/jsondoc.py) build the data only and hand over a `locate` function, which
reads the file again with positions the first time one is asked for. The graph keeps the
position of every input and node for messages at run time (and of every expected value): for a
path that exists in the data, `pos()` returns a DeferredPos, which looks itself up only if a
message ever reads it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from cg.errors import Pos

YamlPath = tuple[str | int, ...]
Positions = dict[YamlPath, Pos]


class Document:
    """Data plus positions: `positions[path]` is where a value starts, `key_positions[path]`
    where the key of a mapping entry starts. Either they are given, or `locate` computes both
    on first use."""

    def __init__(
        self,
        data: Any,
        file: str,
        positions: Positions | None = None,
        key_positions: Positions | None = None,
        *,
        locate: Callable[[], tuple[Positions, Positions]] | None = None,
    ) -> None:
        self.data = data
        self.file = file
        self._locate = locate
        self._positions: Positions = positions if positions is not None else {}
        self._key_positions: Positions = key_positions if key_positions is not None else {}

    @property
    def located(self) -> bool:
        """Whether the positions are known (always, unless a fast reader made the document)."""
        return self._locate is None

    def _located(self) -> None:
        if self._locate is not None:
            locate, self._locate = self._locate, None  # once; it holds the source text
            self._positions, self._key_positions = locate()

    @property
    def positions(self) -> Positions:
        self._located()
        return self._positions

    @property
    def key_positions(self) -> Positions:
        self._located()
        return self._key_positions

    def pos(self, path: YamlPath, *, key: bool = False) -> Pos | None:
        """Position of path (of its key if key=True and known), else of the nearest ancestor that has one."""
        if self._locate is not None and _exists(self.data, path):
            return DeferredPos(self, path, key)
        if key and path in self.key_positions:
            return self.key_positions[path]
        positions = self.positions
        for end in range(len(path), -1, -1):
            found = positions.get(path[:end])
            if found is not None:
                return found
        return None

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


def is_json(name: str | os.PathLike[str]) -> bool:
    """Graph files named *.json are read as JSON; everything else as YAML."""
    return os.fspath(name).lower().endswith(".json")


def load_file(path: str | os.PathLike[str], *, display: str | None = None) -> Document:
    """Read a graph file, JSON or YAML by its suffix (cg/jsondoc.py, cg/yamldoc.py)."""
    if is_json(path):
        from cg.jsondoc import load_file as load_json

        return load_json(path, display=display)
    from cg.yamldoc import load_file as load_yaml

    return load_yaml(path, display=display)


def load_text(text: str | bytes, file: str) -> Document:
    """Parse graph text; `file` is the name used in messages, and its suffix picks JSON or YAML."""
    if is_json(file):
        from cg.jsondoc import load_text as load_json

        return load_json(text, file)
    from cg.yamldoc import load_text as load_yaml

    return load_yaml(text, file)
