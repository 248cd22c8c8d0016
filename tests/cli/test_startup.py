"""Start-up: what each command imports (bench/startup.py times it; no test asserts a time), and
the table of lazily imported commands (cg/cli/lazy.py) against the commands themselves."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from conftest import ROOT

from cg.cli.lazy import COMMANDS

HEAVY = {"numpy", "yaml", "jsonschema", "rich"}


def imported(tmp_path: Path, *args: str) -> set[str]:
    """The modules loaded by one `cg ARGS` process (output discarded)."""
    out = tmp_path / "modules.json"
    code = (f"import sys\nsys.argv = ['cg', *{list(args)!r}]\nfrom cg.cli import main\ntry:\n    main()\n"
            "except SystemExit:\n    pass\nimport json\n"
            f"open({str(out)!r}, 'w').write(json.dumps(sorted(sys.modules)))\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=120, check=True)
    return set(json.loads(out.read_text()))


@pytest.mark.parametrize("args", [("--version",), ("--help",)])
def test_version_and_help_import_click_and_little_else(tmp_path: Path, args: tuple[str, ...]) -> None:
    found = imported(tmp_path, *args)
    assert not found & HEAVY, found & HEAVY
    allowed = {"cg.cli", "cg.cli.group", "cg.cli.common", "cg.cli.lazy", "cg.limits"}
    assert not {m for m in found if m.startswith("cg.")} - allowed


def test_run_of_the_textbook_graph_needs_neither_jsonschema_nor_rich(tmp_path: Path) -> None:
    found = imported(tmp_path, "run", "graphs/log3x2p5xy.yaml", "--inputs", "x=2,y=3")
    assert "numpy" in found and "yaml" in found
    assert not found & {"jsonschema", "rich"}, found & {"jsonschema", "rich"}


def test_an_invalid_file_still_gets_jsonschema_messages(tmp_path: Path) -> None:
    found = imported(tmp_path, "validate", "tests/bad/unknown_attr.yaml")
    assert "jsonschema" in found


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_lazy_command_is_what_the_table_says(name: str) -> None:
    module, attr, text = COMMANDS[name]
    command = getattr(importlib.import_module(module), attr)
    assert isinstance(command, click.Command) and command.name == name
    first = (command.help or "").split("\n\n")[0]
    assert " ".join(first.split()) == text, f"update cg/cli/lazy.py: COMMANDS[{name!r}]"


def test_help_lists_the_same_lines_before_and_after_the_commands_are_imported() -> None:
    def help_text(preload: bool) -> str:
        code = ("import sys, click\nfrom cg.cli import main\nfrom cg.cli.lazy import COMMANDS\n"
                f"if {preload}:\n    for name in COMMANDS:\n        main.get_command(click.Context(main), name)\n"
                "sys.argv = ['cg', '--help']\nmain()\n")
        return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                              timeout=120).stdout

    lazy, loaded = help_text(False), help_text(True)
    assert lazy == loaded
    assert all(f"\n  {name} " in lazy for name in COMMANDS)


def test_the_collector_is_back_on_after_an_in_process_command() -> None:
    import gc

    from click.testing import CliRunner

    from cg.cli import main

    assert gc.isenabled()
    assert CliRunner().invoke(main, ["validate", str(ROOT / "graphs" / "log3x2p5xy.yaml")]).exit_code == 0
    assert gc.isenabled()
