"""Exercises graded per blank: `cg exercise` writes a worksheet and its answer template, and
`cg check FILE --answers` grades what was filled in (cg/check/answers.py, cg/render/exercise.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import GRAPHS, cg


def fill(template: Path, answers: dict[str, dict[str, object]]) -> Path:
    """The template with every null replaced from `answers` (what a student who got it right writes)."""
    data = yaml.safe_load(template.read_text())
    for kind in ("values", "grads"):
        for name in data.get(kind) or {}:
            data[kind][name] = answers[kind][name]
    template.write_text(yaml.safe_dump(data))
    return template


def right_answers(graph: str, *inputs: str) -> dict[str, dict[str, object]]:
    nodes = json.loads(cg("run", graph, *inputs, "-f", "json").out)["nodes"]
    return {"values": {n["id"]: n["value"] for n in nodes}, "grads": {n["id"]: n["grad"] for n in nodes}}


@pytest.mark.parametrize(("graph", "inputs", "blank"), [
    ("graphs/log3x2p5xy.yaml", ("--inputs", "x=2,y=3"), "grads"),
    ("graphs/staged.yaml", (), "both"),
    ("graphs/multiclass_logreg.yaml", (), "grads"),
])
def test_a_worksheet_round_trip(tmp_path: Path, graph: str, inputs: tuple[str, ...], blank: str) -> None:
    sheet = tmp_path / "sheet.md"
    made = cg("exercise", graph, *inputs, "--blank", blank, "-o", str(sheet))
    assert made.code == 0, made.err
    text = sheet.read_text()
    assert "____" in text and "```mermaid" in text and "## To fill in" in text
    template = tmp_path / "sheet.answers.yaml"
    assert "null" in template.read_text()
    unanswered = cg("check", graph, "--answers", str(template))
    assert unanswered.code == 1 and "not answered" in unanswered.out
    fill(template, right_answers(graph, *inputs))
    graded = cg("check", graph, "--answers", str(template))
    assert graded.code == 0, graded.out + graded.err
    total = len(yaml.safe_load(template.read_text()).get("grads") or {}) + len(
        yaml.safe_load(template.read_text()).get("values") or {})
    assert graded.out.splitlines()[0].endswith(f": {total} of {total} right")


def test_a_wrong_answer_gets_a_hint_from_the_step_view(tmp_path: Path) -> None:
    answers = tmp_path / "a.yaml"
    answers.write_text("inputs: {x: 2, y: 3}\nof: z\nvalues: {e: 41}\n"
                       "grads: {x: 0.3571, y: 0.2381, e: '1/42', z: 1}\n")
    r = cg("check", str(GRAPHS / "log3x2p5xy.yaml"), "--answers", str(answers))
    assert r.code == 1
    lines = r.out.splitlines()
    assert lines[0].endswith(": 2 of 5 right")
    # x fans out: only the stream from c was counted; the hint names both and the formulas
    assert "  WRONG  dz/dx: off; hint: dz/dx = dz/da × ∂a/∂x (∂a/∂x = 2x) + dz/dc × ∂c/∂x (∂c/∂x = y), added up" \
           " over its 2 consumers (fan-out)" in lines
    assert "  WRONG  dz/de: not a number; hint: dz/de = dz/dz × ∂z/∂e (∂z/∂e = 1/e)" in lines
    assert "  WRONG  e: off; hint: e = add(b, d): apply add to the values of b, d" in lines
    assert "  ok     dz/dy" in lines and "  ok     dz/dz" in lines


@pytest.mark.parametrize(("text", "says"), [
    ("[1, 2]", "expected a mapping"),
    ("grads: [1]", "grads: must map names to numbers"),
    ("answers: {}", "unknown key 'answers'"),
    ("grades: {x: 1}", "unknown key 'grades'"),
])
def test_a_bad_answer_file_is_a_usage_error(tmp_path: Path, text: str, says: str) -> None:
    answers = tmp_path / "a.yaml"
    answers.write_text(text + "\n")
    r = cg("check", "graphs/log3x2p5xy.yaml", "--answers", str(answers))
    assert r.code == 2 and says in r.err and "Traceback" not in r.err


def test_answers_need_one_file_and_no_against(tmp_path: Path) -> None:
    r = cg("check", "graphs/log3x2p5xy.yaml", "graphs/staged.yaml", "--answers", "a.yaml")
    assert r.code == 2 and "give one FILE" in r.err
    r = cg("exercise", "graphs/log3x2p5xy.yaml", "-o", str(tmp_path / "s.md"), "--answers", str(tmp_path / "s.md"))
    assert r.code == 2 and "two files" in r.err
