"""The ablation chart (ablation.png): per metric a panel, per trained variant a row with the
change vs base as a bar, its 95% paired-bootstrap interval as a whisker, and the number.

Losses are relative changes (-0.25 = 25% lower, better), accuracies differences in points of
1.0 (+0.05 = five points more, better). Each panel has its own axis with round tick values.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any

WIDTH = 900
MARGIN = 12
FONT_SIZE = 13
HEADER_H = 26
TITLE_H = 22
ROW_H = 24
AXIS_H = 28
PANEL_GAP = 16
LEGEND_H = 30
TICK_LEN = 4
CAP_H = 8
BAR_PAD = 6  # bar inset from the row's top and bottom
TEXT_GAP = 6  # between a whisker end and its number
LABEL_MIN, LABEL_MAX = 80, 240  # width of the variant-name column
TICK_TARGET = 6  # about this many intervals on an axis
TICK_STEPS = (1.0, 2.0, 5.0)  # a tick step is one of these times a power of ten
EMPTY_SPAN = 0.01  # the half-width of an axis whose data is all 0 (1% or 1 point)
MINUS = "-"  # the default font has no U+2212 minus sign

GREEN = (46, 150, 70)
RED = (205, 50, 45)
GREY = (160, 160, 160)
INK = (30, 30, 30)
MUTED = (110, 110, 110)
GRID = (228, 228, 228)
ZERO = (90, 90, 90)

PANELS = (  # (metric key, title, is an accuracy)
    ("test_loss", "test domain loss change vs base (%)", False),
    ("general_loss", "general loss change (%)", False),
    ("covered_test_acc_norm", "test covered acc_norm change (pts)", True),
    ("uncovered_test_acc_norm", "test uncovered acc_norm change (pts)", True),
    ("knowledge_test_acc_norm", "test covered - uncovered (pts)", True),
    ("test_acc_norm", "test MC acc_norm change (pts)", True),  # only without the covered keys
)
COVERED = ("covered_test_acc_norm", "uncovered_test_acc_norm")
LEGEND = (
    (GREEN, "better, interval excludes 0"),
    (RED, "worse, interval excludes 0"),
    (GREY, "interval contains 0"),
)
LEGEND_NOTE = "whiskers: 95% paired bootstrap interval vs base"

Panel = tuple[str, str, bool]
Change = dict[str, float]
Scale = Callable[[float], float]  # a value to its x pixel


def nice_ticks(lo: float, hi: float, target: int = TICK_TARGET) -> list[float]:
    """Round tick values covering [min(lo, 0), max(hi, 0)]: the step is the smallest 1, 2 or 5
    times a power of ten that gives at most `target` intervals over that range, and the ticks
    are the step's multiples from just below to just above it; all 0 spans +-EMPTY_SPAN.

    nice_ticks(-0.342, 0.05) == [-0.4, -0.3, -0.2, -0.1, 0.0, 0.1]
    """
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < 1e-12:
        lo, hi = -EMPTY_SPAN, EMPTY_SPAN
    raw = (hi - lo) / target
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(round(m * power, 12) for m in (*TICK_STEPS, 10.0) if m * power >= raw - 1e-12)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [round(i * step, 12) + 0.0 for i in range(first, last + 1)]


def _signed(number: float, decimals: int) -> str:
    """'+3.5', '-3.5', or '0.0' without a sign where it rounds to 0; _signed(-0.04, 1) == '0.0'."""
    text = f"{abs(number):.{decimals}f}"
    if float(text) == 0:
        return text
    return ("+" if number > 0 else MINUS) + text


def tick_label(value: float, step: float, is_acc: bool) -> str:
    """An axis label in percent (losses) or points (accuracies), as few decimals as the step
    needs; tick_label(-0.3, 0.1, False) == '-30%', tick_label(0.05, 0.05, True) == '+5'."""
    if abs(value) < 1e-12:
        return "0"
    decimals = max(0, -math.floor(math.log10(step * 100) + 1e-9))
    return _signed(value * 100, decimals) + ("" if is_acc else "%")


def change_label(change: Change | None, is_acc: bool) -> str:
    """The number at a bar's end; change_label({"value": -0.298, "lo": -0.342, "hi": -0.26},
    False) == '-29.8% [-34.2, -26.0]'; 'no data' for None."""
    if not change:
        return "no data"
    value, lo, hi = (_signed(change[k] * 100, 1) for k in ("value", "lo", "hi"))
    return f"{value}{'' if is_acc else '%'} [{lo}, {hi}]"


def verdict(change: Change | None, lower_is_better: bool) -> str:
    """'better' or 'worse' when the interval excludes 0, else 'noise' (also for None);
    verdict({"value": -0.1, "lo": -0.2, "hi": -0.05}, True) == 'better'."""
    if not change or change["lo"] <= 0 <= change["hi"]:
        return "noise"
    down = change["hi"] < 0
    return "better" if down == lower_is_better else "worse"


def bar_color(change: Change | None, lower_is_better: bool) -> tuple[int, int, int]:
    """GREEN, RED or GREY by verdict(); bar_color({"value": 0.1, "lo": 0.02, "hi": 0.2},
    True) == RED."""
    return {"better": GREEN, "worse": RED, "noise": GREY}[verdict(change, lower_is_better)]


def chart_panels(result: dict[str, Any]) -> list[Panel]:
    """The panels with data in some variant's metrics, in PANELS order; test_acc_norm only when
    neither covered key is there. chart_panels({"variants": {}}) == []."""
    present = {k for v in result["variants"].values() for k in v.get("metrics") or {}}
    skip = {"test_acc_norm"} if present & set(COVERED) else set()
    return [p for p in PANELS if p[0] in present and p[0] not in skip]


def chart_rows(result: dict[str, Any]) -> list[str]:
    """The variants drawn as rows: all but base; chart_rows({"variants": {"base": {}}}) == []."""
    return [name for name in result["variants"] if name != "base"]


def chart_height(panels: int, rows: int) -> int:
    """The image height for that many panels of that many rows (at least one row each);
    chart_height(0, 0) == HEADER_H + LEGEND_H + 2 * MARGIN."""
    panel = TITLE_H + max(rows, 1) * ROW_H + AXIS_H + PANEL_GAP
    return HEADER_H + panels * panel + LEGEND_H + 2 * MARGIN


def _font(size: int = FONT_SIZE) -> Any:
    """PIL's default font at `size` where Pillow (>= 10.1 with FreeType) can scale it, else the
    default bitmap font."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


