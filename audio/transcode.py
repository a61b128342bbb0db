"""Streaming encoders: float32 blocks in, MP3/Opus/AAC (.m4a)/FLAC/WAV files out.

``AudioEncoder`` takes ``(channels, n)`` blocks of any size and encodes them as they come, on
a thread of its own (:mod:`audio.work_thread`: the caller decodes and measures meanwhile), so
a long file never sits in memory. libswresample converts rate, layout and sample format to
what the codec wants and cuts the codec's fixed frame size. MP3 goes through LAME directly
(:mod:`audio.mp3`, three times faster than FFmpeg's build). Encoder delay is declared in each
file (the LAME Info tag for MP3, Opus pre-skip in Ogg, an edit list for AAC in MP4), so decoded
durations match the input.
"""

from __future__ import annotations

import contextlib
from collections import deque
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, cast

import av
import numpy as np

from audio.decode import DecodedStream
from audio.formats import FORMATS, Format, check_formats
from audio.mp3 import Mp3Writer
from audio.output_meter import Mp3OutputMeter, OutputLoudness
from audio.work_thread import worker

if TYPE_CHECKING:
    from av.audio.stream import AudioStream

#: FFmpeg channel layouts by channel count.
LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


@dataclass(frozen=True)
class TranscodeResult:
    path: str
    format: str
    bitrate: int | None
    sample_rate: int
    channels: int
    size_bytes: int
    duration_s: float

    def to_dict(self) -> dict:
        return asdict(self)


def output_rate(fmt: Format, in_rate: int) -> int:
    """The rate ``fmt`` encodes audio of ``in_rate`` at: its own, the input's, or the nearest
    higher one its codec accepts."""
    if fmt.sample_rate:
        return fmt.sample_rate
    if not fmt.rates or in_rate in fmt.rates:
        return in_rate
    higher = [r for r in fmt.rates if r >= in_rate]
    return min(higher) if higher else max(fmt.rates)


