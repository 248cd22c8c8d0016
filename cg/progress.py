"""Progress for long work, on a terminal only: a transient rich bar on stderr.

Library stages (cg.eval.interp and cg.eval.plan, cg.check.gradients, cg.eval.jacobian) never
import this: they take a plain callback, `progress(what, done, total)` (cg.eval.plan.Report),
which the CLI fills with `Bar.hook`; phases the library does not report on (reading, drawing,
writing) are the CLI's `Bar.step`s, shown with a spinner and the time so far. The rules:

- nothing is drawn unless stderr is a terminal (never on a pipe, into a file or in CI), TERM is
  not `dumb`, and CG_NO_PROGRESS is unset or empty;
- nothing is drawn for quick work: the bar appears only once the work has taken DELAY seconds
  (CG_PROGRESS_DELAY, if set; a timer thread starts it), so a small command prints exactly what
  it printed before;
- the bar is transient: erased when the work ends, the terminal keeps only results and messages;
- nothing else is written to the terminal while the bar is drawn: results go to stdout while it
  is hidden (`Bar.hidden()`), a note to stderr inside `paused()`, and an error message only once
  `erase()` has closed every bar (cg.cli.common.guard does); rich's own stderr redirect catches the rest
  (click.echo goes around it).

On a pipe `Bar.hook` is None, so library loops keep their plain form: no call per node or chunk.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

Report = Callable[[str, int, int], None]  # progress(what, done, total), as cg.eval.plan.Report
DELAY = 0.5  # seconds of work before a bar appears: quicker commands never show one
REFRESH = 8  # redraws a second: enough for a spinner, and cheap
_open: list[Bar] = []  # bars started and not yet closed (one, in practice)


def wanted() -> bool:
    """Whether progress may be drawn: stderr is a terminal that understands it, and nobody said no."""
    return _isatty(sys.stderr) and os.environ.get("TERM") != "dumb" and not os.environ.get("CG_NO_PROGRESS")


def delay() -> float:
    """Seconds of work before the bar appears: CG_PROGRESS_DELAY, else DELAY."""
    try:
        return max(0.0, float(os.environ.get("CG_PROGRESS_DELAY") or DELAY))
    except ValueError:  # a setting that is not a number is not worth failing a command for
        return DELAY


def _isatty(stream: Any) -> bool:
    # While a bar is drawn, sys.stderr is rich's FileProxy, which says it is no terminal before
    # rich 15: ask the stream it stands for.
    stream = getattr(stream, "rich_proxied_file", stream)
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no such method (a test's stream), or a closed stream
        return False


class Bar:
    """One command's progress: a phase (`step`), and what the library reports inside it."""

    def __init__(self, phase: str, total: int | None = None, *, shown: bool = True) -> None:
        self._phase, self._what, self._done, self._total = phase, "", 0, total
        self._shown = shown  # False: never draws (not a terminal); every method is then nearly free
        self._lock = threading.Lock()  # between the timer thread that starts the bar and the command
        self._bar: Any = None  # the rich Progress, once started
        self._task: Any = None
        self._closed = False
        self._hidden = False  # hidden by hidden(): drawn again at the next step or report
        self._timer: threading.Timer | None = None
        self._began = time.monotonic()  # the clock shown counts from here, not from when the bar appears

    @property
    def hook(self) -> Report | None:
        """The callback for library stages, or None when nothing is drawn (they then skip reporting)."""
        return self.report if self._shown else None

    def step(self, phase: str, total: int | None = None) -> None:
        """A new phase of the work: `reading graph.yaml`, `running 100,000 nodes`..."""
        self._phase, self._what, self._done, self._total = phase, "", 0, total
        with self._lock:
            bar = self._bar
            if bar is not None:  # a new task: rich cannot set a task's total back to unknown
                bar.remove_task(self._task)
                self._task = bar.add_task(self._description(), total=total)
                bar.refresh()  # each phase is drawn at least once, however quickly it passes
        if self._hidden:
            self._appear()

    def advance(self, n: int = 1) -> None:
        self._done += n
        self._update()

    def report(self, what: str, done: int, total: int) -> None:
        """What a library stage says: `what` (e.g. "backward"), done of total steps."""
        self._what, self._done, self._total = what, done, total
        self._update()

    def _description(self) -> str:
        return f"{self._phase}: {self._what}" if self._what else self._phase

    def _update(self) -> None:
        if self._hidden:
            self._appear()
        bar = self._bar
        if bar is not None:
            bar.update(self._task, description=self._description(), completed=self._done, total=self._total)

    # ---- drawing ---------------------------------------------------------------------------------

    def start(self, after: float = DELAY) -> None:
        if self._shown:
            _open.append(self)
            self._timer = threading.Timer(after, self._appear)
            self._timer.daemon = True  # never keeps the process alive
            self._timer.start()

    def _appear(self) -> None:
        with self._lock:
            if self._closed or self._bar is not None:
                return
            self._hidden = False
            bar = _rich_progress(self._began)
            self._task = bar.add_task(self._description(), total=self._total, completed=self._done)
            bar.start()
            self._bar = bar  # last: the command's thread reads _bar, then _task, without the lock

    def close(self) -> None:
        """Stop the timer and erase the bar: before results or an error message are printed."""
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            self._closed = True
            if self._bar is not None:
                self._bar.stop()
                self._bar = None
        if self in _open:
            _open.remove(self)

    @contextmanager
    def hidden(self, stream: Any = None) -> Iterator[None]:
        """The bar erased while the block writes to `stream` (stdout if None), and drawn again at
        the next step or report, up to date; left alone when that stream is a pipe or a file (the
        text does not reach the terminal)."""
        if not (self._shown and _isatty(sys.stdout if stream is None else stream)):
            yield
            return
        with self._lock:  # and the timer cannot start it meanwhile
            if self._bar is not None:
                self._bar.stop()
                self._bar, self._hidden = None, True
            yield
            sys.stdout.flush()  # the text first: the bar comes back below it, at the next step or report


