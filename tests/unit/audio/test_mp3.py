"""MP3 through LAME with an Info tag: exact length back, no delay, CBR header right."""

from __future__ import annotations

import struct

import av
import numpy as np
import pytest

from audio.decode import decode
from audio.mp3 import ENCODER_DELAY, Mp3Writer, _crc16
from tests.support.audio.signals import chirp


@pytest.mark.parametrize(("rate", "channels"), [(44100, 2), (48000, 1), (32000, 2)])
def test_decoded_audio_has_the_input_length_and_no_delay(tmp_path, rate, channels):
    signal = chirp(200, 4000, seconds=3.3, rate=rate, channels=channels, amplitude=0.5)
    pcm = (signal.T * 32767).astype(np.int16)
    path = tmp_path / "out.mp3"
    writer = Mp3Writer(path, sample_rate=rate, channels=channels, bitrate=192000)
    for start in range(0, len(pcm), 10007):
        writer.write(pcm[start : start + 10007])
    writer.close()
    decoded, decoded_rate = decode(path)
    assert decoded_rate == rate and decoded.shape[0] == channels
    assert decoded.shape[1] == signal.shape[1]  # gapless: delay and padding trimmed
    middle = slice(rate, 2 * rate)
    error = decoded[0, middle] - signal[0, middle]
    assert np.sqrt(np.mean(error**2)) < 0.02  # aligned to the sample (not 1105 late)


def test_info_tag_fields(tmp_path):
    path = tmp_path / "tag.mp3"
    writer = Mp3Writer(path, sample_rate=44100, channels=2, bitrate=192000)
    writer.write(np.zeros((44100, 2), dtype=np.int16))
    writer.close()
    data = path.read_bytes()
    tag = data.index(b"Info")
    assert tag == 4 + 32  # after the header and stereo side info
    flags, frames, size = struct.unpack(">III", data[tag + 4 : tag + 16])
    assert flags == 0x0F and size == len(data)
    assert frames * 1152 >= 44100 + ENCODER_DELAY
    lame = data.index(b"LAME3.100")
    delay_padding = int.from_bytes(data[lame + 21 : lame + 24], "big")
    assert delay_padding >> 12 == ENCODER_DELAY
    assert (delay_padding & 0xFFF) == frames * 1152 - 44100 - ENCODER_DELAY
    # The tag's checksum, against an independent CRC-16/ARC …
    assert int.from_bytes(data[190:192], "big") == crc16_arc_reference(data[:190])
    # … and FFmpeg's own check: its MP3 demuxer takes the tag (and names the encoder from it)
    # only when the checksum matches (libavformat/mp3dec.c, ``v == crc``).
    with av.open(str(path)) as container:
        assert container.streams.audio[0].metadata.get("encoder") == "LAME3.100"


def crc16_arc_reference(data: bytes) -> int:
    """CRC-16/ARC by its textbook definition, written apart from ``audio.mp3._crc16``: the
    polynomial x¹⁶+x¹⁵+x²+1 (0x8005) divided most significant bit first into the bit-reversed
    bytes, initial value 0, result bit-reversed (what LAME's VbrTag.c and FFmpeg's
    ``ff_crcA001_update`` compute for the Info tag — not the 0xFFFF-initialised CRC of an
    MPEG audio frame's protection field)."""

    def reflect(value: int, bits: int) -> int:
        return int(f"{value:0{bits}b}"[::-1], 2)

    register = 0
    for byte in data:
        register ^= reflect(byte, 8) << 8
        for _ in range(8):
            register <<= 1
            if register & 0x10000:
                register ^= 0x18005
    return reflect(register, 16)


def test_crc16_matches_the_published_check_value():
    """CRC-16/ARC of b"123456789" is 0xBB3D (the catalogue's check value, e.g. reveng's)."""
    assert crc16_arc_reference(b"123456789") == 0xBB3D
    assert _crc16(b"123456789") == 0xBB3D
    assert _crc16(b"") == 0 and crc16_arc_reference(b"") == 0


def test_impossible_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="MP3 cannot do"):
        Mp3Writer(tmp_path / "x.mp3", sample_rate=96000, channels=2, bitrate=192000)
