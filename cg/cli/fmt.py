"""`cg fmt`: rewrite graph files in canonical form (cg/fmt/write.py says what that is, and how comments
are kept). A thin command; only click is imported at start-up."""

from __future__ import annotations

import sys

import click

from cg.cli.common import graph_files, guard

EPILOG = """\b
Files that are not valid graphs are not rewritten: their diagnostics are shown, as by
`cg validate`. `-` reads standard input and writes the result to standard output.
\b
Exit codes: 0 ok (with --check: every file is canonical), 1 an invalid or unformattable file
(with --check: also a file that is not canonical), 2 usage error."""


@click.command(epilog=EPILOG)
@click.argument("paths", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("--check", is_flag=True, help="Write nothing; list the files that are not canonical and exit 1 if any.")
def fmt(paths: tuple[str, ...], check: bool) -> None:
    """Rewrite graph files (and *.yaml / *.yml files in directories) in canonical form, keeping comments."""

    guard(_fmt)(paths, check)


def _fmt(paths: tuple[str, ...], check: bool) -> None:
    from cg.parse.read import is_json

    files = list(graph_files(paths))
    for file in files:
        if is_json(file):  # read as YAML it would be rewritten as YAML, under its .json name
            raise click.UsageError(f"cg fmt rewrites YAML files, and {file} is JSON; format it with a JSON formatter")
    counts = {"changed": 0, "same": 0, "failed": 0}
    for file in files:
        counts[_one(file, check)] += 1
    click.echo(_summary(counts, check, len(files)), err=True)
    sys.exit(1 if counts["failed"] or (check and counts["changed"]) else 0)


def _one(file: str, check: bool) -> str:
    """Format one file: 'changed', 'same' or 'failed'."""
    from cg.errors import CgError, LoadError
    from cg.files import read_only, read_regular, read_stdin, write_file
    from cg.fmt.write import format_text
    from cg.limits import current
    from cg.printable import printable
    from cg.render.diagnostics import plain

    max_bytes = current().max_bytes
    name = "<stdin>" if file == "-" else file
    try:
        raw = read_stdin(max_bytes) if file == "-" else read_regular(file, max_bytes, file, LoadError)
        text = format_text(raw, name)
    except CgError as e:
        if e.exit_code == 2:
            raise
        for d in e.diagnostics:
            click.echo(plain(d), err=True)  # stderr: stdout may be the formatted text (with -)
        return "failed"
    changed = text.encode("utf-8") != raw
    if file == "-" and not check:
        click.echo(text, nl=False)
    elif changed and check:
        click.echo(f"would reformat {printable(name)}", err=True)
    elif changed and read_only(file):  # root may write it anyway; the file's mode says nobody should
        click.echo(f"cg: {printable(name)} is read-only: not reformatted (make it writable first)", err=True)
        return "failed"
    elif changed:
        try:
            write_file(file, text)  # the file's mode and owner are kept; a symlink stays a link
        except CgError as e:
            click.echo(f"cg: {e.diagnostics[0].message}", err=True)
            return "failed"
        click.echo(f"reformatted {printable(name)}", err=True)
    return "changed" if changed else "same"


def _summary(counts: dict[str, int], check: bool, total: int) -> str:
    changed = f"{counts['changed']} {'would be reformatted' if check else 'reformatted'}"
    same = f"{counts['same']} {'canonical' if check else 'unchanged'}"
    return f"{changed}, {same}, {counts['failed']} not formatted ({total} file{'s' * (total != 1)})"
