"""Which checks an upload fails, each in a sentence a person reads, with its figures.

Pure Python on the flat analysis record (the API's, the webhook's, ``analyze --json``'s): the web
process builds the result page's "Checks" card with it without loading numpy, and the worker
stores :func:`failed_checks` for the jobs list's filter. The limits are the usual ones of
mastering and delivery specs, not tuned on any signal:

* clipping — any flat top (:mod:`audio.clipping`);
* DC offset — a channel's mean above −40 dBFS (1 % of full scale), where it starts to cost
  headroom and to click at edits;
* mono — a mono sum 6 LU or more quieter than the stereo file (uncorrelated channels lose 3);
* lossy origin — a lossless upload cut off like an MP3 (:mod:`audio.bandwidth`);
* true peak — over −1 dBTP, the ceiling every platform preset asks for (encoders overshoot);
* loudness — never a failure: where the platforms' normalisation will take the track.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from audio.targets import PRESETS

DC_OFFSET_LIMIT_DBFS = -40.0
MONO_LOSS_LIMIT_LU = 6.0
TRUE_PEAK_LIMIT_DBTP = -1.0
#: The names of the checks that can fail, as ``failed_checks`` and the jobs filter spell them.
CHECK_NAMES = ("clipping", "dc_offset", "mono", "lossy_origin", "true_peak")
#: The sentence of every check an analysis made before the checks existed cannot answer.
NOT_MEASURED = (
    "Analysed before PhantomChain ran this check: retry or re-upload the file to measure it."
)
#: The value fields of the checks in the flat record, and the reason key of each check (a
#: sentence when its value is null or stands out, else null).
VALUE_KEYS = (
    "max_momentary_lufs",
    "max_short_term_lufs",
    "plr_db",
    "channel_loudness_lufs",
    "clipping",
    "dc_offset_dbfs",
    "stereo_correlation",
    "mono_loss_lu",
    "bandwidth_hz",
    "lossy_origin",
)
REASON_KEYS = (
    "max_momentary_reason",
    "max_short_term_reason",
    "plr_reason",
    "channel_loudness_reason",
    "clipping_reason",
    "dc_offset_reason",
    "mono_reason",
    "bandwidth_reason",
    "lossy_origin_reason",
)
#: What a mark means on the card.
PASS, FAIL, INFO, UNKNOWN = "pass", "fail", "info", "unknown"


@dataclass(frozen=True)
class Verdict:
    name: str
    status: str  # PASS, FAIL, INFO or UNKNOWN
    title: str
    sentence: str
    figures: str

    def to_dict(self) -> dict:
        return asdict(self)


def verdicts(record: dict) -> list[Verdict]:
    """Every check of ``record`` (the flat analysis), in the card's order."""
    return [
        _clipping(record),
        _true_peak(record),
        _dc_offset(record),
        _mono(record),
        _lossy_origin(record),
        _loudness(record),
    ]


def failed_checks(record: dict) -> list[str]:
    """Names (from :data:`CHECK_NAMES`) of the checks ``record`` fails."""
    return [v.name for v in verdicts(record) if v.status == FAIL]


def _unknown(name: str, title: str, reason: str | None) -> Verdict:
    return Verdict(name, UNKNOWN, title, reason or "Not measured.", "")


def _clipping(record: dict) -> Verdict:
    clipping = record.get("clipping")
    if clipping is None:
        return _unknown("clipping", "Clipping", record.get("clipping_reason"))
    runs = clipping["runs"]
    if not runs:
        return Verdict("clipping", PASS, "Clipping", "No flat tops at full scale.", "0 runs")
    figures = f"{runs} runs, {clipping['clipped_s']:.3f} s, first at {_time(clipping['first_s'])}"
    return Verdict(
        "clipping",
        FAIL,
        "Clipping",
        f"Clipped: {runs} flat top{'s' if runs != 1 else ''} held at full scale, the first at "
        f"{_time(clipping['first_s'])}.",
        figures,
    )