class _Canvas:
    """A drawing with its font and the x-layout every panel shares."""

    def __init__(self, draw: Any, font: Any, label_w: float, number_w: float) -> None:
        self.draw, self.font = draw, font
        self.label_x = MARGIN
        self.plot_left = MARGIN + label_w + 10
        self.plot_right = WIDTH - MARGIN - number_w

    def text(self, xy: tuple[float, float], text: str, fill: Any = INK) -> None:
        """Draws text in the canvas font."""
        self.draw.text(xy, text, fill=fill, font=self.font)

    def width(self, text: str) -> float:
        """The drawn width of text in pixels."""
        return self.draw.textlength(text, font=self.font)


def _fit(canvas: _Canvas, name: str) -> str:
    """The variant name, cut with '…' to fit the label column."""
    room = canvas.plot_left - 10 - canvas.label_x
    if canvas.width(name) <= room:
        return name
    while name and canvas.width(name + "…") > room:
        name = name[:-1]
    return name + "…"


def _axis_range(cells: list[Change | None]) -> list[float]:
    """The ticks for a panel's cells (value and interval ends, and 0)."""
    ends = [c[k] for c in cells if c for k in ("value", "lo", "hi")]
    return nice_ticks(min(ends, default=0.0), max(ends, default=0.0))


def _draw_axis(canvas: _Canvas, ticks: list[float], x_of: Scale, top: float, bottom: float,
               is_acc: bool) -> None:  # fmt: skip
    """Grid lines at the ticks from top to bottom, tick marks and labels under bottom, and the
    zero line over the grid."""
    step = round(ticks[1] - ticks[0], 12)
    draw = canvas.draw
    for t in ticks:
        x = x_of(t)
        draw.line([x, top, x, bottom], fill=GRID)
        draw.line([x, bottom, x, bottom + TICK_LEN], fill=INK)
        label = tick_label(t, step, is_acc)
        canvas.text((x - canvas.width(label) / 2, bottom + TICK_LEN + 3), label, fill=MUTED)
    draw.line([canvas.plot_left, bottom, canvas.plot_right, bottom], fill=INK)
    draw.line([x_of(0.0), top, x_of(0.0), bottom], fill=ZERO, width=1)


