"""cg: computational graphs in YAML, run forward and backward.

    >>> import cg
    >>> g = cg.load("graphs/log3x2p5xy.yaml")
    >>> r = cg.run(g, {"x": 2.0, "y": 3.0})
    >>> round(float(r.grad("x")), 4)
    0.6429

The heavy modules (numpy, jsonschema) are imported on first use, so `cg --help` stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cg.eval.grad import ValueAndGrad
    from cg.eval.interp import Result
    from cg.graph.ir import Graph

__version__ = "0.1.0"


def load(path: str | Path, *, allow_paths: Sequence[str | Path] | None = None) -> Graph:
    """Read, parse and validate a graph file (JSON if named *.json, else YAML); raises
    cg.errors.CgError subclasses. Imports and input files (`file:`) are read from the file's
    folder tree and from `allow_paths` (default: the folders of CG_ALLOW_PATH)."""
    from cg.graph.builder import build
    from cg.parse.read import load_file

    return build(load_file(path), allow_paths=_folders(allow_paths))


def loads(text: str, file: str = "<string>", *, allow_paths: Sequence[str | Path] | None = None) -> Graph:
    """Parse and validate graph text; `file` is the name used in messages (*.json: read as JSON)
    and where relative paths start (the current directory for <string>)."""
    from cg.graph.builder import build
    from cg.parse.read import load_text

    return build(load_text(text, file), allow_paths=_folders(allow_paths))


def _folders(paths: Sequence[str | Path] | None) -> tuple[str, ...] | None:
    if isinstance(paths, (str, Path)):  # one folder given alone, not its characters
        paths = [paths]
    return None if paths is None else tuple(str(p) for p in paths)


def run(graph: Graph, inputs: dict[str, Any] | None = None, **options: Any) -> Result:
    """Forward and backward passes; see cg.eval.interp.run for the options."""
    from cg.eval.interp import DISPLAY
    from cg.eval.interp import run as _run

    DISPLAY.setdefault("html", _notebook_html)  # a Result in Jupyter: its picture beside its table
    DISPLAY.setdefault("svg", _picture_svg)
    return _run(graph, inputs, **options)


def _notebook_html(result: Result) -> str | None:
    from cg.render.export import notebook_html

    return notebook_html(result)


def _picture_svg(result: Result) -> str | None:
    from cg.render.export import picture_svg

    return picture_svg(result)


def value_and_grad(graph: Graph, **options: Any) -> ValueAndGrad:
    """The passes as a function inputs -> (value, {name: gradient}), made once for a graph that
    runs many times; see cg.eval.grad.value_and_grad for the options (of, wrt, dtype)."""
    from cg.eval.grad import value_and_grad as _value_and_grad

    return _value_and_grad(graph, **options)


__all__ = ["__version__", "load", "loads", "run", "value_and_grad"]
