"""The JSON Schemas of graph files (generated from the op registry) and of run results, and
schema validation of a document (messages: cg/schema/messages.py)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from cg.errors import Diagnostic
from cg.ops import REGISTRY, Op, revision
from cg.parse.document import Document
from cg.schema.fast import plain_document, plain_node
from cg.schema.messages import ID_PATTERN, locate, translate

SCHEMA_ID = "urn:cg:schema:graph:1"
_ID = re.compile(ID_PATTERN)  # searched, as jsonschema does with `pattern`


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


def graph_schema(*, strict_ops: bool = True) -> dict[str, Any]:
    """The schema of format version 1, built from the registry (schema/graph.schema.json is a copy).

    strict_ops: a file with no `functions` and no `imports` can only name built-in ops, so the
    published schema says so with an enum, and editors and check-jsonschema flag `op: ad` with the
    list of ops. cg validates without that rule: its own CG101 says the same once, with a "did you
    mean", where the enum would add a second message for the same mistake."""
    ops = list(REGISTRY.values())

    def named(what: str) -> dict[str, Any]:
        """A mapping from input or node names to numbers or nested lists."""
        return {
            "description": what,
            "type": "object",
            "propertyNames": {"$ref": "#/$defs/id"},
            "additionalProperties": {"$ref": "#/$defs/tensor"},
        }

    expect = {
        "description": "what the graph must give, checked by `cg check`: values and gradients at a point",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "inputs": named("the point: input name -> value, over the inputs' defaults"),
            "of": {"description": "the output differentiated (default: the first output)", "$ref": "#/$defs/id"},
            "tol": {
                "description": "absolute tolerance (default 0.0001, for numbers copied from `cg run`, which prints"
                " 4 decimals); a number passes when |actual - expected| <= tol + rtol * |expected|",
                "type": "number",
                "minimum": 0,
            },
            "rtol": {"description": "relative tolerance (default 0)", "type": "number", "minimum": 0},
            "values": named("input or node name -> its expected value"),
            "grads": named("input or node name -> its expected gradient d(of)/d(name)"),
        },
    }
    builtin_only = {  # no functions, no imports: every `op` is a built-in op
        "if": {"not": {"anyOf": [{"required": ["functions"]}, {"required": ["imports"]}]}},
        "then": {
            "properties": {
                "nodes": {
                    "description": "nodes whose ops are all built-in ops",
                    "additionalProperties": {"$ref": "#/$defs/builtin_node"},
                }
            }
        },
    }
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "cg graph, format version 1",
        "description": "A computational graph: inputs (leaves), nodes (op + ordered inputs) and outputs.",
        "type": "object",
        # A graph has nodes and outputs; a library file (functions only, for `imports`) has neither.
        "if": {"required": ["functions"], "not": {"anyOf": [{"required": ["nodes"]}, {"required": ["outputs"]}]}},
        "then": {"required": ["cg", "functions"]},
        "else": {"required": ["cg", "nodes", "outputs"]},
        "additionalProperties": False,
        "properties": {
            "cg": {"description": "format version; must be 1", "const": 1},
            "name": {"description": "graph name; defaults to the file's stem", "type": "string"},
            "doc": {"description": "what the graph computes, in words or a formula", "type": "string"},
            "inputs": {
                "description": "the graph's leaves: name -> default value, or {value or file and key, shape, dtype,"
                " doc}",
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
            "expect": expect,
            "imports": {
                "description": "library files whose functions this file calls: paths relative to this file"
                " (inside the folder of the file cg is given), or cg:nn, the library shipped with cg",
                "type": "array",
                "uniqueItems": True,
                "items": {"description": "a path like lib/more.yaml, or cg:nn", "type": "string", "minLength": 1},
            },
            "functions": {
                "description": "composite gates: name -> {doc, inputs, nodes, output}; a node calls one as"
                " `op: name`, like a built-in op",
                "type": "object",
                "propertyNames": {"$ref": "#/$defs/id"},
                "additionalProperties": {"$ref": "#/$defs/function"},
            },
        },
        "$defs": {
            "function": {
                "description": "a named gate: its ordered inputs, its own nodes, and the node it returns",
                "type": "object",
                "required": ["inputs", "nodes", "output"],
                "additionalProperties": False,
                "properties": {
                    "doc": {"description": "what the function computes (one line)", "type": "string"},
                    "inputs": {
                        "description": "the parameters, in the order a call passes its `in` list",
                        "type": "array",
                        "uniqueItems": True,
                        "items": {"$ref": "#/$defs/id"},
                    },
                    "nodes": {
                        "description": "node id -> {op, in, attributes...}, as in a graph; ids are local",
                        "type": "object",
                        "propertyNames": {"$ref": "#/$defs/id"},
                        "additionalProperties": {"$ref": "#/$defs/node"},
                    },
                    "output": {"description": "the node whose value the call returns", "$ref": "#/$defs/id"},
                },
            },
            "id": {
                "description": "a name: letters, digits and _, not starting with a digit",
                "type": "string",
                "pattern": ID_PATTERN,
            },
            "tensor": _tensor(),
            "input": {
                "description": "a number, a nested list of numbers, or a mapping with value (or file and key),"
                " shape, dtype and doc",
                "anyOf": [
                    {"$ref": "#/$defs/tensor"},
                    {
                        "type": "object",
                        "additionalProperties": False,
                        # The default value is written inline or read from a file, not both.
                        "not": {"required": ["value", "file"]},
                        "dependentRequired": {"key": ["file"]},
                        "properties": {
                            "value": {"description": "default value", "$ref": "#/$defs/tensor"},
                            "file": {
                                "description": "the default value from a file saved by numpy: a .npy file, or an"
                                " .npz archive with key; relative to this file's folder, and inside it (or inside"
                                " a folder allowed with `cg --allow-path DIR`)",
                                "type": "string",
                                "minLength": 1,
                            },
                            "key": {
                                "description": "the name of the array in the .npz archive of file (numpy.savez's"
                                " keyword)",
                                "type": "string",
                                "minLength": 1,
                            },
                            "shape": {
                                "description": "the shape; without it, the shape of value (or of the array in"
                                " file), or a scalar",
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
                "description": "one operation: op, the ordered list of its inputs, and its attributes; or an"
                " expression, {expr: \"x*y + 1\"}, which becomes one node per operation",
                "type": "object",
                # Written as if/else so that a node missing `in` still says "missing required key 'in'".
                "if": {"required": ["expr"]},
                "else": {"required": ["op", "in"]},
                "properties": {
                    "expr": {
                        "description": "an expression of the graph's inputs and nodes, e.g. log(3*x**2 + 5*x*y);"
                        " `cg ops` lists the functions it may call",
                        "type": "string",
                    },
                    "op": {
                        "description": "the operation: a built-in op, or a function (from `functions` or an import)",
                        "anyOf": [{"enum": [op.name for op in ops]}, {"type": "string", "pattern": ID_PATTERN}],
                    },
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
            "builtin_node": {
                "description": "a node of a file without functions or imports: its op is a built-in op",
                # Only where an op is given: expression nodes have none.
                "properties": {"op": {"description": "a built-in op (`cg ops` lists them)", "enum": list(REGISTRY)}},
            },
        },
    }
    if strict_ops:
        schema["allOf"] = [builtin_only]
    else:
        del schema["$defs"]["builtin_node"]
    return schema


def _validator() -> Any:
    return _validator_of(revision())  # made again when cg.ops.installed changes the ops (tests)


@lru_cache(maxsize=1)
def _validator_of(ops_revision: int) -> Any:
    # Imported here: jsonschema costs ~70 ms to import, and most commands never need it.
    from jsonschema import Draft202012Validator

    return Draft202012Validator(graph_schema(strict_ops=False))  # CG101 reports unknown ops (graph_schema)


def _plain_node(nid: Any, spec: Any) -> bool:
    """True for a node that certainly satisfies the schema (cg/schema/fast.py). Most nodes of big
    graphs are like that, and checking them there instead of through 28 per-op `if` rules is 100x
    cheaper. Anything else goes to jsonschema, which stays the authority (and writes the messages)."""
    return plain_node(nid, spec)


def _to_check(data: Any) -> Any:
    """The document with its plain nodes left out (one is kept, so `nodes` is never empty)."""
    nodes = data.get("nodes") if isinstance(data, dict) else None
    if not isinstance(nodes, dict) or len(nodes) < 2:
        return data
    kept = {nid: spec for nid, spec in nodes.items() if not _plain_node(nid, spec)}
    if not kept:
        first = next(iter(nodes))
        kept = {first: nodes[first]}
    return {**data, "nodes": kept}


def validate(doc: Document) -> list[Diagnostic]:
    """Schema errors of a document, in file order, each with its position and node."""
    if plain_document(doc.data):  # certainly valid: jsonschema is neither imported nor run
        return []
    out: list[Diagnostic] = []
    seen: set[tuple[Any, ...]] = set()
    for err in _validator().iter_errors(_to_check(doc.data)):
        for code, message, path, at_key in translate(err, doc):
            node, _ = locate(path)
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
        "required": ["graph", "file", "mode", "of", "wrt", "outputs", "nodes", "nonfinite"],
        "additionalProperties": False,
        "properties": {
            "graph": {"description": "the graph's name", "type": "string"},
            "file": {"description": "the graph file that was run", "type": "string"},
            "mode": {
                "description": "reverse (grad: d of / d node) or forward (tangent: d node / d direction)",
                "enum": ["reverse", "forward"],
            },
            "of": {"description": "the differentiated output; grads are d(of)/d(node)", "type": ["string", "null"]},
            "wrt": {
                "description": "forward mode: the inputs that were given a tangent",
                "type": "array",
                "items": {"type": "string"},
            },
            "outputs": {"description": "the graph's outputs", "type": "array", "items": {"type": "string"}},
            "nodes": {
                "description": "inputs first, then nodes, in topological order",
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "op", "in", "shape", "value", "grad", "on_path"],
                    "additionalProperties": False,
                    "properties": {
                        "id": {"description": "input name or node id", "type": "string"},
                        "op": {
                            "description": "the op, 'input' for a leaf, or for a composite shown as one node (without"
                            " --expand) the function it calls or its expression",
                            "type": "string",
                        },
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
                        "tangent": {
                            "description": "forward mode: d(this)/d(direction); null for integer values",
                            "anyOf": [{"type": "null"}, {"$ref": "#/$defs/tensor"}],
                        },
                        "on_path": {
                            "description": "whether a path joins this to `of` (reverse) or to the tangents (forward);"
                            " where not, the derivative is 0 because nothing connects them",
                            "type": "boolean",
                        },
                    },
                },
            },
            "edges": {
                "description": "with --edges: every edge with its local derivative and the gradient it carries back",
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["from", "to", "arg", "from_shape", "to_shape", "formula", "formula_latex",
                                 "formula_kind", "local", "flow"],
                    "additionalProperties": False,
                    "properties": {
                        "from": {"description": "the input or node the edge leaves", "type": "string"},
                        "to": {"description": "the node the edge enters", "type": "string"},
                        "arg": {"description": "argument position in the node's `in` list", "type": "integer"},
                        "from_shape": {"description": "shape of `from`", "type": "array", "items": {"type": "integer"}},
                        "to_shape": {"description": "shape of `to`", "type": "array", "items": {"type": "integer"}},
                        "formula": {
                            "description": "the op's local derivative in the node's names (`1/e`, `2x`); null for an"
                                           " integer argument",
                            "type": ["string", "null"],
                        },
                        "formula_latex": {"description": "`formula` in LaTeX", "type": ["string", "null"]},
                        "formula_kind": {
                            "description": "`local`: d to / d from, elementwise; `vjp`: the gradient of `from` in terms"
                                           " of g, the gradient of `to`",
                            "enum": ["local", "vjp", None],
                        },
                        "local": {
                            "description": "d to / d from here, shape to_shape + from_shape; null when too big",
                            "anyOf": [{"type": "null"}, {"$ref": "#/$defs/tensor"}],
                        },
                        "flow": {
                            "description": "the gradient flowing back along the edge: its share of grad[from]",
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
