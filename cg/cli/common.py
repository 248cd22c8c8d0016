"""What every command shares: errors turned into messages and exit codes (guard), output written
whole or not at all (write_output), graph files found and read (graph_files, load_document),
and text from the command line made safe to print (shown)."""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:  # start-up: `cg --version` and `cg --help` import click and little else
    from cg.errors import CgError

EXIT_CODES = """\b
Exit codes: 0 ok, 1 invalid graph or failed run, 2 usage error."""


def is_tty(stream: Any) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)())


def fail(err: CgError) -> NoReturn:
    from cg.render.diagnostics import plain

    for d in err.diagnostics:
        click.echo(plain(d), err=True)
    sys.exit(err.exit_code)


def guard(fn: Callable[..., None]) -> Callable[..., None]:
    """Turn cg's errors into messages and exit codes; never show a traceback."""

    def wrapper(*args: Any, **kwargs: Any) -> None:
        from cg.errors import CgError

        try:
            _erasing_progress(fn, args, kwargs)
            sys.stdout.flush()  # here, not at exit: a full or closed stdout is reported below
        except CgError as e:
            fail(e)
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


def shown(text: str) -> str:
    """A file name or other text from the command line, safe to print (cg/printable.py)."""
    from cg.printable import printable

    return printable(text)


def write_output(data: Any, output: str | None) -> None:
    """Text or bytes (whole, or an iterable of chunks) to stdout, or to a file that is replaced
    only once the whole text exists (cg/files.py: never a partial or clobbered file)."""
    from cg.files import write_output as write

    write(data, output)


def inner_of(graph: Any, of: str | None) -> bool:
    """--of names a node inside a call: the table must show the inner nodes, or its row is missing."""
    from cg.graph.composite import hidden

    if of is None or not hidden(graph, of):
        return False
    from cg.progress import paused

    with paused():  # the bar of a big graph may be up
        click.echo(f"cg: note: --of {of} is inside a call of a function: showing the inner nodes (as --expand)",
                   err=True)
    return True


def load_document(file: str) -> Any:
    """The document of a graph file: JSON if it is named *.json, else YAML (standard input: YAML)."""
    from cg.files import read_stdin
    from cg.limits import current
    from cg.parse.read import load_file, load_text

    if file == "-":
        return load_text(read_stdin(current().max_bytes), "<stdin>")
    if not os.path.lexists(file):
        raise click.UsageError(f"no such file: {shown(file)}")
    return load_file(file)  # a FIFO, a device or a directory is refused there (CG001), never read


def graph_files(paths: tuple[str, ...]) -> Iterator[str]:
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
            raise click.UsageError(f"no such file or directory: {shown(p)}")


def warn_nonfinite(names: Sequence[str], bar: Any = None, extra: str = "") -> None:
    """The warning that some values are NaN or Inf (the first ten named), above the progress bar."""
    listed = ", ".join(shown(n) for n in names[:10]) + (f", ... ({len(names):,} in all)" if len(names) > 10 else "")
    if bar is None:
        click.echo(f"cg: warning: not finite (NaN or Inf): {listed}{extra}", err=True)
        return
    with bar.hidden(sys.stderr):
        click.echo(f"cg: warning: not finite (NaN or Inf): {listed}{extra}", err=True)


def before_writing(bar: Any, output: str | None, what: str) -> None:
    """Onto a terminal the result comes once the bar is gone; into a file or a pipe the bar stays
    until the result is written."""
    if output is None and is_tty(sys.stdout):
        bar.close()
    else:
        bar.step(f"writing {what}")
