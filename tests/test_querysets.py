"""querysets.py: the questions the scheduler and the interfaces ask of the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection

from scheduler_app.models import Calendar, Execution, Job

pytestmark = pytest.mark.django_db


def planned(job: Job, next_run_at: datetime | None) -> Job:
    Job.objects.filter(pk=job.pk).update(next_run_at=next_run_at)
    return job


def stamped(job: Job, updated_at: datetime) -> Job:
    Job.objects.filter(pk=job.pk).update(updated_at=updated_at)
    return job


def make_execution(job: Job, **fields) -> Execution:
    scheduled_for = fields.pop("scheduled_for", datetime(2026, 3, 1, 11, 0, tzinfo=UTC))
    fields.setdefault("run_after", scheduled_for)
    return Execution.objects.create(job=job, job_name=job.name, scheduled_for=scheduled_for, **fields)


def names(queryset) -> set[str]:
    return set(queryset.values_list("name", flat=True))


# Job.objects.due ---------------------------------------------------------------------------


def test_it_finds_a_job_whose_next_run_has_come(make_job, now):
    planned(make_job(name="late"), now - timedelta(minutes=1))
    planned(make_job(name="on-time"), now)
    assert names(Job.objects.due(now)) == {"late", "on-time"}


def test_it_does_not_find_a_job_whose_next_run_is_ahead(make_job, now):
    planned(make_job(name="later"), now + timedelta(seconds=1))
    assert not Job.objects.due(now).exists()


def test_it_does_not_find_a_paused_job_that_is_due(make_job, now):
    planned(make_job(name="paused", paused=True), now - timedelta(minutes=1))
    assert not Job.objects.due(now).exists()


def test_it_does_not_find_a_job_with_no_next_run(make_job, now):
    planned(make_job(name="finished"), None)
    assert not Job.objects.due(now).exists()


# Job.objects.changed_since --------------------------------------------------------------------


def test_it_finds_jobs_written_after_an_instant(make_job, now):
    stamped(make_job(name="fresh"), now + timedelta(seconds=1))
    stamped(make_job(name="stale"), now - timedelta(seconds=1))
    assert names(Job.objects.changed_since(now)) == {"fresh"}


def test_it_does_not_find_a_job_written_at_the_instant_itself(make_job, now):
    stamped(make_job(name="same"), now)
    assert not Job.objects.changed_since(now).exists()


# Job.objects.with_tag ---------------------------------------------------------------------


def test_it_finds_jobs_with_a_tag(make_job):
    make_job(name="load", tags=["nightly", "etl"])
    make_job(name="report", tags=["reports"])
    assert names(Job.objects.with_tag("etl")) == {"load"}


def test_it_matches_whole_tags_only(make_job):
    make_job(name="etl2-job", tags=["etl2"])
    make_job(name="pre-etl", tags=["pre-etl"])
    make_job(name="etl.daily", tags=["etl.daily"])
    assert not Job.objects.with_tag("etl").exists()


def test_it_does_not_match_part_of_a_tag(make_job):
    make_job(name="load", tags=["etl"])
    assert not Job.objects.with_tag("et").exists()


def test_it_does_not_treat_underscore_as_a_wildcard(make_job):
    make_job(name="load", tags=["etlx"])
    assert not Job.objects.with_tag("et_x").exists()


def test_it_reads_the_tag_asked_for_in_lowercase(make_job):
    make_job(name="load", tags=["etl"])
    assert names(Job.objects.with_tag(" ETL ")) == {"load"}


def test_it_finds_no_job_for_a_tag_nobody_uses(make_job):
    make_job(name="untagged")
    assert not Job.objects.with_tag("etl").exists()


# Job.objects.visible_to ---------------------------------------------------------------------


def test_it_shows_an_owner_their_own_jobs(make_job, owner, outsider):
    make_job(name="mine", owner=owner)
    make_job(name="theirs", owner=outsider)
    make_job(name="nobodys")
    assert names(Job.objects.visible_to(owner)) == {"mine"}


def test_it_shows_an_outsider_nothing(make_job, owner, outsider):
    make_job(name="mine", owner=owner)
    assert not Job.objects.visible_to(outsider).exists()


def test_it_shows_staff_every_job(make_job, owner, outsider, team_admin):
    make_job(name="mine", owner=owner)
    make_job(name="theirs", owner=outsider)
    make_job(name="nobodys")
    assert names(Job.objects.visible_to(team_admin)) == {"mine", "theirs", "nobodys"}


def test_it_shows_an_anonymous_visitor_nothing(make_job):
    make_job(name="nobodys")
    assert not Job.objects.visible_to(AnonymousUser()).exists()


def test_it_shows_a_user_the_executions_of_their_own_jobs(make_job, owner, outsider, team_admin):
    mine = make_execution(make_job(owner=owner))
    make_execution(make_job(owner=outsider))
    assert list(Execution.objects.visible_to(owner)) == [mine]
    assert Execution.objects.visible_to(team_admin).count() == 2


# Execution.objects.claimable --------------------------------------------------------------------


def test_it_finds_scheduled_runs_whose_time_has_come(make_job, now):
    job = make_job()
    due = make_execution(job, scheduled_for=now - timedelta(minutes=1))
    exactly = make_execution(job, scheduled_for=now)
    assert set(Execution.objects.claimable(now)) == {due, exactly}


def test_it_does_not_find_a_retry_that_waits_for_its_backoff(make_job, now):
    make_execution(make_job(), scheduled_for=now - timedelta(minutes=5), run_after=now + timedelta(seconds=30))
    assert not Execution.objects.claimable(now).exists()


@pytest.mark.parametrize("status", ["queued", "running", "succeeded", "failed", "cancelled"])
def test_it_does_not_find_a_run_that_is_no_longer_waiting(make_job, now, status):
    make_execution(make_job(), scheduled_for=now - timedelta(minutes=1), status=status)
    assert not Execution.objects.claimable(now).exists()


# Execution.objects.dead_letters -----------------------------------------------------------------


def test_it_finds_unacknowledged_dead_letters(make_job, now):
    job = make_job()
    dead = make_execution(job, status="failed", dead_letter=True)
    make_execution(job, status="failed", scheduled_for=now)
    assert list(Execution.objects.dead_letters()) == [dead]


def test_it_does_not_find_an_acknowledged_dead_letter(make_job, now):
    make_execution(make_job(), status="failed", dead_letter=True, acknowledged_at=now)
    assert not Execution.objects.dead_letters().exists()


def test_it_shows_an_anonymous_visitor_no_executions(make_job):
    make_execution(make_job())
    assert not Execution.objects.visible_to(AnonymousUser()).exists()


def test_the_sync_question_seeks_the_updated_at_index(now):
    # Ordered by name (the default), SQLite scanned every Job row twice a second.
    query = Job.objects.changed_since(now).values_list("pk", "updated_at")
    assert "ORDER BY" not in str(query.query)
    if connection.vendor == "sqlite":
        assert "job_updated_at" in query.explain()


def test_calendars_are_visible_when_own_or_shared_and_editable_only_when_own(owner, outsider, team_admin):
    own = Calendar.objects.create(name="own", owner=owner)
    shared = Calendar.objects.create(name="shared")
    theirs = Calendar.objects.create(name="theirs", owner=outsider)
    assert set(Calendar.objects.visible_to(owner)) == {own, shared}
    assert set(Calendar.objects.editable_by(owner)) == {own}
    assert (
        set(Calendar.objects.visible_to(team_admin))
        == set(Calendar.objects.editable_by(team_admin))
        == {own, shared, theirs}
    )
    assert not Calendar.objects.visible_to(AnonymousUser()).exists()
    assert not Calendar.objects.editable_by(AnonymousUser()).exists()
