"""Snapshots: the values and gradients a run is compared with (`cg check --against`,
`cg.check(against=...)`). Read from a file (a result saved by `cg run --format json`, or the partial
format of schema/snapshot.schema.json), from a mapping in the partial format, or from a Result.

A document is read by plain Python first; only when something is off does jsonschema look at it
(cg/schema/snapshot.py), to say what is wrong at its line and column. Every problem is a
SnapshotError (exit code 1); a file that cannot be read at all raises the error class the caller
names (the command line: UsageError, as for any file named on it).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from cg.errors import CgError, Diagnostic, LoadError, Pos, SnapshotError
from cg.eval.interp import Result
from cg.files import read_regular
from cg.limits import Limits, current
from cg.parse.document import Document
from cg.parse.jsondoc import load_text
from cg.schema.snapshot import NONFINITE, is_full, validate_snapshot

SECTIONS = ("inputs", "values", "grads")
EXAMPLE = '{"values": {...}, "grads": {...}}'


@dataclass(frozen=True)
class Snapshot:
    """What a run is compared with: the output differentiated, values and gradients by name, and
    the point they were taken at (the partial format's `inputs`; a Result's inputs)."""

    of: str | None
    values: Mapping[str, np.ndarray]
    grads: Mapping[str, np.ndarray | None]  # None: an integer, which has no gradient (saved results)
    inputs: Mapping[str, np.ndarray] = field(default_factory=dict)
    full: bool = True  # a whole result: every id of the view it was saved in is compared
    file: str = ""  # for messages
    doc: Document | None = field(default=None, compare=False, repr=False)  # where each name is written

    def where(self, *path: str) -> Pos | None:
        """Where a key of a partial snapshot read from a file is written: where("grads", "W1")."""
        return self.doc.pos(path, key=True) if self.doc is not None and not self.full else None


class _Bad(Exception):
    """The first problem plain Python finds; jsonschema then says it better, if it can."""

    def __init__(self, code: str, message: str, path: tuple[Any, ...]) -> None:
        super().__init__(message)
        self.code, self.message, self.path = code, message, path


def tensor(value: Any) -> np.ndarray | None:
    """A number or a rectangular nested list of numbers ("NaN", "Infinity", "-Infinity" allowed) as
    float64; None for anything else."""
    stack = [value]
    while stack:
        x = stack.pop()
        if type(x) is list:
            stack.extend(x)
        elif isinstance(x, bool) or not (isinstance(x, numbers.Real) or (type(x) is str and x in NONFINITE)):
            return None
    try:
        return np.array(value, dtype=np.float64)  # the strings become NaN and infinities
    except (ValueError, OverflowError):  # ragged
        return None


def _tensor_at(value: Any, path: tuple[Any, ...]) -> np.ndarray:
    found = tensor(value)
    if found is None:
        label = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        raise _Bad("CG104", f"'{label}': expected a number or a rectangular nested list of numbers", path)
    return found


# ---- documents ----------------------------------------------------------------------------------


def from_document(doc: Document) -> Snapshot:
    """A snapshot document of either format; SnapshotError, with positions, if it is not one."""
    try:
        return _full(doc) if is_full(doc.data) else _partial(doc)
    except _Bad as bad:
        found = validate_snapshot(doc)
        raise SnapshotError(found or [Diagnostic(bad.code, bad.message, doc.file, doc.pos(bad.path))]) from None


def _full(doc: Document) -> Snapshot:
    """A result of `cg run --format json`: reverse mode, each node's id, value and gradient."""
    data = doc.data
    if data.get("mode", "reverse") != "reverse":
        raise _Bad("CG402", "a forward-mode result (`cg run --wrt`): cg check compares gradients; save the"
                   " result without --wrt", ("mode",))
    of, nodes = data.get("of"), data["nodes"]
    if not isinstance(nodes, list) or not (of is None or isinstance(of, str)):
        raise _Bad("CG100", "not a result of `cg run --format json`", ())
    values: dict[str, np.ndarray] = {}
    grads: dict[str, np.ndarray | None] = {}
    for k, node in enumerate(nodes):
        if not isinstance(node, dict) or not isinstance(node.get("id"), str) or "value" not in node:
            raise _Bad("CG100", "expected a node of a result, with its id, value and grad", ("nodes", k))
        values[node["id"]] = _tensor_at(node["value"], ("nodes", k, "value"))
        grad = node.get("grad")
        grads[node["id"]] = None if grad is None else _tensor_at(grad, ("nodes", k, "grad"))
    return Snapshot(of, values, grads, full=True, file=doc.file, doc=doc)


