"""System checks (`manage.py check`) for the built-in tasks' settings.

The demo project refuses a malformed environment at start-up (config/settings.py); these
catch what a host project writes in its own settings, and what no single value shows: a
backup directory the web server serves, or one that process_data could read.
"""

from __future__ import annotations

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from scheduler_app.builtin import conf


def fence_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    errors = []
    backup_dir, data_dir = conf.backup_dir(), conf.data_dir()
    served = conf.served_by(backup_dir) if backup_dir else None
    if served:
        errors.append(checks.Error(
            f"The backup directory {backup_dir} is inside {served}: the web server would hand database copies "
            "to anyone.", hint="Set TEMPORA_BACKUP_DIR to a directory outside every served one.", id="tempora.E101",
        ))
    for read in (
        conf.http_allow_hosts, conf.email_allowed_domains,
        *(lambda name=name: conf.integer(name) for name in conf.DEFAULTS),
    ):
        try:
            read()
        except ImproperlyConfigured as exc:
            errors.append(checks.Error(str(exc), id="tempora.E102"))
    if backup_dir and data_dir:
        backups, data = backup_dir.resolve(), data_dir.resolve()
        if backups == data or data in backups.parents or backups in data.parents:
            errors.append(checks.Error(
                f"TEMPORA_DATA_DIR ({data_dir}) and the backup directory ({backup_dir}) overlap: process_data "
                "could read database copies.", hint="Keep them apart.", id="tempora.E103",
            ))
    return errors


def register_checks() -> None:
    checks.register(fence_settings)
