"""Streaming decode: any file PyAV/FFmpeg reads -> float32 ``(channels, n)`` numpy blocks.

``iter_blocks`` never holds the whole file: each decoded frame is copied straight into the
block being filled, which is handed out once full, so memory stays at a few blocks however
long the file. ``decode`` joins the blocks for short files and tests. The blocks are the same,
bit for bit, as decoding frame by frame with PyAV and joining (``tests/unit/audio/
test_decode.py`` keeps that plain decode as the standard); ``bench/decode.py`` measures it.

Decisions about bad input (each raises an ``audio.errors`` type with a readable message):

- A packet the decoder rejects (e.g. garbage inside an MP3) is skipped and decoding goes on:
  FFmpeg's parser resyncs on the next frame header, so a damaged stretch costs only itself.
- A file that decodes to materially less audio than its header declares raises
  ``TruncatedAudioError("file is truncated after 4.9 s of audio …")`` — after the last block,
  since only then is it known (a WAV's header is checked before the first block). Formats
  that declare no length (raw MP3 without a Xing/Info frame, ADTS) cannot be found out;
  neither can Ogg, whose length FFmpeg reads from its last page.
- NaN or infinite samples (only possible in float files) raise
  ``CorruptAudioError("file contains invalid samples (NaN or infinity) at 1.2 s")``: no
  meaningful loudness, tempo or waveform exists for them, and NaN must never reach results.
  Finite float samples beyond ±1 are passed through unchanged (they are real overs).
- A file with no decodable audio at all raises ``CorruptAudioError``.
- Decoding is bounded in time (``timeout_s``, checked between packets) and raises
  ``DecodeTimeoutError``. A caller that serves strangers passes its own bound: the default
  (``default_timeout``) scales with the length the file declares, which the file controls,
  and is only capped by :data:`DEFAULT_TIMEOUT_CEILING_S`.
- Decoding can be stopped by the caller (``should_stop``, checked before each block is handed
  out): it raises ``Canceled``, so a service can end a job's pass within one block.
- Decoding can be bounded in length (``max_duration_s``): a file declaring more raises
  ``TooLongError`` before anything is decoded, and so does decoding as soon as it passes the
  limit, whatever the file declared.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import av
import av.error
import numpy as np

from audio.errors import Canceled, CorruptAudioError, DecodeTimeoutError, StopCheck, TooLongError
from audio.probe import (
    AudioInfo,
    check_declared_length,
    check_header_length,
    check_supported,
    declared_duration,
    describe,
    open_audio,
    truncated,
    truncation_tolerance,
)

#: The most ``default_timeout`` gives, however long a file says it is: a 55-byte FLAC whose
#: header claims 2^36 samples would otherwise hold a decode for 25 days.
DEFAULT_TIMEOUT_CEILING_S = 600.0


def default_timeout(duration_s: float | None, size_bytes: int) -> float:
    """A bound no healthy decode comes near (decoding runs at hundreds × realtime): 30 s, or a
    quarter of the audio's duration, or — when the length is unknown — 2 s per MB; never more
    than :data:`DEFAULT_TIMEOUT_CEILING_S`."""
    bound = duration_s / 4 if duration_s else 2.0 * size_bytes / 1e6
    return min(max(30.0, bound), DEFAULT_TIMEOUT_CEILING_S)


class DecodedStream:
    """One audio file opened for a single streaming pass.

    ``info`` describes the file; ``sample_rate``/``channels`` describe the blocks that
    ``blocks()`` yields (after optional resampling and downmix). ``decoded_s`` is the
    duration handed out so far. Use as a context manager or exhaust ``blocks()``.

    :param timeout_s: the bound on the whole pass, in seconds of wall time (the consumer's
        time between blocks included); ``None``: ``default_timeout``.
    :param max_duration_s: the longest audio accepted (``None``: any).
    :param should_stop: called before each block; true raises :class:`audio.errors.Canceled`
        from ``blocks()`` (``None``: never stops).
    :raises audio.errors.TooLongError: the file declares more than ``max_duration_s`` (here)
        or decodes to more (from ``blocks()``).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        sample_rate: int | None = None,
        mono: bool = False,
        block_frames: int = 65536,
        timeout_s: float | None = None,
        max_duration_s: float | None = None,
        should_stop: StopCheck | None = None,
    ):
        if block_frames < 1:
            raise ValueError("block_frames must be positive")
        self.path = Path(path)
        self._container, self._stream = open_audio(self.path)
        try:
            self.info: AudioInfo = describe(self._container, self._stream)
            check_header_length(self.path, self._container, self.info)
            self.declared_s = declared_duration(self.path, self._container, self._stream)
            check_declared_length(self.declared_s or self.info.duration_s, max_duration_s)
            if sample_rate is not None:
                check_supported(sample_rate, 1)
        except BaseException:
            self._container.close()
            raise
        self.sample_rate = int(sample_rate or self.info.sample_rate)
        self.channels = 1 if mono else self.info.channels
        self.mono = mono
        self.block_frames = block_frames
        if timeout_s is None:
            length = self.declared_s or self.info.duration_s
            timeout_s = default_timeout(length, self.path.stat().st_size)
        self.timeout_s = timeout_s
        self.max_duration_s = max_duration_s
        self._should_stop = should_stop
        self._frames_allowed = None if max_duration_s is None else max_duration_s * self.sample_rate
        self.decoded_frames = 0
        # MP4 declares its exact length (edit list); AAC's last frame may carry padding past it.
        self._max_frames = None
        if self.info.container == "mp4" and self.declared_s:
            self._max_frames = round(self.declared_s * self.sample_rate)

    @property
    def decoded_s(self) -> float:
        return self.decoded_frames / self.sample_rate

    def __enter__(self) -> DecodedStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def blocks(self) -> Iterator[np.ndarray]:
        """Yield float32 ``(channels, block_frames)`` blocks (the last one shorter)."""
        try:
            for block in self._blocks():
                block = self._checked(block)
                if block.shape[1]:
                    yield block
            self._check_complete()
        finally:
            self.close()

    def _checked(self, block: np.ndarray) -> np.ndarray:
        if self._should_stop is not None and self._should_stop():
            raise Canceled(self.decoded_s)
        if self._max_frames is not None:
            block = block[:, : max(0, self._max_frames - self.decoded_frames)]
        if not np.isfinite(block).all():
            bad = int(np.argmax(~np.isfinite(block).all(axis=0)))
            at = (self.decoded_frames + bad) / self.sample_rate
            raise CorruptAudioError(
                f"file contains invalid samples (NaN or infinity) at {at:.1f} s"
            )
        self.decoded_frames += block.shape[1]
        if self._frames_allowed is not None and self.decoded_frames > self._frames_allowed:
            assert self.max_duration_s is not None  # _frames_allowed is made from it
            raise TooLongError(limit_s=self.max_duration_s, length_s=self.decoded_s, declared=False)
        return block

    def _check_complete(self) -> None:
        declared = self.declared_s
        if self.decoded_frames == 0:
            if declared:
                raise truncated(0.0, declared)
            raise CorruptAudioError("no audio could be decoded from this file")
        if declared and declared - self.decoded_s > truncation_tolerance(declared):
            raise truncated(self.decoded_s, declared)

    def _blocks(self) -> Iterator[np.ndarray]:
        """Decoded audio, resampled and downmixed, in blocks of ``block_frames`` (last shorter).

        Each frame's samples are copied straight into the block being filled: an MP3 frame is
        only 1152 samples, so per-frame Python work (PyAV's ``to_ndarray`` stacks the planes;
        lists of pieces joined per block) used to cost more than FFmpeg's decoding itself.
        """
        stream = self._stream
        filler = _BlockFiller(self.block_frames, self.sample_rate)
        resampler = None
        deadline = time.monotonic() + self.timeout_s
        for packet in self._container.demux(stream):
            if time.monotonic() >= deadline:  # ">=": a bound of 0 stops before any packet
                raise DecodeTimeoutError(
                    f"decoding took longer than {self.timeout_s:g} s "
                    f"(stopped after {self.decoded_s:.1f} s of audio)",
                    timeout_s=self.timeout_s,
                    decoded_s=self.decoded_s,
                )
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                continue  # a damaged packet: skip it, the decoder resyncs on the next one
            for frame in frames:
                fmt = frame.format.name
                same_rate = frame.sample_rate == self.sample_rate
                # nb_channels, not len(layout.channels): that builds a tuple of objects.
                channels = frame.layout.nb_channels
                if fmt == "fltp" and same_rate and channels < 8:
                    n = frame.samples
                    planes = [np.frombuffer(memoryview(p), np.float32, n) for p in frame.planes]
                    if self.mono and channels > 1:
                        # As the plain decode did: the mean of a C-ordered (channels, n) array.
                        filler.add(np.stack(planes).mean(axis=0, keepdims=True))
                    else:
                        filler.add_planes(planes, n)
                elif resampler is None and same_rate and fmt in _PACKED_SCALE:
                    # Integer or float interleaved samples at the output rate (WAV, FLAC):
                    # converted here exactly as libswresample would (``int * 2^-(bits-1)``
                    # in float32), without a filter graph and a second copy per frame. Once a
                    # resampler exists (the rate changed mid-stream) such frames go through it
                    # as before: it may hold samples that come first.
                    filler.add(self._shaped(_packed(frame, fmt, channels)))
                else:
                    if self.mono and fmt == "fltp" and channels < 8:
                        # Downmix first so libswresample filters one channel, not all of them.
                        mixed = frame.to_ndarray().mean(axis=0, keepdims=True, dtype=np.float32)
                        frame = _mono_frame(mixed, frame)
                    if resampler is None:
                        # Packed output: PyAV miscounts the planes of an 8-channel planar frame
                        # (and crashes reading them), so take interleaved samples and transpose.
                        resampler = av.AudioResampler(
                            format="flt", layout=_layout(frame), rate=self.sample_rate
                        )
                    for out in resampler.resample(frame):
                        filler.add(self._shaped(_deinterleave(out)))
                if filler.full:
                    yield from filler.take_full()
        if resampler is not None:
            for out in resampler.resample(None):
                filler.add(self._shaped(_deinterleave(out)))
        yield from filler.take_full()
        last = filler.take_rest()
        if last is not None:
            yield last

    def _shaped(self, samples: np.ndarray) -> np.ndarray:
        """``samples`` as float32, averaged to one channel when ``mono``."""
        samples = samples.astype(np.float32, copy=False)
        if self.mono and samples.shape[0] > 1:
            return samples.mean(axis=0, keepdims=True)
        return samples


