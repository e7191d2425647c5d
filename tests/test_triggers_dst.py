"""Cron across DST changes, by cronie's rules (DESIGN.md, "Time").

Every expected instant below was worked out by hand from the zone's rules for that year
(the transition instants are listed in TRANSITIONS_2026), never by calling triggers.py.

- fixed-time job (minute and hour do not start with `*`): a wall time in the gap fires
  once at the first instant after the gap; a repeated wall time fires once, at its first pass;
- wildcard job: fires at every real instant whose wall time matches, never at a wall time
  that does not exist.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from itertools import islice, pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler_app import triggers

# 2026 transitions (UTC instant: local change), from the tz rules of each zone:
TRANSITIONS_2026 = {
    "America/New_York": "Mar 8 07:00Z: 02:00 EST -> 03:00 EDT; Nov 1 06:00Z: 02:00 EDT -> 01:00 EST",
    "Europe/London": "Mar 29 01:00Z: 01:00 GMT -> 02:00 BST; Oct 25 01:00Z: 02:00 BST -> 01:00 GMT",
    "Europe/Berlin": "Mar 29 01:00Z: 02:00 CET -> 03:00 CEST; Oct 25 01:00Z: 03:00 CEST -> 02:00 CET",
    "Australia/Sydney": "Apr 4 16:00Z: 03:00 AEDT -> 02:00 AEST; Oct 3 16:00Z: 02:00 AEST -> 03:00 AEDT",
    "America/Havana": "Mar 8 05:00Z: 00:00 CST -> 01:00 CDT; Nov 1 05:00Z: 01:00 CDT -> 00:00 CST",
    "Australia/Lord_Howe": "Apr 4 15:00Z: 02:00 +11 -> 01:30 +1030; Oct 3 15:30Z: 02:00 +1030 -> 02:30 +11",
}


def utc(text: str) -> datetime:
    """`utc("2026-03-08 07:00")` → an aware UTC instant."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def fires(expression: str, zone: str, after: str, count: int) -> list[str]:
    spec = triggers.TriggerSpec(kind="cron", cron_expression=expression)
    stream = triggers.fire_times(spec, ZoneInfo(zone), utc(after))
    return [f"{instant:%Y-%m-%d %H:%M}" for instant in islice(stream, count)]


# The table: (cron, zone, search after (UTC), the next fire times (UTC)) ---------------------

GAP_FIXED_TIME = [
    pytest.param(
        "30 2 * * *",
        "America/New_York",
        "2026-03-07 12:00",
        ["2026-03-08 07:00", "2026-03-09 06:30"],
        id="new-york-02:30-runs-at-03:00-EDT",
    ),
    pytest.param(
        "0 2 * * *",
        "America/New_York",
        "2025-03-08 12:00",
        ["2025-03-09 07:00", "2025-03-10 06:00"],
        id="new-york-2025-02:00-runs-at-03:00-EDT",
    ),
    pytest.param(
        "30 1 * * *",
        "Europe/London",
        "2026-03-28 12:00",
        ["2026-03-29 01:00", "2026-03-30 00:30"],
        id="london-01:30-runs-at-02:00-BST",
    ),
    pytest.param(
        "30 2 * * *",
        "Europe/Berlin",
        "2026-03-28 12:00",
        ["2026-03-29 01:00", "2026-03-30 00:30"],
        id="berlin-02:30-runs-at-03:00-CEST",
    ),
    pytest.param(
        "30 2 * * *",
        "Australia/Sydney",
        "2026-10-03 00:00",
        ["2026-10-03 16:00", "2026-10-04 15:30"],
        id="sydney-02:30-runs-at-03:00-AEDT",
    ),
    pytest.param(
        "0 0 * * *",
        "America/Havana",
        "2026-03-07 12:00",
        ["2026-03-08 05:00", "2026-03-09 04:00"],
        id="havana-midnight-runs-at-01:00-CDT",
    ),
    pytest.param(
        "30 0 * * *",
        "America/Havana",
        "2026-03-07 12:00",
        ["2026-03-08 05:00", "2026-03-09 04:30"],
        id="havana-00:30-runs-at-01:00-CDT",
    ),
    pytest.param(
        "15 2 * * *",
        "Australia/Lord_Howe",
        "2026-10-03 00:00",
        ["2026-10-03 15:30", "2026-10-04 15:15"],
        id="lord-howe-02:15-runs-at-02:30",
    ),
    pytest.param(
        "45 2 * * *",
        "Australia/Lord_Howe",
        "2026-10-03 00:00",
        ["2026-10-03 15:45", "2026-10-04 15:45"],
        id="lord-howe-02:45-exists-and-runs-on-time",
    ),
    pytest.param(
        "0,30 2,3 * * *",
        "America/New_York",
        "2026-03-08 06:00",
        ["2026-03-08 07:00", "2026-03-08 07:30", "2026-03-09 06:00"],
        id="new-york-three-gap-times-and-03:00-run-once-at-03:00",
    ),
]

REPEATED_FIXED_TIME = [
    pytest.param(
        "30 1 * * *",
        "America/New_York",
        "2026-10-31 12:00",
        ["2026-11-01 05:30", "2026-11-02 06:30"],
        id="new-york-01:30-EDT-only",
    ),
    pytest.param(
        "30 1 * * *",
        "America/New_York",
        "2025-11-01 12:00",
        ["2025-11-02 05:30", "2025-11-03 06:30"],
        id="new-york-2025-01:30-EDT-only",
    ),
    pytest.param(
        "30 1 * * *",
        "Europe/London",
        "2026-10-24 12:00",
        ["2026-10-25 00:30", "2026-10-26 01:30"],
        id="london-01:30-BST-only",
    ),
    pytest.param(
        "30 2 * * *",
        "Europe/Berlin",
        "2026-10-24 12:00",
        ["2026-10-25 00:30", "2026-10-26 01:30"],
        id="berlin-02:30-CEST-only",
    ),
    pytest.param(
        "30 2 * * *",
        "Australia/Sydney",
        "2026-04-04 00:00",
        ["2026-04-04 15:30", "2026-04-05 16:30"],
        id="sydney-02:30-AEDT-only",
    ),
    pytest.param(
        "0 0 * * *",
        "America/Havana",
        "2026-10-31 12:00",
        ["2026-11-01 04:00", "2026-11-02 05:00"],
        id="havana-midnight-CDT-only",
    ),
    pytest.param(
        "45 1 * * *",
        "Australia/Lord_Howe",
        "2026-04-04 00:00",
        ["2026-04-04 14:45", "2026-04-05 15:15"],
        id="lord-howe-01:45-first-pass-only",
    ),
]

