"""The result page's Checks card rows: every verdict of ``audio.verdicts`` becomes a row, in its
order, with a mark whose meaning is said in words; the upload's channel count reaches the mono
check (a mono file has nothing to sum: information, not "not measured")."""

from __future__ import annotations

from app.http.web.checks_card import MARKS, check_rows
from audio.verdicts import NOT_MEASURED, REASON_KEYS, VALUE_KEYS

#: A stereo analysis made before the checks existed, as ``app.uploads.checks_dict`` reads it.
BEFORE_THE_CHECKS = {
    "integrated_lufs": -12.0,
    "true_peak_dbtp": -3.0,
    **dict.fromkeys(VALUE_KEYS),
    **dict.fromkeys(REASON_KEYS, NOT_MEASURED),
    "failed_checks": None,
}


def test_every_mark_says_what_it_means_in_words_and_no_two_look_alike():
    assert {status: mark.label for status, mark in MARKS.items()} == {
        "pass": "Passed",
        "fail": "Failed",
        "info": "For information",
        "unknown": "Not measured",
    }
    assert len({mark.symbol for mark in MARKS.values()}) == len(MARKS)


def test_an_analysis_from_before_the_checks_reads_not_measured_where_it_was_not():
    rows = check_rows(BEFORE_THE_CHECKS, channels=2)
    assert [row.name for row in rows] == [
        "clipping",
        "true_peak",
        "dc_offset",
        "mono",
        "lossy_origin",
        "loudness",
    ]
    by_name = {row.name: row for row in rows}
    for name in ("clipping", "dc_offset", "lossy_origin"):
        assert by_name[name].status == "unknown" and by_name[name].mark.label == "Not measured"
        assert by_name[name].sentence == NOT_MEASURED
    # True peak and loudness were measured before the checks: they still read.
    assert (
        by_name["true_peak"].status == "pass" and by_name["true_peak"].figures == "\u22123.0 dBTP"
    )
    assert by_name["loudness"].status == "info" and by_name["loudness"].figures == "\u221212.0 LUFS"


def test_the_channel_count_reaches_the_mono_check():
    mono_reason = {**BEFORE_THE_CHECKS, "mono_reason": "The file is mono: nothing to sum."}
    assert {r.name: r.status for r in check_rows(mono_reason, channels=1)}["mono"] == "info"
    assert {r.name: r.status for r in check_rows(mono_reason, channels=2)}["mono"] == "unknown"
