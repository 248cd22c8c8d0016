"""The JSON Schema of graph files, generated from the op registry, and the translation of
jsonschema's errors into short messages at YAML positions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any

from cg.errors import Diagnostic, did_you_mean
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
    arity: dict[str, Any] = {"description": f"op {op.name} takes {op.arity_text()}", "minItems": lo}
    if hi is not None:
        arity["maxItems"] = hi
    props: dict[str, Any] = {"op": True, "in": arity, "doc": True}
    for name, attr in op.attrs.items():
        props[name] = {"description": attr.doc} | attr.schema
    required = [name for name, attr in op.attrs.items() if attr.required]
    rule: dict[str, Any] = {"properties": props, "additionalProperties": False}
    if required:
        rule["required"] = required
    # `required` matters: without it a node with no op matches every op's `if`.
    return {"if": {"properties": {"op": {"const": op.name}}, "required": ["op"]}, "then": rule}


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
                "description": "a number, a nested list of numbers, or a mapping with value, shape, dtype and doc",
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
        return f"the string {quote(value)}"
    return "a list" if isinstance(value, list) else "a mapping"


def _got(value: Any, expected: str) -> str:
    """', got X', and why when X is a YAML 1.1 boolean: cg reads YAML 1.2, where yes/no/on/off are text."""
    hint = ""
    if isinstance(value, str) and value.lower() in ("yes", "no", "on", "off") and "string" not in expected:
        hint = f" (YAML 1.2 reads {value} as text, not as a boolean)"
        if "true or false" in expected:
            hint = f" (YAML 1.2 reads {value} as text; write {'true' if value.lower() in ('yes', 'on') else 'false'})"
    return f", got {_describe(value)}{hint}"

WHAT = {
    "number": "a number",
    "integer": "an integer",
    "string": "a string",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}
NAME_RULE = "names use letters, digits and _, and do not start with a digit"


def quote(text: Any, limit: int = 40) -> str:
    """A name or text from the file, quoted and cut, so no message grows with the file."""
    text = str(text).replace("\n", "\\n")
    return f"'{text}'" if len(text) <= limit else f"'{text[: limit - 3]}...'"


def _where(path: tuple[Any, ...]) -> tuple[str | None, str]:
    """The node (or input) a path belongs to, and the field inside it, like 'in[1]', for messages."""
    if len(path) >= 2 and path[0] in ("nodes", "inputs") and isinstance(path[1], str):
        node, rest = path[1], path[2:]
    else:
        node, rest = None, path
    field = ""
    for p in rest:
        field += f"[{p}]" if isinstance(p, int) else f".{p}" if field else str(p)
    return node, field


Found = Iterator[tuple[str, str, tuple[Any, ...], bool]]


def _message(err: Any, doc: Document) -> Found:
    """(code, message, path, at_key) for one jsonschema error."""
    path = tuple(err.absolute_path)
    kind = err.validator
    if "propertyNames" in err.schema_path:
        yield from _bad_name(err, path)
    elif kind == "enum" and path[-1:] == ("op",) and path[:1] == ("nodes",):
        yield _unknown_op(err.instance, path)
    elif kind == "additionalProperties":
        yield from _unknown_keys(err, path)
    elif kind in ("minItems", "maxItems") and path[-1:] == ("in",) and path[:1] == ("nodes",):
        yield from _arity(err, path, doc)
    elif kind in ("anyOf", "oneOf"):
        yield from _alternatives(err, path, doc)
    else:
        yield _simple(err, path)


def _unknown_op(op: Any, path: tuple[Any, ...]) -> tuple[str, str, tuple[Any, ...], bool]:
    if not isinstance(op, str):  # listing the 28 ops here would make a very long line
        return "CG100", f"'op': expected the name of an op (`cg ops` lists them){_got(op, '')}", path, False
    hint = did_you_mean(op, list(REGISTRY)) or " (`cg ops` lists the ops)"
    return "CG101", f"unknown op {quote(op)}{hint}", path, False


def _bad_name(err: Any, path: tuple[Any, ...]) -> Found:
    # jsonschema reports a bad key at its mapping; point at the key itself.
    name = err.instance
    if isinstance(name, str):
        message = f"{quote(name)} is not a valid name: {NAME_RULE}{_fixed_name(name)}"
    else:
        message = f"{_describe(name)} is not a valid name: {NAME_RULE}"
    yield "CG100", message, (*path, name), True


def _fixed_name(name: str) -> str:
    fixed = re.sub("[^A-Za-z0-9_]+", "_", name.strip())
    fixed = "_" + fixed if fixed[:1].isdigit() or not fixed else fixed
    return f" (e.g. {quote(fixed)})" if re.fullmatch(ID_PATTERN, fixed) and fixed.strip("_") else ""


def _unknown_keys(err: Any, path: tuple[Any, ...]) -> Found:
    known = list(err.schema.get("properties", {}))
    for extra in [k for k in err.instance if k not in known]:
        hint = did_you_mean(str(extra), known) if isinstance(extra, str) else ""
        if path[:1] == ("nodes",) and len(path) == 2:
            yield "CG103", _unknown_attribute(err.instance.get("op"), extra, hint), (*path, extra), True
        else:
            message = f"unknown key {quote(extra)}{hint} (allowed: {', '.join(known)})"
            yield "CG100", message, (*path, extra), True


def _unknown_attribute(op_name: str, extra: Any, hint: str) -> str:
    attrs = list(REGISTRY[op_name].attrs)
    if not attrs:
        return f"unknown attribute {quote(extra)}: op '{op_name}' has no attributes"
    return f"unknown attribute {quote(extra)} for op '{op_name}'{hint} (allowed: {', '.join(attrs)})"


def _arity(err: Any, path: tuple[Any, ...], doc: Document) -> Found:
    op = REGISTRY.get(doc_get(doc, path[:-1]).get("op"))
    if op is not None:  # the rule only applies when op is known; be safe anyway
        yield "CG102", f"op '{op.name}' takes {op.arity_text()}, got {len(err.instance)}", path, False


def _alternatives(err: Any, path: tuple[Any, ...], doc: Document) -> Found:
    """anyOf/oneOf: report inside the branch that fits the value's kind, else what was expected."""
    _, field = _where(path)
    if isinstance(err.instance, list) and _accepts_tensor(err.schema):
        bad = _non_number(err.instance)
        if bad is not None:
            where, leaf = bad
            what, hint = ("a constant", " (a name cannot be used inside a list)") if "in" in path else ("a value", "")
            message = f"{what} holds only numbers, not {_describe(leaf)}{hint if isinstance(leaf, str) else ''}"
            yield "CG104", message, (*path, *where), False
            return
    inner = _fitting(err)
    if inner:
        for e in inner:
            yield from _message(e, doc)
        return
    expected = _expected(err.schema)
    yield "CG100", f"{_label(field)}expected {expected}{_got(err.instance, expected)}", path, False