#: Interleaved sample formats converted without libswresample, and the factor that maps their
#: integers onto ±1 (libswresample's own: ``x * (1.0f / (1 << 15))`` and so on).
_PACKED_SCALE: dict[str, tuple[type[np.generic], float | None]] = {
    "s16": (np.int16, 2.0**-15),
    "s32": (np.int32, 2.0**-31),
    "flt": (np.float32, None),
}


def _packed(frame: av.AudioFrame, fmt: str, channels: int) -> np.ndarray:
    """An interleaved frame as a float32 ``(channels, n)`` view of ``(n, channels)`` samples:
    the same memory order the resampler's output had, so a downmix sums in the same order."""
    dtype, scale = _PACKED_SCALE[fmt]
    raw = np.frombuffer(memoryview(frame.planes[0]), dtype, frame.samples * channels)
    if scale is not None:
        # float32(int) * float32(2^-k), as libswresample computes it: exact but for the
        # rounding of a 32-bit integer to float32, which is the same round-to-nearest.
        raw = np.multiply(raw, np.float32(scale), dtype=np.float32)
    return raw.reshape(-1, channels).T


class _BlockFiller:
    """Copies decoded pieces into ``(channels, block_frames)`` float32 arrays, a fresh one per
    block (a caller may keep the blocks it is handed), and queues each block once full."""

    def __init__(self, block_frames: int, sample_rate: int):
        self.block_frames = block_frames
        self.sample_rate = sample_rate
        self.channels: int | None = None  # of every block: the first piece's
        self.block: np.ndarray | None = None
        self.rows: list[np.ndarray] = []  # the block's channels, as views made once
        self.filled = 0
        self.full: list[np.ndarray] = []
        self.handed = 0  # frames in the blocks queued so far

    def add(self, samples: np.ndarray) -> None:
        """Append a ``(channels, n)`` piece."""
        n = samples.shape[1]
        start = 0
        while start < n:
            block = self._block(samples.shape[0])
            take = min(n - start, self.block_frames - self.filled)
            block[:, self.filled : self.filled + take] = samples[:, start : start + take]
            self._filled(take)
            start += take

    def add_planes(self, planes: list[np.ndarray], n: int) -> None:
        """Append one ``n``-sample piece given as one 1-D array per channel."""
        filled = self.filled
        if (
            self.block is not None
            and filled + n < self.block_frames
            and len(planes) == len(self.rows)
        ):
            # The common case, a frame inside the block: one copy per channel, nothing else
            # (the block's channel count is the stream's, checked when the block was made).
            for row, plane in zip(self.rows, planes, strict=True):
                row[filled : filled + n] = plane
            self.filled = filled + n
            return
        start = 0
        while start < n:
            self._block(len(planes))
            take = min(n - start, self.block_frames - self.filled)
            for row, plane in zip(self.rows, planes, strict=True):
                row[self.filled : self.filled + take] = plane[start : start + take]
            self._filled(take)
            start += take

    def take_full(self) -> list[np.ndarray]:
        full, self.full = self.full, []
        return full

    def take_rest(self) -> np.ndarray | None:
        """The last, partly filled block (a copy: not the whole block's memory), if any."""
        if self.block is None or not self.filled:
            return None
        rest = self.block[:, : self.filled].copy()
        self.block, self.rows, self.filled = None, [], 0
        return rest

    def _block(self, channels: int) -> np.ndarray:
        if self.channels is None:
            self.channels = channels
        elif channels != self.channels:
            # Two MP3s of different channel modes joined, say: blocks of one shape or nothing.
            at = (self.handed + self.filled) / self.sample_rate
            raise CorruptAudioError(
                f"the number of channels changes from {self.channels} to {channels} at {at:.1f} s"
            )
        if self.block is None:
            self.block = np.empty((channels, self.block_frames), np.float32)
            self.rows = list(self.block)
        return self.block

    def _filled(self, frames: int) -> None:
        self.filled += frames
        if self.filled == self.block_frames:
            assert self.block is not None
            self.full.append(self.block)
            self.handed += self.block_frames
            self.block, self.rows, self.filled = None, [], 0


