"""The house's import rule (``app/__init__.py``), checked by walking every import of the code.

Imports inside functions and under ``TYPE_CHECKING`` count like any other: an import moved into
a function to dodge a circle is still a circle here.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.paths import ROOT

PACKAGES = ("app", "tasks", "broker", "audio")
#: The HTTP application's factory (``app/http/__init__.py``): a room of its own, above the two
#: sides it installs; the rest of ``app/http`` directly is the request plumbing both stand on.
FACTORY = "app.http"
API, WEB, PLUMBING = "app.http.api", "app.http.web", "app.http.*"
#: Which rooms each room may import from (its own included).
ALLOWED = {
    "app": {"app", "audio", "broker"},
    PLUMBING: {PLUMBING, "app", "audio", "broker"},
    API: {API, PLUMBING, "app", "audio", "broker"},
    WEB: {WEB, PLUMBING, "app", "audio", "broker"},
    FACTORY: {FACTORY, API, WEB, PLUMBING, "app", "audio", "broker"},
    "app.server": {"app.server", FACTORY, PLUMBING, "app", "audio", "broker"},
    "app.cli": {"app.cli", "app.client", "app", "audio", "broker"},
    # the HTTP API's client, for the machines that send audio: nothing of the server
    "app.client": {"app.client"},
    "tasks": {"tasks", "app", "audio", "broker"},
    "broker": {"broker"},
    "audio": {"audio"},
}


def module_names(root: Path) -> dict[str, Path]:
    """``{"app.http.api.jobs": path}`` for every module of the project's packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imported(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """The project's modules that ``path`` (module ``name``) imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            wanted = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # "from x import y": the module x.y when there is one, else x itself.
            wanted = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for candidate in wanted:
            while candidate and candidate not in modules:
                candidate = candidate.rpartition(".")[0]
            if candidate:
                targets.add(candidate)
    targets.discard(name)
    return targets


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = module_names(root)
    return {name: imported(path, name, modules) for name, path in modules.items()}


def room(module: str) -> str:
    if module == FACTORY:
        return FACTORY
    for prefix in (API, WEB, "app.server", "app.cli", "app.client"):
        if module == prefix or module.startswith(prefix + "."):
            return prefix
    if module.startswith(FACTORY + "."):
        return PLUMBING
    return module.split(".")[0]


def rule_breaks(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{source} imports {target}"
        for source, targets in graph.items()
        for target in targets
        if room(target) not in ALLOWED[room(source)]
    )


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_project_keeps_the_import_rule():
    graph = import_graph(ROOT)
    assert len(graph) > 60 and graph[FACTORY] >= {API, WEB, "app.queue"}
    assert rule_breaks(graph) == []
    assert circles(graph) == []


def test_the_walk_finds_a_circle_and_every_kind_of_break(tmp_path):
    files = {
        "app/__init__.py": "",
        "app/jobs.py": "def later():\n    from tasks import pipeline\n",
        "app/http/__init__.py": "from app.http import api, web\n",
        "app/http/auth.py": "from app.http.api import uploads\n",
        "app/http/api/__init__.py": "from app.cli import main\n",
        "app/http/api/uploads.py": "from app.http.web import pages\n",
        "app/http/web/__init__.py": "",
        "app/http/web/pages.py": "from app.http.api.uploads import get_upload\n",
        "app/server/__main__.py": "from app.http import create_app\n",
        "app/cli/__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from app.http import create_app\n",
        "app/client/__init__.py": "from app.jobs import later\n",
        "tasks/__init__.py": "",
        "tasks/pipeline.py": "from app import jobs\n",
        "broker/__init__.py": "from . import consumer\n",
        "broker/consumer.py": "import audio.decode\n",
        "audio/__init__.py": "",
        "audio/decode.py": "from app.config import Config\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(tmp_path)
    assert rule_breaks(graph) == [
        "app.cli imports app.http",
        "app.client imports app.jobs",
        "app.http.api imports app.cli",
        "app.http.api.uploads imports app.http.web.pages",
        "app.http.auth imports app.http.api.uploads",
        "app.http.web.pages imports app.http.api.uploads",
        "app.jobs imports tasks.pipeline",
        "audio.decode imports app",
        "broker.consumer imports audio.decode",
    ]
    assert sorted(circles(graph)) == [
        ["app.cli", "app.http", "app.http.api"],
        ["app.http.api.uploads", "app.http.web.pages"],
        ["app.jobs", "tasks.pipeline"],
    ]
