"""Intervals, one-off runs, presets, trigger input, windows, jitter, calendars and unions (triggers.py).

Expected instants are worked out by hand; dates: 2026-03-01 is a Sunday, 2026-03-06 a Friday.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import islice, pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler_app import triggers

UTC_ZONE = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def short(instants) -> list[str]:
    return [f"{t:%m-%d %H:%M}" + (f":{t:%S}" if t.second or t.microsecond else "") for t in instants]


def take(spec, after, count=10, zone=UTC_ZONE, window=triggers.Window()):
    return list(islice(triggers.fire_times(spec, zone, after, window), count))


def cron(expression: str, **extra) -> triggers.TriggerSpec:
    return triggers.TriggerSpec(kind="cron", cron_expression=expression, **extra)


def every(seconds: int, anchor: str, **extra) -> triggers.TriggerSpec:
    return triggers.TriggerSpec(kind="interval", interval_seconds=seconds, anchor=utc(anchor), **extra)


# Intervals: exact elapsed time from an anchor ---------------------------------------------


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        pytest.param("2026-03-01 12:07:30", ["03-01 12:10", "03-01 12:15"], id="between-two-runs"),
        pytest.param("2026-03-01 11:00", ["03-01 12:00", "03-01 12:05"], id="before-the-anchor-starts-at-it"),
        pytest.param("2026-03-01 12:00", ["03-01 12:05", "03-01 12:10"], id="at-the-anchor-is-exclusive"),
        pytest.param("2026-03-01 12:10", ["03-01 12:15", "03-01 12:20"], id="on-a-run-is-exclusive"),
    ],
)
def test_it_counts_an_interval_from_its_anchor(after, expected):
    assert short(take(every(300, "2026-03-01 12:00"), utc(after), 2)) == expected


def test_it_uses_exact_integer_arithmetic_far_from_the_anchor():
    # 1,000,000 s after the anchor is 01-12 13:46:40; 142,858 × 7 s = 1,000,006 s → 13:46:46.
    spec = every(7, "2026-01-01 00:00")
    assert take(spec, utc("2026-01-12 13:46:40"), 1) == [utc("2026-01-12 13:46:46")]


def test_it_keeps_microseconds_of_the_anchor_exactly():
    anchor = utc("2026-01-01 00:00") + timedelta(microseconds=1)
    spec = triggers.TriggerSpec(kind="interval", interval_seconds=3, anchor=anchor)
    assert take(spec, anchor + timedelta(seconds=3), 1) == [anchor + timedelta(seconds=6)]
    assert take(spec, anchor + timedelta(seconds=3, microseconds=-1), 1) == [anchor + timedelta(seconds=3)]


def test_it_finds_the_next_second_fifteen_years_after_the_anchor():
    spec = every(1, "2020-01-01 00:00")
    assert take(spec, utc("2035-01-01 00:00") + timedelta(microseconds=500_000), 1) == [utc("2035-01-01 00:00:01")]


def test_an_interval_of_24_hours_drifts_on_the_wall_clock_across_dst():
    # From 09:00 EST on Saturday: after the change the same elapsed day shows 10:00 EDT.
    runs = take(every(86_400, "2026-03-07 14:00"), utc("2026-03-07 14:00"), 2, zone=NEW_YORK)
    assert [f"{r.astimezone(NEW_YORK):%m-%d %H:%M %Z}" for r in runs] == ["03-08 10:00 EDT", "03-09 10:00 EDT"]


def test_daily_at_keeps_the_wall_clock_across_dst():
    runs = take(cron(triggers.daily_cron("09:00")), utc("2026-03-07 14:00"), 2, zone=NEW_YORK)
    assert runs == [utc("2026-03-08 13:00"), utc("2026-03-09 13:00")]


def test_it_refuses_a_naive_search_start():
    with pytest.raises(ValueError, match="aware"):
        take(every(60, "2026-03-01 12:00"), datetime(2026, 3, 1, 12, 0))


# One-off runs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        pytest.param("2026-12-01 00:00", [utc("2026-12-25 00:00")], id="before-it"),
        pytest.param("2026-12-25 00:00", [], id="at-it"),
        pytest.param("2026-12-26 00:00", [], id="after-it"),
    ],
)
def test_it_runs_a_one_off_trigger_once(after, expected):
    spec = triggers.TriggerSpec(kind="once", run_at=datetime(2026, 12, 25, 1, 0, tzinfo=BERLIN))
    runs = take(spec, utc(after))
    assert runs == expected
    assert all(r.utcoffset() == timedelta(0) for r in runs)


# Presets ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [("09:30", "30 9 * * *"), ("9:05", "5 9 * * *"), ("00:00", "0 0 * * *"), ("23:59", "59 23 * * *")],
)
def test_it_compiles_daily_at_to_cron(at, expected):
    assert triggers.daily_cron(at) == expected


@pytest.mark.parametrize("at", ["24:00", "9:60", "0930", "9.30", "", "noon", None])
def test_it_rejects_a_time_of_day_that_is_not_hh_mm(at):
    with pytest.raises(triggers.ScheduleError) as caught:
        triggers.daily_cron(at)
    assert caught.value.field == "at"
    assert "HH:MM" in caught.value.message


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        pytest.param([0], "0 10 * * 1", id="0-is-monday"),
        pytest.param([6], "0 10 * * 0", id="6-is-sunday"),
        pytest.param([0, 2], "0 10 * * 1,3", id="monday-wednesday"),
        pytest.param([4, 0, 0], "0 10 * * 1,5", id="sorted-without-repeats"),
        pytest.param(range(7), "0 10 * * 1,2,3,4,5,6,0", id="every-day"),
    ],
)
def test_it_compiles_weekly_days_counted_from_monday(days, expected):
    assert triggers.weekly_cron(days, "10:00") == expected


@pytest.mark.parametrize("days", [[], [7], [-1], [True], ["mon"], [0, "1"], [0, None], [2.0]], ids=lambda d: repr(d))
def test_it_rejects_weekdays_outside_0_to_6(days):
    with pytest.raises(triggers.ScheduleError) as caught:
        triggers.weekly_cron(days, "10:00")
    assert caught.value.field == "days"


def test_a_weekly_job_fires_on_its_weekdays_in_its_zone():
    # Monday 2 and Sunday 8 March 2026 at 10:00 CET = 09:00 UTC.
    spec = cron(triggers.weekly_cron([0, 6], "10:00"), preset="weekly")
    assert short(take(spec, NOW, 3, zone=BERLIN)) == ["03-02 09:00", "03-08 09:00", "03-09 09:00"]


@pytest.mark.parametrize(
    ("minute", "expected"),
    [
        (":30", "30 * * * *"),
        (30, "30 * * * *"),
        ("5", "5 * * * *"),
        ("05", "5 * * * *"),
        (0, "0 * * * *"),
        (":00", "0 * * * *"),
    ],
)
def test_it_compiles_hourly_at_to_cron(minute, expected):
    assert triggers.hourly_cron(minute) == expected


@pytest.mark.parametrize("minute", ["60", ":75", "abc", "", -1, 5.5, True, None])
def test_it_rejects_a_minute_outside_0_to_59(minute):
    with pytest.raises(triggers.ScheduleError) as caught:
        triggers.hourly_cron(minute)
    assert caught.value.field == "minute"


# Trigger input as people write it --------------------------------------------------------------

BLANK = {
    "kind": "cron",
    "cron_expression": "",
    "interval_seconds": None,
    "run_at": None,
    "preset": "",
    "jitter_seconds": 0,
}


@pytest.mark.parametrize(
    ("data", "zone", "expected"),
    [
        pytest.param(
            {"kind": "cron", "cron_expression": " 0  9 * * MON-FRI"},
            BERLIN,
            {"cron_expression": "0 9 * * MON-FRI"},
            id="cron-whitespace-collapsed",
        ),
        pytest.param(
            {"kind": "cron", "cron_expression": "30 9 * * *", "preset": "daily"},
            BERLIN,
            {"cron_expression": "30 9 * * *", "preset": "daily"},
            id="cron-keeps-a-known-preset",
        ),
        pytest.param(
            {"kind": "cron", "cron_expression": "30 9 * * *", "preset": "monthly"},
            BERLIN,
            {"cron_expression": "30 9 * * *"},
            id="cron-drops-an-unknown-preset",
        ),
        pytest.param(
            {"kind": "interval", "interval_seconds": 300, "jitter_seconds": 30},
            BERLIN,
            {"kind": "interval", "interval_seconds": 300, "jitter_seconds": 30},
            id="interval-with-jitter",
        ),
        pytest.param(
            {"kind": "once", "run_at": "2026-12-25T00:00:00Z"},
            BERLIN,
            {"kind": "once", "run_at": utc("2026-12-25 00:00")},
            id="once-utc",
        ),
        pytest.param(
            {"kind": "once", "run_at": "2026-12-25 09:00"},
            BERLIN,
            {"kind": "once", "run_at": utc("2026-12-25 08:00")},
            id="once-naive-is-local",
        ),
        pytest.param(
            {"kind": "once", "run_at": "2026-12-25T09:00:00+05:30"},
            BERLIN,
            {"kind": "once", "run_at": utc("2026-12-25 03:30")},
            id="once-with-offset",
        ),
        pytest.param(
            {"kind": "once", "run_at": datetime(2026, 3, 8, 2, 30)},
            NEW_YORK,
            {"kind": "once", "run_at": utc("2026-03-08 07:00")},
            id="once-naive-in-the-gap",
        ),
        pytest.param(
            {"kind": "once", "run_at_local": "2026-11-01 01:30"},
            NEW_YORK,
            {"kind": "once", "run_at": utc("2026-11-01 05:30")},
            id="once-repeated-time-first-pass",
        ),
        pytest.param(
            {"kind": "once", "delay_seconds": 60},
            BERLIN,
            {"kind": "once", "run_at": utc("2026-03-01 12:01")},
            id="once-after-a-delay",
        ),
        pytest.param(
            {"kind": "daily", "at": "09:30"}, BERLIN, {"cron_expression": "30 9 * * *", "preset": "daily"}, id="daily"
        ),
        pytest.param(
            {"preset": "daily", "at": "07:05"},
            BERLIN,
            {"cron_expression": "5 7 * * *", "preset": "daily"},
            id="daily-named-by-preset",
        ),
        pytest.param(
            {"kind": "weekly", "days": [0, 4], "at": "10:00"},
            BERLIN,
            {"cron_expression": "0 10 * * 1,5", "preset": "weekly"},
            id="weekly",
        ),
        pytest.param(
            {"kind": "hourly", "minute": 30},
            BERLIN,
            {"cron_expression": "30 * * * *", "preset": "hourly"},
            id="hourly-minute",
        ),
        pytest.param(
            {"kind": "hourly", "at": ":05"},
            BERLIN,
            {"cron_expression": "5 * * * *", "preset": "hourly"},
            id="hourly-at",
        ),
    ],
)
def test_it_compiles_each_trigger_shape(data, zone, expected):
    assert triggers.compile_trigger(data, zone, NOW) == {**BLANK, **expected}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        pytest.param("0 9 * * *", "triggers", id="not-an-object"),
        pytest.param({}, "kind", id="no-kind"),
        pytest.param({"kind": "monthly"}, "kind", id="unknown-kind"),
        pytest.param({"kind": "cron"}, "cron_expression", id="cron-missing"),
        pytest.param({"kind": "cron", "cron_expression": "0 0 31 4 *"}, "cron_expression", id="cron-never-fires"),
        pytest.param({"kind": "interval"}, "interval_seconds", id="interval-missing"),
        pytest.param({"kind": "interval", "interval_seconds": 0}, "interval_seconds", id="interval-zero"),
        pytest.param({"kind": "interval", "interval_seconds": "300"}, "interval_seconds", id="interval-text"),
        pytest.param({"kind": "interval", "interval_seconds": True}, "interval_seconds", id="interval-bool"),
        pytest.param({"kind": "interval", "interval_seconds": 1.5}, "interval_seconds", id="interval-float"),
        pytest.param({"kind": "once"}, "run_at", id="once-missing"),
        pytest.param({"kind": "once", "run_at": "tomorrow"}, "run_at", id="once-not-a-date"),
        pytest.param({"kind": "once", "delay_seconds": -1}, "delay_seconds", id="delay-negative"),
        # A run at `now` is not after now: nothing would ever fire it.
        pytest.param({"kind": "once", "delay_seconds": 0}, "delay_seconds", id="delay-zero"),
        pytest.param({"kind": "once", "run_at": "9999-12-31T23:59:00Z"}, "run_at", id="once-after-the-last-instant"),
        pytest.param({"kind": "once", "run_at": "9999-12-31 23:00"}, "run_at", id="once-local-beyond-year-9999"),
        pytest.param({"kind": "once", "delay_seconds": "60"}, "delay_seconds", id="delay-text"),
        pytest.param({"kind": "daily", "at": "25:00"}, "at", id="daily-bad-time"),
        pytest.param({"kind": "daily"}, "at", id="daily-missing-time"),
        pytest.param({"kind": "weekly", "days": "0,4", "at": "10:00"}, "days", id="weekly-days-not-a-list"),
        pytest.param({"kind": "weekly", "days": [0, "4"], "at": "10:00"}, "days", id="weekly-mixed-days"),
        pytest.param({"kind": "weekly", "days": [7], "at": "10:00"}, "days", id="weekly-day-7"),
        pytest.param({"kind": "weekly", "days": [0], "at": "10"}, "at", id="weekly-bad-time"),
        pytest.param({"kind": "hourly", "minute": 60}, "minute", id="hourly-60"),
        pytest.param(
            {"kind": "cron", "cron_expression": "* * * * *", "jitter_seconds": -1},
            "jitter_seconds",
            id="jitter-negative",
        ),
        pytest.param(
            {"kind": "cron", "cron_expression": "* * * * *", "jitter_seconds": "5"}, "jitter_seconds", id="jitter-text"
        ),
    ],
)
def test_it_rejects_bad_trigger_input_naming_the_field(data, field):
    with pytest.raises(triggers.ScheduleError) as caught:
        triggers.compile_trigger(data, BERLIN, NOW)
    assert caught.value.field == field
    assert caught.value.message


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        pytest.param(triggers.TriggerSpec(kind="weekly"), "kind", id="preset-is-not-a-kind"),
        pytest.param(cron("0 0 30 2 *"), "cron_expression", id="cron-never-fires"),
        pytest.param(triggers.TriggerSpec(kind="interval", interval_seconds=60), "interval_seconds", id="no-anchor"),
        pytest.param(every(0, "2026-03-01 12:00"), "interval_seconds", id="interval-zero"),
        pytest.param(triggers.TriggerSpec(kind="once"), "run_at", id="once-without-run-at"),
        pytest.param(cron("* * * * *", jitter_seconds=-5), "jitter_seconds", id="negative-jitter"),
    ],
)
def test_it_validates_a_stored_trigger_naming_the_field(spec, field):
    with pytest.raises(triggers.ScheduleError) as caught:
        triggers.validate_spec(spec)
    assert caught.value.field == field


# The window: start_at, end_at, runs left ---------------------------------------------------


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        pytest.param(
            triggers.Window(start_at=utc("2026-03-01 13:00")),
            ["03-01 13:00", "03-01 13:05", "03-01 13:10", "03-01 13:15"],
            id="start-at-is-inclusive",
        ),
        pytest.param(
            triggers.Window(start_at=utc("2026-03-01 13:02")),
            ["03-01 13:05", "03-01 13:10", "03-01 13:15", "03-01 13:20"],
            id="start-at-between-runs",
        ),
        pytest.param(
            triggers.Window(start_at=utc("2026-03-01 11:00")),
            ["03-01 12:05", "03-01 12:10", "03-01 12:15", "03-01 12:20"],
            id="start-at-already-passed",
        ),
        pytest.param(
            triggers.Window(end_at=utc("2026-03-01 12:15")),
            ["03-01 12:05", "03-01 12:10", "03-01 12:15"],
            id="end-at-is-inclusive",
        ),
        pytest.param(triggers.Window(runs_left=2), ["03-01 12:05", "03-01 12:10"], id="runs-left"),
        pytest.param(triggers.Window(runs_left=0), [], id="no-runs-left"),
        pytest.param(triggers.Window(runs_left=-1), [], id="negative-runs-left"),
        pytest.param(
            triggers.Window(start_at=utc("2026-03-01 13:00"), end_at=utc("2026-03-01 12:30")),
            [],
            id="window-already-over",
        ),
    ],
)
def test_it_keeps_runs_inside_the_window(window, expected):
    # At most four: an open window yields four, a closed one fewer and then stops.
    assert short(take(cron("*/5 * * * *"), NOW, 4, window=window)) == expected


def test_an_interval_anchored_at_the_window_start_fires_at_it():
    window = triggers.Window(start_at=utc("2026-03-01 13:00"))
    assert short(take(every(600, "2026-03-01 13:00"), NOW, 2, window=window)) == ["03-01 13:00", "03-01 13:10"]


# Jitter --------------------------------------------------------------------------------------


def test_the_same_seed_and_occurrence_get_the_same_offset():
    occurrence = utc("2026-03-01 12:00")
    first = triggers.jitter_offset("job:7", occurrence, 600)
    assert triggers.jitter_offset("job:7", occurrence.astimezone(BERLIN), 600) == first
    assert timedelta(0) <= first <= timedelta(seconds=600)


def test_offsets_vary_by_occurrence_and_by_seed():
    occurrences = [utc("2026-03-01 12:00") + timedelta(minutes=5 * k) for k in range(50)]
    one = [triggers.jitter_offset("job:1", o, 3600) for o in occurrences]
    other = [triggers.jitter_offset("job:2", o, 3600) for o in occurrences]
    assert len(set(one)) > 1
    assert one != other
    assert all(offset.microseconds == 0 and timedelta(0) <= offset <= timedelta(hours=1) for offset in one + other)


def test_no_jitter_means_no_offset():
    assert triggers.jitter_offset("job:1", NOW, 0) == timedelta(0)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.text(min_size=1, max_size=8),
    jitter=st.integers(1, 2 * 3600),
    minutes_after=st.integers(0, 24 * 60),
    use_interval=st.booleans(),
)
def test_jittered_runs_are_the_occurrences_pushed_later_in_order(seed, jitter, minutes_after, use_interval):
    spec = (
        every(300, "2026-03-01 00:00", jitter_seconds=jitter, seed=seed)
        if use_interval
        else cron("*/5 * * * *", jitter_seconds=jitter, seed=seed)
    )
    after = NOW + timedelta(minutes=minutes_after, seconds=17)
    runs = take(spec, after, 20)
    # Independently: every 5-minute occurrence pushed by its own offset, sorted, each instant once.
    occurrences = [utc("2026-03-01 00:00") + timedelta(minutes=5 * k) for k in range(2000)]
    pushed = sorted({o + triggers.jitter_offset(seed, o, jitter) for o in occurrences})
    assert runs == [instant for instant in pushed if instant > after][:20]
    assert all(earlier < later for earlier, later in pairwise(runs))
    # A preview from a later instant shows the same times: the tail of this one.
    assert take(spec, runs[4], 10) == runs[5:15]


# Calendars: local dates in the job's zone ------------------------------------------------------


def test_it_skips_excluded_dates():
    spec = cron("0 9 * * *", excluded_dates=frozenset({date(2026, 12, 25), date(2026, 12, 26)}))
    assert take(spec, utc("2026-12-24 00:00"), 2, zone=BERLIN) == [utc("2026-12-24 08:00"), utc("2026-12-27 08:00")]


def test_it_reads_excluded_dates_in_the_jobs_zone():
    # 21:00 EST on the 24th is already the 25th in UTC: it runs. 21:00 on the 25th does not.
    spec = cron("0 21 * * *", excluded_dates=frozenset({date(2026, 12, 25)}))
    assert take(spec, utc("2026-12-24 12:00"), 2, zone=NEW_YORK) == [utc("2026-12-25 02:00"), utc("2026-12-27 02:00")]


def test_it_runs_on_business_days_only():
    spec = cron("0 9 * * *", business_days_only=True)
    assert take(spec, utc("2026-03-06 07:00"), 2, zone=BERLIN) == [utc("2026-03-06 08:00"), utc("2026-03-09 08:00")]


def test_it_reads_business_days_in_the_jobs_zone():
    # 08:00 NZDT (UTC+13) on Monday 9 March is 19:00 UTC on Sunday the 8th: a business day there.
    spec = cron("0 8 * * *", business_days_only=True)
    runs = take(spec, utc("2026-03-05 12:00"), 2, zone=ZoneInfo("Pacific/Auckland"))
    assert runs == [utc("2026-03-05 19:00"), utc("2026-03-08 19:00")]


def test_business_days_and_excluded_dates_combine():
    spec = cron("0 9 * * *", business_days_only=True, excluded_dates=frozenset({date(2026, 3, 9)}))
    assert take(spec, utc("2026-03-06 09:00"), 1, zone=BERLIN) == [utc("2026-03-10 08:00")]


def test_a_one_off_run_on_an_excluded_date_never_fires():
    christmas = frozenset({date(2026, 12, 25)})
    spec = triggers.TriggerSpec(kind="once", run_at=utc("2026-12-25 10:00"), excluded_dates=christmas)
    assert take(spec, NOW) == []


# A job's runs: the union of its triggers ----------------------------------------------------


def test_next_runs_is_the_union_of_the_triggers_each_instant_once():
    specs = [
        cron("0 9 * * *"),
        cron("0 9,12 * * *"),
        triggers.TriggerSpec(kind="once", run_at=utc("2026-03-02 10:00")),
        every(6 * 3600, "2026-03-02 06:00"),
    ]
    runs = triggers.next_runs(specs, UTC_ZONE, utc("2026-03-02 00:00"), 8)
    assert short(runs) == [
        "03-02 06:00",
        "03-02 09:00",
        "03-02 10:00",
        "03-02 12:00",
        "03-02 18:00",
        "03-03 00:00",
        "03-03 06:00",
        "03-03 09:00",
    ]


def test_next_runs_stops_at_count_and_at_runs_left():
    specs = [cron("0 * * * *"), cron("30 * * * *")]
    assert short(triggers.next_runs(specs, UTC_ZONE, NOW, 3)) == ["03-01 12:30", "03-01 13:00", "03-01 13:30"]
    window = triggers.Window(runs_left=2)
    assert short(triggers.next_runs(specs, UTC_ZONE, NOW, 10, window)) == ["03-01 12:30", "03-01 13:00"]


def test_next_runs_respects_the_window_for_every_trigger():
    specs = [cron("0 * * * *"), every(1800, "2026-03-01 00:15")]
    window = triggers.Window(start_at=utc("2026-03-01 13:00"), end_at=utc("2026-03-01 14:00"))
    runs = triggers.next_runs(specs, UTC_ZONE, NOW, 10, window)
    assert short(runs) == ["03-01 13:00", "03-01 13:15", "03-01 13:45", "03-01 14:00"]


def test_next_runs_of_nothing_is_empty():
    assert triggers.next_runs([], UTC_ZONE, NOW, 5) == []
    past = triggers.TriggerSpec(kind="once", run_at=utc("2026-01-01 00:00"))
    assert triggers.next_runs([past], UTC_ZONE, NOW, 5) == []


def test_next_fire_time_is_the_first_or_none():
    assert triggers.next_fire_time(cron("0 0 * * *"), UTC_ZONE, NOW) == utc("2026-03-02 00:00")
    assert triggers.next_fire_time(triggers.TriggerSpec(kind="once", run_at=NOW), UTC_ZONE, NOW) is None
