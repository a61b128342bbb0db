"""Open an audio file safely and describe it: ``probe(path) -> AudioInfo``.

Opening goes through ``open_audio``, which every reader in ``audio/`` shares: it only lets
FFmpeg use audio demuxers and the local-file protocol (a playlist or concat file cannot make
it read other files or the network) and turns FFmpeg's failures into ``AudioError``
subclasses with a message a person understands.

The duration a file *declares* is kept apart from the one FFmpeg estimates: FFmpeg clamps a
WAV's length to the bytes present and guesses a raw MP3's length from its bitrate, so
neither tells us a file was cut short. ``declared_duration`` reads the header fields that do
(WAV ``data`` size, MP3 Xing/Info/VBRI frame count, FLAC STREAMINFO, AIFF COMM, MP4 ``moov``).
"""

from __future__ import annotations

import struct
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import av
import av.error

from audio.errors import (
    CorruptAudioError,
    EmptyFileError,
    NotAudioError,
    TooLongError,
    TruncatedAudioError,
    UnsupportedAudioError,
)

MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 384_000
MAX_CHANNELS = 8

AUDIO_DEMUXERS = (
    "wav,w64,mp3,flac,ogg,mov,mp4,m4a,3gp,3g2,mj2,aiff,matroska,webm,aac,caf,wv,ac3,eac3,"
    "au,amr,ape,tta,mpc,mpc8,dts,truehd,asf,voc,loas"
)
_OPEN_OPTIONS = {"format_whitelist": AUDIO_DEMUXERS, "protocol_whitelist": "file"}

# Containers whose stream duration FFmpeg takes from the header (or, for Ogg, the last page)
# rather than estimating it from the bitrate.
_HEADER_DURATION_FORMATS = {"flac", "mov", "aiff", "ogg", "matroska", "caf", "w64", "wv", "ape"}

_DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1"}
_DEFAULT_LAYOUTS[8] = "7.1"

# Leading bytes of containers we decode: a file starting so is audio, even if damaged.
_AUDIO_MAGIC = (b"RIFF", b"RF64", b"ID3", b"fLaC", b"OggS", b"FORM", b"caff", b"wvpk", b"MAC ")


@dataclass(frozen=True)
class AudioInfo:
    """What a file says about its first audio stream."""

    duration_s: float
    sample_rate: int
    channels: int
    codec: str
    bitrate: int | None
    container: str
    channel_names: tuple[str, ...]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channel_names"] = list(self.channel_names)
        return d


def probe(path: str | Path, *, max_duration_s: float | None = None) -> AudioInfo:
    """Describe ``path``'s first audio stream; raise an ``AudioError`` subclass if we can't.

    A WAV whose header declares more audio than the file holds raises
    ``TruncatedAudioError`` here already (it costs nothing to know); a file that declares
    more than ``max_duration_s`` raises ``TooLongError`` (see :func:`check_declared_length`).
    """
    container, stream = open_audio(path)
    with container:
        info = describe(container, stream)
        check_header_length(path, container, info)
        if max_duration_s is not None:
            declared = declared_duration(path, container, stream)
            check_declared_length(declared or info.duration_s, max_duration_s)
        if container.format.name == "mp3":
            # FFmpeg drops the Xing frame count when the file size disagrees with it (e.g.
            # garbage inside the file) and falls back to a bitrate guess; the count is truer.
            declared = _mp3_declared_duration(Path(path))
            if declared is not None and abs(declared - info.duration_s) > 0.1:
                info = replace(info, duration_s=declared)
        return info