def _true_peak(record: dict) -> Verdict:
    peak = record.get("true_peak_dbtp")
    if peak is None:
        return _unknown("true_peak", "True peak", "The audio is silent: it has no peak.")
    figures = f"{_signed(peak, '.1f')} dBTP"
    if peak > TRUE_PEAK_LIMIT_DBTP:
        return Verdict(
            "true_peak",
            FAIL,
            "True peak",
            f"Peaks over {_signed(TRUE_PEAK_LIMIT_DBTP)} dBTP: lossy encoders will push them "
            "past full scale; the platforms ask for −1 dBTP at most.",
            figures,
        )
    return Verdict(
        "true_peak", PASS, "True peak", f"Under {_signed(TRUE_PEAK_LIMIT_DBTP)} dBTP.", figures
    )


def _dc_offset(record: dict) -> Verdict:
    offsets = record.get("dc_offset_dbfs")
    if offsets is None:
        return _unknown("dc_offset", "DC offset", record.get("dc_offset_reason"))
    measured = [value for value in offsets if value is not None]
    figures = ", ".join("none" if v is None else f"{_signed(v, '.0f')} dBFS" for v in offsets)
    worst = max(measured, default=None)
    if worst is not None and worst > DC_OFFSET_LIMIT_DBFS:
        return Verdict(
            "dc_offset",
            FAIL,
            "DC offset",
            f"A DC offset of {_signed(worst, '.0f')} dBFS (over {_signed(DC_OFFSET_LIMIT_DBFS)}): "
            "it takes headroom "
            "and clicks at edits; a high-pass filter removes it.",
            figures,
        )
    return Verdict("dc_offset", PASS, "DC offset", "No DC offset worth removing.", figures)


def _mono(record: dict) -> Verdict:
    loss, correlation = record.get("mono_loss_lu"), record.get("stereo_correlation")
    if loss is None:
        status = INFO if record.get("channels") == 1 else UNKNOWN
        return Verdict("mono", status, "Mono compatibility", record.get("mono_reason") or "", "")
    shown = "–" if correlation is None else _signed(correlation, "+.2f")
    figures = f"correlation {shown}, mono {loss:.1f} LU quieter"
    if loss >= MONO_LOSS_LIMIT_LU:
        return Verdict(
            "mono",
            FAIL,
            "Mono compatibility",
            record.get("mono_reason") or f"Summed to mono it is {loss:.1f} LU quieter.",
            figures,
        )
    return Verdict(
        "mono", PASS, "Mono compatibility", "Holds up summed to mono (phones, clubs).", figures
    )


def _lossy_origin(record: dict) -> Verdict:
    lossy, bandwidth = record.get("lossy_origin"), record.get("bandwidth_hz")
    figures = "" if bandwidth is None else f"bandwidth {bandwidth / 1000:.1f} kHz"
    reason = record.get("lossy_origin_reason")
    if lossy is None:
        status = INFO if bandwidth is not None else UNKNOWN
        return Verdict("lossy_origin", status, "Lossy origin", reason or "", figures)
    if lossy:
        sentence = reason or "Cut off like a lossy encoder's low-pass: most likely lossy once."
        return Verdict("lossy_origin", FAIL, "Lossy origin", sentence, figures)
    return Verdict(
        "lossy_origin", PASS, "Lossy origin", "Full bandwidth: no sign of a lossy past.", figures
    )


def _loudness(record: dict) -> Verdict:
    lufs = record.get("integrated_lufs")
    if lufs is None:
        return _unknown("loudness", "Loudness", record.get("loudness_reason"))
    changes = []
    for name in ("spotify", "apple", "youtube"):
        target = PRESETS[name].lufs
        change = target - lufs
        verb = "down" if change < 0 else "up"
        changes.append(
            f"{name.capitalize()} ({_signed(target)}) plays it {verb} {abs(change):.1f} dB"
            if abs(change) >= 0.5
            else f"{name.capitalize()} ({_signed(target)}) plays it as it is"
        )
    figures = f"{_signed(lufs, '.1f')} LUFS"
    return Verdict("loudness", INFO, "Loudness", "; ".join(changes) + ".", figures)


def _signed(value: float, spec: str = "g") -> str:
    """A number as the pages write it: a true minus sign (−14, not -14)."""
    return format(value, spec).replace("-", "\u2212")


def _time(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}:{rest:06.3f}"
