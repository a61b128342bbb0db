"""Bounds on the work one file can cause: its length, declared and decoded; the decode's time,
whatever the file declares; the bytes its transcodes write. And a failed decode is never
hidden behind an error of the encoders it fed."""

from __future__ import annotations

import pytest

from audio.decode import DEFAULT_TIMEOUT_CEILING_S, DecodedStream, iter_blocks
from audio.errors import OutputTooLargeError, TooLongError, TruncatedAudioError
from audio.features import extract
from audio.probe import probe
from audio.transcode import AudioEncoder
from audio.work_thread import DEPTH
from tests.support.audio import signals

RATE = 44100
MOST_SAMPLES = (1 << 36) - 1  # the most a FLAC STREAMINFO can declare


def _encoders(folder, formats):
    def make(rate: int, channels: int) -> list[AudioEncoder]:
        return [
            AudioEncoder(folder / f"out.{fmt}", fmt, in_rate=rate, in_channels=channels)
            for fmt in formats
        ]

    return make


def test_a_file_declaring_more_than_the_limit_is_refused_before_decoding(tmp_path):
    path = signals.write_audio(tmp_path / "five.flac", signals.tone(seconds=5.0), RATE, "flac")
    with pytest.raises(TooLongError) as refused:
        DecodedStream(path, max_duration_s=2)
    assert refused.value.declared and refused.value.length_s == pytest.approx(5.0)
    assert str(refused.value) == (
        "the audio is longer than the 2-second limit (the file declares 5.0 s)"
    )
    with pytest.raises(TooLongError):
        probe(path, max_duration_s=2)
    assert probe(path, max_duration_s=5).duration_s == pytest.approx(5.0)


@pytest.mark.parametrize("declared", [0, RATE], ids=["declares-nothing", "declares-1-s"])
def test_decoding_stops_as_soon_as_it_passes_the_limit(tmp_path, declared):
    path = signals.write_audio(tmp_path / "five.flac", signals.tone(seconds=5.0), RATE, "flac")
    signals.declare_flac_samples(path, declared)
    handed_out = 0
    with pytest.raises(TooLongError) as stopped:
        for block in iter_blocks(path, max_duration_s=2, block_frames=RATE // 2):
            handed_out += block.shape[1]
    assert not stopped.value.declared
    assert 2.0 < stopped.value.length_s <= 2.5  # the block that passed it
    assert handed_out <= 2 * RATE  # nothing past the limit reached the caller


def test_a_header_does_not_set_the_decode_time_bound(tmp_path):
    """A 55-byte FLAC claiming 2^36 samples at 8 kHz (99 days) got 2,147,483 s."""
    path = signals.bare_flac(tmp_path / "liar.flac", MOST_SAMPLES, rate=8000)
    stream = DecodedStream(path)
    assert stream.declared_s > 8e6
    assert stream.timeout_s == DEFAULT_TIMEOUT_CEILING_S
    stream.close()
    with DecodedStream(path, timeout_s=7) as stream:
        assert stream.timeout_s == 7


def test_outputs_are_capped_while_they_are_encoded(tmp_path):
    """A few kB of FLAC silence decodes to minutes of WAV: stopped once 1 MB is written."""
    path = signals.write_audio(
        tmp_path / "quiet.flac", signals.silence(60.0, channels=2), RATE, "flac"
    )
    assert path.stat().st_size < 50_000
    limit = 2**20
    with pytest.raises(OutputTooLargeError) as stopped:
        extract(path, encoders=_encoders(tmp_path, ["wav", "flac"]), max_output_bytes=limit)
    block_bytes = 65536 * 2 * 2  # one block of 16-bit stereo WAV
    # Each encoder runs on its own thread, at most DEPTH blocks behind the decode.
    assert limit < stopped.value.written_bytes <= limit + (DEPTH + 1) * block_bytes
    assert stopped.value.decoded_s < 20.0  # not the whole minute
    assert not list(tmp_path.glob("out.*"))  # the partial outputs are removed


@pytest.mark.parametrize("formats", [["mp3"], ["wav", "flac"], ["opus", "aac"]])
def test_a_failed_decode_is_not_hidden_by_its_encoders(tmp_path, formats):
    """Closing encoders that never got audio (LAME's "Not currently encoding") once replaced
    the decoder's error: an internal error, retried, instead of a reason."""
    path = signals.bare_flac(tmp_path / "empty.flac", 60 * 8000, rate=8000)
    with pytest.raises(TruncatedAudioError, match=r"truncated after 0\.0 s"):
        extract(path, encoders=_encoders(tmp_path, formats))
    assert not list(tmp_path.glob("out.*"))


def test_an_mp3_encoder_closed_before_any_audio_raises_nothing(tmp_path):
    """LAME's flush raises "Not currently encoding" when it never encoded."""
    encoder = AudioEncoder(tmp_path / "none.mp3", "mp3", in_rate=RATE, in_channels=1)
    assert encoder.close().duration_s == 0


def test_a_tag_that_is_not_utf8_is_no_internal_error(tmp_path):
    """A damaged encoder tag ("Lavf\\xfb…") raised UnicodeDecodeError from the opening."""
    path = signals.write_audio(tmp_path / "tag.wav", signals.tone(), RATE, "wav")
    data = bytearray(path.read_bytes())
    data[data.index(b"Lavf") + 2] = 0xFB
    path.write_bytes(bytes(data))
    assert probe(path).duration_s == pytest.approx(1.0)
