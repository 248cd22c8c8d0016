"""`cg import`: an ONNX model (opset 13 and later) becomes a cg graph. The model runs once in ONNX's
reference evaluator at a sample point (the given inputs, else seeded random ones), which gives every
value's shape, folds the shape arithmetic, and is what cg's own values are then checked against
(cg/interop/crosscheck.py). Initializers become the graph's parameters, their values (and the sample
point) kept in a sidecar .npz that the graph file names: `W: {file: model.npz, key: W}`."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cg.errors import CgError, UsageError
from cg.interop.names import Namer
from cg.interop.need import onnx_module
from cg.interop.rules import FOLDABLE, RULES, Importer, unsupported

OLDEST_OPSET = 13  # Softmax before 13 flattens to 2-D; ReduceSum's axes became an input in 13
LOSSES = ("softmax_xent", "bce", "mse")


@dataclass(frozen=True)
class Declared:
    """A cg input the import declares: its shape, dtype ("float" or "int") and doc."""

    shape: tuple[int, ...]
    dtype: str
    doc: str


@dataclass
class Imported:
    """A model as a cg graph, with the values of its parameters and of the sample point."""

    name: str
    doc: str
    inputs: dict[str, Declared]
    arrays: dict[str, np.ndarray]  # cg input id -> its value (parameters, sample inputs, the label)
    nodes: dict[str, dict[str, Any]]
    outputs: list[str]
    onnx_ids: dict[str, str]  # ONNX value name -> cg id
    onnx_ops: dict[str, tuple[str, str]]  # ONNX value name -> (node name, op type) that made it
    reference: dict[str, np.ndarray]  # ONNX value name -> the reference evaluator's value
    imports: list[str] = field(default_factory=list)

    def document(self, sidecar: str | None = None) -> dict[str, Any]:
        """The graph file's document. With a sidecar each input reads its value from it; without,
        inputs declare their shape only (the values are given to the run: the import's check)."""
        inputs = {}
        for key, d in self.inputs.items():
            entry: dict[str, Any] = {"file": sidecar, "key": key} if sidecar else {"shape": list(d.shape)}
            if d.dtype == "int":
                entry["dtype"] = "int"
            inputs[key] = {**entry, "doc": d.doc}
        head = {"cg": 1, "name": self.name, "doc": self.doc, **({"imports": self.imports} if self.imports else {})}
        return {**head, "inputs": inputs, "nodes": self.nodes, "outputs": self.outputs}

    def text(self, sidecar: str | None = None) -> str:
        return json.dumps(self.document(sidecar), ensure_ascii=False)


def read_model(data: bytes, file: str, given: Mapping[str, np.ndarray], *, batch: int = 1, seed: int = 0) -> Imported:
    onnx = onnx_module("cg import")
    model = _checked(onnx, data, file)
    params = {t.name: _tensor(onnx, t, file) for t in model.graph.initializer}
    feeds = _feeds(model, params, given, batch, seed, file)
    reference = _evaluate(model, feeds, params, file)
    namer = Namer()
    imp = Importer(reference, namer, file=file)
    inputs: dict[str, Declared] = {}
    arrays: dict[str, np.ndarray] = {}
    for name, value in [*feeds.items(), *params.items()]:
        if name in feeds or value.dtype.kind == "f":
            key = namer.id(name)
            kind = "the model's input (the value the import checked with)" if name in feeds else "a parameter"
            inputs[key] = Declared(value.shape, "int" if value.dtype.kind in "iub" else "float", f"{kind}: ONNX {name}")
            arrays[key], imp.known[name] = value, key
        else:  # integer initializers are shapes, axes and indices: constants
            imp.consts[name] = value
    for node in model.graph.node:
        _import_node(imp, node, onnx)
    for key, value in imp.big_consts.items():
        inputs[key] = Declared(value.shape, "float", "a constant of the model, too big to write inline")
        arrays[key] = value
    outputs = [_output(imp, o.name, inputs) for o in model.graph.output]
    ops = {out: (n.name, n.op_type) for n in model.graph.node for out in n.output}
    name = namer.fresh(os.path.splitext(os.path.basename(file))[0] or "model")  # the model's own is often "main_graph"
    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p)
    doc = (f"imported from {os.path.basename(file)}, ONNX graph {model.graph.name!r}"
           f"{' by ' + producer if producer else ''} (opset {_opset(model)})")
    return Imported(name, doc, inputs, arrays, imp.nodes, outputs, dict(imp.known), ops, reference)


