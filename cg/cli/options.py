"""Options that several commands share, defined once (only click is imported here)."""

from __future__ import annotations

import click

inputs_option = click.option(
    "-i", "--inputs", "inputs", multiple=True, metavar="NAME=VALUE,...",
    help="Input values: x=2,y=3, v=[1,2,3], W=[[1,2],[3,4]], or x=@file.npy / @file.json. Repeatable.",
)
format_option = click.option(
    "-f", "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
output_option = click.option("-o", "--output", metavar="FILE", help="Write the result to FILE instead of stdout.")
precision_option = click.option(
    "-p", "--precision", type=click.IntRange(0, 17), default=4, show_default=True,
    help="Decimals shown in the table (JSON always has full precision).",
)
nonfinite_option = click.option(
    "--nonfinite", type=click.Choice(["error", "keep"]), default="error", show_default=True,
    help="On NaN or Inf: stop with an error naming the first node (error), or finish and mark them (keep).",
)
