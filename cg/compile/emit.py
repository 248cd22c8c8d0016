"""The text of a compiled module (see cg/compile/__init__.py): docstring, imports, helpers, constants,
the Values and Grads records, forward and backward. Lines stay within 120 columns where they
can (ruff's line length here); a line that cannot gets `# noqa: E501`."""

from __future__ import annotations

import re
import textwrap
from collections import Counter
from collections.abc import Iterable, Iterator

import numpy as np

from cg import __version__
from cg.compile.layout import ModuleLayout
from cg.graph.ir import Const, Node
from cg.ops.code import Site, atomic, sum_to
from cg.ops.source import helper_sources
from cg.printable import printable, printable_text
from cg.render.table import arg_text as render_arg_text

WIDTH = 120
TEXT_WIDTH = 92  # prose in docstrings
FEW = 16  # backward reads up to this many values as v.x, v.y; more by unpacking the tuple (faster)
MANY = 100  # records with more fields are made with _make: a call binding 100,000 arguments is slow
_SPACES = re.compile(r"[\t\n\r\x0b\x0c]+")  # whitespace that a one-line comment turns into a space
_NAME = re.compile(r"(?<![\w.])[A-Za-z_]\w*(?!\w|\s*=[^=])")  # a name read, not an attribute or a keyword
AMBIGUOUS = frozenset({"l", "O", "I"})  # names ruff's E741 flags; the graph's names are kept
Step = tuple[str, str, str, str]  # a line of code: (target, "=" or "+=", expression, comment)


# ---- pieces of text --------------------------------------------------------------------------


def comment_safe(text: str) -> str:
    """User text on one line, in ASCII (other characters as \\u escapes: ruff flags the ones
    that look like ASCII letters, and which those are is ruff's table), for a comment. Line
    breaks and tabs become spaces; other control characters show as escapes (cg.printable)."""
    return printable(_SPACES.sub(" ", text)).strip().encode("ascii", "backslashreplace").decode()


def arg_text(arg: str | Const) -> str:
    """An argument as the graph file writes it (a name, 3, 0.5 or [1, 2]), on one line for a comment."""
    return " ".join(render_arg_text(arg).split())


def attrs_text(node: Node) -> list[str]:
    """The attributes that differ from the op's defaults: ['axis=0', 'keepdims=True']."""
    return [f"{k}={v}" for k, v in node.attrs.items() if v != node.op.attrs[k].default]


def node_comment(plan: ModuleLayout, node: Node) -> str:
    """`d: mul(5, c)`, with non-default attributes and the node's doc."""
    known = plan.comments.get(node.id)
    if known is not None:
        return known
    args = [arg_text(a) for a in node.args] + attrs_text(node) if node.op.attrs else [arg_text(a) for a in node.args]
    text = f"{node.id}: {node.op.name}({', '.join(args)})"
    text += f" -- {comment_safe(node.doc)}" if node.doc else ""
    plan.comments[node.id] = text
    return text


def line(indent: int, code: str, comment: str = "") -> str:
    """A line of code and its comment, which is shortened to fit; a line that still does not
    fit (long names) says so to ruff."""
    text = " " * indent + code
    if comment:
        room = WIDTH - len(text) - 4
        if len(comment) > room and " -- " in comment:  # the node's doc goes first
            comment = comment.split(" -- ", 1)[0]
        if len(comment) > room >= 24:
            comment = comment[: room - 3] + "..."
        text += "  # " + comment
    # ruff does not count a line without inner spaces (a single long name) as too long.
    return text + "  # noqa: E501" * (len(text) > WIDTH and " " in text.strip())


def wrapped(indent: int, head: str, items: list[str], tail: str) -> list[str]:
    """head + items + tail on one line if it fits, else the items filled into lines (in
    brackets when head is empty: the targets of an assignment)."""
    one = " " * indent + head + ", ".join(items) + tail
    if len(one) <= WIDTH and items:
        return [one]
    if not head:
        head, tail = "(", ")" + tail
    lines, current = [" " * indent + head], ""
    pad = " " * (indent + 4)
    for item in items:
        if current and len(pad) + len(current) + len(item) + 2 > WIDTH:
            lines.append(line(0, pad + current.rstrip()))
            current = ""
        current += item + ", "
    if current:
        lines.append(line(0, pad + current.rstrip()))
    return [*lines, " " * indent + tail.lstrip()]