WILDCARD_FALL_BACK = [
    pytest.param(
        "*/30 * * * *",
        "America/New_York",
        "2026-11-01 04:45",
        ["2026-11-01 05:00", "2026-11-01 05:30", "2026-11-01 06:00", "2026-11-01 06:30", "2026-11-01 07:00"],
        id="new-york-every-30-min-both-passes",
    ),
    pytest.param(
        "*/15 1 * * *",
        "America/New_York",
        "2026-11-01 04:00",
        [
            "2026-11-01 05:00",
            "2026-11-01 05:15",
            "2026-11-01 05:30",
            "2026-11-01 05:45",
            "2026-11-01 06:00",
            "2026-11-01 06:15",
            "2026-11-01 06:30",
            "2026-11-01 06:45",
            "2026-11-02 06:00",
        ],
        id="new-york-*/15-in-hour-1-both-passes",
    ),
    pytest.param(
        "15 * * * *",
        "America/New_York",
        "2026-11-01 05:00",
        ["2026-11-01 05:15", "2026-11-01 06:15", "2026-11-01 07:15"],
        id="new-york-hourly-at-15-twice",
    ),
    pytest.param(
        "30 * * * *",
        "Europe/London",
        "2026-10-25 00:00",
        ["2026-10-25 00:30", "2026-10-25 01:30", "2026-10-25 02:30"],
        id="london-hourly-at-30-twice",
    ),
    pytest.param(
        "0 */2 * * *",
        "Europe/Berlin",
        "2026-10-24 21:00",
        ["2026-10-24 22:00", "2026-10-25 00:00", "2026-10-25 01:00", "2026-10-25 03:00"],
        id="berlin-every-2-hours-02:00-twice",
    ),
    pytest.param(
        "*/30 2 * * *",
        "Australia/Sydney",
        "2026-04-04 15:00",
        ["2026-04-04 15:30", "2026-04-04 16:00", "2026-04-04 16:30", "2026-04-05 16:00"],
        id="sydney-*/30-in-hour-2-both-passes",
    ),
    pytest.param(
        "*/30 * * * *",
        "America/Havana",
        "2026-11-01 03:45",
        ["2026-11-01 04:00", "2026-11-01 04:30", "2026-11-01 05:00", "2026-11-01 05:30", "2026-11-01 06:00"],
        id="havana-midnight-hour-twice",
    ),
    pytest.param(
        "*/15 1 * * *",
        "Australia/Lord_Howe",
        "2026-04-04 14:00",
        [
            "2026-04-04 14:15",
            "2026-04-04 14:30",
            "2026-04-04 14:45",
            "2026-04-04 15:00",
            "2026-04-04 15:15",
            "2026-04-05 14:30",
        ],
        id="lord-howe-only-01:30-to-01:59-twice",
    ),
]

WILDCARD_GAP = [
    pytest.param(
        "*/30 * * * *",
        "America/New_York",
        "2026-03-08 06:00",
        ["2026-03-08 06:30", "2026-03-08 07:00", "2026-03-08 07:30"],
        id="new-york-every-30-min",
    ),
    pytest.param(
        "*/15 2 * * *",
        "America/New_York",
        "2026-03-07 12:00",
        ["2026-03-09 06:00", "2026-03-09 06:15", "2026-03-09 06:30", "2026-03-09 06:45"],
        id="new-york-*/15-in-hour-2-skips-the-day",
    ),
    pytest.param(
        "30 * * * *",
        "Europe/London",
        "2026-03-29 00:00",
        ["2026-03-29 00:30", "2026-03-29 01:30", "2026-03-29 02:30"],
        id="london-hourly-at-30",
    ),
    pytest.param(
        "0 */2 * * *",
        "Europe/Berlin",
        "2026-03-28 22:00",
        ["2026-03-28 23:00", "2026-03-29 02:00", "2026-03-29 04:00"],
        id="berlin-every-2-hours-no-02:00",
    ),
    pytest.param(
        "*/30 * * * *",
        "Australia/Sydney",
        "2026-10-03 15:00",
        ["2026-10-03 15:30", "2026-10-03 16:00", "2026-10-03 16:30"],
        id="sydney-every-30-min",
    ),
    pytest.param(
        "*/30 * * * *",
        "America/Havana",
        "2026-03-08 04:00",
        ["2026-03-08 04:30", "2026-03-08 05:00", "2026-03-08 05:30"],
        id="havana-no-midnight-hour",
    ),
    pytest.param(
        "*/15 2 * * *",
        "Australia/Lord_Howe",
        "2026-10-03 15:00",
        ["2026-10-03 15:30", "2026-10-03 15:45", "2026-10-04 15:00"],
        id="lord-howe-no-02:00-or-02:15",
    ),
]

