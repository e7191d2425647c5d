"""FastScheduler's documented API under /scheduler/api/: request and response shapes, errors.

Its "Complete API Usage Example" runs against a live server in test_fastscheduler_example.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from scheduler_app import services
from scheduler_app.models import Execution, Job, SchedulerNode


def create(client, **fields):
    body = {
        "func_name": "data_sync_task",
        "func_module": "dev.test_app",
        "schedule_type": "interval",
        "schedule_config": {"interval": 30, "unit": "seconds"},
        **fields,
    }
    return client.post("/scheduler/api/jobs", body, format="json")


def job_of(response) -> Job:
    return Job.objects.get(pk=int(response.json()["job_id"].removeprefix("job_")))


# Creating ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_answers_201_with_the_job_id(as_owner, fastscheduler_tasks, owner):
    response = create(
        as_owner,
        args=["Real-time Sync"],
        group="data_sync",
        max_retries=5,
        timeout=60.0,
        timezone="Asia/Shanghai",
        enabled=True,
        kwargs={"priority": "high"},
        job_name="sync job",
    )
    assert response.status_code == 201
    assert response.json() == {
        "success": True,
        "message": "Job created successfully",
        "job_id": response.json()["job_id"],
    }
    job = job_of(response)
    assert (job.name, job.task, job.group, job.max_retries, job.timeout, job.timezone, job.owner) == (
        "sync job",
        "dev.test_app.data_sync_task",
        "data_sync",
        5,
        60,
        "Asia/Shanghai",
        owner,
    )
    assert job.triggers.get().interval_seconds == 30


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("schedule_type", "config", "kind", "expression", "preset"),
    [
        ("interval", {"interval": 5, "unit": "minutes"}, "interval", "", ""),
        ("interval", {"interval": 2, "unit": "hours"}, "interval", "", ""),
        ("daily", {"time": "02:00"}, "cron", "0 2 * * *", "daily"),
        ("weekly", {"time": "10:00", "days": [0, 4]}, "cron", "0 10 * * 1,5", "weekly"),
        ("weekly", {"time": "00:00", "days": [6]}, "cron", "0 0 * * 0", "weekly"),
        ("hourly", {"time": "0"}, "cron", "0 * * * *", "hourly"),
        ("hourly", {"time": "30"}, "cron", "30 * * * *", "hourly"),
        ("hourly", {"time": "12:45"}, "cron", "45 * * * *", "hourly"),
        ("cron", {"expression": "*/15 * * * *"}, "cron", "*/15 * * * *", ""),
        ("once", {"delay": 10, "unit": "seconds"}, "once", "", ""),
        ("once", {"delay": 1, "unit": "minutes"}, "once", "", ""),
    ],
)
def test_every_documented_schedule_type(as_owner, fastscheduler_tasks, schedule_type, config, kind, expression, preset):
    response = create(as_owner, schedule_type=schedule_type, schedule_config=config)
    assert response.status_code == 201, response.json()
    trigger = job_of(response).triggers.get()
    assert (trigger.kind, trigger.cron_expression, trigger.preset) == (kind, expression, preset)
    if schedule_type == "interval":
        assert trigger.interval_seconds == config["interval"] * {"minutes": 60, "hours": 3600}[config["unit"]]
    if schedule_type == "once":
        expected = timezone.now() + timedelta(seconds=config["delay"] * (60 if config["unit"] == "minutes" else 1))
        assert abs((trigger.run_at - expected).total_seconds()) < 5


@pytest.mark.django_db
def test_an_unregistered_function_is_the_documented_400(as_owner):
    response = create(as_owner, func_name="my_task")
    assert response.status_code == 400
    assert response.json() == {"detail": "Failed to create job. Make sure function dev.test_app.my_task is registered."}


@pytest.mark.django_db
def test_an_unsupported_schedule_type_is_the_documented_400(as_owner, fastscheduler_tasks):
    response = create(as_owner, schedule_type="invalid_type")
    assert response.status_code == 400
    assert response.json() == {"detail": "Unsupported schedule_type: invalid_type"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"schedule_type": "cron", "schedule_config": {"expression": "99 * * * *"}}, "schedule_config.expression"),
        ({"schedule_type": "cron", "schedule_config": {}}, "expression"),
        ({"schedule_config": {"interval": 0, "unit": "seconds"}}, "schedule_config.interval"),
        ({"schedule_config": {"interval": 5, "unit": "weeks"}}, "schedule_config.unit"),
        ({"schedule_type": "daily", "schedule_config": {"time": "25:00"}}, "schedule_config.time"),
        ({"schedule_type": "weekly", "schedule_config": {"time": "10:00", "days": [9]}}, "schedule_config.days"),
        ({"timezone": "Mars/Base"}, "timezone"),
        ({"args": "not a list"}, "args"),
        ({"timeout": -1}, "timeout"),
        ({"func_name": None}, "func_name"),
        ({"schedule_config": "every minute"}, "schedule_config"),
    ],
)
def test_invalid_input_is_a_400_detail_naming_the_field(as_owner, fastscheduler_tasks, fields, words):
    response = create(as_owner, **fields)
    assert response.status_code == 400
    assert words in response.json()["detail"]


@pytest.mark.django_db
def test_the_same_function_twice_gets_two_jobs(as_owner, fastscheduler_tasks):
    first, second = create(as_owner), create(as_owner)
    assert first.status_code == second.status_code == 201
    assert [job_of(first).name, job_of(second).name] == ["data_sync_task", "data_sync_task (2)"]
    taken = create(as_owner, job_name="data_sync_task")
    assert taken.status_code == 400 and "job_name" in taken.json()["detail"]


# Reading ----------------------------------------------------------------------------------

LIST_KEYS = {
    "job_id",
    "func_name",
    "group",
    "status",
    "schedule",
    "next_run",
    "next_run_in",
    "run_count",
    "retry_count",
    "paused",
    "last_run",
}


@pytest.mark.django_db
def test_jobs_list_and_group_filter(as_owner, fastscheduler_tasks):
    create(as_owner, group="data_sync")
    create(as_owner, schedule_type="daily", schedule_config={"time": "09:30"}, timezone="Asia/Shanghai")
    jobs = as_owner.get("/scheduler/api/jobs").json()["jobs"]
    assert len(jobs) == 2 and LIST_KEYS <= set(jobs[0])
    schedules = {job["schedule"] for job in jobs}
    assert schedules == {"Every 30 seconds", "Daily at 09:30 (Asia/Shanghai)"}
    assert {job["status"] for job in jobs} == {"scheduled"}
    grouped = as_owner.get("/scheduler/api/jobs?group=data_sync").json()["jobs"]
    assert [job["group"] for job in grouped] == ["data_sync"]
    assert 0 < grouped[0]["next_run_in"] <= 60 and len(grouped[0]["next_run"]) == 19


@pytest.mark.django_db
def test_one_job_in_its_envelope(as_owner, fastscheduler_tasks):
    job_id = create(as_owner, timeout=60.0).json()["job_id"]
    job = as_owner.get(f"/scheduler/api/jobs/{job_id}").json()["job"]
    assert LIST_KEYS | {"timeout"} <= set(job)
    assert (job["job_id"], job["func_name"], job["timeout"], job["paused"]) == (job_id, "data_sync_task", 60.0, False)
    assert job["schedule_config"] == {"interval": 30, "unit": "seconds"}


@pytest.mark.django_db
def test_an_unknown_job_is_the_documented_404(as_owner):
    response = as_owner.get("/scheduler/api/jobs/job_999")
    assert response.status_code == 404
    assert response.json() == {"error": "Job not found", "job_id": "job_999"}
    for method, suffix in (("put", ""), ("delete", ""), ("post", "/pause"), ("post", "/run"), ("post", "/cancel")):
        assert getattr(as_owner, method)(f"/scheduler/api/jobs/nonsense{suffix}", {}, format="json").status_code == 404


# Updating and verbs ------------------------------------------------------------------------


@pytest.mark.django_db
def test_update_changes_only_what_is_given(as_owner, fastscheduler_tasks):
    job_id = create(as_owner, schedule_config={"interval": 5, "unit": "minutes"}, max_retries=2).json()["job_id"]
    response = as_owner.put(
        f"/scheduler/api/jobs/{job_id}",
        {"schedule_config": {"interval": 60, "unit": "seconds"}, "timeout": 120.0},
        format="json",
    )
    assert response.json() == {"success": True, "message": f"Job {job_id} updated successfully"}
    job = Job.objects.get(pk=int(job_id[4:]))
    assert (job.triggers.get().interval_seconds, job.timeout, job.max_retries) == (60, 120, 2)
    as_owner.put(f"/scheduler/api/jobs/{job_id}", {"enabled": False}, format="json")
    job.refresh_from_db()
    assert job.paused is True


@pytest.mark.django_db
def test_update_a_daily_time_or_a_cron_expression(as_owner, fastscheduler_tasks):
    daily = create(as_owner, schedule_type="daily", schedule_config={"time": "02:00"}).json()["job_id"]
    as_owner.put(f"/scheduler/api/jobs/{daily}", {"schedule_config": {"time": "03:00"}}, format="json")
    assert Job.objects.get(pk=int(daily[4:])).triggers.get().cron_expression == "0 3 * * *"
    cron = create(as_owner, schedule_type="cron", schedule_config={"expression": "*/5 * * * *"}).json()["job_id"]
    as_owner.put(f"/scheduler/api/jobs/{cron}", {"schedule_config": {"expression": "*/10 * * * *"}}, format="json")
    assert Job.objects.get(pk=int(cron[4:])).triggers.get().cron_expression == "*/10 * * * *"
    bad = as_owner.put(f"/scheduler/api/jobs/{cron}", {"schedule_config": {"expression": "nope"}}, format="json")
    assert bad.status_code == 400 and "expression" in bad.json()["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("verb", "message", "paused"),
    [
        ("pause", "paused", True),
        ("disable", "disabled", True),
        ("resume", "resumed", False),
        ("enable", "enabled", False),
    ],
)
def test_pause_resume_enable_disable(as_owner, fastscheduler_tasks, verb, message, paused):
    job_id = create(as_owner, enabled=not paused).json()["job_id"]
    response = as_owner.post(f"/scheduler/api/jobs/{job_id}/{verb}")
    assert response.json() == {"success": True, "message": f"Job {job_id} {message}"}
    assert Job.objects.get(pk=int(job_id[4:])).paused is paused


@pytest.mark.django_db
def test_run_cancel_and_delete(as_owner, fastscheduler_tasks):
    job_id = create(as_owner).json()["job_id"]
    run = as_owner.post(f"/scheduler/api/jobs/{job_id}/run").json()
    assert run["message"] == f"Job {job_id} triggered"
    assert Execution.objects.get(pk=run["execution_id"]).reason == "manual"
    assert as_owner.post(f"/scheduler/api/jobs/{job_id}/cancel").json()["message"] == f"Job {job_id} cancelled"
    assert not Job.objects.exists()
    other = create(as_owner).json()["job_id"]
    assert as_owner.delete(f"/scheduler/api/jobs/{other}").json() == {
        "success": True,
        "message": f"Job {other} deleted successfully",
    }


# History, dead letters, groups, status --------------------------------------------------------------


@pytest.fixture
def history(make_job, owner):
    job = make_job(name="sync", owner=owner, task="tempora.noop")
    now = timezone.now()
    for minutes, status in ((30, "succeeded"), (20, "failed"), (10, "succeeded")):
        at = now - timedelta(minutes=minutes)
        Execution.objects.create(
            job=job,
            job_name="sync",
            scheduled_for=at,
            run_after=at,
            started_at=at,
            finished_at=at + timedelta(seconds=3),
            status=status,
            error="ValueError: bad" if status == "failed" else "",
            dead_letter=status == "failed",
        )
    return job


@pytest.mark.django_db
def test_history(as_owner, history):
    entries = as_owner.get("/scheduler/api/history").json()["history"]
    assert [e["status"] for e in entries] == ["completed", "failed", "completed"]  # oldest first, as FastScheduler
    assert set(entries[0]) >= {
        "job_id",
        "func_name",
        "status",
        "timestamp",
        "error",
        "run_count",
        "retry_count",
        "execution_time",
        "timestamp_readable",
    }
    assert (
        entries[1]["error"] == "ValueError: bad"
        and entries[1]["execution_time"] == 3.0
        and entries[0]["func_name"] == "noop"
    )
    assert len(as_owner.get("/scheduler/api/history?limit=2").json()["history"]) == 2
    assert len(as_owner.get("/scheduler/api/history?func_name=noop").json()["history"]) == 3
    assert as_owner.get("/scheduler/api/history?func_name=other").json()["history"] == []


@pytest.mark.django_db
def test_dead_letters(as_owner, history):
    body = as_owner.get("/scheduler/api/dead-letters").json()
    assert body["total"] == 1 and body["dead_letters"][0]["status"] == "failed"
    assert as_owner.delete("/scheduler/api/dead-letters").json() == {"success": True, "cleared": 1}
    assert as_owner.get("/scheduler/api/dead-letters").json() == {"dead_letters": [], "total": 0}


@pytest.mark.django_db
def test_groups(as_owner, fastscheduler_tasks):
    create(as_owner, group="data_sync")
    create(as_owner, group="data_sync")
    create(as_owner, group="notification")
    assert as_owner.get("/scheduler/api/groups").json() == {"groups": ["data_sync", "notification"]}
    listed = as_owner.get("/scheduler/api/groups/data_sync/jobs").json()
    assert listed["group"] == "data_sync" and len(listed["jobs"]) == 2
    assert as_owner.post("/scheduler/api/groups/data_sync/pause").json() == {
        "success": True,
        "paused": 2,
        "message": "Paused 2 job(s) in group: data_sync",
    }
    assert as_owner.post("/scheduler/api/groups/data_sync/resume").json()["resumed"] == 2
    assert as_owner.delete("/scheduler/api/groups/data_sync").json() == {
        "success": True,
        "cancelled": 2,
        "message": "Cancelled 2 job(s) in group: data_sync",
    }
    assert as_owner.post("/scheduler/api/groups/nothing/pause").json()["paused"] == 0


@pytest.mark.django_db
def test_status(as_owner, history):
    body = as_owner.get("/scheduler/api/status").json()
    assert body["running"] is False  # no runscheduler is alive
    stats = body["statistics"]
    assert (stats["total_runs"], stats["total_failures"], stats["active_jobs"]) == (3, 1, 1)
    assert stats["per_job"] == {"sync": {"completed": 2, "failed": 1, "total_runs": 3}}
    SchedulerNode.objects.create(name="n", hostname="h", pid=1, state="running", role="leader")
    services.scheduler_resume()
    from scheduler_app.models import SchedulerState

    SchedulerState.objects.update(leader="n", lease_expires_at=timezone.now() + timedelta(seconds=5))
    body = as_owner.get("/scheduler/api/status").json()
    assert body["running"] is True and body["statistics"]["uptime_seconds"] >= 0