def docstring(text: str, indent: int = 0) -> list[str]:
    """A docstring whose user text can hold neither its end nor an escape; other characters
    than ASCII are \\u escapes in the source (and themselves in __doc__). Control characters
    (a NUL would make the module unreadable) are printable's escapes, as text in __doc__ too."""
    text = printable_text(text).replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    text = text.encode("ascii", "backslashreplace").decode()
    pad = " " * indent
    paragraphs = [p for p in text.split("\n\n")]
    body: list[str] = []
    for p in paragraphs:
        if p.startswith("    "):  # an example block: as it is
            body += [pad + ln if ln else "" for ln in p.split("\n")]
        else:
            body += [pad + ln for ln in textwrap.wrap(comment_safe(p), TEXT_WIDTH - indent)] or [""]
        body.append("")
    body = body[:-1]
    if len(body) == 1 and len(body[0]) + 6 <= WIDTH:
        return [f'{pad}"""{body[0].strip()}"""']
    return [f'{pad}"""{body[0].strip()}', *body[1:], f'{pad}"""']


# ---- the module ------------------------------------------------------------------------------


def site(plan: ModuleLayout, node: Node) -> Site:
    """The node as its code rule sees it."""
    known = plan.sites.get(node.id)
    if known is not None:
        return known
    avals = plan.graph.avals
    shapes = tuple(a.value.shape if isinstance(a, Const) else avals[a].shape for a in node.args)
    dtypes = tuple(a.dtype if isinstance(a, Const) else avals[a].dtype for a in node.args)
    made = Site(plan.args[node.id], shapes, dtypes, avals[node.id].shape, node.attrs, plan.names[node.id],
                plan.grads.get(node.id, "g"), "math" if plan.scalar else "np")
    plan.sites[node.id] = made
    return made


def emit(plan: ModuleLayout) -> str:
    code = [*_forward(plan), "", "", *_backward(plan)]
    if not plan.scalar:  # on Python floats nothing is worth freeing, and the module would double
        code += ["", "", *_value_and_grad(plan)]
    used = "\n".join(ln.split("  # ", 1)[0] for ln in code)  # the code without its comments
    helpers = helper_sources(used, floats=plan.scalar)  # the kernels it calls, and those they call
    used = "\n".join([*helpers, used])
    uses_np = bool(re.search(r"(?<![\w.])np\.", used) or plan.consts or plan.defaults_text)
    head = _header(plan, helpers, uses_np, re.search(r"(?<![\w.])math\.", used) is not None)
    return "\n".join([*head, *_records(plan), "", "", *code]) + "\n"


def _header(plan: ModuleLayout, helpers: list[str], uses_np: bool, uses_math: bool) -> list[str]:
    g = plan.graph
    title = f"{g.name}: {g.doc}" if g.doc else g.name
    mode = ("Every value is a float scalar, so the code works on Python floats with the math module (several "
            "times faster than numpy on 0-d arrays)." if plan.scalar else
            "The code works on numpy arrays of the shapes the graph declares (shown in Values)"
            + (", in float32." if plan.dtype == "float32" else "."))
    example = ", ".join(f"{plan.names[i.name]}={_example(plan, i.name)}" for i in g.inputs)
    text = (f"{title}\n\nGenerated by `cg compile` (cg {__version__}) from {g.file}: the forward pass in topological "
            f"order and the backward pass in reverse order (the staged computation), one line per node and per "
            f"edge, gradients accumulated with +=. {mode} Compile the graph again rather than edit this file.\n\n"
            f"    v = forward({example})  # Values: every input and node\n"
            f"    g = backward(v)  # Grads: d {plan.of} / d name")
    if not plan.scalar:
        text += (f"\n\nvalue_and_grad runs the same lines in one function and deletes each array after its last "
                 f"use, so that only what it returns stays alive (less memory than forward then backward, "
                 f"and on a deep graph less time; use it to train):\n\n"
                 f"    {plan.names[plan.of]}, g = value_and_grad({example})  # the value of {plan.of}, and Grads")
    out = docstring(text)
    if set(plan.names.values()) & AMBIGUOUS:
        out += ["", "# The graph's own names are kept (l, O, I), so:", "# ruff: noqa: E741"]
    imports = ["import math"] * uses_math + ["from typing import NamedTuple"]
    out += ["", *imports] + (["", "import numpy as np"] if uses_np else [])
    for helper in helpers:
        out += ["", "", *helper.rstrip("\n").split("\n")]
    renamed = {n: p for n, p in plan.names.items() if n != p}
    statements = [line(0, f"{name} = {literal}", comment) for name, literal, comment in plan.consts]
    statements += [line(0, text) for text in plan.defaults_text]
    if renamed:
        statements += ["# Graph ids that Python writes otherwise -> their names here (fields of Values and Grads)."]
        statements += wrapped(0, "RENAMED = {", [f"{n!r}: {p!r}" for n, p in renamed.items()], "}")
    if statements:
        out += ["", ""] if helpers else [""]  # isort: one blank line after the imports
    return out + statements


