"""Django's Tasks framework, wherever it is installed: `django.tasks` (Django 6) or the
`django-tasks` backport (Django 5.2, `pip install tempora[tasks]`).

Tempora is the scheduler that framework lacks: a job may name a function decorated with its
`@task` (registry.py registers it like our own tasks), and the "django_tasks" executor
enqueues each run through a TASKS backend (engine/tasks_executor.py). This module only
answers what is installed and whether the backend Tempora uses is configured, so that the
registry, the services and the checks ask one place and none of them imports the framework
when it is absent.
"""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec
from types import ModuleType
from typing import Any

from django.apps import apps

from scheduler_app.conf import tempora_settings

# Built in first: on Django 6 the backport, if installed at all, is not what the host configured.
_MODULES = ("django.tasks", "django_tasks")


def _installed(name: str) -> bool:
    try:
        return find_spec(name) is not None
    except ModuleNotFoundError:  # "django.tasks" when Django itself is older: its parent has no such child
        return False


def framework() -> ModuleType | None:
    """The framework's package (`django.tasks` or `django_tasks`), or None when neither is installed."""
    for name in _MODULES:
        if _installed(name):
            return import_module(name)
    return None


def task_classes() -> tuple[type, ...]:
    """The Task classes of every installed copy: a function decorated with either is accepted."""
    return tuple(import_module(f"{name}.base").Task for name in _MODULES if _installed(name))


def is_django_task(value: Any) -> bool:
    classes = task_classes()
    return bool(classes) and isinstance(value, classes)


def backend_problem() -> str | None:
    """Why runs cannot be enqueued through Django's Tasks, or None when they can: the framework
    is missing, or TEMPORA['TASKS_BACKEND'] names no backend of settings.TASKS. One statement
    of the rule for the services (refusing such a job) and the system check (tempora.E013)."""
    found = framework()
    if found is None:
        return (
            "The django_tasks executor needs Django's Tasks framework: Django 6, or the django-tasks "
            "backport (pip install 'tempora[tasks]') with 'django_tasks' in INSTALLED_APPS."
        )
    if found.__name__ == "django_tasks" and not apps.is_installed("django_tasks"):
        return "The django-tasks backport is installed but 'django_tasks' is not in INSTALLED_APPS."
    alias = tempora_settings.TASKS_BACKEND
    try:
        found.task_backends[alias]
    except Exception as exc:  # the framework's InvalidTaskBackend(Error), or the backend's own import error
        return f"{tempora_settings.name('TASKS_BACKEND')}={alias!r} names no usable backend of settings.TASKS: {exc}"
    return None
