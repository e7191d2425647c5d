"""Fixtures of the fenced-tasks suite: fake web servers on 127.0.0.1 and ::1, a fake SMTP
server, and directory trees (a backup directory, a data directory, somewhere outside both)."""

from __future__ import annotations

import os

import pytest
from aiosmtpd.controller import Controller

from tests.fences.fakes import FakeWebServer, Inbox, free_port


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
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    settings.DEFAULT_FROM_EMAIL = "tempora@example.com"
    yield inbox
    controller.stop()


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