def _example(plan: ModuleLayout, name: str) -> str:
    default = plan.defaults[name]
    return default if default is not None and plan.graph.avals[name].shape == () else "..."


def _annotation(plan: ModuleLayout, name: str, param: bool = False) -> tuple[str, str]:
    """The type of a value and its shape (with dtype when int), for a comment."""
    aval = plan.graph.avals[name]
    if plan.scalar:
        return "float", ""
    shape = f"{'int ' * (aval.dtype == 'int')}{list(aval.shape)}"
    return (aval.dtype if param and aval.shape == () else "np.ndarray"), shape


def _records(plan: ModuleLayout) -> list[str]:
    g = plan.graph
    out = ["", "", "class Values(NamedTuple):", *docstring("The value of every input and node, in topological order.",
                                                             4), ""]
    for inp in g.inputs:
        ann, shape = _annotation(plan, inp.name)
        out.append(line(4, f"{plan.names[inp.name]}: {ann}", _renamed(plan, inp.name, f"input {shape}".rstrip())))
    for node in g.nodes:
        ann, shape = _annotation(plan, node.id)
        what = node_comment(plan, node).split(": ", 1)[1]
        out.append(line(4, f"{plan.names[node.id]}: {ann}", _renamed(plan, node.id, f"{what} {shape}".rstrip())))
    of = plan.of
    out += ["", "", "class Grads(NamedTuple):"]
    out += docstring(f"d {of} / d name for every float input and node (0 where there is no path to {of}).", 4)
    if plan.wrt:
        out.append("")
    for name in plan.wrt:
        ann, shape = _annotation(plan, name)
        out.append(line(4, f"{plan.names[name]}: {ann}", _renamed(plan, name, shape)))
    return out


def _renamed(plan: ModuleLayout, name: str, comment: str) -> str:
    """A field's comment names the graph's id when Python needed another name."""
    return comment if plan.names[name] == name else f"'{name}' in the graph; {comment}".rstrip("; ")


def _forward(plan: ModuleLayout) -> Iterator[str]:
    g = plan.graph
    params = _params(plan)
    yield from wrapped(0, "def forward(", ["*", *params] if params else [], ") -> Values:")
    yield from docstring("Every value, node after node in topological order.", 4)
    for target, op, expr, comment in [*_input_steps(plan), *_node_steps(plan, g.nodes)]:
        yield line(4, f"{target} {op} {expr}", comment)
    order = [i.name for i in g.inputs] + [n.id for n in g.nodes]
    yield from _make_record(plan, "Values", [plan.names[n] for n in order])


def _params(plan: ModuleLayout) -> list[str]:
    """forward's parameters, one per input (keyword-only), with their defaults."""
    params = []
    for inp in plan.graph.inputs:
        ann, _ = _annotation(plan, inp.name, param=True)
        default = plan.defaults[inp.name]
        params.append(f"{plan.names[inp.name]}: {ann}" + (f" = {default}" if default is not None else ""))
    return params


def _input_steps(plan: ModuleLayout) -> list[Step]:
    """On numpy, each input made an array of the module's dtype (int64 for an int input)."""
    if plan.scalar:
        return []
    steps = []
    for inp in plan.graph.inputs:
        name = plan.names[inp.name]
        kind = plan.dtype if inp.aval.dtype == "float" else "int64"
        steps.append((name, "=", f"np.asarray({name}, dtype=np.{kind})", f"{inp.name}: input"))
    return steps


def _node_steps(plan: ModuleLayout, nodes: Iterable[Node]) -> list[Step]:
    """The value of each node, in the order given (topological)."""
    steps = []
    for node in nodes:
        assert node.op.code is not None
        value = node.op.code.forward(site(plan, node))
        if _promotes(plan, node):
            value = _cast(plan, value)
        steps.append((plan.names[node.id], "=", value, node_comment(plan, node)))
    return steps


