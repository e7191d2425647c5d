"""The built-in tasks' fences read their limits here (the keys are in scheduler_app/conf.py).

A malformed value raises ImproperlyConfigured naming the setting, so a task never runs
unfenced on it; scheduler_app/checks.py reports the same at `manage.py check`.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from scheduler_app.builtin import network
from scheduler_app.conf import tempora_settings


def _valid(key: str):
    problem = tempora_settings.problem(key)
    if problem:
        raise ImproperlyConfigured(problem)
    return getattr(tempora_settings, key)


def integer(key: str) -> int:
    """HTTP_MAX_TIMEOUT, HTTP_MAX_BODY_BYTES, HTTP_MAX_REDIRECTS or EMAIL_MAX_RECIPIENTS."""
    return _valid(key)


def http_allow_hosts() -> tuple[network.Allowed, ...]:
    """HTTP_ALLOW_HOSTS: hosts http_request may reach whatever their address."""
    return tuple(network.allow_entry(entry) for entry in _valid("HTTP_ALLOW_HOSTS"))


def email_allowed_domains() -> frozenset[str]:
    """EMAIL_ALLOWED_DOMAINS: the only domains send_email writes to; empty means any."""
    return frozenset(network.domain_name(entry) for entry in _valid("EMAIL_ALLOWED_DOMAINS"))


def backup_dir() -> Path | None:
    """BACKUP_DIR (TEMPORA_BACKUP_DIR, SCHEDULER_BACKUP_DIR); None: backup_database writes nowhere."""
    return _valid("BACKUP_DIR") or None


def data_dir() -> Path | None:
    """DATA_DIR: the only directory process_data reads files from; None: it reads none."""
    return _valid("DATA_DIR") or None


def served_directories() -> list[tuple[str, Path]]:
    """The directories the web server hands out to anyone: a backup there is a leaked database."""
    found = [
        (name, Path(getattr(settings, name))) for name in ("STATIC_ROOT", "MEDIA_ROOT") if getattr(settings, name, None)
    ]
    for entry in getattr(settings, "STATICFILES_DIRS", ()):
        found.append(("STATICFILES_DIRS", Path(entry[1] if isinstance(entry, (list, tuple)) else entry)))
    return found


def served_by(path: Path) -> str | None:
    """The setting naming a served directory that `path` is in (links resolved), or None."""
    real = path.resolve()
    for name, root in served_directories():
        root = root.resolve()
        if real == root or root in real.parents:
            return name
    return None
