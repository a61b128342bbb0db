"""The result page's "Checks" card: one row per quality check, from :func:`audio.verdicts.verdicts`
(pure Python: the web process stays free of numpy), each with a mark that says its outcome in
words as well as in a symbol and a colour."""

from __future__ import annotations

from dataclasses import dataclass

from audio.verdicts import FAIL, INFO, PASS, UNKNOWN, verdicts


@dataclass(frozen=True)
class Mark:
    symbol: str
    label: str  # what the symbol means, for screen readers and the tooltip


MARKS = {
    PASS: Mark("✓", "Passed"),
    FAIL: Mark("✗", "Failed"),
    INFO: Mark("·", "For information"),
    UNKNOWN: Mark("?", "Not measured"),
}


@dataclass(frozen=True)
class CheckRow:
    name: str
    status: str
    mark: Mark
    title: str
    sentence: str
    figures: str


def check_rows(analysis: dict, channels: int | None) -> list[CheckRow]:
    """The card's rows for ``analysis`` (the flat analysis JSON) of an upload of ``channels``
    channels (a mono file has no mono check to make)."""
    record = {**analysis, "channels": channels}
    return [
        CheckRow(v.name, v.status, MARKS[v.status], v.title, v.sentence, v.figures)
        for v in verdicts(record)
    ]
