"""The fences' settings: read from the environment (tests/test_env.py: a malformed value stops
start-up naming the variable), and a host project's own values checked by `manage.py check`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import checks

ROOT = Path(__file__).resolve().parents[2]


def start(tmp_path, code: str = "", **variables: str) -> subprocess.CompletedProcess:
    """Load the settings in a fresh process with `variables` set; then run `code`."""
    env = {**os.environ, "TEMPORA_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings", **variables}
    for name in ("TEMPORA_BACKUP_DIR", "SCHEDULER_BACKUP_DIR"):
        if name not in variables:
            env.pop(name, None)
    script = f"import django; django.setup(); from django.conf import settings; {code}"
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_the_old_backup_variable_still_works_and_the_new_one_wins(tmp_path):
    show = "print(settings.TEMPORA['BACKUP_DIR'])"
    assert start(tmp_path, show, SCHEDULER_BACKUP_DIR="/srv/old").stdout.strip() == "/srv/old"
    both = start(tmp_path, show, SCHEDULER_BACKUP_DIR="/srv/old", TEMPORA_BACKUP_DIR="/srv/new")
    assert both.stdout.strip() == "/srv/new"
    assert start(tmp_path, show).stdout.strip() == str(tmp_path / "backups")


def test_the_environment_reaches_the_settings(tmp_path):
    done = start(
        tmp_path,
        "t = settings.TEMPORA; print(t['HTTP_ALLOW_HOSTS'], t['EMAIL_ALLOWED_DOMAINS'], t['DATA_DIR'])",
        TEMPORA_HTTP_ALLOW_HOSTS="api.example.com:8443, [::1]:8080",
        TEMPORA_EMAIL_ALLOWED_DOMAINS="example.com",
        TEMPORA_DATA_DIR="/srv/data",
    )
    assert done.stdout.strip() == "['api.example.com:8443', '[::1]:8080'] ['example.com'] /srv/data", done.stderr


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("TEMPORA_HTTP_ALLOW_HOSTS", ["ok.example.com", "bad host"], "'bad host' is not"),
        ("TEMPORA_HTTP_ALLOW_HOSTS", "api.example.com", "a list"),
        ("TEMPORA_HTTP_MAX_TIMEOUT", 0, "at least 1"),
        ("TEMPORA_HTTP_MAX_REDIRECTS", "5", "a whole number"),
        ("TEMPORA_EMAIL_MAX_RECIPIENTS", True, "a whole number"),
        ("TEMPORA_EMAIL_ALLOWED_DOMAINS", ["a@b"], "'a@b' is not"),
    ],
)
def test_a_host_projects_bad_value_is_a_system_check_error(settings, name, value, fragment):
    setattr(settings, name, value)
    [error] = [message for message in checks.run_checks() if message.id.startswith("tempora.E")]
    assert error.id == "tempora.E001" and error.msg.startswith(name) and fragment in error.msg


def test_a_bad_value_in_the_tempora_dict_is_named_by_its_key(settings):
    settings.TEMPORA = {**settings.TEMPORA, "HTTP_MAX_REDIRECTS": -1}
    [error] = [message for message in checks.run_checks() if message.id.startswith("tempora.E")]
    assert error.id == "tempora.E001" and error.msg.startswith("TEMPORA['HTTP_MAX_REDIRECTS'] must be")


def test_a_data_directory_overlapping_the_backup_directory_is_a_system_check_error(settings, tmp_path):
    settings.TEMPORA_BACKUP_DIR = tmp_path / "backups"
    settings.TEMPORA_DATA_DIR = tmp_path
    [error] = [message for message in checks.run_checks() if message.id.startswith("tempora.E1")]
    assert error.id == "tempora.E103" and "TEMPORA_DATA_DIR" in error.msg


def test_a_task_refuses_to_run_on_a_malformed_limit(settings):
    from django.core.exceptions import ImproperlyConfigured

    from scheduler_app.builtin import conf

    settings.TEMPORA_HTTP_MAX_TIMEOUT = "60"
    with pytest.raises(ImproperlyConfigured, match="TEMPORA_HTTP_MAX_TIMEOUT must be a whole number"):
        conf.integer("HTTP_MAX_TIMEOUT")
