"""Shared fixtures for the audio tests."""

from __future__ import annotations

import pytest

from tests.unit.audio.music import HELD_APART_FIRST_SEED, TUNING_SEEDS, Track, corpus

COUNT, SECONDS, RATE = 48, 20.0, 11025
SEEDS = range(HELD_APART_FIRST_SEED, HELD_APART_FIRST_SEED + COUNT)
CORPUS = (
    f"{COUNT} tracks of {SECONDS:g} s at {RATE} Hz, seeds {SEEDS.start}–{SEEDS.stop - 1}, "
    "all 24 keys twice, 70–180 BPM"
)


def held_apart_corpus() -> list[Track]:
    """The corpus the tempo and key claims rest on: none of its seeds tuned anything."""
    assert not set(SEEDS) & set(TUNING_SEEDS)
    return corpus(count=COUNT, seconds=SECONDS, sample_rate=RATE, first_seed=SEEDS.start)


@pytest.fixture(scope="session")
def music_corpus() -> list[Track]:
    """48 synthesized tracks of known tempo and key on held-apart seeds (see ``CORPUS``)."""
    return held_apart_corpus()