def _mono_frame(mixed: np.ndarray, like: av.AudioFrame) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(mixed, format="flt", layout="mono")
    frame.sample_rate = like.sample_rate
    frame.pts = like.pts
    frame.time_base = like.time_base
    return frame


def _deinterleave(frame: av.AudioFrame) -> np.ndarray:
    channels = len(frame.layout.channels)
    return frame.to_ndarray().reshape(-1, channels).T


def _layout(frame: av.AudioFrame) -> av.AudioLayout | str:
    if frame.layout.name and "NONE" not in frame.layout.name:
        return frame.layout
    return {1: "mono", 2: "stereo"}.get(len(frame.layout.channels), frame.layout)


def iter_blocks(
    path: str | Path,
    *,
    sample_rate: int | None = None,
    mono: bool = False,
    block_frames: int = 65536,
    timeout_s: float | None = None,
    max_duration_s: float | None = None,
) -> Iterator[np.ndarray]:
    """Stream ``path`` as float32 ``(channels, n)`` blocks of ``block_frames`` (last shorter).

    ``sample_rate`` resamples with libswresample; ``mono`` averages the channels. Raises the
    ``audio.errors`` types described in this module's docstring.
    """
    stream = DecodedStream(
        path,
        sample_rate=sample_rate,
        mono=mono,
        block_frames=block_frames,
        timeout_s=timeout_s,
        max_duration_s=max_duration_s,
    )
    yield from stream.blocks()


def decode(path: str | Path, **kwargs) -> tuple[np.ndarray, int]:
    """The whole file as one float32 ``(channels, frames)`` array and its sample rate."""
    stream = DecodedStream(path, **kwargs)
    blocks = list(stream.blocks())
    if not blocks:
        return np.zeros((stream.channels, 0), np.float32), stream.sample_rate
    return np.concatenate(blocks, axis=1), stream.sample_rate
