"""The task registry, code-defined schedules, and discovery of every installed app's jobs.py.

A task is a plain callable registered under a dotted name:

    from scheduler_app.registry import task, schedule

    @task(description="Say hello")
    def hello(name: str = "world") -> str:
        return f"hello {name}"

    @schedule.weekly.weekdays.at("09:00").tz("Europe/London").timeout(60)
    def morning_report() -> dict:
        ...

Jobs defined with `schedule` become code-defined jobs in the database (services.code_jobs_sync):
their definition follows the code; pausing them in the console still works.

A function decorated with Django's own `@task` (django.tasks, or the django-tasks backport)
is a task too, under the same dotted name: register it with `registry.register(it)` or our
`@task` on top, or define it in a module that discovery imports (an app's jobs.py,
TEMPORA["TASK_MODULES"]), where every Django task is registered. Tempora calls its plain
function, like any task's; the "django_tasks" executor is what sends runs to a Tasks backend.
"""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import import_module
from typing import Any

from django.apps import apps
from django.utils.module_loading import autodiscover_modules

from scheduler_app import tasks_framework, triggers
from scheduler_app.conf import tempora_settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Parameter:
    name: str
    kind: str  # "positional", "keyword", "var_positional", "var_keyword"
    required: bool
    default: Any = None
    annotation: str = ""


@dataclass(frozen=True)
class TaskInfo:
    name: str
    func: Callable[..., Any]
    description: str
    parameters: tuple[Parameter, ...]
    # A Django permission ("app_label.codename") needed to schedule this task, or "" for none.
    permission: str = ""
    # The task's own argument checks, run when a job is saved: called with every parameter's
    # value (defaults filled in); a ValueError whose message names the argument refuses the job.
    validate: Callable[[dict[str, Any]], None] | None = None
    # The Django Task object when the task was declared with Django's @task (its `func` is ours).
    django_task: Any = None
    # Templates call callables they look up: rendering a task must never run it.
    do_not_call_in_templates = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    def check_arguments(self, args: list, kwargs: dict) -> None:
        """Raise TypeError naming the problem if `args`/`kwargs` do not fit the signature."""
        inspect.signature(self.func).bind(*args, **kwargs)

    def validate_arguments(self, args: list, kwargs: dict) -> None:
        """Run the task's `validate` on arguments that fit the signature; it raises ValueError."""
        if self.validate is not None:
            bound = inspect.signature(self.func).bind(*args, **kwargs)
            bound.apply_defaults()
            self.validate(dict(bound.arguments))


def _parameters(func: Callable[..., Any]) -> tuple[Parameter, ...]:
    kinds = {
        inspect.Parameter.POSITIONAL_ONLY: "positional",
        inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional",
        inspect.Parameter.KEYWORD_ONLY: "keyword",
        inspect.Parameter.VAR_POSITIONAL: "var_positional",
        inspect.Parameter.VAR_KEYWORD: "var_keyword",
    }
    result = []
    for param in inspect.signature(func).parameters.values():
        empty = param.default is inspect.Parameter.empty
        annotation = param.annotation
        if annotation is inspect.Parameter.empty:
            annotation = ""
        elif not isinstance(annotation, str):
            annotation = getattr(annotation, "__name__", str(annotation))
        result.append(
            Parameter(
                name=param.name,
                kind=kinds[param.kind],
                required=empty and param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD),
                default=None if empty else param.default,
                annotation=annotation,
            )
        )
    return tuple(result)


class TaskRegistry:
    def __init__(self) -> None:
        self._tasks: dict[str, TaskInfo] = {}

    def register(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        permission: str = "",
        validate: Callable[[dict[str, Any]], None] | None = None,
    ) -> TaskInfo:
        django_task = None
        if tasks_framework.is_django_task(func):
            # Its function is what we call and introspect: the run, its retries and outcome are
            # ours, whatever executor the job has. Same dotted name as Django's module_path.
            django_task, func = func, func.func
            if django_task.takes_context:
                raise ValueError(
                    f"Task {func.__module__}.{func.__qualname__} takes Django's TaskContext: Tempora calls the "
                    "function itself and has no context to give it. Drop takes_context to schedule it."
                )
        name = name or f"{func.__module__}.{func.__qualname__}"
        existing = self._tasks.get(name)
        if existing is not None and existing.func is not func:
            # Re-imports (autoreload, tests) register the same function again; a different
            # function under a taken name is a mistake worth stopping for.
            if (existing.func.__module__, existing.func.__qualname__) != (func.__module__, func.__qualname__):
                raise ValueError(f"Task name {name!r} is already registered by {existing.func!r}.")
        doc = inspect.getdoc(func) or ""
        info = TaskInfo(
            name=name,
            func=func,
            description=description if description is not None else doc.split("\n\n")[0],
            parameters=_parameters(func),
            permission=_permission(permission, name),
            validate=validate,
            django_task=django_task,
        )
        self._tasks[name] = info
        return info

    def unregister(self, name: str) -> None:
        self._tasks.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def get(self, name: str) -> TaskInfo:
        try:
            return self._tasks[name]
        except KeyError:
            raise LookupError(f"No task is registered as {name!r}.") from None

    def names(self) -> list[str]:
        return sorted(self._tasks)

    def all(self) -> list[TaskInfo]:
        return [self._tasks[name] for name in self.names()]


