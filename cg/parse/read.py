"""Read a graph file or text: JSON or YAML by its suffix (cg/parse/jsondoc.py, cg/parse/yamldoc.py)."""

from __future__ import annotations

import os

from cg.parse.document import Document


def is_json(name: str | os.PathLike[str]) -> bool:
    """Graph files named *.json are read as JSON; everything else as YAML."""
    return os.fspath(name).lower().endswith(".json")


def load_file(path: str | os.PathLike[str], *, display: str | None = None) -> Document:
    """Read a graph file, JSON or YAML by its suffix (cg/parse/jsondoc.py, cg/parse/yamldoc.py)."""
    if is_json(path):
        from cg.parse.jsondoc import load_file as load_json

        return load_json(path, display=display)
    from cg.parse.yamldoc import load_file as load_yaml

    return load_yaml(path, display=display)


def load_text(text: str | bytes, file: str) -> Document:
    """Parse graph text; `file` is the name used in messages, and its suffix picks JSON or YAML."""
    if is_json(file):
        from cg.parse.jsondoc import load_text as load_json

        return load_json(text, file)
    from cg.parse.yamldoc import load_text as load_yaml

    return load_yaml(text, file)
