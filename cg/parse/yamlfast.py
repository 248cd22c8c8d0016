"""The fast path of the YAML reader: libyaml's events straight into plain data, in one loop.

cg/parse/yamldoc.py's builder records the path and the position of every value and collects every
problem of a file; on a 100,000-node file that bookkeeping cost three times the parse. A valid
file needs none of it, so this loop builds the data only and gives up, returning None, at the
first thing that is not plainly fine: an anchor or alias, a tag it does not know, a duplicate key, a number cg
refuses, a limit, a second document, a syntax error, a top level that is not a mapping. The full builder
then reads the file again and is the one that reports (so every message, and every decision on
what is accepted, stays in one place); it also runs when a diagnostic later needs a position
(cg/parse/document.py).

The rules are cg/parse/yamldoc.py's (YAML 1.2 scalars, no aliases, limits); tests/parse/test_yamlfast.py
checks that both paths give the same data on every file of the test corpora.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from cg.parse.yaml12 import _BOOLS, _COLLECTION_TAGS, _NULLS, _NUMBER_START, _resolve_plain, resolve_scalar

# What plain scalars that are not names or numbers read as: null and the booleans.
_SPECIAL: dict[str, Any] = {**dict.fromkeys(_NULLS), **_BOOLS}


class _GiveUp(Exception):
    """Something the full builder must look at."""


def read(source: str, loader: Any, max_depth: int, max_values: int) -> dict[Any, Any] | None:
    """The document's data, or None: then the full builder decides (and reports). Never raises."""
    events: Any = yaml.parse(source, Loader=loader)
    try:
        return _walk(events, max_depth, max_values)
    except Exception:  # anything odd (a bad file, a parser quirk) is the full builder's to report
        return None
    finally:
        events.close()  # frees libyaml's parser now, not at garbage collection


def _walk(events: Iterator[Any], max_depth: int, max_values: int) -> dict[Any, Any]:
    scalar_event, mapping_start, sequence_start = yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent
    mapping_end, sequence_end = yaml.MappingEndEvent, yaml.SequenceEndEvent
    document_start, alias = yaml.DocumentStartEvent, yaml.AliasEvent
    special, number_start, resolve_plain, collection_tags = _SPECIAL, _NUMBER_START, _resolve_plain, _COLLECTION_TAGS
    no_key: Any = _GiveUp  # a sentinel that no scalar equals
    stack: list[Any] = []  # the open collections, outermost first
    top: Any = None  # the innermost open collection
    in_map = False
    key: Any = no_key  # in a mapping: the key whose value comes next
    root: Any = None
    values = documents = 0
    for event in events:
        kind = event.__class__  # exact types, as in yamldoc: cheaper than isinstance
        if kind is scalar_event:
            values += 1
            if event.anchor is not None:
                raise _GiveUp("an anchor")
            value = event.value
            if event.tag is None:
                if event.implicit[0]:  # plain; quoted and block scalars are strings
                    if value in special:
                        value = special[value]
                    elif value[0] in number_start:
                        value = resolve_plain(value)  # raises on .nan, 1e999, 101 digits
            else:
                value = resolve_scalar(event)
            if in_map:
                if key is no_key:
                    if value in top:
                        raise _GiveUp("duplicate key")
                    key = value
                else:
                    top[key] = value
                    key = no_key
            elif top is not None:
                top.append(value)
            else:
                raise _GiveUp("a scalar document")
        elif kind is mapping_start or kind is sequence_start:
            values += 1
            if event.tag not in collection_tags or len(stack) >= max_depth or event.anchor is not None:
                raise _GiveUp("tag, depth or anchor")
            new: Any = {} if kind is mapping_start else []
            if in_map:
                if key is no_key:
                    raise _GiveUp("a collection as a key")
                top[key] = new
                key = no_key
            elif top is not None:
                top.append(new)
            else:
                root = new
            stack.append(new)
            top = new
            in_map = kind is mapping_start
        elif kind is mapping_end or kind is sequence_end:
            stack.pop()
            top = stack[-1] if stack else None
            in_map = type(top) is dict
        elif kind is document_start:
            documents += 1
            if documents > 1:
                raise _GiveUp("a second document")
        elif kind is alias:
            raise _GiveUp("an alias")
        if values > max_values:
            raise _GiveUp("too many values")
    if type(root) is not dict:
        raise _GiveUp("not a mapping")
    return root
