"""Jobs and groups of jobs: create, change, delete, pause, resume, run now, duplicate."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils.translation import gettext

from scheduler_app import permissions, tasks_framework, triggers, validators
from scheduler_app.conf import tempora_settings
from scheduler_app.models import Calendar, Execution, Job, Trigger
from scheduler_app.permissions import Forbidden, JobAction
from scheduler_app.registry import registry
from scheduler_app.services.base import ServiceError, _now, _require, _selection, tells_scheduler
from scheduler_app.services.executions import _cancel_pending

logger = logging.getLogger(__name__)


# The Job fields a caller may set; counters, flags and timestamps are the scheduler's.
JOB_FIELDS = (
    "name",
    "description",
    "task",
    "args",
    "kwargs",
    "group",
    "tags",
    "priority",
    "owner",
    "timezone",
    "timeout",
    "max_retries",
    "retry_backoff",
    "retry_backoff_max",
    "overlap_policy",
    "max_instances",
    "misfire_grace_time",
    "catch_up",
    "executor",
    "lost_policy",
    "start_at",
    "end_at",
    "max_runs",
    "paused",
)


# Jobs -----------------------------------------------------------------------------------


def _check_fields(fields: dict[str, Any]) -> None:
    unknown = sorted(set(fields) - set(JOB_FIELDS))
    if unknown:
        raise ValidationError({name: gettext("This field cannot be set.") for name in unknown})


def _build_triggers(job: Job, definitions: Iterable[dict], now: datetime, actor=None) -> list[Trigger]:
    """Validate trigger definitions (see triggers.compile_trigger) into unsaved rows.

    Errors name the trigger and its field: `triggers.1.cron_expression`.
    """
    try:
        zone = triggers.validate_timezone(job.timezone)
    except triggers.ScheduleError:
        zone = None  # the job's own validation reports the zone
    rows: list[Trigger] = []
    errors: dict[str, list[str]] = {}
    for index, data in enumerate(definitions):
        try:
            fields = triggers.compile_trigger(data, zone or triggers.validate_timezone("UTC"), now)
            calendar = data.get("calendar")
            if calendar is not None:
                calendar = _calendar_by_id(calendar.pk if isinstance(calendar, Calendar) else calendar, actor)
                if calendar is None:
                    raise triggers.ScheduleError(
                        "calendar", gettext("No calendar has id %(id)s.") % {"id": repr(data.get("calendar"))}
                    )
            trigger = Trigger(job=job, calendar=calendar, created_at=now, **fields)
            trigger.full_clean(exclude=["job"])
            rows.append(trigger)
        except triggers.ScheduleError as exc:
            errors[f"triggers.{index}.{exc.field}"] = [exc.message]
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                errors[f"triggers.{index}.{field}"] = messages
    if errors:
        raise ValidationError(errors)
    return rows


def job_triggers_check(
    *,
    definitions: Iterable[dict],
    timezone: str = "UTC",
    start_at: datetime | None = None,
    now: datetime | None = None,
    actor=None,
) -> None:
    """Check trigger definitions as job_create/job_update would, saving nothing: for a form whose
    other fields are still wrong, so every error shows at once. Errors: `triggers.<i>.<field>`."""
    _build_triggers(Job(timezone=timezone, start_at=start_at), list(definitions), _now(now), actor)


def _calendar_by_id(value: Any, actor=None) -> Calendar | None:
    # Only whole-number ids: the ORM raised ValueError/TypeError on "abc", [1] or {"id": 1}
    # (a crash, not an error naming the field), and truncated 1.5 to calendar 1.
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    try:
        pk = int(value)
    except ValueError:
        return None
    # Only calendars the actor can see (their own, the shared ones): another user's is "no such id".
    calendars = Calendar.objects.all() if actor is None else Calendar.objects.visible_to(actor)
    return calendars.filter(pk=pk).first()


def _save_job(job: Job, trigger_definitions: Iterable[dict] | None, now: datetime, *, actor=None) -> Job:
    errors: dict[str, list[str]] = {}
    try:
        job.full_clean()
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if not errors:
        _check_task_permission(actor, job, errors)
        _check_executor(job, errors)
    if not errors:
        field, refusal = _argument_refusal(job.task, job.args, job.kwargs)
        if refusal:
            errors.setdefault(field, []).append(refusal)
    rows: list[Trigger] | None = None
    if trigger_definitions is not None:
        try:
            rows = _build_triggers(job, list(trigger_definitions), now, actor)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    job.updated_at = now
    job.save()
    if rows is not None:
        _replace_triggers(job, rows)
    _refresh_next_run(job, now)
    return job


def _check_executor(job: Job, errors: dict[str, list[str]]) -> None:
    """A job may be given the django_tasks executor only when its runs can be enqueued: the
    framework installed and TEMPORA['TASKS_BACKEND'] configured (tasks_framework says why not).
    Asked when the executor is chosen, not on every edit: a job saved before the framework went
    away can still be paused or moved to another executor; its runs fail with the reason."""
    if job.executor != Job.Executor.DJANGO_TASKS:
        return
    if job.pk is not None and Job.objects.filter(pk=job.pk, executor=job.executor).exists():
        return
    problem = tasks_framework.backend_problem()
    if problem:
        errors.setdefault("executor", []).append(problem)


def _argument_refusal(task: str, args: list, kwargs: dict) -> tuple[str, str]:
    """(field, why) when args and kwargs may not be given to the task, ("", "") when they may:
    they do not fit its signature (`args` or `kwargs`, by what the signature complains about),
    or its own rules refuse them (a built-in's fences: `kwargs`). Found when they are given, not
    at 3 a.m. A task that is not registered is the job's own validation's concern."""
    if task not in registry:
        return "", ""
    info = registry.get(task)
    try:
        info.check_arguments(args, kwargs)
    except TypeError as exc:
        field = "kwargs" if "keyword" in str(exc) else "args"
        return field, gettext("The arguments do not fit the task %(task)s: %(error)s.") % {
            "task": repr(task),
            "error": exc,
        }
    try:
        info.validate_arguments(args, kwargs)
    except ValueError as exc:
        return "kwargs", str(exc)
    return "", ""


def _check_run_arguments(jobs: list[Job], args: list | None, kwargs: dict | None, actor) -> None:
    """A run's argument overrides must be JSON of the right shape, be the actor's to give
    (a task's permission: the overrides could send it elsewhere) and fit each job's task."""
    errors: dict[str, list[str]] = {}
    for field, value, validate in (
        ("args", args, validators.validate_args),
        ("kwargs", kwargs, validators.validate_kwargs),
    ):
        if value is not None:
            try:
                validate(value)
            except ValidationError as exc:
                errors[field] = exc.messages
    if errors:
        raise ValidationError(errors)
    for job in jobs:
        if not permissions.may_schedule_task(actor, job.task):
            raise Forbidden(
                gettext("Running %(job)s with other arguments needs the permission %(permission)s of its task.")
                % {"job": job.name, "permission": _task_permission(job.task)}
            )
        field, refusal = _argument_refusal(
            job.task, job.args if args is None else args, job.kwargs if kwargs is None else kwargs
        )
        if refusal:
            # Name the override that was given (both given: the one the task complains about).
            field = field if args is not None and kwargs is not None else "kwargs" if args is None else "args"
            errors.setdefault(field, []).append(refusal if len(jobs) == 1 else f"{job.name}: {refusal}")
    if errors:
        raise ValidationError(errors)


def _trigger_key(trigger: Trigger) -> tuple:
    return (
        trigger.kind,
        trigger.cron_expression,
        trigger.interval_seconds,
        trigger.run_at,
        trigger.preset,
        trigger.jitter_seconds,
        trigger.calendar_id,
    )


def _replace_triggers(job: Job, rows: list[Trigger]) -> None:
    """Make the job's triggers `rows`, keeping existing rows whose definition is unchanged:
    they keep their id (history links to it) and their creation time (an interval's anchor)."""
    unused: dict[tuple, list[Trigger]] = {}
    for existing in job.triggers.all():
        unused.setdefault(_trigger_key(existing), []).append(existing)
    new = []
    for row in rows:
        same = unused.get(_trigger_key(row))
        if same:
            same.pop()
        else:
            row.job = job
            new.append(row)
    stale = [t.pk for group in unused.values() for t in group]
    if stale:
        Trigger.objects.filter(pk__in=stale).delete()
    Trigger.objects.bulk_create(new)
    if hasattr(job, "_prefetched_objects_cache"):
        job._prefetched_objects_cache.pop("triggers", None)


def _refresh_next_run(job: Job, now: datetime) -> None:
    # A schedule that cannot be computed (rows changed outside the services) has no next run;
    # Job.schedule_state says why. Pausing or resuming such a job must still work.
    runs, _error = job.next_runs_or_error(after=now, count=1)
    job.next_run_at = runs[0] if runs else None
    Job.objects.filter(pk=job.pk).update(next_run_at=job.next_run_at)


def _check_owner(actor, owner) -> None:
    """Jobs of one's own for everyone; someone else's (or no owner) needs change_job."""
    if actor is not None and not permissions.may_own(actor, owner):
        raise ValidationError(
            {
                "owner": gettext(
                    "You may only own jobs yourself: giving one to someone else "
                    "needs the permission to change everyone's jobs."
                )
            }
        )


def _check_task_permission(actor, job: Job, errors: dict[str, list[str]]) -> None:
    # Both: the actor chooses the task now, the owner's right is what the run relies on later.
    for user in (actor, job.owner):
        if not permissions.may_schedule_task(user, job.task):
            who = gettext("You") if user is actor else str(user)
            errors.setdefault("task", []).append(
                gettext("%(who)s may not schedule the task %(task)s: it needs the permission %(permission)s.")
                % {"who": who, "task": repr(job.task), "permission": _task_permission(job.task)}
            )
            return


def _task_permission(task: str) -> str:
    return registry.get(task).permission if task in registry else ""


def _check_quota(job: Job) -> None:
    """TEMPORA_MAX_JOBS_PER_USER: the jobs one owner may have (superusers: no limit)."""
    limit = tempora_settings.MAX_JOBS_PER_USER
    owner = job.owner
    if not limit or owner is None or owner.is_superuser:
        return
    owned = Job.objects.filter(owner=owner).exclude(pk=job.pk).count()
    if owned >= limit:
        raise Forbidden(
            gettext(
                "%(owner)s already owns %(count)d jobs, the most one user may own (TEMPORA_MAX_JOBS_PER_USER). "
                "Delete one first."
            )
            % {"owner": owner, "count": owned}
        )


@tells_scheduler
def job_create(
    *,
    name: str,
    task: str,
    triggers: Iterable[dict] = (),
    now: datetime | None = None,
    code_defined: bool = False,
    actor=None,
    **fields: Any,
) -> Job:
    """Create a job and its triggers; the actor owns it unless `owner` says otherwise.

    `job_create(name="report", task="tempora.sample_job", kwargs={"message": "hi"},
                triggers=[{"kind": "daily", "at": "09:00"}], timezone="Europe/London", actor=alice)`
    """
    _check_fields(fields)
    now = _now(now)
    fields.setdefault("misfire_grace_time", tempora_settings.MISFIRE_GRACE_TIME)
    if actor is not None:
        fields.setdefault("owner", actor)
    if actor is not None and not permissions.may_create_jobs(actor):
        raise Forbidden(
            gettext("You may not create jobs: it needs the permission %(permission)s.")
            % {"permission": permissions.ADD_JOB}
        )
    job = Job(name=name, task=task, code_defined=code_defined, **fields)
    _check_owner(actor, job.owner)
    _check_quota(job)
    _save_job(job, triggers, now, actor=actor)
    logger.info("job created: %s", job.name)
    return job


@tells_scheduler
def job_update(
    *,
    job: Job,
    triggers: Iterable[dict] | None = None,
    now: datetime | None = None,
    allow_code_defined: bool = False,
    actor=None,
    **fields: Any,
) -> Job:
    """Change a job's fields; `triggers`, when given, replaces all of its triggers."""
    _check_fields(fields)
    _require(actor, JobAction.CHANGE, [job])
    if job.code_defined and not allow_code_defined and (triggers is not None or set(fields) - {"paused"}):
        raise ServiceError(
            {"code_defined": gettext("This job is defined in code: change it there (pausing still works).")}
        )
    now = _now(now)
    job = Job.objects.select_for_update().get(pk=job.pk)
    if "owner" in fields and getattr(fields["owner"], "pk", fields["owner"]) != job.owner_id:
        _check_owner(actor, fields["owner"])
    for field, value in fields.items():
        setattr(job, field, value)
    if "owner" in fields:
        _check_quota(job)
    _save_job(job, triggers, now, actor=actor)
    logger.info("job updated: %s", job.name)
    return job


@tells_scheduler
def job_delete(*, job: Job, now: datetime | None = None, actor=None) -> None:
    """Delete a job. Its history stays (executions keep the job's name); pending runs are cancelled.

    A code-defined job is refused: the next start would define it again. Remove it from the
    code, or pause it.
    """
    jobs_delete(jobs=Job.objects.filter(pk=job.pk), now=now, actor=actor)


@tells_scheduler
def jobs_delete(*, jobs: QuerySet[Job], now: datetime | None = None, actor=None) -> int:
    """Delete many jobs, all or none (see job_delete); answers how many."""
    doomed = _selection(jobs)
    _require(actor, JobAction.DELETE, doomed)
    in_code = sorted(doomed.filter(code_defined=True).values_list("name", flat=True))
    if in_code:
        raise ServiceError(
            {
                "code_defined": gettext(
                    "Defined in code, so not deleted: %(names)s. Remove them there, or pause them. Nothing was deleted."
                )
                % {"names": ", ".join(in_code)}
            }
        )
    return _delete(doomed, _now(now))


def _delete(jobs: QuerySet[Job], now: datetime) -> int:
    _cancel_pending(Execution.objects.filter(job__in=jobs), now)
    names = list(jobs.values_list("name", flat=True))
    jobs.delete()
    for name in names:
        logger.info("job deleted: %s", name)
    return len(names)


def _set_paused(jobs: QuerySet[Job], paused: bool, now: datetime) -> int:
    # Resolve the ids before the UPDATE: a queryset that filters on `paused` (the natural
    # "resume everything paused") matches nothing afterwards, so re-evaluating it re-planned
    # no job. Only the jobs that changed are re-planned: re-planning an already active job
    # from `now` would skip a run that is due but not yet dispatched.
    ids = list(jobs.exclude(paused=paused).values_list("pk", flat=True))
    changed = Job.objects.filter(pk__in=ids).exclude(paused=paused).update(paused=paused, updated_at=now)
    if not paused:
        # Resumed jobs plan from now: occurrences while paused are not caught up.
        for job in Job.objects.filter(pk__in=ids).prefetch_related("triggers__calendar"):
            _refresh_next_run(job, now)
    return changed


@tells_scheduler
def job_pause(*, job: Job, now: datetime | None = None, actor=None) -> Job:
    jobs_pause(jobs=Job.objects.filter(pk=job.pk), now=now, actor=actor)
    job.refresh_from_db()
    return job


@tells_scheduler
def job_resume(*, job: Job, now: datetime | None = None, actor=None) -> Job:
    jobs_resume(jobs=Job.objects.filter(pk=job.pk), now=now, actor=actor)
    job.refresh_from_db()
    return job


@tells_scheduler
def jobs_pause(*, jobs: QuerySet[Job], now: datetime | None = None, actor=None) -> int:
    """Pause many jobs in one statement, all or none; answers how many changed."""
    selection = _selection(jobs)
    _require(actor, JobAction.PAUSE, selection)
    return _set_paused(selection, True, _now(now))


@tells_scheduler
def jobs_resume(*, jobs: QuerySet[Job], now: datetime | None = None, actor=None) -> int:
    selection = _selection(jobs)
    _require(actor, JobAction.PAUSE, selection)
    return _set_paused(selection, False, _now(now))


@tells_scheduler
def job_run_now(
    *,
    job: Job,
    args: list | None = None,
    kwargs: dict | None = None,
    now: datetime | None = None,
    actor=None,
) -> Execution:
    """Record a request to run the job now; the scheduler starts it within a pass.

    `args` and `kwargs`, when given, are this run's arguments instead of the job's own (each
    replaces its counterpart whole); they must fit the task's signature, like a job's.
    `job_run_now(job=report, kwargs={"message": "just this once"})`.
    It never runs the job here: the web process does not execute jobs.
    """
    [execution] = jobs_run_now(jobs=Job.objects.filter(pk=job.pk), args=args, kwargs=kwargs, now=now, actor=actor)
    return execution


@tells_scheduler
def jobs_run_now(
    *,
    jobs: QuerySet[Job],
    args: list | None = None,
    kwargs: dict | None = None,
    now: datetime | None = None,
    actor=None,
) -> list[Execution]:
    """Record a run-now request for each job, all or none, in one transaction; answers the Executions.

    With `args`/`kwargs` (see job_run_now) every job must accept them, or none is run.
    """
    now = _now(now)
    selection = _selection(jobs)
    _require(actor, JobAction.RUN, selection)
    requested_by = actor if permissions.signed_in(actor) else None
    rows = list(selection.order_by("pk").select_related(None).only("pk", "name", "task", "args", "kwargs"))
    if args is not None or kwargs is not None:
        _check_run_arguments(rows, args, kwargs, actor)
    executions = Execution.objects.bulk_create(
        [
            Execution(
                job_id=job.pk,
                job_name=job.name,
                scheduled_for=now,
                run_after=now,
                reason=Execution.Reason.MANUAL,
                requested_by=requested_by,
                created_at=now,
                args=args,
                kwargs=kwargs,
            )
            for job in rows
        ]
    )
    Job.objects.filter(pk__in=[execution.job_id for execution in executions]).update(updated_at=now)
    for execution in executions:
        logger.info("run requested: %s (execution %s)", execution.job_name, execution.pk)
    return executions


@tells_scheduler
def job_duplicate(*, job: Job, name: str | None = None, owner=None, now: datetime | None = None, actor=None) -> Job:
    """Copy a job and its triggers under a free name. The copy starts paused, so it never
    doubles the original's runs before someone has looked at it. The actor owns the copy."""
    now = _now(now)
    _require(actor, JobAction.VIEW, [job])
    if name is None:
        taken = set(Job.objects.filter(name__startswith=job.name).values_list("name", flat=True))
        candidates = (f"{job.name} (copy)" if n == 1 else f"{job.name} (copy {n})" for n in itertools.count(1))
        name = next(c for c in candidates if c not in taken)
    fields = {field: getattr(job, field) for field in JOB_FIELDS if field not in ("name", "owner", "paused")}
    definitions = [
        {
            "kind": t.kind,
            "cron_expression": t.cron_expression,
            "interval_seconds": t.interval_seconds,
            "run_at": t.run_at,
            "preset": t.preset,
            "jitter_seconds": t.jitter_seconds,
            "calendar": t.calendar,
        }
        for t in job.triggers.all()
    ]
    owner = owner or actor or job.owner
    return job_create(name=name, triggers=definitions, owner=owner, paused=True, now=now, actor=actor, **fields)


# Groups ---------------------------------------------------------------------------------


# A group action covers the jobs of the group the actor can see (default: every job), and is
# refused whole when the actor may not do it to one of them.


def _group(group: str, jobs: QuerySet[Job] | None, actor) -> QuerySet[Job]:
    jobs = jobs if jobs is not None else Job.objects.visible_to(actor) if actor is not None else Job.objects.all()
    return jobs.in_group(group)


def group_pause(*, group: str, jobs: QuerySet[Job] | None = None, now: datetime | None = None, actor=None) -> int:
    return jobs_pause(jobs=_group(group, jobs, actor), now=now, actor=actor)


def group_resume(*, group: str, jobs: QuerySet[Job] | None = None, now: datetime | None = None, actor=None) -> int:
    return jobs_resume(jobs=_group(group, jobs, actor), now=now, actor=actor)


@tells_scheduler
def group_cancel(*, group: str, jobs: QuerySet[Job] | None = None, now: datetime | None = None, actor=None) -> int:
    """Delete every job in the group (their history stays); answers how many.

    Code-defined jobs are left alone (the next start would define them again).
    """
    doomed = _selection(_group(group, jobs, actor).exclude(code_defined=True))
    _require(actor, JobAction.DELETE, doomed)
    count = _delete(doomed, _now(now))
    logger.info("group cancelled: %s (%d jobs)", group, count)
    return count