@contextmanager
def paused() -> Iterator[None]:
    """Every bar hidden while the block writes a note to stderr, and drawn again after it."""
    with ExitStack() as stack:
        for bar in list(_open):
            stack.enter_context(bar.hidden(sys.stderr))
        yield


def erase() -> None:
    """Close every bar: the command is ending, and an error message may come next (cg.cli.common.guard)."""
    for bar in list(_open):
        bar.close()


def _rich_progress(began: float) -> Any:
    """A transient rich Progress on stderr: spinner, what, bar, done/total, time since `began`."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, TextColumn
    from rich.text import Text

    class Count(ProgressColumn):  # "4,000/100,000", or nothing while the total is unknown
        def render(self, task: Any) -> Text:
            return Text("" if task.total is None else f"{int(task.completed):,}/{int(task.total):,}", style="dim")

    class Elapsed(ProgressColumn):  # the command's time so far: the bar appears DELAY seconds in
        def render(self, task: Any) -> Text:
            seconds = int(time.monotonic() - began)
            return Text(f"{seconds // 60}:{seconds % 60:02d}", style="yellow")

    # stdout is not redirected: results must stay on stdout (the CLI hides the bar to print them);
    # stderr is, so that a warning written meanwhile appears above the bar instead of through it.
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=20), Count(), Elapsed(),
                    console=Console(stderr=True), transient=True, refresh_per_second=REFRESH,
                    redirect_stdout=False, redirect_stderr=True)


@contextmanager
def progress(phase: str, total: int | None = None, *, after: float | None = None) -> Iterator[Bar]:
    """A Bar for the block's work: drawn on a terminal once the block has run `after` seconds
    (default: delay()), erased when it ends (also on an error, before the message is printed)."""
    bar = Bar(phase, total, shown=wanted())
    bar.start(delay() if after is None else after)
    try:
        yield bar
    finally:
        bar.close()

