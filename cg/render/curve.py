"""`cg train`'s loss curve: a CSV (epoch, loss, gradient norm) and a small SVG line chart of the
loss per epoch, with labelled axes, drawn here (no plotting library needed)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from xml.sax.saxutils import escape

from cg.eval.train import Epoch
from cg.render.picture import FONT, GREY, INK, RED

WIDTH, HEIGHT, MARGIN = 560, 320, 56


def curve_csv(curve: Sequence[Epoch]) -> str:
    return "epoch,loss,grad_norm\n" + "".join(f"{e.epoch},{e.loss!r},{e.grad_norm!r}\n" for e in curve)


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round numbers between lo and hi (inclusive), about `count` of them."""
    if hi <= lo:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / count))
    step *= next(m for m in (1, 2, 5, 10) if (hi - lo) / (step * m) <= count)
    first = math.ceil(lo / step) * step
    return [first + k * step for k in range(int((hi - first) / step + 1e-9) + 1)]


def curve_svg(curve: Sequence[Epoch], title: str) -> str:
    """The mean loss per epoch as a polyline over labelled axes."""
    losses = [e.loss for e in curve]
    lo, hi = min(0.0, min(losses)), max(0.0, max(losses))
    if hi - lo <= 0:  # every loss 0: any scale will do
        hi = lo + 1.0
    span_x = max(len(curve) - 1, 1)
    plot_w, plot_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN

    def x(epoch: int) -> float:
        return MARGIN + plot_w * (epoch - 1) / span_x

    def y(loss: float) -> float:
        return HEIGHT - MARGIN - plot_h * (loss - lo) / (hi - lo)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="{FONT}" font-size="11">',
             f'<text x="{MARGIN}" y="{MARGIN / 2:.0f}" font-size="13" fill="{INK}">{escape(title)}</text>',
             f'<line x1="{MARGIN}" y1="{HEIGHT - MARGIN}" x2="{WIDTH - MARGIN}" y2="{HEIGHT - MARGIN}" '
             f'stroke="{INK}"/>',
             f'<line x1="{MARGIN}" y1="{MARGIN}" x2="{MARGIN}" y2="{HEIGHT - MARGIN}" stroke="{INK}"/>']
    for t in _ticks(lo, hi):
        parts.append(f'<line x1="{MARGIN}" y1="{y(t):.1f}" x2="{WIDTH - MARGIN}" y2="{y(t):.1f}" stroke="{GREY}" '
                     'stroke-dasharray="2 3"/>')
        parts.append(f'<text x="{MARGIN - 6}" y="{y(t) + 4:.1f}" text-anchor="end" fill="{INK}">{t:g}</text>')
    for t in _ticks(1, len(curve)):
        if float(t).is_integer():
            parts.append(f'<text x="{x(int(t)):.1f}" y="{HEIGHT - MARGIN + 16}" text-anchor="middle" '
                         f'fill="{INK}">{int(t)}</text>')
    parts.append(f'<text x="{WIDTH / 2:.0f}" y="{HEIGHT - 12}" text-anchor="middle" fill="{INK}">epoch</text>')
    parts.append(f'<text x="14" y="{HEIGHT / 2:.0f}" text-anchor="middle" fill="{INK}" '
                 f'transform="rotate(-90 14 {HEIGHT / 2:.0f})">mean loss</text>')
    points = " ".join(f"{x(e.epoch):.1f},{y(e.loss):.1f}" for e in curve)
    parts.append(f'<polyline points="{points}" fill="none" stroke="{RED}" stroke-width="2"/>')
    parts += [f'<circle cx="{x(e.epoch):.1f}" cy="{y(e.loss):.1f}" r="2.5" fill="{RED}"><title>epoch {e.epoch}: '
              f'loss {e.loss:.4f}</title></circle>' for e in curve]
    return "\n".join([*parts, "</svg>"]) + "\n"
