"""MP3 files from LAME through ``lameenc``, with the LAME "Info" tag for gapless playback.

Why not the LAME inside PyAV's FFmpeg? It is built without LAME's assembly and encodes about
three times slower (180 s of stereo: 6.7 s against 2.1 s here, same quality setting), and MP3
encoding is most of a transcode's time.

``lameenc`` writes bare frames; decoders would then play LAME's encoder delay and end padding
(≈ 60 ms of silence in all). So the first frame of the file is an "Info" frame — the Xing
header of a constant-bitrate file, with LAME's extension — stating frame count, byte count,
encoder delay and padding; FFmpeg, iTunes and most players use it to trim, and the decoded
length equals the input's.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import lameenc
import numpy as np

FRAME_SAMPLES = 1152  # MPEG-1 Layer III
ENCODER_DELAY = 576  # what LAME adds in front (decoders add their own 529 and know it)
#: LAME's quality setting (0 best … 9 fastest); 3 is what FFmpeg's libmp3lame uses by default.
QUALITY = 3
_BITRATES = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_RATES = {44100: 0, 48000: 1, 32000: 2}


class Mp3Writer:
    """Write 16-bit PCM blocks to an MP3 file.

    :param path: the file to write.
    :param sample_rate: 32, 44.1 or 48 kHz (MPEG-1).
    :param channels: 1 or 2.
    :param bitrate: bits per second, one of MPEG-1's rates (e.g. 192000).
    :param listener: given every byte of audio frames as it is written (to decode them while
        the encode goes on: :mod:`audio.output_meter`).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        sample_rate: int,
        channels: int,
        bitrate: int,
        listener: Callable[[bytes], None] | None = None,
    ):
        kbps = bitrate // 1000
        if sample_rate not in _RATES or kbps not in _BITRATES or channels not in (1, 2):
            raise ValueError(f"MP3 cannot do {sample_rate} Hz, {channels} ch, {kbps} kbit/s")
        self.sample_rate, self.channels, self.kbps = sample_rate, channels, kbps
        self.frame_bytes = 144 * kbps * 1000 // sample_rate  # without the padding byte
        self._encoder = lameenc.Encoder()
        self._encoder.set_bit_rate(kbps)
        self._encoder.set_in_sample_rate(sample_rate)
        self._encoder.set_channels(channels)
        self._encoder.set_quality(QUALITY)
        self._file = open(path, "wb")  # noqa: SIM115 (closed in close())
        self._file.write(bytes(self.frame_bytes))  # room for the Info frame
        self.samples = 0
        self.audio_bytes = 0
        self._first_header: bytes | None = None
        self._listener = listener

    def write(self, pcm: np.ndarray) -> None:
        """Encode interleaved int16 samples shaped ``(n, channels)``."""
        pcm = np.ascontiguousarray(pcm, dtype=np.int16)
        self.samples += len(pcm)
        self._emit(self._encoder.encode(pcm.tobytes()))

    def close(self) -> None:
        """Flush LAME and fill in the Info frame."""
        if self._file.closed:
            return
        try:
            if self.samples:  # lameenc raises "Not currently encoding" if it never encoded
                self._emit(self._encoder.flush())
            self._file.seek(0)
            self._file.write(self._info_frame())
        finally:
            self._file.close()

    def _emit(self, data: bytes) -> None:
        if data and self._first_header is None:
            self._first_header = bytes(data[:4])
        self._file.write(data)
        self.audio_bytes += len(data)
        if data and self._listener is not None:
            self._listener(bytes(data))

    def _info_frame(self) -> bytes:
        frames = round(self.audio_bytes / (144 * self.kbps * 1000 / self.sample_rate))
        padding = max(0, frames * FRAME_SAMPLES - self.samples - ENCODER_DELAY)
        header = bytearray(self._first_header or self._header())
        header[2] &= 0b11111101  # no padding byte in this frame
        side_info = 32 if self.channels == 2 else 17
        total_bytes = self.frame_bytes + self.audio_bytes
        toc = bytes(min(255, i * 256 // 100) for i in range(100))
        xing = b"Info" + struct.pack(">III", 0x0F, frames, total_bytes) + toc
        xing += struct.pack(">I", 100 - 10 * QUALITY)
        lame = bytearray(b"LAME3.100")
        lame += bytes([0x01, 0])  # tag revision 0, CBR; lowpass unknown
        lame += bytes(4 + 2 + 2)  # replay gain: none
        lame += bytes([0, min(255, self.kbps)])  # flags, bitrate
        lame += (ENCODER_DELAY << 12 | min(padding, 0xFFF)).to_bytes(3, "big")
        lame += bytes([0, 0]) + bytes(2)  # misc, MP3 gain, preset
        lame += struct.pack(">I", total_bytes) + bytes(2)  # music length, music CRC
        frame = bytearray(bytes(header) + bytes(side_info) + xing + lame)
        frame += struct.pack(">H", _crc16(bytes(frame[:190])))
        frame += bytes(self.frame_bytes - len(frame))
        return bytes(frame)

    def _header(self) -> bytes:
        mode = 0b01 if self.channels == 2 else 0b11  # joint stereo / mono
        return bytes(
            [
                0xFF,
                0xFB,  # MPEG-1, Layer III, no CRC
                (_BITRATES.index(self.kbps) << 4) | (_RATES[self.sample_rate] << 2),
                (mode << 6) | 0b0100,  # original
            ]
        )


def _crc16(data: bytes) -> int:
    """CRC-16/ARC, as LAME computes its tag's checksum."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc
