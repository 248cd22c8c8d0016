"""The `cg` group: its options (the limits, --allow-path) and its commands, each imported from its
own module only when it runs (cg/cli/lazy.py). Exit codes: 0 ok, 1 invalid graph or failed run,
2 usage error; cg/cli/common.py turns errors into them."""

from __future__ import annotations

from collections.abc import Callable

import click

from cg import __version__
from cg.cli.common import EXIT_CODES
from cg.cli.lazy import LazyGroup


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
              help="Also allow `imports:` and input files (`file:`) from this folder tree (repeatable; "
                   "CG_ALLOW_PATH=DIR1:DIR2 adds folders too). By default a graph reads only from its own folder "
                   "tree (and imports the libraries shipped with cg, cg:nn).")
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
