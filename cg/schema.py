"""The JSON Schema of graph files, generated from the op registry, and the translation of
jsonschema's errors into short messages at YAML positions."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from functools import cache
from typing import Any

from cg.errors import Diagnostic
from cg.ops import REGISTRY, Op
from cg.yamldoc import Document

SCHEMA_ID = "urn:cg:schema:graph:1"
ID_PATTERN = "^[A-Za-z_][A-Za-z0-9_]*$"


def _tensor() -> dict[str, Any]:
    return {
        "description": "a number or a nested list of numbers",
        "anyOf": [{"type": "number"}, {"type": "array", "items": {"$ref": "#/$defs/tensor"}}],
    }


def _node_rule(op: Op) -> dict[str, Any]:
    """The `then` branch for one op: its arity and its attributes, nothing else."""
    lo, hi = op.arity
    arity: dict[str, Any] = {"minItems": lo} | ({"maxItems": hi} if hi is not None else {})
    props: dict[str, Any] = {"op": True, "in": arity, "doc": True}
    for name, attr in op.attrs.items():
        props[name] = {"description": attr.doc} | attr.schema
    required = [name for name, attr in op.attrs.items() if attr.required]
    rule: dict[str, Any] = {"properties": props, "additionalProperties": False}
    if required:
        rule["required"] = required
    return {"if": {"properties": {"op": {"const": op.name}}}, "then": rule}


def graph_schema() -> dict[str, Any]:
    """The schema of format version 1, built from the registry (schema/graph.schema.json is a copy)."""
    ops = list(REGISTRY.values())
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "cg graph, format version 1",
        "description": "A computational graph: inputs (leaves), nodes (op + ordered inputs) and outputs.",
        "type": "object",
        "required": ["cg", "nodes", "outputs"],
        "additionalProperties": False,
        "properties": {
            "cg": {"description": "format version; must be 1", "const": 1},
            "name": {"description": "graph name; defaults to the file's stem", "type": "string"},
            "doc": {"description": "what the graph computes, in words or a formula", "type": "string"},
            "inputs": {
                "description": "the graph's leaves: name -> default value, or {value, shape, dtype, doc}",
                "type": "object",
                "propertyNames": {"$ref": "#/$defs/id"},
                "additionalProperties": {"$ref": "#/$defs/input"},
            },
            "nodes": {
                "description": "node id -> {op, in, attributes...}; listed in any order",
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"$ref": "#/$defs/id"},
                "additionalProperties": {"$ref": "#/$defs/node"},
            },
            "outputs": {
                "description": "ids of the result nodes; the first one is differentiated",
                "type": "array",
                "minItems": 1,
                "uniqueItems": True,
                "items": {"$ref": "#/$defs/id"},
            },
        },
        "$defs": {
            "id": {
                "description": "a name: letters, digits and _, not starting with a digit",
                "type": "string",
                "pattern": ID_PATTERN,
            },
            "tensor": _tensor(),
            "input": {
                "description": "a default value, or a mapping with value, shape, dtype and doc",
                "anyOf": [
                    {"$ref": "#/$defs/tensor"},
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "value": {"description": "default value", "$ref": "#/$defs/tensor"},
                            "shape": {
                                "description": "the shape; without it, the shape of value, or a scalar",
                                "type": "array",
                                "items": {"type": "integer", "minimum": 0},
                            },
                            "dtype": {
                                "description": "float (default) or int; int inputs get no gradient",
                                "enum": ["float", "int"],
                            },
                            "doc": {"description": "what the input is", "type": "string"},
                        },
                    },
                ],
            },
            "node": {
                "description": "one operation: op, the ordered list of its inputs, and its attributes",
                "type": "object",
                "required": ["op", "in"],
                "properties": {
                    "op": {"description": "the operation", "enum": [op.name for op in ops]},
                    "in": {
                        "description": "arguments in order: ids of inputs or nodes, or constants",
                        "type": "array",
                        "items": {
                            "description": "the id of an input or node, or a constant (number or nested list)",
                            "anyOf": [{"$ref": "#/$defs/id"}, {"$ref": "#/$defs/tensor"}],
                        },
                    },
                    "doc": {"description": "a note on this node", "type": "string"},
                },
                "allOf": [_node_rule(op) for op in ops],
            },
        },
    }


@cache
def _validator() -> Any:
    # Imported here: jsonschema costs ~70 ms to import, and most commands never need it.
    from jsonschema import Draft202012Validator

    return Draft202012Validator(graph_schema())


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "nothing (null)"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string '{value[:40]}'" + ("..." if len(value) > 40 else "")
    return "a list" if isinstance(value, list) else "a mapping"


WHAT = {
    "number": "a number",
    "integer": "an integer",
    "string": "a string",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}


def _where(path: tuple[Any, ...]) -> tuple[str | None, str]:
    """The node a path belongs to, and the key inside it, for messages."""
    if len(path) >= 2 and path[0] in ("nodes", "inputs") and isinstance(path[1], str):
        return path[1], ".".join(str(p) for p in path[2:])
    return None, ".".join(str(p) for p in path)


def _message(err: Any, doc: Document) -> Iterator[tuple[str, str, tuple[Any, ...], bool]]:
    """(code, message, path, at_key) for one jsonschema error."""
    path = tuple(err.absolute_path)
    inst, kind = err.instance, err.validator
    node, key = _where(path)
    field = f"'{key}' " if key else ""
    if kind == "enum" and path[-1:] == ("op",):
        close = difflib.get_close_matches(str(inst), list(REGISTRY), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else " (see `cg ops`)"
        yield "CG101", f"unknown op '{inst}'{hint}", path, False
    elif kind == "additionalProperties":
        allowed = [k for k in err.schema.get("properties", {}) if k not in ("op", "in", "doc")]
        for extra in [k for k in inst if k not in err.schema.get("properties", {})]:
            if node and path[0] == "nodes":
                opts = ", ".join(allowed) if allowed else "none"
                msg = f"unknown attribute '{extra}' for op '{inst.get('op')}' (allowed: {opts})"
                yield "CG103", msg, (*path, extra), True
            else:
                opts = ", ".join(err.schema.get("properties", {}))
                yield "CG100", f"unknown key '{extra}' (allowed: {opts})", (*path, extra), True
    elif kind in ("minItems", "maxItems") and path[-1:] == ("in",) and node:
        op = REGISTRY[doc_get(doc, path[:-1]).get("op")]
        yield "CG102", f"op '{op.name}' takes {op.arity_text()}, got {len(inst)}", path, False
    elif kind == "required":
        for name in err.validator_value:
            if isinstance(inst, dict) and name not in inst:
                yield "CG100", f"missing required key '{name}'", path, False
    elif kind == "const" and path == ("cg",):
        yield "CG100", f"unsupported format version {_describe(inst)[4:]}: this cg reads 'cg: 1'", path, False
    elif kind == "type":
        want = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        yield "CG100", f"{field}expected {' or '.join(WHAT[w] for w in want)}, got {_describe(inst)}", path, False
    elif kind == "enum":
        yield "CG100", f"{field}expected one of {', '.join(map(str, err.validator_value))}, got {_describe(inst)}", path, False
    elif kind == "pattern" and "propertyNames" in err.schema_path:
        msg = f"'{str(inst)[:40]}' is not a valid name (letters, digits and _, not starting with a digit)"
        yield "CG100", msg, (*path, inst), True
    elif kind == "pattern":
        yield "CG100", f"'{str(inst)[:40]}' is not a valid name (letters, digits and _, not starting with a digit)", path, False
    elif kind == "anyOf" and (inner := [e for e in err.context if e.validator not in ("type", "anyOf")]):
        # The value has the right kind for one branch (e.g. a mapping): report what is wrong inside it.
        for e in inner:
            yield from _message(e, doc)
    elif kind == "anyOf":
        desc = err.schema.get("description") or "a value of another kind"
        yield "CG100", f"{field}expected {desc}, got {_describe(inst)}", path, False
    else:
        desc = err.schema.get("description", "")
        yield "CG100", f"{field}invalid value {_describe(inst)} ({kind} {err.validator_value!r:.60})" + (
            f": {desc}" if desc else ""
        ), path, False


def doc_get(doc: Document, path: tuple[Any, ...]) -> Any:
    value = doc.data
    for p in path:
        value = value[p]
    return value


def validate(doc: Document) -> list[Diagnostic]:
    """Schema errors of a document, in file order, each with its position and node."""
    out: list[Diagnostic] = []
    for err in _validator().iter_errors(doc.data):
        for code, message, path, at_key in _message(err, doc):
            node, _ = _where(path)
            out.append(Diagnostic(code, message, doc.file, doc.pos(path, key=at_key), node))
    out.sort(key=lambda d: (d.pos.line, d.pos.col) if d.pos else (0, 0))
    return out


def result_schema() -> dict[str, Any]:
    """The schema of `cg run --format json` (schema/result.schema.json is a copy)."""
    number = {"anyOf": [{"type": "number"}, {"enum": ["NaN", "Infinity", "-Infinity"]}]}
    tensor = {"anyOf": [number, {"type": "array", "items": {"$ref": "#/$defs/tensor"}}]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:cg:schema:result:1",
        "title": "cg run result",
        "description": "Values and gradients of every input and node, in topological order.",
        "type": "object",
        "required": ["graph", "file", "of", "outputs", "nodes", "nonfinite"],
        "additionalProperties": False,
        "properties": {
            "graph": {"description": "the graph's name", "type": "string"},
            "file": {"description": "the graph file that was run", "type": "string"},
            "of": {"description": "the differentiated output; grads are d(of)/d(node)", "type": ["string", "null"]},
            "outputs": {"description": "the graph's outputs", "type": "array", "items": {"type": "string"}},
            "nodes": {
                "description": "inputs first, then nodes, in topological order",
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "op", "in", "shape", "value", "grad"],
                    "additionalProperties": False,
                    "properties": {
                        "id": {"description": "input name or node id", "type": "string"},
                        "op": {"description": "the op, or 'input' for a leaf", "type": "string"},
                        "in": {
                            "description": "arguments in order: ids, or constant values",
                            "type": "array",
                            "items": {"anyOf": [{"type": "string"}, {"$ref": "#/$defs/tensor"}]},
                        },
                        "shape": {"description": "shape of the value", "type": "array", "items": {"type": "integer"}},
                        "value": {"description": "the value at full float64 precision", "$ref": "#/$defs/tensor"},
                        "grad": {
                            "description": "d(of)/d(this); null for integer values, which have no gradient",
                            "anyOf": [{"type": "null"}, {"$ref": "#/$defs/tensor"}],
                        },
                    },
                },
            },
            "nonfinite": {
                "description": "ids whose value or gradient has NaN or Inf (written as strings)",
                "type": "array",
                "items": {"type": "string"},
            },
        },
        "$defs": {"tensor": tensor},
    }
