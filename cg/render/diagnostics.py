"""Diagnostics as text for people and for machines: the table of codes with their stable names,
and the output formats of `cg validate` and `cg check`.

Formats:

- human:  what a terminal shows: `human()` gives the coloured rich Text of the plain line
- plain:  `file:line:col: node 'x': message [CG101]`, one per line, for pipes and editors
- json:   a list of {file, line, column, node, code, name, message, severity} objects,
          described by schema/diagnostics.schema.json (`diagnostics_schema()` here)
- github: GitHub Actions workflow commands, `::error file=..,line=..,col=..,title=CG101 unknown-op::..`,
          which the runner turns into annotations on the lines of the pull request

Messages quote the file's own text (names, keys, docs) and the command line's (file names), so
every format shows control characters as escapes (cg.printable): a graph file cannot send the
terminal or the CI log an escape sequence. human, plain and github escape them as `\x1b`; json
keeps the text exact in JSON's own escapes (`\u001b`), which a parser turns back into it.

Names are part of the interface (CI configurations and scripts match on them): once given, a
name never changes; a new code gets a new name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from cg.codes import CODES, name_of
from cg.errors import Diagnostic
from cg.printable import BIDI, printable

FORMATS = ("human", "plain", "json", "github")
SEVERITY = "error"  # every diagnostic cg reports today is an error; the field leaves room for warnings


def text(d: Diagnostic) -> str:
    """The message with its node, without the place: "node 'e': unknown op 'ad' ..." (as it is:
    each format makes it printable its own way)."""
    return str(Diagnostic(d.code, d.message, node=d.node))


def plain(d: Diagnostic) -> str:
    """The one line that shows a diagnostic anywhere text goes: `file:line:col: message [CG101]`,
    with control characters escaped (the CLI prints this, never str(d) itself)."""
    return printable(f"{d} [{d.code}]")


def human(d: Diagnostic) -> Any:
    """The plain line as rich Text for a terminal: "error" in red, the code dimmed. Text, not
    markup, so brackets in a message are never read as styles."""
    from rich.text import Text

    return Text.assemble(("error ", "bold red"), printable(str(d)), (f" [{d.code}]", "dim"))


def to_dict(d: Diagnostic) -> dict[str, Any]:
    """One diagnostic as JSON data (the key order is the schema's)."""
    return {
        "file": d.file,
        "line": d.pos.line if d.pos else None,
        "column": d.pos.col if d.pos else None,
        "node": d.node,
        "code": d.code,
        "name": name_of(d.code),
        "message": d.message,
        "severity": SEVERITY,
    }


# json.dumps escapes C0 controls but writes DEL, C1 and bidi controls as they are (with
# ensure_ascii=False, kept so that names in other scripts stay readable): these become \u
# escapes too. Outside strings JSON text is ASCII, so replacing them anywhere is exact.
_JSON_RAW = str.maketrans({c: f"\\u{c:04x}" for c in (0x7F, *range(0x80, 0xA0), *BIDI, *range(0xD800, 0xE000))})


def json_printable(text: str) -> str:
    """JSON text with no raw control or bidi character: the same document to a parser."""
    return text.translate(_JSON_RAW)


def to_json(diags: Iterable[Diagnostic]) -> str:
    """A JSON list, one object per diagnostic; `[]` when there are none (so a parser always gets a list)."""
    items = [to_dict(d) for d in diags]
    return json_printable(json.dumps(items, indent=2, ensure_ascii=False)) + "\n"


# GitHub's runner reads `::command key=value,key=value::message`. Its toolkit escapes data
# (the message) as % -> %25, CR -> %0D, LF -> %0A, and property values also : -> %3A, , -> %2C.
_DATA = str.maketrans({"%": "%25", "\r": "%0D", "\n": "%0A"})
_PROPERTY = str.maketrans({"%": "%25", "\r": "%0D", "\n": "%0A", ":": "%3A", ",": "%2C"})


_BREAKS = re.compile(r"([\r\n])")


def _github_printable(value: str) -> str:
    """printable, but CR and LF are left for the toolkit's %0D and %0A (an annotation may have
    several lines). printable's escapes hold no %, so the runner gives them back as written."""
    return "".join(part if part in ("\r", "\n") else printable(part) for part in _BREAKS.split(value))


def github(d: Diagnostic) -> str:
    """One workflow command: an annotation on the file and line (when known) of the diagnostic."""
    props: list[tuple[str, str]] = []
    if d.file is not None:
        props.append(("file", d.file))
    if d.pos is not None:
        props += [("line", str(d.pos.line)), ("col", str(d.pos.col))]
    props.append(("title", f"{d.code} {name_of(d.code)}"))
    joined = ",".join(f"{k}={_github_printable(v).translate(_PROPERTY)}" for k, v in props)
    return f"::{SEVERITY} {joined}::{_github_printable(text(d)).translate(_DATA)}"


def lines(diags: Iterable[Diagnostic], fmt: str) -> str:
    """plain or github lines, each ending in a newline ('' for none)."""
    one = github if fmt == "github" else plain
    return "".join(one(d) + "\n" for d in diags)


def resolve(fmt: str | None, tty: bool) -> str:
    """The format to use: the one asked for, else human on a terminal and plain otherwise."""
    if fmt is not None:
        return fmt
    return "human" if tty else "plain"


# ---- the schema of the json format --------------------------------------------------------------


def diagnostic_schema() -> dict[str, Any]:
    """The schema of one diagnostic object (also used inside `cg check --format json`'s report)."""
    nullable_int = {"type": ["integer", "null"], "minimum": 1}
    return {
        "type": "object",
        "required": ["file", "line", "column", "node", "code", "name", "message", "severity"],
        "additionalProperties": False,
        "properties": {
            "file": {
                "description": "the file as given on the command line ('<stdin>' for -); null for a command-line value",
                "type": ["string", "null"],
            },
            "line": {"description": "1-based line of the problem in the file; null when it has no place"}
            | nullable_int,
            "column": {"description": "1-based column, counted in characters; null when it has no place"}
            | nullable_int,
            "node": {
                "description": "the input or node the problem belongs to; null for file-level problems",
                "type": ["string", "null"],
            },
            "code": {
                "description": "stable code: CG0xx YAML and bytes, CG1xx graph rules, CG2xx run, CG3xx command line,"
                " CG4xx cg check, CG5xx cg fmt, CG6xx expressions, CG7xx cg compile, cg import and cg export",
                "type": "string",
                "pattern": "^CG[0-9]{3}$",
            },
            "name": {
                "description": "stable short name of the code, e.g. unknown-op for CG101",
                "enum": [c.name for c in CODES],
            },
            "message": {
                "description": "what is wrong and, where cg knows, how to fix it (without file, place or node)",
                "type": "string",
            },
            "severity": {"description": "error: the file fails the command", "enum": ["error", "warning"]},
        },
    }


def diagnostics_schema() -> dict[str, Any]:
    """The schema of `cg validate --format json` (schema/diagnostics.schema.json is a copy)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:cg:schema:diagnostics:1",
        "title": "cg diagnostics",
        "description": "The problems found by `cg validate --format json`, in file order; [] when every file"
        " is valid. `cg check --format json` puts the same objects in its report's `diagnostics`.",
        "type": "array",
        "items": {"$ref": "#/$defs/diagnostic"},
        "$defs": {"diagnostic": diagnostic_schema()},
    }