def _draw_row(canvas: _Canvas, y: float, name: str, cell: Change | None, x_of: Scale,
              is_acc: bool) -> None:  # fmt: skip
    """One variant: its name, the bar from 0 to the change, the whisker, the number."""
    mid = y + ROW_H / 2
    canvas.text((canvas.label_x, mid - FONT_SIZE / 2 - 1), _fit(canvas, name))
    label = change_label(cell, is_acc)
    zero = x_of(0.0)
    if not cell:
        canvas.text((zero + TEXT_GAP, mid - FONT_SIZE / 2 - 1), label, fill=MUTED)
        return
    x, lo, hi = x_of(cell["value"]), x_of(cell["lo"]), x_of(cell["hi"])
    color = bar_color(cell, lower_is_better=not is_acc)
    canvas.draw.rectangle([min(zero, x), y + BAR_PAD, max(zero, x), y + ROW_H - BAR_PAD],
                          fill=color)  # fmt: skip
    canvas.draw.line([lo, mid, hi, mid], fill=INK, width=2)
    for end in (lo, hi):
        canvas.draw.line([end, mid - CAP_H / 2, end, mid + CAP_H / 2], fill=INK, width=2)
    # right of the bar and whisker, on either sign: a panel's numbers never cross a bar
    canvas.text((max(hi, zero) + TEXT_GAP, mid - FONT_SIZE / 2 - 1), label)


def _draw_panel(canvas: _Canvas, top: float, panel: Panel, result: dict[str, Any],
                names: list[str]) -> None:  # fmt: skip
    """A panel's title, its rows (or a note when no variant was trained) and its axis."""
    key, title, is_acc = panel
    canvas.text((canvas.label_x, top + 3), title)
    cells = [(result["variants"][n].get("metrics", {}).get(key) or {}).get("change") for n in names]
    ticks = _axis_range(cells)
    span = ticks[-1] - ticks[0]

    def x_of(v: float) -> float:
        return canvas.plot_left + (v - ticks[0]) / span * (canvas.plot_right - canvas.plot_left)

    rows_top = top + TITLE_H
    if not names:
        canvas.text((canvas.label_x, rows_top + 5), "no trained variant besides base", MUTED)
        return
    _draw_axis(canvas, ticks, x_of, rows_top, rows_top + len(names) * ROW_H, is_acc)
    for i, (name, cell) in enumerate(zip(names, cells, strict=True)):
        _draw_row(canvas, rows_top + i * ROW_H, name, cell, x_of, is_acc)


def _draw_legend(canvas: _Canvas, y: float) -> None:
    """One line: a swatch per color with its meaning, then what the whiskers are."""
    x = float(canvas.label_x)
    for color, meaning in LEGEND:
        canvas.draw.rectangle([x, y + 3, x + 12, y + 15], fill=color)
        canvas.text((x + 16, y + 1), meaning)
        x += 16 + canvas.width(meaning) + 14
    canvas.text((x, y + 1), "\u00b7 " + LEGEND_NOTE, fill=MUTED)


def _header(result: dict[str, Any]) -> str:
    """The chart's first line: recipe and base model where the result names them."""
    recipe, base = result.get("recipe"), result.get("base_model")
    head = f"Ablation of {recipe}: change vs base" if recipe else "Ablation: change vs base"
    return f"{head} ({base})" if base else head


def chart_png(result: dict[str, Any]) -> bytes | None:
    """One panel per metric with data (chart_panels), one row per trained variant: the change
    vs base as a bar colored by verdict(), the 95% interval as a whisker, the number at the bar's
    end, an axis with round ticks; None without Pillow. chart_png(result)[:4] == b'\\x89PNG'."""
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        return None
    names, panels = chart_rows(result), chart_panels(result)
    image = Image.new("RGB", (WIDTH, chart_height(len(panels), len(names))), "white")
    draw, font = ImageDraw.Draw(image), _font()
    probe = _Canvas(draw, font, 0, 0)
    label_w = min(max([probe.width(n) for n in names] + [LABEL_MIN]), LABEL_MAX)
    numbers = [change_label(None, False)] + [
        change_label((result["variants"][n].get("metrics", {}).get(k) or {}).get("change"), a)
        for n in names
        for k, _, a in panels
    ]
    canvas = _Canvas(draw, font, label_w, max(probe.width(s) for s in numbers) + TEXT_GAP + 4)
    canvas.text((canvas.label_x, MARGIN), _header(result))
    top = MARGIN + HEADER_H
    for panel in panels:
        _draw_panel(canvas, top, panel, result, names)
        top += TITLE_H + max(len(names), 1) * ROW_H + AXIS_H + PANEL_GAP
    _draw_legend(canvas, top)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
