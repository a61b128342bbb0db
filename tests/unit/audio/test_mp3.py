"""MP3 through LAME with an Info tag: exact length back, no delay, CBR header right."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from audio.decode import decode
from audio.mp3 import ENCODER_DELAY, Mp3Writer, _crc16
from tests.unit.audio.signals import chirp


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
    assert int.from_bytes(data[190:192], "big") == _crc16(data[:190])


def test_impossible_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="MP3 cannot do"):
        Mp3Writer(tmp_path / "x.mp3", sample_rate=96000, channels=2, bitrate=192000)
