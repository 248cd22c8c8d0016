"""Every import is checked: cg's value of every node that came from the model must equal what ONNX's
reference evaluator computed for it (and the outputs what onnxruntime computes, where it is
installed), to 1e-6 relative in float64 and 1e-4 in float32. A mismatch is reported per node."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from cg.errors import CgError, Diagnostic
from cg.interop.need import onnxruntime_module
from cg.interop.read import Imported

MOST_SHOWN = 10


@dataclass(frozen=True)
class Agreement:
    """What the check compared: how many values, the largest relative difference, and against what."""

    compared: int
    worst: float
    worst_at: str  # the cg id of the worst value
    engines: tuple[str, ...]  # "ONNX reference evaluator", "onnxruntime x.y"


def tolerance(dtype: np.dtype) -> float:
    return 1e-6 if np.dtype(dtype).itemsize >= 8 else 1e-4


def relative(cg_value: np.ndarray, ref: np.ndarray) -> float:
    """The largest difference, relative to the reference's largest magnitude (at least 1e-30)."""
    cg_value, ref = np.asarray(cg_value, np.float64), np.asarray(ref, np.float64)
    if cg_value.shape != ref.shape:
        return float("inf")
    if not cg_value.size:
        return 0.0
    return float(np.max(np.abs(cg_value - ref)) / max(float(np.max(np.abs(ref))), 1e-30))


def cross_check(imported: Imported, file: str, model_bytes: bytes | None = None) -> Agreement:
    """Run the imported graph at the sample point and compare it with the model's own values."""
    from cg.eval.interp import run
    from cg.graph.builder import build
    from cg.parse.read import load_text

    graph = build(load_text(imported.text(), file))
    first = graph.avals[graph.outputs[0]].shape
    values = run(graph, imported.arrays, seed=np.ones(first), on_nonfinite="keep").values
    inputs = set(imported.inputs)
    problems, worst, worst_at, compared = [], 0.0, "", 0
    for name, key in imported.onnx_ids.items():
        if key in inputs or name not in imported.reference:
            continue
        ref = imported.reference[name]
        diff = relative(values[key], ref)
        compared += 1
        if diff > worst or not worst_at:
            worst, worst_at = diff, key
        if not diff <= tolerance(ref.dtype):
            node, op = imported.onnx_ops.get(name, ("?", "?"))
            problems.append(Diagnostic("CG713", f"cg's value differs from ONNX's for {name!r} (node {node!r}, {op}): "
                                       f"relative difference {diff:.3g} > {tolerance(ref.dtype):g}", file, None, key))
    engines = ["ONNX reference evaluator"]
    if model_bytes is not None and (ort := onnxruntime_module()) is not None:
        problems += _against_onnxruntime(ort, model_bytes, imported, values, file)
        engines.append(f"onnxruntime {ort.__version__}")
    if problems:
        raise CgError(problems[:MOST_SHOWN])
    return Agreement(compared, worst, worst_at, tuple(engines))


def _against_onnxruntime(ort: object, model_bytes: bytes, imported: Imported, values: Mapping[str, np.ndarray],
                         file: str) -> list[Diagnostic]:
    options = ort.SessionOptions()  # type: ignore[attr-defined]
    options.log_severity_level = 3  # its warnings would reach the terminal with colour codes
    try:
        session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])  # type: ignore[attr-defined]
        feeds = {i.name: imported.reference[i.name] for i in session.get_inputs()}
        names = [o.name for o in session.get_outputs()]
        outputs = session.run(names, feeds)
    except Exception as e:  # onnxruntime refuses what the reference evaluator ran: say so, do not guess
        said = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        return [Diagnostic("CG711", f"onnxruntime cannot run the model: {said}", file, None, None)]
    found = []
    for name, got in zip(names, outputs):
        key = imported.onnx_ids[name]
        diff = relative(values[key], got)
        if not diff <= tolerance(np.asarray(got).dtype):
            found.append(Diagnostic("CG713", f"cg's value differs from onnxruntime's for the output {name!r}: relative "
                                    f"difference {diff:.3g}", file, None, key))
    return found