STARTING_INSIDE = [
    pytest.param(
        "30 1 * * *",
        "2026-11-01 05:10",
        ["2026-11-01 05:30", "2026-11-02 06:30"],
        id="fixed-from-first-pass-before-its-time",
    ),
    pytest.param("30 1 * * *", "2026-11-01 05:45", ["2026-11-02 06:30"], id="fixed-from-first-pass-after-its-time"),
    pytest.param("30 1 * * *", "2026-11-01 06:10", ["2026-11-02 06:30"], id="fixed-from-second-pass-not-again"),
    pytest.param(
        "0,30 1 * * *",
        "2026-11-01 05:10",
        ["2026-11-01 05:30", "2026-11-02 06:00"],
        id="fixed-two-times-from-first-pass",
    ),
    pytest.param(
        "*/30 * * * *",
        "2026-11-01 05:45",
        ["2026-11-01 06:00", "2026-11-01 06:30", "2026-11-01 07:00"],
        id="wildcard-from-first-pass-replays-the-hour",
    ),
    pytest.param(
        "*/30 * * * *", "2026-11-01 06:10", ["2026-11-01 06:30", "2026-11-01 07:00"], id="wildcard-from-second-pass"
    ),
    pytest.param(
        "*/30 * * * *",
        "2026-11-01 05:59",
        ["2026-11-01 06:00", "2026-11-01 06:30"],
        id="wildcard-from-the-last-minute-before-fall-back",
    ),
    pytest.param(
        "30 2 * * *",
        "2026-03-08 06:59",
        ["2026-03-08 07:00", "2026-03-09 06:30"],
        id="fixed-from-the-last-minute-before-the-gap",
    ),
    # 02:30 inside the gap is read as 07:00Z (local_to_utc); strictly after it, tomorrow.
    pytest.param("30 2 * * *", "2026-03-08 07:00", ["2026-03-09 06:30"], id="fixed-from-the-gap-end"),
    pytest.param(
        "*/15 * * * *",
        "2026-03-08 06:59",
        ["2026-03-08 07:00", "2026-03-08 07:15"],
        id="wildcard-from-the-last-minute-before-the-gap",
    ),
]


@pytest.mark.parametrize(("expression", "zone", "after", "expected"), GAP_FIXED_TIME)
def test_it_runs_a_fixed_time_job_in_the_gap_once_at_the_end_of_the_gap(expression, zone, after, expected):
    assert fires(expression, zone, after, len(expected)) == expected


@pytest.mark.parametrize(("expression", "zone", "after", "expected"), REPEATED_FIXED_TIME)
def test_it_runs_a_fixed_time_job_in_the_repeated_hour_once_at_the_first_pass(expression, zone, after, expected):
    assert fires(expression, zone, after, len(expected)) == expected


@pytest.mark.parametrize(("expression", "zone", "after", "expected"), WILDCARD_FALL_BACK)
def test_it_runs_a_wildcard_job_in_both_passes_of_the_repeated_hour(expression, zone, after, expected):
    assert fires(expression, zone, after, len(expected)) == expected


@pytest.mark.parametrize(("expression", "zone", "after", "expected"), WILDCARD_GAP)
def test_it_never_runs_a_wildcard_job_at_a_wall_time_that_does_not_exist(expression, zone, after, expected):
    assert fires(expression, zone, after, len(expected)) == expected


@pytest.mark.parametrize(("expression", "after", "expected"), STARTING_INSIDE)
def test_it_finds_the_next_time_when_the_search_starts_next_to_a_change(expression, after, expected):
    assert fires(expression, "America/New_York", after, len(expected)) == expected


def test_it_runs_a_daily_job_once_on_the_fall_back_day():
    zone = ZoneInfo("America/New_York")
    spec = triggers.TriggerSpec(kind="cron", cron_expression="30 1 * * *")
    runs = triggers.next_runs([spec], zone, utc("2026-10-29 12:00"), 6)
    local_dates = [instant.astimezone(zone).date() for instant in runs]
    assert local_dates == [date(2026, 10, day) for day in (30, 31)] + [date(2026, 11, day) for day in (1, 2, 3, 4)]


def test_it_agrees_with_a_union_of_the_gap_job_and_the_job_at_the_gap_end():
    # 02:30 (in the gap) and 03:00 both land on 07:00Z: the union holds it once.
    specs = [triggers.TriggerSpec(kind="cron", cron_expression=e) for e in ("30 2 * * *", "0 3 * * *")]
    runs = triggers.next_runs(specs, ZoneInfo("America/New_York"), utc("2026-03-08 00:00"), 3)
    assert [f"{r:%m-%d %H:%M}" for r in runs] == ["03-08 07:00", "03-09 06:30", "03-09 07:00"]


