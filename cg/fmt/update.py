"""New default values for some inputs of a graph file, written through cg fmt's tree so that every
comment stays where it was (`cg train --update`). An input written as a number or a list gets the
new value in its place; one written as a mapping gets a new `value:`; one that reads its value from
a file (`file:`) is refused: the file is the place to update."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from cg.errors import CgError, UsageError
from cg.fmt.tree import Coll, Entry, Scalar, read_tree
from cg.fmt.write import write_tree


def _number(v: Any) -> Scalar:
    return Scalar(float(v), repr(float(v)))


def _value(array: np.ndarray, at: Entry) -> Scalar | Coll:
    """The tree of a value: numbers, and lists of them as deep as the array."""
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 0:
        return _number(array)
    coll = Coll(False, [], at)
    for row in array:
        item = Entry(None, _number(0.0), coll, at.line, at.col)
        item.value = _value(row, item)
        coll.entries.append(item)
    return coll


def _entry(coll: Coll, key: str) -> Entry | None:
    return next((e for e in coll.entries if e.key is not None and e.key.value == key), None)


def update_defaults(source: str, file: str, values: Mapping[str, np.ndarray]) -> str:
    """The file's text with these inputs' defaults replaced; UsageError for an input that is not
    written in the file or takes its value from a file, CgError if a comment would be lost."""
    tree = read_tree(source.removeprefix("\ufeff"))
    inputs = _entry(tree.root, "inputs")
    if inputs is None or not isinstance(inputs.value, Coll):
        raise UsageError.one("CG300", "--update: the graph file has no inputs to update", file=file)
    for name, value in values.items():
        entry = _entry(inputs.value, name)
        if entry is None:
            raise UsageError.one("CG300", f"--update: input {name!r} is not written in the file", file=file)
        target = entry
        if isinstance(entry.value, Coll) and entry.value.is_map:
            if _entry(entry.value, "file") is not None:
                raise UsageError.one("CG300", f"--update: input {name!r} reads its value from a file; write the "
                                     "parameters there instead (-o)", file=file)
            target = _entry(entry.value, "value") or entry
            if target is entry:  # a mapping without a value (shape only): add one
                target = Entry(Scalar("value", None), _number(0.0), entry.value, entry.line, entry.col)
                entry.value.entries.insert(0, target)
        target.value = _value(value, target)
    text = write_tree(tree)
    again = read_tree(text)
    if sorted(again.comments) != sorted(tree.comments):
        raise CgError.one("CG500", "--update could not keep every comment of the file, so it is left as it is",
                          file=file)
    return text
