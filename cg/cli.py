"""The command line: parse, build, run, render. Only this module turns errors into messages
and exit codes: 0 ok, 1 invalid graph or failed run, 2 usage error."""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from cg import __version__
from cg.cli_lazy import LazyGroup
from cg.cli_options import inputs_option, nonfinite_option, output_option, precision_option

if TYPE_CHECKING:  # start-up: `cg --version` and `cg --help` import click and little else
    from cg.errors import CgError, Diagnostic

EXIT_CODES = """\b
Exit codes: 0 ok, 1 invalid graph or failed run, 2 usage error."""


def _is_tty(stream: Any) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


def _fail(err: CgError) -> NoReturn:
    from cg.diagnostics import plain

    for d in err.diagnostics:
        click.echo(plain(d), err=True)
    sys.exit(err.exit_code)


def _guard(fn: Callable[..., None]) -> Callable[..., None]:
    """Turn cg's errors into messages and exit codes; never show a traceback."""

    def wrapper(*args: Any, **kwargs: Any) -> None:
        from cg.errors import CgError

        try:
            _erasing_progress(fn, args, kwargs)
            sys.stdout.flush()  # here, not at exit: a full or closed stdout is reported below
        except CgError as e:
            _fail(e)
        except BrokenPipeError:
            _stdout_closed()
        except (MemoryError, RecursionError) as e:
            click.echo(f"cg: the input is too large to handle ({type(e).__name__})", err=True)
            sys.exit(1)
        except click.exceptions.ClickException:
            raise
        except OSError as e:
            if e.errno not in _OUTPUT_ERRORS:
                _internal(e)
            click.echo(f"cg: cannot write output: {e.strerror or e}", err=True)
            sys.exit(1)
        except Exception as e:
            _internal(e)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def _erasing_progress(fn: Callable[..., None], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """fn(*args, **kwargs); if it fails, the progress bar is erased first, so that the message
    below it is not drawn over (cg/progress.py)."""
    try:
        fn(*args, **kwargs)
    except BaseException:
        from cg.progress import erase

        erase()
        raise


# What writing to a full disk, a closed pipe or a broken device gives; anything else is a bug of ours.
_OUTPUT_ERRORS = {errno.ENOSPC, errno.EPIPE, errno.EIO, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _stdout_closed() -> NoReturn:
    """The reader went away (`cg run ... | head -1`): stop quietly, as a SIGPIPE would, and keep
    Python from complaining when it flushes stdout at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout without a descriptor (tests)
        pass
    sys.exit(1)


def _internal(e: Exception) -> NoReturn:
    # A bug of ours, not the user's: say so plainly; CG_DEBUG=1 shows the traceback.
    if os.environ.get("CG_DEBUG"):
        raise e
    from cg.printable import printable

    click.echo(f"cg: internal error ({type(e).__name__}: {printable(str(e)[:200])}); please report it,"
               " with the file and command (CG_DEBUG=1 shows the traceback)", err=True)
    sys.exit(1)


def _shown(text: str) -> str:
    """A file name or other text from the command line, safe to print (cg/printable.py)."""
    from cg.printable import printable

    return printable(text)


def write_output(data: Any, output: str | None) -> None:
    """Text or bytes (whole, or an iterable of chunks) to stdout, or to a file that is replaced
    only once the whole text exists (cg/files.py: never a partial or clobbered file)."""
    from cg.files import write_output as write

    write(data, output)


class _LimitOption(click.Option):
    """Its help names the default and the variable, from cg/limits.py, read only when help is shown."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        from cg.limits import Limits

        what, field = self.help, str(self.name)
        self.help = f"{what} (default {getattr(Limits, field):,}; or set {Limits.env_name(field)})."
        try:
            return super().get_help_record(ctx)
        finally:
            self.help = what


def _limit(field: str, what: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """A `cg --max-... N` option that raises one limit of cg/limits.py for this run."""

    def parse(ctx: click.Context, param: click.Parameter, text: str | None) -> int | None:
        from cg.limits import LimitValueError, parse_limit

        try:
            return None if text is None else parse_limit(text, f"--{field.replace('_', '-')}")
        except LimitValueError as e:
            raise click.BadParameter(str(e)) from None

    return click.option(f"--{field.replace('_', '-')}", field, cls=_LimitOption, metavar="N", callback=parse,
                        help=what)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES)
@click.version_option(__version__, prog_name="cg")
@_limit("max_bytes", "Largest graph file, in bytes")
@_limit("max_depth", "Deepest nesting of YAML lists and mappings")
@_limit("max_values", "Most YAML values (numbers, names, lists, mappings) in a file")
@_limit("max_nodes", "Most nodes in a graph, composites and expressions expanded")
@_limit("max_elements", "Most numbers in one tensor (value, input or node)")
@_limit("max_total", "Most numbers a command holds or computes in all (values, gradients, passes)")
@click.option("--allow-path", "allow_path", multiple=True, metavar="DIR",
              help="Also allow `imports:` from this folder tree (repeatable; CG_ALLOW_PATH=DIR1:DIR2 adds "
                   "folders too). By default a graph imports only from its own folder tree and the libraries "
                   "shipped with cg (cg:nn).")
def main(allow_path: tuple[str, ...], **given: int | None) -> None:
    """cg: computational graphs in YAML, run forward and backward.

    The --max-... options raise the limits that keep an untrusted file from exhausting the machine.
    """
    from dataclasses import replace

    from cg.limits import LimitValueError, env_allowed_paths, from_env, set_allowed_paths, set_current

    try:
        limits = from_env()
    except LimitValueError as e:
        raise click.UsageError(str(e)) from None
    set_current(replace(limits, **{k: v for k, v in given.items() if v is not None}))
    set_allowed_paths((*env_allowed_paths(), *allow_path))  # the option adds to the variable's folders
    ctx = click.get_current_context()  # limits and folders hold for this run only (in-process callers)
    ctx.call_on_close(lambda: set_current(None))
    ctx.call_on_close(lambda: set_allowed_paths(None))
    _collector_off()


def _collector_off() -> None:
    """A command is one short process whose data (documents, graphs, values) has no reference
    cycles: the cyclic garbage collector would only rescan it, about a tenth of `cg validate` on
    100,000 nodes. Reference counting still frees everything; in-process callers (tests) get the
    collector back when the command ends."""
    import gc

    if gc.isenabled():
        gc.disable()
        click.get_current_context().call_on_close(gc.enable)


@main.command(epilog=EXIT_CODES)
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@inputs_option
@click.option("--of", metavar="NODE", help="The output to differentiate (default: the first output).")
@click.option("--seed", metavar="VALUE", help="Seed gradient for a non-scalar output, e.g. [1,0,0].")
@click.option("-f", "--format", "fmt", type=click.Choice(["table", "json", "csv", "markdown", "latex"]),
              default="table", show_default=True,
              help="json and csv have full precision; markdown and latex are the table, with --precision.")
@output_option
@precision_option
@nonfinite_option
@click.option("--mode", type=click.Choice(["reverse", "forward"]), default="reverse", show_default=True,
              help="reverse: gradients d output / d node (backprop); forward: tangents d node / d input.")
@click.option("--wrt", multiple=True, metavar="INPUT",
              help="Forward mode: differentiate with respect to this scalar input (tangent 1). Repeatable.")
@click.option("--tangent", "tangent_texts", multiple=True, metavar="NAME=VALUE,...",
              help="Forward mode: a direction for an input, e.g. v=[1,0,0]. Repeatable.")
@click.option("--edges", is_flag=True, help="Also show every edge: its local derivative and the gradient it carries"
              " (of the expanded graph, as --expand).")
@click.option("--expand", is_flag=True, help="Show the inner nodes of composites (calls of functions), with ids like"
              " h1/Wx, instead of one row per call.")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True,
              help="The float type of every value and gradient (float32: what a model trains in).")
@_guard
def run(file: str, inputs: tuple[str, ...], of: str | None, seed: str | None, fmt: str,
        output: str | None, precision: int, nonfinite: str, mode: str, wrt: tuple[str, ...],
        tangent_texts: tuple[str, ...], edges: bool, expand: bool, dtype: str) -> None:
    """Run FILE forward and backward and print every node's value and gradient.

    With --mode forward (implied by --wrt or --tangent) it prints forward derivatives instead."""
    from cg.graph import build
    from cg.interp import run as run_graph
    from cg.progress import progress
    from cg.values import parse_inputs, parse_value

    # On a terminal, a bar appears once the work has taken half a second (cg/progress.py);
    # the click context erases it when the command ends, error or not.
    bar = click.get_current_context().with_resource(progress(f"reading {_shown(file)}"))
    graph = build(_load(file))
    if expand or edges or _inner_of(graph, of):  # every inner node of a composite gets its own row
        from cg.composite import expanded

        graph = expanded(graph)
    given = parse_inputs(list(inputs))
    seed_value = None if seed is None else parse_value(seed, what="--seed")
    tangents = _tangents(wrt, tangent_texts) if mode == "forward" or wrt or tangent_texts else None
    for name in wrt:
        shape = graph.avals[name].shape if name in graph.avals else ()
        if len(shape) and shape != (1,) * len(shape):
            example = "[" + ",".join(["1"] + ["0"] * (shape[-1] - 1)) + "]" if len(shape) == 1 else "@direction.npy"
            raise click.UsageError(f"--wrt {name}: '{name}' has shape {list(shape)}, not a scalar; give a "
                                   f"direction instead, e.g. --tangent {name}={example}, or use `cg jacobian`")
    if tangents is not None and (seed is not None or of is not None):
        raise click.UsageError("--seed and --of are for reverse mode; forward mode takes --wrt or --tangent")
    from cg.budget import require_run

    require_run(graph, given, forward=tangents is not None, edges=edges, output=fmt)  # before anything is allocated
    bar.step(f"running {len(graph.nodes):,} node{'s' * (len(graph.nodes) != 1)}")
    result = run_graph(graph, given, of=of, seed=seed_value, on_nonfinite=nonfinite, tangents=tangents,
                       dtype=dtype, progress=bar.hook)
    if result.nonfinite:
        with bar.hidden(sys.stderr):
            click.echo(f"cg: warning: not finite (NaN or Inf): {', '.join(result.nonfinite)}", err=True)
    if output is None and _is_tty(sys.stdout):
        bar.close()  # the table goes to the terminal: no bar left below it
    else:
        bar.step("writing the results")  # into a file or a pipe: the bar stays until they are written
    _print_run(result, fmt, output, precision, edges)


def _inner_of(graph: Any, of: str | None) -> bool:
    """--of names a node inside a call: the table must show the inner nodes, or its row is missing."""
    from cg.composite import hidden

    if of is None or not hidden(graph, of):
        return False
    from cg.progress import paused

    with paused():  # the bar of a big graph may be up
        click.echo(f"cg: note: --of {of} is inside a call of a function: showing the inner nodes (as --expand)",
                   err=True)
    return True


def _tangents(wrt: tuple[str, ...], texts: tuple[str, ...]) -> dict[str, Any]:
    """The direction of each input: --tangent values, those given for one name in several options
    added up (the JVP is linear in the tangent), and 1 for each --wrt."""
    from cg.values import parse_inputs

    tangents: dict[str, Any] = {}
    for text in texts:
        for name, value in parse_inputs([text], option="--tangent", what="tangent").items():
            if name in tangents and tangents[name].shape != value.shape:
                raise click.UsageError(f"--tangent {name}: directions of shapes {list(tangents[name].shape)} and "
                                       f"{list(value.shape)} cannot be added up")
            tangents[name] = tangents[name] + value if name in tangents else value
    for name in wrt:
        if name in tangents:
            raise click.UsageError(f"'{name}' has both --wrt and --tangent: give one")
        tangents[name] = 1.0
    return tangents


def _print_run(result: Any, fmt: str, output: str | None, precision: int, edges: bool) -> None:
    from cg.render import TERMINAL_ROWS, iter_json, plain_table, rich_table

    if fmt in ("csv", "markdown", "latex"):
        if edges:
            raise click.UsageError("--edges is shown with --format table or json")
        from cg.export import iter_csv, to_latex, to_markdown

        # CSV is streamed (a chunk per tensor): memory stays bounded and -o still never leaves a partial file.
        doc = {"markdown": to_markdown, "latex": to_latex}
        write_output(iter_csv(result) if fmt == "csv" else doc[fmt](result, precision), output)
        return
    edge_list = None
    if edges:
        from cg.edges import compute_edges, edge_objects
        from cg.reports import plain_edges, rich_edges

        edge_list = compute_edges(result)
    if fmt == "json":
        write_output(iter_json(result, None if edge_list is None else edge_objects(edge_list)), output)
    elif output is None and _is_tty(sys.stdout):
        from rich.console import Console

        console = Console()  # a huge result shows its first and last rows, and how to get them all
        console.print(rich_table(result, precision, max_rows=TERMINAL_ROWS))
        if edge_list is not None:
            console.print(rich_edges(edge_list, precision, max_rows=TERMINAL_ROWS))
    else:
        text = plain_table(result, precision)
        if edge_list is not None:
            text += "\n" + plain_edges(edge_list, precision)
        write_output(text, output)


def _load(file: str) -> Any:
    """The document of a graph file: JSON if it is named *.json, else YAML (standard input: YAML)."""
    from cg.files import read_stdin
    from cg.limits import current
    from cg.parse.read import load_file, load_text

    if file == "-":
        return load_text(read_stdin(current().max_bytes), "<stdin>")
    if not os.path.lexists(file):
        raise click.UsageError(f"no such file: {_shown(file)}")
    return load_file(file)  # a FIFO, a device or a directory is refused there (CG001), never read


def _graph_files(paths: tuple[str, ...]) -> Iterator[str]:
    for p in paths:
        path = Path(p)
        if p != "-" and path.is_dir():
            found = sorted({*path.rglob("*.yaml"), *path.rglob("*.yml")})
            if not found:  # a mistyped folder in CI must not pass silently
                raise click.UsageError(f"no *.yaml or *.yml files in {p}")
            yield from (str(f) for f in found)
        elif p == "-" or os.path.lexists(p):
            yield p  # a FIFO, a device, a broken link: reported for the file (CG001), never read
        else:
            raise click.UsageError(f"no such file or directory: {_shown(p)}")


FORMAT_HELP = ("human: coloured, for a terminal; plain: file:line:col: message [CODE] lines; json: a list of "
               "diagnostics (schema/diagnostics.schema.json); github: GitHub Actions annotations. "
               "Default: human on a terminal, plain otherwise.")


@main.command(epilog=EXIT_CODES)
@click.argument("paths", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("-f", "--format", "fmt", type=click.Choice(["human", "plain", "json", "github"]), help=FORMAT_HELP)
@_guard
def validate(paths: tuple[str, ...], fmt: str | None) -> None:
    """Check graph files (and *.yaml / *.yml files in directories) without running them."""
    from cg.diagnostics import resolve, to_json
    from cg.errors import CgError
    from cg.graph import build

    files = list(_graph_files(paths))
    fmt = resolve(fmt, _is_tty(sys.stdout))
    bad = 0
    found: list[Diagnostic] = []
    for file in files:
        diags: list[Diagnostic] = []
        try:
            build(_load(file), library=True)  # a library of functions is valid on its own
        except CgError as e:
            if e.exit_code == 2:  # not the file's fault (e.g. no such file): a usage error
                raise
            diags = e.diagnostics
        bad += bool(diags)
        found += diags
        if fmt != "json":
            _report(file, diags, fmt)  # as each file is done: a long CI run shows progress
    if fmt == "json":  # one document, whole, at the end
        click.echo(to_json(found), nl=False)
    summary = f"{len(files) - bad} valid, {bad} invalid ({len(files)} file{'s' * (len(files) != 1)})"
    click.echo(summary, err=True)
    sys.exit(1 if bad else 0)


def _report(file: str, diags: list[Diagnostic], fmt: str) -> None:
    """One file's diagnostics in the plain, github or human format (json is written whole)."""
    from cg.diagnostics import lines

    if fmt != "human":
        click.echo(lines(diags, fmt), nl=False)
        return
    from rich.console import Console
    from rich.text import Text

    from cg.diagnostics import human

    console = Console(soft_wrap=True)  # never break a file:line:col line: editors and people copy it whole
    if not diags:
        console.print(Text.assemble(("ok ", "green"), _shown(file)))
    for d in diags:
        console.print(human(d))


@main.command()
@click.option("--result", is_flag=True, help="Print the schema of `cg run --format json` instead.")
@click.option("--diagnostics", is_flag=True,
              help="Print the schema of `cg validate --format json` (and of `diagnostics` in check reports) instead.")
@_guard
def schema(result: bool, diagnostics: bool) -> None:
    """Print the JSON Schema of graph files (or of run results, or of diagnostics)."""
    import json

    from cg.diagnostics import diagnostics_schema
    from cg.schema.schemas import graph_schema, result_schema

    if result and diagnostics:
        raise click.UsageError("give --result or --diagnostics, not both")
    chosen = result_schema() if result else diagnostics_schema() if diagnostics else graph_schema()
    click.echo(json.dumps(chosen, indent=2))


@main.command()
@_guard
def ops() -> None:
    """List the ops with their inputs, attributes and a doc line."""
    from cg.ops import REGISTRY

    for op in REGISTRY.values():
        attrs = ", ".join(f"{n}{'' if a.required else '?'}" for n, a in op.attrs.items())
        click.echo(f"{op.name:12} {op.arity_text():18} {attrs:18} {op.doc}")
