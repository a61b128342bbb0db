"""The jobs list's filter by a failed quality check (``?failing=`` on ``GET /api/jobs``, the jobs
page's select, ``phantomchain jobs list --failing``): a check's name, or ``any``. What it takes
is here, light enough for the CLI's options; the query is :mod:`app.failing_query`.
"""

from __future__ import annotations

from audio.verdicts import CHECK_NAMES

#: Any check at all.
ANY = "any"
#: What ``failing`` takes.
FAILING_CHOICES = (ANY, *CHECK_NAMES)
#: Each choice as the jobs page names it (the checks as the result page's card titles them).
CHECK_LABELS = {
    ANY: "Any check",
    "clipping": "Clipping",
    "dc_offset": "DC offset",
    "mono": "Mono compatibility",
    "lossy_origin": "Lossy origin",
    "true_peak": "True peak",
}


class BadFailing(ValueError):
    """Not a check's name, nor ``any``."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"failing must be one of {', '.join(FAILING_CHOICES)}; {name[:40]!r} is not a check"
        )


def check_failing(name: str | None) -> str | None:
    """``name`` if the filter takes it (``None`` or empty: no filter).

    :raises BadFailing: anything else.
    """
    if not name:
        return None
    if name not in FAILING_CHOICES:
        raise BadFailing(name)
    return name