def _partial(doc: Document) -> Snapshot:
    """The partial format: any of of, inputs, values, grads; at least one value or gradient."""
    data = doc.data
    if not isinstance(data, dict) or set(data) - {"of", *SECTIONS}:
        raise _Bad("CG100", f"expected a snapshot like {EXAMPLE}", ())
    if not isinstance(data.get("of", ""), str):
        raise _Bad("CG100", "'of': expected the name of an output", ("of",))
    found: dict[str, dict[str, np.ndarray]] = {}
    for section in SECTIONS:
        entries = data.get(section, {})
        if not isinstance(entries, dict) or not all(isinstance(name, str) for name in entries):
            raise _Bad("CG100", f"'{section}': expected a mapping of names to values", (section,))
        found[section] = {name: _tensor_at(v, (section, name)) for name, v in entries.items()}
    if not found["values"] and not found["grads"]:
        raise _Bad("CG402", f"the snapshot compares nothing: give `values` or `grads` ({EXAMPLE})", ())
    return Snapshot(data.get("of"), found["values"], dict(found["grads"]), found["inputs"], full=False,
                    file=doc.file, doc=doc)


# ---- sources ------------------------------------------------------------------------------------


def parse_snapshot(text: str | bytes, file: str) -> Snapshot:
    """Snapshot text (JSON); `file` names it in messages."""
    try:
        doc = load_text(text, file, nonfinite=True)  # bare NaN and Infinity, as json.dump writes them
    except LoadError as e:
        raise SnapshotError([replace(d, message=_reworded(d.message)) for d in e.diagnostics]) from None
    return from_document(doc)


def _reworded(message: str) -> str:
    """The JSON reader's words for graph files, said of a snapshot."""
    return (message.replace('an object with "cg": 1', f"a snapshot like {EXAMPLE}")
            .replace('(like {"cg": 1, ...})', f"(a snapshot like {EXAMPLE})")
            .replace("; split the graph up or ", "; "))


def load_snapshot(path: str, *, unreadable: type[CgError] = SnapshotError) -> Snapshot:
    """A snapshot file: a regular file, read up to the file-size limit; `unreadable` is raised when
    it cannot be read or is too big (CG001, CG004), SnapshotError for what it holds."""
    limit = current().max_bytes
    raw = read_regular(path, limit, path, unreadable, what="the snapshot")
    if len(raw) > limit:
        raise unreadable.one("CG004", f"the snapshot is larger than the limit of {limit:,} bytes;"
                             f" {Limits().hint('max_bytes')}", file=path)
    return parse_snapshot(raw, path)


def from_mapping(data: Mapping[str, Any], file: str = "<snapshot>") -> Snapshot:
    """The partial format as a Python mapping; values may also be numpy arrays or anything with a
    `tolist()` (a torch tensor)."""
    plain: dict[str, Any] = dict(data)
    for section in SECTIONS:
        entries = plain.get(section)
        if isinstance(entries, Mapping):
            plain[section] = {name: _listed(v) for name, v in entries.items()}
    return from_document(Document(plain, file))


def _listed(value: Any) -> Any:
    """A value as JSON would hold it: arrays and tensors as nested lists."""
    if isinstance(value, tuple):
        try:
            return np.asarray(value, dtype=np.float64).tolist()
        except (ValueError, TypeError):
            return list(value)
    tolist = getattr(value, "tolist", None)
    if not isinstance(value, (list, str)) and callable(tolist):
        try:
            return tolist()
        except Exception:  # an object whose tolist() fails is reported as not a number
            return value
    return value


def from_result(result: Result) -> Snapshot:
    """A Result of cg.run, at its own point: every value and gradient is compared."""
    name = result.graph.name
    if result.tangents is not None:
        raise SnapshotError.one("CG402", "a forward-mode result (tangents): cg.check compares gradients; run"
                                " it without tangents", file=f"<result of {name}>")
    inputs = {i.name: result.values[i.name] for i in result.graph.inputs}
    return Snapshot(result.of, dict(result.values), dict(result.grads), inputs, full=True,
                    file=f"<result of {name}>")
