"""Shared fixtures for the audio tests."""

from __future__ import annotations

import pytest

from tests.unit.audio.music import Track, corpus


@pytest.fixture(scope="session")
def music_corpus() -> list[Track]:
    """48 synthesized tracks of known tempo and key: all 24 keys twice, 70–180 BPM."""
    return corpus(count=48, seconds=20.0, sample_rate=11025)
