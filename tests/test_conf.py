"""scheduler_app/conf.py: every setting has a default in the app; TEMPORA keys and the older
top-level names; values follow override_settings."""

from __future__ import annotations

import pytest
from django.test import override_settings

from scheduler_app import services
from scheduler_app.conf import tempora_settings

pytestmark = pytest.mark.django_db


@pytest.fixture
def bare_host(settings):
    """A host project's settings: none of Tempora's, neither the TEMPORA dict nor the old names."""
    from django.conf import settings as django_settings

    ours = [name for name in dir(django_settings) if name.startswith(("SCHEDULER_", "TEMPORA"))]
    for name in [*ours, "METRICS_ALLOWED_IPS", "VAR_DIR"]:
        if hasattr(django_settings, name):
            delattr(settings, name)
    return settings


def test_a_host_without_any_of_our_settings_creates_jobs(bare_host, owner):
    job = services.job_create(
        owner=owner, name="bare", task="tempora.sample_job", triggers=[{"kind": "interval", "interval_seconds": 60}]
    )
    assert job.misfire_grace_time == 60 and job.effective_timeout == 3600


def test_a_host_without_any_of_our_settings_answers_health_metrics_and_the_scheduler(bare_host, team_admin):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(team_admin)
    assert client.get("/api/health/").status_code in (200, 503)  # 503: no scheduler runs here
    assert client.get("/metrics").status_code == 200
    assert client.get("/api/scheduler/").status_code == 200


def test_every_key_has_a_default_that_passes_its_own_rule(bare_host):
    from scheduler_app.conf import SETTINGS

    for key in SETTINGS:
        assert tempora_settings.problem(key) is None, key
    assert tempora_settings.NODE_DEAD_SECONDS == 60 and tempora_settings.JOURNAL_DIR.name == "journal"


def test_it_reads_the_tempora_dict_and_follows_override_settings(bare_host):
    with override_settings(TEMPORA={"LEASE_SECONDS": 30}):
        assert tempora_settings.LEASE_SECONDS == 30
        # A default computed from another key follows it.
        assert tempora_settings.NODE_DEAD_SECONDS == 90
    assert tempora_settings.LEASE_SECONDS == 10


def test_an_old_top_level_name_still_works_and_wins_over_the_dict(bare_host):
    with override_settings(SCHEDULER_LEASE_SECONDS=7):
        assert tempora_settings.LEASE_SECONDS == 7
        assert tempora_settings.name("LEASE_SECONDS") == "SCHEDULER_LEASE_SECONDS"
        with override_settings(TEMPORA={"LEASE_SECONDS": 30}):
            assert tempora_settings.LEASE_SECONDS == 7
    with override_settings(SCHEDULER_BACKUP_DIR="/srv/old"):
        assert str(tempora_settings.BACKUP_DIR) == "/srv/old"
        with override_settings(TEMPORA_BACKUP_DIR="/srv/new"):
            assert str(tempora_settings.BACKUP_DIR) == "/srv/new"


def test_an_empty_directory_is_none_not_the_current_directory(bare_host):
    with override_settings(TEMPORA={"BACKUP_DIR": ""}):
        assert tempora_settings.BACKUP_DIR is None


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="LEASE_SECOND"):
        tempora_settings.LEASE_SECOND  # noqa: B018


def test_the_readme_documents_every_key():
    from pathlib import Path

    from scheduler_app.conf import SETTINGS

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    missing = [key for key in SETTINGS if f"`{key}`" not in readme]
    assert missing == []


def test_the_projects_settings_do_not_import_the_app():
    import subprocess
    import sys
    from pathlib import Path

    code = "import sys, config.settings; print(sorted(m for m in sys.modules if m.startswith('scheduler_app')))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "[]", done.stderr
