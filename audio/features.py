"""Features: what every measurement needs, taken from one decode, small enough to keep.

:func:`extract` reads a file once and feeds the loudness meter, the silence detector, the
waveform builder, the tempo and key analyzers (through one downmix resampled to
:data:`audio.tempo.ANALYSIS_RATE`) and any encoders given. :class:`Features` holds the analyzers'
state — energy slices, the onset envelope, chroma sums, peak buckets, the first and last sound: a
few kB per minute of audio — and serialises it, so the service's later stages compute their
results without decoding the file again.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from audio.bandwidth import SpectrumSampler, measure_bandwidth
from audio.checks import Checks, gather
from audio.clipping import ClippingDetector
from audio.dc_offset import DcOffsetMeter
from audio.decode import DecodedStream
from audio.errors import OutputTooLargeError, StopCheck
from audio.key import KeyAnalyzer
from audio.loudness import Loudness, LoudnessMeter
from audio.probe import AudioInfo
from audio.resample import StreamResampler
from audio.silence import SilenceDetector
from audio.stereo import CorrelationMeter, mono_compatibility
from audio.tempo import ANALYSIS_RATE, TempoAnalyzer
from audio.transcode import AudioEncoder
from audio.waveform import WaveformBuilder


class BlockSink(Protocol):
    """Something else fed every decoded block by :func:`extract`."""

    def add(self, block: np.ndarray) -> None: ...

    def discard(self) -> None: ...


@dataclass
class Features:
    info: AudioInfo  # duration_s is what was really decoded
    loudness: LoudnessMeter
    tempo: TempoAnalyzer
    key: KeyAnalyzer
    waveform: WaveformBuilder
    silence: SilenceDetector
    #: The checks' meters; None in archives made before they existed (#26).
    clipping: ClippingDetector | None
    dc_offset: DcOffsetMeter | None
    correlation: CorrelationMeter | None
    spectrum: SpectrumSampler | None

    def checks(self, loudness: Loudness | None = None) -> Checks:
        """The quality checks (:mod:`audio.checks`), from the same decode; ``loudness``: the
        meter's result when the caller has it already (it reads every 10 ms window)."""
        loudness = loudness or self.loudness.result()
        channels = self.info.channels
        return gather(
            loudness,
            clipping=self.clipping.result() if self.clipping else None,
            dc_offset=self.dc_offset.result() if self.dc_offset else None,
            mono=mono_compatibility(channels, self.correlation, loudness)
            if self.correlation
            else None,
            bandwidth=measure_bandwidth(self.spectrum, self.info.codec) if self.spectrum else None,
        )

    def to_bytes(self) -> bytes:
        """An ``.npz`` archive of the analyzers' state and the file's description."""
        quality = (self.clipping, self.dc_offset, self.correlation, self.spectrum)
        arrays = {
            **self.loudness.state(),
            **self.tempo.state(),
            **self.key.state(),
            **self.waveform.state(),
            **self.silence.state(),
            **{name: array for meter in quality if meter for name, array in meter.state().items()},
            "info": np.frombuffer(json.dumps(self.info.to_dict()).encode(), dtype=np.uint8),
        }
        buffer = io.BytesIO()
        # numpy's stub lets **arrays fill allow_pickle (a bool); each key here names an array.
        np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Features:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            state = {name: archive[name] for name in archive.files}
        info = json.loads(state.pop("info").tobytes())
        info["channel_names"] = tuple(info["channel_names"])
        return cls(
            info=AudioInfo(**info),
            loudness=LoudnessMeter.restore(state),
            tempo=TempoAnalyzer.restore(state),
            key=KeyAnalyzer.restore(state),
            waveform=WaveformBuilder.restore(state),
            silence=SilenceDetector.restore(state),  # None from archives older than it
            clipping=ClippingDetector.restore(state),  # these four too
            dc_offset=DcOffsetMeter.restore(state),
            correlation=CorrelationMeter.restore(state, info["channels"]),
            spectrum=SpectrumSampler.restore(state),
        )


