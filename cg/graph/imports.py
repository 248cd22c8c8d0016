"""Reading the `imports:` of a graph or library file: every library file it brings in,
transitively, each read once; a missing file, a file that is not a library (CG131) and an
import cycle (CG131) are reported at the import that names them. Paths are relative to the
importing file (to the current directory for standard input).

What may be imported: files inside the folder of the main file (the one given on the command
line; the current directory for standard input), inside a folder allowed with `cg --allow-path
DIR` or CG_ALLOW_PATH, and the libraries shipped with cg (`cg:nn`): cg/graph/folders.py, which
input files share. The real path (symlinks resolved) is checked before the file is looked at, and
the refusal says nothing about the file. Messages about an imported file that fails to load name
the file, the place and the kind of problem, never its text."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from cg.codes import name_of
from cg.errors import Diagnostic, LoadError
from cg.graph.folders import Folders, folder_of, unusable
from cg.graph.order import topological_order, walk_cycle
from cg.graph.scope import Scope, at, is_library
from cg.parse.read import load_file
from cg.schema.messages import quote

SHIPPED = Path(__file__).resolve().parent.parent / "lib"  # `imports: [cg:nn]` is cg/lib/nn.yaml
_SHIPPED_NAME = re.compile(r"cg:([a-z][a-z0-9_]*)")


def shipped_libraries() -> list[str]:
    return sorted(f"cg:{p.stem}" for p in SHIPPED.glob("*.yaml"))


def read_imports(scope: Scope) -> None:
    """Every file of the import closure, breadth first; missing files and non-libraries are errors."""
    todo = [scope.main]
    folders = scope.folders.also(str(SHIPPED))  # the graph's folders, and cg's own library
    known: dict[str, str | None] = {os.path.realpath(scope.main.file): scope.main.file}  # None: failed
    while todo:
        doc = todo.pop(0)
        scope.files[doc.file] = doc
        edges = scope.imports.setdefault(doc.file, [])
        entries = doc.data.get("imports") if isinstance(doc.data, dict) else None
        for k, entry in enumerate(entries if isinstance(entries, list) else []):
            if not isinstance(entry, str) or not entry:
                continue  # the schema says what is wrong
            path = _resolve(scope, doc, k, entry, folders)
            if path is None:
                scope.failed.add(doc.file)
                continue
            real = os.path.realpath(path)
            if real in known:
                if known[real] is not None:
                    edges.append((k, known[real] or ""))
                continue
            known[real] = None
            lib = _read(scope, doc, k, entry, path)
            if lib is None:
                scope.failed.add(doc.file)
                continue
            known[real] = lib.file  # its path, or cg:nn for a shipped library
            edges.append((k, lib.file))
            todo.append(lib)
    _import_cycles(scope)


def _resolve(scope: Scope, doc: Any, k: int, entry: str, folders: Folders) -> str | None:
    """The path to read for one entry, or None once the refusal is reported (CG131)."""
    shipped = _SHIPPED_NAME.fullmatch(entry)
    if entry.startswith("cg:"):
        library = SHIPPED / f"{shipped.group(1)}.yaml" if shipped else None
        if library is None or not library.is_file():
            scope.error(doc, "CG131", f"cannot import {quote(entry)}: cg ships no such library (it ships "
                        f"{', '.join(shipped_libraries())})", ("imports", k))
            return None
        return str(library)
    if (why := unusable(entry)) is not None:
        scope.error(doc, "CG131", f"cannot import {quote(entry)}: {why}", ("imports", k))
        return None
    shipped_doc = _SHIPPED_NAME.fullmatch(doc.file) is not None  # cg:nn's own imports are beside it
    base = str(SHIPPED) if shipped_doc else folder_of(doc.file)
    path = os.path.normpath(os.path.join(base, entry))
    if folders.admit(path) is None:  # before the file is looked at
        scope.error(doc, "CG131", f"cannot import {quote(entry)}: {folders.outside()}", ("imports", k))
        return None
    if not os.path.lexists(path):
        scope.error(doc, "CG131", f"cannot import {quote(entry)}: no such file ({quote(path, 80)})", ("imports", k))
        return None
    return path


def _read(scope: Scope, doc: Any, k: int, entry: str, path: str) -> Any | None:
    """The imported document, or None once its problem is reported: where and what kind, in one
    diagnostic at the import, never a quote of its text (the parser's messages quote it)."""
    try:
        # a regular file, within the size limit (a FIFO or a device is refused); a shipped library is
        # named as it is imported, cg:nn, wherever cg is installed
        lib = load_file(path, display=entry if _SHIPPED_NAME.fullmatch(entry) else None)
    except LoadError as e:
        d = e.diagnostics[0]
        scope.error(doc, "CG131", f"cannot import {quote(entry)}: {at(d.file or path, d.pos)}: {_kind(d)} ({d.code})",
                    ("imports", k))
        return None
    if not is_library(lib.data):
        message = (f"{quote(entry)} is not a library: a library file has `functions` and no nodes or "
                   "outputs (graphs cannot be imported)")
        scope.error(doc, "CG131", message, ("imports", k))
        return None
    return lib


def _kind(d: Diagnostic) -> str:
    """The kind of problem of a file that failed to load. cg's own words for a file it cannot read
    (a FIFO, no permission) or one over a limit (with how to raise it); for the rest only the
    code's name, as the parser's messages quote the file (a key, a line of it)."""
    if d.code in ("CG001", "CG004"):
        return d.message.removeprefix("cannot read file: ")
    return name_of(d.code)


def _import_cycles(scope: Scope) -> None:
    deps = {f: [imp for _, imp in edges] for f, edges in scope.imports.items()}
    _, left = topological_order(deps)
    done: set[str] = set()
    for file in left:
        if file in done:
            continue
        cycle = walk_cycle(file, deps, set(left))
        done.update(cycle)
        k = next(k for k, imp in scope.imports[cycle[0]] if imp == cycle[1])
        scope.error(scope.files[cycle[0]], "CG131", "import cycle: " + " -> ".join(cycle), ("imports", k))