def _accepts_tensor(schema: dict[str, Any]) -> bool:
    branches = schema.get("anyOf", []) + schema.get("oneOf", [])
    return any(b.get("$ref") == "#/$defs/tensor" or b.get("type") == "number" for b in branches)


def _non_number(value: Any, where: tuple[int, ...] = ()) -> tuple[tuple[int, ...], Any] | None:
    """The first leaf of a nested list that is not a number, and its index path."""
    for k, item in enumerate(value):
        if isinstance(item, list):
            found = _non_number(item, (*where, k))
            if found is not None:
                return found
        elif isinstance(item, bool) or not isinstance(item, (int, float)):
            return (*where, k), item
    return None


def _fitting(err: Any) -> list[Any]:
    """Errors of the branches whose kind fits the value (e.g. the mapping branch for a mapping)."""
    by_branch: dict[Any, list[Any]] = {}
    for e in err.context:
        by_branch.setdefault(e.schema_path[0], []).append(e)
    fits = [
        errs for errs in by_branch.values()
        if not any(not e.relative_path and e.validator in ("type", "anyOf", "oneOf") for e in errs)
    ]  # fmt: skip
    return fits[0] if len(fits) == 1 else []


def _expected(schema: dict[str, Any]) -> str:
    """'an integer, a list of integers or null' from the branches, or the schema's description."""
    kinds = [_kind(b) for b in schema.get("anyOf", []) + schema.get("oneOf", [])]
    if kinds and all(kinds):
        return ", ".join(kinds[:-1]) + " or " + kinds[-1] if len(kinds) > 1 else kinds[0]
    return str(schema.get("description") or "a value of another kind")


