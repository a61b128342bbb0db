"""A method a route does not take is a 405 that says which it does take (``Allow``, RFC 9110
§15.5.6), on every route of the app: the API, the pages, the probes, the static files."""

from __future__ import annotations

import re
import uuid

#: Sent to every route that does not take them (OPTIONS is answered by Flask for every route).
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "TRACE")

#: A value for each kind of ``<converter:name>`` in a rule.
VALUES = {"id": str(uuid.uuid4()), "path": "some/file.txt", None: "x1"}
_PART = re.compile(r"<(?:(\w+):)?(\w+)>")


def url_of(rule: str) -> str:
    return _PART.sub(lambda part: VALUES[part.group(1)], rule)


def pattern_of(rule: str, converters: dict) -> re.Pattern:
    """What ``rule`` matches: each converter's own ``regex`` (``string`` when none is named)."""
    pieces, end = [], 0
    for part in _PART.finditer(rule):
        matches = converters[part.group(1) or "default"].regex
        pieces += [re.escape(rule[end : part.start()]), f"(?:{matches})"]
        end = part.end()
    return re.compile("".join([*pieces, re.escape(rule[end:])]))


def allowed(header: str | None) -> set[str]:
    return {method.strip() for method in (header or "").split(",") if method.strip()}


def test_every_405_says_which_methods_the_route_takes(api_only):
    url_map = api_only.application.url_map
    rules = list(url_map.iter_rules())
    patterns = [
        (pattern_of(rule.rule, url_map.converters), rule.methods or set()) for rule in rules
    ]
    assert {"/healthz", "/readyz", "/api/jobs", "/", "/static/<path:filename>"} <= {
        rule.rule for rule in rules
    }
    for url in sorted({url_of(rule.rule) for rule in rules}):
        # Every rule this URL matches, whatever the method (/api/dead-letters/retry is also
        # a dead letter named "retry"): the resource takes the methods of them all.
        takes = set().union(*(methods for regex, methods in patterns if regex.fullmatch(url)))
        assert takes, url
        options = api_only.options(url)
        assert options.status_code == 200 and allowed(options.headers.get("Allow")) == takes
        for method in sorted(set(METHODS) - takes):
            response = api_only.open(url, method=method)
            assert response.status_code == 405, (method, url, response.status_code)
            sent = response.headers.getlist("Allow")
            assert len(sent) == 1 and allowed(sent[0]) == takes, (method, url, sent)
            if method != "HEAD":  # the body stays the API's error
                assert response.json["error"]["code"] == "method_not_allowed", (method, url)
