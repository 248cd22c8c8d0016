"""Property tests: no document and no --inputs string makes cg crash.

Hypothesis writes graph documents (valid ones built from the op registry's test cases, then
mutated: keys and values deleted, inserted and swapped for values of other types, random bytes
spliced into the text) and --inputs strings, and runs `cg validate`, `cg run`, `cg check` and
`cg fmt` on them in-process. Whatever the input, the exit code is 0, 1 or 2 and no exception
escapes: CG_DEBUG=1 makes cg's own guard re-raise unexpected exceptions instead of turning them
into "internal error", so a bug shows up here as the exception itself.

The number of examples per test is CG_FUZZ_EXAMPLES (default 150, the same ones on every run);
for a long local run with fresh examples:
`CG_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/cli/test_fuzz.py`.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cg.cli import main
from cg.errors import CgError
from cg.fmt.tree import FormatError
from cg.fmt.write import format_text
from cg.ops import REGISTRY

EXAMPLES = int(os.environ.get("CG_FUZZ_EXAMPLES", "150"))
# The default run (CI) always tries the same examples, so it cannot fail on one run and pass on
# the next; a run with CG_FUZZ_EXAMPLES set draws new ones each time.
DERANDOMIZE = "CG_FUZZ_EXAMPLES" not in os.environ
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE,
                suppress_health_check=[HealthCheck.too_slow])
OPS = sorted(REGISTRY.values(), key=lambda op: op.name)


def invoke(args: list[str], stdin: bytes | str) -> Result:
    """Run the CLI in-process; only SystemExit (an exit code) may come out of it."""
    result = CliRunner().invoke(main, args, input=stdin, env={"CG_DEBUG": "1"}, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # with its traceback: a crash that CG_DEBUG let through
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.output)
    return result


# ---- documents ----------------------------------------------------------------------------------


def tensor(draw: Any, shape: tuple[int, ...], ints: bool = False) -> Any:
    size = math.prod(shape)
    if ints:
        return np.zeros(shape, dtype=np.int64).tolist()
    numbers = draw(st.lists(st.floats(-3, 3, allow_nan=False, width=32), min_size=size, max_size=size))
    return np.array(numbers, dtype=np.float64).reshape(shape).tolist()


@st.composite
def graphs(draw: Any) -> dict[str, Any]:
    """A valid graph: each node is an op at one of its registry test cases, its arguments earlier
    names of the right shape, constants, or new inputs."""
    inputs: dict[str, Any] = {}
    nodes: dict[str, Any] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    ints: set[str] = set()
    for k in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(OPS))
        case = draw(st.sampled_from(op.cases))
        args: list[Any] = []
        for i, shape in enumerate(case.shapes):
            is_int = i in op.int_args
            fits = [n for n, s in shapes.items() if s == shape and (n in ints) == is_int]
            if fits and draw(st.booleans()):
                args.append(draw(st.sampled_from(fits)))
            elif shape == () and not is_int and draw(st.booleans()):
                args.append(draw(st.floats(-5, 5, allow_nan=False)))  # a constant
            else:
                name = f"i{len(inputs)}"
                value = tensor(draw, shape, is_int)
                inputs[name] = {"dtype": "int", "value": value} if is_int else value
                shapes[name] = shape
                ints |= {name} if is_int else set()
                args.append(name)
        nid = f"n{k}"
        nodes[nid] = {"op": op.name, "in": args, **json.loads(json.dumps(case.attrs))}  # a copy: no YAML anchors
        attrs = {name: case.attrs.get(name, a.default) for name, a in op.attrs.items()}
        shapes[nid] = op.shape(list(case.shapes), **attrs)
    outputs = draw(st.lists(st.sampled_from(list(nodes)), min_size=1, max_size=2, unique=True))
    return {"cg": 1, "inputs": inputs, "nodes": nodes, "outputs": outputs[::-1] if len(outputs) > 1 else outputs}


JUNK = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
KEYS = st.sampled_from(["cg", "nodes", "inputs", "outputs", "expect", "op", "in", "axis", "keepdims", "shape",
                        "value", "dtype", "doc", "values", "grads", "tol", "of", "yes", "x", "i0", "n0", ""])


def mutate(draw: Any, data: Any) -> Any:
    """Delete, insert or swap one value somewhere in the document (in place)."""
    holder, key = None, None
    node = data
    while isinstance(node, (dict, list)) and node and draw(st.booleans()):
        holder = node
        key = draw(st.sampled_from(list(node))) if isinstance(node, dict) else draw(st.integers(0, len(node) - 1))
        node = node[key]
    action = draw(st.sampled_from(["delete", "insert", "swap", "swap"]))
    if holder is None:
        return draw(JUNK) if action == "swap" else data
    if action == "delete":
        del holder[key]
    elif action == "swap":
        holder[key] = draw(JUNK)
    elif isinstance(holder, dict):
        holder[draw(KEYS | st.integers(-3, 3))] = draw(JUNK)
    else:
        holder.insert(draw(st.integers(0, len(holder))), draw(JUNK))
    return data


@st.composite
def mutated(draw: Any) -> Any:
    data = draw(graphs())
    for _ in range(draw(st.integers(1, 4))):
        data = mutate(draw, data)
    return data


def dump(draw: Any, data: Any) -> str:
    """YAML text: block or flow style, or JSON (which is YAML too)."""
    style = draw(st.sampled_from(["block", "flow", "json"]))
    try:
        if style == "json":
            return json.dumps(data)
        return yaml.safe_dump(data, default_flow_style=style == "flow", sort_keys=False, allow_unicode=True)
    except (TypeError, ValueError):  # a key json cannot write: YAML can
        return yaml.safe_dump(data, sort_keys=False)


def splice(draw: Any, text: str) -> bytes:
    raw = text.encode("utf-8")
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(raw)))
        cut = draw(st.integers(0, 4))
        raw = raw[:at] + draw(st.binary(max_size=6)) + raw[at + cut :]
    return raw


# ---- --inputs strings ---------------------------------------------------------------------------

NUMBER = st.one_of(st.integers(-(10**25), 10**25).map(str), st.floats().map(repr), st.sampled_from(
    ["1e999", "-0", "nan", "Infinity", "1.", ".5", "0x10", "1_000", "true", "[]", "[[]]", "[1,[2]]", "@no.npy",
     "@", "@x.json", "[" * 40, "]"]))  # fmt: skip
VALUE = st.recursive(NUMBER, lambda inner: st.lists(inner, max_size=3).map(lambda xs: "[" + ",".join(xs) + "]"),
                     max_leaves=8)


@st.composite
def inputs_texts(draw: Any, names: list[str]) -> str:
    if draw(st.booleans()):
        return draw(st.text(alphabet="xyin0123456789=,[]-.e+@ ", max_size=30))
    pairs = draw(st.lists(st.tuples(st.sampled_from([*names, "q", "i0", "1x", ""]), VALUE), max_size=4))
    return ",".join(f"{name}={value}" for name, value in pairs)


# ---- the properties -----------------------------------------------------------------------------


@FUZZ
@given(st.data())
def test_generated_graphs_validate_and_run(data: st.DataObject) -> None:
    doc = data.draw(graphs())
    text = dump(data.draw, doc)
    assert invoke(["validate", "-"], text).exit_code == 0, text
    invoke(["run", "-", "-f", "json"], text)  # 1: a NaN; 2: a tensor output without --seed
    given_inputs = data.draw(inputs_texts(list(doc["inputs"])))
    invoke(["run", "-", "--inputs", given_inputs], text)


@FUZZ
@given(st.data())
def test_mutated_documents_never_crash(data: st.DataObject) -> None:
    text = dump(data.draw, data.draw(mutated()))
    for args in (["validate", "-"], ["run", "-"], ["validate", "-", "-f", "json"]):
        invoke(args, text)


@FUZZ
@given(st.data())
def test_random_bytes_spliced_in_never_crash(data: st.DataObject) -> None:
    raw = splice(data.draw, dump(data.draw, data.draw(graphs())))
    invoke(["validate", "-", "-f", "github"], raw)
    invoke(["run", "-"], raw)


@settings(FUZZ, max_examples=max(10, EXAMPLES // 5))  # each example runs finite differences
@given(st.data())
def test_check_never_crashes(data: st.DataObject) -> None:
    doc = data.draw(st.one_of(graphs(), mutated()))
    invoke(["check", "-", "-f", "json"], dump(data.draw, doc))


@FUZZ
@given(st.data())
def test_fmt_keeps_every_comment_or_refuses(data: st.DataObject) -> None:
    """Comments dropped at random line ends and between lines: fmt writes them all back (it
    checks that itself) or refuses with CG500 for a comment it cannot place; never anything else."""
    text = dump(data.draw, data.draw(graphs()))
    lines = text.splitlines()
    for k in data.draw(st.lists(st.integers(0, len(lines)), max_size=4)):
        where = data.draw(st.sampled_from(["end", "line"]))
        comment = f"# c{k} {data.draw(st.text(alphabet='ab:#,[] ', max_size=5))}"
        if where == "end" and k < len(lines) and lines[k].strip():
            lines[k] += "  " + comment
        else:
            lines.insert(k, comment)
    source = "\n".join(lines) + "\n"
    try:
        out = format_text(source, "g.yaml")
    except FormatError as e:
        assert all("cannot keep this comment" in d.message for d in e.diagnostics), e
        return
    except CgError:  # a comment that made the YAML invalid, e.g. inside a block scalar line
        return
    assert format_text(out, "g.yaml") == out  # idempotent


@FUZZ
@given(st.text(max_size=40), st.text(max_size=40))
def test_any_inputs_and_seed_text_is_handled(inputs: str, seed: str) -> None:
    text = "cg: 1\ninputs: {x: 1.0, v: [1.0, 2.0]}\nnodes: {y: {op: mul, in: [x, v]}}\noutputs: [y]\n"
    invoke(["run", "-", "--inputs", inputs, "--seed", seed or "[1,1]"], text)


@pytest.mark.parametrize("args", [["validate"], ["run"], ["check"], ["fmt"]])
def test_empty_and_odd_stdin(args: list[str]) -> None:
    for stdin in (b"", b"\xff", b"- - -", b"{", b"cg: 1\n" * 3):
        invoke([*args, "-"], stdin)
