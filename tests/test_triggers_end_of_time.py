"""The bounded search ends at the end of representable time instead of overflowing (triggers.py).

A job whose next run would fall beyond year 9999 (a window starting in 9999, an interval
near the end, a one-off at 9999-12-31 23:59) has no next run; computing it never raises.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from scheduler_app import triggers

TOKYO = ZoneInfo("Asia/Tokyo")
HONOLULU = ZoneInfo("Pacific/Honolulu")
NEAR_THE_END = datetime(9999, 12, 31, 12, 0, tzinfo=UTC)


def cron(expression: str, **extra) -> triggers.TriggerSpec:
    return triggers.TriggerSpec(kind="cron", cron_expression=expression, **extra)


@pytest.mark.parametrize("zone", [ZoneInfo("UTC"), TOKYO, HONOLULU], ids=lambda zone: zone.key)
@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(cron("0 0 * * *"), id="daily-cron"),
        pytest.param(cron("*/5 * * * *"), id="wildcard-cron"),
        pytest.param(cron("0 0 * * *", jitter_seconds=3600, seed="job:1"), id="cron-with-jitter"),
        pytest.param(
            triggers.TriggerSpec(kind="interval", interval_seconds=3600, anchor=datetime(9999, 1, 1, tzinfo=UTC)),
            id="interval",
        ),
        pytest.param(
            triggers.TriggerSpec(
                kind="interval", interval_seconds=10 * 366 * 86_400, anchor=datetime(9990, 1, 1, tzinfo=UTC)
            ),
            id="ten-year-interval",
        ),
        pytest.param(
            triggers.TriggerSpec(kind="once", run_at=datetime(9999, 12, 31, 23, 59, tzinfo=UTC)),
            id="one-off-on-the-last-day",
        ),
    ],
)
def test_it_has_no_next_run_beyond_the_end_of_time_rather_than_overflowing(spec, zone):
    assert triggers.next_runs([spec], zone, NEAR_THE_END, 10) == []


def test_a_window_that_starts_in_year_9999_has_no_run_after_the_end_of_time():
    window = triggers.Window(start_at=datetime(9999, 12, 31, 20, 0, tzinfo=UTC))
    now = datetime(2026, 3, 1, tzinfo=UTC)
    assert triggers.next_runs([cron("0 * * * *")], TOKYO, now, 5, window) == []


def test_the_runs_before_the_end_are_still_found():
    window = triggers.Window(start_at=datetime(9999, 12, 1, tzinfo=UTC))
    runs = triggers.next_runs([cron("0 0 * * *")], ZoneInfo("UTC"), datetime(2026, 3, 1, tzinfo=UTC), 3, window)
    assert runs == [datetime(9999, 12, d, tzinfo=UTC) for d in (1, 2, 3)]


def test_every_fire_time_is_an_instant_every_zone_can_show():
    # The last one a search yields still converts to the furthest zones (±14 h) without overflowing.
    runs = triggers.next_runs([cron("0 * * * *")], ZoneInfo("UTC"), NEAR_THE_END - timedelta(days=2), 200)
    assert runs and runs[-1] <= triggers.LAST_INSTANT
    for zone in (TOKYO, HONOLULU, ZoneInfo("Pacific/Kiritimati"), ZoneInfo("Etc/GMT+12")):
        runs[-1].astimezone(zone)


def test_the_search_stops_at_its_horizon_when_a_calendar_excludes_every_candidate():
    # Every 1 January for 31 years is excluded: the first allowed one lies beyond the 30-year
    # horizon. The search used to walk on (200,000 candidates, 15 s for a weekly cron whose
    # days a calendar excludes) because its steady-offset shortcut skipped the horizon check.
    from datetime import date

    spec = cron("0 0 1 1 *", excluded_dates=frozenset(date(year, 1, 1) for year in range(2027, 2058)))
    assert triggers.next_runs([spec], ZoneInfo("UTC"), datetime(2026, 3, 1, tzinfo=UTC), 1) == []
