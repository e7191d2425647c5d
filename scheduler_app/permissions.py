"""Who may do what to which object: the one answer the services, the console, both APIs and
the admin ask.

The model (README, "Security model"):
- every signed-in, active user may create jobs they own (unless TEMPORA_OPEN_JOB_CREATION is
  off: then creating needs `add_job`), and do everything to their own jobs and their runs;
- acting on other people's jobs needs a Django permission per action (`view_job`, `change_job`,
  `delete_job`, `run_job`, `pause_job`, `retry_execution`, `cancel_execution`), granted to a
  user or a group (the shipped groups bundle them);
- the scheduler (`control_scheduler`), node details and metrics (`view_schedulernode`), other
  users' tokens (`view_apitoken`, `change_apitoken`) and shared calendars (`add_calendar`,
  `change_calendar`, `delete_calendar`) need theirs;
- a task may declare a permission (`@task(permission=...)`); scheduling it needs that too.
`is_staff` decides nothing here: it only lets a user into the Django admin, as in Django.

Lists are filtered (the querysets' `visible_to` and `allowing`), so what a user may not see is a 404, never a 403; what they may
see but not change is a 403 (`Forbidden`) naming what was refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.utils.translation import gettext

from scheduler_app.conf import tempora_settings
from scheduler_app.registry import registry

APP = "scheduler_app"


class JobAction(StrEnum):
    VIEW = "view"
    CHANGE = "change"
    DELETE = "delete"
    RUN = "run"
    PAUSE = "pause"
    RETRY = "retry"  # a job's runs: retry them, acknowledge its dead letters
    CANCEL = "cancel"  # a job's runs: cancel them


# The permission that extends an action from one's own jobs to everyone's.
EVERYONE = {
    JobAction.VIEW: f"{APP}.view_job",
    JobAction.CHANGE: f"{APP}.change_job",
    JobAction.DELETE: f"{APP}.delete_job",
    JobAction.RUN: f"{APP}.run_job",
    JobAction.PAUSE: f"{APP}.pause_job",
    JobAction.RETRY: f"{APP}.retry_execution",
    JobAction.CANCEL: f"{APP}.cancel_execution",
}
ADD_JOB = f"{APP}.add_job"
CONTROL_SCHEDULER = f"{APP}.control_scheduler"
VIEW_NODES = f"{APP}.view_schedulernode"
VIEW_TOKENS = f"{APP}.view_apitoken"
REVOKE_TOKENS = f"{APP}.change_apitoken"
VIEW_CALENDARS = f"{APP}.view_calendar"
ADD_SHARED_CALENDAR = f"{APP}.add_calendar"
CHANGE_CALENDARS = f"{APP}.change_calendar"
DELETE_CALENDARS = f"{APP}.delete_calendar"


# A scope that matches nothing (querysets turn it into .none()).
NOTHING = Q(pk__in=[])


class Forbidden(PermissionDenied):
    """The actor may see the object but not do this to it. The message says what and why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def signed_in(user) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and getattr(user, "is_active", False))


# Jobs and their runs ----------------------------------------------------------------------


def job_scope(user, action: JobAction) -> Q | None:
    """The jobs `user` may do `action` to, as a filter; None means every job, NOTHING none."""
    if not signed_in(user):
        return NOTHING
    if user.has_perm(EVERYONE[action]):
        return None
    return Q(owner=user)


def execution_scope(user, action: JobAction) -> Q | None:
    """Runs of the jobs `user` may do `action` to, as a filter; None means every run, NOTHING
    none. Runs of deleted jobs belong to no one: only the permission over everyone's jobs
    reaches them."""
    if not signed_in(user):
        return NOTHING
    if user.has_perm(EVERYONE[action]):
        return None
    return Q(job__owner=user)


def may(user, action: JobAction, job) -> bool:
    """May `user` do `action` to `job` (a Job, or None for a run whose job was deleted)?"""
    if not signed_in(user):
        return False
    if job is not None and job.owner_id is not None and job.owner_id == user.pk:
        return True
    return user.has_perm(EVERYONE[action])


def may_execution(user, action: JobAction, execution) -> bool:
    return may(user, action, execution.job if execution.job_id else None)


def may_create_jobs(user) -> bool:
    if not signed_in(user):
        return False
    return bool(tempora_settings.OPEN_JOB_CREATION) or user.has_perm(ADD_JOB)


def may_own(user, owner) -> bool:
    """May `user` make `owner` (a user or None, for no owner) the owner of a job?"""
    if owner is not None and getattr(owner, "pk", owner) == user.pk:
        return True
    return user.has_perm(EVERYONE[JobAction.CHANGE])


def require_jobs(user, action: JobAction, jobs: Iterable) -> None:
    """Refuse the whole action, naming the jobs, if `user` may not do `action` to any of them."""
    _refuse(action, {job.name for job in jobs if not may(user, action, job)})


def require_executions(user, action: JobAction, executions: Iterable) -> None:
    """As require_jobs, for runs (named by their job)."""
    _refuse(action, {run.job_name for run in executions if not may_execution(user, action, run)})


def _refuse(action: JobAction, names: set[str]) -> None:
    if names:
        shown = sorted(names)
        raise Forbidden(
            gettext("You may not %(action)s these jobs: %(names)s. Nothing was changed.")
            % {
                "action": action_verb(action),
                "names": ", ".join(shown[:20]) + (" …" if len(shown) > 20 else ""),
            }
        )


