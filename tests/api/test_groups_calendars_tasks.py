"""/api/groups/, /api/calendars/ and /api/tasks/."""

from __future__ import annotations

import pytest

from scheduler_app import services
from scheduler_app.models import Calendar, Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def groups(make_job, owner, outsider):
    make_job(name="e1", owner=owner, group="etl")
    make_job(name="e2", owner=owner, group="etl", paused=True)
    make_job(name="m1", owner=owner, group="mail")
    make_job(name="theirs", owner=outsider, group="etl")


def test_groups_with_their_counts(as_owner, groups):
    body = as_owner.get("/api/groups/").json()
    assert [(g["name"], g["jobs"], g["active"], g["paused"]) for g in body] == [("etl", 2, 1, 1), ("mail", 1, 1, 0)]
    one = as_owner.get("/api/groups/etl/").json()
    assert one["name"] == "etl" and one["jobs"] == 2 and one["next_run_at"]


def test_team_admins_see_every_job_of_a_group(as_team_admin, groups):
    assert as_team_admin.get("/api/groups/etl/").json()["jobs"] == 3


def test_pause_and_resume_a_group_answer_how_many_changed(as_owner, groups):
    assert as_owner.post("/api/groups/etl/pause").json() == {"group": "etl", "paused": 1}
    assert Job.objects.filter(group="etl", owner__username="owner", paused=False).count() == 0
    assert Job.objects.get(name="theirs").paused is False  # another user's job is not theirs to pause
    assert as_owner.post("/api/groups/etl/resume/").json() == {"group": "etl", "resumed": 2}


def test_delete_a_group_cancels_its_jobs_and_answers_how_many(as_owner, groups):
    response = as_owner.delete("/api/groups/etl")
    assert response.json() == {"group": "etl", "cancelled": 2}
    assert list(Job.objects.filter(group="etl").values_list("name", flat=True)) == ["theirs"]


def test_an_unknown_or_malformed_group_is_a_404(as_owner, groups):
    assert as_owner.get("/api/groups/nothing/").status_code == 404
    assert as_owner.post("/api/groups/nothing/pause").status_code == 404
    assert as_owner.get("/api/groups/bad%00name/").status_code == 404


# Calendars -------------------------------------------------------------------------------


def test_calendar_crud(as_owner, owner):
    created = as_owner.post(
        "/api/calendars/",
        {"name": "holidays", "excluded_dates": ["2026-12-26", "2026-12-25", "2026-12-25"]},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["excluded_dates"] == ["2026-12-25", "2026-12-26"] and body["owner"] == "owner" and body["used_by"] == 0
    pk = body["id"]
    assert as_owner.get("/api/calendars/").json()["results"][0]["name"] == "holidays"
    changed = as_owner.patch(f"/api/calendars/{pk}/", {"business_days_only": True}, format="json").json()
    assert changed["business_days_only"] is True
    replaced = as_owner.put(f"/api/calendars/{pk}/", {"name": "days off", "excluded_dates": []}, format="json").json()
    assert (replaced["name"], replaced["excluded_dates"]) == ("days off", [])
    assert as_owner.delete(f"/api/calendars/{pk}/").status_code == 204
    assert not Calendar.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "excluded_dates": ["25/12/2026"]}, "excluded_dates"),
        ({"name": "x", "excluded_dates": "2026-12-25"}, "excluded_dates"),
        ({}, "name"),
    ],
)
def test_calendar_validation(as_owner, body, field):
    response = as_owner.post("/api/calendars/", body, format="json")
    assert response.status_code == 400 and field in response.json()


def test_a_calendar_in_use_cannot_be_deleted(as_owner, owner, make_job):
    calendar = services.calendar_create(name="in use", owner=owner)
    make_job(owner=owner, triggers=[{"kind": "daily", "at": "09:00", "calendar": calendar}])
    response = as_owner.delete(f"/api/calendars/{calendar.pk}/")
    assert response.status_code == 409
    assert "in use" in response.json()["detail"]
    assert as_owner.get(f"/api/calendars/{calendar.pk}/").json()["used_by"] == 1


def test_a_calendar_change_re_plans_its_jobs(as_owner, owner, make_job):
    calendar = services.calendar_create(name="weekdays", owner=owner)
    job = make_job(owner=owner, triggers=[{"kind": "daily", "at": "09:00", "calendar": calendar.pk}])
    before = job.next_run_at
    as_owner.patch(f"/api/calendars/{calendar.pk}/", {"excluded_dates": [before.date().isoformat()]}, format="json")
    job.refresh_from_db()
    assert job.next_run_at > before


# Tasks ------------------------------------------------------------------------------------


def test_tasks_with_description_and_parameters(as_owner):
    body = as_owner.get("/api/tasks/").json()
    names = [task["name"] for task in body]
    assert "tempora.sample_job" in names and names == sorted(names)
    sample = as_owner.get("/api/tasks/tempora.sample_job/").json()
    assert sample["description"].startswith("Log a message")
    assert sample["parameters"] == [
        {
            "name": "message",
            "kind": "positional",
            "required": False,
            "default": "Hello from Tempora",
            "annotation": "str",
        }
    ]
    assert as_owner.get("/api/tasks/no.such.task/").status_code == 404
