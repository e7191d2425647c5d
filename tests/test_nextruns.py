"""`manage.py nextruns`: the next fire times of a schedule, one UTC instant per line.

Expected instants are worked out by hand (New York: 2026-03-08 07:00Z is 02:00 EST → 03:00 EDT;
2026-03-01 is a Sunday).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError

from scheduler_app import services

ROOT = Path(__file__).resolve().parent.parent


def nextruns(*args: str) -> tuple[list[str], str]:
    """Run the command in-process; answer (stdout lines, stderr text)."""
    out, err = io.StringIO(), io.StringIO()
    call_command("nextruns", *args, stdout=out, stderr=err)
    return out.getvalue().splitlines(), err.getvalue()


def usage_error(*args: str) -> CommandError:
    with pytest.raises(CommandError) as caught:
        nextruns(*args)
    assert caught.value.returncode == 2
    return caught.value


# Schedules given on the command line ----------------------------------------------------------


def test_it_prints_the_next_cron_times_as_utc_instants():
    lines, err = nextruns("30 2 * * *", "--tz", "America/New_York", "--after", "2026-03-07T12:00:00Z", "--count", "3")
    assert lines == ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z"]
    assert err == ""


def test_it_adds_the_local_time_with_local():
    lines, _ = nextruns(
        "30 2 * * *", "--tz", "America/New_York", "--after", "2026-03-07T12:00:00Z", "--count", "2", "--local"
    )
    assert lines == [
        "2026-03-08T07:00:00Z  2026-03-08 03:00 EDT (America/New_York)",
        "2026-03-09T06:30:00Z  2026-03-09 02:30 EDT (America/New_York)",
    ]


def test_it_prints_both_passes_of_a_repeated_hour_for_a_wildcard_job():
    lines, _ = nextruns("*/30 * * * *", "--tz", "America/New_York", "--after", "2026-11-01T05:15:00Z", "--count", "4")
    assert lines == ["2026-11-01T05:30:00Z", "2026-11-01T06:00:00Z", "2026-11-01T06:30:00Z", "2026-11-01T07:00:00Z"]


@pytest.mark.parametrize(
    ("after", "first"),
    [
        pytest.param("2026-03-01T12:00:00Z", "2026-03-01T13:00:00Z", id="z-suffix"),
        pytest.param("2026-03-01T12:00:00+00:00", "2026-03-01T13:00:00Z", id="utc-offset"),
        pytest.param("2026-03-01T12:00:00+01:00", "2026-03-01T12:00:00Z", id="other-offset"),
        pytest.param("2026-03-01T12:30:00", "2026-03-01T12:00:00Z", id="naive-is-local-to-tz"),
        pytest.param("2026-03-01 12:30", "2026-03-01T12:00:00Z", id="space-and-no-seconds"),
    ],
)
def test_it_reads_after_with_an_offset_or_in_the_zone(after, first):
    # Hourly at :00 in Berlin (UTC+1 in March): 12:30 local is 11:30Z, so the next is 12:00Z.
    lines, _ = nextruns("0 * * * *", "--tz", "Europe/Berlin", "--after", after, "--count", "1")
    assert lines == [first]


def test_a_naive_after_in_the_gap_reads_as_the_end_of_the_gap():
    lines, _ = nextruns("*/30 * * * *", "--tz", "America/New_York", "--after", "2026-03-08T02:30", "--count", "2")
    assert lines == ["2026-03-08T07:30:00Z", "2026-03-08T08:00:00Z"]


def test_it_searches_from_now_by_default():
    with time_machine.travel(datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC), tick=False):
        lines, _ = nextruns("* * * * *", "--count", "2")
    assert lines == ["2026-03-01T12:01:00Z", "2026-03-01T12:02:00Z"]


def test_it_prints_ten_by_default_and_up_to_a_thousand():
    lines, _ = nextruns("* * * * *", "--after", "2026-03-01T00:00:00Z")
    assert len(lines) == 10
    lines, _ = nextruns("* * * * *", "--after", "2026-03-01T00:00:00Z", "--count", "1000")
    assert (len(lines), lines[-1]) == (1000, "2026-03-01T16:40:00Z")


def test_it_counts_an_interval_from_after_and_ignores_dst():
    lines, _ = nextruns(
        "--interval", "86400", "--tz", "America/New_York", "--after", "2026-03-07T09:00", "--count", "2", "--local"
    )
    assert lines == [
        "2026-03-08T14:00:00Z  2026-03-08 10:00 EDT (America/New_York)",
        "2026-03-09T14:00:00Z  2026-03-09 10:00 EDT (America/New_York)",
    ]


def test_daily_keeps_the_wall_clock():
    lines, _ = nextruns("--daily", "09:00", "--tz", "America/New_York", "--after", "2026-03-07T09:00", "--count", "2")
    assert lines == ["2026-03-08T13:00:00Z", "2026-03-09T13:00:00Z"]


@pytest.mark.parametrize("days", ["0,2", "mon,wed", "Monday,Wednesday", "MON, wed"])
def test_weekly_takes_day_numbers_from_monday_or_names(days):
    lines, _ = nextruns(
        "--weekly", days, "--at", "10:00", "--tz", "Europe/Berlin", "--after", "2026-03-01T12:00:00Z", "--count", "3"
    )
    assert lines == ["2026-03-02T09:00:00Z", "2026-03-04T09:00:00Z", "2026-03-09T09:00:00Z"]


@pytest.mark.parametrize("minute", ["30", ":30"])
def test_hourly_fires_at_the_minute(minute):
    lines, _ = nextruns("--hourly", minute, "--tz", "Asia/Kolkata", "--after", "2026-03-01T12:00:00Z", "--count", "2")
    # Kolkata is UTC+05:30: hh:30 local is hh:00 UTC.
    assert lines == ["2026-03-01T13:00:00Z", "2026-03-01T14:00:00Z"]


# Bad input: a message naming the problem, status 2 -------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["0 0 31 4 *"], "day 31 does not exist in April", id="cron-never-fires"),
        pytest.param(["61 * * * *"], "minute field", id="cron-out-of-range"),
        pytest.param(["@reboot"], "Unknown macro", id="cron-reboot"),
        pytest.param(["* * * *"], "has 4", id="cron-four-fields"),
        pytest.param(["* * * * *", "--tz", "America"], "--tz: 'America' is not an IANA time zone", id="zone-region"),
        pytest.param(["* * * * *", "--tz", "utc "], "--tz", id="zone-with-space"),
        pytest.param(["* * * * *", "--after", "yesterday"], "--after: 'yesterday' is not an ISO-8601", id="bad-after"),
        pytest.param(["* * * * *", "--daily", "09:00"], "exactly one schedule", id="two-kinds"),
        pytest.param(["--hourly", "5", "--interval", "60"], "got --interval and --hourly", id="two-options"),
        pytest.param([], "got none", id="no-schedule"),
        pytest.param(["* * * * *", "--count", "0"], "--count must be between 1 and 1000", id="count-0"),
        pytest.param(["* * * * *", "--count", "1001"], "--count must be between 1 and 1000", id="count-1001"),
        pytest.param(["--interval", "0"], "--interval", id="interval-0"),
        pytest.param(["--daily", "25:00"], "--daily: '25:00' is not a time of day", id="daily-bad"),
        pytest.param(["--weekly", "0,9", "--at", "10:00"], "--weekly", id="weekly-day-9"),
        pytest.param(["--weekly", "mon,funday", "--at", "10:00"], "'funday' is not a weekday", id="weekly-bad-name"),
        pytest.param(["--weekly", "0"], "--weekly: needs --at", id="weekly-without-at"),
        pytest.param(["--weekly", "0", "--at", "10"], "--at", id="weekly-bad-at"),
        pytest.param(["--daily", "09:00", "--at", "10:00"], "--at goes with --weekly", id="at-without-weekly"),
        pytest.param(["--hourly", "60"], "--hourly", id="hourly-60"),
    ],
)
def test_it_rejects_bad_input_with_status_2(args, message):
    assert message in str(usage_error(*args))


# Stored jobs -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_shows_a_stored_job_with_all_its_triggers_and_calendars(make_job):
    holidays = services.calendar_create(name="Holidays", excluded_dates=["2026-03-03"], business_days_only=True)
    make_job(
        name="report",
        timezone="Europe/Berlin",
        triggers=[
            {"kind": "daily", "at": "09:00", "calendar": holidays.pk},
            {"kind": "once", "run_at": "2026-03-02 12:00"},
        ],
    )
    lines, err = nextruns("--job", "report", "--after", "2026-03-01T12:00:00Z", "--count", "4")
    # Mon 2nd 09:00 CET, the one-off at 12:00 CET, Tue 3rd a holiday, Wed 4th, Thu 5th.
    assert lines == ["2026-03-02T08:00:00Z", "2026-03-02T11:00:00Z", "2026-03-04T08:00:00Z", "2026-03-05T08:00:00Z"]
    first = err.splitlines()[0]
    assert first.startswith("# report: Every day at 09:00 (Europe/Berlin)")
    assert "business days only" in first and "'Holidays'" in first
    assert "Once at 2026-03-02 12:00 CET (Europe/Berlin)" in first


@pytest.mark.django_db
def test_it_shows_a_stored_jobs_window(make_job):
    make_job(
        name="windowed",
        triggers=[{"kind": "hourly", "minute": 0}],
        start_at=datetime(2026, 3, 3, tzinfo=UTC),
        end_at=datetime(2026, 3, 4, tzinfo=UTC),
        max_runs=2,
    )
    lines, err = nextruns("--job", "windowed", "--after", "2026-03-01T12:00:00Z", "--count", "5")
    assert lines == ["2026-03-03T00:00:00Z", "2026-03-03T01:00:00Z"]
    assert "# window: from 2026-03-03T00:00:00Z, until 2026-03-04T00:00:00Z, 2 runs left" in err
    assert "# no more fire times after 2" in err


@pytest.mark.django_db
def test_it_shows_a_job_in_its_own_zone_with_local(make_job):
    make_job(name="sydney", timezone="Australia/Sydney", triggers=[{"kind": "cron", "cron_expression": "30 2 * * *"}])
    lines, _ = nextruns("--job", "sydney", "--after", "2026-10-03T00:00:00Z", "--count", "1", "--local")
    assert lines == ["2026-10-03T16:00:00Z  2026-10-04 03:00 AEDT (Australia/Sydney)"]


@pytest.mark.django_db
def test_it_says_when_a_stored_job_is_paused(make_job):
    make_job(name="resting", paused=True)
    lines, err = nextruns("--job", "resting", "--after", "2026-03-01T12:00:00Z", "--count", "1")
    assert lines == ["2026-03-01T12:05:00Z"]
    assert "# paused" in err


@pytest.mark.django_db
def test_it_rejects_an_unknown_job_with_status_2():
    assert "--job: no job is named 'ghost'" in str(usage_error("--job", "ghost"))


# As a real process -------------------------------------------------------------------------


def run_manage(var_dir: Path, *args: str) -> subprocess.CompletedProcess:
    # SQLite in var_dir even when the suite itself runs on PostgreSQL.
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["TEMPORA_VAR_DIR"] = str(var_dir)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def var_dir(tmp_path_factory):
    """A migrated, empty database for the processes of this module."""
    path = tmp_path_factory.mktemp("var")
    done = run_manage(path, "migrate", "--noinput", "-v", "0")
    assert done.returncode == 0, done.stderr
    return path


def test_it_prints_one_instant_per_line_as_a_process(var_dir):
    done = run_manage(
        var_dir,
        "nextruns",
        "30 2 * * *",
        "--tz",
        "America/New_York",
        "--after",
        "2026-03-07T12:00:00Z",
        "--count",
        "3",
        "--local",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "2026-03-08T07:00:00Z  2026-03-08 03:00 EDT (America/New_York)",
        "2026-03-09T06:30:00Z  2026-03-09 02:30 EDT (America/New_York)",
        "2026-03-10T06:30:00Z  2026-03-10 02:30 EDT (America/New_York)",
    ]
    assert [line.split()[0] for line in done.stdout.splitlines()] == [
        "2026-03-08T07:00:00Z",
        "2026-03-09T06:30:00Z",
        "2026-03-10T06:30:00Z",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["0 0 30 2 *"], "day 30 does not exist in February", id="bad-cron"),
        pytest.param(["* * * * *", "--tz", "../../etc/passwd"], "--tz: '../../etc/passwd' is not", id="bad-zone"),
        pytest.param(["* * * * *", "--tz", ""], "--tz: '' is not", id="empty-zone"),
        pytest.param(["--job", "ghost", "--tz", ""], "--tz: '' is not", id="empty-zone-with-job"),
        pytest.param(["* * * * *", "--after", "2026-02-30T00:00:00Z"], "--after", id="bad-after"),
        pytest.param(["* * * * *", "--interval", "60"], "exactly one schedule", id="two-kinds"),
        pytest.param(["--job", "ghost"], "no job is named 'ghost'", id="unknown-job"),
        pytest.param(["* * * * *", "--count", "many"], "invalid int value: 'many'", id="argparse-error"),
    ],
)
def test_it_exits_with_status_2_on_bad_input_as_a_process(var_dir, args, message):
    done = run_manage(var_dir, "nextruns", *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""


@pytest.mark.django_db
@pytest.mark.parametrize("extra", [[], ["--local"]])
def test_an_empty_zone_is_an_error_naming_tz_not_utc(extra):
    # `--tz ''` used to be read as "no --tz" and print UTC times.
    assert "--tz: ''" in str(usage_error("0 9 * * *", "--tz", "", *extra))


@pytest.mark.django_db
def test_an_empty_zone_for_a_stored_job_is_an_error_too(make_job):
    make_job(name="report", timezone="Europe/Berlin")
    assert "--tz: ''" in str(usage_error("--job", "report", "--tz", ""))
