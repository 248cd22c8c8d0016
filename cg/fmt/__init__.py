"""Stage 5, fmt: graph files rewritten in canonical form, comments kept (`cg fmt`)."""
