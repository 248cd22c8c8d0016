"""The onnx package, imported on demand: without it `cg import` and `cg export` say how to install it."""

from __future__ import annotations

from types import ModuleType

from cg.errors import UsageError

INSTALL = "pip install 'cg-graphs[onnx]'"
OLDEST = (1, 17)  # the lowest version pyproject.toml declares: numpy 2 support, ReferenceEvaluator(intermediate=)


def onnx_module(command: str) -> ModuleType:
    """`import onnx`, or a UsageError (exit 2) that names the extra to install."""
    try:
        import onnx
    except ImportError:
        raise UsageError.one("CG710", f"{command} needs the onnx package, an optional extra: {INSTALL}") from None
    found = tuple(int(p) for p in onnx.__version__.split(".")[:2] if p.isdigit())
    if found < OLDEST:
        raise UsageError.one("CG710", f"{command} needs onnx {'.'.join(map(str, OLDEST))} or later "
                             f"(found {onnx.__version__}): {INSTALL} --upgrade")
    return onnx


def onnxruntime_module() -> ModuleType | None:
    """onnxruntime where it is installed (it also checks imports and exports), else None."""
    try:
        import onnxruntime  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        return None
    found: ModuleType = onnxruntime
    return found
