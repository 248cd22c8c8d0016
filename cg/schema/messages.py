"""jsonschema's errors as short messages that say what to fix, at YAML positions.

jsonschema's own messages embed the repr of the failing value (megabytes on a big file), so
every message here is written from the error's path and validator instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from cg.errors import did_you_mean
from cg.ops import REGISTRY
from cg.parse.document import Document

ID_PATTERN = "^[A-Za-z_][A-Za-z0-9_]*$"


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


def locate(path: tuple[Any, ...]) -> tuple[str | None, str]:
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


def translate(err: Any, doc: Document) -> Found:
    """(code, message, path, at_key) for one jsonschema error."""
    path = tuple(err.absolute_path)
    kind = err.validator
    if "propertyNames" in err.schema_path:
        yield from _bad_name(err, path)
    elif kind in ("enum", "anyOf") and path[-1:] == ("op",) and path[:1] == ("nodes",):
        yield _unknown_op(err.instance, path)  # anyOf: neither an op nor a name (of a function)
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
    _, field = locate(path)
    if isinstance(err.instance, list) and _accepts_tensor(err.schema):
        bad = _non_number(err.instance)
        if bad is not None:
            where, leaf = bad
            in_node = path[2:3] == ("in",)
            what, hint = ("a constant", " (a name cannot be used inside a list)") if in_node else ("a value", "")
            message = f"{what} holds only numbers, not {_describe(leaf)}{hint if isinstance(leaf, str) else ''}"
            yield "CG104", message, (*path, *where), False
            return
    inner = _fitting(err)
    if inner:
        for e in inner:
            yield from translate(e, doc)
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
    found = [_kind(b) for b in schema.get("anyOf", []) + schema.get("oneOf", [])]
    kinds = [k for k in found if k is not None]
    if not kinds or len(kinds) < len(found):
        return str(schema.get("description") or "a value of another kind")
    return ", ".join(kinds[:-1]) + " or " + kinds[-1] if len(kinds) > 1 else kinds[0]


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
    _, field = locate(path)
    label = _label(field)
    if kind == "required":
        missing = [name for name in want if isinstance(inst, dict) and name not in inst]
        return "CG100", _missing(missing, path), path, True
    if kind == "not" and isinstance(want, dict) and list(want) == ["required"]:  # {not: {required: [a, b]}}
        both = " and ".join(f"'{k}'" for k in want["required"])
        return "CG100", f"{label}{both} cannot both be given: the default value is one or the other", path, False
    if kind == "dependentRequired":
        found = [(k, need) for k, need in want.items() if isinstance(inst, dict) and k in inst]
        needs = "; ".join(f"'{k}' needs '{n}'" for k, needed in found for n in needed if n not in inst)
        return "CG100", f"{label}{needs} (key names an array of the .npz archive in file)", path, False
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
    if kind == "minLength" and want == 1:
        return "CG100", f"{label}must not be empty", path, False
    if kind == "minimum":
        return "CG100", f"{label}must be {want} or more, got {inst}", path, False
    if kind == "maxItems":
        return "CG100", f"{label}has {len(inst)} entries; at most {want}", path, False
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
    """The index and value of the first item that repeats an earlier one (a set: outputs can be long)."""
    seen: set[Any] = set()
    for k, item in enumerate(items):
        key = (type(item), item if isinstance(item, (str, int, float)) else repr(item))
        if key in seen:
            return k, item
        seen.add(key)
    return 0, items[0] if items else None


def doc_get(doc: Document, path: tuple[Any, ...]) -> Any:
    value = doc.data
    for p in path:
        value = value[p]
    return value


