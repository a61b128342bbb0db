"""The analysis JSON of rows analysed before the quality checks existed, and after."""

from __future__ import annotations

from app.models import Analysis
from app.uploads import analysis_dict
from audio.verdicts import NOT_MEASURED, REASON_KEYS, VALUE_KEYS


def test_a_row_from_before_the_checks_reads_null_with_the_reason_for_each():
    old = Analysis(upload_id="u1", integrated_lufs=-14.0, true_peak_dbtp=-1.2)
    record = analysis_dict(old, [])
    assert all(record[key] is None for key in VALUE_KEYS)
    assert all(record[key] == NOT_MEASURED for key in REASON_KEYS)
    assert record["failed_checks"] is None
    assert record["integrated_lufs"] == -14.0  # what it had is still there


def test_a_checked_row_reads_its_values_and_only_its_own_reasons():
    row = Analysis(
        upload_id="u2",
        integrated_lufs=-9.0,
        clipping={"runs": 2, "clipped_s": 0.001, "first_s": 12.5},
        mono_loss_lu=48.0,
        quality_reasons={"mono_reason": "Summed to mono the channels cancel."},
        failed_checks=["clipping", "mono"],
    )
    record = analysis_dict(row, [])
    assert record["clipping"]["runs"] == 2 and record["mono_loss_lu"] == 48.0
    assert record["mono_reason"] == "Summed to mono the channels cancel."
    assert record["clipping_reason"] is None
    assert record["failed_checks"] == ["clipping", "mono"]