def action_verb(action: JobAction) -> str:
    return {
        JobAction.VIEW: gettext("view"),
        JobAction.CHANGE: gettext("change"),
        JobAction.DELETE: gettext("delete"),
        JobAction.RUN: gettext("run"),
        JobAction.PAUSE: gettext("pause or resume"),
        JobAction.RETRY: gettext("retry the runs of"),
        JobAction.CANCEL: gettext("cancel the runs of"),
    }[action]


# Tasks ------------------------------------------------------------------------------------


def may_schedule_task(user, task: str) -> bool:
    """May `user` (None: the system, e.g. a code-defined job) schedule the task named `task`?
    Unknown tasks are the registry's business (validation), not a permission question."""
    if user is None or task not in registry:
        return True
    permission = registry.get(task).permission
    return not permission or (signed_in(user) and user.has_perm(permission))


def run_refusal(owner_id: int | None, task: str) -> str:
    """Why a run of `task` for the job owner `owner_id` must not start ("" if it may): the
    owner may have lost the task's permission since the job was saved. Asked by the
    scheduler and the Celery worker right before the body runs; only tasks that declare a
    permission cost a query."""
    if owner_id is None or task not in registry or not registry.get(task).permission:
        return ""
    permission = registry.get(task).permission
    owner = get_user_model().objects.filter(pk=owner_id).first()
    if owner is not None and owner.is_active and owner.has_perm(permission):
        return ""
    return gettext(
        "Not run: the job's owner %(owner)s may no longer schedule %(task)s (it needs the permission %(permission)s)."
    ) % {"owner": owner or f"#{owner_id}", "task": task, "permission": permission}


def tasks_for(user) -> list:
    """The registered tasks `user` may schedule (the API's task list, the form's dropdown)."""
    return [
        info for info in registry.all() if not info.permission or (signed_in(user) and user.has_perm(info.permission))
    ]


# The scheduler, tokens, calendars ----------------------------------------------------------


def may_control_scheduler(user) -> bool:
    return signed_in(user) and user.has_perm(CONTROL_SCHEDULER)


def may_view_nodes(user) -> bool:
    """Node names, hosts and PIDs, and /metrics: what an attacker would like to map."""
    return signed_in(user) and user.has_perm(VIEW_NODES)


def tokens_for(user, tokens: QuerySet) -> QuerySet:
    if not signed_in(user):
        return tokens.none()
    return tokens if user.has_perm(VIEW_TOKENS) else tokens.filter(user=user)


def may_revoke_token(user, token) -> bool:
    return signed_in(user) and (token.user_id == user.pk or user.has_perm(REVOKE_TOKENS))


def calendar_scope(user, *, change: bool = False) -> Q | None:
    """Calendars `user` may see (own and shared) or change (own), as a filter; None: all."""
    if not signed_in(user):
        return NOTHING
    if user.has_perm(CHANGE_CALENDARS if change else VIEW_CALENDARS):
        return None
    return Q(owner=user) if change else Q(owner=user) | Q(owner__isnull=True)


def may_change_calendar(user, calendar, *, delete: bool = False) -> bool:
    if not signed_in(user):
        return False
    if calendar.owner_id is not None and calendar.owner_id == user.pk:
        return True
    return user.has_perm(DELETE_CALENDARS if delete else CHANGE_CALENDARS)


def may_own_calendar(user, owner) -> bool:
    """Own calendars for everyone; shared (no owner) or someone else's need the permission."""
    if owner is not None and getattr(owner, "pk", owner) == user.pk:
        return True
    return user.has_perm(ADD_SHARED_CALENDAR if owner is None else CHANGE_CALENDARS)


# The shipped groups -----------------------------------------------------------------------

_VIEWER = [EVERYONE[JobAction.VIEW], VIEW_CALENDARS]
_OPERATOR = [
    *_VIEWER,
    EVERYONE[JobAction.RUN],
    EVERYONE[JobAction.PAUSE],
    EVERYONE[JobAction.RETRY],
    EVERYONE[JobAction.CANCEL],
    VIEW_NODES,
]
_EDITOR = [
    *_OPERATOR,
    ADD_JOB,
    EVERYONE[JobAction.CHANGE],
    EVERYONE[JobAction.DELETE],
    ADD_SHARED_CALENDAR,
    CHANGE_CALENDARS,
    DELETE_CALENDARS,
]
_ADMIN = [
    *_EDITOR,
    CONTROL_SCHEDULER,
    VIEW_TOKENS,
    REVOKE_TOKENS,
    f"{APP}.use_network_tasks",
    f"{APP}.use_mail_tasks",
    f"{APP}.use_file_tasks",
]
# Group name → permissions. Created on migrate when missing (apps.py); `manage.py tempora_roles
# --reset` puts them back as shipped.
ROLES = {
    "Tempora viewers": _VIEWER,
    "Tempora operators": _OPERATOR,
    "Tempora editors": _EDITOR,
    "Tempora admins": _ADMIN,
}


def ensure_roles(*, reset: bool = False, using: str = "default") -> list[str]:
    """Create the shipped groups that are missing (with `reset`, give every one exactly its
    shipped permissions); answers the names of the groups created or reset. A group an admin
    changed is left alone unless `reset`."""
    touched = []
    for name, codenames in ROLES.items():
        group, created = Group.objects.using(using).get_or_create(name=name)
        if not (created or reset):
            continue
        wanted = [codename.split(".", 1) for codename in codenames]
        permissions = Permission.objects.using(using).filter(
            content_type__app_label__in={app for app, _ in wanted}, codename__in={code for _, code in wanted}
        )
        group.permissions.set(permissions)
        touched.append(name)
    return touched
