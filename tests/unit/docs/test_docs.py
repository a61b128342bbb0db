"""The manual holds together: its links resolve, and docs/configuration.md documents every
setting ``Config`` reads — each exactly once, and nothing it does not read.

The checking functions take their inputs as arguments, so the last tests can feed them broken
examples and see them fail.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

import pytest

from tests.support.paths import ROOT

CONFIG_PY = ROOT / "app" / "config.py"
CONFIGURATION_MD = ROOT / "docs" / "configuration.md"
PROCFILE = ROOT / "Procfile"
#: First header cell of the tables of settings ``Config`` reads, and of the Procfile's own.
SETTINGS_HEADER = "setting"
PROCFILE_HEADER = "procfile variable"

NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+).*?\1")
#: ``[text](target)`` and ``![alt](target)``, an optional "title" after the target.
LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
EXTERNAL = ("http:", "https:", "mailto:")
BACKTICKED = re.compile(r"`([^`]+)`")


def manual() -> list[Path]:
    """README.md, BENCHMARKS.md and every page of docs/."""
    return [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]


# -- links -----------------------------------------------------------------------------------


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, inline code removed (neither holds links)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(INLINE_CODE.sub("", line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lowercase, punctuation but ``-`` and
    ``_`` dropped, spaces to ``-``."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = text.replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading's anchor, with GitHub's ``-1``, ``-2`` … for repeated headings."""
    found: set[str] = set()
    seen: Counter[str] = Counter()
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match:
            base = slug(match.group(2))
            found.add(f"{base}-{seen[base]}" if seen[base] else base)
            seen[base] += 1
    return found


def links(text: str) -> list[str]:
    """The targets of the markdown links and images in ``text``, outside code."""
    return [m.group(1) for line in prose_lines(text) for m in LINK.finditer(line)]


def dead_links(pages: list[Path]) -> list[str]:
    """``"page: target (why)"`` for each relative link that does not resolve: a file that is
    not there, or a ``#fragment`` no heading of the target page (or of the page itself, for a
    bare ``#anchor``) slugs to. Links to http(s) and mailto are not followed."""
    problems = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for target in links(text):
            if not target or target.lower().startswith(EXTERNAL):
                continue
            path_part, _, fragment = target.partition("#")
            resolved = (page.parent / path_part).resolve() if path_part else page
            if not resolved.exists():
                problems.append(f"{page.name}: {target} (no such file)")
                continue
            in_page = resolved.suffix != ".md" or fragment in anchors(
                resolved.read_text(encoding="utf-8")
            )
            if fragment and not in_page:
                problems.append(f"{page.name}: {target} (no heading #{fragment})")
    return problems


# -- settings --------------------------------------------------------------------------------


def _is_environment(node: ast.expr) -> bool:
    """``env``, ``environ``, ``os.environ``: a mapping of the environment."""
    if isinstance(node, ast.Name):
        return node.id in ("env", "environ", "environment")
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def _reads_environment(call: ast.Call, helpers: set[str]) -> bool:
    """``env.get(…)``, ``os.environ.get(…)``, ``os.getenv(…)``, or a function of the module
    itself (``text("X")``, ``number("X", …)``, ``_int(env, "X", …)``)."""
    func = call.func
    if isinstance(func, ast.Name):
        return func.id in helpers
    if isinstance(func, ast.Attribute) and func.attr == "getenv":
        return isinstance(func.value, ast.Name) and func.value.id == "os"
    return isinstance(func, ast.Attribute) and func.attr == "get" and _is_environment(func.value)


def _first_name(values: list[ast.expr]) -> str | None:
    """The first UPPER_CASE string constant among ``values``."""
    for value in values:
        text = value.value if isinstance(value, ast.Constant) else None
        if isinstance(text, str) and NAME.match(text):
            return text
    return None


def settings_read(source: str) -> set[str]:
    """The variable names a config module looks up: the first UPPER_CASE string constant
    given to an environment lookup (a call, as above, or ``env["X"]``)."""
    tree = ast.parse(source)
    helpers = {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    names = set()
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Call) and _reads_environment(node, helpers):
            name = _first_name([*node.args, *(keyword.value for keyword in node.keywords)])
        elif isinstance(node, ast.Subscript) and _is_environment(node.value):
            name = _first_name([node.slice])
        if name is not None:
            names.add(name)
    return names


