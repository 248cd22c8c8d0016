"""Export the PyTorch models that tests/interop/ imports, with PyTorch's own gradients beside them.

    python tools/torch_models.py [OUT_DIR]     # needs torch (and onnxscript for its exporter)

For each model, OUT_DIR gets NAME.onnx (torch.onnx.export) and NAME.torch.json: a partial
snapshot for `cg check --against` holding the inputs (x and the label y) and PyTorch's gradients
of the mean loss with respect to every parameter, computed in float64 at the exported float32
weights. Parameter names are the ids `cg import` gives them (`0.weight` -> `_0_weight`).
Everything is seeded: running it again writes the same numbers.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import torch

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "tests/interop/models"


def cg_id(name: str) -> str:
    """As cg/interop/names.py makes ids."""
    base = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "v"
    return "_" + base if base[0].isdigit() else base


def save(name: str, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str) -> None:
    model.eval()
    torch.onnx.export(model, (x,), OUT / f"{name}.onnx", input_names=["x"], output_names=["out"], dynamo=True,
                      external_data=False)
    exact = model.double()  # the same float32 weights, now computed in float64 as cg does
    out = exact(x.double())
    if loss == "softmax_xent":
        value = torch.nn.functional.cross_entropy(out, y)
    else:
        value = torch.nn.functional.binary_cross_entropy(out, y.double())
    value.backward()
    snapshot = {
        "of": "loss",
        "inputs": {"x": x.double().tolist(), "y": y.tolist()},
        "values": {"loss": value.item()},
        "grads": {cg_id(k): p.grad.tolist() for k, p in exact.named_parameters()},
    }
    (OUT / f"{name}.torch.json").write_text(json.dumps(snapshot, indent=1) + "\n", encoding="utf-8")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 6), torch.nn.ReLU(),
                              torch.nn.Linear(6, 3))
    save("mlp", mlp, torch.randn(5, 4), torch.tensor([0, 2, 1, 2, 0]), "softmax_xent")
    logreg = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Sigmoid())
    save("logreg", logreg, torch.randn(5, 3), torch.tensor([[1.0], [0.0], [1.0], [1.0], [0.0]]), "bce")


if __name__ == "__main__":
    main()
