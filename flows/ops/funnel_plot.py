"""The funnel plot artifact: records kept per stage as text bars, plus a PNG when Pillow is
installed (the dashboard renders both).

    generate  ████████████████████████████████████████  12/4
    novelty   ████████████████████                      6/12

Not handled: the corpus stage on the same scale (it counts passages, far more: a line above).
"""

from __future__ import annotations

import base64
import io
from typing import Any

BAR_WIDTH = 40  # characters of the longest text bar
BLOCKS = " ▏▎▍▌▋▊▉█"  # eighths of a character cell, for bars finer than one character
PASSAGE_STAGES = ("corpus",)  # their counts are passages, not records: kept out of the chart


def bar(value: float, top: float, width: int = BAR_WIDTH) -> str:
    """A bar of `value / top * width` character cells, in eighths: bar(3, 8, 4) -> '█▌'."""
    eighths = round(8 * width * value / top) if top > 0 else 0
    full, part = divmod(eighths, 8)
    return "█" * full + (BLOCKS[part] if part else "")


def record_stages(stages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stages that count records: the corpus counts passages, far more, on another scale."""
    return [s for s in stages if s["stage"] not in PASSAGE_STAGES]


def _top(stages: list[dict[str, Any]]) -> int:
    return max((max(s["in"], s["kept"]) for s in stages), default=0)


def funnel_chart(stages: list[dict[str, Any]]) -> str:
    """Markdown: records kept per stage as text bars (scaled to the largest count), `kept/in`
    at the right; a line above for the corpus."""
    shown, top = record_stages(stages), _top(record_stages(stages))
    width = max((len(s["stage"]) for s in shown), default=0)
    lines = [
        f"{s['stage']:<{width}}  {bar(s['kept'], top):<{BAR_WIDTH}}  {s['kept']}/{s['in']}"
        for s in shown
    ]
    head = [
        f"Corpus: {s['kept']} passages kept of {s['in']}."
        for s in stages
        if s["stage"] in PASSAGE_STAGES
    ]
    return "\n".join(["## Records kept per stage", "", *head, "", "```text", *lines, "```", ""])


def funnel_png(stages: list[dict[str, Any]]) -> bytes | None:
    """The chart as a PNG, records in (light) behind records kept (dark); None without Pillow."""
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        return None
    shown = record_stages(stages)
    row, left, right, width = 26, 120, 90, 640
    image = Image.new("RGB", (width, row * len(shown) + 16), "white")
    draw = ImageDraw.Draw(image)
    scale = (width - left - right) / (_top(shown) or 1)
    for i, s in enumerate(shown):
        y = 8 + i * row
        draw.text((8, y + 5), s["stage"], fill="black")
        draw.rectangle([left, y + 3, left + s["in"] * scale, y + row - 5], fill=(200, 212, 235))
        kept = left + max(s["kept"] * scale, 1)
        draw.rectangle([left, y + 3, kept, y + row - 5], fill=(46, 99, 196))
        draw.text((left + max(s["in"], s["kept"]) * scale + 8, y + 5), f"{s['kept']}/{s['in']}",
                  fill="black")  # fmt: skip
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def plot_markdown(stages: list[dict[str, Any]]) -> str:
    """The text chart, then the PNG inline (a data: URI, which the dashboard renders)."""
    png = funnel_png(stages)
    if png is None:
        return funnel_chart(stages)
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return funnel_chart(stages) + f"\n![records in and kept per stage]({uri})\n"
