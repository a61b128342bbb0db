"""Files that are not audio, empty, cut short, lying, damaged or full of NaN."""

from __future__ import annotations

import struct

import av
import av.error
import numpy as np
import pytest
from PIL import Image

from audio.decode import decode
from audio.errors import (
    AudioError,
    CorruptAudioError,
    DecodeTimeoutError,
    EmptyFileError,
    NotAudioError,
    OutputTooLargeError,
    TooLongError,
    TruncatedAudioError,
    UnsupportedAudioError,
)
from audio.probe import probe
from tests.support.audio import signals


def test_text_file_is_not_audio(tmp_path):
    path = tmp_path / "notes.mp3"
    path.write_text("these are not the droids you are looking for\n" * 50)
    for read in (probe, decode):
        with pytest.raises(NotAudioError, match="not an audio file"):
            read(path)


def test_png_is_not_audio(tmp_path):
    path = tmp_path / "cover.wav"
    Image.new("RGB", (64, 64), "red").save(path, format="PNG")
    with pytest.raises(NotAudioError, match="not an audio file"):
        decode(path)


def test_random_bytes_are_not_audio(tmp_path):
    path = tmp_path / "noise.bin"
    path.write_bytes(np.random.default_rng(7).bytes(200_000))
    with pytest.raises(NotAudioError):
        probe(path)


def test_zero_bytes(tmp_path):
    path = tmp_path / "empty.flac"
    path.touch()
    with pytest.raises(EmptyFileError, match="empty file"):
        decode(path)
    assert issubclass(EmptyFileError, NotAudioError)


def _cut_in_half(tmp_path, fmt):
    whole = signals.write_audio(
        signals.path_for(tmp_path, "whole", fmt), signals.noise(4.0, channels=2), 44100, fmt
    )
    data = whole.read_bytes()
    half = signals.path_for(tmp_path, "half", fmt)
    half.write_bytes(data[: len(data) // 2])
    return half


@pytest.mark.parametrize("fmt", ["mp3", "wav", "flac", "aiff"])
def test_file_cut_in_half_is_truncated(tmp_path, fmt):
    path = _cut_in_half(tmp_path, fmt)
    with pytest.raises(TruncatedAudioError, match=r"file is truncated after \d+\.\d s") as e:
        decode(path)
    assert 1.5 < e.value.decoded_s < 2.5
    assert e.value.declared_s == pytest.approx(4.0, abs=0.05)


def test_m4a_cut_before_its_index_is_corrupt(tmp_path):
    path = _cut_in_half(tmp_path, "m4a")
    with pytest.raises(CorruptAudioError, match="damaged or truncated"):
        probe(path)


def test_wav_header_declaring_more_data_than_the_file_holds(tmp_path):
    path = signals.write_audio(tmp_path / "liar.wav", signals.tone(seconds=1.0), 44100)
    data = bytearray(path.read_bytes())
    at = data.index(b"data") + 4
    struct.pack_into("<I", data, at, 44100 * 2 * 30)  # claims 30 s
    path.write_bytes(bytes(data))
    for read in (probe, decode):
        with pytest.raises(TruncatedAudioError, match=r"truncated after 1\.0 s"):
            read(path)


def test_garbage_inside_an_mp3_is_skipped(tmp_path):
    path = signals.write_audio(tmp_path / "g.mp3", signals.tone(seconds=8.0, channels=2), 44100)
    data = path.read_bytes()
    middle = len(data) // 2
    garbage = np.random.default_rng(3).bytes(64 * 1024)
    path.write_bytes(data[:middle] + garbage + data[middle:])
    samples, rate = decode(path)
    assert abs(samples.shape[1] / rate - 8.0) < 0.2
    assert abs(probe(path).duration_s - 8.0) < 0.1
    assert np.isfinite(samples).all()


def test_channel_count_changing_mid_stream(tmp_path):
    """A mono MP3 and a stereo one joined: blocks of one shape or a readable error (it was a
    numpy ValueError from joining the pieces); downmixed to mono, the whole file decodes."""
    mono = signals.write_audio(tmp_path / "m.mp3", signals.tone(seconds=1.0), 44100)
    stereo = signals.write_audio(tmp_path / "s.mp3", signals.tone(seconds=1.0, channels=2), 44100)
    path = tmp_path / "joined.mp3"
    path.write_bytes(mono.read_bytes() + stereo.read_bytes())
    edge = 0  # where the stereo frames start: a block ending there must not hide the change
    with av.open(str(path)) as container:
        for packet in container.demux(audio=0):
            frames = [] if packet.size == 0 else _decoded(packet)
            if any(frame.layout.nb_channels == 2 for frame in frames):
                break
            edge += sum(frame.samples for frame in frames)
    assert 40000 < edge < 50000
    for block_frames in (65536, edge, 1152):
        with pytest.raises(CorruptAudioError, match=r"channels changes from 1 to 2 at 1\.0 s"):
            decode(path, block_frames=block_frames)
    samples, rate = decode(path, mono=True)
    assert samples.shape[0] == 1 and abs(samples.shape[1] / rate - 2.0) < 0.1


def _decoded(packet: av.Packet) -> list[av.AudioFrame]:
    try:
        return packet.decode()
    except av.error.FFmpegError:
        return []


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_invalid_float_samples(tmp_path, bad):
    samples = signals.tone(seconds=2.0)
    samples[0, 66150] = bad  # at 1.5 s
    path = signals.write_audio(tmp_path / "f.wav", samples, 44100, "wavf32")
    with pytest.raises(CorruptAudioError, match=r"invalid samples \(NaN or infinity\) at 1\.5 s"):
        decode(path)


@pytest.mark.parametrize("rate", [4000, 768000])
def test_sample_rate_out_of_range(tmp_path, rate):
    path = signals.write_audio(tmp_path / "r.wav", signals.tone(seconds=0.1, rate=rate), rate)
    with pytest.raises(UnsupportedAudioError, match="sample rate"):
        probe(path)


def test_too_many_channels(tmp_path):
    path = tmp_path / "c12.wav"
    _write_raw_wav(path, np.zeros((12, 4410), np.int16), 44100)
    with pytest.raises(UnsupportedAudioError, match="channel"):
        decode(path)


def test_decode_time_bound(tmp_path):
    path = signals.write_audio(tmp_path / "t.wav", signals.noise(1.0), 44100)
    with pytest.raises(DecodeTimeoutError) as e:
        decode(path, timeout_s=0)
    assert e.value.timeout_s == 0 and e.value.decoded_s == 0
    assert str(e.value) == "decoding took longer than 0 s (stopped after 0.0 s of audio)"


def test_errors_are_audio_errors_and_permanent():
    """Retrying cannot help any of them; a decode out of time would run out of time again."""
    for cls in (
        NotAudioError,
        TruncatedAudioError,
        CorruptAudioError,
        UnsupportedAudioError,
        DecodeTimeoutError,
        TooLongError,
        OutputTooLargeError,
    ):
        assert issubclass(cls, AudioError) and cls.permanent is True


def _write_raw_wav(path, pcm: np.ndarray, rate: int) -> None:
    channels = pcm.shape[0]
    body = pcm.T.astype("<i2").tobytes()
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * 2, channels * 2, 16)
    path.write_bytes(
        b"RIFF"
        + struct.pack("<I", 36 + len(body))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", len(body))
        + body
    )
