"""The settings the built-in tasks' fences read, each with its default (README, "Configuration").

A host project sets them in its settings module; the demo project reads them from the
environment (config/settings.py). A malformed value raises ImproperlyConfigured naming the
setting, and checks.py reports the same at `manage.py check`.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from scheduler_app.builtin import network

DEFAULTS = {
    "TEMPORA_HTTP_MAX_TIMEOUT": 60,  # seconds
    "TEMPORA_HTTP_MAX_BODY_BYTES": 10 * 1024,
    "TEMPORA_HTTP_MAX_REDIRECTS": 5,
    "TEMPORA_EMAIL_MAX_RECIPIENTS": 20,
}
MINIMUMS = {
    "TEMPORA_HTTP_MAX_TIMEOUT": 1, "TEMPORA_HTTP_MAX_BODY_BYTES": 0, "TEMPORA_HTTP_MAX_REDIRECTS": 0,
    "TEMPORA_EMAIL_MAX_RECIPIENTS": 1,
}


def integer(name: str) -> int:
    value = getattr(settings, name, DEFAULTS[name])
    if isinstance(value, bool) or not isinstance(value, int) or value < MINIMUMS[name]:
        raise ImproperlyConfigured(f"{name} must be a whole number, at least {MINIMUMS[name]}; it is {value!r}.")
    return value


def _entries(name: str, parse):
    values = getattr(settings, name, ())
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise ImproperlyConfigured(f"{name} must be a list of strings; it is {values!r}.")
    try:
        return tuple(parse(value) for value in values)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}") from None


def http_allow_hosts() -> tuple[network.Allowed, ...]:
    """TEMPORA_HTTP_ALLOW_HOSTS: hosts http_request may reach whatever their address."""
    return _entries("TEMPORA_HTTP_ALLOW_HOSTS", network.allow_entry)


def email_allowed_domains() -> frozenset[str]:
    """TEMPORA_EMAIL_ALLOWED_DOMAINS: the only domains send_email writes to; empty means any."""
    return frozenset(_entries("TEMPORA_EMAIL_ALLOWED_DOMAINS", network.domain_name))


def _directory(*names: str) -> Path | None:
    for name in names:
        value = getattr(settings, name, None)
        if value:
            return Path(value)
    return None


def backup_dir() -> Path | None:
    """TEMPORA_BACKUP_DIR, or SCHEDULER_BACKUP_DIR (its older name); None when neither is set."""
    return _directory("TEMPORA_BACKUP_DIR", "SCHEDULER_BACKUP_DIR")


def data_dir() -> Path | None:
    """TEMPORA_DATA_DIR: the only directory process_data reads files from; None: it reads none."""
    return _directory("TEMPORA_DATA_DIR")


def served_directories() -> list[tuple[str, Path]]:
    """The directories the web server hands out to anyone: a backup there is a leaked database."""
    found = [(name, Path(getattr(settings, name))) for name in ("STATIC_ROOT", "MEDIA_ROOT")
             if getattr(settings, name, None)]
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
