"""Subcommands that live in their own modules, imported only when one of them is run (or asked for
its own help), so `cg --version` and `cg --help` cost little more than importing click.

Adding a command module: add one line to COMMANDS (name -> module, attribute, the first paragraph
of its help); tests/cli/test_startup.py checks that each line matches the command it names.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click
from click import formatting

COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("cg.cli.run", "run", "Run FILE forward and backward and print every node's value and gradient."),
    "schema": ("cg.cli.schema", "schema", "Print the JSON Schema of graph files (or of run results, diagnostics"
               " or snapshots)."),
    "validate": ("cg.cli.validate", "validate", "Check graph files (and *.yaml / *.yml files in directories)"
                 " without running them."),
    "check": ("cg.cli.check", "check", "Check the gradients of graph files (and *.yaml / *.yml in directories):"
              " against central finite differences, forward against reverse mode, and against each file's"
              " `expect` block."),
    "compile": ("cg.cli.compile", "compile_command", "Write FILE as a Python module: forward(**inputs) and"
                " backward(values), one line per node, gradients accumulated with +=, a comment naming each"
                " node and op."),
    "draw": ("cg.cli.draw", "draw", "Draw FILE: each edge carries the value of its source (green) above the"
             " gradient that flows back along it (red); nodes with no path to the differentiated output are"
             " grey."),
    "exercise": ("cg.cli.exercise", "exercise", "Write a worksheet for FILE: the figure without numbers, the inputs,"
                 " and a table with the values or gradients blanked, with an answer template that `cg check"
                 " --answers` grades."),
    "fmt": ("cg.cli.fmt", "fmt", "Rewrite graph files (and *.yaml / *.yml files in directories) in canonical"
            " form, keeping comments."),
    "jacobian": ("cg.cli.jacobian", "jacobian", "The Jacobian d OF / d WRT of FILE: one row per element of"
                 " --of, one column per element of --wrt (higher ranks are flattened, the labels show the"
                 " indices)."),
    "new": ("cg.cli.new", "new", "Write a graph file computing EXPR: one node per operation (a, b, c, ...),"
            " the last one the output (z), each free name a float scalar input with no value (to stdout,"
            " or -o FILE)."),
    "ops": ("cg.cli.ops", "ops", "List the ops with their inputs, attributes, a doc line and their local derivatives."),
    "paths": ("cg.cli.paths", "paths", "Every path from --from to --to in FILE, with the product of the local"
              " derivatives on its edges, and their sum next to reverse mode's derivative (they are equal)."),
    "step": ("cg.cli.step", "step", "Step through the passes of FILE one node at a time: forward values, then"
             " gradients in reverse order, each the sum of what the node's consumers sent, times each local"
             " derivative."),
    "import": ("cg.cli.import_", "import_command", "Import an ONNX MODEL (opset 13 and later) as a cg graph file:"
               " initializers become parameters (their values in a sidecar .npz), and cg's value of every node is"
               " checked against ONNX's reference evaluator at a sample point before anything is written."),
    "export": ("cg.cli.export", "export_command", "Write FILE as an ONNX model (opset 18, float64): node names are"
               " cg ids, inputs with a default are initializers, and the model passes ONNX's full checker. When"
               " the graph can run, ONNX's reference evaluator runs the model and its outputs must equal cg's."),
    "grad": ("cg.cli.grad", "grad_command", "Write the backward pass of FILE as a graph file: the forward nodes,"
             " then one node per step of the backward pass in reverse order (dz_e, dz_x_from_a, fan-out sums as add"
             " nodes), each with a doc naming the rule it applies. Its outputs: OF, then d OF / d each input."),
    "hessian": ("cg.cli.grad", "hessian_command", "The Hessian d²OF / dWRT² of FILE, by differentiating its gradient"
                " graph (`cg grad`): one row per element of d OF / d WRT, one column per element of WRT, in the"
                " formats of cg jacobian."),
    "train": ("cg.cli.train", "train_command", "Train the parameters of FILE by minibatch gradient descent on the"
              " mean loss over the rows of --data; print the loss per epoch and the parameters, and write them and"
              " the loss curve."),
    "report": ("cg.cli.report", "report", "Run FILE and write a Markdown report: name, doc, inputs, picture,"
               " values and gradients, and the command line that reproduces it (to stdout, or to -o FILE)."),
}


class LazyGroup(click.Group):
    """A click group whose commands in COMMANDS are imported on first use, and which measures the
    terminal for help itself (click's way imports shutil, and with it zlib, bz2 and lzma)."""

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(COMMANDS if lazy is None else lazy)

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        if parent is None and "terminal_width" not in extra and formatting.FORCED_WIDTH is None:
            extra["terminal_width"] = help_width()
        return super().make_context(info_name, args, parent, **extra)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module, attr, _ = self.lazy[cmd_name]
            self.add_command(getattr(importlib.import_module(module), attr), cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, but the help of a command not imported yet comes from COMMANDS."""
        names = [n for n in self.list_commands(ctx) if n in self.lazy or not self.commands[n].hidden]
        if not names:
            return
        limit = formatter.width - 6 - max(map(len, names))
        rows: list[tuple[str, str]] = []
        for name in names:
            command = self.commands.get(name)
            if command is not None:
                rows.append((name, command.get_short_help_str(limit)))
            else:
                stand_in = click.Command(name, help=self.lazy[name][2])  # shortened the way click does it
                rows.append((name, stand_in.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def help_width(max_width: int = 80) -> int:
    """The width click's help formatter would choose, as shutil.get_terminal_size() finds it:
    COLUMNS, else the size of the terminal on stdout, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return max(min(columns if columns > 0 else 80, max_width) - 2, 50)
