"""Stage 3, schema: a Document -> schema diagnostics. `schemas.py` builds the JSON Schema from the
op registry and validates (jsonschema, imported on first use), `fast.py` recognises the plainly
valid documents that need no jsonschema at all, `messages.py` turns jsonschema's errors into
short messages at positions, `snapshot.py` does the same for the snapshots of `cg check --against`."""

from __future__ import annotations

from typing import Any

__all__ = ["graph_schema", "result_schema", "snapshot_schema", "validate"]


def __getattr__(name: str) -> Any:
    """cg.schema.graph_schema and friends, imported on first use (start-up stays small)."""
    if name == "snapshot_schema":
        from cg.schema import snapshot

        return snapshot.snapshot_schema
    if name in __all__:
        from cg.schema import schemas

        return getattr(schemas, name)
    raise AttributeError(f"module 'cg.schema' has no attribute {name!r}")
