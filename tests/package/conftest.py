"""The distribution as a release would ship it, built once per session for every test here
(test_packaging.py reads it, test_host_project.py installs it into a fresh project)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # An sdist first, then the wheel from it (what `python -m build` does): what a release would ship.
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], check=True, capture_output=True, text=True
    )
    (built,) = out.glob("tempora-*.whl")
    return built


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test shows the logs of the processes its fixtures started (anything with a
    `logs()` method answering (title, text) pairs), beside its own output."""
    report = yield
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            for title, text in value.logs() if callable(getattr(value, "logs", None)) else ():
                report.sections.append((title, text))
    return report
