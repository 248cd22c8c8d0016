"""Stage 6, check: is a gradient right? `fd.py` holds the one finite-difference checker (used by
`cg check` and by the op tests); `gradients.py` checks whole graphs, node by node, against
`expect` blocks and against saved snapshots."""
