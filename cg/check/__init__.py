"""Stage 6, check: is a gradient right? `fd.py` holds the one finite-difference checker (used by
`cg check` and by the op tests); `gradients.py` checks whole graphs, node by node, against
`expect` blocks and against snapshots (read by `snapshot.py`, compared by `against.py`); `api.py`
is `cg.check`, the same checks from Python with a report for tests."""