def _promotes(plan: ModuleLayout, node: Node) -> bool:
    """In a float32 module, a float node's expression gives float64 when it has an integer
    argument (numpy promotes int64 with float32 to float64) or only integer arguments (onehot's i:
    its kernel makes float64); the kernels keep float32 otherwise."""
    if plan.dtype == "float64" or plan.graph.avals[node.id].dtype != "float":
        return False
    dtypes = [a.dtype if isinstance(a, Const) else plan.graph.avals[a].dtype for a in node.args]
    return "float" not in dtypes or any(k not in node.op.int_args and d == "int" for k, d in enumerate(dtypes))


def _cast(plan: ModuleLayout, expr: str) -> str:
    return f"{expr if atomic(expr) else f'({expr})'}.astype(np.{plan.dtype})"


def _make_record(plan: ModuleLayout, record: str, items: list[str], first: str = "") -> list[str]:
    """`return Record(items)`, or `return first, Record(items)`."""
    head = f"return {first + ', ' if first else ''}{record}"
    if len(items) <= MANY:
        return wrapped(4, f"{head}(", items, ")")
    return wrapped(4, f"{head}._make((", items, "))")  # see MANY


def _seed(plan: ModuleLayout) -> tuple[str, str]:
    """The seed parameter and the expression of d of / d of made from it."""
    shape = plan.graph.avals[plan.of].shape
    if plan.scalar or shape == ():
        return "seed: float = 1.0", "seed" if plan.scalar else f"np.asarray(seed, dtype=np.{plan.dtype})"
    if int(np.prod(shape)) == 1:
        return "seed: float = 1.0", f"np.full({shape}, seed, dtype=np.{plan.dtype})"
    return "seed: np.ndarray", f"np.asarray(seed, dtype=np.{plan.dtype})"


def _seed_text(plan: ModuleLayout) -> str:
    shape, of = plan.graph.avals[plan.of].shape, plan.of
    return f"seed is d {of} / d {of}" + (
        "." if plan.scalar or int(np.prod(shape)) == 1 else f", of shape {list(shape)} (required).")


def _backward(plan: ModuleLayout) -> Iterator[str]:
    param, _ = _seed(plan)
    yield f"def backward({plan.v}: Values, {param}) -> Grads:"
    yield from docstring(
        "The chain rule in reverse order: each node sends its gradient back to its inputs, and a name used "
        f"more than once adds up what it receives (+=). {_seed_text(plan)}", 4)
    contributions = list(_contributions(plan))
    yield from _read_values(plan, contributions)
    for target, op, expr, comment in _grad_steps(plan, contributions):
        yield line(4, f"{target} {op} {expr}", comment)
    yield from _make_record(plan, "Grads", _grad_results(plan))


def _grad_results(plan: ModuleLayout) -> list[str]:
    return [plan.grads[n] if n in plan.needed else _zeros(plan, n) for n in plan.wrt]


def _grad_steps(plan: ModuleLayout, contributions: list[tuple[str, str, bool, str]]) -> list[Step]:
    """The seed, then each gradient sent back along an edge: `= expr` where a name first
    receives one, `+= expr` after (into a fresh array or a copy, never into g itself or a view)."""
    of = plan.of
    steps: list[Step] = []
    if of in plan.needed:
        steps.append((plan.grads[of], "=", _seed(plan)[1], f"the seed, d {of} / d {of}"))
    count = Counter(name for name, _, _, _ in contributions)
    started: set[str] = set()
    for name, expr, fresh, comment in contributions:
        grad = plan.grads[name]
        if name in started:
            steps.append((grad, "+=", expr, comment))
            continue
        started.add(name)
        if count[name] > 1 and not fresh and not plan.scalar:
            expr = f"np.copy({expr})"  # accumulated into in place below: never into g itself or a view
        steps.append((grad, "=", expr, comment))
    return steps


def _value_and_grad(plan: ModuleLayout) -> Iterator[str]:
    """forward's lines then backward's in one function, each name deleted after the line that
    uses it last (see _deaths): only the output's value and the gradients returned stay alive."""
    g, of = plan.graph, plan.of
    ann, _ = _annotation(plan, of)
    yield from wrapped(0, "def value_and_grad(", ["*", *_params(plan), _seed(plan)[0]],
                       f") -> tuple[{ann}, Grads]:")
    yield from docstring(
        f"{of} and its gradients, as `forward` then `backward` compute them (the same lines), in one "
        f"function that deletes each array after its last use: only what it returns stays alive, and "
        f"memory freed during the call is reused by the call. {_seed_text(plan)}", 4)
    upstream = {of}  # the nodes of's value depends on: the others are not computed
    for node in reversed(g.nodes):
        if node.id in upstream:
            upstream.update(a for a in node.args if isinstance(a, str))
    nodes = [n for n in g.nodes if n.id in upstream]
    steps = [*_node_steps(plan, nodes), *_grad_steps(plan, list(_contributions(plan)))]
    results = _grad_results(plan)
    local = set(plan.names.values()) | set(plan.grads.values())
    read = set().union(*(_reads(step, local) for step in steps), {plan.names[of]})  # of may be an input
    steps = [step for step in _input_steps(plan) if step[0] in read] + steps  # the inputs the lines read
    returned = {plan.names[of]} | (set(results) & local)
    deaths = _deaths(steps, local, returned)
    for k, (target, op, expr, comment) in enumerate(steps):
        yield line(4, f"{target} {op} {expr}", comment)
        yield from _del_lines(deaths[k])
    yield from _make_record(plan, "Grads", results, first=plan.names[of])


