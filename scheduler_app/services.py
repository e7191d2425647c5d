"""Every state change in Tempora. The admin, the API, the console and the scheduler call these.

Rules every function keeps:
- keyword-only, typed arguments; the caller's clock may be injected as `now`;
- `full_clean()` before save, so the model's validators (the ones forms and the API use)
  decide, and a ValidationError names the field;
- one transaction per call, so a failure leaves nothing half-written;
- `updated_at` is stamped on every write, bulk ones included: the scheduler's sync reads it;
- nothing here runs a job: "run now" records a request that the scheduler picks up;
- who may do it is asked here, of scheduler_app/permissions.py: every interface passes the
  signed-in user as `actor`; `actor=None` is the system itself (the scheduler, code-defined
  jobs, management commands), which may do anything.
"""

from __future__ import annotations

import itertools
import logging
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext

from scheduler_app import permissions, triggers, validators
from scheduler_app.models import ApiToken, Calendar, Execution, Job, SchedulerNode, SchedulerState, Trigger
from scheduler_app.permissions import Forbidden, JobAction

logger = logging.getLogger(__name__)

# The Job fields a caller may set; counters, flags and timestamps are the scheduler's.
JOB_FIELDS = (
    "name", "description", "task", "args", "kwargs", "group", "tags", "priority", "owner",
    "timezone", "timeout", "max_retries", "retry_backoff", "retry_backoff_max", "overlap_policy",
    "max_instances", "misfire_grace_time", "catch_up", "executor", "start_at", "end_at",
    "max_runs", "paused",
)
# Runtime settings the console and API may change, with the SCHEDULER_* setting each overrides.
RUNTIME_SETTINGS = {
    "max_workers": ("SCHEDULER_MAX_WORKERS", 1, 1000),
    "misfire_grace_time": ("SCHEDULER_MISFIRE_GRACE_TIME", 1, 86_400),
    "history_per_job": ("SCHEDULER_HISTORY_PER_JOB", 1, 1_000_000),
    "history_days": ("SCHEDULER_HISTORY_DAYS", 1, 3650),
}


class ServiceError(ValidationError):
    """A request that is well-formed but not allowed now (e.g. editing a code-defined job)."""


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def _require(actor, action: JobAction, jobs: Iterable[Job]) -> None:
    """Refuse the whole call, naming the jobs, unless the actor may do `action` to every one."""
    if actor is not None:
        permissions.require_jobs(actor, action, jobs)


def _selection(jobs: QuerySet[Job]) -> QuerySet[Job]:
    """A selection resolved once to ids (the check and the change then see the same rows)."""
    return Job.objects.filter(pk__in=list(jobs.values_list("pk", flat=True))).select_related("owner")


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
    if not errors:
        refusal = _argument_refusal(job.task, job.args, job.kwargs)
        if refusal:
            errors.setdefault("kwargs", []).append(refusal)
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


def _argument_refusal(task: str, args: list, kwargs: dict) -> str:
    """Why args and kwargs may not be given to the task ("" if they may): they do not fit its
    signature, or its own rules refuse them (a built-in's fences). Found when they are given,
    not at 3 a.m. A task that is not registered is the job's own validation's concern."""
    from scheduler_app.registry import registry

    if task not in registry:
        return ""
    info = registry.get(task)
    try:
        info.check_arguments(args, kwargs)
    except TypeError as exc:
        return gettext("The arguments do not fit the task %(task)s: %(error)s.") % {"task": repr(task), "error": exc}
    try:
        info.validate_arguments(args, kwargs)
    except ValueError as exc:
        return str(exc)
    return ""


