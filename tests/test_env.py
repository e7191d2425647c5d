"""Settings come from the environment and a bad value stops start-up, naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, secret_key

ROOT = Path(__file__).resolve().parent.parent


def test_it_reads_booleans_strictly(monkeypatch):
    monkeypatch.setenv("TEMPORA_FLAG", "yes")
    assert env_bool("TEMPORA_FLAG", False) is True
    monkeypatch.setenv("TEMPORA_FLAG", "0")
    assert env_bool("TEMPORA_FLAG", True) is False
    monkeypatch.setenv("TEMPORA_FLAG", "flase")
    with pytest.raises(ImproperlyConfigured, match="TEMPORA_FLAG"):
        env_bool("TEMPORA_FLAG", False)


def test_it_uses_the_default_when_unset_or_empty(monkeypatch):
    monkeypatch.delenv("TEMPORA_FLAG", raising=False)
    assert env_bool("TEMPORA_FLAG", True) is True
    monkeypatch.setenv("TEMPORA_NUM", "")
    assert env_int("TEMPORA_NUM", 7) == 7


def test_it_reads_integers_strictly(monkeypatch):
    monkeypatch.setenv("TEMPORA_NUM", "12")
    assert env_int("TEMPORA_NUM", 1) == 12
    monkeypatch.setenv("TEMPORA_NUM", "12s")
    with pytest.raises(ImproperlyConfigured, match="TEMPORA_NUM='12s' is not an integer"):
        env_int("TEMPORA_NUM", 1)
    monkeypatch.setenv("TEMPORA_NUM", "0")
    with pytest.raises(ImproperlyConfigured, match="minimum of 1"):
        env_int("TEMPORA_NUM", 5, minimum=1)


def test_it_splits_lists(monkeypatch):
    monkeypatch.setenv("TEMPORA_HOSTS", "a.example, b.example,,")
    assert env_list("TEMPORA_HOSTS", []) == ["a.example", "b.example"]


def test_it_generates_a_secret_key_once_and_keeps_it(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    path = tmp_path / "var" / "secret_key"
    first = secret_key(path)
    assert len(first) >= 50
    assert secret_key(path) == first
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_secret_key_from_the_environment_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    assert secret_key(tmp_path / "secret_key") == "from-the-environment"
    assert not (tmp_path / "secret_key").exists()


def manage_check(tmp_path, variable: str, value: str) -> subprocess.CompletedProcess:
    env = {**os.environ, variable: value, "TEMPORA_VAR_DIR": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG='maybe' is not a boolean"),
        ("SCHEDULER_MAX_WORKERS", "ten", "SCHEDULER_MAX_WORKERS='ten' is not an integer"),
        ("TIME_ZONE", "Mars/Olympus", "TIME_ZONE='Mars/Olympus' is not an IANA time zone"),
        ("CACHE_URL", "memcached://x", "CACHE_URL='memcached://x' is not locmem:// or a redis:// URL"),
        ("TEMPORA_HTTP_MAX_TIMEOUT", "soon", "TEMPORA_HTTP_MAX_TIMEOUT='soon' is not an integer"),
        ("SCHEDULER_NODE_DEAD_SECONDS", "soon", "SCHEDULER_NODE_DEAD_SECONDS='soon' is not an integer"),
    ],
)
def test_a_bad_setting_stops_start_up_naming_the_variable(tmp_path, variable, value, message):
    done = manage_check(tmp_path, variable, value)
    assert done.returncode != 0
    assert message in done.stderr


# Ranges, entries and the rules between values are system checks (scheduler_app/checks.py):
# `manage.py check` names the TEMPORA key the variable sets (README, "Configuration").
@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("TEMPORA_HTTP_ALLOW_HOSTS", "example.com:http", "TEMPORA['HTTP_ALLOW_HOSTS']: 'example.com:http' is not"),
        ("TEMPORA_HTTP_ALLOW_HOSTS", "api.example.com, :8080", "TEMPORA['HTTP_ALLOW_HOSTS']: ':8080' is not"),
        ("TEMPORA_HTTP_ALLOW_HOSTS", "http://api.example.com", "TEMPORA['HTTP_ALLOW_HOSTS']: 'http://api.example.com'"),
        ("TEMPORA_HTTP_MAX_TIMEOUT", "0", "TEMPORA['HTTP_MAX_TIMEOUT'] must be a whole number, at least 1; it is 0."),
        ("TEMPORA_HTTP_MAX_BODY_BYTES", "-1", "TEMPORA['HTTP_MAX_BODY_BYTES'] must be a whole number, at least 0"),
        ("TEMPORA_EMAIL_MAX_RECIPIENTS", "0", "TEMPORA['EMAIL_MAX_RECIPIENTS'] must be a whole number, at least 1"),
        ("TEMPORA_EMAIL_ALLOWED_DOMAINS", "example.com, @evil", "TEMPORA['EMAIL_ALLOWED_DOMAINS']: '@evil' is not"),
        ("METRICS_ALLOWED_IPS", "10.0.0.0/8, prometheus", "TEMPORA['METRICS_ALLOWED_IPS']: 'prometheus' does not"),
        (
            "SCHEDULER_DEFAULT_TIMEOUT",
            "100000",
            "(tempora.E005) TEMPORA['DEFAULT_TIMEOUT']=100000 is above TEMPORA['MAX_TIMEOUT']=86400",
        ),
        ("SCHEDULER_MAX_RUNS_PER_USER", "-1", "TEMPORA['MAX_RUNS_PER_USER'] must be a whole number, at least 0"),
        ("SCHEDULER_CELERY_LOST_SECONDS", "2", "TEMPORA['CELERY_LOST_SECONDS'] must be a whole number, at least 5"),
        ("SCHEDULER_LEASE_SECONDS", "1", "(tempora.E001) TEMPORA['LEASE_SECONDS'] must be a whole number, at least 2"),
        (
            "SCHEDULER_NODE_DEAD_SECONDS",
            "15",
            "(tempora.E004) TEMPORA['NODE_DEAD_SECONDS']=15 is below twice TEMPORA['LEASE_SECONDS']=10",
        ),
    ],
)
def test_a_bad_value_from_the_environment_is_a_system_check_error(tmp_path, variable, value, message):
    done = manage_check(tmp_path, variable, value)
    assert done.returncode != 0
    assert message in done.stderr


def test_a_redis_cache_url_shares_the_cache_between_processes(tmp_path):
    # What makes the API's write throttle one limit across web workers: a count written by
    # one process is read by another. Redis database 13 is this test's own.
    env = {**os.environ, "CACHE_URL": "redis://127.0.0.1:6379/13", "TEMPORA_VAR_DIR": str(tmp_path)}
    key = f"test-env-{os.getpid()}"

    def shell(code: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""

    shell(f"from django.core.cache import cache; cache.set({key!r}, 41, 60); cache.incr({key!r})")
    assert shell(f"from django.core.cache import cache; print(cache.get({key!r})); cache.delete({key!r})") == "42"


def test_the_email_variables_reach_the_default_mailer_on_either_django(tmp_path):
    # Django 6.1 reads MAILERS and warns on the EMAIL_* settings (config/settings.py, "Email"):
    # the same variables must fill whichever this Django reads, and warnings are errors here.
    env = {
        **os.environ,
        "TEMPORA_VAR_DIR": str(tmp_path),
        "EMAIL_HOST": "mail.example.com",
        "EMAIL_PORT": "2525",
        "EMAIL_HOST_USER": "tempora",
        "EMAIL_USE_TLS": "1",
        "EMAIL_TIMEOUT": "7",
    }
    code = (
        "import django; from django.core import mail; "
        "backend = mail.mailers.default if django.VERSION >= (6, 1) else mail.get_connection(); "
        "print(backend.host, backend.port, backend.username, backend.use_tls, backend.timeout)"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-W",
            "error::DeprecationWarning",
            "-W",
            "error::PendingDeprecationWarning",
            "manage.py",
            "shell",
            "-c",
            code,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].split() == ["mail.example.com", "2525", "tempora", "True", "7"]


@pytest.mark.parametrize(
    ("url", "jit"),
    [
        ("postgres://postgres@127.0.0.1:5432/postgres", "off"),
        ("postgres://postgres@127.0.0.1:5432/postgres?options=-c%20jit%3Don", "on"),  # the URL's own wins
    ],
)
def test_postgresql_connections_run_without_jit_unless_the_url_says(tmp_path, url, jit):
    done = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from django.db import connection as c; k = c.cursor(); k.execute('SHOW jit'); print(k.fetchone()[0])",
        ],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url, "TEMPORA_VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == jit
