"""Write graphs/data/binary_logreg.csv and .npz: 300 examples for the notes' binary logistic
regression (graphs/binary_logreg.yaml: parameters w [3] and b, features x [3], label y; its loss is
the node nll: `cg run graphs/binary_logreg.yaml --of nll --data graphs/data/binary_logreg.csv`).

Seeded, so running it again gives the same bytes: `python tools/make_logreg_data.py`. The labels
are drawn from the model itself with w* = [1.5, -2, 0.5], b* = -0.25 (p = sigmoid(w*.x + b*)), so
the data set is learnable but not separable. Columns: x_0, x_1, x_2 (the features, a vector input
split row-major) and y (the label, 0 or 1).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

ROWS = 300
SEED = 15
W_TRUE = np.array([1.5, -2.0, 0.5])
B_TRUE = -0.25
OUT = Path(__file__).resolve().parent.parent / "graphs" / "data"


def make(rows: int = ROWS, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=(rows, 3)), 4)  # four decimals: the CSV holds them exactly
    p = 1 / (1 + np.exp(-(x @ W_TRUE + B_TRUE)))
    y = (rng.random(rows) < p).astype(np.float64)
    return x, y


def main() -> None:
    x, y = make()
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "binary_logreg.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["x_0", "x_1", "x_2", "y"])
        for xi, yi in zip(x, y):
            w.writerow([*(f"{v:.4f}" for v in xi), f"{yi:.0f}"])
    with open(OUT / "binary_logreg.npz", "wb") as f:  # the same rows, x as one column of whole vectors
        np.savez(f, x=x, y=y)
    print(f"wrote {OUT / 'binary_logreg.csv'} and .npz: {len(y)} rows, {int(y.sum())} labelled 1")


if __name__ == "__main__":
    main()
