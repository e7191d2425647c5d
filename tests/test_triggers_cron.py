"""Cron as Vixie/cronie reads it, time zone names, and schedules in words (triggers.py).

Expected dates come from a calendar: 2026-01-01 is a Thursday, so the Mondays of January
2026 are the 5th, 12th, 19th and 26th, and February 1st is a Sunday.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

import pytest
from django.utils import translation

from scheduler_app import triggers


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def fires(expression: str, after: str = "2026-01-01 00:00", count: int = 4, zone: str = "UTC") -> list[str]:
    """The next fire times as short UTC strings: `01-05 00:00` (minutes) or `01-05 00:00:10` (seconds)."""
    spec = triggers.TriggerSpec(kind="cron", cron_expression=expression)
    stream = triggers.fire_times(spec, ZoneInfo(zone), utc(after))
    return [f"{t:%m-%d %H:%M}" + (f":{t:%S}" if t.second else "") for t in islice(stream, count)]


# Accepted expressions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        pytest.param("0 0 * * 0", ["01-04 00:00", "01-11 00:00"], id="0-is-sunday"),
        pytest.param("0 0 * * 7", ["01-04 00:00", "01-11 00:00"], id="7-is-sunday"),
        pytest.param("0 0 * * 1", ["01-05 00:00", "01-12 00:00"], id="1-is-monday"),
        pytest.param("0 0 * * SUN", ["01-04 00:00", "01-11 00:00"], id="sun-name"),
        pytest.param("0 9 * * MON-FRI", ["01-01 09:00", "01-02 09:00", "01-05 09:00"], id="mon-fri-range"),
        pytest.param("0 9 * * mon-fri", ["01-01 09:00", "01-02 09:00", "01-05 09:00"], id="lowercase-names"),
        pytest.param("0 0 1 JAN,JUL *", ["07-01 00:00", "01-01 00:00"], id="month-names"),
        pytest.param("0 12 * * 5-7", ["01-02 12:00", "01-03 12:00", "01-04 12:00", "01-09 12:00"], id="range-up-to-7"),
        pytest.param("0 0 L * *", ["01-31 00:00", "02-28 00:00", "03-31 00:00", "04-30 00:00"], id="L-last-day"),
        pytest.param(
            "0 0 * * 1#1", ["01-05 00:00", "02-02 00:00", "03-02 00:00", "04-06 00:00"], id="1#1-first-monday"
        ),
        pytest.param("0 0 * * 5#3", ["01-16 00:00", "02-20 00:00"], id="5#3-third-friday"),
        # Feb 15 and Mar 15 2026 are Sundays: the nearest weekday is Monday the 16th.
        pytest.param(
            "0 0 15W * *", ["01-15 00:00", "02-16 00:00", "03-16 00:00", "04-15 00:00"], id="15W-nearest-weekday"
        ),
        pytest.param("0 0 * * 5L", ["01-30 00:00", "02-27 00:00", "03-27 00:00", "04-24 00:00"], id="5L-last-friday"),
        pytest.param(
            "*/10 * * * * *", ["01-01 00:00:10", "01-01 00:00:20", "01-01 00:00:30"], id="six-fields-every-10-seconds"
        ),
        pytest.param("30 0 9 * * *", ["01-01 09:00:30", "01-02 09:00:30"], id="six-fields-seconds-first"),
        pytest.param("  0   9  *  *  * ", ["01-01 09:00", "01-02 09:00"], id="extra-whitespace"),
    ],
)
def test_it_reads_cron_like_vixie_cron(expression, expected):
    assert fires(expression, count=len(expected)) == expected


@pytest.mark.parametrize(
    ("macro", "after", "expected"),
    [
        pytest.param("@daily", "2026-01-01 12:00", ["01-02 00:00", "01-03 00:00"], id="daily"),
        pytest.param("@midnight", "2026-01-01 12:00", ["01-02 00:00", "01-03 00:00"], id="midnight"),
        pytest.param("@hourly", "2026-01-01 12:30", ["01-01 13:00", "01-01 14:00"], id="hourly"),
        pytest.param("@weekly", "2026-01-01 12:00", ["01-04 00:00", "01-11 00:00"], id="weekly-on-sunday"),
        pytest.param("@monthly", "2026-01-01 12:00", ["02-01 00:00", "03-01 00:00"], id="monthly"),
        pytest.param("@yearly", "2026-01-01 12:00", ["01-01 00:00"], id="yearly"),
        pytest.param("@annually", "2026-06-01 12:00", ["01-01 00:00"], id="annually"),
        pytest.param("@DAILY", "2026-01-01 12:00", ["01-02 00:00"], id="upper-case"),
    ],
)
def test_it_expands_macros(macro, after, expected):
    assert fires(macro, after=after, count=len(expected)) == expected


def test_it_fires_yearly_macros_in_the_next_year():
    spec = triggers.TriggerSpec(kind="cron", cron_expression="@yearly")
    assert triggers.next_fire_time(spec, ZoneInfo("UTC"), utc("2026-01-01 12:00")) == utc("2027-01-01 00:00")


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # Both day fields restricted: either one matching is enough (the 1st, or any Monday).
        pytest.param("0 0 1 * MON", ["01-05", "01-12", "01-19", "01-26", "02-01", "02-02"], id="day-1-or-monday"),
        pytest.param("0 0 1,15 * 5", ["01-02", "01-09", "01-15", "01-16"], id="1st-15th-or-friday"),
        # A February 30th never comes, but the Mondays of February do.
        pytest.param("0 0 30 2 MON", ["02-02", "02-09", "02-16", "02-23"], id="never-day-or-monday"),
        # Day-of-week with # or L, day-of-month with W or L: still either one.
        pytest.param("0 0 1 * 1#1", ["01-05", "02-01", "02-02", "03-01", "03-02"], id="day-1-or-first-monday"),
        pytest.param("0 0 15 * 5L", ["01-15", "01-30", "02-15", "02-27"], id="15th-or-last-friday"),
        pytest.param("0 0 L * 5L", ["01-30", "01-31", "02-27", "02-28"], id="last-day-or-last-friday"),
        pytest.param("0 0 15W * 1", ["01-05", "01-12", "01-15", "01-19"], id="15W-or-monday"),
        # One day field starts with `*`: both must match (odd days that are Mondays).
        pytest.param("0 0 */2 * 1", ["01-05", "01-19", "02-09", "02-23"], id="*/2-and-monday"),
        pytest.param("0 0 15 * */3", ["02-15", "03-15", "04-15", "07-15"], id="15th-and-sun-wed-sat"),
        pytest.param("0 0 */2 * 5L", ["02-27", "03-27", "05-29", "07-31"], id="odd-day-and-last-friday"),
    ],
)
def test_it_combines_the_two_day_fields_like_vixie_cron(expression, expected):
    assert [run[:5] for run in fires(expression, count=len(expected))] == expected


@pytest.mark.parametrize(
    ("expression", "fixed_time"),
    [
        ("30 2 * * *", True),
        ("0 9,17 * * 1-5", True),
        ("0-30/10 8-10 * * *", True),
        ("@daily", True),
        ("*/30 * * * *", False),
        ("0 */2 * * *", False),
        ("*/15 2 * * *", False),
        ("30 * * * *", False),
        ("@hourly", False),
        ("0 30 2 * * *", True),
    ],
)
def test_it_tells_fixed_time_from_wildcard_expressions(expression, fixed_time):
    assert triggers.parse_cron(expression).fixed_time is fixed_time


# Rejected expressions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "message_parts"),
    [
        pytest.param("0 0 30 2 *", ["never fires", "day 30 does not exist in February"], id="february-30"),
        pytest.param("0 0 31 4 *", ["never fires", "day 31 does not exist in April"], id="april-31"),
        pytest.param("0 0 31 2,4 *", ["day 31 does not exist in February, April"], id="two-short-months"),
        pytest.param("0 0 * *", ["5 fields", "has 4"], id="four-fields"),
        pytest.param("0 0 * * * * *", ["5 fields", "6 with seconds first", "has 7"], id="seven-fields"),
        pytest.param("60 * * * *", ["minute field", "'60'"], id="minute-60"),
        pytest.param("* 24 * * *", ["hour field", "'24'"], id="hour-24"),
        pytest.param("* * 32 * *", ["day of month field", "'32'"], id="day-32"),
        pytest.param("* * 0 * *", ["day of month field", "'0'"], id="day-0"),
        pytest.param("* * * 13 *", ["month field", "'13'"], id="month-13"),
        pytest.param("* * * * 8", ["day of week field", "'8'"], id="weekday-8"),
        pytest.param("* * * * FUNDAY", ["day of week field"], id="weekday-name"),
        pytest.param("61 * * * * *", ["second field", "'61'"], id="second-61"),
        pytest.param("abc * * * *", ["minute field", "'abc'"], id="minute-text"),
        pytest.param("@reboot", ["Unknown macro '@reboot'", "@daily"], id="reboot"),
        pytest.param("", ["Enter a cron expression"], id="empty"),
        pytest.param("   ", ["Enter a cron expression"], id="blank"),
    ],
)
def test_it_rejects_a_bad_expression_saying_what_is_wrong(expression, message_parts):
    with pytest.raises(triggers.ScheduleError) as caught:
        triggers.parse_cron(expression)
    assert caught.value.field == "cron_expression"
    for part in message_parts:
        assert part in caught.value.message
    assert str(caught.value) == caught.value.message


def test_it_names_the_field_the_caller_asks_for():
    with pytest.raises(triggers.ScheduleError) as caught:
        triggers.parse_cron("99 * * * *", field="schedule")
    assert caught.value.field == "schedule"


def test_a_schedule_error_is_a_value_error():
    with pytest.raises(ValueError, match="day 31 does not exist in April"):
        triggers.parse_cron("0 0 31 4 *")


def test_it_says_what_is_wrong_in_simplified_chinese_when_that_is_the_language():
    with translation.override("zh-hans"), pytest.raises(triggers.ScheduleError) as caught:
        triggers.parse_cron("0 0 30 2 *")
    assert caught.value.field == "cron_expression"
    assert any("\u4e00" <= char <= "\u9fff" for char in caught.value.message)
    assert "'0 0 30 2 *'" in caught.value.message  # the expression itself is not translated
    with pytest.raises(triggers.ScheduleError) as caught:  # English again
        triggers.parse_cron("0 0 30 2 *")
    assert caught.value.message == "'0 0 30 2 *' never fires: day 30 does not exist in February."


def test_it_accepts_a_day_that_exists_only_in_leap_years():
    assert fires("0 0 29 2 *", count=2) == ["02-29 00:00", "02-29 00:00"]
    spec = triggers.TriggerSpec(kind="cron", cron_expression="0 0 29 2 *")
    assert triggers.next_fire_time(spec, ZoneInfo("UTC"), utc("2026-01-01 00:00")) == utc("2028-02-29 00:00")


# Time zones --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("America", id="a-region-not-a-zone"),
        pytest.param("utc ", id="trailing-space"),
        pytest.param("../../etc/passwd", id="a-path"),
        pytest.param("", id="empty"),
        pytest.param("Mars/Olympus", id="unknown"),
        pytest.param("europe/berlin", id="wrong-case"),
        pytest.param(None, id="none"),
    ],
)
def test_it_rejects_what_is_not_an_iana_zone_name(name):
    with pytest.raises(triggers.ScheduleError) as caught:
        triggers.validate_timezone(name)
    assert caught.value.field == "timezone"
    assert "is not an IANA time zone name" in caught.value.message


@pytest.mark.parametrize("name", ["Europe/Berlin", "UTC", "America/Argentina/Buenos_Aires", "Pacific/Chatham"])
def test_it_accepts_an_iana_zone_name(name):
    assert triggers.validate_timezone(name) == ZoneInfo(name)


def test_it_names_the_zone_field_the_caller_asks_for():
    with pytest.raises(triggers.ScheduleError) as caught:
        triggers.validate_timezone("America", field="tz")
    assert caught.value.field == "tz"


# Schedules in words -----------------------------------------------------------------------

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("expression", "preset", "expected"),
    [
        pytest.param("0 9 * * 1-5", "", "At 09:00, Monday through Friday (Europe/Berlin)", id="weekdays"),
        pytest.param("30 14 * * *", "", "At 14:30 (Europe/Berlin)", id="24-hour-clock"),
        pytest.param("0 0 * * 7", "", "At 00:00, only on Sunday (Europe/Berlin)", id="7-is-sunday"),
        pytest.param("0 0 * * 5L", "", "At 00:00, on the last Friday of the month (Europe/Berlin)", id="last-friday"),
        pytest.param(
            "0 0 * * 1#1", "", "At 00:00, on the first Monday of the month (Europe/Berlin)", id="first-monday"
        ),
        pytest.param("0 0 1 * MON", "", "At 00:00, on day 1 of the month, or on Monday (Europe/Berlin)", id="or-rule"),
        pytest.param("@daily", "", "At 00:00 (Europe/Berlin)", id="macro"),
        pytest.param("30 9 * * *", "daily", "Every day at 09:30 (Europe/Berlin)", id="daily-preset"),
        pytest.param("0 10 * * 1,3", "weekly", "Every Monday, Wednesday at 10:00 (Europe/Berlin)", id="weekly-preset"),
        pytest.param("0 18 * * 0", "weekly", "Every Sunday at 18:00 (Europe/Berlin)", id="weekly-sunday"),
        pytest.param("5 * * * *", "hourly", "Every hour at :05 (Europe/Berlin)", id="hourly-preset"),
    ],
)
def test_it_describes_a_cron_trigger_with_its_zone(expression, preset, expected):
    spec = triggers.TriggerSpec(kind="cron", cron_expression=expression, preset=preset)
    assert triggers.describe(spec, BERLIN) == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            triggers.TriggerSpec(kind="interval", interval_seconds=5400, anchor=utc("2026-03-01 12:00")),
            "Every 1 hour 30 minutes, counted from 2026-03-01 13:00 CET (Europe/Berlin)",
            id="interval-with-anchor",
        ),
        pytest.param(triggers.TriggerSpec(kind="interval", interval_seconds=300), "Every 5 minutes", id="5-minutes"),
        pytest.param(triggers.TriggerSpec(kind="interval", interval_seconds=1), "Every second", id="1-second"),
        pytest.param(
            triggers.TriggerSpec(kind="interval", interval_seconds=90061),
            "Every 1 day 1 hour 1 minute 1 second",
            id="every-unit",
        ),
        pytest.param(
            triggers.TriggerSpec(kind="once", run_at=utc("2026-07-01 16:45")),
            "Once at 2026-07-01 18:45 CEST (Europe/Berlin)",
            id="once-24-hour-clock",
        ),
        pytest.param(
            triggers.TriggerSpec(
                kind="cron",
                cron_expression="0 9 * * *",
                jitter_seconds=30,
                business_days_only=True,
                calendar_name="Holidays",
            ),
            "At 09:00 (Europe/Berlin), up to 30s later (jitter), business days only, "
            "skipping the dates of calendar 'Holidays'",
            id="cron-with-jitter-and-calendar",
        ),
    ],
)
def test_it_describes_every_kind_of_trigger(spec, expected):
    assert triggers.describe(spec, BERLIN) == expected


def test_it_describes_a_cron_expression_without_a_zone():
    assert triggers.describe_cron("0 9 * * 1-5") == "At 09:00, Monday through Friday"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            triggers.TriggerSpec(kind="cron", cron_expression="0 9 * * 1-5"),
            "在 09:00, 星期一 到 星期五 (Europe/Berlin)",
            id="cron-with-day-names",
        ),
        pytest.param(
            triggers.TriggerSpec(kind="cron", cron_expression="0 10 * * 1,3", preset="weekly"),
            "每星期一, 星期三 10:00 (Europe/Berlin)",
            id="weekly-preset",
        ),
        pytest.param(
            triggers.TriggerSpec(kind="cron", cron_expression="5 * * * *", preset="hourly"),
            "每小时的第 05 分 (Europe/Berlin)",
            id="hourly-preset",
        ),
        pytest.param(triggers.TriggerSpec(kind="interval", interval_seconds=5400), "每 1 小时 30 分钟", id="interval"),
        pytest.param(triggers.TriggerSpec(kind="interval", interval_seconds=3600), "每小时", id="one-unit"),
        pytest.param(
            triggers.TriggerSpec(kind="once", run_at=utc("2026-07-01 16:45"), business_days_only=True),
            "于 2026-07-01 18:45 CEST (Europe/Berlin) 运行一次，仅工作日",
            id="once",
        ),
    ],
)
def test_it_describes_a_trigger_in_simplified_chinese_when_that_is_the_language(spec, expected):
    with translation.override("zh-hans"):
        assert triggers.describe(spec, BERLIN) == expected
    assert not any("\u4e00" <= char <= "\u9fff" for char in triggers.describe(spec, BERLIN))  # English again


def test_it_refuses_to_describe_an_invalid_expression():
    with pytest.raises(triggers.ScheduleError):
        triggers.describe_cron("0 0 31 4 *")


# Formatting instants ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        pytest.param(utc("2026-03-08 07:00"), "2026-03-08T07:00:00Z", id="utc"),
        pytest.param(
            datetime(2026, 3, 8, 3, 0, tzinfo=ZoneInfo("America/New_York")),
            "2026-03-08T07:00:00Z",
            id="converts-to-utc",
        ),
        pytest.param(
            datetime(2026, 1, 1, 5, 30, tzinfo=ZoneInfo("Asia/Kolkata")), "2026-01-01T00:00:00Z", id="half-hour-offset"
        ),
        pytest.param(
            utc("2026-01-01 00:00") + timedelta(microseconds=1500),
            "2026-01-01T00:00:00.001500Z",
            id="keeps-microseconds",
        ),
    ],
)
def test_it_formats_an_instant_as_iso_utc_with_z(instant, expected):
    assert triggers.format_utc(instant) == expected


@pytest.mark.parametrize(
    ("instant", "zone", "expected"),
    [
        (utc("2026-03-08 07:00"), "America/New_York", "2026-03-08 03:00 EDT (America/New_York)"),
        (utc("2026-11-01 06:30"), "America/New_York", "2026-11-01 01:30 EST (America/New_York)"),
        (utc("2026-04-04 15:15"), "Australia/Lord_Howe", "2026-04-05 01:45 +1030 (Australia/Lord_Howe)"),
    ],
)
def test_it_formats_local_time_with_the_abbreviation_and_the_zone(instant, zone, expected):
    assert triggers.format_local(instant, ZoneInfo(zone)) == expected
