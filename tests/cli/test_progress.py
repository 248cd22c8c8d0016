"""Long work on a terminal: a progress bar on stderr (never on a pipe, never for quick work), the
table of a huge graph summarised on a terminal, and `cg draw` refusing pictures nobody could read
unless --force. Terminal tests run cg on a pseudo-terminal; CG_PROGRESS_DELAY=0 makes the bar
appear at once, so they need no big graph and assert no time."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, cg

import cg as cg_api
from cg.check.gradients import check_graph
from cg.cli.draw import DRAW_LIMIT
from cg.eval.interp import run
from cg.eval.jacobian import jacobian
from cg.eval.plan import REPORTS
from cg.render.table import TERMINAL_ROWS

HIDE_CURSOR, SHOW_CURSOR = "\x1b[?25l", "\x1b[?25h"  # what rich writes when its bar starts and stops


def chain(path: Path, nodes: int) -> Path:
    lines = ["cg: 1", "inputs: {x: 0.5}", "nodes:", "  n0: {op: sin, in: [x]}"]
    lines += [f"  n{k}: {{op: sin, in: [n{k - 1}]}}" for k in range(1, nodes)]
    path.write_text("\n".join([*lines, f"outputs: [n{nodes - 1}]"]) + "\n", encoding="utf-8")
    return path


def terminal_env(**more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CG_NO_PROGRESS", "CG_PROGRESS_DELAY")}
    return {**env, "TERM": "xterm", "COLUMNS": "120", **more}


def _read_all(fd: int, proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    seen, end = b"", time.monotonic() + timeout
    while time.monotonic() < end:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                data = os.read(fd, 1 << 16)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            seen += data
        elif proc.poll() is not None:
            break
    return seen


def on_a_terminal(*args: str, env: dict[str, str] | None = None, stdout_piped: bool = False,
                  timeout: float = 120) -> tuple[str, str, int]:
    """cg as a person runs it: stdin and stderr on a pseudo-terminal, stdout too unless piped.
    Returns (what the terminal got, what the pipe got, exit code)."""
    parent, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "cg", *args], stdin=child, stderr=child, cwd=ROOT,
                            stdout=subprocess.PIPE if stdout_piped else child, env=env or terminal_env())
    os.close(child)
    try:
        seen = _read_all(parent, proc, timeout)
        piped = proc.stdout.read() if proc.stdout else b""
        code = proc.wait(timeout=timeout)
    finally:
        proc.kill()
        os.close(parent)
    return seen.decode("utf-8", "replace"), piped.decode("utf-8", "replace"), code


@pytest.fixture(scope="module")
def chain_1000(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return chain(tmp_path_factory.mktemp("progress") / "chain.yaml", 1000)


# ---- the bar ------------------------------------------------------------------------------------


def test_a_run_shows_a_bar_on_a_terminal_and_erases_it(chain_1000: Path) -> None:
    seen, _, code = on_a_terminal("run", str(chain_1000), env=terminal_env(CG_PROGRESS_DELAY="0"))
    assert code == 0
    assert f"reading {chain_1000}" in seen or "running 1,000 nodes" in seen  # the phase it had reached
    assert HIDE_CURSOR in seen and SHOW_CURSOR in seen  # drawn, then stopped (transient: erased)
    assert seen.index(SHOW_CURSOR) < seen.index("value and derivative")  # gone before the table


def test_no_bar_and_no_escape_codes_on_a_pipe(chain_1000: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CG_PROGRESS_DELAY", "0")
    r = cg("run", str(chain_1000))
    assert r.code == 0 and r.err == ""
    assert "\x1b" not in r.out and len(r.out.splitlines()) == 1 + 1 + 1000  # the header, x and every node


def test_quick_work_shows_no_bar_even_on_a_terminal() -> None:
    seen, _, code = on_a_terminal("run", "graphs/logreg.yaml", "--inputs", "x=2,y=3")
    assert code == 0 and "sigmoid" in seen  # the table...
    assert "reading" not in seen and HIDE_CURSOR not in seen  # ...and nothing else: done before the delay


@pytest.mark.parametrize("setting", [{"CG_NO_PROGRESS": "1"}, {"TERM": "dumb"}])
def test_the_bar_can_be_turned_off(chain_1000: Path, setting: dict[str, str]) -> None:
    seen, _, code = on_a_terminal("run", str(chain_1000), env=terminal_env(CG_PROGRESS_DELAY="0", **setting))
    assert code == 0 and "n999" in seen
    assert "reading" not in seen and HIDE_CURSOR not in seen


def test_check_shows_each_file_on_the_bar_and_keeps_results_on_stdout() -> None:
    files = ["graphs/logreg.yaml", "graphs/neuron.yaml"]
    seen, out, code = on_a_terminal("check", *files, env=terminal_env(CG_PROGRESS_DELAY="0"), stdout_piped=True)
    assert code == 0
    assert "checking graphs/logreg.yaml (1 of 2)" in seen and "checking graphs/neuron.yaml (2 of 2)" in seen
    assert "2 passed, 0 failed (2 files)" in seen  # the summary: stderr, after the bar
    assert out.startswith("graphs/logreg.yaml: ok") and "graphs/neuron.yaml: ok" in out  # results: stdout only
    assert "\x1b" not in out and "checking" not in out


def test_an_error_is_printed_after_the_bar_is_gone(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"  # a chain of 1,000 (some work, for the bar to be drawn), then log of a negative
    text = chain(bad, 1000).read_text(encoding="utf-8").replace("x: 0.5", "x: -0.5")
    bad.write_text(text.replace("outputs: [n999]", "  y: {op: log, in: [n999]}\noutputs: [y]"), encoding="utf-8")
    seen, _, code = on_a_terminal("run", str(bad), env=terminal_env(CG_PROGRESS_DELAY="0"))
    assert code == 1 and "[CG200]" in seen and "Traceback" not in seen
    assert HIDE_CURSOR in seen and seen.index(SHOW_CURSOR) < seen.index("node 'y'")  # not drawn over it
    kept = tmp_path / "kept.txt"  # a warning while the bar stays up (writing a file): hidden for it
    seen, _, code = on_a_terminal("run", str(bad), "--nonfinite", "keep", "-o", str(kept),
                                  env=terminal_env(CG_PROGRESS_DELAY="0"))
    assert code == 0 and kept.exists()
    warning = seen.index("cg: warning: not finite (NaN or Inf): y")
    assert seen.rfind(SHOW_CURSOR, 0, warning) > seen.rfind(HIDE_CURSOR, 0, warning)  # no bar on screen then


# ---- the library's hook: reports in spans, same numbers -------------------------------------------


def test_passes_report_in_spans_and_compute_the_same(chain_1000: Path) -> None:
    graph = cg_api.load(str(chain_1000))
    heard: list[tuple[str, int, int]] = []
    with_hook = run(graph, progress=lambda what, done, total: heard.append((what, done, total)))
    plain = run(graph)
    assert all(np.array_equal(with_hook.values[k], plain.values[k]) for k in plain.values)
    assert all(np.array_equal(with_hook.grads[k], plain.grads[k]) for k in plain.grads if plain.grads[k] is not None)
    forward = [h for h in heard if h[0] == "forward"]
    backward = [h for h in heard if h[0] == "backward"]
    assert forward[-1] == ("forward", 1000, 1000) and backward[-1][1] == backward[-1][2]
    assert len(forward) <= REPORTS + 1 and len(backward) <= REPORTS + 1  # a report per span, not per node
    tangents = []
    run(graph, tangents={"x": 1.0}, progress=lambda what, done, total: tangents.append(what))
    assert "forward mode" in tangents


def test_check_and_jacobian_report_their_passes() -> None:
    graph = cg_api.load(str(ROOT / "graphs" / "mlp.yaml"))
    heard: list[str] = []
    report = check_graph(graph, progress=lambda what, done, total: heard.append(what))
    assert report.ok and any(w.startswith("gradient of ") for w in heard)
    passes: list[tuple[str, int, int]] = []
    wrt = next(i.name for i in graph.inputs if i.aval.dtype == "float" and i.aval.shape)
    jacobian(graph, wrt=wrt, mode="forward", progress=lambda *a: passes.append(a))
    size = int(np.prod(graph.avals[wrt].shape))
    assert passes == [("batched forward-mode passes (columns)", 0, size)]  # one batched pass: all columns


# ---- the terminal table of a huge result --------------------------------------------------------


def test_a_huge_table_is_summarised_on_a_terminal_only(chain_1000: Path) -> None:
    seen, _, code = on_a_terminal("run", str(chain_1000))
    assert code == 0
    half = TERMINAL_ROWS // 2
    shown = [f"\u2502 {name} " for name in ("x", "n0", f"n{half - 2}", "n900", "n999")]  # first and last rows
    assert all(cell in seen for cell in shown), seen[-2000:]
    assert "\u2502 n500 " not in seen and f"\u2502 n{half - 1} " not in seen  # not the ones between
    hidden = 1001 - 2 * half
    note = " ".join(seen[seen.index(f"{hidden:,} rows not shown"):].split())  # the caption may wrap
    assert "-o FILE for all of them" in note and "pipe the output" in note


def _table_rows(text: str) -> Iterator[str]:
    return (line for line in text.splitlines() if line.startswith("n"))


def test_a_file_gets_every_row(chain_1000: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.txt"
    seen, _, code = on_a_terminal("run", str(chain_1000), "-o", str(out))
    assert code == 0 and seen.strip() == ""
    assert len(list(_table_rows(out.read_text(encoding="utf-8")))) == 1000


# ---- cg draw's limit ----------------------------------------------------------------------------


def test_draw_refuses_more_than_its_limit_unless_forced(tmp_path: Path) -> None:
    over = chain(tmp_path / "over.yaml", DRAW_LIMIT)  # x and DRAW_LIMIT nodes: one too many
    r = cg("draw", str(over), "-f", "mermaid")
    assert r.code == 2 and r.out == ""
    assert f"{DRAW_LIMIT + 1:,} inputs and nodes" in r.err and f"limit is {DRAW_LIMIT:,}" in r.err
    assert "--force" in r.err and "[CG322]" in r.err and str(over) in r.err
    forced = cg("draw", str(over), "-f", "mermaid", "--force")
    assert forced.code == 0 and f"n{DRAW_LIMIT - 1}<br/>sin" in forced.out
    under = chain(tmp_path / "under.yaml", DRAW_LIMIT - 1)
    assert cg("draw", str(under), "-f", "mermaid", "--no-values").code == 0


def test_draw_counts_the_boxes_it_draws() -> None:
    from cg.cli.draw import _boxes
    from cg.graph.composite import shown_nodes

    graph = cg_api.load(str(ROOT / "graphs" / "mlp.yaml"))  # two calls of a function: one box each
    assert _boxes(graph, "node") == len(graph.inputs) + len(shown_nodes(graph)) < len(graph.inputs) + len(graph.nodes)
    assert _boxes(graph, "cluster") == len(graph.inputs) + len(graph.nodes)  # clusters draw the inner nodes


def test_draw_help_states_the_limit() -> None:
    r = cg("draw", "--help")
    assert f"{DRAW_LIMIT:,}" in " ".join(r.out.split()) and "--force" in r.out
