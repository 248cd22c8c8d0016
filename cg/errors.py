"""Typed errors with stable codes and source positions.

Library code raises these; only the CLI turns them into messages and exit codes
(1 for an invalid graph or a failed run, 2 for a usage error).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

_E = TypeVar("_E", bound="CgError")


@dataclass(frozen=True)
class Pos:
    """A 1-based line and column in a source file."""

    line: int
    col: int


@dataclass
class Diagnostic:
    """One problem found in a graph file, with where it is."""

    code: str
    message: str
    file: str | None = None
    pos: Pos | None = None
    node: str | None = None

    def __str__(self) -> str:
        where = self.file or ""
        if self.pos is not None:
            where += f":{self.pos.line}:{self.pos.col}"
        name = self.node if self.node is None or len(self.node) <= 60 else self.node[:57] + "..."
        who = f"node '{name}': " if name else ""
        # A command-line value has no file: the message then stands alone.
        return f"{where}: {who}{self.message}" if where else f"{who}{self.message}"


class CgError(Exception):
    """Base of every error cg raises on purpose."""

    exit_code = 1

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        super().__init__("\n".join(str(d) for d in diagnostics))

    @classmethod
    def one(
        cls: type[_E],
        code: str,
        message: str,
        *,
        file: str | None = None,
        pos: Pos | None = None,
        node: str | None = None,
    ) -> _E:
        return cls([Diagnostic(code, message, file, pos, node)])


class LoadError(CgError):
    """The file cannot be read or parsed as a graph document (bad YAML, bad bytes, limits)."""


class GraphError(CgError):
    """The document parses but is not a valid graph (schema or graph rules)."""


class ShapeError(GraphError):
    """Shapes or dtypes of a node's inputs do not fit its op."""


class NumericError(CgError):
    """A run produced NaN or Inf, or an op failed on the values it was given."""


class SnapshotError(CgError):
    """A snapshot to compare with (`cg check --against`, `cg.check(against=...)`) cannot be used:
    not JSON, neither a saved result nor the partial format (schema/snapshot.schema.json), a value
    that is not a rectangular list of numbers, a forward-mode result, or nothing to compare."""


class UsageError(CgError):
    """A command-line value is malformed or does not fit the graph (exit code 2)."""

    exit_code = 2


def did_you_mean(name: str, names: list[str]) -> str:
    """' (did you mean 'x'?)' for the closest known name, or ''. Case slips count as close."""
    import difflib

    folded = {n.lower(): n for n in names}
    match = folded.get(name.lower())
    if match is None:
        close = difflib.get_close_matches(name, names, n=1)
        match = close[0] if close else None
    return f" (did you mean '{match}'?)" if match else ""