class AudioEncoder:
    """Encode blocks into ``out_path`` as ``fmt`` (a key of ``FORMATS``).

    :param measure: an MP3 is decoded and measured as it is written
        (:class:`audio.output_meter.Mp3OutputMeter`): :attr:`measured` holds its figures once
        closed. Other formats are not (``measured`` stays None): decode the file to measure it.
    :param strict_floor_dbtp: with ``measure``, also read the strict true peak, exact over
        this level (see :class:`audio.limiter.StrictPeak`).
    :param threaded: encode on a thread of its own (:mod:`audio.work_thread`); False where
        every core is taken already (:func:`audio.work_thread.spare_cores`).
    """

    def __init__(
        self,
        out_path: str | Path,
        fmt: str,
        *,
        in_rate: int,
        in_channels: int,
        bitrate: int | None = None,
        measure: bool = False,
        strict_floor_dbtp: float | None = None,
        threaded: bool = True,
    ):
        check_formats([fmt])
        self.format = FORMATS[fmt]
        self.out_path = Path(out_path)
        self.in_rate = int(in_rate)
        self.in_channels = int(in_channels)
        self.sample_rate = output_rate(self.format, self.in_rate)
        self.channels = self.format.channels or self.in_channels
        self.bitrate = (
            (bitrate or self.format.default_bitrate) if self.format.default_bitrate else None
        )
        self._in_layout = LAYOUTS[self.in_channels]
        self._mp3: Mp3Writer | None = None
        #: The figures of the output as decoded, once closed (``measure``, MP3 only).
        self.measured: OutputLoudness | None = None
        self._meter: Mp3OutputMeter | None = None
        self._encoded: deque[bytes] = deque()  # LAME's bytes not yet decoded by the meter
        if self.format.name == "mp3":
            if measure:
                self._meter = Mp3OutputMeter(
                    self.sample_rate, self.channels, strict_floor_dbtp=strict_floor_dbtp
                )
            # LAME via lameenc: see audio/mp3.py for why not FFmpeg's.
            self._mp3 = Mp3Writer(
                self.out_path,
                sample_rate=self.sample_rate,
                channels=self.channels,
                bitrate=self.bitrate or 192_000,
                listener=self._encoded.append if self._meter is not None else None,
            )
            self._resampler = av.AudioResampler(
                format="s16", layout=LAYOUTS[self.channels], rate=self.sample_rate
            )
        else:
            self._open_container()
        self._frames_in = 0
        self._packet_bytes = 0
        self._closed = False
        self._thread = worker(self._work, f"encode {self.out_path.name}", threaded)

    def _open_container(self) -> None:
        self._container = av.open(str(self.out_path), "w", format=self.format.container)
        try:
            # An audio codec (FORMATS) makes an audio stream; add_stream is typed for any codec.
            self._stream = cast(
                "AudioStream", self._container.add_stream(self.format.codec, rate=self.sample_rate)
            )
            self._stream.layout = LAYOUTS[self.channels]
            self._stream.format = self.format.sample_format
            if self.bitrate:
                self._stream.bit_rate = self.bitrate
            self._stream.codec_context.open()
            frame_size = self._stream.codec_context.frame_size or None
            self._resampler = av.AudioResampler(
                format=self.format.sample_format,
                layout=LAYOUTS[self.channels],
                rate=self.sample_rate,
                frame_size=frame_size,
            )
        except BaseException:
            self._container.close()
            raise

    def write(self, block: np.ndarray) -> None:
        """Encode a float32 ``(in_channels, n)`` block."""
        block = np.atleast_2d(np.asarray(block, dtype=np.float32))
        if block.shape[0] != self.in_channels:
            raise ValueError(f"expected {self.in_channels} channels, got {block.shape[0]}")
        if block.shape[1] == 0:
            return
        # A copy (clipped, interleaved) is what crosses to the thread: the caller may reuse
        # its block.
        packed = np.ascontiguousarray(np.clip(block, -1.0, 1.0).T).reshape(1, -1)
        if self._mp3 is not None:
            # LAME's input is made here, so its thread needs the GIL only to hand its bytes
            # on: two threads that both want it switch often, and on a busy core each switch
            # costs cache (measured: 0.5 s more CPU on a 180 s analysis + MP3 on one core).
            for frame in self._converted(packed, self._frames_in):
                self._thread.put(frame.to_ndarray().reshape(-1, self.channels))
        else:
            self._thread.put((packed, self._frames_in))
        self._frames_in += block.shape[1]
        self._measure_encoded()

    def _converted(self, packed: np.ndarray, pts: int) -> list[av.AudioFrame]:
        """One interleaved float block in the codec's rate, layout and sample format."""
        frame = av.AudioFrame.from_ndarray(packed, format="flt", layout=self._in_layout)
        frame.sample_rate = self.in_rate
        frame.pts = pts
        frame.time_base = Fraction(1, self.in_rate)
        return self._resampler.resample(frame)

    def _work(self, item) -> None:
        """On the encoder's thread: LAME's 16-bit samples encoded, or (other codecs) one
        interleaved block converted and encoded."""
        if self._mp3 is not None:
            self._mp3.write(item)
            return
        for out in self._converted(*item):
            self._encode(out)

    def _measure_encoded(self) -> None:
        """Decode and measure what LAME has written since the last call (caller's thread)."""
        if self._meter is None:
            return
        while self._encoded:
            self._meter.add(self._encoded.popleft())

    def _encode(self, frame: av.AudioFrame | None) -> None:
        if self._mp3 is not None:
            if frame is not None:
                self._mp3.write(frame.to_ndarray().reshape(-1, self.channels))
            return
        for packet in self._stream.encode(frame):
            self._packet_bytes += packet.size
            self._container.mux(packet)

    @property
    def bytes_written(self) -> int:
        """Bytes of encoded audio so far: what the file grows by, its few header bytes aside."""
        if self._mp3 is not None:
            return self._mp3.audio_bytes
        return self._packet_bytes

    def close(self) -> TranscodeResult:
        """Flush the encoder, finish the file and describe it."""
        if not self._closed:
            self._closed = True
            try:
                self._thread.finish()
                for out in self._resampler.resample(None):
                    self._encode(out)
                self._encode(None)
            finally:
                if self._mp3 is not None:
                    self._mp3.close()
                else:
                    self._container.close()
            if self._meter is not None and self._mp3 is not None:
                self._measure_encoded()
                self.measured = self._meter.finish(self._mp3.samples)
        return TranscodeResult(
            path=str(self.out_path),
            format=self.format.name,
            bitrate=self.bitrate,
            sample_rate=self.sample_rate,
            channels=self.channels,
            size_bytes=self.out_path.stat().st_size if self.out_path.exists() else 0,
            duration_s=self._frames_in / self.in_rate,
        )

    def discard(self) -> None:
        """Stop without finishing the file and remove it: what a failed transcode does.

        Nothing is flushed, and an error while closing is not raised: the caller is handling
        the error that made it give up, and that one must reach its own caller — not be
        replaced by, say, LAME's "Not currently encoding" from an encoder that got no audio.
        """
        self._closed = True
        self._thread.abandon()
        with contextlib.suppress(Exception):
            if self._mp3 is not None:
                self._mp3.close()
            else:
                self._container.close()
        self.out_path.unlink(missing_ok=True)

    def __enter__(self) -> AudioEncoder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def transcode(
    path: str | Path, out_path: str | Path, fmt: str, *, bitrate: int | None = None
) -> TranscodeResult:
    """Decode ``path`` and encode it as ``fmt`` into ``out_path``, streaming both ways."""
    stream = DecodedStream(path)
    encoder = AudioEncoder(
        out_path, fmt, in_rate=stream.sample_rate, in_channels=stream.channels, bitrate=bitrate
    )
    try:
        for block in stream.blocks():
            encoder.write(block)
    except BaseException:
        stream.close()
        encoder.discard()
        raise
    return encoder.close()
