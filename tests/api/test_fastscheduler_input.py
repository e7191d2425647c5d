"""FastScheduler's `once` and schedule_config refuse what would make a job that never fires, or
that silently runs on something else than asked: a 400 whose detail names the field."""

from __future__ import annotations

import pytest

from scheduler_app.models import Job
from tests.api.test_fastscheduler import create

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("config", "field"),
    [
        pytest.param({}, "schedule_config.delay", id="empty"),
        pytest.param("not a date", "schedule_config", id="not-a-date"),
        pytest.param({"run_at": "not a date"}, "schedule_config.run_at", id="run-at-not-a-date"),
        pytest.param({"run_at": "2026-02-30 00:00:00"}, "schedule_config.run_at", id="february-30"),
        pytest.param({"run_at": "9999-12-31 00:00:00"}, "schedule_config.run_at", id="year-9999"),
        pytest.param({"run_at": "2020-01-01 00:00:00"}, "schedule_config.run_at", id="in-the-past"),
        pytest.param({"delay": 0}, "schedule_config.delay", id="no-delay"),
        pytest.param({"delay": 10, "units": "minutes"}, "schedule_config.units", id="unknown-key"),
    ],
)
def test_a_once_that_would_never_fire_is_a_400_naming_the_field(as_owner, fastscheduler_tasks, config, field):
    response = create(as_owner, schedule_type="once", schedule_config=config)
    assert response.status_code == 400, response.json()
    assert field in response.json()["detail"]
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("schedule_type", "config", "field"),
    [
        ("interval", {"interval": 5, "units": "minutes"}, "schedule_config.units"),
        ("daily", {"time": "02:00", "timezone": "Asia/Tokyo"}, "schedule_config.timezone"),
        ("cron", {"expression": "*/5 * * * *", "seconds": True}, "schedule_config.seconds"),
    ],
)
def test_an_unknown_schedule_config_key_is_a_400_naming_it(as_owner, fastscheduler_tasks, schedule_type, config, field):
    response = create(as_owner, schedule_type=schedule_type, schedule_config=config)
    assert response.status_code == 400 and field in response.json()["detail"]


def test_an_update_to_a_once_that_would_never_fire_is_refused(as_owner, fastscheduler_tasks):
    job_id = create(as_owner, schedule_type="once", schedule_config={"delay": 60}).json()["job_id"]
    for config in ({"delay": 0}, {"run_at": "2020-01-01 00:00:00"}):
        response = as_owner.put(f"/scheduler/api/jobs/{job_id}", {"schedule_config": config}, format="json")
        assert response.status_code == 400 and "schedule_config" in response.json()["detail"]


def test_a_once_in_the_future_is_created(as_owner, fastscheduler_tasks):
    response = create(as_owner, schedule_type="once", schedule_config={"run_at": "2099-12-25 00:00:00"})
    assert response.status_code == 201
