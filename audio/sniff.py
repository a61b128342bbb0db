"""Is this audio? A look at the first bytes of a file, before anything is stored.

Returns the kind and a content type for the formats the decoder takes; ``None`` for anything
else (text, images, archives…), so an upload can be refused without being kept.
"""

from __future__ import annotations

#: How many leading bytes :func:`sniff` needs.
HEAD_BYTES = 12


def sniff(head: bytes) -> tuple[str, str] | None:
    """``(kind, content type)`` of audio recognised by its magic bytes, else ``None``."""
    if head.startswith(b"ID3"):
        return "mp3", "audio/mpeg"
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "wav", "audio/wav"
    if head.startswith(b"fLaC"):
        return "flac", "audio/flac"
    if head.startswith(b"OggS"):
        return "ogg", "audio/ogg"
    if head.startswith(b"FORM") and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff", "audio/aiff"
    if head[4:8] == b"ftyp":
        return "m4a", "audio/mp4"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        layer = (head[1] >> 1) & 0b11
        if head[1] & 0xF6 == 0xF0:  # ADTS: sync 12 bits, layer 00
            return "aac", "audio/aac"
        if layer != 0 and len(head) >= 3 and head[2] >> 4 not in (0, 15):  # MPEG audio frame
            return "mp3", "audio/mpeg"
    return None
