"""The distribution `tempora`: what the wheel holds and what it asks for.

The wheel is built for real (PEP 517, the project's own build backend) once per session
(conftest.py); tests/package/test_host_project.py installs the same wheel into a fresh host project.
"""

from __future__ import annotations

import tomllib
import zipfile
from email.parser import Parser
from importlib import metadata
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from scheduler_app.checks import REQUIRED_APPS
from tests.package.conftest import ROOT


def pins(path: Path) -> dict[str, str]:
    """name -> exact version of every `name==version` line, following `-r` includes."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found |= pins(path.parent / line[3:].strip())
        elif "==" in line:
            requirement = Requirement(line)
            found[canonical(requirement.name)] = next(iter(requirement.specifier)).version
    return found


def canonical(name: str) -> str:
    return name.lower().replace("_", "-")


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def declared() -> list[Requirement]:
    extras = [item for group in project()["optional-dependencies"].values() for item in group]
    return [Requirement(item) for item in project()["dependencies"] + extras]


def test_every_dependency_of_the_package_is_pinned_within_its_range():
    pinned = pins(ROOT / "requirements.txt")
    problems = []
    for requirement in declared():
        version = pinned.get(canonical(requirement.name))
        if version is None:
            problems.append(f"{requirement.name}: not pinned in requirements.txt")
        elif not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement.name}=={version} is outside {requirement.specifier}")
    assert problems == []


def test_the_constraints_agree_with_every_pin_and_pin_all_that_is_installed():
    """constraints.txt (make constraints) repeats the requirements' pins: a pin changed in one
    file and not the other would make pip refuse to install."""
    constrained = pins(ROOT / "constraints.txt")
    wanted = pins(ROOT / "requirements-test.txt")
    assert {name: version for name, version in wanted.items() if constrained.get(name) != version} == {}
    if metadata.version("django") != constrained["django"]:
        return  # .venv-django6 (make test-django6) resolves without them, by design
    installed = {canonical(dist.metadata["Name"]) for dist in metadata.distributions()} - {
        "pip",
        "setuptools",
        "tempora",
    }
    assert sorted(installed - constrained.keys()) == []


def test_the_django_range_admits_both_versions_the_repository_tests():
    """`make test` runs on requirements.txt's Django (5.2 LTS), `make test-django6` on Django 6."""
    tested = {
        "requirements.txt": pins(ROOT / "requirements.txt")["django"],
        "requirements-django6.txt": pins(ROOT / "requirements-django6.txt")["django"],
    }
    assert Version(tested["requirements.txt"]).release[:2] == (5, 2)
    assert Version(tested["requirements-django6.txt"]).major == 6
    (django,) = [requirement for requirement in declared() if canonical(requirement.name) == "django"]
    assert {where: version for where, version in tested.items() if version not in django.specifier} == {}
    classifiers = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["classifiers"]
    for version in tested.values():
        major, minor = Version(version).release[:2]
        assert f"Framework :: Django :: {major}.{minor}" in classifiers


def test_the_runtime_requirements_hold_no_test_tool():
    runtime = pins(ROOT / "requirements.txt")
    test_only = set(pins(ROOT / "requirements-test.txt")) - set(runtime)
    assert {"pytest", "pytest-django", "playwright"} <= test_only
    assert not {"pytest", "playwright", "hypothesis", "schemathesis"} & set(runtime)


def test_every_app_the_checks_require_comes_with_the_package_itself():
    # `pip install tempora` must be enough for `manage.py check`: an app that only an extra
    # installs would be an E010 the host cannot fix by following the message.
    plain = {canonical(Requirement(item).name) for item in project()["dependencies"]}
    owners = packages_distributions()
    missing = [
        app for app in REQUIRED_APPS if not plain & {canonical(name) for name in owners.get(app.split(".")[0], [])}
    ]
    assert missing == []


def test_the_wheel_ships_the_app_with_its_templates_static_files_translations_and_commands(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "scheduler_app/py.typed",
        "scheduler_app/apps.py",
        "scheduler_app/migrations/0001_initial.py",
        "scheduler_app/management/commands/runscheduler.py",
        "scheduler_app/templates/scheduler_app/base.html",
        "scheduler_app/templates/scheduler_app/jobs/list.html",
        "scheduler_app/static/scheduler_app/vendor/htmx.min.js",
        "scheduler_app/static/scheduler_app/vendor/pico.min.css",
        "scheduler_app/static/scheduler_app/js/app.js",
        "scheduler_app/static/scheduler_app/css/app.css",
        "scheduler_app/locale/zh_Hans/LC_MESSAGES/django.mo",
    }
    assert expected - names == set()
    # Only the app: not the repository's project, tests or benchmarks.
    assert {name.split("/")[0] for name in names if not name.startswith("tempora-")} == {"scheduler_app"}


def test_the_wheel_declares_its_dependencies_and_extras(wheel):
    with zipfile.ZipFile(wheel) as archive:
        (meta,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(meta).decode())
    requires = [Requirement(item) for item in metadata.get_all("Requires-Dist")]
    plain = {canonical(r.name) for r in requires if r.marker is None}
    assert {
        "django",
        "djangorestframework",
        "django-apscheduler",
        "croniter",
        "django-htmx",
        "drf-spectacular-sidecar",
    } <= plain
    assert {"celery", "postgres", "tasks"} <= set(metadata.get_all("Provides-Extra"))
    assert canonical("django-celery-results") in {
        canonical(r.name) for r in requires if r.marker and "celery" in str(r.marker)
    }