def _checked(onnx: Any, data: bytes, file: str) -> Any:
    """The model, read and passed by ONNX's checker. Weights kept in other files are refused
    before the checker runs: it would look for the files the model names."""
    try:
        model = onnx.load_model_from_string(data)
        from onnx.external_data_helper import _get_all_tensors  # initializers, Constant values, subgraphs

        for t in _get_all_tensors(model):
            if t.data_location == onnx.TensorProto.EXTERNAL:
                raise CgError.one("CG712", f"the tensor {t.name!r} keeps its values in another file; export "
                                  "the model with its weights inside (torch.onnx.export(..., external_data=False))",
                                  file=file)
        if len(model.graph.sparse_initializer):
            raise CgError.one("CG712", "the model has sparse initializers, which cg does not import", file=file)
        onnx.checker.check_model(model)
    except CgError:
        raise
    except Exception as e:  # protobuf's DecodeError, onnx's ValidationError: both say what is wrong
        said = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise CgError.one("CG711", f"not a valid ONNX model: {said}", file=file) from None
    _check_opset(model, file)
    return model


def _tensor(onnx: Any, t: Any, file: str) -> np.ndarray:
    """An initializer's values, within cg's element limit before they are decoded."""
    _within_limit(t.name, tuple(t.dims), file)
    found: np.ndarray = onnx.numpy_helper.to_array(t)
    return found


def _within_limit(name: str, shape: tuple[int, ...], file: str) -> None:
    from cg.limits import current

    limits = current()
    if float(np.prod(shape, dtype=np.float64)) > limits.max_elements:
        raise CgError.one("CG004", f"{name!r} has shape {list(shape)}: more than {limits.max_elements:,} numbers "
                          f"in one tensor; {limits.hint('max_elements')}", file=file)


def _opset(model: Any) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def _check_opset(model: Any, file: str) -> None:
    if _opset(model) < OLDEST_OPSET:
        raise CgError.one("CG712", f"the model uses ONNX opset {_opset(model)}; cg imports opset {OLDEST_OPSET} and "
                          "later (re-export it with a newer opset, e.g. torch.onnx.export(..., opset_version=18))",
                          file=file)


def _shape(value_info: Any, batch: int) -> tuple[int, ...]:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else batch for d in dims)