def _check_run_arguments(jobs: list[Job], args: list | None, kwargs: dict | None, actor) -> None:
    """A run's argument overrides must be JSON of the right shape, be the actor's to give
    (a task's permission: the overrides could send it elsewhere) and fit each job's task."""
    errors: dict[str, list[str]] = {}
    for field, value, validate in (("args", args, validators.validate_args), ("kwargs", kwargs, validators.validate_kwargs)):
        if value is not None:
            try:
                validate(value)
            except ValidationError as exc:
                errors[field] = exc.messages
    if errors:
        raise ValidationError(errors)
    # Name the override that was given (both given: the one the signature complains about).
    field = "kwargs" if args is None else "args"
    for job in jobs:
        if not permissions.may_schedule_task(actor, job.task):
            raise Forbidden(gettext(
                "Running %(job)s with other arguments needs the permission %(permission)s of its task."
            ) % {"job": job.name, "permission": _task_permission(job.task)})
        refusal = _argument_refusal(
            job.task, job.args if args is None else args, job.kwargs if kwargs is None else kwargs
        )
        if refusal:
            if args is not None and kwargs is not None:
                field = "kwargs" if "keyword" in refusal else "args"
            errors.setdefault(field, []).append(refusal if len(jobs) == 1 else f"{job.name}: {refusal}")
    if errors:
        raise ValidationError(errors)


