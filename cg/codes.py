"""The table of diagnostic codes: each code's stable name and meaning (a leaf: nothing from cg).

Names are part of the interface (CI configurations and scripts match on them): once given, a
name never changes; a new code gets a new name. cg/render/diagnostics.py shows diagnostics with them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CODES", "UNLISTED", "Code", "name_of"]


@dataclass(frozen=True)
class Code:
    code: str
    name: str
    meaning: str


# THE table: one row per code. The README's code table says the same in more words.
CODES: tuple[Code, ...] = (
    Code("CG001", "unreadable-file", "the file cannot be read"),
    Code("CG002", "not-text", "not UTF-8 text, or a binary file"),
    Code("CG003", "invalid-yaml", "YAML syntax error, empty file, or not a mapping at the top"),
    Code("CG004", "over-limit", "over a limit (file size, nesting, values, nodes, numbers in a tensor or in all)"),
    Code("CG005", "unsupported-yaml", "YAML aliases or tags, which graph files do not use"),
    Code("CG006", "duplicate-key", "a key written twice in one mapping"),
    Code("CG007", "bad-number", "a number that cannot be used (non-finite, out of range, too long)"),
    Code("CG100", "schema", "other schema errors (missing keys, wrong types, bad names)"),
    Code("CG101", "unknown-op", "unknown op"),
    Code("CG102", "arity", "wrong number of inputs for the op"),
    Code("CG103", "unknown-attribute", "unknown attribute for the op"),
    Code("CG104", "bad-tensor", "a value or constant that is not a rectangular list of numbers"),
    Code("CG110", "unknown-name", "reference to an unknown input or node"),
    Code("CG111", "duplicate-name", "a name used twice (input and node)"),
    Code("CG112", "cycle", "the nodes form a cycle"),
    Code("CG113", "unknown-output", "an output that does not exist"),
    Code("CG120", "shape", "shapes that do not fit the op"),
    Code("CG121", "integer-needed", "an integer needed (index)"),
    Code("CG130", "recursion", "a function that calls itself, directly or through other functions"),
    Code("CG131", "bad-import", "an import outside the allowed folders, unreadable, not a library, or in a cycle"),
    Code("CG132", "bad-function", "a function named like a built-in op or another function, or returning an input"),
    Code("CG133", "library-only", "a library file (functions only) given where a graph is run"),
    Code("CG140", "file-outside", "an input's file outside the folder of the graph file (and of --allow-path)"),
    Code("CG141", "file-unreadable", "an input's file that is missing, not a regular file (a directory), that cannot"
         " be read, or not named .npy or .npz"),
    Code("CG142", "file-key", "an input's .npz array: the key is not in the archive, or missing, or given for a"
         " .npy file"),
    Code("CG143", "file-corrupt", "an input's file that is not a valid .npy or .npz (damaged, cut off, a member"
         " larger than its header says)"),
    Code("CG144", "file-dtype", "an input's array of a dtype cg refuses: Python objects (never unpickled), bool,"
         " complex, strings, records, dates; a float array for dtype int"),
    Code("CG150", "bad-data", "`cg run --data`: a data file's cell or column that cannot be used (empty, not a number,"
         " NaN or Inf, a float for an integer input, a ragged list), or a column missing for an input"),
    Code("CG151", "unknown-column", "`cg run --data`: a column that is no input of the graph (without"
         " --ignore-columns)"),
    Code("CG152", "no-pyarrow", "`cg run --data` of a .parquet file without pyarrow (the optional extra"
         " cg-graphs[data])"),
    Code("CG153", "no-dask", "`--engine dask` without dask (the optional extra cg-graphs[dask]), or a data set it"
         " cannot take (not .csv or .parquet, no file matching the pattern)"),
    Code("CG200", "non-finite", "NaN or Inf produced in the run"),
    Code("CG201", "op-failed", "an op failed on its values (index out of range)"),
    Code("CG210", "non-scalar-output", "a non-scalar output without --seed"),
    Code("CG300", "bad-value", "a malformed command-line value"),
    Code("CG301", "unknown-input", "unknown input (or --of node)"),
    Code("CG302", "missing-input", "missing input value"),
    Code("CG303", "no-derivative", "a derivative that does not exist or a direction that does not fit"),
    Code("CG310", "too-many-paths", "more paths than `cg paths --limit`"),
    Code("CG311", "paths-not-scalar", "`cg paths` through a tensor node, or from an integer"),
    Code("CG320", "no-graphviz", "`cg draw`: Graphviz's dot is missing or cannot be run"),
    Code("CG321", "graphviz-failed", "`cg draw`: dot failed or took too long"),
    Code("CG322", "too-big-to-draw", "`cg draw`: more inputs and nodes than a readable picture, without --force"),
    Code("CG330", "cannot-write", "an output file (-o) that cannot be written: a directory, no permission, no space"),
    Code("CG400", "local-derivative", "`cg check --per-node`: a node's VJP or JVP disagrees with finite differences"),
    Code("CG401", "expect-mismatch", "`cg check`: a value or gradient differs from the file's `expect` block"),
    Code("CG402", "snapshot-mismatch", "`cg check --against`: a value or gradient moved, a name on one side only, or"
         " a snapshot that compares nothing"),
    Code("CG403", "gradient-mismatch", "`cg check`: a gradient disagrees with finite differences, or forward mode"
         " with reverse mode"),
    Code("CG404", "second-derivative", "`cg check --order 2 --per-node`: a node's second derivative (its VJP in graph"
         " form, differentiated) disagrees with finite differences"),
    Code("CG500", "fmt-refused", "`cg fmt`: the file cannot be rewritten without moving a comment (or faithfully)"),
    Code("CG600", "expr-syntax", "an expression that is not Python syntax, or not printable ASCII"),
    Code("CG601", "expr-not-allowed", "an expression uses syntax outside the allow-list (attributes, strings...)"),
    Code("CG602", "expr-no-op", "an expression with no operation (a bare name or number)"),
    Code("CG700", "no-code-rule", "`cg compile`: an op that cg cannot write as Python (it has no code rule)"),
    Code("CG710", "no-onnx", "`cg import` / `cg export` without the onnx package (an optional extra)"),
    Code("CG711", "bad-model", "`cg import`: not a valid ONNX model, or one ONNX's reference evaluator cannot run"),
    Code("CG712", "unsupported-model", "`cg import`: an op, opset or output cg cannot import as a graph"),
    Code("CG713", "import-mismatch", "`cg import`: cg's value of a node differs from ONNX's"),
    Code("CG714", "export-mismatch", "`cg export`: the exported model's outputs differ from cg's"),
)
_BY_CODE = {c.code: c for c in CODES}
UNLISTED = "unlisted"  # never expected: tests/cli/test_ci.py checks every code in cg/ is in CODES


def name_of(code: str) -> str:
    found = _BY_CODE.get(code)
    return found.name if found is not None else UNLISTED


# ---- one diagnostic -----------------------------------------------------------------------------
