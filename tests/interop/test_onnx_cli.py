"""`cg import` and `cg export` from the command line: the PyTorch models in tests/interop/models
(exported by tools/torch_models.py, with PyTorch's gradients beside them) import, cross-check, get
a loss and pass `cg check` against PyTorch's gradients; failures write nothing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, cg

pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install 'cg-graphs[onnx]')")

MODELS = ROOT / "tests" / "interop" / "models"


def imported(tmp_path: Path, name: str, loss: str) -> Path:
    snap = json.loads((MODELS / f"{name}.torch.json").read_text(encoding="utf-8"))
    np.save(tmp_path / "x.npy", np.asarray(snap["inputs"]["x"]))
    out = tmp_path / f"{name}.yaml"
    r = cg("import", str(MODELS / f"{name}.onnx"), "-o", str(out), "--loss", loss, "--inputs",
           f"x=@{tmp_path / 'x.npy'}")
    assert r.code == 0, r.err
    assert "every node checked against the ONNX reference evaluator" in r.err
    return out


@pytest.mark.parametrize(("name", "loss"), [("mlp", "softmax_xent"), ("logreg", "bce")])
def test_a_pytorch_model_imports_and_its_gradients_are_pytorchs(tmp_path: Path, name: str, loss: str) -> None:
    out = imported(tmp_path, name, loss)
    assert (tmp_path / f"{name}.npz").is_file()
    text = out.read_text(encoding="utf-8")
    assert "imports: [cg:nn]" in text and f"op: {loss}" in text and "file: " in text
    r = cg("check", str(out), "--against", str(MODELS / f"{name}.torch.json"), "--rtol", "1e-6")
    assert r.code == 0, r.out + r.err
    r = cg("run", str(out), "-f", "json")
    assert r.code == 0, r.err


def test_a_wrong_gradient_from_elsewhere_is_caught(tmp_path: Path) -> None:
    out = imported(tmp_path, "mlp", "softmax_xent")
    snap = json.loads((MODELS / "mlp.torch.json").read_text(encoding="utf-8"))
    snap["grads"]["_4_bias"][1] *= 1.01
    (tmp_path / "wrong.json").write_text(json.dumps(snap), encoding="utf-8")
    r = cg("check", str(out), "--against", str(tmp_path / "wrong.json"))
    assert r.code == 1 and "_4_bias" in r.out + r.err


def test_an_unsupported_model_writes_nothing(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Erf", ["a"], ["y"], name="gelu_part")], "g",
                              [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = tmp_path / "erf.onnx"
    model.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]).SerializeToString())
    r = cg("import", str(model), "-o", str(tmp_path / "erf.yaml"))
    assert r.code == 1 and "'gelu_part' (Erf): not an op cg imports" in r.err and "Traceback" not in r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["erf.onnx"]


def test_usage_errors(tmp_path: Path) -> None:
    r = cg("import", str(MODELS / "mlp.onnx"), "-o", str(tmp_path / "mlp.json"))
    assert r.code == 2 and "must end in .yaml" in r.err
    r = cg("import", str(tmp_path / "missing.onnx"), "-o", str(tmp_path / "m.yaml"))
    assert r.code == 1 and "missing.onnx" in r.err
    r = cg("import", str(MODELS / "mlp.onnx"), "-o", str(tmp_path / "m.yaml"), "--inputs", "z=1")
    assert r.code == 2 and "no such input" in r.err


@pytest.mark.parametrize("command", [["import", str(MODELS / "mlp.onnx"), "-o", "m.yaml"],
                                     ["export", "graphs/mlp.yaml", "-o", "m.onnx"]])
def test_without_onnx_the_commands_say_how_to_install_it(monkeypatch: pytest.MonkeyPatch, command: list[str]) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` raises ImportError
    r = cg(*command)
    assert r.code == 2 and "pip install 'cg-graphs[onnx]'" in r.err


def test_export_writes_values_and_gradients_for_netron(tmp_path: Path) -> None:
    import onnx

    r = cg("export", "graphs/log3x2p5xy.yaml", "-o", str(tmp_path / "g.onnx"), "--inputs", "x=2,y=3")
    assert r.code == 0, r.err
    nodes = {n.name: {p.key: p.value for p in n.metadata_props} for n in onnx.load(str(tmp_path / "g.onnx")).graph.node}
    assert nodes["e"]["cg.value"] == "42." and nodes["e"]["cg.grad dz/de"] == "0.02381"


def test_a_live_pytorch_export(tmp_path: Path) -> None:
    """Runs where torch is installed: a fresh MLP, exported now, gives cg PyTorch's gradients."""
    torch = pytest.importorskip("torch", reason="torch is not installed (tools/torch_models.py needs it too)")
    pytest.importorskip("onnxscript", reason="torch.onnx.export needs onnxscript")
    import cg as cglib
    from cg.interop.read import add_loss, read_model

    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Sigmoid(), torch.nn.Linear(5, 4), torch.nn.Tanh(),
                              torch.nn.Linear(4, 2))
    x, y = torch.randn(6, 3), torch.tensor([0, 1, 1, 0, 1, 0])
    torch.onnx.export(net, (x,), tmp_path / "net.onnx", input_names=["x"], dynamo=True, external_data=False)
    model = read_model((tmp_path / "net.onnx").read_bytes(), "net.onnx", {"x": x.numpy()})
    add_loss(model, "softmax_xent", "y")
    model.arrays["y"] = y.numpy()
    result = cglib.run(cglib.loads(model.text(), "net.json"), model.arrays)
    net = net.double()
    torch.nn.functional.cross_entropy(net(x.double()), y).backward()
    for name, p in net.named_parameters():
        key = "_" + name.replace(".", "_")
        np.testing.assert_allclose(result.grads[key], p.grad.numpy(), rtol=1e-6, atol=1e-12)


def test_the_python_api_imports_and_exports(tmp_path: Path) -> None:
    import cg as cglib

    snap = json.loads((MODELS / "logreg.torch.json").read_text(encoding="utf-8"))
    graph = cglib.import_onnx(MODELS / "logreg.onnx", tmp_path / "logreg.yaml", loss="bce",
                              inputs={"x": np.asarray(snap["inputs"]["x"])})
    assert graph.outputs[0] == "loss" and (tmp_path / "logreg.npz").is_file()
    report = cglib.check(graph, against=snap, rtol=1e-6)
    assert report.passed, str(report)
    cglib.export_onnx(graph, tmp_path / "again.onnx", cglib.run(graph, {"y": np.asarray(snap["inputs"]["y"])}))
    import onnx

    onnx.checker.check_model(onnx.load(str(tmp_path / "again.onnx")), full_check=True)
    with pytest.raises(Exception, match="loss must be one of"):
        cglib.import_onnx(MODELS / "logreg.onnx", tmp_path / "x.yaml", loss="hinge")


def test_export_writes_only_onnx_files_and_never_over_its_graph(tmp_path: Path) -> None:
    graph = tmp_path / "g.yaml"
    graph.write_text((ROOT / "graphs" / "log3x2p5xy.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    r = cg("export", str(graph), "-o", str(graph))
    assert r.code == 2 and "must end in .onnx" in r.err
    assert graph.read_text(encoding="utf-8").startswith("#") or "cg: 1" in graph.read_text(encoding="utf-8")


def test_a_negative_seed_is_a_usage_error() -> None:
    r = cg("import", str(MODELS / "mlp.onnx"), "-o", "m.yaml", "--seed", "-1")
    assert r.code == 2 and "Traceback" not in r.err and "internal error" not in r.err