def extract(
    path: str | Path,
    *,
    encoders: Callable[[int, int], Sequence[AudioEncoder]] | None = None,
    timeout_s: float | None = None,
    max_duration_s: float | None = None,
    max_output_bytes: int | None = None,
    progress: Callable[[float], None] | None = None,
    waveform_width: int = 800,
    should_stop: StopCheck | None = None,
    also: Callable[[int, int, tuple[str, ...]], Sequence[BlockSink]] | None = None,
) -> tuple[Features, list[AudioEncoder]]:
    """Decode ``path`` once into :class:`Features`.

    :param encoders: called with the decoded rate and channel count; returns encoders that get
        every block too (closed by the caller; discarded here if decoding fails).
    :param timeout_s: bound on the pass (see :class:`audio.decode.DecodedStream`).
    :param max_duration_s: the longest audio accepted, declared or decoded.
    :param max_output_bytes: the most the encoders may write in all, counted after each block.
    :param should_stop: checked before each block; true raises :class:`audio.errors.Canceled`
        (the encoders discarded, as for any error).
    :param also: called with the decoded rate, channel count and channel names; returns
        sinks that get every block too (e.g. :class:`audio.limiter_estimate.BackgroundProfile`;
        the caller takes their results; discarded here if decoding fails).
    :raises audio.errors.AudioError: the file cannot be decoded or passes a bound (the message
        says why).
    """
    stream = DecodedStream(
        path, timeout_s=timeout_s, max_duration_s=max_duration_s, should_stop=should_stop
    )
    info, rate, channels = stream.info, stream.sample_rate, stream.channels
    expected = round(info.duration_s * rate) if info.duration_s else None
    meter = LoudnessMeter(rate, channels, info.channel_names)
    waveform = WaveformBuilder(expected, rate, waveform_width)
    silence = SilenceDetector(rate, channels)
    clipping, dc_offset = ClippingDetector(rate, channels), DcOffsetMeter(channels)
    correlation, spectrum = CorrelationMeter(channels), SpectrumSampler(rate)
    to_analysis_rate = StreamResampler(rate, ANALYSIS_RATE)
    tempo, key = TempoAnalyzer(ANALYSIS_RATE), KeyAnalyzer(ANALYSIS_RATE)
    writers: list[AudioEncoder] = []
    sinks: list[BlockSink] = []
    try:
        writers = list(encoders(rate, channels)) if encoders else []
        sinks = list(also(rate, channels, info.channel_names)) if also else []
        for block in stream.blocks():
            meter.add(block)
            silence.add(block)
            waveform.add(block)
            clipping.add(block)
            dc_offset.add(block)
            correlation.add(block)
            spectrum.add(block)
            for sink in sinks:
                sink.add(block)
            for writer in writers:
                writer.write(block)
            _check_output_size(writers, max_output_bytes, stream.decoded_s)
            mono = block[0] if channels == 1 else block.mean(axis=0, dtype=np.float32)
            _feed(to_analysis_rate.add(mono), tempo, key)
            if progress is not None and expected:
                progress(min(1.0, stream.decoded_frames / expected))
        _feed(to_analysis_rate.flush(), tempo, key)
    except BaseException:
        stream.close()
        for writer in writers:
            writer.discard()
        for sink in sinks:
            sink.discard()
        raise
    info = dataclasses.replace(info, duration_s=stream.decoded_s)
    features = Features(
        info, meter, tempo, key, waveform, silence, clipping, dc_offset, correlation, spectrum
    )
    return features, writers


def _check_output_size(
    writers: Sequence[AudioEncoder], max_bytes: int | None, decoded_s: float
) -> None:
    """Raise ``OutputTooLargeError`` as soon as the encoders together wrote more than
    ``max_bytes``: a few kB of compressed silence can decode to hours of WAV."""
    if max_bytes is None or not writers:
        return
    written = sum(writer.bytes_written for writer in writers)
    if written > max_bytes:
        raise OutputTooLargeError(limit_bytes=max_bytes, written_bytes=written, decoded_s=decoded_s)


def _feed(mono: np.ndarray, tempo: TempoAnalyzer, key: KeyAnalyzer) -> None:
    if len(mono):
        tempo.add(mono)
        key.add(mono)
