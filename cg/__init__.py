"""cg: computational graphs in YAML, run forward and backward.

    >>> import cg
    >>> g = cg.load("graphs/log3x2p5xy.yaml")
    >>> r = cg.run(g, {"x": 2.0, "y": 3.0})
    >>> round(float(r.grad("x")), 4)
    0.6429

The heavy modules (numpy, jsonschema) are imported on first use, so `cg --help` stays fast.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cg.check.api import Against, CheckReport
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


def check(graph_or_path: Graph | str | os.PathLike[str], inputs: Mapping[str, Any] | None = None,
          against: Against | None = None, *, per_node: bool = False, rtol: float = 1e-5, atol: float = 1e-7,
          of: str | None = None, all_nodes: bool = False, seed: int = 0, order: int = 1) -> CheckReport:
    """The checks of `cg check` on one graph (a Graph, or the path of a graph file), for tests:

        report = cg.check("graphs/mlp.yaml", against={"grads": {"b2": -0.5272}}, atol=1e-4)
        assert report.passed, report   # on failure pytest prints the table and each problem

    `against` is a snapshot: a path (a result saved by `cg run -f json`, or the partial format of
    schema/snapshot.schema.json), a mapping in the partial format ({"values": {...}, "grads": {...},
    "inputs": {...}, "of": ...}; numpy arrays and tensors welcome), or a Result of cg.run. The report
    has `passed`, `rows`, `diagnostics` and `notes`; see cg.check.api.check for the rest."""
    from cg.check.api import check as _check

    graph = load(os.fspath(graph_or_path)) if isinstance(graph_or_path, (str, os.PathLike)) else graph_or_path
    return _check(graph, inputs, against, per_node=per_node, rtol=rtol, atol=atol, of=of, all_nodes=all_nodes,
                  seed=seed, order=order)


def import_onnx(model: str | os.PathLike[str], output: str | os.PathLike[str], *,
                inputs: Mapping[str, Any] | None = None, loss: str | None = None, label: str = "y", batch: int = 1,
                seed: int = 0) -> Graph:
    """`cg import` for Python: the ONNX model at `model` as the graph file `output` (its parameters
    in output's .npz), every node checked against ONNX's reference evaluator first; the Graph.

        graph = cg.import_onnx("mlp.onnx", "mlp.yaml", loss="softmax_xent", inputs={"x": x})

    `inputs`: values of the model's inputs for the check (else seeded random ones, a symbolic
    dimension being `batch`); `loss` (softmax_xent, bce or mse) appends a loss from cg:nn with a
    label input `label`. Needs the onnx extra (pip install 'cg-graphs[onnx]')."""
    import numpy as np

    from cg.interop.save import import_file

    given = {k: np.asarray(v.detach().numpy() if hasattr(v, "detach") else v) for k, v in (inputs or {}).items()}
    import_file(os.fspath(model), os.fspath(output), given, batch=batch, seed=seed, loss=loss, label=label)
    return load(os.fspath(output))


def export_onnx(graph: Graph, output: str | os.PathLike[str], result: Result | None = None) -> None:
    """`cg export` for Python: the graph as an ONNX model at `output`; with a Result, each node's
    value and gradient in its metadata_props."""
    from cg.files import write_output
    from cg.interop.write import to_model

    write_output(to_model(graph, result).SerializeToString(), os.fspath(output))


class _Facade(types.ModuleType):
    """The module `cg`, whose `check` is the function above although cg/check/ is a package: Python
    binds a package's name in its parent when it is first imported (`from cg.check.report import
    ...` would make `cg.check` the package), and this keeps the function. Import the package's
    modules with `from cg.check.x import y`; `import cg.check.x as m` does not work."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "check" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Facade

__all__ = ["__version__", "check", "load", "loads", "run", "value_and_grad"]
