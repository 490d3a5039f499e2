"""Which judges the pipeline stops using after calibration (flows/stages/calibrate.py), no model."""

from flows.stages.calibrate import skipped_judges


def test_only_judges_under_the_bar_with_on_low_skip_are_skipped_each_with_why():
    result = {
        "min_agreement": 0.6,
        "judges": {
            "rating": {"agreement": 0.4, "action": "low: skip"},
            "comparison": {"agreement": 0.9, "action": "used"},
        },
    }
    assert skipped_judges(result) == {"rating": "uncalibrated: agreement 0.4 < 0.6"}
    result["judges"]["rating"]["action"] = "low: warn"
    assert skipped_judges(result) == {}
    assert skipped_judges({}) == {}  # nothing calibrated
