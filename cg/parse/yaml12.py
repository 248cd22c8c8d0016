"""YAML 1.2 core-schema scalars, as cg reads them (the rules are listed in cg/parse/yamldoc.py):
shared by the positioned walk (yamldoc.py) and the data-only walk (yamlfast.py)."""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

from cg.parse.source import short as _short

MAX_INT_DIGITS = 100


class _BadScalar(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


_COLLECTION_TAGS = {None, "!", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}


# ---------------------------------------------------------------- scalars


_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NUMBER_START = frozenset("0123456789+-.")
_INT = re.compile(r"[-+]?[0-9]+")
_OCT = re.compile(r"0o[0-7]+")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_NON_FINITE = re.compile(r"[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)")
_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS: dict[str, type | None] = {
    "!": str, _CORE + "str": str, _CORE + "int": int, _CORE + "float": float,
    _CORE + "bool": bool, _CORE + "null": type(None),
}  # fmt: skip


def resolve_scalar(event: yaml.ScalarEvent) -> Any:
    """A scalar event's value by the rules above; a ValueError (_BadScalar: code, message) if refused."""
    if event.tag is None:
        # implicit[0] is "plain, untagged": libyaml gives plain scalars style '' not None.
        return _resolve_plain(event.value) if event.implicit[0] else event.value
    wanted = _SCALAR_TAGS.get(event.tag)
    if wanted is None:
        raise _BadScalar("CG005", _unsupported_tag(event.tag))
    if wanted is str:
        return event.value
    value = _resolve_plain(event.value)
    if wanted is float and type(value) is int:
        value = float(value)
    if type(value) is not wanted:
        raise _BadScalar("CG005", f"'{_short(event.value)}' is not a valid {_tag_name(event.tag)}")
    return value


def plain_value(text: str) -> Any:
    """What a plain (unquoted, untagged) scalar reads as; ValueError if cg refuses it (.nan, 1e999)."""
    try:
        return _resolve_plain(text)
    except _BadScalar as bad:
        raise ValueError(bad.message) from None


def _resolve_plain(text: str) -> Any:
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    if text[0] not in _NUMBER_START:  # fast path: most scalars in a graph are names
        return text
    if _INT.fullmatch(text):
        return _to_int(text, text.lstrip("+-"), 10)
    if _HEX.fullmatch(text):
        return _to_int(text, text[2:], 16)
    if _OCT.fullmatch(text):
        return _to_int(text, text[2:], 8)
    if _FLOAT.fullmatch(text):
        number = float(text)
        if math.isinf(number):
            raise _BadScalar("CG007", f"number out of range: {_short(text)} (the limit is about 1.8e308)")
        return number
    if _NON_FINITE.fullmatch(text):
        raise _BadScalar("CG007", "non-finite numbers (.nan, .inf) are not allowed in graph files")
    return text


def _to_int(text: str, digits: str, base: int) -> int:
    # Checked before int(): Python refuses > 4300 digits, and nothing in a graph needs 100.
    if len(digits) > MAX_INT_DIGITS:
        raise _BadScalar("CG007", f"number too long ({len(digits)} digits; at most {MAX_INT_DIGITS})")
    number = int(digits, base)
    return -number if text.startswith("-") else number


def _unsupported_tag(tag: str | None) -> str:
    return f"tag {_tag_name(tag)} is not supported in graph files; remove it"


def _tag_name(tag: str | None) -> str:
    tag = tag or "!"
    return _short("!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag)


