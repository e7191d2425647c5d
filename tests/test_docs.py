"""The docs name real files: every path in docs/*.md that points into the code exists.

A path is a `code span` naming `scheduler_app/...`, `config/...` or `tests/...` from the
repository's root, or `engine/`, `api/`, `web/`, `admin/`, `builtin/`, `services/` inside
scheduler_app (how docs/architecture.md and docs/engine.md name them). `path.py:name` also
needs `name` defined in that file. A bare `module.py` must be some file of the code, and
`module.name` (`recovery.mark_lost`), for a module of scheduler_app, must define `name`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
FROM_ROOT = ("scheduler_app/", "config/", "tests/")
INSIDE_THE_APP = ("engine/", "api/", "web/", "admin/", "builtin/", "services/", "management/")
CODE_SPAN = re.compile(r"`([^`\s]+)`")
PATH = re.compile(r"^(?P<path>[\w./-]+?)(?::(?P<name>\w+))?$")
ATTRIBUTE = re.compile(r"^(?P<module>[a-z_]+)\.(?P<name>[A-Za-z_]\w*)(?:\(.*\))?$")
CODE_FILES = [
    path.relative_to(ROOT) for top in ("scheduler_app", "config", "tests") for path in (ROOT / top).rglob("*.py")
]


def named_paths(text: str) -> list[tuple[str, str]]:
    """(path from the root, defined name or "") for every code span that names a code path."""
    found = []
    for span in CODE_SPAN.findall(text):
        match = PATH.match(span)
        if match is None or "/" not in match["path"]:
            continue
        path = match["path"]
        if path.startswith(INSIDE_THE_APP):
            path = f"scheduler_app/{path}"
        elif not path.startswith(FROM_ROOT):
            continue
        found.append((path, match["name"] or ""))
    return found


def bare_files(text: str) -> list[str]:
    """Every `name.py` code span without a directory."""
    return [span for span in CODE_SPAN.findall(text) if re.fullmatch(r"\w+\.py", span)]


def attributes(text: str) -> list[tuple[str, str]]:
    """(module, name) for every `module.name` span whose module is a module of scheduler_app."""
    found = []
    for span in CODE_SPAN.findall(text):
        match = ATTRIBUTE.match(span)
        if match and match["name"] != "py" and app_module(match["module"]):
            found.append((match["module"], match["name"]))
    return found


def app_module(module: str) -> Path | None:
    """scheduler_app's module (or package) of that last name, if exactly one."""
    candidates = [
        path
        for path in CODE_FILES
        if path.parts[0] == "scheduler_app"
        and "migrations" not in path.parts
        and (path.stem == module or (path.name == "__init__.py" and path.parent.name == module))
    ]
    return ROOT / candidates[0] if len(candidates) == 1 else None


def defines(path: Path, name: str) -> bool:
    text = path.read_text()
    if path.name == "__init__.py":  # a package: its re-exports count
        return re.search(rf"\b{name}\b", text) is not None
    pattern = rf"^\s*(?:async\s+def|def|class)\s+{name}\b|^\s*{name}\s*[:=]|^\s*self\.{name}\s*[:=]"
    return re.search(pattern, text, re.M) is not None or re.search(rf"\bdef {name}\b", text) is not None


def test_it_finds_the_paths_the_docs_name():
    spans = "`scheduler_app/triggers.py` `engine/lease.py` `web/views/account.py:locked_out` `manage.py` `a/b`"
    assert named_paths(spans) == [
        ("scheduler_app/triggers.py", ""),
        ("scheduler_app/engine/lease.py", ""),
        ("scheduler_app/web/views/account.py", "locked_out"),
    ]


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: doc.name)
def test_every_file_a_doc_names_by_itself_exists(doc):
    names = {path.name for path in CODE_FILES} | {"manage.py"}
    assert not [name for name in bare_files(doc.read_text()) if name not in names]


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: doc.name)
def test_every_module_attribute_a_doc_names_is_defined(doc):
    missing = [
        f"{module}.{name}" for module, name in attributes(doc.read_text()) if not defines(app_module(module), name)
    ]
    assert not missing, f"{doc.name} names what its module does not define: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: doc.name)
def test_every_code_path_a_doc_names_exists(doc):
    missing = []
    for path, name in named_paths(doc.read_text()):
        target = ROOT / path.rstrip("/")
        if not target.exists():
            missing.append(path)
        elif name and not defines(target, name):
            missing.append(f"{path}:{name}")
    assert not missing, f"{doc.name} names what does not exist: {missing}"
