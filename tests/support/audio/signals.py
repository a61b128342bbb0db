"""Synthesized test signals whose truth is known by construction, and a writer for them.

Signals are float32 numpy arrays shaped ``(channels, frames)`` in [-1, 1]. ``write_audio``
encodes one to any format the PyAV wheel can write (independently of ``audio.transcode``, so
tests of the decoder do not rest on the encoder under test).
"""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# name -> (container format, codec, sample format the codec takes, packed?)
FORMATS: dict[str, tuple[str, str, str]] = {
    "wav": ("wav", "pcm_s16le", "s16"),
    "wav24": ("wav", "pcm_s24le", "s32"),
    "wavf32": ("wav", "pcm_f32le", "flt"),
    "aiff": ("aiff", "pcm_s16be", "s16"),
    "flac": ("flac", "flac", "s16"),
    "mp3": ("mp3", "libmp3lame", "fltp"),
    "ogg": ("ogg", "vorbis", "fltp"),
    "opus": ("ogg", "libopus", "flt"),
    "m4a": ("ipod", "aac", "fltp"),
}
EXTENSIONS = {"wav24": "wav", "wavf32": "wav", "ogg": "ogg", "opus": "opus", "m4a": "m4a"}

_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def tone(
    freq: float = 1000.0,
    seconds: float = 1.0,
    rate: int = 44100,
    channels: int = 1,
    amplitude: float = 0.5,
) -> np.ndarray:
    """A sine at ``freq`` Hz, the same on every channel."""
    t = np.arange(round(seconds * rate)) / rate
    wave = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.tile(wave, (channels, 1))


def channel_tones(freqs: list[float], seconds: float = 1.0, rate: int = 44100) -> np.ndarray:
    """One sine per channel, so a test can tell the channels apart after decoding."""
    return np.vstack([tone(f, seconds, rate)[0] for f in freqs])


def noise(seconds: float = 1.0, rate: int = 44100, channels: int = 1, amplitude=0.25, seed=0):
    """White noise, uniform in [-amplitude, amplitude]."""
    rng = np.random.default_rng(seed)
    n = round(seconds * rate)
    return rng.uniform(-amplitude, amplitude, (channels, n)).astype(np.float32)


def chirp(f0=100.0, f1=10000.0, seconds=1.0, rate=44100, channels=1, amplitude=0.5):
    """A linear sweep from ``f0`` to ``f1`` Hz."""
    t = np.arange(round(seconds * rate)) / rate
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * seconds))
    return np.tile((amplitude * np.sin(phase)).astype(np.float32), (channels, 1))


def silence(seconds: float = 1.0, rate: int = 44100, channels: int = 1) -> np.ndarray:
    return np.zeros((channels, round(seconds * rate)), dtype=np.float32)


def path_for(directory: Path, stem: str, fmt: str) -> Path:
    """``directory/stem.ext`` with the usual extension for ``fmt``."""
    return Path(directory) / f"{stem}.{EXTENSIONS.get(fmt, fmt)}"


def write_audio(
    path: Path | str,
    samples: np.ndarray,
    rate: int,
    fmt: str | None = None,
    *,
    bitrate: int | None = None,
    chunk: int = 4096,
) -> Path:
    """Encode ``samples`` ``(channels, frames)`` at ``rate`` Hz into ``path`` as ``fmt``.

    ``fmt`` is a key of ``FORMATS`` (default: from the extension). Samples are clipped to
    [-1, 1] except for float WAV, which is written as given (so tests can put NaN in it).
    """
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".").lower()
    container_format, codec, sample_format = FORMATS[fmt]
    samples = np.atleast_2d(np.asarray(samples, dtype=np.float32))
    channels = samples.shape[0]
    if sample_format != "flt":
        samples = np.clip(samples, -1.0, 1.0)
    with av.open(str(path), "w", format=container_format) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = _LAYOUTS[channels]
        stream.format = sample_format
        if bitrate:
            stream.bit_rate = bitrate
        if codec == "vorbis":
            stream.codec_context.options = {"strict": "experimental"}
        frame_size = stream.codec_context.frame_size or chunk
        pts = 0
        for start in range(0, samples.shape[1], frame_size):
            block = samples[:, start : start + frame_size]
            frame = _frame(block, sample_format, channels, rate)
            frame.pts = pts
            frame.time_base = Fraction(1, rate)
            pts += block.shape[1]
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def _frame(block: np.ndarray, sample_format: str, channels: int, rate: int) -> av.AudioFrame:
    if sample_format == "s16":
        data = np.round(block.T * 32767).astype(np.int16).reshape(1, -1)
    elif sample_format == "s32":
        data = np.round(block.T.astype(np.float64) * 8388607).astype(np.int32).reshape(1, -1) << 8
    elif sample_format == "flt":
        data = np.ascontiguousarray(block.T).reshape(1, -1)
    else:  # fltp
        data = np.ascontiguousarray(block)
    frame = av.AudioFrame.from_ndarray(data, format=sample_format, layout=_LAYOUTS[channels])
    frame.sample_rate = rate
    return frame


def declare_flac_samples(path: Path | str, total_samples: int) -> Path:
    """Make a FLAC file's STREAMINFO declare ``total_samples`` (0: "unknown", as the format
    allows), whatever its frames hold: a header that lies or says nothing."""
    path = Path(path)
    data = bytearray(path.read_bytes())
    field = int.from_bytes(data[18:26], "big")  # rate(20) channels(3) bits(5) samples(36)
    low36 = (1 << 36) - 1
    data[18:26] = ((field & ~low36) | (total_samples & low36)).to_bytes(8, "big")
    path.write_bytes(bytes(data))
    return path


def bare_flac(path: Path | str, total_samples: int, rate: int = 8000) -> Path:
    """A 55-byte FLAC: "fLaC", a STREAMINFO (mono, 16-bit) declaring ``total_samples`` at
    ``rate``, no frames and some padding — the shape of the issue's 2^36-sample file."""
    bits = (rate << 44) | (0 << 41) | (15 << 36) | (total_samples & ((1 << 36) - 1))
    info = struct.pack(">HH", 4096, 4096) + bytes(6) + bits.to_bytes(8, "big") + bytes(16)
    header = bytes([0x80]) + len(info).to_bytes(3, "big")  # the last metadata block
    body = b"fLaC" + header + info
    Path(path).write_bytes(body + bytes(55 - len(body)))
    return Path(path)
