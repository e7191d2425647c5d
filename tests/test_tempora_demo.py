"""`manage.py tempora_demo`: the demo's first-run setup that `make run` performs."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from scheduler_app.management.commands.tempora_demo import DEMO_JOBS
from scheduler_app.models import Job

pytestmark = pytest.mark.django_db


def run_demo(*args: str) -> str:
    out = StringIO()
    call_command("tempora_demo", *args, stdout=out)
    return out.getvalue()


def test_it_creates_the_admin_with_a_generated_password_shown_once(monkeypatch):
    monkeypatch.delenv("TEMPORA_ADMIN_PASSWORD", raising=False)
    output = run_demo()
    password = output.split("Password (shown once): ")[1].split()[0]
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    assert "Password" not in run_demo()


def test_it_takes_the_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("TEMPORA_ADMIN_PASSWORD", "a-long-admin-secret")
    output = run_demo()
    assert "a-long-admin-secret" not in output
    assert get_user_model().objects.get(username="admin").check_password("a-long-admin-secret")


def test_it_loads_the_demo_jobs_on_first_run_only(monkeypatch):
    monkeypatch.setenv("TEMPORA_ADMIN_PASSWORD", "a-long-admin-secret")
    run_demo()
    names = set(Job.objects.values_list("name", flat=True))
    assert names == {job["name"] for job in DEMO_JOBS}
    assert all(job.next_run_at is not None for job in Job.objects.filter(paused=False))
    Job.objects.filter(name="demo-heartbeat").delete()
    run_demo()
    assert not Job.objects.filter(name="demo-heartbeat").exists()


def test_it_can_skip_the_demo(monkeypatch):
    monkeypatch.setenv("TEMPORA_ADMIN_PASSWORD", "a-long-admin-secret")
    run_demo("--no-demo")
    assert not Job.objects.exists()


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_password_variable_is_an_error_and_creates_nothing(monkeypatch, value):
    # It used to print "with the password from TEMPORA_ADMIN_PASSWORD" while setting a random
    # one it never showed: nobody could sign in.
    monkeypatch.setenv("TEMPORA_ADMIN_PASSWORD", value)
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("tempora_demo", stdout=out)
    assert "TEMPORA_ADMIN_PASSWORD" in str(caught.value) and "empty" in str(caught.value)
    assert caught.value.returncode != 0
    assert not get_user_model().objects.exists() and not Job.objects.exists()
    assert "password from TEMPORA_ADMIN_PASSWORD" not in out.getvalue()


def test_an_empty_password_variable_exits_non_zero_as_a_process(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "TEMPORA_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "TEMPORA_ADMIN_PASSWORD": "",
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "tempora_demo"], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert "TEMPORA_ADMIN_PASSWORD is set but empty" in done.stderr
    assert "Password" not in done.stdout


def test_the_demo_setup_is_no_longer_called_bootstrap():
    from django.core.management import get_commands

    assert "tempora_demo" in get_commands() and "bootstrap" not in get_commands()
