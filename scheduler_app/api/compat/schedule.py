"""FastScheduler's schedule_type/schedule_config and job/history shapes, translated to and from Tempora's.

interval  {"interval": 30, "unit": "seconds"}   → {"kind": "interval", "interval_seconds": 30}
daily     {"time": "02:00"}                      → {"kind": "daily", "at": "02:00"}
weekly    {"time": "10:00", "days": [0, 4]}      → {"kind": "weekly", "at": "10:00", "days": [0, 4]}
hourly    {"time": "30"} (or ":30", "HH:30")     → {"kind": "hourly", "at": ":30"}
cron      {"expression": "*/5 * * * *"}          → {"kind": "cron", "cron_expression": "*/5 * * * *"}
once      {"delay": 10, "unit": "seconds"}       → {"kind": "once", "delay_seconds": 10}
          {"run_at": "2026-12-25 00:00:00"}      → {"kind": "once", "run_at": "2026-12-25 00:00:00"} (an extension)
"""

from __future__ import annotations

import re
from datetime import datetime

from django.utils import timezone

from scheduler_app import triggers
from scheduler_app.models import Execution, Job

SCHEDULE_TYPES = ("interval", "daily", "weekly", "hourly", "cron", "once")
UNITS = {
    "second": 1,
    "seconds": 1,
    "minute": 60,
    "minutes": 60,
    "hour": 3600,
    "hours": 3600,
    "day": 86400,
    "days": 86400,
}
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# The schedule_config keys of each type: any other is refused by name, not silently ignored
# (a misspelt "units" would otherwise run every 30 seconds instead of every 30 minutes).
CONFIG_KEYS = {
    "interval": ("interval", "unit"),
    "daily": ("time",),
    "weekly": ("time", "days"),
    "hourly": ("time",),
    "cron": ("expression",),
    "once": ("delay", "unit", "run_at", "at", "datetime"),
}
ONCE_AT = ("run_at", "at", "datetime")
_MINUTE = re.compile(r"^\d{1,2}$")