def _del_lines(names: list[str]) -> list[str]:
    """`del a, b, c`, as several statements when they do not fit on one line."""
    lines: list[str] = []
    current: list[str] = []
    for name in names:
        if current and len("    del " + ", ".join([*current, name])) > WIDTH:
            lines.append(line(4, "del " + ", ".join(current)))
            current = []
        current.append(name)
    return lines + [line(4, "del " + ", ".join(current))] * bool(current)


def _reads(step: Step, local: set[str]) -> set[str]:
    """The local names a step reads: those in its expression, and its target when it adds to it."""
    target, op, expr, _ = step
    return {m.group(0) for m in _NAME.finditer(expr)} & local | ({target} if op == "+=" else set())


def _deaths(steps: list[Step], local: set[str], returned: set[str]) -> list[list[str]]:
    """Per step, the names to delete after it: those no later step reads (a name never read
    dies where it is written), in the order they were first written, save those returned."""
    last: dict[str, int] = {}
    first: dict[str, int] = {}
    for k, step in enumerate(steps):
        for name in _reads(step, local):
            last[name] = k
        first.setdefault(step[0], k)
        last[step[0]] = max(last.get(step[0], k), k)
    deaths: list[list[str]] = [[] for _ in steps]
    for name, k in sorted(last.items(), key=lambda item: first.get(item[0], -1)):
        if name not in returned:
            deaths[k].append(name)
    return deaths


def _read_values(plan: ModuleLayout, contributions: list[tuple[str, str, bool, str]]) -> list[str]:
    """The values backward reads, taken out of v: by name when they are few, else by
    unpacking the whole tuple with _ for the values it does not read."""
    g = plan.graph
    names = [plan.names[n] for n in [i.name for i in g.inputs] + [n.id for n in g.nodes]]
    read = {m.group(0) for _, expr, _, _ in contributions for m in _NAME.finditer(expr)} & set(names)
    if not read:
        return []
    if len(read) <= FEW:
        used = [n for n in names if n in read]
        one = f"    {', '.join(used)} = {', '.join(f'{plan.v}.{n}' for n in used)}"
        return [one] if len(one) <= WIDTH else [line(4, f"{n} = {plan.v}.{n}") for n in used]
    return wrapped(4, "", [n if n in read else "_" for n in names], f" = {plan.v}")


def _contributions(plan: ModuleLayout) -> Iterator[tuple[str, str, bool, str]]:
    """(name, expression, fresh, comment) per edge that carries a gradient, in the order of
    cg.eval.interp's backward: nodes in reverse topological order, arguments in order."""
    g = plan.graph
    for node, targets in reversed(g.grad_targets):
        if node.id not in plan.needed:
            continue
        rule = node.op.code
        assert rule is not None
        s = site(plan, node)
        exprs = rule.vjp(s)
        comment = node_comment(plan, node)
        for k, name in targets:
            if name not in plan.needed:
                continue
            expr = exprs[k]
            assert expr is not None, f"{node.op.name} sends no gradient to argument {k + 1}"
            summed = rule.broadcast and s.shapes[k] != s.shape
            if summed:
                expr = sum_to(expr, s.shape, s.shapes[k])
            cast = _promotes(plan, node)
            if cast:
                expr = _cast(plan, expr)
            fresh = summed or cast or (rule.fresh and not expr.isidentifier())
            yield name, expr, fresh, comment


def _zeros(plan: ModuleLayout, name: str) -> str:
    shape = plan.graph.avals[name].shape
    if plan.dtype == "float32":
        return f"np.zeros({shape}, dtype=np.float32)"
    return "0.0" if plan.scalar or shape == () else f"np.zeros({shape})"
