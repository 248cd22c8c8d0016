"""The fast path of schema validation: Python checks that recognise documents and nodes that
certainly satisfy the JSON Schema of cg/schema/schemas.py.

jsonschema costs about 90 us per node (28 per-op `if` rules each) and 70 ms to import; these
checks cost about 1 us per node. They accept a subset of what the schema accepts and answer
"certainly valid" or "not sure": anything unusual (a function call, an integer written 2.0,
an unknown key, any error at all) goes to jsonschema, which stays the authority and writes
every message. tests/schema/test_schema.py checks the subset on every graph of the corpora and on
mutations of them.
"""

from __future__ import annotations

import re
from typing import Any

from cg.ops import REGISTRY
from cg.schema.messages import ID_PATTERN

_ID = re.compile(ID_PATTERN)  # searched, as jsonschema does with `pattern`
_TOP = frozenset({"cg", "name", "doc", "inputs", "nodes", "outputs", "expect"})
_INPUT = frozenset({"value", "file", "key", "shape", "dtype", "doc"})
_EXPECT = frozenset({"inputs", "of", "tol", "rtol", "values", "grads"})


def is_id(value: Any) -> bool:
    return type(value) is str and _ID.search(value) is not None


def is_tensor(value: Any) -> bool:
    """A number or a nested list of numbers (ragged lists included, as in the schema)."""
    kind = type(value)
    if kind is int or kind is float:
        return True
    if kind is not list:
        return False
    stack = [value]  # depth is bounded by the readers' limit; no recursion anyway
    while stack:
        for item in stack.pop():
            kind = type(item)
            if kind is list:
                stack.append(item)
            elif kind is not int and kind is not float:
                return False
    return True


def plain_document(data: Any) -> bool:
    """True if the whole document certainly satisfies the schema (then jsonschema is not needed)."""
    if type(data) is not dict or type(data.get("cg")) is not int or data["cg"] != 1 or not data.keys() <= _TOP:
        return False
    if "nodes" not in data or "outputs" not in data:
        return False
    if any(key in data and type(data[key]) is not str for key in ("name", "doc")):
        return False
    inputs, nodes, outputs = data.get("inputs", {}), data["nodes"], data["outputs"]
    if type(inputs) is not dict or not all(is_id(name) and _plain_input(spec) for name, spec in inputs.items()):
        return False
    if type(outputs) is not list or not outputs or not all(map(is_id, outputs)) or len(set(outputs)) < len(outputs):
        return False
    if "expect" in data and not _plain_expect(data["expect"]):
        return False
    return type(nodes) is dict and len(nodes) > 0 and all(plain_node(nid, spec) for nid, spec in nodes.items())


def plain_node(nid: Any, spec: Any) -> bool:
    """True for a node that certainly satisfies the schema: a registered op, its arity, its
    attributes, and arguments that are ids or constants."""
    if type(spec) is not dict or type(nid) is not str or _ID.search(nid) is None:
        return False
    name, args = spec.get("op"), spec.get("in")
    op = REGISTRY.get(name) if type(name) is str else None
    if op is None or type(args) is not list:
        return False
    lo, hi = op.arity
    if len(args) < lo or (hi is not None and len(args) > hi):
        return False
    attrs = op.attrs
    for key, value in spec.items():
        if key == "op" or key == "in":
            continue
        if key == "doc":
            if type(value) is not str:
                return False
            continue
        attr = attrs.get(key)
        if attr is None or fits(value, attr.schema) is not True:
            return False
    if attrs and any(attr.required and key not in spec for key, attr in attrs.items()):
        return False
    for arg in args:
        kind = type(arg)
        if kind is str:
            if _ID.search(arg) is None:
                return False
        elif kind is not int and kind is not float and not (kind is list and is_tensor(arg)):
            return False
    return True


def _plain_input(spec: Any) -> bool:
    if type(spec) is not dict:
        return is_tensor(spec)
    if not spec.keys() <= _INPUT or ("value" in spec and not is_tensor(spec["value"])):
        return False
    if "file" in spec and ("value" in spec or type(spec["file"]) is not str or not spec["file"]):  # value or file
        return False
    if "key" in spec and ("file" not in spec or type(spec["key"]) is not str or not spec["key"]):  # key with file
        return False
    if "dtype" in spec and spec["dtype"] not in ("float", "int"):  # enum: both strings
        return False
    if "doc" in spec and type(spec["doc"]) is not str:
        return False
    shape = spec.get("shape", [])
    return type(shape) is list and all(type(n) is int and n >= 0 for n in shape)


def _plain_expect(block: Any) -> bool:
    if type(block) is not dict or not block.keys() <= _EXPECT:
        return False
    for key in ("inputs", "values", "grads"):
        named = block.get(key, {})
        if type(named) is not dict or not all(is_id(name) and is_tensor(v) for name, v in named.items()):
            return False
    if "of" in block and not is_id(block["of"]):
        return False
    return all(type(block.get(key, 0)) in (int, float) and block.get(key, 0) >= 0 for key in ("tol", "rtol"))


# ---------------------------------------------------------------- attribute schemas


def fits(value: Any, schema: dict[str, Any]) -> bool | None:
    """Whether value satisfies a small JSON Schema (an attribute's): True, False, or None when
    these checks cannot tell (a keyword they do not know, an integer written as 2.0)."""
    result: bool | None = True
    for key, want in schema.items():
        if key == "description":
            continue
        if key == "type":
            found = _type_fits(value, want)
        elif key == "items":
            found = _all(fits(item, want) for item in value) if type(value) is list else True
        elif key == "uniqueItems":
            found = _unique(value) if want and type(value) is list else True
        elif key in ("oneOf", "anyOf"):
            branches = [fits(value, branch) for branch in want]
            if key == "anyOf" and True in branches:
                found = True
            else:  # oneOf needs every branch decided: exactly one may match
                found = None if None in branches else branches.count(True) == 1 if key == "oneOf" else False
        elif key in ("enum", "const"):
            options = want if key == "enum" else [want]
            # JSON equality differs from Python's for booleans and numbers: decide for strings only.
            found = value in options if type(value) is str and all(type(o) is str for o in options) else None
        elif key == "minimum":
            found = value >= want if type(value) in (int, float) else True  # numbers only
        else:
            return None
        if found is False:
            return False
        if found is None:
            result = None
    return result


_KINDS: dict[str, tuple[type, ...]] = {
    "number": (int, float), "boolean": (bool,), "null": (type(None),), "string": (str,), "array": (list,),
    "object": (dict,),
}  # fmt: skip


def _type_fits(value: Any, want: str | list[str]) -> bool | None:
    found: bool | None = False
    for name in want if isinstance(want, list) else [want]:
        if name == "integer":
            if type(value) is int:
                return True
            if type(value) is float and value.is_integer():
                found = None  # jsonschema counts 2.0 as an integer; let it say so
        elif name not in _KINDS:
            return None
        elif type(value) in _KINDS[name]:
            return True
    return found


def _all(results: Any) -> bool | None:
    out: bool | None = True
    for r in results:
        if r is False:
            return False
        if r is None:
            out = None
    return out


def _unique(items: list[Any]) -> bool | None:
    if all(type(i) is int for i in items) or all(type(i) is str for i in items):
        return len(set(items)) == len(items)
    return None
