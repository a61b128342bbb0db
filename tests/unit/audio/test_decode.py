"""Decoding real files of every supported format, written from signals whose truth is known."""

from __future__ import annotations

import av
import numpy as np
import pytest

from audio.decode import DecodedStream, decode, iter_blocks
from audio.errors import Canceled
from tests.support.audio import signals

LOSSLESS = ["wav", "wav24", "wavf32", "aiff", "flac"]
LOSSY = ["mp3", "ogg", "opus", "m4a"]


def _peak_hz(mono: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
    return float(np.argmax(spectrum) * rate / len(mono))


@pytest.mark.parametrize("fmt", LOSSLESS)
def test_lossless_formats_decode_to_the_written_samples(tmp_path, fmt):
    original = signals.chirp(seconds=1.0, channels=2, amplitude=0.5)
    original[1] *= -0.5
    path = signals.write_audio(signals.path_for(tmp_path, "c", fmt), original, 44100, fmt)
    samples, rate = decode(path)
    assert rate == 44100 and samples.dtype == np.float32
    assert samples.shape == original.shape
    assert np.max(np.abs(samples - original)) < 1e-4  # 16-bit quantisation at worst


@pytest.mark.parametrize("fmt", LOSSY)
def test_lossy_formats_keep_duration_and_pitch(tmp_path, fmt):
    rate = 48000 if fmt == "opus" else 44100
    original = signals.tone(440.0, seconds=2.0, rate=rate, channels=2)
    path = signals.write_audio(signals.path_for(tmp_path, "t", fmt), original, rate, fmt)
    samples, got_rate = decode(path)
    assert got_rate == rate and samples.shape[0] == 2
    assert abs(samples.shape[1] / rate - 2.0) < 0.05
    assert abs(_peak_hz(samples[0], rate) - 440.0) < 2.0
    rms = float(np.sqrt(np.mean(samples[:, rate // 2 : -rate // 2] ** 2)))
    assert abs(rms - 0.5 / np.sqrt(2)) < 0.02


@pytest.mark.parametrize("rate", [8000, 22050, 96000, 192000, 384000])
def test_any_rate_from_8_to_384_khz(tmp_path, rate):
    path = signals.write_audio(tmp_path / "r.wav", signals.tone(1000.0, 0.5, rate), rate)
    samples, got = decode(path)
    assert got == rate and samples.shape == (1, rate // 2)
    assert abs(_peak_hz(samples[0], rate) - 1000.0) < 3.0


@pytest.mark.parametrize("channels", [1, 2, 3, 6, 8])
def test_channels_stay_apart(tmp_path, channels):
    freqs = [200.0 * (i + 1) for i in range(channels)]
    path = signals.write_audio(tmp_path / "m.flac", signals.channel_tones(freqs, 0.5), 44100)
    samples, _ = decode(path)
    assert samples.shape == (channels, 22050)
    assert [round(_peak_hz(c, 44100) / 200) for c in samples] == [i + 1 for i in range(channels)]


def test_resampling_and_mono_downmix(tmp_path):
    stereo = signals.channel_tones([300.0, 300.0], 2.0)
    stereo[1] *= 0.5
    path = signals.write_audio(tmp_path / "s.wav", stereo, 44100)
    samples, rate = decode(path, sample_rate=22050, mono=True)
    assert rate == 22050 and samples.shape[0] == 1
    assert abs(samples.shape[1] - 44100) <= 64
    mid = samples[0, 2000:-2000]
    assert abs(np.max(np.abs(mid)) - 0.375) < 0.01  # mean of 0.5 and 0.25 amplitude
    assert abs(_peak_hz(samples[0], 22050) - 300.0) < 2.0


def test_blocks_are_full_sized_and_join_to_the_whole(tmp_path):
    original = signals.noise(3.0, channels=2)
    path = signals.write_audio(tmp_path / "n.wav", original, 44100)
    blocks = list(iter_blocks(path, block_frames=10000))
    assert [b.shape[1] for b in blocks[:-1]] == [10000] * (len(blocks) - 1)
    assert blocks[-1].shape[1] == 132300 - 10000 * (len(blocks) - 1)
    assert np.allclose(np.concatenate(blocks, axis=1), original, atol=1e-4)


def test_decoded_stream_reports_info_before_decoding(tmp_path):
    path = signals.write_audio(tmp_path / "i.flac", signals.tone(seconds=1.5, channels=2), 44100)
    with DecodedStream(path, sample_rate=22050, mono=True) as stream:
        assert stream.info.sample_rate == 44100 and stream.info.channels == 2
        assert (stream.sample_rate, stream.channels) == (22050, 1)
        total = sum(b.shape[1] for b in stream.blocks())
    assert abs(total - 33075) <= 64
    assert abs(stream.decoded_s - 1.5) < 0.01


def test_should_stop_stops_the_pass_between_blocks(tmp_path):
    """The caller's check is asked before each block; once it says stop, ``Canceled`` is
    raised at once, saying how much audio was handed out — never the rest of the file."""
    original = signals.tone(440.0, seconds=4.0, rate=8000, channels=1)
    path = signals.write_audio(signals.path_for(tmp_path, "t", "flac"), original, 8000, "flac")
    asked = []

    def should_stop() -> bool:
        asked.append(len(asked))
        return len(asked) > 3  # three blocks go out, the fourth is refused

    stream = DecodedStream(path, block_frames=4000, should_stop=should_stop)
    got = []
    with pytest.raises(Canceled) as raised:
        for block in stream.blocks():
            got.append(block)
    assert len(got) == 3 and len(asked) == 4
    assert raised.value.decoded_s == pytest.approx(1.5)  # 3 blocks of half a second
    assert "1.5 s of audio" in str(raised.value)


def test_extract_stopped_leaves_no_encoded_file(tmp_path):
    from audio.features import extract
    from audio.transcode import AudioEncoder

    original = signals.tone(440.0, seconds=6.0, rate=22050, channels=1)
    path = signals.write_audio(signals.path_for(tmp_path, "t", "flac"), original, 22050, "flac")
    out = tmp_path / "out.mp3"
    calls = iter([False, True])
    with pytest.raises(Canceled):
        extract(
            path,
            encoders=lambda rate, channels: [
                AudioEncoder(out, "mp3", in_rate=rate, in_channels=channels)
            ],
            should_stop=lambda: next(calls),
        )
    assert not out.exists()


def _reference_decode(path, sample_rate: int | None = None, mono: bool = False) -> np.ndarray:
    """The plain way, kept as the standard the streaming decode must match bit for bit: every
    frame through ``to_ndarray`` and one ``np.concatenate``; float planar frames at the output
    rate as they are, anything else through one packed-float resampler (a planar float frame
    downmixed before it), multi-channel pieces averaged per piece when ``mono``."""
    pieces = []
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = sample_rate or stream.codec_context.sample_rate
        resampler = None
        for frame in container.decode(stream):
            planar = frame.format.name == "fltp" and frame.layout.nb_channels < 8
            if planar and frame.sample_rate == rate:
                pieces.append(frame.to_ndarray())
                continue
            if mono and planar:
                mixed = frame.to_ndarray().mean(axis=0, keepdims=True, dtype=np.float32)
                like, frame = frame, av.AudioFrame.from_ndarray(mixed, format="flt", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = (
                    like.sample_rate,
                    like.pts,
                    like.time_base,
                )
            if resampler is None:
                layout = frame.layout
                if not layout.name or "NONE" in layout.name:
                    layout = {1: "mono", 2: "stereo"}.get(layout.nb_channels, layout)
                resampler = av.AudioResampler(format="flt", layout=layout, rate=rate)
            pieces.extend(resampler.resample(frame))
        if resampler is not None:
            pieces.extend(resampler.resample(None))
    arrays = [
        p if isinstance(p, np.ndarray) else p.to_ndarray().reshape(-1, p.layout.nb_channels).T
        for p in pieces
    ]
    if mono:
        arrays = [a.mean(axis=0, keepdims=True) if a.shape[0] > 1 else a for a in arrays]
    return np.concatenate(arrays, axis=1).astype(np.float32)


def _encoder_file(path, samples: np.ndarray, rate: int, fmt: str):
    """Written by our own encoder, as uploads in the benchmarks are: 24-bit FLAC, a WAV whose
    two channels have no named layout."""
    from audio.transcode import AudioEncoder

    with AudioEncoder(path, fmt, in_rate=rate, in_channels=samples.shape[0]) as encoder:
        encoder.write(samples)
    return path


BIT_IDENTICAL = [
    # (name, format, channels, file rate, decode kwargs)
    ("mp3", "mp3", 2, 44100, {}),
    ("mp3 odd blocks", "mp3", 2, 44100, {"block_frames": 4099}),
    ("mp3 mono", "mp3", 2, 44100, {"mono": True}),
    ("flac", "flac", 2, 44100, {}),
    ("flac 24-bit", "encoder-flac", 2, 44100, {"block_frames": 1001}),
    ("flac 6ch mono", "flac", 6, 44100, {"mono": True}),
    ("flac 8ch", "flac", 8, 44100, {}),
    ("wav", "wav", 2, 44100, {}),
    ("wav unnamed layout", "encoder-wav", 2, 44100, {}),
    ("wav 24-bit", "wav24", 2, 44100, {"block_frames": 777}),
    ("wav float", "wavf32", 2, 44100, {}),
    ("wav mono downmix", "wav", 2, 44100, {"mono": True}),
    ("wav 22.05 kHz to 44.1", "wav", 2, 22050, {"sample_rate": 44100}),
    ("opus 48 to 44.1 kHz", "opus", 2, 48000, {"sample_rate": 44100}),
    ("opus mono 44.1 kHz", "opus", 2, 48000, {"sample_rate": 44100, "mono": True}),
    ("ogg", "ogg", 2, 44100, {"block_frames": 10000}),
    ("m4a 6ch", "m4a", 6, 44100, {}),
    ("opus 8ch", "opus", 8, 48000, {}),
]


@pytest.mark.parametrize(
    ("fmt", "channels", "rate", "kwargs"),
    [case[1:] for case in BIT_IDENTICAL],
    ids=[case[0] for case in BIT_IDENTICAL],
)
def test_blocks_are_bit_identical_to_a_plain_decode(tmp_path, fmt, channels, rate, kwargs):
    """The streaming decode copies frames into blocks and converts integer samples itself:
    none of that may change a single bit against decoding frame by frame and joining."""
    original = signals.noise(3.0, rate=rate, channels=channels, amplitude=0.3)
    original[0] += signals.tone(440.0, 3.0, rate)[0] * 0.3  # channels differ, order shows
    if fmt.startswith("encoder-"):
        path = _encoder_file(tmp_path / f"e.{fmt[8:]}", original, rate, fmt[8:])
    else:
        path = signals.write_audio(signals.path_for(tmp_path, "b", fmt), original, rate, fmt)
    block_frames = kwargs.get("block_frames", 65536)
    blocks = list(iter_blocks(path, **kwargs))
    want = _reference_decode(path, kwargs.get("sample_rate"), kwargs.get("mono", False))
    got = np.concatenate(blocks, axis=1)
    assert [b.shape[1] for b in blocks[:-1]] == [block_frames] * (len(blocks) - 1)
    assert all(b.dtype == np.float32 for b in blocks)
    if fmt == "m4a":  # the file's declared length ends the decode, its padding cut
        want = want[:, : got.shape[1]]
    assert got.shape == want.shape and got.shape[1] > 0
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
