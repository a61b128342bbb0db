"""Everything about one file from a single decode: loudness, tempo, key, waveform, transcodes.

Each decoded block goes to every consumer in turn — the loudness meter and the waveform at the
file's own rate and channels, the encoders of the requested formats, and a mono downmix,
resampled once to :data:`audio.tempo.ANALYSIS_RATE`, to the tempo and key analyzers — so the
file is read once and memory stays at a few blocks whatever its length.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audio.decode import DecodedStream
from audio.key import Key, KeyAnalyzer
from audio.loudness import Loudness, LoudnessMeter
from audio.probe import AudioInfo
from audio.resample import StreamResampler
from audio.tempo import ANALYSIS_RATE, Tempo, TempoAnalyzer
from audio.transcode import FORMATS, AudioEncoder, TranscodeResult
from audio.waveform import Waveform, WaveformBuilder


@dataclass(frozen=True)
class Analysis:
    path: str
    info: AudioInfo
    loudness: Loudness
    tempo: Tempo
    key: Key
    waveform: Waveform
    outputs: list[TranscodeResult] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The flat record of DESIGN.md's ``phantomchain analyze --json`` (JSON-safe)."""
        loudness = self.loudness.to_dict()
        record = {
            "path": self.path,
            "duration_s": _round(self.info.duration_s, 3),
            "sample_rate": self.info.sample_rate,
            "channels": self.info.channels,
            "codec": self.info.codec,
            "bitrate": self.info.bitrate,
            "integrated_lufs": loudness["integrated_lufs"],
            "loudness_range_lu": loudness["loudness_range_lu"],
            "true_peak_dbtp": loudness["true_peak_dbtp"],
            "sample_peak_dbfs": loudness["sample_peak_dbfs"],
            "bpm": _round(self.tempo.bpm, 1),
            "bpm_confidence": _round(self.tempo.confidence, 3),
            "bpm_half": _round(self.tempo.half_bpm, 1),
            "bpm_double": _round(self.tempo.double_bpm, 1),
            "key": self.key.name,
            "key_tonic": self.key.tonic,
            "key_scale": self.key.scale,
            "key_confidence": _round(self.key.confidence, 3),
            "camelot": self.key.camelot,
            "outputs": [o.to_dict() for o in self.outputs],
            "error": None,
        }
        return record


def _round(value: float | None, digits: int) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def analyze_file(
    path: str | Path,
    *,
    formats: Sequence[str] = (),
    out_dir: str | Path | None = None,
    timeout_s: float | None = None,
    progress: Callable[[float], None] | None = None,
    waveform_width: int = 800,
) -> Analysis:
    """Analyse ``path`` and write the transcodes in ``formats`` to ``out_dir``.

    :param formats: keys of :data:`audio.transcode.FORMATS` (``mp3``, ``opus``, …).
    :param out_dir: where transcodes go (see :func:`output_path`); default: next to ``path``.
    :param timeout_s: bound on decoding (see :func:`audio.decode.default_timeout`).
    :param progress: called with the fraction done (0…1) after each block.
    :raises audio.errors.AudioError: the file cannot be analysed (message says why); no
        partial transcode is left behind.
    """
    path = Path(path)
    for fmt in formats:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    target = Path(out_dir) if out_dir is not None else path.parent
    stream = DecodedStream(path, timeout_s=timeout_s)
    info, rate, channels = stream.info, stream.sample_rate, stream.channels
    expected_frames = round(info.duration_s * rate) if info.duration_s else None
    meter = LoudnessMeter(rate, channels, info.channel_names)
    waveform = WaveformBuilder(expected_frames, rate, waveform_width)
    to_analysis_rate = StreamResampler(rate, ANALYSIS_RATE)
    tempo = TempoAnalyzer(ANALYSIS_RATE)
    key = KeyAnalyzer(ANALYSIS_RATE)
    encoders: list[AudioEncoder] = []
    try:
        if formats:
            target.mkdir(parents=True, exist_ok=True)
        for fmt in formats:
            out_path = output_path(path, target, fmt)
            encoders.append(AudioEncoder(out_path, fmt, in_rate=rate, in_channels=channels))
        for block in stream.blocks():
            meter.add(block)
            waveform.add(block)
            for encoder in encoders:
                encoder.write(block)
            mono = block[0] if channels == 1 else block.mean(axis=0, dtype=np.float32)
            _feed(to_analysis_rate.add(mono), tempo, key)
            if progress is not None and expected_frames:
                progress(min(1.0, stream.decoded_frames / expected_frames))
        _feed(to_analysis_rate.flush(), tempo, key)
        outputs = [encoder.close() for encoder in encoders]
    except BaseException:
        stream.close()
        for encoder in encoders:
            try:
                encoder.close()
            finally:
                encoder.out_path.unlink(missing_ok=True)
        raise
    if progress is not None:
        progress(1.0)
    return Analysis(
        path=str(path),
        info=dataclasses.replace(info, duration_s=stream.decoded_s),  # what was really there
        loudness=meter.result(),
        tempo=tempo.result(),
        key=key.result(),
        waveform=waveform.result(),
        outputs=outputs,
    )


def output_path(source: Path, folder: Path, fmt: str) -> Path:
    """``<folder>/<stem>.<extension>`` — or ``<stem>-<format>.<extension>`` where that would
    be the source itself (an MP3 transcoded to MP3 next to it)."""
    extension = FORMATS[fmt].extension
    candidate = folder / f"{source.stem}.{extension}"
    if candidate.resolve() == source.resolve():
        candidate = folder / f"{source.stem}-{fmt}.{extension}"
    return candidate


def _feed(mono: np.ndarray, tempo: TempoAnalyzer, key: KeyAnalyzer) -> None:
    if len(mono):
        tempo.add(mono)
        key.add(mono)
