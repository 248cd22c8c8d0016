"""Writing an import: the sidecar .npz first, then the graph file that names it, each replaced
only once it is whole (cg/files.py). The graph file is written in cg's canonical form (cg fmt)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from cg.errors import LoadError, UsageError
from cg.files import read_regular, write_output
from cg.fmt.write import format_text
from cg.graph.arrays import npz_bytes
from cg.interop.crosscheck import Agreement, cross_check
from cg.interop.read import LOSSES, Imported, add_loss, read_model
from cg.limits import current

MODEL_BYTES = 8  # a model may be this many times the size limit of a graph file (cg --max-bytes)


def import_file(model: str, output: str, given: Mapping[str, np.ndarray], *, batch: int = 1, seed: int = 0,
                loss: str | None = None, label: str = "y") -> tuple[Imported, Agreement, list[str]]:
    """`cg import`: read the model, cross-check it, append the loss, write the graph file and its
    sidecar; what was imported, how it agreed with ONNX, and the files written."""
    if loss is not None and loss not in LOSSES:
        raise UsageError.one("CG300", f"loss must be one of {', '.join(LOSSES)}, not {loss!r}")
    if not output.endswith((".yaml", ".yml")):
        raise UsageError.one("CG300", f"-o {output}: the graph file's name must end in .yaml or .yml")
    data = read_regular(model, current().max_bytes * MODEL_BYTES, model, LoadError, what="model")
    imported = read_model(data, model, given, batch=batch, seed=seed)
    agreement = cross_check(imported, model, data)
    if loss is not None:
        add_loss(imported, loss, label, seed)
    return imported, agreement, save_import(imported, output)


def save_import(imported: Imported, output: str) -> list[str]:
    """Write `output` (the graph file) and its sidecar; the names of the files written."""
    sidecar = os.path.splitext(output)[0] + ".npz"
    existed = os.path.exists(sidecar)
    write_output(npz_bytes(imported.arrays), sidecar)
    try:
        text = format_text(imported.text(os.path.basename(sidecar)), output)
    except Exception:
        if not existed:  # nothing is left behind by an import that failed
            os.unlink(sidecar)
        raise
    write_output(text, output)
    return [output, sidecar]
