"""The queries the scheduler and the interfaces share, named after what they ask."""

from __future__ import annotations

import json
from datetime import datetime

from django.apps import apps
from django.db import models
from django.db.models import Count, Exists, OuterRef, Prefetch, Q
from django.utils import timezone

from scheduler_app import permissions

# How many finished runs a job list shows per job ("last results").
RECENT_RESULTS = 5


def _scoped(queryset: models.QuerySet, scope: Q | None) -> models.QuerySet:
    if scope is None:
        return queryset
    return queryset.none() if scope is permissions.NOTHING else queryset.filter(scope)


class CalendarQuerySet(models.QuerySet):
    def visible_to(self, user) -> CalendarQuerySet:
        """Their own and the shared ones (no owner); every one with view_calendar."""
        return _scoped(self, permissions.calendar_scope(user))

    def editable_by(self, user) -> CalendarQuerySet:
        """Their own; every one (shared ones included) with change_calendar."""
        return _scoped(self, permissions.calendar_scope(user, change=True))


def recent_results(count: int = RECENT_RESULTS) -> Prefetch:
    """Each job's last `count` finished runs, newest first, as `job.recent_results`: one query
    for a whole page of jobs (a window over the runs), whatever their history's length."""
    Execution = apps.get_model("scheduler_app", "Execution")  # models.py imports this module
    runs = (
        Execution.objects.filter(status__in=Execution.FINISHED)
        .order_by("-scheduled_for", "-id")
        .only("id", "job_id", "status", "reason", "attempt", "scheduled_for", "started_at", "finished_at")
    )
    return Prefetch("executions", queryset=runs[:count], to_attr="recent_results")


class JobQuerySet(models.QuerySet):
    def with_recent_results(self, count: int = RECENT_RESULTS) -> JobQuerySet:
        """See recent_results: what the console's jobs list and the API's jobs show."""
        return self.prefetch_related(recent_results(count))

    def active(self) -> JobQuerySet:
        return self.filter(paused=False)

    def due(self, now: datetime) -> JobQuerySet:
        """Unpaused jobs whose next run has come (index job_next_run_active)."""
        return self.filter(paused=False, next_run_at__lte=now)

    def changed_since(self, since: datetime) -> JobQuerySet:
        """Jobs that services wrote since `since` (index job_updated_at): the sync's question.

        Unordered: the default ordering by name made SQLite walk the name index through every
        row (30 ms at 100,000 jobs, twice a second) instead of seeking the few changed ones.
        """
        return self.filter(updated_at__gt=since).order_by()

    def with_tag(self, tag: str) -> JobQuerySet:
        # Tags are validated slugs stored as a JSON list, so the quoted tag appears in the
        # JSON text only as a whole element. This works the same on SQLite and PostgreSQL,
        # where JSON containment lookups differ.
        return self.filter(tags__icontains=json.dumps(tag.strip().lower()))

    def visible_to(self, user) -> JobQuerySet:
        """Their own jobs; every job with view_job; none for anonymous visitors."""
        return _scoped(self, permissions.job_scope(user, permissions.JobAction.VIEW))

    def allowing(self, user, action: permissions.JobAction) -> JobQuerySet:
        """The jobs `user` may do `action` to (scheduler_app/permissions.py)."""
        return _scoped(self, permissions.job_scope(user, action))

    def in_group(self, group: str) -> JobQuerySet:
        return self.filter(group=group)

    def in_state(self, state: str, *, now: datetime | None = None) -> JobQuerySet:
        """Jobs whose Job.schedule_state is `state` at `now`.

        The model decides (one definition); the database only narrows the candidates by the
        paused flag, which the state puts first. It computes every candidate's next run, so it
        costs a moment per thousand jobs.
        """
        now = now or timezone.now()
        candidates = self.filter(paused=(state == "paused"))
        rows = list(candidates.prefetch_related("triggers__calendar"))
        self.model.count_runs_used(rows)
        matched = [job.pk for job in rows if job.schedule_state(now=now).value == state]
        # The shorter list of ids: the database bounds how many values one query may carry.
        if len(matched) <= len(rows) // 2:
            return self.filter(pk__in=matched)
        matched_set = set(matched)
        return candidates.exclude(pk__in=[job.pk for job in rows if job.pk not in matched_set])


class ExecutionQuerySet(models.QuerySet):
    def claimable(self, now: datetime) -> ExecutionQuerySet:
        """Rows waiting to start whose time has come, oldest first (index execution_claimable)."""
        return self.filter(status="scheduled", run_after__lte=now).order_by("run_after")

    def cancel_requested(self) -> ExecutionQuerySet:
        """Queued or running rows someone asked to cancel, which a scheduler or worker has yet
        to stop (index execution_cancel_requested)."""
        return self.filter(status__in=["queued", "running"], cancel_requested_at__isnull=False).order_by()

    def running(self) -> ExecutionQuerySet:
        return self.filter(status="running")

    def active_counts(self) -> dict[str, int]:
        """{scheduled, queued, running: count} now (index execution_status_recent: a few rows)."""
        counts = dict.fromkeys(["scheduled", "queued", "running"], 0)
        rows = self.filter(status__in=list(counts)).order_by().values_list("status").annotate(n=Count("id"))
        counts.update(dict(rows))
        return counts

    def untallied(self) -> ExecutionQuerySet:
        """Finished runs the statistics' fold has not counted yet (index execution_untallied)."""
        finished = ["succeeded", "failed", "timed_out", "cancelled", "lost", "skipped", "missed"]
        return self.filter(tallied_at__isnull=True, status__in=finished)

    def active(self) -> ExecutionQuerySet:
        return self.filter(status__in=["scheduled", "queued", "running"])

    def dead_letters(self) -> ExecutionQuerySet:
        """Failed with no retries left and not yet acknowledged."""
        return self.filter(dead_letter=True, acknowledged_at__isnull=True)

    def visible_to(self, user) -> ExecutionQuerySet:
        """Runs of the jobs `user` sees (runs of deleted jobs: only with view_job)."""
        return _scoped(self, permissions.execution_scope(user, permissions.JobAction.VIEW))

    def listed_for(self, user) -> ExecutionQuerySet:
        """visible_to(user) for the run-history lists: the same runs, with the owner's scope as
        "its job is one they see" (a correlated EXISTS on the job's primary key) instead of a join.

        Given the join, SQLite's planner starts from the owner's jobs and sorts all their runs
        (0.3 s at a million runs); given EXISTS, it walks the list's ordering index and stops
        at a page (tests/test_query_plans.py).
        """
        scope = permissions.job_scope(user, permissions.JobAction.VIEW)
        if scope is None or scope is permissions.NOTHING:
            return _scoped(self, scope)
        Job = apps.get_model("scheduler_app", "Job")  # models.py imports this module
        return self.filter(Exists(Job.objects.filter(scope, pk=OuterRef("job_id"))))

    def counting_against_max_runs(self) -> ExecutionQuerySet:
        """Scheduled runs that use up a job's max_runs: started or about to, not missed or skipped."""
        return self.filter(reason__in=["schedule", "catch_up"]).exclude(status__in=["missed", "skipped", "cancelled"])

    def failures(self) -> ExecutionQuerySet:
        return self.filter(Q(status__in=["failed", "timed_out", "lost"]))