class CompatError(Exception):
    """An input FastScheduler would refuse with 400 {"detail": message}."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


def job_id(pk: int | None) -> str | None:
    return f"job_{pk}" if pk is not None else None


def parse_job_id(value: str) -> int | None:
    """'job_12' (or '12') → 12; anything else → None."""
    text = value[4:] if value.startswith("job_") else value
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else None


def _seconds(amount, unit, field: str, *, minimum: int) -> int:
    if isinstance(amount, bool) or not isinstance(amount, (int, float)):
        raise CompatError(f"schedule_config.{field} must be a number.")
    if not isinstance(unit, str) or unit not in UNITS:
        raise CompatError("schedule_config.unit must be 'seconds', 'minutes', 'hours' or 'days'.")
    seconds = amount * UNITS[unit]
    if seconds != seconds or seconds > 10 * 366 * 86_400:  # NaN, or beyond ten years
        raise CompatError(f"schedule_config.{field} is out of range.")
    seconds = round(seconds)
    if seconds < minimum:
        raise CompatError(f"schedule_config.{field} must be at least {minimum} second{'s' * (minimum != 1)}.")
    return seconds


def _minute(value) -> str:
    text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    minute = text.rpartition(":")[2]  # "30", ":30" and "HH:30" all mean minute 30, as in FastScheduler
    if not _MINUTE.fullmatch(minute) or int(minute) > 59:
        raise CompatError("schedule_config.time for hourly is a minute (0-59), ':MM' or 'HH:MM'.")
    return f":{int(minute):02d}"


def trigger_for(schedule_type, config) -> dict:
    """The Tempora trigger definition for a FastScheduler schedule; CompatError when it cannot be one."""
    if schedule_type not in SCHEDULE_TYPES:
        raise CompatError(f"Unsupported schedule_type: {schedule_type}")
    if not isinstance(config, dict):
        raise CompatError("schedule_config must be an object.")
    unknown = sorted(set(config) - set(CONFIG_KEYS[schedule_type]))
    if unknown:
        raise CompatError(
            f"schedule_config.{unknown[0]} is not a setting of {schedule_type}; "
            f"it takes {', '.join(CONFIG_KEYS[schedule_type])}."
        )
    if schedule_type == "interval":
        seconds = _seconds(config.get("interval", 60), config.get("unit", "seconds"), "interval", minimum=1)
        return {"kind": "interval", "interval_seconds": seconds}
    if schedule_type == "daily":
        return {"kind": "daily", "at": _text(config.get("time", "00:00"), "time")}
    if schedule_type == "weekly":
        return {"kind": "weekly", "at": _text(config.get("time", "00:00"), "time"), "days": config.get("days", [0])}
    if schedule_type == "hourly":
        return {"kind": "hourly", "at": _minute(config.get("time", "0"))}
    if schedule_type == "cron":
        expression = config.get("expression")
        if not expression:
            raise CompatError("Cron expression required: schedule_config.expression.")
        return {"kind": "cron", "cron_expression": _text(expression, "expression")}
    for key in ONCE_AT:
        if config.get(key) is not None:
            return {"kind": "once", "run_at": _text(config[key], key)}
    if config.get("delay") is None:
        raise CompatError("schedule_config.delay is required for once: the seconds to wait (or give run_at).")
    # At least a second: a run at the moment of saving is not after it, so it would never fire.
    delay = _seconds(config["delay"], config.get("unit", "seconds"), "delay", minimum=1)
    return {"kind": "once", "delay_seconds": delay}


def check_once_ahead(trigger: dict, zone_name: str, now: datetime) -> None:
    """A one-off at a time already past would never fire: refuse it (FastScheduler's clients
    expect a created job to run). Other faults of the time are the job serializer's to report."""
    if trigger.get("kind") != "once" or trigger.get("run_at") is None:
        return
    try:
        run_at = triggers.compile_trigger(trigger, triggers.validate_timezone(zone_name), now)["run_at"]
    except triggers.ScheduleError:
        return
    if run_at <= now:
        raise CompatError(f"schedule_config.run_at {trigger['run_at']!r} has passed: the job would never run.")


def _text(value, field: str) -> str:
    if not isinstance(value, str):
        raise CompatError(f"schedule_config.{field} must be a string.")
    return value