def _permission(permission: str, task_name: str) -> str:
    # The form "app_label.codename", as User.has_perm takes it; a typo would otherwise lock
    # everyone but superusers out of the task without a word.
    if permission and (not isinstance(permission, str) or permission.count(".") != 1 or " " in permission):
        raise ValueError(f"Task {task_name!r}: permission {permission!r} is not 'app_label.codename'.")
    return permission


registry = TaskRegistry()


def task(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    permission: str = "",
    validate: Callable[[dict[str, Any]], None] | None = None,
):
    """Register a callable as a task: `@task` or `@task(name="billing.invoice", description=..., validate=...)`.

    `permission="billing.send_invoices"` lets only users holding that Django permission
    schedule the task (choose it in a job, run a job of theirs that uses it).
    `validate(arguments)` checks a job's arguments when it is saved (a ValueError naming the
    argument is a 400 on `kwargs`); the task should run the same check itself, since what it
    depends on (files, DNS, settings) can change before it runs.
    """

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        registry.register(f, name=name, description=description, permission=permission, validate=validate)
        return f

    return decorate(func) if func is not None else decorate


# Code-defined schedules ---------------------------------------------------------------


@dataclass
class CodeJob:
    """A job defined in code; services.code_jobs_sync writes it to the database."""

    name: str
    task: str
    trigger: dict[str, Any]
    timezone: str = "UTC"
    timeout: int | None = None
    max_retries: int = 0
    catch_up: str = "once"
    lost_policy: str = "auto"
    description: str = ""
    args: list = field(default_factory=list)
    kwargs: dict = field(default_factory=dict)


code_jobs: dict[str, CodeJob] = {}

