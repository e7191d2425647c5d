"""The file fences: tempora.backup_database writes only inside the backup directory, never over
a file, never where the web server serves files; tempora.process_data reads only inside the
data directory and never tells whether a path outside it exists.

Every escape is tried against a real directory tree with symbolic links, and the tree outside
is compared before and after: a refused run changes nothing.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
from django.core import checks
from django.core.exceptions import ValidationError
from django.db import connection

from scheduler_app import builtin_tasks, services
from scheduler_app.models import Job
from scheduler_app.registry import registry
from tests.fences.conftest import listing


def save_errors(task: str, **kwargs) -> str:
    with pytest.raises(ValidationError) as failure:
        services.job_create(name="fenced", task=task, kwargs=kwargs)
    return " ".join(failure.value.message_dict["kwargs"])


def fence_errors() -> list[checks.CheckMessage]:
    return [message for message in checks.run_checks() if message.id.startswith("tempora.E")]


# tempora.backup_database: where it may write ------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "destination",
    [
        "{outside}/db.sqlite3",
        "{outside}",
        "../outside/db.sqlite3",
        "nightly/../../outside/db.sqlite3",
        "..",
    ],
)
def test_a_backup_outside_the_backup_directory_is_refused(backup_dir, outside, destination):
    before = listing(outside)
    with pytest.raises(ValueError, match=r"^destination: .*(relative to|'\.\.' is not allowed)"):
        builtin_tasks.backup_database(destination.format(outside=outside))
    assert listing(outside) == before and listing(backup_dir) == []


@pytest.mark.django_db
@pytest.mark.parametrize("destination", ["out/db.sqlite3", "out", "out/", "out/deeper/db.sqlite3"])
def test_a_symbolic_link_out_of_the_backup_directory_is_refused(backup_dir, outside, destination):
    (backup_dir / "out").symlink_to(outside, target_is_directory=True)
    before = listing(outside)
    with pytest.raises(ValueError, match=r"^destination: .*symbolic link"):
        builtin_tasks.backup_database(destination)
    assert listing(outside) == before


@pytest.mark.django_db
def test_a_link_in_place_of_the_backup_file_is_refused_and_its_target_untouched(backup_dir, outside):
    (backup_dir / "nightly.sqlite3").symlink_to(outside / "secret.csv")
    (backup_dir / "new.sqlite3").symlink_to(outside / "new.sqlite3")  # dangling: the target does not exist
    for name in ("nightly.sqlite3", "new.sqlite3"):
        with pytest.raises(ValueError, match=rf"^destination: '{name}' already exists"):
            builtin_tasks.backup_database(name)
    assert (outside / "secret.csv").read_text() == "password\nhunter2\n"
    assert not (outside / "new.sqlite3").exists()


@pytest.mark.django_db
def test_an_existing_backup_is_never_overwritten(backup_dir):
    (backup_dir / "nightly.sqlite3").write_text("last night's backup")
    with pytest.raises(ValueError, match=r"^destination: 'nightly.sqlite3' already exists in the backup directory"):
        builtin_tasks.backup_database("nightly.sqlite3")
    assert (backup_dir / "nightly.sqlite3").read_text() == "last night's backup"
    assert listing(backup_dir) == ["nightly.sqlite3"]  # no partial file left behind


@pytest.mark.django_db(transaction=True)
def test_a_second_backup_to_one_name_is_refused_after_the_first_succeeds(backup_dir):
    first = builtin_tasks.backup_database("weekly/db.backup")
    size = Path(first["path"]).stat().st_size
    with pytest.raises(ValueError, match="already exists"):
        builtin_tasks.backup_database("weekly/db.backup")
    assert Path(first["path"]).stat().st_size == size
    assert listing(backup_dir) == ["weekly", "weekly/db.backup"]


@pytest.mark.django_db
def test_an_absolute_destination_is_a_400_when_saved(backup_dir):
    assert "destination: '/etc/cron.d/tempora' must be a name relative to the backup directory" in save_errors(
        "tempora.backup_database",
        destination="/etc/cron.d/tempora",
    )


@pytest.mark.django_db
def test_a_link_made_after_the_job_was_saved_is_refused_when_it_runs(backup_dir, outside):
    job = services.job_create(name="nightly", task="tempora.backup_database", kwargs={"destination": "nightly/"})
    (backup_dir / "nightly").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError, match="symbolic link"):
        registry.get(job.task)(*job.args, **job.kwargs)
    assert listing(outside) == ["secret.csv"]


# Never where the web server serves files ---------------------------------------------------------


@pytest.fixture(params=["STATIC_ROOT", "MEDIA_ROOT"])
def served(request, settings, tmp_path):
    """A directory the web server serves, under the setting this test is about."""
    path = tmp_path / "served"
    path.mkdir()
    setattr(settings, request.param, path)
    return request.param, path


@pytest.mark.django_db
def test_a_backup_directory_inside_a_served_directory_is_refused(settings, served):
    name, root = served
    settings.TEMPORA_BACKUP_DIR = root / "backups"
    with pytest.raises(ValueError, match=rf"^destination: the backup directory .* is inside {name}"):
        builtin_tasks.backup_database()
    assert listing(root) == []
    assert f"is inside {name}" in save_errors("tempora.backup_database")
    [error] = fence_errors()
    assert error.id == "tempora.E101" and name in error.msg and error.level == checks.ERROR


@pytest.mark.django_db
def test_a_destination_in_a_served_directory_below_the_backup_directory_is_refused(settings, tmp_path):
    settings.TEMPORA_BACKUP_DIR = tmp_path
    settings.STATIC_ROOT = tmp_path / "site" / "static"
    with pytest.raises(ValueError, match=r"^destination: 'site/static/db.sqlite3' is inside STATIC_ROOT"):
        builtin_tasks.backup_database("site/static/db.sqlite3")
    assert not (tmp_path / "site").exists()


def test_the_shipped_settings_pass_the_checks():
    assert fence_errors() == []


# Backups that are allowed ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_backup_lands_in_the_backup_directory_on_this_database(backup_dir, make_job):
    make_job(name="kept")
    result = builtin_tasks.backup_database("nightly/")
    path = Path(result["path"])
    assert path.parent == backup_dir / "nightly"
    assert path.stat().st_mode & 0o777 == 0o600  # a copy of every session and token: the owner's alone
    assert listing(backup_dir) == ["nightly", f"nightly/{path.name}"]
    table = Job._meta.db_table
    if connection.vendor == "sqlite":
        with sqlite3.connect(path) as copy:
            assert copy.execute(f"SELECT name FROM {table}").fetchall() == [("kept",)]
    else:
        listed = subprocess.run(["pg_restore", "--list", str(path)], capture_output=True, text=True, check=True)
        assert f"TABLE DATA public {table} " in listed.stdout


@pytest.mark.django_db
def test_with_no_destination_the_backup_gets_a_new_name_in_the_backup_directory(backup_dir):
    first = Path(builtin_tasks.backup_database()["path"])
    second = Path(builtin_tasks.backup_database()["path"])
    assert first.parent == second.parent == backup_dir and first != second


@pytest.mark.django_db
def test_the_old_setting_name_still_names_the_backup_directory(settings, tmp_path):
    del settings.TEMPORA_BACKUP_DIR
    settings.SCHEDULER_BACKUP_DIR = tmp_path / "old-name"
    assert Path(builtin_tasks.backup_database()["path"]).parent == tmp_path / "old-name"


# tempora.process_data: where it may read -----------------------------------------------------------


@pytest.mark.parametrize("source", ["{outside}/secret.csv", "../outside/secret.csv", "a/../../outside/secret.csv"])
def test_a_source_outside_the_data_directory_is_refused(data_dir, outside, source):
    with pytest.raises(ValueError, match=r"^source: .*(relative to|'\.\.' is not allowed)"):
        builtin_tasks.process_data(source=source.format(outside=outside), operation="deduplicate")


def test_a_symbolic_link_out_of_the_data_directory_is_refused(data_dir, outside):
    (data_dir / "stolen.csv").symlink_to(outside / "secret.csv")
    (data_dir / "elsewhere").symlink_to(outside, target_is_directory=True)
    for source in ("stolen.csv", "elsewhere/secret.csv"):
        with pytest.raises(ValueError, match="is not a readable file in the data directory"):
            builtin_tasks.process_data(source=source)


def test_it_never_tells_whether_a_path_outside_exists(data_dir, outside):
    (data_dir / "to-existing.csv").symlink_to(outside / "secret.csv")
    (data_dir / "to-missing.csv").symlink_to(outside / "missing.csv")
    messages = []
    for source in ("to-existing.csv", "to-missing.csv", "missing.csv"):
        with pytest.raises(ValueError) as failure:
            builtin_tasks.process_data(source=source)
        messages.append(str(failure.value).replace(source, "NAME"))
    assert messages[0] == messages[1] == messages[2]


def test_a_fifo_is_refused_without_waiting_for_a_writer(data_dir):
    os.mkfifo(data_dir / "pipe.csv")
    with pytest.raises(ValueError, match="is not a readable file in the data directory"):
        builtin_tasks.process_data(source="pipe.csv")


@pytest.mark.django_db
def test_an_absolute_source_is_a_400_when_saved(data_dir):
    assert "source: '/etc/passwd.csv' must be a name relative to the data directory" in save_errors(
        "tempora.process_data",
        source="/etc/passwd.csv",
    )


def test_a_file_inside_the_data_directory_is_read(data_dir):
    (data_dir / "in").mkdir()
    (data_dir / "in" / "orders.jsonl").write_text('{"amount": 1}\n{"amount": 2}\n')
    assert builtin_tasks.process_data(source="orders.csv", field="amount")["sum"] == 14
    assert builtin_tasks.process_data(source="in/orders.jsonl", field="amount")["sum"] == 3