def schedule_of(job: Job) -> tuple[str | None, dict]:
    """The job's first trigger as FastScheduler's (schedule_type, schedule_config)."""
    rows = list(job.triggers.all())
    if not rows:
        return None, {}
    row = rows[0]
    if row.kind == "interval":
        seconds = row.interval_seconds or 0
        for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
            if seconds and seconds % size == 0:
                return "interval", {"interval": seconds // size, "unit": unit}
        return "interval", {"interval": seconds, "unit": "seconds"}
    if row.kind == "once":
        return "once", {"run_at": triggers.format_utc(row.run_at) if row.run_at else None}
    fields = row.cron_expression.split()
    try:
        if row.preset == "daily":
            return "daily", {"time": f"{int(fields[1]):02d}:{int(fields[0]):02d}"}
        if row.preset == "weekly":
            days = sorted((int(day) - 1) % 7 for day in fields[4].split(","))
            return "weekly", {"time": f"{int(fields[1]):02d}:{int(fields[0]):02d}", "days": days}
        if row.preset == "hourly":
            return "hourly", {"time": str(int(fields[0]))}
    except (ValueError, IndexError):
        pass
    return "cron", {"expression": row.cron_expression}


def merged_trigger(job: Job, schedule_type: str | None, config: dict) -> dict:
    """PUT semantics: keys not given keep the job's current values (as FastScheduler's update_job).

    Like FastScheduler, a new interval or delay without a unit is in seconds.
    """
    current_type, current = schedule_of(job)
    kind = schedule_type or current_type or "interval"
    if not isinstance(config, dict):
        raise CompatError("schedule_config must be an object.")
    base = dict(current) if kind == current_type else {}
    if ("interval" in config or "delay" in config) and "unit" not in config:
        base.pop("unit", None)
    # A one-off runs after a delay or at an instant: a new one of either replaces the old one.
    if "delay" in config or set(ONCE_AT) & set(config):
        for key in ("delay", *ONCE_AT):
            base.pop(key, None)
    return trigger_for(kind, {**base, **config})


def describe(job: Job) -> str:
    """The schedule in FastScheduler's words: 'Every 30 seconds', 'Daily at 09:30 (Asia/Shanghai)'."""
    kind, config = schedule_of(job)
    suffix = f" ({job.timezone})" if job.timezone != "UTC" else ""
    if kind == "cron":
        return f"Cron: {config['expression']}{suffix}"
    if kind == "daily":
        return f"Daily at {config['time']}{suffix}"
    if kind == "weekly":
        return f"Every {', '.join(DAY_NAMES[d] for d in config['days'])} at {config['time']}{suffix}"
    if kind == "hourly":
        return f"Hourly at {config['time']}{suffix}"
    if kind == "interval":
        amount, unit = config["interval"], config["unit"]
        return f"Every {amount} {unit}"
    return "One-time job"


def _local(instant: datetime | None) -> str | None:
    return timezone.localtime(instant).strftime("%Y-%m-%d %H:%M:%S") if instant else None


def next_run(job: Job) -> datetime | None:
    """FastScheduler's next_run: the next run, and a paused job's planned one (FastScheduler keeps
    it while paused); None when the job will never run again (Job.schedule_state)."""
    return job.current_state.next_run


def job_status(job: Job, running: bool) -> str:
    if running:
        return "running"
    if job.paused:
        return "paused"
    if next_run(job) is None:
        return "failed" if job.last_status in Execution.FAILURES else "completed"
    return "scheduled"


def job_data(job: Job, *, running: bool = False, retry_count: int = 0, detail: bool = False) -> dict:
    module, _, func = job.task.rpartition(".")
    now = timezone.now()
    upcoming = next_run(job)
    data = {
        "job_id": job_id(job.pk),
        "func_name": func,
        "func_module": module,
        "job_name": job.name,
        "group": job.group,
        "status": job_status(job, running),
        "schedule": describe(job),
        "next_run": _local(upcoming),
        "next_run_in": max(0.0, (upcoming - now).total_seconds()) if upcoming else None,
        "run_count": job.run_count,
        "retry_count": retry_count,
        "paused": job.paused,
        "last_run": _local(job.last_run_at),
    }
    if detail:
        schedule_type, config = schedule_of(job)
        data.update(
            timeout=float(job.timeout) if job.timeout is not None else None,
            schedule_type=schedule_type,
            schedule_config=config,
            max_retries=job.max_retries,
            timezone=job.timezone,
            enabled=not job.paused,
            args=job.args,
            kwargs=job.kwargs,
        )
    return data


HISTORY_STATUS = {
    "succeeded": "completed",
    "failed": "failed",
    "timed_out": "failed",
    "lost": "failed",
    "running": "running",
    "queued": "running",
    "scheduled": "scheduled",
    "missed": "missed",
    "skipped": "missed",
    "cancelled": "cancelled",
}


def history_data(execution: Execution) -> dict:
    instant = execution.finished_at or execution.started_at or execution.scheduled_for
    task = execution.job.task if execution.job else execution.job_name
    duration = execution.duration
    return {
        "job_id": job_id(execution.job_id),
        "func_name": task.rpartition(".")[2],
        "status": HISTORY_STATUS.get(execution.status, execution.status),
        "timestamp": instant.timestamp(),
        "error": execution.error or None,
        "run_count": execution.job.run_count if execution.job else 0,
        "retry_count": execution.attempt - 1,
        "execution_time": duration.total_seconds() if duration is not None else None,
        "timestamp_readable": _local(instant),
        "execution_id": execution.pk,
    }
