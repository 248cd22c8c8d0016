"""The JSON Schema of snapshots (what `cg check --against` and `cg.check(against=...)` compare a run
with), and the validation of a snapshot document with messages at positions.

Two formats: the partial one, `{"values": {name: value}, "grads": {name: gradient}}` with optional
`inputs` and `of` (schema/snapshot.schema.json is a copy of `snapshot_schema()`), and a whole
result of `cg run --format json` (schema/result.schema.json), told apart by its `nodes` list. A
saved result is validated with its `required` lists relaxed to what a comparison reads (`nodes`,
and each node's `id` and `value`), so results written by hand or by older versions still load.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from cg.errors import Diagnostic
from cg.parse.document import Document
from cg.schema.messages import translate
from cg.schema.schemas import result_schema

SNAPSHOT_ID = "urn:cg:schema:snapshot:1"
NONFINITE = ("NaN", "Infinity", "-Infinity")  # how JSON results write what strict JSON cannot


def snapshot_schema() -> dict[str, Any]:
    """The partial format (schema/snapshot.schema.json is a copy)."""
    number = {"anyOf": [{"type": "number"}, {"enum": list(NONFINITE)}]}
    tensor = {
        "description": "a number or a nested list of numbers (NaN and infinities as the strings \"NaN\","
        " \"Infinity\", \"-Infinity\")",
        "anyOf": [number, {"type": "array", "items": {"$ref": "#/$defs/tensor"}}],
    }

    def named(what: str) -> dict[str, Any]:
        return {"description": what, "type": "object", "additionalProperties": {"$ref": "#/$defs/tensor"}}

    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SNAPSHOT_ID,
        "title": "cg snapshot",
        "description": "Values and gradients to compare a graph's run with (`cg check FILE --against"
        " SNAPSHOT`, `cg.check(graph, against=...)`): any subset of the graph's inputs and nodes; names left"
        " out are not compared, names the graph does not have are errors. A whole result of `cg run"
        " --format json` (schema/result.schema.json) is accepted too.",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "of": {
                "description": "the output differentiated: grads are d(of)/d(name) (default: the graph's first"
                " output)",
                "type": "string",
            },
            "inputs": named("the point: input name -> value, over the graph's defaults (`--inputs` on the"
                            " command line, and `inputs=` in Python, win over it)"),
            "values": named("input or node name -> its value at the point"),
            "grads": named("input or node name -> its gradient d(of)/d(name) at the point"),
        },
        "$defs": {"tensor": tensor},
    }


def _relaxed_result_schema() -> dict[str, Any]:
    """The result schema, requiring only what a comparison reads."""
    schema = copy.deepcopy(result_schema())
    schema["required"] = ["nodes"]
    schema["properties"]["nodes"]["items"]["required"] = ["id", "value"]
    return schema


@lru_cache(maxsize=2)
def _validator(full: bool) -> Any:
    from jsonschema import Draft202012Validator  # ~70 ms: only for a snapshot with a problem

    return Draft202012Validator(_relaxed_result_schema() if full else snapshot_schema())


def is_full(data: Any) -> bool:
    """A whole result of `cg run --format json` (it lists its nodes), not the partial format."""
    return isinstance(data, dict) and "nodes" in data


def validate_snapshot(doc: Document) -> list[Diagnostic]:
    """Schema errors of a snapshot document (either format), in file order, each at its position
    (a problem inside `values` or `grads` says 'values.W1': ..., one inside `inputs` names the input)."""
    out: list[Diagnostic] = []
    seen: set[tuple[Any, ...]] = set()
    for err in _validator(is_full(doc.data)).iter_errors(doc.data):
        for code, message, path, at_key in translate(err, doc):
            name = path[1] if len(path) >= 2 and path[0] == "inputs" and isinstance(path[1], str) else None
            d = Diagnostic(code, message, doc.file, doc.pos(path, key=at_key), name)
            if (code, message, d.pos) not in seen:
                seen.add((code, message, d.pos))
                out.append(d)
    out.sort(key=lambda d: (d.pos.line, d.pos.col) if d.pos else (0, 0))
    return out