def cells(row: str) -> list[str]:
    """A markdown table row's cells; a ``|`` inside backticks stays in its cell."""
    parts, current, in_code = [], "", False
    for char in row.strip().strip("|"):
        if char == "`":
            in_code = not in_code
        if char == "|" and not in_code:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return parts


def tables(text: str) -> list[tuple[str, list[list[str]]]]:
    """Each table outside code: its first header cell (lowercase) and its body rows' cells."""
    found: list[tuple[str, list[list[str]]]] = []
    block: list[str] = []
    fenced = False
    for line in [*text.splitlines(), ""]:
        if FENCE.match(line):
            fenced = not fenced
        if not fenced and line.lstrip().startswith("|"):
            block.append(line)
            continue
        if len(block) >= 2 and set(block[1].replace("|", "").strip()) <= set("-: "):
            found.append((cells(block[0])[0].lower(), [cells(row) for row in block[2:]]))
        block = []
    return found


def row_names(first_cell: str) -> list[str]:
    """The UPPER_CASE names in backticks in a row's first cell."""
    return [name for name in BACKTICKED.findall(first_cell) if NAME.match(name)]


def documented(text: str, header: str) -> list[list[str]]:
    """The names of each row of the tables whose first header cell is ``header``."""
    return [
        row_names(row[0])
        for kind, rows in tables(text)
        if kind == header
        for row in rows
        if row and row[0]
    ]


def settings_problems(read: set[str], rows: list[list[str]]) -> list[str]:
    """What is wrong with the settings tables' ``rows`` against the names ``Config`` reads:
    a name missing, one in more than one row, one it does not read (a stale row)."""
    counts = Counter(name for names in rows for name in names)
    problems = [f"{name} is not documented" for name in sorted(read - counts.keys())]
    problems += [f"{name} is documented {n} times" for name, n in sorted(counts.items()) if n > 1]
    problems += [f"{name} is documented but not read" for name in sorted(counts.keys() - read)]
    return problems


def procfile_variables(procfile: str) -> set[str]:
    """The shell variables the Procfile's lines expand (``${NAME:-default}``, ``$NAME``)."""
    return set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", procfile))


# -- the manual as it is ---------------------------------------------------------------------


def test_every_relative_link_resolves():
    assert dead_links(manual()) == []


def test_the_manual_has_pages_and_links_to_check():
    pages = manual()
    assert len(pages) >= 8
    assert sum(len(links(page.read_text(encoding="utf-8"))) for page in pages) > 50


def test_settings_are_found_in_app_config():
    read = settings_read(CONFIG_PY.read_text(encoding="utf-8"))
    assert len(read) > 30, sorted(read)
    assert {"DATABASE_URL", "WEBHOOK_THREADS", "S3_PRESIGN", "METRICS_DIR"} <= read


def test_the_ast_finds_what_config_really_asks_for():
    """Config.from_env run against a mapping that records every lookup: the walk above misses
    none (nor invents one)."""
    from app.config import Config

    class Recording(dict):
        def __init__(self, given: dict[str, str]) -> None:
            super().__init__(given)
            self.asked: set[str] = set()

        def get(self, key, default=None):
            self.asked.add(key)
            return super().get(key, default)

        def __getitem__(self, key):
            self.asked.add(key)
            return super().__getitem__(key)

        def __contains__(self, key):
            self.asked.add(key)
            return super().__contains__(key)

    env = Recording({"DATABASE_URL": "postgresql://user@host/db"})
    Config.from_env(env)
    assert env.asked == settings_read(CONFIG_PY.read_text(encoding="utf-8"))


def test_every_setting_is_documented_once_and_every_row_is_read():
    read = settings_read(CONFIG_PY.read_text(encoding="utf-8"))
    rows = documented(CONFIGURATION_MD.read_text(encoding="utf-8"), SETTINGS_HEADER)
    assert rows, f"no table in {CONFIGURATION_MD.name} starts with a {SETTINGS_HEADER!r} column"
    assert all(rows), "a settings row names no `VARIABLE` in its first cell"
    assert settings_problems(read, rows) == []