_DAYS = {"monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6}
_UNITS = {
    "second": 1,
    "seconds": 1,
    "minute": 60,
    "minutes": 60,
    "hour": 3600,
    "hours": 3600,
    "day": 86400,
    "days": 86400,
}


def _whole_number(option: str, value: Any, *, minimum: int, unit: str = "", field: str = "") -> int:
    """`value` if it is a whole number of at least `minimum`, else a ScheduleError naming the
    option (keyed by `field`, the job's field, when that is named otherwise). bool is an int
    to Python, so without the check timeout(True) was a one-second limit stored as True."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = f"whole {unit}" if unit else "a whole number"
        raise triggers.ScheduleError(field or option, f"{option}() takes {what}, {minimum} or more, not {value!r}.")
    return value


class ScheduleBuilder:
    """One fluent schedule: `schedule.every(10).minutes.timeout(30)` and friends.

    Each step returns the builder; using it as a decorator registers the function as a
    task and its schedule as a code-defined job.
    """

    def __init__(self) -> None:
        self._kind: str | None = None
        self._amount: int | None = None
        self._seconds: int | None = None
        self._days: list[int] = []
        self._cron: str | None = None
        self._preset = ""
        self._delay: int | None = None
        self._moment: str | None = None
        self._tz = "UTC"
        self._timeout: int | None = None
        self._retries = 0
        self._catch_up = "once"
        self._lost_policy = "auto"

    # The kinds ------------------------------------------------------------------------
    def every(self, amount: int) -> ScheduleBuilder:
        self._kind, self._amount = "interval", _whole_number("every", amount, minimum=1)
        return self

    def __getattr__(self, attr: str) -> ScheduleBuilder:
        if attr in _UNITS and self._kind == "interval":
            self._seconds = self._amount * _UNITS[attr]
            return self
        if attr in _DAYS and self._kind == "weekly":
            self._days.append(_DAYS[attr])
            return self
        raise AttributeError(attr)

    @property
    def daily(self) -> ScheduleBuilder:
        self._kind, self._preset = "daily", "daily"
        return self

    @property
    def hourly(self) -> ScheduleBuilder:
        self._kind, self._preset = "hourly", "hourly"
        return self

    @property
    def weekly(self) -> ScheduleBuilder:
        self._kind, self._preset = "weekly", "weekly"
        return self

    @property
    def weekdays(self) -> ScheduleBuilder:
        self._days.extend(range(5))
        return self

    @property
    def weekends(self) -> ScheduleBuilder:
        self._days.extend((5, 6))
        return self

    def at(self, when: str, tz: str | None = None) -> ScheduleBuilder:
        """`daily.at("09:00")`, `hourly.at(":30")`, `weekly.monday.at("10:00")`, or `at("2026-12-25 00:00:00")`."""
        if tz:
            self.tz(tz)
        if self._kind == "daily":
            self._cron = triggers.daily_cron(when)
        elif self._kind == "hourly":
            self._cron = triggers.hourly_cron(when)
        elif self._kind == "weekly":
            if not self._days:
                raise triggers.ScheduleError("days", "weekly needs a day first, e.g. weekly.monday.at('10:00').")
            self._cron = triggers.weekly_cron(self._days, when)
        elif self._kind is not None:
            # Without this, every(2).days.at(...) or cron(...).at(...) silently threw the
            # schedule away and became a one-off.
            raise triggers.ScheduleError(
                "at",
                f"at() cannot follow {self._kind}: use daily.at(), weekly.<day>.at(), hourly.at() "
                "or at('2026-12-25 00:00:00').",
            )
        else:
            self._kind = "at"
            try:
                datetime.fromisoformat(when)
            except ValueError:
                raise triggers.ScheduleError(
                    "at", f"{when!r} is not a date and time like '2026-12-25 00:00:00'."
                ) from None
            self._moment = when
        return self

    def cron(self, expression: str) -> ScheduleBuilder:
        triggers.parse_cron(expression)
        self._kind, self._cron = "cron", expression
        return self

    def once(self, delay_seconds: int) -> ScheduleBuilder:
        # At least 1: a run at the moment of saving is not after it, nothing would ever fire it.
        self._kind, self._delay = "once", _whole_number("once", delay_seconds, minimum=1, unit="seconds")
        return self

    # The options ----------------------------------------------------------------------
    def tz(self, name: str) -> ScheduleBuilder:
        triggers.validate_timezone(name)
        self._tz = name
        return self

    def timeout(self, seconds: int) -> ScheduleBuilder:
        self._timeout = _whole_number("timeout", seconds, minimum=1, unit="seconds")
        return self

    def retries(self, count: int) -> ScheduleBuilder:
        self._retries = _whole_number("retries", count, minimum=0, field="max_retries")
        return self

    def no_catch_up(self) -> ScheduleBuilder:
        self._catch_up = "none"
        return self

    def lost_policy(self, policy: str) -> ScheduleBuilder:
        """What a run cut short by a dead scheduler means: "retry" (at least once), "record"
        (at most once) or "auto" (retry if the job has retries)."""
        if policy not in ("auto", "retry", "record"):
            raise triggers.ScheduleError("lost_policy", 'lost_policy() takes "auto", "retry" or "record".')
        self._lost_policy = policy
        return self

    # The result -----------------------------------------------------------------------
    def trigger_definition(self) -> dict[str, Any]:
        """The trigger as services.job_create takes it."""
        if self._kind == "interval":
            if self._seconds is None:
                raise triggers.ScheduleError("every", "every(n) needs a unit: .seconds, .minutes, .hours or .days.")
            return {"kind": "interval", "interval_seconds": self._seconds}
        if self._kind in ("daily", "hourly", "weekly", "cron"):
            if self._cron is None:
                raise triggers.ScheduleError("at", f"{self._kind} needs .at(...).")
            return {"kind": "cron", "cron_expression": self._cron, "preset": self._preset}
        if self._kind == "once":
            return {"kind": "once", "delay_seconds": self._delay}
        if self._kind == "at":
            return {"kind": "once", "run_at_local": self._moment}
        raise triggers.ScheduleError("schedule", "The schedule is incomplete: start with every(), daily, cron(), ...")

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        # The schedule first: an incomplete one used to raise only after the function had
        # been registered as a task, leaving a task behind for a decorator that failed.
        trigger = self.trigger_definition()
        info = registry.register(func)
        code_jobs[info.name] = CodeJob(
            name=info.name,
            task=info.name,
            trigger=trigger,
            timezone=self._tz,
            timeout=self._timeout,
            max_retries=self._retries,
            catch_up=self._catch_up,
            lost_policy=self._lost_policy,
            description=info.description,
        )
        return func


class _ScheduleEntry:
    """`schedule.<anything>` starts a fresh builder, so decorators never share state."""

    def __getattr__(self, attr: str) -> Any:
        return getattr(ScheduleBuilder(), attr)


schedule = _ScheduleEntry()


def autodiscover() -> None:
    """Import every installed app's jobs.py so their tasks register (apps.py imports our
    built-ins first).

    Then the modules named in TEMPORA["TASK_MODULES"], e.g. a module of tasks that is
    not an app's jobs.py. A name that cannot be imported stops start-up with its ImportError.
    """
    autodiscover_modules("jobs")
    modules = [sys.modules.get(f"{config.name}.jobs") for config in apps.get_app_configs()]
    modules += [import_module(module) for module in tempora_settings.TASK_MODULES]
    for module in modules:
        if module is not None:
            register_django_tasks(module)


def register_django_tasks(module) -> list[TaskInfo]:
    """Register the Django tasks (`@django.tasks.task`) a module defines, under their dotted
    names; imported ones are left to the module that defines them. Answers those registered."""
    found = []
    known = {id(info.func) for info in registry.all()}
    for value in list(vars(module).values()):
        if not tasks_framework.is_django_task(value) or value.func.__module__ != module.__name__:
            continue
        name = f"{value.func.__module__}.{value.func.__qualname__}"
        if id(value.func) in known:
            continue  # registered by hand, maybe under a name or options of its own
        try:
            found.append(registry.register(value))
        except ValueError as exc:
            logger.warning("Django task %s is not registered: %s", name, exc)
    return found
