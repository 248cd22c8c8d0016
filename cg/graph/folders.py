"""Which folders a graph may read other files from: its `imports:` (cg/graph/imports.py) and its
inputs' `file:` (cg/graph/weights.py). The folder of the main file (the one given on the command
line; the current directory for standard input) and its subfolders, and the folders allowed with
`cg --allow-path DIR` or CG_ALLOW_PATH (or `allow_paths=` in the library). A path is judged by
its real path, symlinks resolved, before the file is looked at: a graph from someone else's
repository must not read /etc/shadow or ../../secrets, nor learn whether they exist."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from cg.limits import allowed_paths

NO_DIR = ("-", "<stdin>", "<string>")  # text without a file: paths are relative to the current directory
ALLOW_HINT = "allow it with `cg --allow-path DIR` (or CG_ALLOW_PATH)"


def inside(real: str, folder: str) -> bool:
    return real == folder or real.startswith(folder.rstrip(os.sep) + os.sep)


def unusable(entry: str) -> str | None:
    """Why a path from a file cannot name a file at all, or None (the OS refuses a NUL byte)."""
    return "a path cannot hold a NUL character" if "\0" in entry else None


def folder_of(file: str) -> str:
    """The folder a file's relative paths start from ('' for the current directory)."""
    return "" if file in NO_DIR else os.path.dirname(file)


@dataclass(frozen=True)
class Folders:
    main: str  # the main file, as given
    roots: tuple[str, ...]  # real paths: the main file's folder first, then the allowed ones

    @classmethod
    def of(cls, main: str, allow_paths: Sequence[str] | None = None) -> Folders:
        """The folders for a main file; allow_paths None: those of the CLI or CG_ALLOW_PATH."""
        allowed = allowed_paths() if allow_paths is None else tuple(allow_paths)
        home = os.getcwd() if main in NO_DIR else os.path.dirname(os.path.abspath(main))
        return cls(main, tuple(os.path.realpath(p) for p in (home, *allowed)))

    def also(self, *folders: str) -> Folders:
        return Folders(self.main, (*self.roots, *folders))

    def admit(self, path: str) -> str | None:
        """The real path of `path` if it lies inside one of the folders, else None (nothing but
        the resolution of symlinks touches it)."""
        real = os.path.realpath(path)
        return real if any(inside(real, root) for root in self.roots) else None

    def home(self) -> str:
        """Where files may come from, in words: the folder of mlp.yaml (graphs/). The folder is named
        once (the message's prefix names the file already), so a deep checkout keeps the message short."""
        if self.main in NO_DIR:
            return "the current directory"
        return f"the folder of {os.path.basename(self.main)} ({os.path.join(os.path.dirname(self.main) or '.', '')})"

    def outside(self) -> str:
        """Why a path is refused, for after 'cannot ... 'x': '."""
        return f"it is outside {self.home()}; {ALLOW_HINT}"
