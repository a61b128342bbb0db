"""What a finished job made, as JSON: the analysis with its outputs' links.

One shape for the API (``GET /api/uploads/<id>/analysis``), the result page and the webhook a
job's end sends, so a receiver reads exactly what a client polling would. Links are paths on
the API (``/api/uploads/<id>/…``), built here rather than by Flask so workers can build them.
"""

from __future__ import annotations

from app.models import Analysis, Output


def analysis_dict(analysis: Analysis, outputs: list[Output]) -> dict:
    upload = f"/api/uploads/{analysis.upload_id}"
    key = f"{analysis.key} {analysis.key_scale}" if analysis.key else None
    return {
        "upload_id": analysis.upload_id,
        "integrated_lufs": analysis.integrated_lufs,
        "loudness_range_lu": analysis.loudness_range_lu,
        "true_peak_dbtp": analysis.true_peak_dbtp,
        "sample_peak_dbfs": analysis.sample_peak_dbfs,
        "short_term_lufs": analysis.short_term_lufs,
        "bpm": analysis.bpm,
        "bpm_confidence": analysis.bpm_confidence,
        "key": key,
        "key_scale": analysis.key_scale,
        "key_confidence": analysis.key_confidence,
        "camelot": analysis.camelot,
        "loudness_reason": analysis.loudness_reason,
        "loudness_range_reason": analysis.loudness_range_reason,
        "bpm_reason": analysis.bpm_reason,
        "key_reason": analysis.key_reason,
        "beats": analysis.beats,
        **silence_dict(analysis.silence),
        "waveform": {"png": f"{upload}/waveform.png", "json": f"{upload}/waveform.json"},
        "outputs": {
            o.format: {
                "url": f"{upload}/outputs/{o.format}",
                "size_bytes": o.size_bytes,
                "bitrate": o.bitrate,
                "normalization": o.normalization,
            }
            for o in outputs
        },
    }


def silence_dict(silence: dict | None) -> dict:
    """Where the sound starts and ends (all null when the audio is silent throughout, or was
    analysed before silence was measured)."""
    silence = silence or {}
    return {
        "audio_start_s": silence.get("start_s"),
        "audio_end_s": silence.get("end_s"),
        "leading_silence_s": silence.get("leading_s"),
        "trailing_silence_s": silence.get("trailing_s"),
    }
