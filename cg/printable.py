"""Text from a graph file or the command line, made safe to show on a terminal or in a document.

A graph's name, the docs of its inputs, nodes and functions, the YAML keys and ids quoted in
messages, and file names are written by whoever wrote the file. YAML's double-quoted escapes
("\\e]0;title\\a") and JSON's \\u001b make any character of them, so without care a graph file
could set the terminal's title, write the clipboard (OSC 52), hide a link (OSC 8), move the
cursor, or reorder what a reader sees with bidi controls ("Trojan Source").

`printable` shows those characters as escapes, in Python's spelling: every C0 control, DEL
and every C1 control (U+0080-U+009F) as `\\x1b`, except tab, newline and carriage return as
`\\t`, `\\n`, `\\r`; the bidi controls (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069) as
`\\u202e`. Every other character is kept: 'é', 'θ', '→' and emoji are text, not controls.

Newlines and tabs: `printable` is for one line (a diagnostic, a table cell, a title), where a
newline or a tab would break the line or the columns, so it escapes them too. Multi-line text
(a doc shown as a paragraph) goes through `printable_lines`, which splits it at its line ends
("\\n" and "\\r\\n"; a lone "\\r", which would return to the start of the line and write over it,
is escaped) and keeps tabs, which only move the cursor forward.

The escapes are for people to read, not a lossless encoding: a backslash is not doubled, so a
text that already holds `\\x1b` reads the same. Formats that must round-trip (JSON) escape in
their own syntax instead.
"""

from __future__ import annotations

import re

_NAMED = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
# Bidi formatting characters: embeddings, overrides, isolates, and the three marks.
BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
CONTROLS = (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0))
# Lone surrogates: how Python holds the bytes of a file name that is not UTF-8 (b"\x9b" is
# "\udc9b"); written out they would be those raw bytes again (0x9b starts an escape sequence).
SURROGATES = tuple(range(0xD800, 0xE000))


def _escape(code: int) -> str:
    return _NAMED.get(code) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


_TABLE = {code: _escape(code) for code in (*CONTROLS, *BIDI, *SURROGATES)}
# A search first: most text has none of them, and a regex search is faster than a translate.
_FOUND = re.compile("[" + "".join(re.escape(chr(c)) for c in _TABLE) + "]")
_KEEP_TAB = {code: text for code, text in _TABLE.items() if code != 0x09}
_FOUND_NOT_TAB = re.compile("[" + "".join(re.escape(chr(c)) for c in _KEEP_TAB) + "]")
_LINE_END = re.compile(r"\r?\n")


def printable(text: str) -> str:
    """One line with every control character and bidi control shown as an escape (`\\x1b`,
    `\\n`, `\\u202e`); other characters, ordinary Unicode included, unchanged."""
    return text.translate(_TABLE) if _FOUND.search(text) else text


def printable_lines(text: str) -> list[str]:
    """Multi-line text as its lines, each printable; tabs are kept (they only move forward)."""
    return [line.translate(_KEEP_TAB) if _FOUND_NOT_TAB.search(line) else line for line in _LINE_END.split(text)]


def printable_text(text: str) -> str:
    """Multi-line text, printable, with its line ends as "\\n" (see printable_lines)."""
    return "\n".join(printable_lines(text))


# In bash's $'...' quoting (also zsh, ksh and POSIX.1-2024 sh) \xHH is a byte, so the C1 controls
# are written \u0080 (a character, UTF-8 in a UTF-8 locale); the rest as printable writes them.
_SHELL = {code: f"\\u{code:04x}" if code >= 0x80 else text for code, text in _TABLE.items()}


def shell_word(word: str) -> str:
    """A word of a command line shown for copying (`cg report`'s "Reproduce"): shlex.quote's
    quoting, or, for a word with control characters, $'...' with escapes, which a shell turns
    back into the same word and a terminal shows as text."""
    if _FOUND.search(word) is None:
        import shlex  # here: errors and diagnostics import this module, and only cg report quotes

        return shlex.quote(word)
    return "$'" + word.replace("\\", "\\\\").replace("'", "\\'").translate(_SHELL) + "'"
