"""Magic bytes of every format we decode, written by the real encoders; and things that aren't."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from audio.sniff import HEAD_BYTES, sniff
from tests.support.audio import signals


@pytest.mark.parametrize(
    ("fmt", "kind"),
    [
        ("wav", "wav"),
        ("wav24", "wav"),
        ("flac", "flac"),
        ("mp3", "mp3"),
        ("ogg", "ogg"),
        ("opus", "ogg"),
        ("m4a", "m4a"),
        ("aiff", "aiff"),
    ],
)
def test_every_decodable_format_is_recognised(tmp_path, fmt, kind):
    rate = 48000 if fmt == "opus" else 44100
    path = signals.path_for(tmp_path, "x", fmt)
    signals.write_audio(path, signals.tone(440.0, seconds=0.5, rate=rate, channels=2), rate, fmt)
    assert sniff(path.read_bytes()[:HEAD_BYTES])[0] == kind


def test_bare_mpeg_frames_and_adts():
    assert sniff(bytes([0xFF, 0xFB, 0xB0, 0x04]) + bytes(8))[0] == "mp3"
    assert sniff(bytes([0xFF, 0xF1, 0x50, 0x80]) + bytes(8))[0] == "aac"


def test_other_files_are_not_audio():
    png = io.BytesIO()
    Image.new("RGB", (4, 4)).save(png, format="PNG")
    for head in (
        b"hello, world",
        png.getvalue(),
        b"PK\x03\x04zipfile",
        b"",
        bytes(12),
        b"RIFF\x00\x00\x00\x00AVI ",
        np.ones(3).tobytes(),
    ):
        assert sniff(head[:HEAD_BYTES]) is None
