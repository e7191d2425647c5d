"""/api/scheduler/, /api/stats/, /api/health/ and /metrics."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.db import OperationalError
from django.utils import timezone

from scheduler_app import services, tallies
from scheduler_app.models import Execution, SchedulerNode, SchedulerState

pytestmark = pytest.mark.django_db


@pytest.fixture
def nodes():
    now = timezone.now()
    leader = SchedulerNode.objects.create(
        name="host:1:leader",
        hostname="host",
        pid=1,
        role="leader",
        state="running",
        started_at=now - timedelta(hours=2),
        last_beat_at=now - timedelta(seconds=1),
    )
    SchedulerNode.objects.create(
        name="host:2:standby", hostname="host", pid=2, role="standby", state="running", last_beat_at=now
    )
    SchedulerNode.objects.create(
        name="host:3:dead",
        hostname="host",
        pid=3,
        role="standby",
        state="running",
        last_beat_at=now - timedelta(minutes=5),
    )
    SchedulerState.load()
    SchedulerState.objects.filter(pk=1).update(leader=leader.name, lease_expires_at=now + timedelta(seconds=8))
    return leader


def test_status(as_team_admin, nodes, make_job):
    make_job(paused=True)
    make_job()
    job = make_job()
    services.job_run_now(job=job)
    body = as_team_admin.get("/api/scheduler/").json()
    assert body["state"] == "running" and body["running"] is True and body["leader"] == "host:1:leader"
    assert {n["name"]: n["alive"] for n in body["nodes"]} == {
        "host:2:standby": True,
        "host:1:leader": True,
        "host:3:dead": False,
    }
    assert body["jobs"] == {"total": 3, "active": 2, "paused": 1}
    assert body["waiting_executions"] == 1 and body["running_executions"] == 0
    assert body["next_wakeup"] and 7100 < body["uptime_seconds"] < 7300
    assert body["config"]["max_workers"] == 10


def test_status_without_a_live_scheduler_says_stopped(as_team_admin):
    assert as_team_admin.get("/api/scheduler/").json()["state"] == "stopped"


def test_pause_resume_and_shutdown_write_the_state_row(as_team_admin, nodes):
    assert as_team_admin.post("/api/scheduler/pause/").json()["state"] == "paused"
    assert SchedulerState.load().paused is True
    assert as_team_admin.post("/api/scheduler/resume").json()["state"] == "running"
    response = as_team_admin.post("/api/scheduler/shutdown/")
    assert response.status_code == 202 and response.json()["shutdown_requested_at"]


def test_config_get_and_put(as_team_admin):
    assert as_team_admin.get("/api/scheduler/config/").json() == {
        "max_workers": 10,
        "misfire_grace_time": 60,
        "history_per_job": 1000,
        "history_days": 30,
    }
    body = as_team_admin.put("/api/scheduler/config/", {"max_workers": 4, "history_days": 7}, format="json").json()
    assert (body["max_workers"], body["history_days"], body["history_per_job"]) == (4, 7, 1000)
    assert SchedulerState.load().config == {"max_workers": 4, "history_days": 7}


@pytest.mark.parametrize("body", [{"max_workers": 0}, {"max_workers": "many"}, {"history_days": 99999}])
def test_config_refuses_bad_values_by_name(as_team_admin, body):
    response = as_team_admin.patch("/api/scheduler/config/", body, format="json")
    assert response.status_code == 400 and set(response.json()) == set(body)


# Stats -----------------------------------------------------------------------------------


def test_stats(as_owner, make_job, owner, outsider):
    now = timezone.now()
    mine, theirs = make_job(name="mine", owner=owner), make_job(name="theirs", owner=outsider)
    durations = [1, 2, 3, 4, 100]
    for index, seconds in enumerate(durations):
        start = now - timedelta(minutes=30 + index)
        Execution.objects.create(
            job=mine,
            job_name="mine",
            scheduled_for=start,
            run_after=start,
            started_at=start,
            finished_at=start + timedelta(seconds=seconds),
            status="succeeded" if index < 4 else "failed",
        )
    Execution.objects.create(
        job=theirs,
        job_name="theirs",
        scheduled_for=now,
        run_after=now,
        started_at=now - timedelta(seconds=9),
        finished_at=now,
        status="succeeded",
    )
    body = as_owner.get("/api/stats/").json()
    assert body["up_to_date"] is True
    assert body["totals"]["runs"] == 5 and body["totals"]["succeeded"] == 4 and body["totals"]["failed"] == 1
    assert body["success_rate"] == 0.8
    assert body["duration_seconds"]["p50"] == pytest.approx(3.0, rel=0.1)  # estimated from a histogram
    assert body["duration_seconds"]["max"] == 100.0 and body["duration_seconds"]["mean"] == 22.0
    assert body["duration_seconds"]["p99"] == 100.0  # never past the longest
    assert len(body["runs_per_hour"]) == 24 and sum(h["runs"] for h in body["runs_per_hour"]) == 5
    assert body["per_job"] == [
        {
            "job": mine.pk,
            "job_name": "mine",
            "runs": 5,
            "succeeded": 4,
            "failed": 1,
            "success_rate": 0.8,
            "mean_duration_seconds": 22.0,
            "last_finished_at": body["per_job"][0]["last_finished_at"],
        }
    ]
    assert as_owner.get("/api/stats/?days=0").status_code == 400
    # Counted into the tallies by the scheduler's fold, the figures are the same.
    assert tallies.fold_all(now=timezone.now()) == 6
    assert Execution.objects.filter(tallied_at__isnull=True).count() == 0
    again = as_owner.get("/api/stats/").json()
    again.pop("until"), body.pop("until")
    assert again == body


def test_stats_cost_a_fixed_number_of_queries(as_team_admin, make_job):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    now = timezone.now()

    def add_runs(n):
        job = make_job()
        for i in range(n):
            Execution.objects.create(
                job=job,
                job_name=job.name,
                scheduled_for=now - timedelta(seconds=i),
                run_after=now,
                started_at=now - timedelta(seconds=i + 1),
                finished_at=now,
                status="succeeded",
            )

    add_runs(2)
    as_team_admin.get("/api/stats/")  # warm-up: the user's permissions are read once, then cached on it
    with CaptureQueriesContext(connection) as few:
        as_team_admin.get("/api/stats/")
    for _ in range(5):
        add_runs(10)
    with CaptureQueriesContext(connection) as many:
        as_team_admin.get("/api/stats/")
    assert len(many) == len(few)


# Health ----------------------------------------------------------------------------------


def test_health_is_200_with_a_fresh_heartbeat(as_owner, nodes):
    response = as_owner.get("/api/health/")
    assert response.status_code == 200
    assert response.json()["status"] == "ok" and response.json()["alive_nodes"] == 2


def test_health_is_503_without_a_scheduler(as_owner):
    response = as_owner.get("/api/health/")
    assert response.status_code == 503
    assert "runscheduler" in response.json()["reason"]


def test_health_is_503_when_the_heartbeat_is_stale(as_owner):
    SchedulerNode.objects.create(
        name="old", hostname="h", pid=1, state="running", last_beat_at=timezone.now() - timedelta(minutes=2)
    )
    body = as_owner.get("/api/health/").json()
    assert body["scheduler"] == "unavailable" and "No scheduler heartbeat" in body["reason"]


def test_health_is_503_when_the_database_does_not_answer(as_owner, nodes):
    with mock.patch("scheduler_app.api.views.health.connection") as fake:
        fake.cursor.side_effect = OperationalError("connection refused")
        response = as_owner.get("/api/health/")
    assert response.status_code == 503
    assert response.json()["database"] == "unavailable"


# Metrics ----------------------------------------------------------------------------------


def test_metrics_in_prometheus_text_format(as_team_admin, nodes, make_job):
    job = make_job()
    now = timezone.now()
    Execution.objects.create(
        job=job,
        job_name=job.name,
        scheduled_for=now - timedelta(seconds=30),
        run_after=now,
        started_at=now - timedelta(seconds=28),
        finished_at=now - timedelta(seconds=20),
        status="succeeded",
    )
    response = as_team_admin.get("/metrics", HTTP_ACCEPT="application/openmetrics-text")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert 'tempora_executions{status="succeeded"} 1' in text
    assert 'tempora_jobs{state="active"} 1' in text
    assert 'tempora_scheduler_leader{node="host:1:leader"} 1' in text
    assert 'tempora_run_duration_seconds_bucket{le="15"} 1' in text
    assert 'tempora_run_duration_seconds_bucket{le="5"} 0' in text
    assert "tempora_run_duration_seconds_count 1" in text
    assert 'tempora_run_lag_seconds_bucket{le="5"} 1' in text
    assert "tempora_scheduler_up 1" in text
    for line in text.splitlines():
        assert line.startswith("#") or line.split(" ")[-1].replace(".", "").replace("e-", "").replace("-", "").isdigit()


def test_metrics_need_the_node_permission(as_owner):
    response = as_owner.get("/metrics")
    assert response.status_code == 403
    assert response.content.decode().startswith("# ")