def open_audio(path: str | Path) -> tuple[av.container.InputContainer, av.AudioStream]:
    """Open ``path`` with audio demuxers only; return the container and its first audio stream.

    Raises ``EmptyFileError``, ``NotAudioError``, ``CorruptAudioError`` (an audio container
    FFmpeg cannot read, e.g. an M4A cut before its index) or ``UnsupportedAudioError``.
    ``FileNotFoundError`` passes through: a missing file is not a property of audio.
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise EmptyFileError("empty file (0 bytes): not an audio file")
    try:
        # "replace": a tag that is not UTF-8 (garbage in a damaged header) is no reason to fail
        container = av.open(str(path), options=_OPEN_OPTIONS, metadata_errors="replace")
    except (av.error.InvalidDataError, av.error.ArgumentError, av.error.EOFError) as e:
        kind = _sniff_audio(path)
        if kind:
            raise CorruptAudioError(
                f"damaged or truncated {kind} file: its container cannot be read"
            ) from e
        raise NotAudioError("not an audio file") from e
    except av.error.FFmpegError as e:
        raise NotAudioError(f"not an audio file ({e.strerror or e})") from e
    if not container.streams.audio:
        what = container.format.name
        container.close()
        raise NotAudioError(f"not an audio file (no audio stream in this {what} file)")
    stream = container.streams.audio[0]
    if stream.codec_context is None:
        container.close()
        raise UnsupportedAudioError("unsupported audio codec")
    try:
        check_supported(stream.rate, stream.channels)
    except UnsupportedAudioError:
        container.close()
        raise
    return container, stream


def check_supported(sample_rate: int, channels: int) -> None:
    """Raise ``UnsupportedAudioError`` outside 8–384 kHz or 1–8 channels."""
    if not MIN_SAMPLE_RATE <= (sample_rate or 0) <= MAX_SAMPLE_RATE:
        raise UnsupportedAudioError(
            f"unsupported sample rate {sample_rate} Hz (supported: 8 kHz to 384 kHz)"
        )
    if not 1 <= (channels or 0) <= MAX_CHANNELS:
        raise UnsupportedAudioError(f"unsupported channel count {channels} (supported: 1 to 8)")


def describe(container: av.container.InputContainer, stream: av.AudioStream) -> AudioInfo:
    """``AudioInfo`` of an opened stream (FFmpeg's duration, declared or estimated)."""
    duration = _stream_duration(stream)
    if duration is None and container.duration is not None:
        duration = container.duration / av.time_base
    return AudioInfo(
        duration_s=float(duration or 0.0),
        sample_rate=int(stream.rate),
        channels=int(stream.channels),
        codec=stream.codec_context.name,
        bitrate=int(stream.bit_rate or container.bit_rate or 0) or None,
        container=container_name(container),
        channel_names=channel_names(stream),
    )


def container_name(container: av.container.InputContainer) -> str:
    """A short name for the container: ``"mp4"`` rather than ``"mov,mp4,m4a,3gp,3g2,mj2"``."""
    names = container.format.name.split(",")
    for short in ("mp4", "matroska"):
        if short in names:
            return short
    return names[0]


def channel_names(stream: av.AudioStream) -> tuple[str, ...]:
    """FFmpeg's channel names (``FL``, ``FR``, ``FC``, ``LFE``…); a default layout when the
    file does not say (a plain 2-channel WAV is stereo)."""
    names = tuple(ch.name for ch in stream.layout.channels)
    if len(names) == stream.channels and "NONE" not in names and names:
        return names
    layout = av.AudioLayout(_DEFAULT_LAYOUTS[stream.channels])
    return tuple(ch.name for ch in layout.channels)


def declared_duration(path: str | Path, container, stream) -> float | None:
    """Seconds of audio the header promises, or ``None`` when the file declares no length
    (a raw MP3 without a Xing/Info/VBRI frame, an ADTS stream…)."""
    fmt = container.format.name.split(",")[0]
    if fmt == "wav":
        return _wav_declared_duration(Path(path))
    if fmt == "mp3":
        return _mp3_declared_duration(Path(path))
    if fmt in _HEADER_DURATION_FORMATS:
        return _stream_duration(stream)
    return None


def check_header_length(path: str | Path, container, info: AudioInfo) -> None:
    """Raise ``TruncatedAudioError`` if a WAV's ``data`` chunk is longer than the file."""
    if container.format.name != "wav":
        return
    declared = _wav_declared_duration(Path(path))
    present = info.duration_s
    if declared is not None and declared - present > truncation_tolerance(declared):
        raise truncated(present, declared)


def check_declared_length(length_s: float | None, max_duration_s: float | None) -> None:
    """Raise ``TooLongError`` if a file's length, as it declares it (or as FFmpeg estimates it
    when it declares none), is over ``max_duration_s`` (``None``: no limit).

    Nothing is decoded for this, so a file can lie; the decoder counts what it really
    decodes against the same limit (:class:`audio.decode.DecodedStream`).
    """
    if max_duration_s is not None and length_s and length_s > max_duration_s:
        raise TooLongError(limit_s=max_duration_s, length_s=length_s, declared=True)


def truncation_tolerance(declared_s: float) -> float:
    """How much shorter than declared a decode may be before the file counts as truncated:
    encoder priming/padding and a partial last frame cost tens of milliseconds."""
    return max(0.2, 0.01 * declared_s)


def truncated(decoded_s: float, declared_s: float | None) -> TruncatedAudioError:
    detail = f" of the {declared_s:.1f} s its header declares" if declared_s else ""
    return TruncatedAudioError(
        f"file is truncated after {decoded_s:.1f} s of audio{detail}",
        decoded_s=decoded_s,
        declared_s=declared_s,
    )


def _stream_duration(stream: av.AudioStream) -> float | None:
    if stream.duration is None or stream.time_base is None:
        return None
    return float(stream.duration * stream.time_base)


def _sniff_audio(path: Path) -> str | None:
    with path.open("rb") as f:
        head = f.read(12)
    if head[4:8] == b"ftyp":
        return "MP4/M4A"
    for magic in _AUDIO_MAGIC:
        if head.startswith(magic):
            return {b"ID3": "MP3", b"fLaC": "FLAC", b"OggS": "Ogg", b"FORM": "AIFF"}.get(
                magic, magic.decode().strip()
            )
    return None


def _wav_declared_duration(path: Path) -> float | None:
    """Duration from the RIFF ``fmt `` and ``data`` chunk sizes; ``None`` if the size is a
    placeholder (0 or 0xFFFFFFFF: a streaming writer's "unknown")."""
    with path.open("rb") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block_align = rate = None
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"fmt ":
                fmt = f.read(min(size, 16))
                if len(fmt) < 16:
                    return None
                _, _, rate, _, block_align = struct.unpack("<HHIIH", fmt[:14])
                f.seek(size - 16 + (size & 1), 1)
            elif cid == b"data":
                if size in (0, 0xFFFFFFFF) or not rate or not block_align:
                    return None
                return size // block_align / rate
            else:
                f.seek(size + (size & 1), 1)


_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mp3_declared_duration(path: Path) -> float | None:
    """Frame count from a Xing/Info or VBRI header in the first MPEG audio frame."""
    with path.open("rb") as f:
        data = f.read(64 * 1024)
        start = 0
        if data[:3] == b"ID3" and len(data) >= 10:
            size = 0
            for b in data[6:10]:
                size = (size << 7) | (b & 0x7F)
            start = 10 + size
            if start + 4096 > len(data):
                f.seek(start)
                data, start = f.read(8192), 0
    sync = data.find(b"\xff", start)
    while sync != -1 and sync + 4 <= len(data) and (data[sync + 1] & 0xE0) != 0xE0:
        sync = data.find(b"\xff", sync + 1)
    if sync == -1 or sync + 4 > len(data):
        return None
    h = data[sync : sync + 4]
    version = (h[1] >> 3) & 3  # 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5
    layer = (h[1] >> 1) & 3  # 1 = layer III
    rate_index = (h[2] >> 2) & 3
    if version == 1 or rate_index == 3 or layer != 1:
        return None
    rate = _MP3_RATES[version][rate_index]
    mono = (h[3] >> 6) == 3
    samples_per_frame = 1152 if version == 3 else 576
    side_info = (17 if mono else 32) if version == 3 else (9 if mono else 17)
    frames = None
    xing = sync + 4 + side_info
    if data[xing : xing + 4] in (b"Xing", b"Info"):
        flags = struct.unpack(">I", data[xing + 4 : xing + 8])[0]
        if flags & 1:
            frames = struct.unpack(">I", data[xing + 8 : xing + 12])[0]
    elif data[sync + 36 : sync + 40] == b"VBRI":
        frames = struct.unpack(">I", data[sync + 50 : sync + 54])[0]
    if not frames:
        return None
    return frames * samples_per_frame / rate
