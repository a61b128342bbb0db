"""Songs of known tempo and key, as FLAC bytes, and the loudness an independent meter gives."""

from __future__ import annotations


def song_flac(
    folder, bpm: float, tonic: str, mode: str, *, seconds: float, rate: int, seed: int
) -> bytes:
    """A synthesized song of known tempo and key, as FLAC bytes."""
    from tests.support.audio.music import synthesize_track
    from tests.support.audio.signals import write_audio

    track = synthesize_track(bpm, tonic, mode, seconds=seconds, sample_rate=rate, seed=seed)
    path = write_audio(folder / "song.flac", track.samples, rate, "flac")
    return path.read_bytes()


def reference_lufs(samples, rate: int) -> float:
    """Integrated loudness of ``samples`` (channels, frames) by pyloudnorm: an implementation
    of BS.1770 independent of ours, the truth the service's figures are held to."""
    import pyloudnorm

    return float(pyloudnorm.Meter(rate).integrated_loudness(samples.T))


def long_mp3(seconds: int, piece_s: int = 10) -> bytes:
    """``seconds`` of a tone as a CBR MP3 like the service's outputs (192 kbit/s, 44.1 kHz,
    stereo: 14 MB for ten minutes), made in a fraction of a second: ``piece_s`` seconds are
    encoded once, without ID3 or Xing header (a player takes the duration from the size), and
    their frames repeated."""
    import io

    import av
    import numpy as np

    rate = 44100
    buffer = io.BytesIO()
    bare = {"write_xing": "0", "id3v2_version": "0"}
    with av.open(buffer, "w", format="mp3", options=bare) as out:
        stream = out.add_stream("libmp3lame", rate=rate, layout="stereo")
        stream.bit_rate = 192_000
        times = np.arange(piece_s * rate) / rate
        tone = (0.3 * np.sin(2 * np.pi * 440 * times)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    piece = buffer.getvalue()
    return piece * (seconds // piece_s)
