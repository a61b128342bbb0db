"""Shared fixtures for the audio tests: the held-apart sets tempo and key are scored on
(:mod:`tests.support.audio.corpora`), built once a session."""

from __future__ import annotations

import pytest

from tests.support.audio import styles
from tests.support.audio.corpora import held_apart_corpus, styles_held_apart
from tests.support.audio.music import Track


@pytest.fixture(scope="session")
def music_corpus() -> list[Track]:
    """48 synthesized tracks of known tempo and key on held-apart seeds (``corpora.CORPUS``)."""
    return held_apart_corpus()


@pytest.fixture(scope="session")
def styles_corpus() -> list[styles.StyleTrack]:
    """45 tracks of ``styles.py`` (5 a style) on held-apart seeds."""
    return styles_held_apart()
