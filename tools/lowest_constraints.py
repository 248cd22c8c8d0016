"""The lowest versions that pyproject.toml declares, as a pip constraints file (`name==lower bound`).

`make test-lowest` installs cg with these and runs the tests, so a lower bound in pyproject.toml is
a tested fact, not a guess. The lower bound of a requirement is its `>=`, `~=` or `==` version; a
requirement with none (`types-PyYAML`) is left free and listed as a comment. Every requirement is
read: `[project] dependencies`, each of `[project.optional-dependencies]` and
`[build-system] requires`.

    python tools/lowest_constraints.py [pyproject.toml]                   # the constraints
    python tools/lowest_constraints.py --build-requires [pyproject.toml]  # [build-system] requires

Python 3.11 and later read pyproject.toml with tomllib; 3.10 has none, and this script installs
nothing, so there a small reader of the part of TOML that pyproject.toml uses here takes its place.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

_NAME = re.compile(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[^\]]*\])?\s*(.*)", re.S)
_BOUND = re.compile(r"\s*(>=|~=|===|==)\s*([0-9][0-9A-Za-z.+!-]*)\s*")


def normalize(name: str) -> str:
    """The package name as the package index compares names (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def load(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib.loads(text)
    return parse_simple_toml(text)  # Python 3.10


def requirements(pyproject: dict[str, Any]) -> list[str]:
    """Every requirement the project declares, in the order of the file: build, run, extras."""
    project = pyproject.get("project", {})
    found = list(pyproject.get("build-system", {}).get("requires", []))
    found += project.get("dependencies", [])
    for extra in project.get("optional-dependencies", {}).values():
        found += extra
    return found


def lower_bound(requirement: str) -> tuple[str, str | None, str]:
    """(name, lowest version or None, environment marker or '') of one requirement string."""
    spec, _, marker = requirement.partition(";")
    m = _NAME.fullmatch(spec)
    if m is None:
        raise ValueError(f"cannot read the requirement {requirement!r}")
    name, rest = m.group(1), m.group(3).strip()
    if rest.startswith("@"):  # a direct reference (name @ url): no version to speak of
        return name, None, marker.strip()
    bounds = []
    for clause in filter(None, (c.strip() for c in rest.strip("()").split(","))):
        b = _BOUND.fullmatch(clause)
        if b is not None and "*" not in b.group(2):
            bounds.append(b.group(2))
    if len(bounds) > 1:
        raise ValueError(f"{requirement!r} has more than one lower bound")
    return name, bounds[0] if bounds else None, marker.strip()


def constraints(pyproject: dict[str, Any]) -> list[str]:
    """The lines of the constraints file: `name==version`, one per package and environment marker
    (the highest bound wins: `setuptools` is both a build and a dev requirement)."""
    lowest: dict[tuple[str, str], tuple[str, str]] = {}
    free: dict[str, str] = {}
    for requirement in requirements(pyproject):
        name, version, marker = lower_bound(requirement)
        key = (normalize(name), marker)
        if version is None:
            free.setdefault(key[0], name)
        elif key not in lowest or _release(version) > _release(lowest[key][1]):
            lowest[key] = (name, version)
    lines = ["# The lowest versions pyproject.toml allows (tools/lowest_constraints.py); do not edit."]
    for (_key, marker), (name, version) in sorted(lowest.items()):
        lines.append(f"{name}=={version}" + (f"; {marker}" if marker else ""))
    bounded = {key for key, _ in lowest}
    lines += [f"# {name}: no lower bound declared, so the newest" for key, name in sorted(free.items())
              if key not in bounded]
    return lines


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0]))


# ---- a reader for the TOML of pyproject.toml, for Python 3.10 -------------------------------------


def parse_simple_toml(text: str) -> dict[str, Any]:
    """Tables, and keys whose value is a string or an array of strings (on one line or many); other
    values (numbers, booleans, inline tables) and arrays of tables are skipped. Enough for
    requirements(): an error rather than a wrong answer for anything it does not know."""
    root: dict[str, Any] = {}
    table: dict[str, Any] | None = root
    lines = iter(text.splitlines())
    for raw in lines:
        line = _strip_comment(raw).strip()
        if not line:
            continue
        if line.startswith("[["):  # an array of tables ([[tool.mypy.overrides]]): not needed here
            table = None
            continue
        if line.startswith("["):
            table = root
            for part in _split_key(line.strip("[] ")):
                table = table.setdefault(part, {})
            continue
        key, eq, value = line.partition("=")
        if not eq:
            raise ValueError(f"cannot read the TOML line {raw!r}")
        if value.strip().startswith("["):
            while _depth(value) > 0:  # an array that goes on over the next lines
                value += " " + _strip_comment(next(lines))
        if table is None:
            continue
        *parents, last = _split_key(key.strip())
        target = table
        for part in parents:
            target = target.setdefault(part, {})
        parsed = _value(value.strip())
        if parsed is not None:
            target[last] = parsed
    return root


_STRING = r'"(?:[^"\\]|\\.)*"|\'[^\']*\''


def _strip_comment(line: str) -> str:
    out = re.match(rf"(?:{_STRING}|[^#\"'])*", line)
    return out.group(0) if out else line


def _split_key(key: str) -> list[str]:
    return [_unquote(p.strip()) for p in re.findall(rf"{_STRING}|[^.]+", key)]


def _depth(value: str) -> int:
    bare = re.sub(_STRING, "", value)
    return bare.count("[") - bare.count("]")


def _unquote(token: str) -> str:
    if token[:1] == '"':
        return token[1:-1].encode("utf-8").decode("unicode_escape") if "\\" in token else token[1:-1]
    return token[1:-1] if token[:1] == "'" else token


def _value(value: str) -> str | list[str] | None:
    if re.fullmatch(_STRING, value):
        return _unquote(value)
    if value.startswith("[") and value.endswith("]"):
        inner = value[1:-1]
        items = re.findall(_STRING, inner)
        if re.sub(_STRING, "", inner).strip(" ,\t") == "":
            return [_unquote(i) for i in items]
    return None


def main(argv: list[str]) -> int:
    build_only = "--build-requires" in argv
    paths = [a for a in argv if a != "--build-requires"]
    pyproject = load(Path(paths[0]) if paths else ROOT / "pyproject.toml")
    lines = list(pyproject.get("build-system", {}).get("requires", [])) if build_only else constraints(pyproject)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
