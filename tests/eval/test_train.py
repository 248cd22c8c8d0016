"""cg/eval/train.py: minibatch gradient descent over the batched graph, against the same descent
written by hand in numpy."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cg as cglib
from cg.errors import UsageError
from cg.eval.train import Schedule, train

GRAPH = {"cg": 1, "imports": ["cg:nn"],
         "inputs": {"w": [0.0, 0.0], "b": 0.0, "x": {"shape": [2]}, "label": {"shape": []}},
         "nodes": {"z": {"expr": "w @ x + b"}, "p": {"op": "sigmoid", "in": ["z"]},
                   "loss": {"op": "bce", "in": ["p", "label"]}},
         "outputs": ["loss"]}


def data(n: int = 200) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 2))
    label = (x @ np.array([2.0, -1.0]) + 0.5 + 0.3 * rng.normal(size=n) > 0).astype(float)
    return {"x": x, "label": label}


def by_hand(d: dict[str, np.ndarray], schedule: Schedule) -> tuple[np.ndarray, float, list[float]]:
    w, b, losses = np.zeros(2), 0.0, []
    n = len(d["label"])
    for _ in range(schedule.epochs):
        total = 0.0
        for lo in range(0, n, schedule.batch):
            x, y = d["x"][lo:lo + schedule.batch], d["label"][lo:lo + schedule.batch]
            p = 1 / (1 + np.exp(-(x @ w + b)))
            total += float(np.sum(-(y * np.log(p) + (1 - y) * np.log(1 - p))))
            w, b = w - schedule.lr * (p - y) @ x / len(y), b - schedule.lr * float(np.mean(p - y))
        losses.append(total / n)
    return w, b, losses


def test_descent_is_the_hand_written_one() -> None:
    graph = cglib.loads(json.dumps(GRAPH), "logreg.json")
    schedule = Schedule(lr=0.5, epochs=15, batch=32)
    d = data()
    trained = train(graph, d, ["w", "b"], {}, schedule)
    w, b, losses = by_hand(d, schedule)
    np.testing.assert_allclose(trained.params["w"], w, rtol=1e-10)
    np.testing.assert_allclose(trained.params["b"], b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose([e.loss for e in trained.curve], losses, rtol=1e-10)
    assert trained.curve[-1].loss < 0.3 < trained.curve[0].loss


def test_shuffling_is_seeded() -> None:
    graph = cglib.loads(json.dumps(GRAPH), "logreg.json")
    one = train(graph, data(), ["w", "b"], {}, Schedule(epochs=3, shuffle=True, seed=4))
    two = train(graph, data(), ["w", "b"], {}, Schedule(epochs=3, shuffle=True, seed=4))
    other = train(graph, data(), ["w", "b"], {}, Schedule(epochs=3, shuffle=True, seed=5))
    assert np.array_equal(one.params["w"], two.params["w"]) and not np.array_equal(one.params["w"], other.params["w"])


@pytest.mark.parametrize(("params", "words"), [([], "at least one"), (["q"], "not a float input"),
                                               (["x"], "a column of the data")])
def test_bad_parameters(params: list[str], words: str) -> None:
    graph = cglib.loads(json.dumps(GRAPH), "logreg.json")
    with pytest.raises(UsageError, match=words):
        train(graph, data(), params, {})


def test_the_curve_as_csv_and_svg() -> None:
    import xml.etree.ElementTree as ET

    from cg.render.curve import curve_csv, curve_svg

    graph = cglib.loads(json.dumps(GRAPH), "logreg.json")
    curve = train(graph, data(), ["w", "b"], {}, Schedule(lr=0.5, epochs=6)).curve
    lines = curve_csv(curve).splitlines()
    assert lines[0] == "epoch,loss,grad_norm" and len(lines) == 7 and float(lines[6].split(",")[1]) == curve[-1].loss
    root = ET.fromstring(curve_svg(curve, "logreg <training>"))
    ns = "{http://www.w3.org/2000/svg}"
    assert len(root.findall(f"{ns}circle")) == 6 and root.find(f"{ns}polyline") is not None
    assert "logreg <training>" in {t.text for t in root.iter(f"{ns}text")}


def test_the_chart_of_one_epoch_and_of_negative_losses() -> None:
    from cg.eval.train import Epoch
    from cg.render.curve import curve_svg

    curves = ([Epoch(1, -0.5, 0.1)], [Epoch(1, 0.0, 0.0), Epoch(2, 0.0, 0.0)], [Epoch(1, -2.0, 1), Epoch(2, -3.0, 1)])
    for curve in curves:
        assert "nan" not in curve_svg(curve, "t") and "inf" not in curve_svg(curve, "t")