def test_the_procfile_table_lists_exactly_the_procfile_variables():
    rows = documented(CONFIGURATION_MD.read_text(encoding="utf-8"), PROCFILE_HEADER)
    assert rows, f"no table in {CONFIGURATION_MD.name} starts with a {PROCFILE_HEADER!r} column"
    in_procfile = procfile_variables(PROCFILE.read_text(encoding="utf-8"))
    assert in_procfile, "the Procfile expands no variable"
    assert settings_problems(in_procfile, rows) == []


# -- the checks can fail ---------------------------------------------------------------------


def test_dead_links_are_reported(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## A 3-node `NATS` cluster\n")
    (tmp_path / "picture.png").write_bytes(b"")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n## Sign-in and safety\n\n"
        "[fine](other.md) [fine too](other.md#a-3-node-nats-cluster) ![shown](picture.png)\n"
        "[here](#sign-in-and-safety) [web](https://example.com/nowhere.md) [mail](mailto:a@b)\n"
        "[gone](missing.md) ![gone too](img/missing.png) [no heading](other.md#nowhere)\n"
        "[nor here](#nothing-here)\n"
        "`[in code](not-a-link.md)`\n"
        "```\n[in a fence](not-a-link-either.md)\n```\n"
    )
    assert dead_links([page]) == [
        "page.md: missing.md (no such file)",
        "page.md: img/missing.png (no such file)",
        "page.md: other.md#nowhere (no heading #nowhere)",
        "page.md: #nothing-here (no heading #nothing-here)",
    ]


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Sign-in and safety", "sign-in-and-safety"),
        ("A 3-node NATS cluster", "a-3-node-nats-cluster"),
        ("`phantomchain analyze`", "phantomchain-analyze"),
        ("What's new? (v2)", "whats-new-v2"),
        ("[The broker](broker.md)", "the-broker"),
    ],
)
def test_slugs_are_githubs(heading, anchor):
    assert slug(heading) == anchor


def test_repeated_headings_get_numbered_anchors():
    assert anchors("# Usage\n## Usage\n```\n# not a heading\n```\n") == {"usage", "usage-1"}


def test_a_missing_a_repeated_and_a_stale_setting_are_reported():
    read = {"ALPHA", "BETA", "GAMMA"}
    rows = [["ALPHA"], ["ALPHA", "GAMMA"], ["STALE"]]
    assert settings_problems(read, rows) == [
        "BETA is not documented",
        "ALPHA is documented 2 times",
        "STALE is documented but not read",
    ]


def test_settings_tables_are_read_row_by_row():
    text = (
        "| setting | default | meaning |\n"
        "|---|---|---|\n"
        "| `ALPHA` | 1 | one `a | b` cell |\n"
        "| `AWS_KEY`, `AWS_SECRET` … | (none) | two names |\n"
        "\n"
        "| query parameter | meaning |\n"
        "|---|---|\n"
        "| `endpoint_url` | not a setting |\n"
        "\n"
        "```\n| setting | x |\n|---|---|\n| `IN_CODE` | y |\n```\n"
    )
    assert documented(text, SETTINGS_HEADER) == [["ALPHA"], ["AWS_KEY", "AWS_SECRET"]]
    assert tables(text)[0][1][0] == ["`ALPHA`", "1", "one `a | b` cell"]


def test_every_way_of_reading_the_environment_is_found():
    source = (
        "import os\n"
        "def _int(env, name, default): return int(env.get(name, default))\n"
        "def from_env(env):\n"
        "    def text(name, default=None): return env.get(name) or default\n"
        "    a = env.get('ONE')\n"
        "    b = _int(env, 'TWO', 3)\n"
        "    c = text('THREE', 'lower case default')\n"
        "    d = os.environ['FOUR']\n"
        "    e = os.getenv('FIVE')\n"
        "    f = os.environ.get('SIX')\n"
        "    g = env['SEVEN']\n"
        "    h = text(name='EIGHT')\n"
        "    i = print('NOT_READ')\n"
        "    return a, b, c, d, e, f, g, h, i\n"
    )
    assert settings_read(source) == {"ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT"}


def test_procfile_variables_are_found():
    line = "worker: run --processes ${WORKER_PROCESSES:-2} --port $PORT --flag ${X_Y}"
    assert procfile_variables(line) == {"WORKER_PROCESSES", "PORT", "X_Y"}