# local_to_utc: one wall time to one instant, by the fixed-time rules ---------------------------


@pytest.mark.parametrize(
    ("wall", "zone", "expected"),
    [
        pytest.param(datetime(2026, 7, 1, 9, 0), "Europe/Berlin", "2026-07-01 07:00", id="ordinary"),
        pytest.param(datetime(2026, 3, 8, 2, 30), "America/New_York", "2026-03-08 07:00", id="gap-new-york"),
        pytest.param(datetime(2026, 3, 8, 0, 30), "America/Havana", "2026-03-08 05:00", id="gap-havana"),
        pytest.param(datetime(2026, 10, 4, 2, 15), "Australia/Lord_Howe", "2026-10-03 15:30", id="gap-lord-howe"),
        pytest.param(datetime(2026, 11, 1, 1, 30), "America/New_York", "2026-11-01 05:30", id="fold-0-first-pass"),
        pytest.param(
            datetime(2026, 11, 1, 1, 30, fold=1), "America/New_York", "2026-11-01 05:30", id="fold-1-still-first-pass"
        ),
        pytest.param(datetime(2026, 4, 5, 1, 45), "Australia/Lord_Howe", "2026-04-04 14:45", id="fold-lord-howe"),
        pytest.param(
            datetime(2026, 1, 1, 1, 30, tzinfo=ZoneInfo("Asia/Tokyo")),
            "America/New_York",
            "2025-12-31 16:30",
            id="aware-value-keeps-its-own-offset",
        ),
    ],
)
def test_it_maps_a_local_wall_time_to_one_instant(wall, zone, expected):
    instant = triggers.local_to_utc(wall, ZoneInfo(zone))
    assert instant == utc(expected)
    assert instant.utcoffset() == timedelta(0)


# Property: whatever the zone, expression and start ---------------------------------------------

ZONES = [
    "America/New_York",
    "Europe/London",
    "Europe/Berlin",
    "Australia/Sydney",
    "America/Havana",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "America/Sao_Paulo",
    "Pacific/Auckland",
    "Africa/Cairo",
    "America/St_Johns",
    "Europe/Moscow",
    "Pacific/Chatham",
    "UTC",
]
RUNS = 20


@st.composite
def cron_jobs(draw):
    """(expression, minutes, hours, weekdays as Python's 0=Monday) from a small grammar."""
    if draw(st.booleans()):  # fixed-time: minute and hour are lists of numbers
        minutes = draw(st.sets(st.sampled_from([0, 1, 15, 30, 45, 59]), min_size=1, max_size=2))
        hours = draw(st.sets(st.sampled_from([0, 1, 2, 3, 12, 23]), min_size=1, max_size=2))
        minute_field = ",".join(map(str, sorted(minutes)))
        hour_field = ",".join(map(str, sorted(hours)))
    else:
        minute_field, minutes, hour_field, hours = draw(
            st.sampled_from(
                [
                    ("*/30", {0, 30}, "*", set(range(24))),
                    ("*/15", {0, 15, 30, 45}, "*", set(range(24))),
                    ("0", {0}, "*/2", set(range(0, 24, 2))),
                    ("45", {45}, "*", set(range(24))),
                    ("*/15", {0, 15, 30, 45}, "2", {2}),
                    ("*/20", {0, 20, 40}, "0,1", {0, 1}),
                    ("*", set(range(60)), "1", {1}),
                ]
            )
        )
    dow_field, weekdays = draw(st.sampled_from([("*", set(range(7))), ("1-5", {0, 1, 2, 3, 4})]))
    return f"{minute_field} {hour_field} * * {dow_field}", minutes, hours, weekdays


