"""Strict readers for settings that come from the environment.

A bad value stops start-up with a message naming the variable: a typo in
`DEBUG=flase` must not quietly become a default.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool | None) -> bool | None:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean: use one of 1/0, true/false, yes/no, on/off.")


def env_int(name: str, default: int | None, *, minimum: int | None = None) -> int | None:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below its minimum of {minimum}.")
    return value


def env_list(name: str, default: list[str] | None) -> list[str] | None:
    """A comma-separated list (its entries are checked where they are used: system checks)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [entry.strip() for entry in raw.split(",") if entry.strip()]


def secret_key(path: Path) -> str:
    """SECRET_KEY from the environment, else from a local file made on first run.

    The file lives in the git-ignored var/ folder so a fresh checkout works
    without anyone pasting a key, and the key survives restarts (sessions stay valid).
    """
    from_env = os.environ.get("SECRET_KEY", "").strip()
    if from_env:
        return from_env
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside then linked into place: the web server and the scheduler may
    # start together, and the loser of the race must read the winner's key,
    # never a half-written file. Mode 0600 keeps other local users out.
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(50))
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()


_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]+$")


def env_proxy_ssl_header(name: str) -> tuple[str, str] | None:
    """SECURE_PROXY_SSL_HEADER from `Header-Name` (value `https`) or `Header-Name=value`.

    Unset or empty: None, Django's default (trust no header). Example: `X-Forwarded-Proto`
    gives ("HTTP_X_FORWARDED_PROTO", "https").
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    header, _, value = raw.partition("=")
    header, value = header.strip(), value.strip() or "https"
    if not _HEADER_NAME.match(header) or not _HEADER_NAME.match(value):
        raise ImproperlyConfigured(
            f"{name}={raw!r} is not a header name, optionally with '=value' (e.g. X-Forwarded-Proto)."
        )
    return "HTTP_" + header.upper().replace("-", "_"), value


LOCKOUT_PARAMETERS = ("username", "ip_address", "user_agent")


def env_lockout_parameters(name: str, default: str) -> list:
    """django-axes' AXES_LOCKOUT_PARAMETERS: comma-separated rules, each one parameter or several
    joined by '+', a lock when any rule reaches the limit.

    `username+ip_address` (one rule: that user from that address) gives [["username", "ip_address"]];
    `username,ip_address` (either the user, or the address) gives ["username", "ip_address"].
    """
    raw = os.environ.get(name, default)
    rules: list = []
    for rule in raw.split(","):
        parts = [part.strip() for part in rule.split("+")]
        if not all(part in LOCKOUT_PARAMETERS for part in parts):
            rules = []
            break
        rules.append(parts[0] if len(parts) == 1 else parts)
    if not rules:
        raise ImproperlyConfigured(
            f"{name}={raw!r} is not a lockout rule: use {', '.join(LOCKOUT_PARAMETERS)},"
            " joined by '+' (all of them) and separated by ',' (any rule), e.g. username+ip_address."
        )
    return rules
