"""Waveform peaks, their audiowaveform JSON and the PNG."""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image

from audio.waveform import BACKGROUND, FOREGROUND, WaveformBuilder


def three_parts(rate: int = 8000) -> np.ndarray:
    """1 s silence, 1 s sine at 0.9, 1 s sine at 0.45 (stereo)."""
    t = np.arange(rate) / rate
    sine = np.sin(2 * np.pi * 100 * t)
    mono = np.concatenate([np.zeros(rate), 0.9 * sine, 0.45 * sine]).astype(np.float32)
    return np.stack([mono, mono])


def build(samples: np.ndarray, rate: int, width: int, total: int | None, block: int):
    builder = WaveformBuilder(total, rate, width)
    for start in range(0, samples.shape[1], block):
        builder.add(samples[:, start : start + block])
    return builder.result()


def test_peaks_land_in_the_right_columns():
    samples = three_parts()
    for total in (samples.shape[1], None, samples.shape[1] // 2):  # right, unknown, wrong
        waveform = build(samples, 8000, 30, total, block=777)
        assert waveform.width == 30
        assert np.allclose(waveform.maximum[:10], 0) and np.allclose(waveform.minimum[:10], 0)
        assert np.allclose(waveform.maximum[11:19], 0.9, atol=0.01)
        assert np.allclose(waveform.minimum[11:19], -0.9, atol=0.01)
        assert np.allclose(waveform.maximum[21:29], 0.45, atol=0.01)


def test_audiowaveform_json_layout():
    waveform = build(three_parts(), 8000, 30, None, block=4096)
    data = waveform.to_audiowaveform_json()
    assert data["version"] == 2 and data["channels"] == 1 and data["bits"] == 8
    assert data["sample_rate"] == 8000
    assert data["length"] == 30 and len(data["data"]) == 60
    assert data["samples_per_pixel"] == 24000 // 30
    assert all(-128 <= v <= 127 and isinstance(v, int) for v in data["data"])
    assert data["data"][2 * 15] == -114 and data["data"][2 * 15 + 1] == 114  # ±0.9 × 127
    json.dumps(data, allow_nan=False)


def test_png_is_800_by_160_and_draws_the_shape():
    waveform = build(three_parts(), 8000, 800, None, block=65536)
    buffer = io.BytesIO()
    waveform.render_png(buffer)
    image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    assert image.size == (800, 160)
    pixels = np.asarray(image)

    def drawn_height(column: int) -> int:
        return int((pixels[:, column] == FOREGROUND).all(axis=1).sum())

    assert drawn_height(100) == 0  # silence: only the axis
    assert (pixels[0, 100] == BACKGROUND).all()
    loud, soft = drawn_height(400), drawn_height(700)
    assert 0.85 * 160 <= loud <= 0.95 * 160
    assert 0.4 * 160 <= soft <= 0.5 * 160


def test_empty_input_gives_a_flat_waveform():
    waveform = WaveformBuilder(None, 44100).result()
    assert waveform.width == 800 and not waveform.maximum.any()
