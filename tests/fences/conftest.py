"""Fixtures of the fenced-tasks suite: fake web servers on 127.0.0.1 and ::1, a fake SMTP
server, and directory trees (a backup directory, a data directory, somewhere outside both)."""

from __future__ import annotations

import os

import pytest

from tests.fences.fakes import FakeWebServer, smtp_inbox


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch):
    # A proxy would answer for the servers below; every request here must go to them directly.
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)


@pytest.fixture
def web4():
    with FakeWebServer("127.0.0.1") as server:
        yield server


@pytest.fixture
def web6():
    with FakeWebServer("::1") as server:
        yield server


@pytest.fixture
def smtp(settings):
    with smtp_inbox(settings) as inbox:
        yield inbox


@pytest.fixture
def outside(tmp_path):
    """A directory outside the fenced ones, with a file worth stealing or overwriting."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret.csv").write_text("password\nhunter2\n")
    return path


def listing(path) -> list[str]:
    """Every file and directory under `path`, relative, sorted: what a test expects unchanged."""
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.fixture
def backup_dir(settings, tmp_path):
    path = tmp_path / "backups"
    path.mkdir()
    settings.TEMPORA_BACKUP_DIR = path
    return path


@pytest.fixture
def data_dir(settings, tmp_path):
    path = tmp_path / "data"
    path.mkdir()
    (path / "orders.csv").write_text("id,amount\n1,10\n2,4\n")
    settings.TEMPORA_DATA_DIR = path
    return path