def _feeds(model: Any, params: dict[str, np.ndarray], given: Mapping[str, np.ndarray], batch: int, seed: int,
           file: str) -> dict[str, np.ndarray]:
    """The sample point: each model input's given value, else a seeded random one of its shape
    (a symbolic dimension, such as the batch, gets `batch`)."""
    from onnx import helper

    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    names = [i.name for i in model.graph.input if i.name not in params]
    for i in model.graph.input:
        if i.name in params:
            continue
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type))
        if dtype.kind not in "fiu":
            raise CgError.one("CG712", f"the model's input {i.name!r} is of type {dtype}, not numbers cg computes "
                              "with", file=file)
        shape = _shape(i, batch)
        _within_limit(i.name, shape, file)
        if i.name in given:
            value = np.asarray(given[i.name])
            if value.shape != shape and all(d.HasField("dim_value") for d in i.type.tensor_type.shape.dim):
                raise UsageError.one("CG300", f"--inputs {i.name}: the model wants shape {list(shape)}, "
                                     f"got {list(value.shape)}")
            feeds[i.name] = value.astype(dtype)
        elif dtype.kind == "f":
            feeds[i.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[i.name] = np.zeros(shape, dtype)
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise UsageError.one("CG301", f"--inputs {unknown[0]}: the model has no such input (its inputs: "
                             f"{', '.join(names) or 'none'})", file=file)
    return feeds


def _evaluate(model: Any, feeds: dict[str, np.ndarray], params: dict[str, np.ndarray],
              file: str) -> dict[str, np.ndarray]:
    """Every value of the model at the sample point, from ONNX's reference evaluator."""
    from onnx.reference import ReferenceEvaluator

    try:
        found = ReferenceEvaluator(model).run(None, feeds, intermediate=True)
    except Exception as e:  # an op the reference evaluator lacks, or values it refuses
        raise CgError.one("CG711", f"ONNX's reference evaluator cannot run the model: {type(e).__name__}: "
                          f"{str(e).strip()[:300]}", file=file) from None
    assert isinstance(found, dict)
    return {**params, **feeds, **{k: np.asarray(v) for k, v in found.items()}}


def _import_node(imp: Importer, node: Any, onnx: Any) -> None:
    if node.domain not in ("", "ai.onnx"):
        raise unsupported(node, f"ops of the domain {node.domain!r} are not ONNX's standard ops", imp.file)
    names = [n for n in node.input if n]
    for n in names if node.op_type not in ("Shape", "Size") else ():  # shapes are known: constants
        if n not in imp.known and n not in imp.consts:
            raise unsupported(node, f"its input {n!r} comes from an output cg does not import", imp.file)
    if node.op_type in ("Shape", "Size") or (node.op_type in FOLDABLE and all(n in imp.consts for n in names)):
        for out in node.output:
            if out:
                imp.consts[out] = imp.values[out]
        return
    rule = RULES.get(node.op_type)
    if rule is None:
        raise unsupported(node, f"not an op cg imports. cg imports: {', '.join(sorted(RULES))}", imp.file)
    imp.doc = f"ONNX {node.op_type} {node.name}".strip()
    rule(imp, node, {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute})


def _output(imp: Importer, name: str, inputs: dict[str, Declared]) -> str:
    key = imp.known.get(name)
    if key is None or key in inputs:
        what = "a constant" if key is None else "one of its inputs, unchanged"
        raise CgError.one("CG712", f"the model's output {name!r} is {what}: a cg output is computed by a node")
    return key


def add_loss(imported: Imported, loss: str, label: str, seed: int = 0) -> None:
    """Append a loss from cg's library of functions (cg:nn) to the first output, with a label
    input `label` of the right shape (a random one at the sample point): softmax_xent takes
    logits [..., K] and integer labels [...], bce probabilities and 0/1 labels, mse a target."""
    if label in imported.inputs or label in imported.nodes:
        raise UsageError.one("CG300", f"--label {label}: the imported graph has a name {label!r} already")
    out = imported.outputs[0]
    shape = imported.reference[_onnx_name(imported, out)].shape
    rng = np.random.default_rng(seed)
    value: np.ndarray
    if loss == "softmax_xent":
        if not shape:
            raise UsageError.one("CG300", "--loss softmax_xent needs logits with a class axis; the output is a scalar")
        value, dtype = rng.integers(0, shape[-1], shape[:-1]), "int"
        doc = f"the label: a class in 0..{shape[-1] - 1}"
    elif loss == "bce":
        value, dtype, doc = rng.integers(0, 2, shape).astype(np.float64), "float", "the label, 0 or 1"
    else:
        value, dtype, doc = rng.standard_normal(shape), "float", "the target"
    imported.inputs[label] = Declared(tuple(np.shape(value)), dtype, doc + " (a random one: give yours with --inputs)")
    imported.arrays[label] = np.asarray(value)
    key = Namer(set(imported.inputs) | set(imported.nodes)).fresh("loss")
    imported.nodes[key] = {"op": loss, "in": [out, label], "doc": f"the loss, appended by cg import --loss {loss}"}
    imported.outputs.insert(0, key)
    imported.imports = ["cg:nn"]


def _onnx_name(imported: Imported, key: str) -> str:
    return next(name for name, k in imported.onnx_ids.items() if k == key)
