"""The limits that keep a pushed file from eating the machine, and how to raise them.

A graph file in someone's repository is untrusted input to a CI job: it must not make cg
allocate 80 GB (`shape: [100000, 100000]`), build a billion nodes, or read a 10 GB file. Each
limit is generous for real graphs and can be raised, for one run, by an environment variable
(`CG_MAX_ELEMENTS=1e8 cg check big.yaml`) or by the `cg` options of the same name
(`cg --max-elements 1e8 check big.yaml`). An exceeded limit is a CG004 diagnostic naming the
limit and the variable that raises it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 50 * 1024 * 1024  # size of a graph file
    max_depth: int = 64  # nesting of YAML collections (a tensor literal of 64 dimensions is absurd)
    # Every YAML value costs ~350 bytes in the document and as much again in the graph: two
    # million (about 300,000 nodes, or a 2,000,000-entry constant) stay well under 2 GB.
    max_values: int = 2_000_000
    max_nodes: int = 1_000_000  # nodes of a graph, after composites and expressions are expanded
    max_elements: int = 10_000_000  # numbers in one tensor (80 MB of float64; the W3 MLP's biggest is 0.8M)
    # Numbers a command holds or computes in all (cg/cli/budget.py): values, gradients, edges, the
    # passes of check and jacobian, numbers written out. Just under it (bench/scaling.py memory),
    # the most memory any command took was 1.27 GB (`cg run` of 4 pow nodes of 10 M numbers that
    # reuse their input; 4 sines: 0.88 GB; `cg report`/`draw` 1.0 GB; `cg jacobian` 0.56 GB;
    # `cg check` 0.7 GB, and 12 s at most), so everything admitted stays under 2 GiB. The W3 MLP
    # (bench/w3_mlp.py) runs with 3.6 M; its `cg check` computes 1.3 G (6 s, 0.1 GB): raise it.
    max_total: int = 100_000_000

    @staticmethod
    def env_name(field: str) -> str:
        return "CG_" + field.upper()

    def hint(self, field: str) -> str:
        """How to raise a limit, for the end of a message."""
        return f"raise it with {self.env_name(field)}=N or `cg --{field.replace('_', '-')} N`"


class LimitValueError(ValueError):
    """An environment variable that does not hold a positive number."""


def parse_limit(text: str, what: str) -> int:
    """A positive count; `1e9` and `1_000_000` are accepted, as people write big numbers that way."""
    try:
        value = float(text.replace("_", "")) if any(c in text for c in ".eE") else int(text.replace("_", ""))
    except ValueError:
        raise LimitValueError(f"{what} must be a positive whole number, not {text!r}") from None
    if not 1 <= value <= 2**62 or value != int(value):  # in this order: int(inf) would raise
        raise LimitValueError(f"{what} must be a positive whole number, not {text!r}")
    return int(value)


def from_env(environ: os._Environ[str] | dict[str, str] | None = None) -> Limits:
    env = os.environ if environ is None else environ
    given = {}
    for f in fields(Limits):
        text = env.get(Limits.env_name(f.name))
        if text:
            given[f.name] = parse_limit(text, Limits.env_name(f.name))
    return Limits(**given)


_current: Limits | None = None


def current() -> Limits:
    """The limits in force: those set by set_current(), else the environment's, else the defaults.

    A bad environment variable is not this module's to report (library code raises, the CLI
    reports): the CLI reads the environment first with from_env() and stops with a usage error.
    """
    global _current
    if _current is None:
        try:
            _current = from_env()
        except LimitValueError:
            _current = Limits()
    return _current


def set_current(limits: Limits | None) -> None:
    """Set the limits for what follows (None: back to the environment and defaults)."""
    global _current
    _current = limits


def raised(**changes: int) -> Limits:
    """The current limits with some changed (e.g. raised(max_elements=10**9))."""
    return replace(current(), **changes)


# ---- where imports may come from (cg/graph/imports.py) -------------------------------------------------

ALLOW_PATH_ENV = "CG_ALLOW_PATH"
_allowed: tuple[str, ...] | None = None


def env_allowed_paths(environ: os._Environ[str] | dict[str, str] | None = None) -> tuple[str, ...]:
    """The folders of CG_ALLOW_PATH (os.pathsep-separated, as PATH)."""
    env = os.environ if environ is None else environ
    return tuple(p for p in env.get(ALLOW_PATH_ENV, "").split(os.pathsep) if p)


def allowed_paths() -> tuple[str, ...]:
    """The folders, besides the main file's, that `imports:` may read from: those set by
    set_allowed_paths() (the CLI: CG_ALLOW_PATH and `cg --allow-path`), else CG_ALLOW_PATH's."""
    return env_allowed_paths() if _allowed is None else _allowed


def set_allowed_paths(paths: tuple[str, ...] | None) -> None:
    """Set the allowed folders for what follows (None: back to CG_ALLOW_PATH)."""
    global _allowed
    _allowed = paths