def _kind(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if kind == "array" and isinstance(schema.get("items"), dict) and schema["items"].get("type") in PLURAL:
        return f"a list of {PLURAL[schema['items']['type']]}"
    return WHAT.get(kind) if isinstance(kind, str) and set(schema) <= {"type", "description"} else None


PLURAL = {"integer": "integers", "number": "numbers", "string": "names"}


def _label(field: str) -> str:
    return f"'{field}': " if field else ""


def _simple(err: Any, path: tuple[Any, ...]) -> tuple[str, str, tuple[Any, ...], bool]:
    """Errors about one value: its type, its allowed values, its size."""
    inst, kind, want = err.instance, err.validator, err.validator_value
    _, field = _where(path)
    label = _label(field)
    if kind == "required":
        missing = [name for name in want if isinstance(inst, dict) and name not in inst]
        return "CG100", _missing(missing, path), path, True
    if kind == "const" and path == ("cg",):
        if isinstance(inst, (int, float)) and not isinstance(inst, bool):
            return "CG100", f"unsupported format version {inst}: this cg reads 'cg: 1'", path, False
        return "CG100", f"'cg': expected the number 1 (the format version){_got(inst, '')}", path, False
    if kind == "type":
        kinds = want if isinstance(want, list) else [want]
        expected = " or ".join(WHAT[w] for w in kinds)
        hint = " like {op: neg, in: [x]}" if len(path) == 2 and path[0] == "nodes" else ""
        return "CG100", f"{label}expected {expected}{hint}{_got(inst, expected)}", path, False
    if kind == "enum":
        return "CG100", f"{label}expected one of {', '.join(map(str, want))}{_got(inst, '')}", path, False
    if kind == "pattern" and path[2:3] == ("in",):
        # In `in`, a non-name is most often arithmetic written inline, like x-1 or 2*x.
        message = f"{quote(inst)} is not the name of an input or node: {NAME_RULE}; arithmetic needs its own node"
        return "CG100", message, path, False
    if kind == "pattern":
        message = f"{quote(inst)} is not a valid name: {NAME_RULE}{_fixed_name(str(inst))}"
        return "CG100", message, path, False
    if kind == "uniqueItems":
        k, item = _repeat(inst)
        what = f"output {quote(item)}" if path == ("outputs",) else f"{label}{item}"
        return "CG100", f"{what} is listed twice", (*path, k), False
    if kind == "minimum":
        return "CG100", f"{label}must be {want} or more, got {inst}", path, False
    if kind in ("minItems", "minProperties") and path in (("outputs",), ("nodes",)):
        what = "output" if path == ("outputs",) else "node"
        return "CG100", f"'{path[0]}' is empty: a graph needs at least one {what}", path, False
    desc = err.schema.get("description")
    return "CG100", f"{label}invalid value {_describe(inst)}" + (f": expected {desc}" if desc else ""), path, False


def _missing(names: list[str], path: tuple[Any, ...]) -> str:
    if path == () and names == ["cg"]:
        return "missing 'cg: 1' (the format version); add it as the first line"
    listed = ", ".join(f"'{n}'" for n in names)
    return f"missing required key{'s' * (len(names) > 1)} {listed}"


def _repeat(items: list[Any]) -> tuple[int, Any]:
    """The index and value of the first item that repeats an earlier one."""
    seen: list[Any] = []
    for k, item in enumerate(items):
        if item in seen:
            return k, item
        seen.append(item)
    return 0, items[0] if items else None


def doc_get(doc: Document, path: tuple[Any, ...]) -> Any:
    value = doc.data
    for p in path:
        value = value[p]
    return value


def validate(doc: Document) -> list[Diagnostic]:
    """Schema errors of a document, in file order, each with its position and node."""
    out: list[Diagnostic] = []
    seen: set[tuple[Any, ...]] = set()
    for err in _validator().iter_errors(doc.data):
        for code, message, path, at_key in _message(err, doc):
            node, _ = _where(path)
            d = Diagnostic(code, message, doc.file, doc.pos(path, key=at_key), node)
            # jsonschema repeats some errors (one `required` error per missing key): say it once.
            if (code, message, d.pos) not in seen:
                seen.add((code, message, d.pos))
                out.append(d)
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