@lru_cache(maxsize=64)
def _transitions(zone_name: str, year: int) -> tuple[datetime, ...]:
    """UTC instants in `year` where the zone's offset changes, found by scanning zoneinfo."""
    zone, found = ZoneInfo(zone_name), []
    day = datetime(year, 1, 1, tzinfo=UTC)
    while day.year == year:
        low, high = day, day + timedelta(days=1)
        if low.astimezone(zone).utcoffset() != high.astimezone(zone).utcoffset():
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) / 2
                if middle.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset():
                    low = middle
                else:
                    high = middle
            found.append(high.replace(second=0, microsecond=0))
        day += timedelta(days=1)
    return tuple(found)


@st.composite
def starts(draw, zone_name: str):
    """A start in 2020-2035: anywhere, or within three hours of one of the zone's changes."""
    anywhere = draw(st.datetimes(datetime(2020, 1, 1), datetime(2035, 12, 31), timezones=st.just(UTC)))
    changes = _transitions(zone_name, anywhere.year)
    if not changes or draw(st.booleans()):
        return anywhere
    near = draw(st.sampled_from(changes))
    return near + timedelta(seconds=draw(st.integers(-3 * 3600, 3 * 3600)))


def expected_runs(zone: ZoneInfo, job, after: datetime, until: datetime, fixed_time: bool) -> list[datetime]:
    """The oracle: walk real UTC minutes up to `until` and apply cronie's rules directly.

    A wildcard job fires at a minute whose wall time matches. A fixed-time job fires at the
    first minute whose wall time reaches a matching wall time not reached before: that is the
    first pass of a repeated time, and the end of the gap for a skipped one.
    """
    _, minutes, hours, weekdays = job
    minute = timedelta(minutes=1)

    def wall(instant: datetime) -> datetime:
        return instant.astimezone(zone).replace(tzinfo=None)

    def matches(local: datetime) -> bool:
        return local.minute in minutes and local.hour in hours and local.weekday() in weekdays

    expected = []
    instant = after.replace(second=0, microsecond=0) - timedelta(days=1)  # a day back: a known state
    reached = wall(instant)
    while instant < until:
        here, hour_later = wall(instant), wall(instant + 60 * minute)
        if hour_later - here == 60 * minute and here.hour not in hours and hour_later.hour not in hours:
            instant += 60 * minute  # no clock change and no matching hour: nothing can fire (a shortcut)
            reached = max(reached, hour_later)
            continue
        for _ in range(60):
            instant += minute
            local = wall(instant)
            if fixed_time:
                newly_reached = [reached + minute * (k + 1) for k in range((local - reached) // minute)]
                hit = any(matches(w) for w in newly_reached)
                reached = max(reached, local)
            else:
                hit = matches(local)
            if hit and after < instant <= until:
                expected.append(instant)
    return expected


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), zone_name=st.sampled_from(ZONES), job=cron_jobs())
def test_it_keeps_the_dst_rules_for_any_zone_expression_and_start(data, zone_name, job):
    expression = job[0]
    zone = ZoneInfo(zone_name)
    after = data.draw(starts(zone_name), label="after")
    fixed_time = triggers.parse_cron(expression).fixed_time
    spec = triggers.TriggerSpec(kind="cron", cron_expression=expression)
    runs = list(islice(triggers.fire_times(spec, zone, after), RUNS))

    assert len(runs) == RUNS
    assert runs[0] > after
    assert all(earlier < later for earlier, later in pairwise(runs)), "strictly increasing, no repeats"
    if not fixed_time:
        for instant in runs:
            wall = instant.astimezone(zone)
            assert (wall.minute in job[1], wall.hour in job[2], wall.weekday() in job[3]) == (True, True, True)
    if fixed_time and len(job[1]) == len(job[2]) == 1:
        local_dates = [instant.astimezone(zone).date() for instant in runs]
        assert len(set(local_dates)) == len(local_dates), "a daily job fires at most once per local date"
    assert runs == expected_runs(zone, job, after, runs[-1], fixed_time)
