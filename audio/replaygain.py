"""ReplayGain 2.0: the gain that brings a track (or an album) to −18 LUFS, and its tags.

The values follow loudgain (libebur128), the reference tool of ReplayGain 2.0:

* **gain** = −18 LUFS − the integrated loudness (BS.1770, as :mod:`audio.loudness` measures it);
* **peak** = the *true* peak, linear (1.0 = full scale). loudgain reads
  ``ebur128_true_peak`` (a 12 kHz sine phased 45° at 48 kHz, 0.636 full scale in its samples,
  reads 0.9108 there): players use the peak to keep gain from clipping, and it is the crest
  of the reconstructed wave, not the largest sample, that clips a DAC.
* **album** = the same of several tracks measured as one programme: the 400 ms gating blocks
  of every track pooled, then gated once (``ebur128_loudness_global_multiple``). Averaging the
  tracks' LUFS is not that: a quiet interlude would pull the album down as much as a long
  loud song. The album peak is the largest of the tracks' peaks.

A track with no integrated loudness (silence, a click, under 400 ms: see
:class:`audio.loudness.Loudness`) has no ReplayGain: ``None`` values and no tags.

Tags, as each format's players read them (:func:`write_tags`):

* MP3 and WAV — ID3v2.4 ``TXXX:REPLAYGAIN_TRACK_GAIN`` ``"-7.02 dB"`` and
  ``TXXX:REPLAYGAIN_TRACK_PEAK`` ``"0.912345"``, as loudgain writes them; a WAV carries them in
  an ``id3`` chunk (what loudgain, foobar2000 and Mp3tag write and read; players that know
  no WAV tags skip the chunk, as RIFF asks);
* FLAC — the same names as Vorbis comments;
* AAC in MP4 (.m4a) — iTunes freeform atoms ``----:com.apple.iTunes:REPLAYGAIN_TRACK_GAIN``
  and ``…_PEAK`` (UTF-8), which foobar2000, Rockbox, mpv and loudgain read;
* Opus — ``R128_TRACK_GAIN`` only (RFC 7845 §5.2.1): see :func:`r128_gain`.

This module imports neither numpy nor mutagen at the top: the web process reads album
figures with it (:class:`GatingHistogram` is plain Python) and never writes tags.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from audio.loudness import Loudness, LoudnessMeter

#: ReplayGain 2.0's reference loudness, LUFS.
REFERENCE_LUFS = -18.0
#: EBU R128's, which Opus's ``R128_*`` gains are relative to (RFC 7845 §5.2.1), LUFS.
R128_REFERENCE_LUFS = -23.0
#: Width of a bin of :class:`GatingHistogram`, LU.
HISTOGRAM_BIN_LU = 0.01
_ABSOLUTE_GATE_LUFS = -70.0
_RELATIVE_GATE_LU = -10.0

NO_LOUDNESS = "the audio has no integrated loudness (silence, a click or under 400 ms)"


class ReplayGainError(Exception):
    """Base of this module's errors."""


class UntaggableFormat(ReplayGainError, ValueError):
    """A format :func:`write_tags` does not know (not a key of ``audio.formats.FORMATS``)."""

    def __init__(self, fmt: str) -> None:
        self.format = fmt
        super().__init__(f"no ReplayGain tags for format {fmt!r}")


class TagWriteError(ReplayGainError):
    """The file could not be tagged (not the format it was said to be, or unreadable)."""


@dataclass(frozen=True)
class ReplayGain:
    """A ReplayGain 2.0 gain (dB, to −18 LUFS) and peak (linear true peak); ``None`` for
    both, with ``reason`` saying why, when there is no loudness to bring anywhere."""

    gain_db: float | None
    peak: float | None
    reason: str | None = None

    @property
    def gain_text(self) -> str | None:
        """``"-7.02 dB"``: the tag's value, as loudgain writes it."""
        return None if self.gain_db is None else f"{self.gain_db:.2f} dB"

    @property
    def peak_text(self) -> str | None:
        """``"0.912345"``: the tag's value, as loudgain writes it."""
        return None if self.peak is None else f"{self.peak:.6f}"

    def to_dict(self) -> dict:
        """``replaygain_track_gain_db`` and ``replaygain_track_peak``, rounded as the tags."""
        return {
            "replaygain_track_gain_db": None if self.gain_db is None else round(self.gain_db, 2),
            "replaygain_track_peak": None if self.peak is None else round(self.peak, 6),
        }


