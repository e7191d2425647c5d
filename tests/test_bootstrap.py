"""`manage.py bootstrap`: the first-run setup `make run` performs."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from scheduler_app.management.commands.bootstrap import DEMO_JOBS
from scheduler_app.models import Job

pytestmark = pytest.mark.django_db


def run_bootstrap(*args: str) -> str:
    out = StringIO()
    call_command("bootstrap", *args, stdout=out)
    return out.getvalue()


def test_it_creates_the_admin_with_a_generated_password_shown_once(monkeypatch):
    monkeypatch.delenv("TEMPORA_ADMIN_PASSWORD", raising=False)
    output = run_bootstrap()
    password = output.split("Password (shown once): ")[1].split()[0]
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    assert "Password" not in run_bootstrap()


def test_it_takes_the_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("TEMPORA_ADMIN_PASSWORD", "a-long-admin-secret")
    output = run_bootstrap()
    assert "a-long-admin-secret" not in output
    assert get_user_model().objects.get(username="admin").check_password("a-long-admin-secret")


def test_it_loads_the_demo_jobs_on_first_run_only(monkeypatch):
    monkeypatch.setenv("TEMPORA_ADMIN_PASSWORD", "a-long-admin-secret")
    run_bootstrap()
    names = set(Job.objects.values_list("name", flat=True))
    assert names == {job["name"] for job in DEMO_JOBS}
    assert all(job.next_run_at is not None for job in Job.objects.filter(paused=False))
    Job.objects.filter(name="demo-heartbeat").delete()
    run_bootstrap()
    assert not Job.objects.filter(name="demo-heartbeat").exists()


def test_it_can_skip_the_demo(monkeypatch):
    monkeypatch.setenv("TEMPORA_ADMIN_PASSWORD", "a-long-admin-secret")
    run_bootstrap("--no-demo")
    assert not Job.objects.exists()
