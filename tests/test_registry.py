"""registry.py: the @task decorator, autodiscovery, fluent code-defined schedules, and their sync."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError

from scheduler_app import services, triggers
from scheduler_app.models import Job, Trigger
from scheduler_app.registry import CodeJob, ScheduleBuilder, TaskInfo, code_jobs, registry, schedule, task


@pytest.fixture(autouse=True)
def clean_registry():
    """Unregister every task and code-defined schedule a test adds, so nothing leaks."""
    tasks_before = set(registry.names())
    jobs_before = dict(code_jobs)
    yield
    for name in set(registry.names()) - tasks_before:
        registry.unregister(name)
    code_jobs.clear()
    code_jobs.update(jobs_before)


def define(builder: ScheduleBuilder) -> CodeJob:
    """Decorate a fresh function with `builder` and answer the code-defined job it made."""

    def nightly_report() -> str:
        """Send the nightly report."""
        return "sent"

    builder(nightly_report)
    return code_jobs[f"{__name__}.define.<locals>.nightly_report"]


# @task ---------------------------------------------------------------------------------


def test_it_registers_a_task_under_its_dotted_name():
    @task
    def hello():
        return "hello"

    assert f"{__name__}.test_it_registers_a_task_under_its_dotted_name.<locals>.hello" in registry


def test_it_returns_the_function_itself_from_the_decorator():
    def hello():
        return "hello"

    assert task(hello) is hello
    assert task(name="tests.hello")(hello) is hello


def test_it_registers_a_task_under_an_explicit_name():
    @task(name="tests.billing.invoice")
    def invoice():
        return 1

    assert registry.get("tests.billing.invoice").func is invoice


def test_it_takes_the_description_from_the_first_paragraph_of_the_docstring():
    @task(name="tests.documented")
    def documented():
        """Send the invoices.

        Runs after the billing run.
        """

    assert registry.get("tests.documented").description == "Send the invoices."


def test_it_prefers_an_explicit_description():
    @task(name="tests.described", description="Bill everyone")
    def described():
        """Docstring."""

    assert registry.get("tests.described").description == "Bill everyone"


def test_it_lists_the_parameters_of_a_task():
    @task(name="tests.params")
    def params(path: str, count: int = 3, *rest, verbose: bool = False, **extra):
        return None

    assert [(p.name, p.kind, p.required, p.default, p.annotation) for p in registry.get("tests.params").parameters] == [
        ("path", "positional", True, None, "str"),
        ("count", "positional", False, 3, "int"),
        ("rest", "var_positional", False, None, ""),
        ("verbose", "keyword", False, False, "bool"),
        ("extra", "var_keyword", False, None, ""),
    ]


def test_it_accepts_the_same_function_registered_twice():
    def again():
        return None

    first = registry.register(again, name="tests.again")
    second = registry.register(again, name="tests.again")
    assert first == second
    assert registry.get("tests.again").func is again


def test_it_refuses_a_different_function_under_a_taken_name():
    @task(name="tests.taken")
    def original():
        return 1

    def impostor():
        return 2

    with pytest.raises(ValueError, match=r"tests.taken"):
        task(name="tests.taken")(impostor)
    assert registry.get("tests.taken").func is original


def test_it_answers_lookup_error_for_an_unknown_task():
    with pytest.raises(LookupError, match=r"nobody.registered.this"):
        registry.get("nobody.registered.this")


def test_it_calls_the_function_through_its_task_info():
    info = registry.register(lambda name="world": f"hello {name}", name="tests.greet")
    assert isinstance(info, TaskInfo)
    assert info(name="tempora") == "hello tempora"


def test_it_accepts_arguments_that_fit_the_signature():
    info = registry.register(lambda path, count=3: None, name="tests.fits")
    info.check_arguments(["/tmp/x"], {"count": 4})


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [([], {}), (["/tmp/x", 1, 2], {}), (["/tmp/x"], {"colour": "red"}), (["/tmp/x"], {"path": "/tmp/y"})],
)
def test_it_refuses_arguments_that_do_not_fit_the_signature(args, kwargs):
    info = registry.register(lambda path, count=3: None, name="tests.fits")
    with pytest.raises(TypeError):
        info.check_arguments(args, kwargs)


def test_a_tasks_validate_gets_every_argument_with_the_defaults_filled_in():
    seen = []
    info = registry.register(lambda path, count=3: None, name="tests.checked", validate=seen.append)
    info.validate_arguments(["in.csv"], {})
    assert seen == [{"path": "in.csv", "count": 3}]


@pytest.mark.django_db
def test_a_tasks_validate_refuses_a_job_on_kwargs_when_it_is_saved(now):
    def positive(arguments):
        if arguments["count"] <= 0:
            raise ValueError(f"count: {arguments['count']} is not above 0.")

    task(name="tests.counted", validate=positive)(lambda count=1: count)
    with pytest.raises(ValidationError) as failure:
        services.job_create(name="counted", task="tests.counted", kwargs={"count": 0}, now=now)
    assert failure.value.message_dict == {"kwargs": ["count: 0 is not above 0."]}
    assert services.job_create(name="counted", task="tests.counted", kwargs={"count": 2}, now=now).pk


# Autodiscovery ---------------------------------------------------------------------------


def test_it_registers_the_builtin_tasks_when_django_starts():
    assert "tempora.sample_job" in registry
    assert registry.get("tempora.sample_job")(message="hi")["message"] == "hi"


def test_it_can_discover_again_without_complaint():
    from scheduler_app.registry import autodiscover

    before = registry.names()
    autodiscover()
    assert registry.names() == before


# Fluent schedules --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("builder", "seconds"),
    [
        (lambda: schedule.every(10).seconds, 10),
        (lambda: schedule.every(10).minutes, 600),
        (lambda: schedule.every(2).hours, 7200),
        (lambda: schedule.every(3).days, 259_200),
        (lambda: schedule.every(1).minute, 60),
    ],
)
def test_it_builds_intervals_from_every(builder, seconds):
    assert builder().trigger_definition() == {"kind": "interval", "interval_seconds": seconds}


def test_it_builds_daily_at_a_time():
    assert schedule.daily.at("09:00").trigger_definition() == {
        "kind": "cron",
        "cron_expression": "0 9 * * *",
        "preset": "daily",
    }


def test_it_takes_a_zone_with_daily_at():
    job = define(schedule.daily.at("09:00", tz="America/New_York"))
    assert (job.timezone, job.trigger["cron_expression"]) == ("America/New_York", "0 9 * * *")


def test_it_builds_weekly_on_a_day():
    assert schedule.weekly.monday.at("10:00").trigger_definition() == {
        "kind": "cron",
        "cron_expression": "0 10 * * 1",
        "preset": "weekly",
    }


def test_it_builds_weekly_on_several_days():
    assert schedule.weekly.monday.friday.at("10:00").trigger_definition()["cron_expression"] == "0 10 * * 1,5"


def test_it_builds_weekly_on_weekdays():
    assert schedule.weekly.weekdays.at("09:00").trigger_definition()["cron_expression"] == "0 9 * * 1,2,3,4,5"


def test_it_builds_weekly_on_weekends():
    assert schedule.weekly.weekends.at("12:00").trigger_definition()["cron_expression"] == "0 12 * * 6,0"


def test_it_builds_hourly_at_a_minute():
    assert schedule.hourly.at(":30").trigger_definition() == {
        "kind": "cron",
        "cron_expression": "30 * * * *",
        "preset": "hourly",
    }


def test_it_builds_a_cron_schedule():
    assert schedule.cron("0 9 * * MON-FRI").trigger_definition() == {
        "kind": "cron",
        "cron_expression": "0 9 * * MON-FRI",
        "preset": "",
    }


def test_it_builds_a_one_off_after_a_delay():
    assert schedule.once(60).trigger_definition() == {"kind": "once", "delay_seconds": 60}


def test_it_builds_a_one_off_at_a_local_moment():
    assert schedule.at("2026-12-25 00:00:00").trigger_definition() == {
        "kind": "once",
        "run_at_local": "2026-12-25 00:00:00",
    }


def test_it_takes_a_zone_from_tz():
    assert define(schedule.daily.at("09:00").tz("Europe/Berlin")).timezone == "Europe/Berlin"


def test_it_takes_a_zone_between_the_day_and_the_time():
    job = define(schedule.weekly.monday.tz("Europe/London").at("09:00"))
    assert (job.timezone, job.trigger["cron_expression"]) == ("Europe/London", "0 9 * * 1")


def test_it_takes_a_timeout():
    assert define(schedule.every(10).minutes.timeout(30)).timeout == 30


def test_it_takes_retries():
    assert define(schedule.every(10).minutes.retries(3)).max_retries == 3


def test_it_can_skip_catching_up():
    assert define(schedule.every(10).minutes.no_catch_up()).catch_up == "none"


def test_it_takes_a_lost_policy():
    assert define(schedule.every(10).minutes.lost_policy("record")).lost_policy == "record"
    assert define(schedule.every(10).minutes).lost_policy == "auto"
    with pytest.raises(triggers.ScheduleError):
        schedule.lost_policy("twice")


def test_it_defaults_to_utc_no_timeout_no_retries_and_one_catch_up():
    job = define(schedule.every(10).minutes)
    assert (job.timezone, job.timeout, job.max_retries, job.catch_up) == ("UTC", None, 0, "once")


def test_it_registers_a_scheduled_function_as_a_task_named_like_its_job():
    job = define(schedule.every(10).minutes)
    assert job.task == job.name
    assert registry.get(job.task).description == "Send the nightly report."


def test_it_gives_each_schedule_a_fresh_builder():
    schedule.weekly.monday.at("10:00")
    assert schedule.weekly.friday.at("10:00").trigger_definition()["cron_expression"] == "0 10 * * 5"


@pytest.mark.parametrize("amount", [0, -1, 1.5, True])
def test_it_refuses_every_without_a_positive_whole_number(amount):
    with pytest.raises(triggers.ScheduleError) as excinfo:
        schedule.every(amount)
    assert excinfo.value.field == "every"


@pytest.mark.parametrize("when", ["25:00", "9am", "12:60"])
def test_it_refuses_a_time_of_day_that_does_not_exist(when):
    with pytest.raises(triggers.ScheduleError) as excinfo:
        schedule.daily.at(when)
    assert excinfo.value.field == "at"


def test_it_refuses_a_moment_that_is_not_a_date_and_time():
    with pytest.raises(triggers.ScheduleError) as excinfo:
        schedule.at("Christmas")
    assert excinfo.value.field == "at"


def test_it_refuses_a_bad_zone():
    with pytest.raises(triggers.ScheduleError) as excinfo:
        schedule.daily.at("09:00").tz("Mars/Olympus")
    assert excinfo.value.field == "timezone"


def test_it_refuses_a_bad_zone_given_to_at():
    with pytest.raises(triggers.ScheduleError) as excinfo:
        schedule.daily.at("09:00", tz="Europe/Atlantis")
    assert excinfo.value.field == "timezone"


def test_it_refuses_a_bad_cron_expression():
    with pytest.raises(triggers.ScheduleError) as excinfo:
        schedule.cron("61 * * * *")
    assert excinfo.value.field == "cron_expression"


def test_it_refuses_weekly_without_a_day():
    with pytest.raises(triggers.ScheduleError) as excinfo:
        schedule.weekly.at("10:00")
    assert excinfo.value.field == "days"


def test_it_refuses_an_unknown_day():
    with pytest.raises(AttributeError):
        schedule.weekly.funday  # noqa: B018


def test_it_refuses_at_after_an_interval_instead_of_dropping_the_interval():
    with pytest.raises(triggers.ScheduleError) as excinfo:
        schedule.every(2).days.at("2026-12-25 00:00:00")
    assert excinfo.value.field == "at"


@pytest.mark.parametrize(
    "builder",
    [lambda: schedule.every(10), lambda: schedule.daily, lambda: schedule.hourly, lambda: ScheduleBuilder()],
    ids=["every-without-unit", "daily-without-at", "hourly-without-at", "nothing"],
)
def test_it_refuses_an_incomplete_schedule(builder):
    with pytest.raises(triggers.ScheduleError):
        builder().trigger_definition()


def test_it_registers_nothing_for_an_incomplete_schedule():
    tasks_before, jobs_before = registry.names(), dict(code_jobs)
    with pytest.raises(triggers.ScheduleError):
        define(schedule.every(10))
    assert (registry.names(), code_jobs) == (tasks_before, jobs_before)


@pytest.mark.parametrize(
    "builder", [lambda: schedule.timeout(0), lambda: schedule.retries(-1), lambda: schedule.once(-5)]
)
def test_it_refuses_bad_options(builder):
    with pytest.raises(triggers.ScheduleError):
        builder()


@pytest.mark.parametrize(
    ("option", "field", "value"),
    [
        ("timeout", "timeout", True),
        ("timeout", "timeout", 1.5),
        ("timeout", "timeout", 30.0),
        ("retries", "max_retries", True),
        ("retries", "max_retries", False),
        ("retries", "max_retries", 2.0),
        ("once", "once", True),
        ("once", "once", 60.5),
        ("every", "every", 2.0),
    ],
)
def test_it_refuses_a_bool_or_a_float_where_an_option_takes_a_whole_number(option, field, value):
    with pytest.raises(triggers.ScheduleError) as excinfo:
        getattr(schedule, option)(value)
    assert excinfo.value.field == field
    assert excinfo.value.message.startswith(f"{option}() takes ")
    assert repr(value) in excinfo.value.message


# code_jobs_sync ---------------------------------------------------------------------------


def nightly(**changes) -> dict[str, CodeJob]:
    """A fresh definitions dict holding one code-defined job."""
    fields = {
        "name": "tests.nightly",
        "task": "tempora.sample_job",
        "trigger": {"kind": "cron", "cron_expression": "0 3 * * *", "preset": ""},
        "timezone": "Europe/London",
        "kwargs": {"message": "nightly"},
    }
    fields.update(changes)
    return {fields["name"]: CodeJob(**fields)}


@pytest.mark.django_db
def test_it_creates_code_defined_jobs(now):
    assert services.code_jobs_sync(definitions=nightly(), now=now) == {
        "created": 1,
        "updated": 0,
        "orphaned": 0,
        "invalid": 0,
    }
    job = Job.objects.get(name="tests.nightly")
    assert (job.code_defined, job.task, job.timezone, job.kwargs) == (
        True,
        "tempora.sample_job",
        "Europe/London",
        {"message": "nightly"},
    )
    assert job.triggers.get().cron_expression == "0 3 * * *"
    assert job.next_run_at == datetime(2026, 3, 2, 3, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_one_invalid_code_definition_is_reported_and_never_stops_the_others(now, settings):
    settings.SCHEDULER_MAX_TIMEOUT = 600
    definitions = {**nightly(), **nightly(name="tests.too-long", timeout=3600)}
    counts = services.code_jobs_sync(definitions=definitions, now=now)
    assert (counts["created"], counts["invalid"]) == (1, 1)
    assert not Job.objects.filter(name="tests.too-long").exists()
    # A stored job whose code turns invalid keeps its last valid definition and says why.
    counts = services.code_jobs_sync(definitions=nightly(timeout=3600), now=now)
    job = Job.objects.get(name="tests.nightly")
    assert counts["invalid"] == 1 and job.timeout is None
    assert "not valid" in job.import_error and "timeout" in job.import_error.lower()


@pytest.mark.django_db
def test_a_code_defined_lost_policy_follows_the_code(now):
    services.code_jobs_sync(definitions=nightly(lost_policy="record"), now=now)
    assert Job.objects.get(name="tests.nightly").lost_policy == "record"
    assert services.code_jobs_sync(definitions=nightly(lost_policy="retry"), now=now)["updated"] == 1
    assert Job.objects.get(name="tests.nightly").lost_policy == "retry"


@pytest.mark.django_db
def test_it_syncs_a_schedule_defined_with_the_decorator(now):
    job = define(schedule.weekly.weekdays.at("09:00").tz("Europe/Berlin").timeout(60).retries(2))
    services.code_jobs_sync(definitions={job.name: job}, now=now)
    row = Job.objects.get(name=job.name)
    assert (row.task, row.timezone, row.timeout, row.max_retries, row.description) == (
        job.name,
        "Europe/Berlin",
        60,
        2,
        "Send the nightly report.",
    )
    assert (row.triggers.get().cron_expression, row.triggers.get().preset) == ("0 9 * * 1,2,3,4,5", "weekly")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "trigger",
    [
        {"kind": "cron", "cron_expression": "0 3 * * *", "preset": ""},
        {"kind": "cron", "cron_expression": "30 9 * * *", "preset": "daily"},
        {"kind": "interval", "interval_seconds": 600},
        {"kind": "once", "delay_seconds": 60},
        {"kind": "once", "run_at_local": "2026-12-25 00:00:00"},
    ],
    ids=["cron", "daily", "interval", "once-after-delay", "once-at-moment"],
)
def test_it_changes_nothing_on_a_second_sync(now, trigger):
    services.code_jobs_sync(definitions=nightly(trigger=trigger), now=now)
    before = list(Job.objects.values_list("id", "updated_at", "next_run_at"))
    triggers_before = list(Trigger.objects.values_list("id", flat=True))
    counts = services.code_jobs_sync(definitions=nightly(trigger=trigger), now=now + timedelta(hours=1))
    assert counts == {"created": 0, "updated": 0, "orphaned": 0, "invalid": 0}
    assert list(Job.objects.values_list("id", "updated_at", "next_run_at")) == before
    assert list(Trigger.objects.values_list("id", flat=True)) == triggers_before


@pytest.mark.django_db
def test_it_follows_a_changed_trigger(now):
    services.code_jobs_sync(definitions=nightly(), now=now)
    later = now + timedelta(hours=1)
    changed = nightly(trigger={"kind": "cron", "cron_expression": "0 18 * * *", "preset": ""})
    assert services.code_jobs_sync(definitions=changed, now=later)["updated"] == 1
    job = Job.objects.get(name="tests.nightly")
    assert job.triggers.get().cron_expression == "0 18 * * *"
    assert (job.updated_at, job.next_run_at) == (later, datetime(2026, 3, 1, 18, 0, tzinfo=UTC))


@pytest.mark.django_db
def test_it_follows_a_changed_field(now):
    services.code_jobs_sync(definitions=nightly(), now=now)
    services.code_jobs_sync(definitions=nightly(timeout=120, kwargs={"message": "changed"}), now=now)
    job = Job.objects.get(name="tests.nightly")
    assert (job.timeout, job.kwargs) == (120, {"message": "changed"})


@pytest.mark.django_db
def test_it_follows_a_changed_one_off_moment(now):
    christmas = nightly(trigger={"kind": "once", "run_at_local": "2026-12-25 00:00:00"})
    services.code_jobs_sync(definitions=christmas, now=now)
    moved = nightly(trigger={"kind": "once", "run_at_local": "2027-01-01 00:00:00"})
    assert services.code_jobs_sync(definitions=moved, now=now)["updated"] == 1
    assert Trigger.objects.get().run_at == datetime(2027, 1, 1, tzinfo=UTC)


@pytest.mark.django_db
def test_it_keeps_the_users_pause_when_the_code_changes(now):
    services.code_jobs_sync(definitions=nightly(), now=now)
    services.job_pause(job=Job.objects.get(name="tests.nightly"), now=now)
    services.code_jobs_sync(definitions=nightly(timeout=30), now=now)
    job = Job.objects.get(name="tests.nightly")
    assert (job.paused, job.timeout) == (True, 30)


@pytest.mark.django_db
def test_it_keeps_the_users_resume_when_the_code_changes(now):
    services.code_jobs_sync(definitions=nightly(), now=now)
    services.code_jobs_sync(definitions=nightly(timeout=30), now=now)
    assert Job.objects.get(name="tests.nightly").paused is False


@pytest.mark.django_db
def test_it_pauses_and_flags_a_job_whose_definition_vanished(now):
    services.code_jobs_sync(definitions=nightly(), now=now)
    later = now + timedelta(hours=1)
    assert services.code_jobs_sync(definitions={}, now=later) == {
        "created": 0,
        "updated": 0,
        "orphaned": 1,
        "invalid": 0,
    }
    job = Job.objects.get(name="tests.nightly")
    assert (job.paused, job.updated_at) == (True, later)
    assert "no longer defined" in job.import_error


@pytest.mark.django_db
def test_it_flags_a_vanished_job_only_once(now):
    services.code_jobs_sync(definitions=nightly(), now=now)
    services.code_jobs_sync(definitions={}, now=now)
    assert services.code_jobs_sync(definitions={}, now=now + timedelta(hours=1))["orphaned"] == 0
    assert Job.objects.get(name="tests.nightly").updated_at == now


@pytest.mark.django_db
def test_it_clears_the_flag_when_a_vanished_definition_returns(now):
    services.code_jobs_sync(definitions=nightly(), now=now)
    services.code_jobs_sync(definitions={}, now=now)
    assert services.code_jobs_sync(definitions=nightly(), now=now)["updated"] == 1
    assert Job.objects.get(name="tests.nightly").import_error == ""


@pytest.mark.django_db
def test_it_leaves_jobs_made_in_the_console_alone(make_job, now):
    job = make_job(name="console-job")
    services.code_jobs_sync(definitions={}, now=now + timedelta(hours=1))
    job.refresh_from_db()
    assert (job.paused, job.import_error, job.updated_at) == (False, "", now)
