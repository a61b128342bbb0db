"""Loudness targets: the platforms' presets and targets read from a request."""

from __future__ import annotations

import pytest

from audio.errors import BadTargetError
from audio.targets import PRESETS, Target, parse_target


@pytest.mark.parametrize(
    ("name", "lufs"),
    [("spotify", -14), ("apple", -16), ("youtube", -14), ("ebu", -23), ("podcast", -16)],
)
def test_each_preset_parses(name, lufs):
    assert parse_target(name) == Target(lufs, -1.0, name)
    assert parse_target(f" {name.upper()} ") == Target(lufs, -1.0, name)
    assert PRESETS[name] == Target(lufs, -1.0, name)


def test_a_number_with_a_ceiling_and_a_preset_with_another():
    assert parse_target("-18", "-2") == Target(-18.0, -2.0, None)
    assert parse_target("-18", None) == Target(-18.0, -1.0, None)
    assert parse_target("spotify", -1.5) == Target(-14.0, -1.5, "spotify")
    assert parse_target("-60", 0) == Target(-60.0, 0.0, None)  # the ends are allowed
    assert parse_target("\u221216", "\u22121.5") == Target(-16.0, -1.5, None)  # "−16", "−1.5"
    target = parse_target("-18", "-2")
    assert target.to_dict() == {"name": None, "target_lufs": -18.0, "true_peak_ceiling_dbtp": -2.0}
    assert Target.from_dict(PRESETS["ebu"].to_dict()) == PRESETS["ebu"]


@pytest.mark.parametrize(
    ("normalize", "true_peak", "says"),
    [
        ("tidal", None, "spotify, apple, youtube, ebu, podcast"),
        ("-4", None, "from -60 to -5"),
        ("-80", None, "from -60 to -5"),
        ("-65", None, "from -60 to -5"),  # quieter than could be measured again
        ("nan", None, "from -60 to -5"),
        ("loud", None, "like -18"),
        ("-14", "0.5", "from -20 to 0"),
        ("spotify", "-21", "from -20 to 0"),
        ("spotify", "high", "true_peak"),
    ],
)
def test_bad_targets_say_what_is_accepted(normalize, true_peak, says):
    with pytest.raises(BadTargetError, match=says):
        parse_target(normalize, true_peak)


def test_a_huge_value_is_not_echoed_whole():
    with pytest.raises(BadTargetError) as refused:
        parse_target("x" * 400_000)
    assert len(str(refused.value)) < 300
