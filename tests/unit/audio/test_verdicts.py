"""The checks' verdicts on flat records, and the web process's side of them."""

from __future__ import annotations

import pytest

from audio.verdicts import CHECK_NAMES, FAIL, INFO, PASS, UNKNOWN, failed_checks, verdicts

CLEAN = {
    "channels": 2,
    "integrated_lufs": -14.0,
    "true_peak_dbtp": -1.5,
    "clipping": {"runs": 0, "clipped_s": 0.0, "first_s": None},
    "dc_offset_dbfs": [-90.0, -95.0],
    "stereo_correlation": 0.6,
    "mono_loss_lu": 1.2,
    "bandwidth_hz": 21000.0,
    "lossy_origin": False,
}


def by_name(record: dict) -> dict:
    return {v.name: v for v in verdicts(record)}


def test_a_clean_master_passes_everything_and_loudness_is_information():
    marks = {name: v.status for name, v in by_name(CLEAN).items()}
    assert marks == {
        "clipping": PASS,
        "true_peak": PASS,
        "dc_offset": PASS,
        "mono": PASS,
        "lossy_origin": PASS,
        "loudness": INFO,
    }
    assert failed_checks(CLEAN) == []
    assert "Spotify (−14) plays it as it is" in by_name(CLEAN)["loudness"].sentence


@pytest.mark.parametrize(
    ("change", "fails"),
    [
        ({"clipping": {"runs": 3, "clipped_s": 0.01, "first_s": 72.5}}, "clipping"),
        ({"true_peak_dbtp": -0.2}, "true_peak"),
        ({"dc_offset_dbfs": [-30.0, -95.0]}, "dc_offset"),
        ({"mono_loss_lu": 43.0, "stereo_correlation": -1.0}, "mono"),
        ({"lossy_origin": True, "bandwidth_hz": 16000.0}, "lossy_origin"),
    ],
)
def test_each_check_fails_alone_with_a_sentence(change, fails):
    record = {**CLEAN, **change}
    assert failed_checks(record) == [fails]
    verdict = by_name(record)[fails]
    assert verdict.status == FAIL and verdict.sentence and verdict.figures
    assert fails in CHECK_NAMES


def test_the_first_flat_top_is_named_in_minutes_and_seconds():
    record = {**CLEAN, "clipping": {"runs": 1, "clipped_s": 0.001, "first_s": 72.5}}
    assert "1:12.500" in by_name(record)["clipping"].sentence


def test_an_analysis_from_before_the_checks_is_unknown_not_passed():
    old = {"channels": 2, "integrated_lufs": -14.0, "true_peak_dbtp": -3.0}
    old["clipping_reason"] = "Analysed before PhantomChain ran this check."
    marks = by_name(old)
    assert marks["clipping"].status == UNKNOWN
    assert marks["clipping"].sentence.startswith("Analysed before")
    assert failed_checks(old) == []


def test_a_louder_master_is_turned_down_by_each_platform():
    sentence = by_name({**CLEAN, "integrated_lufs": -8.0})["loudness"].sentence
    assert "Spotify (−14) plays it down 6.0 dB" in sentence
    assert "Apple (−16) plays it down 8.0 dB" in sentence
