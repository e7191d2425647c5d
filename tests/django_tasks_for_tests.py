"""Functions declared with Django's own `@task` (django.tasks on Django 6, the django-tasks
backport on 5.2), for the tests of the "django_tasks" executor. Nothing of Tempora's here: the
registry finds them when this module is in TEMPORA["TASK_MODULES"] (as the process tests set
it) or is passed to registry.register_django_tasks."""

from __future__ import annotations

try:
    from django.tasks import task
except ImportError:  # Django 5.2: the backport
    from django_tasks import task


@task()
def greet(name: str, punctuation: str = "!") -> dict:
    """Say hello to someone (a Django task)."""
    print(f"greeting {name}")
    return {"greeting": f"hello {name}{punctuation}"}


@task()
def explode(why: str = "boom") -> None:
    raise RuntimeError(why)
