"""/api/cron/validate, /api/cron/presets and /api/schedules/preview."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_a_valid_expression_with_description_and_next_runs(as_owner):
    body = as_owner.post(
        "/api/cron/validate", {"expression": "30 2 * * *", "timezone": "America/New_York", "count": 3}, format="json"
    ).json()
    assert body["valid"] is True and body["fixed_time"] is True
    assert body["description"] == "At 02:30"
    assert len(body["next_runs"]) == 3 and body["next_runs"][0]["local"].endswith("(America/New_York)")


def test_validate_by_query_string(as_owner):
    body = as_owner.get("/api/cron/validate/", {"expression": "*/15 * * * *"}).json()
    assert body["valid"] is True and body["fixed_time"] is False and len(body["next_runs"]) == 5


@pytest.mark.parametrize(
    ("expression", "zone", "field", "words"),
    [
        ("61 * * * *", "UTC", "cron_expression", "minute field"),
        ("0 0 30 2 *", "UTC", "cron_expression", "never fires"),
        ("* * *", "UTC", "cron_expression", "5 fields"),
        ("@fortnightly", "UTC", "cron_expression", "Unknown macro"),
        ("0 9 * * *", "Europe/Atlantis", "timezone", "IANA"),
    ],
)
def test_an_invalid_expression_answers_the_reason(as_owner, expression, zone, field, words):
    response = as_owner.post("/api/cron/validate", {"expression": expression, "timezone": zone}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is False and body["field"] == field and words in body["error"] and body["next_runs"] == []


def test_validate_needs_an_expression(as_owner):
    response = as_owner.get("/api/cron/validate")
    assert response.status_code == 400 and "expression" in response.json()


def test_presets(as_owner):
    presets = as_owner.get("/api/cron/presets").json()
    assert {
        "name": "weekdays at 09:00",
        "expression": "0 9 * * MON-FRI",
        "description": "At 09:00, Monday through Friday",
    } in presets
    assert all(p["description"] for p in presets)


def test_preview_any_trigger_spec(as_owner):
    body = as_owner.post(
        "/api/schedules/preview",
        {
            "triggers": [
                {"kind": "weekly", "days": [0], "at": "10:00"},
                {"kind": "interval", "interval_seconds": 86400},
            ],
            "timezone": "Europe/London",
            "count": 4,
            "after": "2026-03-01T00:00:00Z",
            "start_at": "2026-03-01T12:00:00Z",
        },
        format="json",
    ).json()
    assert body["description"].startswith("Every Monday at 10:00 (Europe/London); Every day")
    assert [run["at"] for run in body["next_runs"]] == [
        "2026-03-01T12:00:00Z",
        "2026-03-02T10:00:00Z",
        "2026-03-02T12:00:00Z",
        "2026-03-03T12:00:00Z",
    ]


def test_preview_with_a_calendar(as_owner, owner):
    from scheduler_app import services

    calendar = services.calendar_create(name="skip", excluded_dates=["2026-03-02"], owner=owner)
    body = as_owner.post(
        "/api/schedules/preview",
        {
            "triggers": [{"kind": "daily", "at": "09:00", "calendar": calendar.pk}],
            "count": 2,
            "after": "2026-03-01T10:00:00Z",
        },
        format="json",
    ).json()
    assert [run["at"] for run in body["next_runs"]] == ["2026-03-03T09:00:00Z", "2026-03-04T09:00:00Z"]
    assert "calendar 'skip'" in body["description"]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"triggers": []}, ("triggers",)),
        ({"triggers": [{"kind": "cron", "cron_expression": "nope"}]}, ("triggers", "0", "cron_expression")),
        ({"triggers": [{"kind": "daily", "at": "09:00"}], "timezone": "Nowhere/Land"}, ("timezone",)),
        ({"triggers": [{"kind": "daily", "at": "09:00"}], "count": 1000}, ("count",)),
        (
            {
                "triggers": [{"kind": "daily", "at": "09:00"}],
                "start_at": "2026-02-01T00:00:00Z",
                "end_at": "2026-01-01T00:00:00Z",
            },
            ("end_at",),
        ),
    ],
)
def test_preview_validation(as_owner, body, path):
    response = as_owner.post("/api/schedules/preview", body, format="json")
    assert response.status_code == 400
    errors = response.json()
    for key in path:
        errors = errors[key]
