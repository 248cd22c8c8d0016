"""cg/fmt/update.py: new defaults written into a graph file's tree, every comment kept."""

from __future__ import annotations

import numpy as np
import pytest

import cg as cglib
from cg.errors import UsageError
from cg.fmt.update import update_defaults

SOURCE = """# a header comment
cg: 1
inputs:
  W: [[1.0, 2.0], [3.0, 4.0]]  # the weights
  b: {value: [0.0, 0.0], doc: bias}
  s: {shape: [], doc: a scale}  # no value yet
  x: [1.0, 1.0]
nodes:
  h: {expr: "s * (W @ x + b)"}
  z: {op: sum, in: [h]}
outputs: [z]
"""


def test_numbers_lists_mappings_and_a_missing_value() -> None:
    new = {"W": np.array([[0.5, -1.0], [2.0, 0.25]]), "b": np.array([0.1, -0.2]), "s": np.array(3.0)}
    text = update_defaults(SOURCE, "g.yaml", new)
    assert "# a header comment" in text and "# the weights" in text and "# no value yet" in text
    graph = cglib.loads(text)
    for name, value in new.items():
        np.testing.assert_array_equal(graph.input(name).default, value)  # type: ignore[union-attr]
    np.testing.assert_array_equal(graph.input("x").default, [1.0, 1.0])  # type: ignore[union-attr]
    assert "doc: bias" in text and "doc: a scale" in text


def test_unknown_inputs_and_file_inputs_are_refused() -> None:
    with pytest.raises(UsageError, match="'q' is not written"):
        update_defaults(SOURCE, "g.yaml", {"q": np.array(1.0)})
    with pytest.raises(UsageError, match="reads its value from a file"):
        update_defaults(SOURCE.replace("  x: [1.0, 1.0]", "  x: {file: x.npy}"), "g.yaml", {"x": np.ones(2)})