def _trigger_key(trigger: Trigger) -> tuple:
    return (
        trigger.kind, trigger.cron_expression, trigger.interval_seconds, trigger.run_at, trigger.preset,
        trigger.jitter_seconds, trigger.calendar_id,
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
        raise ValidationError({"owner": gettext("You may only own jobs yourself: giving one to someone else "
                                                "needs the permission to change everyone's jobs.")})


def _check_task_permission(actor, job: Job, errors: dict[str, list[str]]) -> None:
    # Both: the actor chooses the task now, the owner's right is what the run relies on later.
    for user in (actor, job.owner):
        if not permissions.may_schedule_task(user, job.task):
            who = gettext("You") if user is actor else str(user)
            errors.setdefault("task", []).append(gettext(
                "%(who)s may not schedule the task %(task)s: it needs the permission %(permission)s."
            ) % {"who": who, "task": repr(job.task), "permission": _task_permission(job.task)})
            return


def _task_permission(task: str) -> str:
    from scheduler_app.registry import registry

    return registry.get(task).permission if task in registry else ""


def _check_quota(job: Job) -> None:
    """TEMPORA_MAX_JOBS_PER_USER: the jobs one owner may have (superusers: no limit)."""
    limit = settings.TEMPORA_MAX_JOBS_PER_USER
    owner = job.owner
    if not limit or owner is None or owner.is_superuser:
        return
    owned = Job.objects.filter(owner=owner).exclude(pk=job.pk).count()
    if owned >= limit:
        raise Forbidden(gettext(
            "%(owner)s already owns %(count)d jobs, the most one user may own (TEMPORA_MAX_JOBS_PER_USER). "
            "Delete one first."
        ) % {"owner": owner, "count": owned})


@transaction.atomic
def job_create(
    *, name: str, task: str, triggers: Iterable[dict] = (), now: datetime | None = None,
    code_defined: bool = False, actor=None, **fields: Any,
) -> Job:
    """Create a job and its triggers; the actor owns it unless `owner` says otherwise.

    `job_create(name="report", task="tempora.sample_job", kwargs={"message": "hi"},
                triggers=[{"kind": "daily", "at": "09:00"}], timezone="Europe/London", actor=alice)`
    """
    _check_fields(fields)
    now = _now(now)
    fields.setdefault("misfire_grace_time", settings.SCHEDULER_MISFIRE_GRACE_TIME)
    if actor is not None:
        fields.setdefault("owner", actor)
    if actor is not None and not permissions.may_create_jobs(actor):
        raise Forbidden(gettext("You may not create jobs: it needs the permission %(permission)s.") % {
            "permission": permissions.ADD_JOB})
    job = Job(name=name, task=task, code_defined=code_defined, **fields)
    _check_owner(actor, job.owner)
    _check_quota(job)
    _save_job(job, triggers, now, actor=actor)
    logger.info("job created: %s", job.name)
    return job


@transaction.atomic
def job_update(
    *, job: Job, triggers: Iterable[dict] | None = None, now: datetime | None = None,
    allow_code_defined: bool = False, actor=None, **fields: Any,
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


@transaction.atomic
def job_delete(*, job: Job, now: datetime | None = None, actor=None) -> None:
    """Delete a job. Its history stays (executions keep the job's name); pending runs are cancelled.

    A code-defined job is refused: the next start would define it again. Remove it from the
    code, or pause it.
    """
    jobs_delete(jobs=Job.objects.filter(pk=job.pk), now=now, actor=actor)


@transaction.atomic
def jobs_delete(*, jobs: QuerySet[Job], now: datetime | None = None, actor=None) -> int:
    """Delete many jobs, all or none (see job_delete); answers how many."""
    doomed = _selection(jobs)
    _require(actor, JobAction.DELETE, doomed)
    in_code = sorted(doomed.filter(code_defined=True).values_list("name", flat=True))
    if in_code:
        raise ServiceError({"code_defined": gettext(
            "Defined in code, so not deleted: %(names)s. Remove them there, or pause them. "
            "Nothing was deleted."
        ) % {"names": ", ".join(in_code)}})
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


@transaction.atomic
def job_pause(*, job: Job, now: datetime | None = None, actor=None) -> Job:
    jobs_pause(jobs=Job.objects.filter(pk=job.pk), now=now, actor=actor)
    job.refresh_from_db()
    return job


@transaction.atomic
def job_resume(*, job: Job, now: datetime | None = None, actor=None) -> Job:
    jobs_resume(jobs=Job.objects.filter(pk=job.pk), now=now, actor=actor)
    job.refresh_from_db()
    return job


@transaction.atomic
def jobs_pause(*, jobs: QuerySet[Job], now: datetime | None = None, actor=None) -> int:
    """Pause many jobs in one statement, all or none; answers how many changed."""
    selection = _selection(jobs)
    _require(actor, JobAction.PAUSE, selection)
    return _set_paused(selection, True, _now(now))


@transaction.atomic
def jobs_resume(*, jobs: QuerySet[Job], now: datetime | None = None, actor=None) -> int:
    selection = _selection(jobs)
    _require(actor, JobAction.PAUSE, selection)
    return _set_paused(selection, False, _now(now))


@transaction.atomic
def job_run_now(
    *, job: Job, args: list | None = None, kwargs: dict | None = None, now: datetime | None = None, actor=None,
) -> Execution:
    """Record a request to run the job now; the scheduler starts it within a pass.

    `args` and `kwargs`, when given, are this run's arguments instead of the job's own (each
    replaces its counterpart whole); they must fit the task's signature, like a job's.
    `job_run_now(job=report, kwargs={"message": "just this once"})`.
    It never runs the job here: the web process does not execute jobs.
    """
    [execution] = jobs_run_now(jobs=Job.objects.filter(pk=job.pk), args=args, kwargs=kwargs, now=now, actor=actor)
    return execution


@transaction.atomic
def jobs_run_now(
    *, jobs: QuerySet[Job], args: list | None = None, kwargs: dict | None = None,
    now: datetime | None = None, actor=None,
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
    executions = Execution.objects.bulk_create([
        Execution(
            job_id=job.pk, job_name=job.name, scheduled_for=now, run_after=now, reason=Execution.Reason.MANUAL,
            requested_by=requested_by, created_at=now, args=args, kwargs=kwargs,
        )
        for job in rows
    ])
    Job.objects.filter(pk__in=[execution.job_id for execution in executions]).update(updated_at=now)
    for execution in executions:
        logger.info("run requested: %s (execution %s)", execution.job_name, execution.pk)
    return executions


@transaction.atomic
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
            "kind": t.kind, "cron_expression": t.cron_expression, "interval_seconds": t.interval_seconds,
            "run_at": t.run_at, "preset": t.preset, "jitter_seconds": t.jitter_seconds, "calendar": t.calendar,
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


@transaction.atomic
def group_cancel(*, group: str, jobs: QuerySet[Job] | None = None, now: datetime | None = None, actor=None) -> int:
    """Delete every job in the group (their history stays); answers how many.

    Code-defined jobs are left alone (the next start would define them again).
    """
    doomed = _selection(_group(group, jobs, actor).exclude(code_defined=True))
    _require(actor, JobAction.DELETE, doomed)
    count = _delete(doomed, _now(now))
    logger.info("group cancelled: %s (%d jobs)", group, count)
    return count


# Executions -----------------------------------------------------------------------------


# A row a scheduler thread or a Celery worker holds: only its holder can stop it. A queued
# row names its scheduler node when that node's pool has it (thread executor); a queued Celery
# row names nobody until a worker claims it, and that claim is conditional on `queued`.
_HELD = Q(status=Execution.Status.RUNNING) | (Q(status=Execution.Status.QUEUED) & ~Q(worker=""))


def _cancel_unheld(executions: QuerySet[Execution], now: datetime) -> int:
    return executions.filter(status__in=Execution.PENDING).exclude(_HELD).update(
        status=Execution.Status.CANCELLED, finished_at=now, error="Cancelled before it started."
    )


def _require_run(actor, action: JobAction, executions: Iterable[Execution]) -> None:
    if actor is not None:
        permissions.require_executions(actor, action, executions)


def _cancel_pending(executions: QuerySet[Execution], now: datetime) -> int:
    """Cancel runs that have not started: at once if no process holds them, else by asking
    their scheduler (it records them cancelled before they start). Answers how many."""
    asked = executions.filter(_HELD, status=Execution.Status.QUEUED, cancel_requested_at__isnull=True).update(
        cancel_requested_at=now
    )
    return asked + _cancel_unheld(executions, now)


@transaction.atomic
def execution_cancel(*, execution: Execution, now: datetime | None = None, actor=None) -> Execution:
    """Cancel a run. One no process holds yet (waiting in the database, or queued for Celery)
    is cancelled at once. One a scheduler or worker holds is asked to stop: `cancel_requested_at`
    is set (`execution.cancel_pending`), and its holder records `cancelled` once the body has
    stopped — or the body's own outcome, if it finished first.

    Refused (ServiceError) for a finished run, and for one whose scheduler node is not alive:
    nothing could stop it; recovery marks it lost.
    """
    _require_run(actor, JobAction.CANCEL, [execution])
    now = _now(now)
    rows = Execution.objects.filter(pk=execution.pk)
    if _cancel_unheld(rows, now):
        execution.refresh_from_db()
        return execution
    execution.refresh_from_db()
    if execution.status not in (Execution.Status.QUEUED, Execution.Status.RUNNING):
        raise ServiceError({"status": gettext("A %(status)s run cannot be cancelled.") % {
            "status": execution.get_status_display().lower()
        }})
    node = SchedulerNode.objects.filter(name=execution.worker).first() if execution.worker else None
    if node is not None and not node.is_alive(now=now):
        raise ServiceError({"status": gettext(
            "Nothing can stop this run: its scheduler %(node)s is not running. It is marked lost when another "
            "scheduler recovers that node."
        ) % {"node": node.name}})
    rows.filter(status__in=[Execution.Status.QUEUED, Execution.Status.RUNNING], cancel_requested_at__isnull=True).update(
        cancel_requested_at=now
    )
    execution.refresh_from_db()
    return execution


@transaction.atomic
def execution_retry(*, execution: Execution, now: datetime | None = None, actor=None) -> Execution:
    """Run a finished, unsuccessful run again as the next attempt of the same occurrence."""
    _require_run(actor, JobAction.RETRY, [execution])
    now = _now(now)
    if not execution.can_retry:
        raise ServiceError({"status": gettext(
            "Only failed, timed-out, lost, cancelled or missed runs of an existing job can be retried."
        )})
    latest = (
        Execution.objects.filter(job_id=execution.job_id, scheduled_for=execution.scheduled_for)
        .order_by("-attempt").values_list("attempt", flat=True).first()
    )
    retry = Execution.objects.create(
        job_id=execution.job_id, job_name=execution.job_name, trigger_id=execution.trigger_id,
        scheduled_for=execution.scheduled_for, run_after=now, attempt=(latest or execution.attempt) + 1,
        reason=Execution.Reason.RETRY, created_at=now, args=execution.args, kwargs=execution.kwargs,
        requested_by=actor if permissions.signed_in(actor) else None,
    )
    # A retried dead letter has been dealt with.
    Execution.objects.filter(pk=execution.pk, dead_letter=True, acknowledged_at__isnull=True).update(acknowledged_at=now)
    Job.objects.filter(pk=execution.job_id).update(updated_at=now)
    return retry


@transaction.atomic
def dead_letter_acknowledge(*, executions: QuerySet[Execution], now: datetime | None = None, actor=None) -> int:
    """Mark dead letters as seen, all or none; answers how many."""
    letters = Execution.objects.filter(
        pk__in=list(executions.filter(dead_letter=True, acknowledged_at__isnull=True).values_list("pk", flat=True))
    )
    _require_run(actor, JobAction.RETRY, letters.select_related("job"))
    return letters.update(acknowledged_at=_now(now))


# The scheduler --------------------------------------------------------------------------


def _require_control(actor) -> None:
    if actor is not None and not permissions.may_control_scheduler(actor):
        raise Forbidden(gettext("You may not control the scheduler: it needs the permission %(permission)s.") % {
            "permission": permissions.CONTROL_SCHEDULER})


def _update_state(**values: Any) -> SchedulerState:
    state = SchedulerState.load()
    SchedulerState.objects.filter(pk=state.pk).update(**values)
    state.refresh_from_db()
    return state


@transaction.atomic
def scheduler_pause(*, now: datetime | None = None, actor=None) -> SchedulerState:
    """Stop every job from firing (runs already started finish)."""
    _require_control(actor)
    now = _now(now)
    return _update_state(paused=True, paused_at=now, updated_at=now)


@transaction.atomic
def scheduler_resume(*, now: datetime | None = None, actor=None) -> SchedulerState:
    _require_control(actor)
    now = _now(now)
    return _update_state(paused=False, paused_at=None, updated_at=now)


@transaction.atomic
def scheduler_shutdown_request(*, now: datetime | None = None, actor=None) -> SchedulerState:
    """Ask every runscheduler process to stop gracefully (they drain running jobs first)."""
    _require_control(actor)
    now = _now(now)
    return _update_state(shutdown_requested_at=now, updated_at=now)


@transaction.atomic
def scheduler_config_update(*, values: dict[str, Any], now: datetime | None = None, actor=None) -> SchedulerState:
    """Change runtime settings; unknown keys and out-of-range values are refused by name."""
    _require_control(actor)
    errors = {}
    for key, value in values.items():
        if key not in RUNTIME_SETTINGS:
            known = ", ".join(sorted(RUNTIME_SETTINGS))
            errors[key] = [gettext("Unknown setting; known: %(known)s.") % {"known": known}]
            continue
        _, low, high = RUNTIME_SETTINGS[key]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            errors[key] = [gettext("Must be a whole number from %(low)d to %(high)d.") % {"low": low, "high": high}]
    if errors:
        raise ValidationError(errors)
    now = _now(now)
    state = SchedulerState.load()
    return _update_state(config={**state.config, **values}, updated_at=now)


def scheduler_setting(key: str, state: SchedulerState | None = None) -> int:
    """A runtime setting: the value set in the console or API, else the SCHEDULER_* setting."""
    setting_name, _, _ = RUNTIME_SETTINGS[key]
    state = state or SchedulerState.load()
    return state.config.get(key, getattr(settings, setting_name))


# Calendars ------------------------------------------------------------------------------


def _touch_jobs_using(calendar: Calendar, now: datetime) -> None:
    # Linked jobs re-plan on the scheduler's next sync.
    jobs = Job.objects.filter(triggers__calendar=calendar).distinct()
    Job.objects.filter(pk__in=jobs.values("pk")).update(updated_at=now)
    for job in Job.objects.filter(pk__in=jobs.values("pk")).prefetch_related("triggers__calendar"):
        _refresh_next_run(job, now)


# The Calendar fields a caller may set. Without this check calendar_update's setattr
# silently accepted a misspelt field (and id or created_at), and calendar_create raised TypeError.
CALENDAR_FIELDS = ("name", "description", "excluded_dates", "business_days_only", "owner")


def _check_calendar_fields(fields: dict[str, Any]) -> None:
    unknown = sorted(set(fields) - set(CALENDAR_FIELDS))
    if unknown:
        raise ValidationError({name: gettext("This field cannot be set.") for name in unknown})


def _normalise_dates(value: Any) -> Any:
    # Sort and de-duplicate only a list of strings. Anything else goes to the field's validator
    # as given: sorted(set(...)) raised TypeError on [{"day": 25}] and split "2026-12-25" into
    # characters, so the user got a crash or a message about '-' instead of "must be a list".
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return sorted(set(value))
    return value


def _check_calendar_owner(actor, owner) -> None:
    if actor is not None and not permissions.may_own_calendar(actor, owner):
        raise ValidationError({"owner": gettext(
            "You may only own calendars yourself: shared calendars, or someone else's, need the permission %(permission)s."
        ) % {"permission": permissions.ADD_SHARED_CALENDAR if owner is None else permissions.CHANGE_CALENDARS}})


def _require_calendar(actor, calendar: Calendar, *, delete: bool = False) -> None:
    if actor is not None and not permissions.may_change_calendar(actor, calendar, delete=delete):
        raise Forbidden(gettext("Calendar %(name)s is shared or someone else's: you may not change it.") % {
            "name": repr(calendar.name)})


@transaction.atomic
def calendar_create(
    *, name: str, excluded_dates: list[str] | None = None, now: datetime | None = None, actor=None, **fields: Any,
) -> Calendar:
    """A calendar; the actor owns it unless `owner` says otherwise (None: shared)."""
    _check_calendar_fields(fields)
    if actor is not None:
        fields.setdefault("owner", actor)
    _check_calendar_owner(actor, fields.get("owner"))
    now = _now(now)
    excluded_dates = [] if excluded_dates is None else excluded_dates
    calendar = Calendar(name=name, excluded_dates=_normalise_dates(excluded_dates), updated_at=now, **fields)
    calendar.full_clean()
    calendar.save()
    return calendar


@transaction.atomic
def calendar_update(*, calendar: Calendar, now: datetime | None = None, actor=None, **fields: Any) -> Calendar:
    _check_calendar_fields(fields)
    _require_calendar(actor, calendar)
    if "owner" in fields and getattr(fields["owner"], "pk", fields["owner"]) != calendar.owner_id:
        _check_calendar_owner(actor, fields["owner"])
    now = _now(now)
    for field, value in fields.items():
        setattr(calendar, field, _normalise_dates(value) if field == "excluded_dates" else value)
    calendar.updated_at = now
    calendar.full_clean()
    calendar.save()
    _touch_jobs_using(calendar, now)
    return calendar


@transaction.atomic
def calendar_delete(*, calendar: Calendar, actor=None) -> None:
    _require_calendar(actor, calendar, delete=True)
    if calendar.triggers.exists():
        names = ", ".join(sorted({t.job.name for t in calendar.triggers.select_related("job")})[:5])
        raise ServiceError({"calendar": gettext("Calendar %(name)s is used by: %(jobs)s. Unlink it first.") % {
            "name": repr(calendar.name), "jobs": names
        }})
    calendar.delete()


# Code-defined jobs ----------------------------------------------------------------------


@transaction.atomic
def code_jobs_sync(*, definitions: dict | None = None, now: datetime | None = None) -> dict[str, int]:
    """Write the schedules defined in code (registry.schedule) to the database.

    New ones are created; changed ones follow the code (the paused flag stays the user's);
    code-defined jobs that vanished from the code are paused and flagged, never deleted.
    """
    from scheduler_app.registry import code_jobs

    definitions = code_jobs if definitions is None else definitions
    now = _now(now)
    counts = {"created": 0, "updated": 0, "orphaned": 0}
    existing = {job.name: job for job in Job.objects.filter(code_defined=True).prefetch_related("triggers")}
    for name, definition in definitions.items():
        fields = {
            "task": definition.task, "timezone": definition.timezone, "timeout": definition.timeout,
            "max_retries": definition.max_retries, "catch_up": definition.catch_up,
            "description": definition.description, "args": definition.args, "kwargs": definition.kwargs,
        }
        job = existing.pop(name, None)
        if job is None:
            job_create(name=name, triggers=[definition.trigger], code_defined=True, now=now, **fields)
            counts["created"] += 1
        elif _code_job_differs(job, fields, definition.trigger):
            job_update(job=job, triggers=[definition.trigger], allow_code_defined=True, now=now, **fields)
            Job.objects.filter(pk=job.pk).update(import_error="")
            counts["updated"] += 1
    for job in existing.values():
        if "no longer defined" not in job.import_error:
            Job.objects.filter(pk=job.pk).update(
                paused=True, import_error="This job is no longer defined in code; it is paused.", updated_at=now
            )
            counts["orphaned"] += 1
    return counts


def _code_job_differs(job: Job, fields: dict[str, Any], trigger: dict) -> bool:
    if any(getattr(job, key) != value for key, value in fields.items()) or job.import_error:
        return True
    current = list(job.triggers.all())
    if len(current) != 1:
        return True
    row = current[0]
    if trigger["kind"] == "once":
        # A one-off from a delay is planned once; re-planning on every start would never fire it.
        if row.kind != "once" or trigger.get("delay_seconds") is not None:
            return row.kind != "once"
        # One at a fixed moment (`schedule.at("2026-12-25 00:00:00")`) follows the code when
        # the moment changes; it used to keep the first moment ever synced.
        return row.run_at != triggers.compile_trigger(trigger, job.zone, timezone.now())["run_at"]
    compiled = triggers.compile_trigger(trigger, job.zone, timezone.now())
    return any(getattr(row, key) != compiled[key] for key in ("kind", "cron_expression", "interval_seconds", "preset"))


# API tokens -----------------------------------------------------------------------------

# A token's last use is written at most this often: a busy client would otherwise turn
# every read into a write.
TOKEN_TOUCH_SECONDS = 60


@transaction.atomic
def token_create(*, user, name: str, now: datetime | None = None) -> tuple[ApiToken, str]:
    """Create an API token for `user`; answers the row and the plaintext key.

    The key is returned here once and never stored: only its SHA-256 is.
    `token, key = token_create(user=alice, name="ci-deploy")` → key "tmp_3fA9c2…".
    """
    now = _now(now)
    key = ApiToken.KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user, name=name.strip() if isinstance(name, str) else name,
        key_hash=ApiToken.hash_key(key), prefix=key[: len(ApiToken.KEY_PREFIX) + 6], created_at=now,
    )
    token.full_clean()
    token.save()
    logger.info("API token created: %s for %s", token.prefix, user)
    return token, key


@transaction.atomic
def token_revoke(*, token: ApiToken, now: datetime | None = None, actor=None) -> ApiToken:
    """Revoke a token; it stops working at once. Revoking twice keeps the first time.
    Someone else's token needs change_apitoken."""
    if actor is not None and not permissions.may_revoke_token(actor, token):
        raise Forbidden(gettext("This token is someone else's: you may not revoke it."))
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=_now(now))
    token.refresh_from_db()
    logger.info("API token revoked: %s", token.prefix)
    return token


def token_mark_used(*, token: ApiToken, now: datetime | None = None) -> None:
    """Record that a token was used, at most once per TOKEN_TOUCH_SECONDS (one conditional UPDATE)."""
    now = _now(now)
    stale = now - timedelta(seconds=TOKEN_TOUCH_SECONDS)
    ApiToken.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale), pk=token.pk
    ).update(last_used_at=now)
