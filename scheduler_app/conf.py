"""Tempora's settings: one object, `tempora_settings`, with a default in the app for each.

A host project sets what it wants to change in one dict (README, "Configuration", lists
every key; docs/settings.md says how to add one)::

    TEMPORA = {"LEASE_SECONDS": 15, "HTTP_ALLOW_HOSTS": ["api.internal:8443"]}

and the app reads::

    from scheduler_app.conf import tempora_settings
    tempora_settings.LEASE_SECONDS

The older top-level names (SCHEDULER_LEASE_SECONDS, TEMPORA_HTTP_ALLOW_HOSTS, ...) still
work. When a key is set both ways the top-level name wins, so that one line in a settings
file (or an `override_settings(SCHEDULER_LEASE_SECONDS=...)`) changes one value without
copying the dict; `manage.py check` warns about the pair (tempora.W002).

Values are read lazily and cached until Django's `setting_changed` signal (sent by
`override_settings` and pytest-django's `settings` fixture) names TEMPORA or an old name.
Reading does not validate: `problem()` states each setting's rule, which checks.py reports
(with ids) at `manage.py check` and at the start of `runscheduler`.
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

_PATH = (str, os.PathLike)


@dataclass(frozen=True)
class Setting:
    """One key of the TEMPORA dict: its default, its type and bounds, its older names."""

    key: str
    default: Any  # a callable takes the settings object: a default computed from other keys
    kind: type | tuple[type, ...]  # what isinstance must accept; None is always allowed for `optional`
    minimum: int | None = None
    old_names: tuple[str, ...] = ()
    optional: bool = False  # None is a valid value
    # For lists, a function that checks one entry (for a string, the value): ValueError if bad.
    # Or its dotted path, so that this module imports nothing of the app's.
    entry: Callable[[str], object] | str | None = None


# A default computed from a malformed value falls back to its own default, so that the one
# error (E001) names the value the host wrote.


def _default_journal_dir(values: TemporaSettings) -> Path:
    var = values.VAR_DIR
    return (Path(var) if isinstance(var, _PATH) else _default_var_dir(values)) / "journal"


def _default_node_dead_seconds(values: TemporaSettings) -> int:
    # A minute, or three leases if that is longer (docs/engine.md, "Liveness").
    lease = values.LEASE_SECONDS
    return max(60, 3 * lease) if isinstance(lease, int) and not isinstance(lease, bool) else 60


def _default_var_dir(values: TemporaSettings) -> Path:
    # Per user: another account's directory would be unwritable. A temporary directory is
    # emptied by a reboot; checks.py warns (tempora.W001) until the host names its own.
    return Path(tempfile.gettempdir()) / f"tempora-{os.getuid()}"


def _ip_network(text: str):
    return ipaddress.ip_network(text.strip(), strict=False)


def _rate(text: str) -> None:
    # DRF's throttle rate: requests per second, minute, hour or day ("600/minute", "10/s").
    count, _, period = text.partition("/")
    if not count.isdigit() or period[:1] not in ("s", "m", "h", "d"):
        raise ValueError(f"{text!r} is not a rate such as '600/minute' (per second, minute, hour or day).")


SETTINGS = {
    setting.key: setting
    for setting in (
        # The scheduler (runscheduler; docs/engine.md). Threads running jobs; seconds late a run may
        # still start; the leader's lease.
        Setting("MAX_WORKERS", 10, int, 1, ("SCHEDULER_MAX_WORKERS",)),
        Setting("MISFIRE_GRACE_TIME", 60, int, 1, ("SCHEDULER_MISFIRE_GRACE_TIME",)),
        Setting("LEASE_SECONDS", 10, int, 2, ("SCHEDULER_LEASE_SECONDS",)),
        # A node silent this long is dead: its runs become `lost`. Well beyond the lease (checks.py:
        # at least twice), so a node slow or cut off from the database for a while is not declared
        # dead while it lives; one cut off for nearly this long stops its own runs.
        Setting("NODE_DEAD_SECONDS", _default_node_dead_seconds, int, 4, ("SCHEDULER_NODE_DEAD_SECONDS",)),
        # Runs kept per job, and for how many days; bytes of a run's output kept.
        Setting("HISTORY_PER_JOB", 1000, int, 1, ("SCHEDULER_HISTORY_PER_JOB",)),
        Setting("HISTORY_DAYS", 30, int, 1, ("SCHEDULER_HISTORY_DAYS",)),
        Setting("OUTPUT_LIMIT", 65_536, int, 1024, ("SCHEDULER_OUTPUT_LIMIT",)),
        # Time limits of runs, in seconds: a job without its own gets the default; none may exceed the maximum.
        Setting("DEFAULT_TIMEOUT", 3600, int, 1, ("SCHEDULER_DEFAULT_TIMEOUT",)),
        Setting("MAX_TIMEOUT", 86_400, int, 1, ("SCHEDULER_MAX_TIMEOUT",)),
        # Runs of one owner's jobs at once in a scheduler's thread pool; more wait their turn.
        # None: half the worker threads (at least 1); 0: no cap. Ownerless jobs are not capped.
        Setting("MAX_RUNS_PER_USER", None, int, 0, ("SCHEDULER_MAX_RUNS_PER_USER",), optional=True),
        # A Celery run whose worker sent no heartbeat for this long is lost (engine/worker_loss.py);
        # workers beat every 2 s, so the minimum still allows two missed beats.
        Setting("CELERY_LOST_SECONDS", 30, int, 5, ("SCHEDULER_CELERY_LOST_SECONDS",)),
        # The backend of settings.TASKS (Django's Tasks framework) that runs of jobs with the
        # "django_tasks" executor are enqueued on (engine/tasks_executor.py); its workers run them.
        Setting("TASKS_BACKEND", "default", str),
        # Local disk of this host: the nodes' lock files (engine/liveness.py) and, by default, the
        # journal of each scheduler's runs (engine/journal.py, one directory per process, mode 0700).
        # No older top-level name: the project's own VAR_DIR is a generic name a host may use for
        # something else.
        Setting("VAR_DIR", _default_var_dir, _PATH),
        Setting("JOURNAL_DIR", _default_journal_dir, _PATH, old_names=("SCHEDULER_JOURNAL_DIR",)),
        # Modules imported at start-up for the @task functions they define, beside every installed
        # app's jobs.py (registry.autodiscover): dotted paths.
        Setting("TASK_MODULES", (), (list, tuple), old_names=("TEMPORA_TASK_MODULES",)),
        # The built-in tasks' fences (scheduler_app/builtin; README, "Built-in tasks"): the only
        # directory backup_database writes to and process_data reads from (None: they refuse); hosts
        # http_request may reach even at a private or loopback address (`host` or `host:port`); its
        # limits; send_email's recipients (to, cc and bcc together) and domains (empty: any).
        Setting("BACKUP_DIR", None, _PATH, old_names=("TEMPORA_BACKUP_DIR", "SCHEDULER_BACKUP_DIR"), optional=True),
        Setting("DATA_DIR", None, _PATH, old_names=("TEMPORA_DATA_DIR",), optional=True),
        Setting(
            "HTTP_ALLOW_HOSTS",
            (),
            (list, tuple),
            old_names=("TEMPORA_HTTP_ALLOW_HOSTS",),
            entry="scheduler_app.builtin.network.allow_entry",
        ),
        Setting("HTTP_MAX_TIMEOUT", 60, int, 1, ("TEMPORA_HTTP_MAX_TIMEOUT",)),
        Setting("HTTP_MAX_BODY_BYTES", 10 * 1024, int, 0, ("TEMPORA_HTTP_MAX_BODY_BYTES",)),
        Setting("HTTP_MAX_REDIRECTS", 5, int, 0, ("TEMPORA_HTTP_MAX_REDIRECTS",)),
        Setting("EMAIL_MAX_RECIPIENTS", 20, int, 1, ("TEMPORA_EMAIL_MAX_RECIPIENTS",)),
        Setting(
            "EMAIL_ALLOWED_DOMAINS",
            (),
            (list, tuple),
            old_names=("TEMPORA_EMAIL_ALLOWED_DOMAINS",),
            entry="scheduler_app.builtin.network.domain_name",
        ),
        # Who may do what (scheduler_app/permissions.py): every signed-in user may create jobs they
        # own (False: creating needs add_job); jobs one user may own (0: no limit; not superusers).
        Setting("OPEN_JOB_CREATION", True, bool, old_names=("TEMPORA_OPEN_JOB_CREATION",)),
        Setting("MAX_JOBS_PER_USER", 200, int, 0, ("TEMPORA_MAX_JOBS_PER_USER",)),
        # /metrics without a login for these addresses or networks (e.g. a Prometheus server).
        Setting("METRICS_ALLOWED_IPS", (), (list, tuple), old_names=("METRICS_ALLOWED_IPS",), entry=_ip_network),
        # Changes one user may make through the API and the console (api/throttling.py); None: no limit.
        Setting("API_WRITE_THROTTLE", "600/minute", str, optional=True, entry=_rate),
    )
}
OLD_NAMES = {old: setting.key for setting in SETTINGS.values() for old in setting.old_names}


class TemporaSettings:
    """Attribute access to the TEMPORA dict with defaults: `tempora_settings.LEASE_SECONDS`."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def source(self, key: str) -> str | None:
        """Where `key`'s value comes from: an old top-level name, "TEMPORA", or None (the default)."""
        for old in SETTINGS[key].old_names:
            if hasattr(settings, old):
                return old
        if key in self.user_dict():
            return "TEMPORA"
        return None

    def user_dict(self) -> dict:
        value = getattr(settings, "TEMPORA", None)
        return value if isinstance(value, dict) else {}

    def __getattr__(self, key: str) -> Any:
        if key not in SETTINGS:
            raise AttributeError(f"Tempora has no setting {key!r}.")
        if key not in self._cache:
            where = self.source(key)
            if where is None:
                default = SETTINGS[key].default
                value = default(self) if callable(default) else default
            elif where == "TEMPORA":
                value = self.user_dict()[key]
            else:
                value = getattr(settings, where)
            if SETTINGS[key].kind is _PATH and isinstance(value, _PATH):
                # Empty is unset (an empty environment variable), not the current directory.
                value = Path(value) if os.fspath(value) else None
            self._cache[key] = value
        return self._cache[key]

    def name(self, key: str) -> str:
        """How a message names the setting: as the host wrote it."""
        where = self.source(key)
        return where if where and where != "TEMPORA" else f"TEMPORA[{key!r}]"

    def problem(self, key: str) -> str | None:
        """What is wrong with `key`'s value, or None. The one statement of each setting's rule:
        checks.py reports it, and the built-in tasks refuse to run on it."""
        setting, value, name = SETTINGS[key], getattr(self, key), self.name(key)
        if value is None and setting.optional:
            return None
        if setting.kind is int:
            if isinstance(value, bool) or not isinstance(value, int) or value < setting.minimum:
                return f"{name} must be a whole number, at least {setting.minimum}; it is {value!r}."
        elif setting.kind is bool:
            if not isinstance(value, bool):
                return f"{name} must be True or False; it is {value!r}."
        elif setting.kind is str:
            if not isinstance(value, str) or not value:
                return f"{name} must be a non-empty string; it is {value!r}."
            if setting.entry:
                try:
                    setting.entry(value)
                except ValueError as exc:
                    return f"{name}: {exc}"
        elif setting.kind is _PATH:
            if not isinstance(value, _PATH):
                return f"{name} must be a directory path; it is {value!r}."
        elif not isinstance(value, (list, tuple)) or not all(isinstance(entry, str) for entry in value):
            return f"{name} must be a list of strings; it is {value!r}."
        elif setting.entry:
            parse = import_string(setting.entry) if isinstance(setting.entry, str) else setting.entry
            for entry in value:
                try:
                    parse(entry)
                except ValueError as exc:
                    return f"{name}: {exc}"
        return None

    def reload(self) -> None:
        self._cache.clear()


tempora_settings = TemporaSettings()


def _reload(*, setting: str, **kwargs) -> None:
    if setting == "TEMPORA" or setting in OLD_NAMES:
        tempora_settings.reload()


setting_changed.connect(_reload, dispatch_uid="tempora-settings")
