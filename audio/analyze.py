"""Everything about one file from a single decode: loudness, tempo, key, waveform, silence,
transcodes.

:func:`audio.features.extract` reads the file once, feeding the measurements and the encoders of
the requested formats, so memory stays at a few blocks whatever the file's length. Normalised
outputs need a second pass (:mod:`audio.normalize`): their gain depends on the loudness of the
whole file, known only after the first (which also keeps the limiter's profile of the source,
:mod:`audio.limiter_estimate`, so the gain is settled without a pass of its own).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from audio.bpm_range import BpmRange
from audio.checks import Checks
from audio.features import Features, extract
from audio.formats import FORMATS, check_formats
from audio.key import Key
from audio.limiter_estimate import BackgroundProfile, SourceProfile
from audio.loudness import Loudness
from audio.normalize import Normalization, normalize_file
from audio.probe import AudioInfo
from audio.replaygain import (
    ReplayGain,
    output_replaygain,
    replaygain,
    track_replaygain,
    write_tags,
)
from audio.silence import Silence
from audio.targets import Target
from audio.tempo import Tempo
from audio.tempo_range import tempo_in_range
from audio.transcode import AudioEncoder, TranscodeResult
from audio.waveform import Waveform


@dataclass(frozen=True)
class Analysis:
    path: str
    info: AudioInfo
    loudness: Loudness
    tempo: Tempo
    key: Key
    waveform: Waveform
    silence: Silence
    checks: Checks
    outputs: list[TranscodeResult] = field(default_factory=list)
    #: The loudness target of the outputs, and what normalising did to each (same order).
    target: Target | None = None
    normalizations: list[Normalization] = field(default_factory=list)

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
            **track_replaygain(self.loudness).to_dict(),
            "bpm": _round(self.tempo.bpm, 1),
            "bpm_confidence": _round(self.tempo.confidence, 3),
            "bpm_half": _round(self.tempo.half_bpm, 1),
            "bpm_double": _round(self.tempo.double_bpm, 1),
            "bpm_estimate": _round(self.tempo.estimate, 1),
            "bpm_estimate_confidence": _round(self.tempo.estimate_confidence, 3),
            "key": self.key.name,
            "key_tonic": self.key.tonic,
            "key_scale": self.key.scale,
            "key_confidence": _round(self.key.confidence, 3),
            "camelot": self.key.camelot,
            "loudness_reason": self.loudness.reason,
            "loudness_range_reason": self.loudness.range_reason,
            "bpm_reason": self.tempo.reason,
            "key_reason": self.key.reason,
            "beats": [round(b, 3) for b in self.tempo.beats],
            **_silence_fields(self.silence),
            **self.checks.to_dict(),
            "normalize": self.target.to_dict() if self.target else None,
            "outputs": self._outputs(),
            "error": None,
        }
        return record

    def _outputs(self) -> list[dict]:
        outputs = [o.to_dict() for o in self.outputs]
        for output, normalization in zip(outputs, self.normalizations, strict=False):
            output["normalization"] = normalization.to_dict()
        return outputs


def _silence_fields(silence: Silence) -> dict:
    values = silence.to_dict()
    return {
        "audio_start_s": values["start_s"],
        "audio_end_s": values["end_s"],
        "leading_silence_s": values["leading_s"],
        "trailing_silence_s": values["trailing_s"],
    }


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
    normalize: Target | None = None,
    bpm_range: BpmRange | None = None,
    threaded: bool = True,
) -> Analysis:
    """Analyse ``path`` and write the transcodes in ``formats`` to ``out_dir``.

    :param formats: keys of :data:`audio.formats.FORMATS` (``mp3``, ``opus``, …).
    :param out_dir: where transcodes go (see :func:`output_path`); default: next to ``path``.
    :param timeout_s: bound on decoding (see :func:`audio.decode.default_timeout`).
    :param progress: called with the fraction done (0…1) after each block.
    :param normalize: write the transcodes normalised to this target (a second decode).
    :param bpm_range: fold the tempo by octaves into this range (:mod:`audio.tempo_range`).
    :param threaded: encoders (and a normalised master's profile) on threads of their own;
        False where every core is taken already (:func:`audio.work_thread.spare_cores`).
    :raises audio.errors.AudioError: the file cannot be analysed (message says why); no
        partial transcode is left behind.
    """
    path = Path(path)
    check_formats(formats)
    folder = Path(out_dir) if out_dir is not None else path.parent

    def encoders(rate: int, channels: int) -> list[AudioEncoder]:
        if formats:
            folder.mkdir(parents=True, exist_ok=True)
        return [
            AudioEncoder(
                output_path(path, folder, fmt),
                fmt,
                in_rate=rate,
                in_channels=channels,
                measure=True,  # for its ReplayGain, while it is encoded
                threaded=threaded,
            )
            for fmt in formats
        ]

    profiles: list[BackgroundProfile] = []

    def profile(rate: int, channels: int, names: tuple[str, ...]) -> list[BackgroundProfile]:
        """The limiter's profile of the source, for a normalised master's gain (beside the
        analysis, on a thread of its own)."""
        if normalize is not None and formats:
            profiles.append(BackgroundProfile(SourceProfile(rate, channels, names), threaded))
        return profiles

    features, writers = extract(
        path,
        encoders=None if normalize else encoders,
        timeout_s=timeout_s,
        progress=progress,
        waveform_width=waveform_width,
        also=profile,
    )
    outputs = [writer.close() for writer in writers]
    analysis = from_features(str(path), features, outputs, bpm_range)
    for output, writer in zip(outputs, writers, strict=True):  # each with its own ReplayGain
        gain = _output_replaygain(output, writer, features, timeout_s)
        write_tags(output.path, output.format, gain)
    analysis = dataclasses.replace(analysis, target=normalize)
    if normalize is not None and formats:
        folder.mkdir(parents=True, exist_ok=True)
        done = normalize_file(
            path,
            [(output_path(path, folder, fmt), fmt) for fmt in formats],
            normalize,
            input_lufs=analysis.loudness.integrated_lufs,
            input_true_peak_dbtp=analysis.loudness.true_peak_dbtp,
            profile=profiles[0].result() if profiles else None,
            timeout_s=timeout_s,
            threaded=threaded,
        )
        for result, normalization in done:
            measured = (normalization.output_integrated_lufs, normalization.output_true_peak_dbtp)
            write_tags(result.path, result.format, replaygain(*measured))
        analysis = dataclasses.replace(
            analysis,
            outputs=[result for result, _ in done],
            normalizations=[normalization for _, normalization in done],
        )
    if progress is not None:
        progress(1.0)
    return analysis


def _output_replaygain(
    output: TranscodeResult, writer: AudioEncoder, features: Features, timeout_s: float | None
) -> ReplayGain:
    return output_replaygain(
        output.path,
        output.format,
        source=features.loudness.result(),
        source_rate=features.loudness.sample_rate,
        source_channels=features.loudness.channels,
        measured=writer.measured.loudness if writer.measured else None,
        timeout_s=timeout_s,
    )


def from_features(
    path: str, features: Features, outputs=(), bpm_range: BpmRange | None = None
) -> Analysis:
    """The measurements, computed from extracted features (the tempo folded into
    ``bpm_range`` when given)."""
    loudness = features.loudness.result()
    return Analysis(
        path=path,
        info=features.info,
        loudness=loudness,
        tempo=tempo_in_range(features.tempo, bpm_range),
        key=features.key.result(),
        waveform=features.waveform.result(),
        silence=features.silence.result(),
        checks=features.checks(loudness),
        outputs=list(outputs),
    )


def output_path(source: Path, folder: Path, fmt: str) -> Path:
    """``<folder>/<stem>.<extension>`` — or ``<stem>-<format>.<extension>`` where that would
    be the source itself (an MP3 transcoded to MP3 next to it)."""
    extension = FORMATS[fmt].extension
    candidate = folder / f"{source.stem}.{extension}"
    if candidate.resolve() == source.resolve():
        candidate = folder / f"{source.stem}-{fmt}.{extension}"
    return candidate
