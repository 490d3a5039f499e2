"""The ablation chart: tick values, labels, colors, panels, and that the PNG decodes."""

from __future__ import annotations

import io

import pytest

from flows.ablation import chart as ablation_chart
from flows.ablation.chart import (
    GREEN,
    GREY,
    RED,
    WIDTH,
    bar_color,
    change_label,
    chart_height,
    chart_panels,
    chart_png,
    nice_ticks,
    tick_label,
    verdict,
)
from flows.ablation.report import chart_png as report_chart_png

Image = pytest.importorskip("PIL.Image")

KNOWLEDGE = (
    "test_loss",
    "general_loss",
    "covered_test_acc_norm",
    "uncovered_test_acc_norm",
    "knowledge_test_acc_norm",
)


def _cell(value: float, lo: float, hi: float) -> dict:
    return {"value": None, "lo": None, "hi": None, "change": {"value": value, "lo": lo, "hi": hi}}


def _result(keys: tuple[str, ...], variants: int = 2) -> dict:
    base = {k: {"value": 1.0, "lo": 0.9, "hi": 1.1, "change": None} for k in keys}
    out = {"base": {"metrics": base}}
    for i in range(variants):
        sign = -1 if i % 2 else 1
        out[f"variant-{i}"] = {
            "metrics": {k: _cell(sign * 0.1, sign * 0.05, sign * 0.2) for k in keys}
        }
    return {"recipe": "r", "base_model": "m", "variants": out}


def _decode(png: bytes | None) -> Image.Image:
    assert png is not None and png[:4] == b"\x89PNG"
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def test_nice_ticks_cover_the_data_and_zero_at_a_1_2_5_step() -> None:
    assert nice_ticks(-0.342, 0.05) == [-0.4, -0.3, -0.2, -0.1, 0.0, 0.1]
    assert nice_ticks(0.02, 0.123) == [0.0, 0.05, 0.1, 0.15]  # all positive: from 0
    assert nice_ticks(-0.35, -0.26) == [-0.4, -0.3, -0.2, -0.1, 0.0]  # all negative: to 0
    assert nice_ticks(-0.11, 0.123) == [-0.15, -0.1, -0.05, 0.0, 0.05, 0.1, 0.15]
    assert nice_ticks(0.0, 0.0) == [-0.01, -0.005, 0.0, 0.005, 0.01]  # nothing but 0
    assert nice_ticks(-0.3, 0.3) == [-0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3]  # ends on a tick


def test_tick_and_change_labels() -> None:
    assert [tick_label(t, 0.1, False) for t in (-0.3, 0.0, 0.1)] == ["-30%", "0", "+10%"]
    assert [tick_label(t, 0.05, True) for t in (-0.05, 0.0, 0.1)] == ["-5", "0", "+10"]
    assert tick_label(-0.005, 0.005, False) == "-0.5%"
    loss = {"value": -0.298, "lo": -0.342, "hi": -0.26}
    assert change_label(loss, False) == "-29.8% [-34.2, -26.0]"
    assert change_label({"value": 0.035, "lo": -0.035, "hi": 0.123}, True) == "+3.5 [-3.5, +12.3]"
    assert change_label({"value": -0.0004, "lo": 0.0, "hi": 0.0}, True) == "0.0 [0.0, 0.0]"
    assert change_label(None, True) == "no data"


def test_colors_by_direction_and_whether_the_interval_excludes_zero() -> None:
    down = {"value": -0.1, "lo": -0.2, "hi": -0.05}
    up = {"value": 0.1, "lo": 0.02, "hi": 0.2}
    across = {"value": 0.03, "lo": -0.03, "hi": 0.1}
    assert verdict(down, lower_is_better=True) == "better"  # loss down
    assert verdict(up, lower_is_better=True) == "worse"  # loss up
    assert verdict(up, lower_is_better=False) == "better"  # accuracy up
    assert verdict(down, lower_is_better=False) == "worse"  # accuracy down
    assert verdict(across, lower_is_better=False) == "noise"
    assert verdict({"value": 0.0, "lo": 0.0, "hi": 0.0}, True) == "noise"  # zero-width at 0
    assert verdict({"value": 0.02, "lo": 0.02, "hi": 0.02}, False) == "better"  # zero-width
    assert verdict(None, True) == "noise"
    assert bar_color(down, True) == GREEN
    assert bar_color(up, True) == RED
    assert bar_color(across, True) == GREY


def test_panels_pick_the_metrics_with_data() -> None:
    assert [p[0] for p in chart_panels(_result(KNOWLEDGE))] == list(KNOWLEDGE)
    # without the covered keys the plain MC accuracy is the accuracy panel
    plain = _result(("test_loss", "test_acc_norm", "dev_loss"))
    assert [p[0] for p in chart_panels(plain)] == ["test_loss", "test_acc_norm"]
    assert "test_acc_norm" not in [
        p[0] for p in chart_panels(_result((*KNOWLEDGE, "test_acc_norm")))
    ]


def test_chart_decodes_and_grows_with_panels_and_rows() -> None:
    five = _decode(chart_png(_result(KNOWLEDGE)))
    two = _decode(chart_png(_result(("test_loss", "test_acc_norm"))))
    assert five.size == (WIDTH, chart_height(5, 2))
    assert two.size == (WIDTH, chart_height(2, 2))
    assert five.size[1] > two.size[1]
    more_rows = _decode(chart_png(_result(("test_loss", "test_acc_norm"), variants=5)))
    assert more_rows.size[1] > two.size[1]
    assert report_chart_png is chart_png  # write_outputs draws this chart


def test_chart_handles_base_only_missing_changes_and_degenerate_intervals() -> None:
    only_base = _result(("test_loss",), variants=0)
    assert _decode(chart_png(only_base)).size == (WIDTH, chart_height(1, 0))
    odd = _result(("test_loss", "covered_test_acc_norm"), variants=0)
    odd["variants"]["no-change"] = {"metrics": {"test_loss": {"value": 1.0, "change": None}}}
    odd["variants"]["flat"] = {"metrics": {"covered_test_acc_norm": _cell(0.0, 0.0, 0.0)}}
    odd["variants"]["a-" + "very-" * 30 + "long-name"] = {"metrics": {"test_loss": None}}
    assert _decode(chart_png(odd)).size == (WIDTH, chart_height(2, 3))
    assert _decode(chart_png({"variants": {}})).size == (WIDTH, chart_height(0, 0))


def test_chart_falls_back_to_the_unsized_default_font(monkeypatch) -> None:
    from PIL import ImageFont

    default = ImageFont.load_default

    def unsized(size: float | None = None) -> object:
        if size is not None:
            raise TypeError("load_default() takes no arguments")  # Pillow < 10.1
        return default()

    monkeypatch.setattr(ImageFont, "load_default", unsized)
    assert ablation_chart._font() is not None
    _decode(chart_png(_result(KNOWLEDGE)))