def replaygain(integrated_lufs: float | None, true_peak_dbtp: float | None) -> ReplayGain:
    """The ReplayGain of audio measured at ``integrated_lufs`` with ``true_peak_dbtp``."""
    if integrated_lufs is None or not math.isfinite(integrated_lufs):
        return ReplayGain(None, None, NO_LOUDNESS)
    peak = None
    if true_peak_dbtp is not None and math.isfinite(true_peak_dbtp):
        peak = 10 ** (true_peak_dbtp / 20)
    return ReplayGain(REFERENCE_LUFS - integrated_lufs, peak)


def track_replaygain(loudness: Loudness) -> ReplayGain:
    """The ReplayGain of a track from its measurement (peak: the true peak, see above)."""
    result = replaygain(loudness.integrated_lufs, loudness.true_peak_dbtp)
    if result.gain_db is None and loudness.reason:
        return ReplayGain(None, None, loudness.reason)
    return result


def r128_gain(gain: ReplayGain) -> int | None:
    """``R128_TRACK_GAIN`` of an Ogg Opus file (RFC 7845 §5.2.1): the gain to −23 LUFS, as a
    signed Q7.8 integer (dB × 256), rounded half away from zero as loudgain writes it (C's
    ``round``; Python's rounds halves to even).

    RFC 7845 relates it to the audio *after* the ID Header's output gain: a decoder applies
    the header's gain always, a player applies this tag on top when it normalises. Our
    encoder leaves the header's gain at 0 dB and the loudness here is measured on the audio
    as decoded (header gain applied), so the tag is what the player adds, as the RFC asks.
    """
    if gain.gain_db is None:
        return None
    q78 = (gain.gain_db + (R128_REFERENCE_LUFS - REFERENCE_LUFS)) * 256
    rounded = int(math.copysign(math.floor(abs(q78) + 0.5), q78))
    return max(-32768, min(32767, rounded))


