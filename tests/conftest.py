"""Shared fixtures: the three users every permission test needs, and a job factory."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine

from scheduler_app import services


def pytest_configure(config):
    # WhiteNoise warns on every request when STATIC_ROOT is missing; tests serve from finders.
    from django.conf import settings

    Path(settings.STATIC_ROOT).mkdir(exist_ok=True)


@pytest.fixture(autouse=True)
def fast_test_settings(settings):
    """Pages render without `collectstatic` (the manifest storage needs a manifest), and users
    are created without a second of password hashing each."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    # The write throttle (API and console) counts in the default cache, which outlives a
    # test's database.
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user("owner", "owner@example.com", "owner-pass-123")


@pytest.fixture
def outsider(django_user_model):
    return django_user_model.objects.create_user("outsider", "outsider@example.com", "outsider-pass-123")


def member_of(user, role: str):
    """Put `user` in one of the shipped groups ("Tempora admins", ...) and answer it afresh
    (Django caches a user's permissions on the object)."""
    from django.contrib.auth.models import Group

    user.groups.add(Group.objects.get(name=role))
    return type(user).objects.get(pk=user.pk)


def grant(user, *permissions: str):
    """Give `user` permissions ("app_label.codename") and answer it afresh."""
    from django.contrib.auth.models import Permission

    for permission in permissions:
        app_label, codename = permission.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return type(user).objects.get(pk=user.pk)


@pytest.fixture
def team_admin(django_user_model):
    """A member of the shipped "Tempora admins" group (and staff, so the admin site lets them in)."""
    user = django_user_model.objects.create_user(
        "team_admin", "team_admin@example.com", "team_admin-pass-123", is_staff=True
    )
    return member_of(user, "Tempora admins")


@pytest.fixture
def bare_staff(django_user_model):
    """is_staff and no permission at all: it must give nothing beyond an ordinary user's rights."""
    return django_user_model.objects.create_user("bare_staff", "bare@example.com", "bare-staff-pass-123", is_staff=True)


@pytest.fixture
def now():
    """A fixed instant for tests that pass the clock in."""
    return datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def make_job(now):
    """make_job(name="x", triggers=[...], **fields): a job created through the services."""
    counter = {"n": 0}

    def make(**fields):
        counter["n"] += 1
        fields.setdefault("name", f"job-{counter['n']}")
        fields.setdefault("task", "tempora.sample_job")
        fields.setdefault("triggers", [{"kind": "cron", "cron_expression": "*/5 * * * *"}])
        fields.setdefault("now", now)
        return services.job_create(**fields)

    return make


@pytest.fixture
def at_now():
    """The clock stopped at tests.job_states.NOW (pages and APIs read the time themselves)."""
    from tests.job_states import NOW

    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def state_jobs(owner, at_now):
    """One job of `owner` in each state (tests/job_states.py), at NOW."""
    from tests import job_states

    return job_states.build(owner)
