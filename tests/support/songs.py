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
