"""System checks (scheduler_app/checks.py): bad settings, unknown keys, the apps and middleware
Tempora needs; `runscheduler` runs them at start and stops on an error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import django
import pytest
from django.core import checks
from django.test import modify_settings

from scheduler_app.checks import CONTEXT_PROCESSORS, REQUIRED_APPS, REQUIRED_MIDDLEWARE

ROOT = Path(__file__).resolve().parent.parent


def ours() -> list[checks.CheckMessage]:
    return list(checks.run_checks(tags=["tempora"]))


def errors(id_: str) -> list[str]:
    return [message.msg for message in ours() if message.id == id_]


def test_the_projects_own_settings_pass_every_check():
    assert ours() == []


def test_an_unknown_key_is_an_error_that_names_it_and_guesses(settings):
    settings.TEMPORA = {"LEASE_SECOND": 10, "SCHEDULER_MAX_WORKERS": 4, "COLOUR": "blue"}
    found = {message.msg: message.hint for message in ours() if message.id == "tempora.E002"}
    assert found == {
        "TEMPORA has no setting 'LEASE_SECOND'.": "Did you mean 'LEASE_SECONDS'?",
        "TEMPORA has no setting 'SCHEDULER_MAX_WORKERS'.": "Did you mean 'MAX_WORKERS'?",
        "TEMPORA has no setting 'COLOUR'.": None,
    }


def test_tempora_must_be_a_dict(settings):
    settings.TEMPORA = [("LEASE_SECONDS", 10)]
    assert errors("tempora.E003") == ["TEMPORA must be a dict; it is [('LEASE_SECONDS', 10)]."]


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("LEASE_SECONDS", 1, "at least 2; it is 1"),
        ("OUTPUT_LIMIT", 1000, "at least 1024"),
        ("MAX_WORKERS", "10", "a whole number"),
        ("LEASE_SECONDS", "10", "a whole number"),  # alone: NODE_DEAD_SECONDS's default does not fail with it
        ("VAR_DIR", 5, "a directory path"),  # alone: nor does JOURNAL_DIR's
        ("MAX_RUNS_PER_USER", -1, "at least 0"),
        ("OPEN_JOB_CREATION", "yes", "True or False"),
        ("TASK_MODULES", "myapp.jobs", "a list of strings"),
        ("TASKS_BACKEND", "", "a non-empty string"),
        ("JOURNAL_DIR", 5, "a directory path"),
        ("METRICS_ALLOWED_IPS", ["10.0.0.0/8", "scraper"], "'scraper' does not appear"),
        ("API_WRITE_THROTTLE", "lots", "not a rate such as '600/minute'"),
        ("API_WRITE_THROTTLE", 600, "a non-empty string"),
    ],
)
def test_a_malformed_value_is_an_error_naming_the_key(settings, key, value, fragment):
    settings.TEMPORA = {**settings.TEMPORA, key: value}
    [message] = errors("tempora.E001")
    assert message.startswith(f"TEMPORA[{key!r}]") and fragment in message


@pytest.mark.parametrize("key", ["MAX_RUNS_PER_USER", "API_WRITE_THROTTLE"])
def test_an_optional_value_may_be_none(settings, key):
    settings.TEMPORA = {**settings.TEMPORA, key: None}
    assert ours() == []


def test_the_node_dead_threshold_must_be_twice_the_lease(settings):
    settings.TEMPORA = {**settings.TEMPORA, "LEASE_SECONDS": 20, "NODE_DEAD_SECONDS": 30}
    assert errors("tempora.E004") == ["TEMPORA['NODE_DEAD_SECONDS']=30 is below twice TEMPORA['LEASE_SECONDS']=20."]


def test_the_default_timeout_may_not_exceed_the_maximum(settings):
    settings.SCHEDULER_MAX_TIMEOUT = 60  # an old name: the message names it as written
    assert errors("tempora.E005") == ["TEMPORA['DEFAULT_TIMEOUT']=3600 is above SCHEDULER_MAX_TIMEOUT=60."]


def test_a_key_set_both_ways_warns_that_the_old_name_wins(settings):
    settings.TEMPORA = {**settings.TEMPORA, "LEASE_SECONDS": 30}
    settings.SCHEDULER_LEASE_SECONDS = 15
    [warning] = [message for message in ours() if message.id == "tempora.W002"]
    assert "TEMPORA['LEASE_SECONDS'] is ignored: SCHEDULER_LEASE_SECONDS" in warning.msg


def test_no_var_dir_is_a_warning(settings):
    settings.TEMPORA = {key: value for key, value in settings.TEMPORA.items() if key not in ("VAR_DIR", "JOURNAL_DIR")}
    [warning] = ours()
    assert warning.id == "tempora.W001" and "TEMPORA['VAR_DIR'] is not set" in warning.msg


@pytest.mark.parametrize("app", list(REQUIRED_APPS))
def test_a_missing_companion_app_is_an_error_naming_it(app):
    with modify_settings(INSTALLED_APPS={"remove": [app]}):
        assert [message for message in errors("tempora.E010") if repr(app) in message]


@pytest.mark.parametrize("middleware", list(REQUIRED_MIDDLEWARE))
def test_a_missing_middleware_is_an_error_naming_it(middleware):
    with modify_settings(MIDDLEWARE={"remove": [middleware]}):
        assert [message for message in errors("tempora.E011") if repr(middleware) in message]


def test_django_celery_results_is_needed_only_for_its_result_backend(settings):
    with modify_settings(INSTALLED_APPS={"remove": ["django_celery_results"]}):
        assert [message for message in errors("tempora.E010") if "django_celery_results" in message]
        settings.CELERY_RESULT_BACKEND = "redis://127.0.0.1:6379/1"
        assert errors("tempora.E010") == []


def test_template_partials_is_needed_only_before_django_6():
    with modify_settings(INSTALLED_APPS={"remove": ["template_partials"]}):
        named = [message for message in errors("tempora.E010") if "'template_partials'" in message]
        assert bool(named) == (django.VERSION < (6, 0))


def test_our_templates_need_an_engine_that_reads_app_directories(settings):
    engine = settings.TEMPLATES[0]
    only_dirs = {**engine["OPTIONS"], "loaders": ["django.template.loaders.filesystem.Loader"]}
    settings.TEMPLATES = [{**engine, "APP_DIRS": False, "OPTIONS": only_dirs}]
    assert [message for message in errors("tempora.E012") if "APP_DIRS" in message]


@pytest.mark.parametrize("processor", CONTEXT_PROCESSORS)
def test_our_templates_need_their_context_processors(settings, processor):
    engine = settings.TEMPLATES[0]
    kept = [name for name in engine["OPTIONS"]["context_processors"] if name != processor]
    settings.TEMPLATES = [{**engine, "OPTIONS": {**engine["OPTIONS"], "context_processors": kept}}]
    assert [message for message in errors("tempora.E012") if repr(processor) in message]


# runscheduler ----------------------------------------------------------------------------------


def test_runscheduler_stops_on_a_bad_setting_with_the_checks_message(tmp_path):
    env = {
        **os.environ,
        "TEMPORA_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "SCHEDULER_LEASE_SECONDS": "1",
    }
    check = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    run = subprocess.run(
        [sys.executable, "manage.py", "runscheduler"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    message = "(tempora.E001) TEMPORA['LEASE_SECONDS'] must be a whole number, at least 2; it is 1."
    assert check.returncode == run.returncode == 1
    assert message in check.stderr and message in run.stderr


def test_runscheduler_documents_every_option():
    from django.core.management import load_command_class

    command = load_command_class("scheduler_app", "runscheduler")
    parser = command.create_parser("manage.py", "runscheduler")
    assert len(command.help) > 100
    for action in parser._actions:
        assert action.help, action.option_strings