# -- albums ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GatingHistogram:
    """The 400 ms gating blocks of one track (BS.1770: every 100 ms), binned by loudness.

    Pooling several tracks' blocks is what an album's loudness is; a 4-hour track has 144,000
    blocks, too many to keep for every upload. The blocks above the −70 LUFS absolute gate are
    kept as bins of :data:`HISTOGRAM_BIN_LU` (at most 8,000, whatever the duration), each with
    its block count and the *exact* sum of its blocks' energies. Pooling is then exact but for
    the blocks in the one bin the relative gate falls in (within 0.01 LU of it, about 10 LU
    under the mean, so each carries a tenth of a mean block's energy): libebur128's own
    histogram mode bins ten times wider and keeps no sums.

    Plain Python (no numpy): the web process pools albums with it.
    """

    counts: dict[int, int]  # bin → blocks
    energies: dict[int, float]  # bin → summed mean-square energy of its blocks

    @classmethod
    def from_meter(cls, meter: LoudnessMeter) -> GatingHistogram:
        """The gating blocks of everything ``meter`` measured."""
        import numpy as np

        from audio.loudness import _GATING_STEP, _MOMENTARY, _block_energies, to_lufs

        sums, counts = meter._slices()
        blocks = _block_energies(sums, counts, _MOMENTARY, _GATING_STEP)
        levels = to_lufs(blocks)
        above = levels > _ABSOLUTE_GATE_LUFS
        bins = np.floor((levels[above] - _ABSOLUTE_GATE_LUFS) / HISTOGRAM_BIN_LU).astype(np.int64)
        found, inverse = np.unique(bins, return_inverse=True)
        n = np.bincount(inverse, minlength=len(found))
        energy = np.bincount(inverse, weights=blocks[above], minlength=len(found))
        return cls(
            counts={int(b): int(c) for b, c in zip(found, n, strict=True)},
            energies={int(b): float(e) for b, e in zip(found, energy, strict=True)},
        )

    def to_dict(self) -> dict:
        """JSON-safe: ``{"bin_lu", "bins": [[bin, count, energy], ...]}``."""
        rows = [[b, self.counts[b], float(f"{self.energies[b]:.9g}")] for b in sorted(self.counts)]
        return {"bin_lu": HISTOGRAM_BIN_LU, "bins": rows}

    @classmethod
    def from_dict(cls, data: dict) -> GatingHistogram:
        """:meth:`to_dict` read back.

        :raises ReplayGainError: the data is not such a histogram (or of another bin width).
        """
        try:
            if data["bin_lu"] != HISTOGRAM_BIN_LU:
                raise ReplayGainError(
                    f"histogram bins of {data['bin_lu']} LU, not {HISTOGRAM_BIN_LU}"
                )
            rows = [(int(b), int(c), float(e)) for b, c, e in data["bins"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise ReplayGainError(f"not a gating histogram: {exc}") from exc
        return cls({b: c for b, c, _ in rows}, {b: e for b, _, e in rows})


def pooled_loudness(histograms: Iterable[GatingHistogram]) -> float | None:
    """Integrated loudness of several tracks as one programme (BS.1770 gating of all their
    blocks together), LUFS; ``None`` when no block passes the absolute gate."""
    counts: dict[int, int] = {}
    energies: dict[int, float] = {}
    for histogram in histograms:
        for b, c in histogram.counts.items():
            counts[b] = counts.get(b, 0) + c
            energies[b] = energies.get(b, 0.0) + histogram.energies[b]
    total = sum(counts.values())
    if total == 0:
        return None
    gate = _lufs(sum(energies.values()) / total) + _RELATIVE_GATE_LU
    # A bin is kept when its blocks' mean is over the gate: exact for every bin but the one
    # the gate falls in (see GatingHistogram).
    kept = [b for b in counts if _lufs(energies[b] / counts[b]) > gate]
    return _lufs(sum(energies[b] for b in kept) / sum(counts[b] for b in kept))


def album_replaygain(
    histograms: Sequence[GatingHistogram], peaks: Sequence[float | None]
) -> ReplayGain:
    """The album gain of tracks with these gating blocks, and the largest of their ``peaks``
    (linear; ``None`` for tracks with none)."""
    lufs = pooled_loudness(histograms)
    if lufs is None:
        return ReplayGain(None, None, "no track has a loudness to pool (all silent or too short)")
    known = [p for p in peaks if p is not None]
    return ReplayGain(REFERENCE_LUFS - lufs, max(known) if known else None)


def _lufs(energy: float) -> float:
    return -0.691 + 10 * math.log10(energy) if energy > 0 else -math.inf


# -- tags ------------------------------------------------------------------------------------

_GAIN, _PEAK = "REPLAYGAIN_TRACK_GAIN", "REPLAYGAIN_TRACK_PEAK"
_MP4_PREFIX = "----:com.apple.iTunes:"
#: Every ReplayGain key an earlier tagger may have left; removed before writing, as loudgain
#: does, so no player finds two answers.
_ALL_KEYS = (
    "REPLAYGAIN_TRACK_GAIN",
    "REPLAYGAIN_TRACK_PEAK",
    "REPLAYGAIN_TRACK_RANGE",
    "REPLAYGAIN_ALBUM_GAIN",
    "REPLAYGAIN_ALBUM_PEAK",
    "REPLAYGAIN_ALBUM_RANGE",
    "REPLAYGAIN_REFERENCE_LOUDNESS",
    "R128_TRACK_GAIN",
    "R128_ALBUM_GAIN",
)


def write_tags(path: str | Path, fmt: str, gain: ReplayGain) -> bool:
    """Write ``gain`` into the file at ``path``, encoded as ``fmt`` (a key of
    ``audio.formats.FORMATS``), as that format's players read it (see the module's docstring).

    :returns: whether tags were written: not when ``gain`` has no value (silence), and then
        the file is left as it is.
    :raises UntaggableFormat: ``fmt`` is not a format we write.
    :raises TagWriteError: the file cannot be read as ``fmt``.
    """
    writers = {"mp3": _tag_mp3, "wav": _tag_wav, "flac": _tag_flac, "opus": _tag_opus}
    writers["aac"] = _tag_mp4
    if fmt not in writers:
        raise UntaggableFormat(fmt)
    if gain.gain_db is None:
        return False
    import mutagen

    try:
        writers[fmt](Path(path), gain)
    except mutagen.MutagenError as exc:
        raise TagWriteError(f"cannot tag {Path(path).name} as {fmt}: {exc}") from exc
    return True


def _id3_frames(gain: ReplayGain) -> list:
    from mutagen.id3 import TXXX

    frames = [TXXX(encoding=3, desc=_GAIN, text=[gain.gain_text])]
    if gain.peak_text is not None:
        frames.append(TXXX(encoding=3, desc=_PEAK, text=[gain.peak_text]))
    return frames


def _replace_id3(tags, gain: ReplayGain) -> None:
    for key in list(tags.keys()):
        if key.startswith("TXXX:") and key[5:].upper() in _ALL_KEYS:
            del tags[key]
    for frame in _id3_frames(gain):
        tags.add(frame)


def _tag_mp3(path: Path, gain: ReplayGain) -> None:
    from mutagen.id3 import ID3, ID3NoHeaderError

    try:
        tags = ID3(path)
    except ID3NoHeaderError:
        tags = ID3()
    _replace_id3(tags, gain)
    tags.save(path, v2_version=4)


def _tag_wav(path: Path, gain: ReplayGain) -> None:
    from mutagen.wave import WAVE

    audio = WAVE(path)
    if audio.tags is None:
        audio.add_tags()
    _replace_id3(audio.tags, gain)
    audio.save(v2_version=4)


def _vorbis_values(gain: ReplayGain) -> dict[str, str]:
    values = {_GAIN: gain.gain_text or ""}
    if gain.peak_text is not None:
        values[_PEAK] = gain.peak_text
    return values


def _replace_vorbis(audio, values: dict[str, str]) -> None:
    if audio.tags is None:
        audio.add_tags()
    for key in list(audio.tags.keys()):
        if key.upper() in _ALL_KEYS:
            del audio.tags[key]
    for key, value in values.items():
        audio.tags[key] = [value]
    audio.save()


def _tag_flac(path: Path, gain: ReplayGain) -> None:
    from mutagen.flac import FLAC

    _replace_vorbis(FLAC(path), _vorbis_values(gain))


def _tag_opus(path: Path, gain: ReplayGain) -> None:
    from mutagen.oggopus import OggOpus

    _replace_vorbis(OggOpus(path), {"R128_TRACK_GAIN": str(r128_gain(gain))})


def _tag_mp4(path: Path, gain: ReplayGain) -> None:
    from mutagen.mp4 import MP4, AtomDataType, MP4FreeForm

    audio = MP4(path)
    if audio.tags is None:
        audio.add_tags()
    assert audio.tags is not None  # just added
    for key in list(audio.tags.keys()):
        if key.startswith(_MP4_PREFIX) and key[len(_MP4_PREFIX) :].upper() in _ALL_KEYS:
            del audio.tags[key]
    for key, value in _vorbis_values(gain).items():
        audio.tags[_MP4_PREFIX + key] = [MP4FreeForm(value.encode(), AtomDataType.UTF8)]
    audio.save()


def measure_file(path: str | Path, **bounds) -> Loudness:
    """The loudness of a file as decoded (an output: what a player will play), by our meter.

    :param bounds: ``timeout_s``, ``max_duration_s``, ``should_stop`` of
        :class:`audio.decode.DecodedStream`.
    """
    from audio.decode import DecodedStream
    from audio.loudness import LoudnessMeter

    stream = DecodedStream(path, **bounds)
    meter = LoudnessMeter(stream.sample_rate, stream.channels, stream.info.channel_names)
    for block in stream.blocks():
        meter.add(block)
    return meter.result()


def output_replaygain(
    output_path: str | Path,
    fmt: str,
    *,
    source: Loudness,
    source_rate: int,
    source_channels: int,
    measured: Loudness | None = None,
    **bounds,
) -> ReplayGain:
    """The ReplayGain of an output encoded from audio measured as ``source``.

    A tag must describe the file it is in (loudgain run on the output must agree): a lossy
    encoder moves loudness and peaks (our MP3s of a 1 kHz sine and of music read 0.26–0.29 dB
    quieter than their sources; encoders overshoot peaks), and so does a change of channels
    (5.1 downmixed to stereo). So the output is decoded and measured — unless it is lossless
    at the source's rate and channels with no sample past full scale (nothing clipped): then
    it holds the source's samples to within 16-bit rounding, and the source's figures are its
    own.

    :param measured: the output's figures if it was measured while it was encoded
        (:mod:`audio.output_meter`): then it is not decoded again.
    :param bounds: as for :func:`measure_file`.
    """
    from audio.formats import FORMATS

    spec = FORMATS[fmt]
    same_samples = (
        spec.default_bitrate is None
        and (spec.channels or source_channels) == source_channels
        and (spec.sample_rate or source_rate) == source_rate
        and (source.sample_peak_dbfs is None or source.sample_peak_dbfs <= 0.0)
    )
    if same_samples:
        return track_replaygain(source)
    return track_replaygain(measured or measure_file(output_path, **bounds))
