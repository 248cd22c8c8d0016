"""Pausing Python's cyclic garbage collector around work that allocates many objects and
no reference cycles (loading and running big graphs): the collector would rescan them over and
over for nothing (shared/notes/performance.md: 9.0 s -> 2.4 s for a 100,000-node file)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
