"""System checks for the built-in tasks' directories: what no single value shows (a backup
directory the web server serves, or one that process_data could read). A malformed value is
tempora.E001 (scheduler_app/checks.py)."""

from __future__ import annotations

from django.core import checks

from scheduler_app.builtin import conf
from scheduler_app.checks import TAG
from scheduler_app.conf import tempora_settings


@checks.register(TAG)
def fence_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    if tempora_settings.problem("BACKUP_DIR") or tempora_settings.problem("DATA_DIR"):
        return []  # tempora.E001 says why
    errors = []
    backup_dir, data_dir = conf.backup_dir(), conf.data_dir()
    served = conf.served_by(backup_dir) if backup_dir else None
    if served:
        errors.append(
            checks.Error(
                f"The backup directory {backup_dir} is inside {served}: the web server would hand database copies "
                "to anyone.",
                hint="Set TEMPORA['BACKUP_DIR'] to a directory outside every served one.",
                id="tempora.E101",
            )
        )
    if backup_dir and data_dir:
        backups, data = backup_dir.resolve(), data_dir.resolve()
        if backups == data or data in backups.parents or backups in data.parents:
            errors.append(
                checks.Error(
                    f"{tempora_settings.name('DATA_DIR')} ({data_dir}) and the backup directory ({backup_dir}) overlap: "
                    "process_data could read database copies.",
                    hint="Keep them apart.",
                    id="tempora.E103",
                )
            )
    return errors
