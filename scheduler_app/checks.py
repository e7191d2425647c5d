"""System checks (`manage.py check`, and `runscheduler` at start): Tempora's settings and the
apps and middleware it needs. Every check carries the tag "tempora" so runscheduler can run
them alone. The ids (docs/settings.md lists them):

E001 a malformed value · E002 an unknown TEMPORA key · E003 TEMPORA is not a dict ·
E004 NODE_DEAD_SECONDS below twice LEASE_SECONDS · E005 DEFAULT_TIMEOUT above MAX_TIMEOUT ·
E010 a missing app · E011 a missing middleware · E012 no template engine that finds our
templates, or a missing context processor · E013 the django_tasks executor is used (or
TASKS_BACKEND set) but its runs cannot be enqueued · W001 VAR_DIR not set · W002 a key set twice.
E101-E103 (the built-in tasks' directories) are in scheduler_app/builtin/checks.py.
"""

from __future__ import annotations

import difflib

import django
from django.apps import apps
from django.conf import settings
from django.core import checks
from django.db import DatabaseError

from scheduler_app import tasks_framework
from scheduler_app.conf import OLD_NAMES, SETTINGS, tempora_settings
from scheduler_app.models import Job

TAG = "tempora"

# What the console, the API and the engine use at run time (each is imported or its models,
# templates or request attributes are read).
REQUIRED_APPS = {
    "django.contrib.admin": "the console links staff to the admin site, and its pages manage Tempora's rows",
    "django.contrib.auth": "users, permissions and the shipped roles",
    "django.contrib.contenttypes": "permissions (django.contrib.auth needs it)",
    "django.contrib.sessions": "console sign-in",
    "django.contrib.messages": "the console's notices",
    "django.contrib.staticfiles": "the console's CSS and JavaScript ({% static %})",
    "rest_framework": "the REST API",
    "django_filters": "the API's and the console's list filters",
    "drf_spectacular": "the API schema and its documentation pages",
    "drf_spectacular_sidecar": "the API documentation pages' scripts, served offline",
    "django_htmx": "the console's partial page updates",
    "django_apscheduler": "the scheduler's job store (runscheduler)",
}
if django.VERSION < (6, 0):
    # Django 6 has template partials built in; on 5.2 the console's tags come from this app
    # (templatetags/console.py) and so does the loader that finds "page.html#name".
    REQUIRED_APPS["template_partials"] = "the console's page fragments ({% partialdef %}) on Django 5.2"
REQUIRED_MIDDLEWARE = {
    "django.contrib.sessions.middleware.SessionMiddleware": "console sign-in",
    "django.middleware.csrf.CsrfViewMiddleware": "the console's forms are POSTed with a CSRF token",
    "django.contrib.auth.middleware.AuthenticationMiddleware": "request.user",
    "django.contrib.messages.middleware.MessageMiddleware": "the console's notices",
    "django_htmx.middleware.HtmxMiddleware": "request.htmx, read by every console view",
}
CONTEXT_PROCESSORS = (
    "django.template.context_processors.request",
    "django.contrib.auth.context_processors.auth",
    "django.contrib.messages.context_processors.messages",
)
# Backends of django-celery-results: needed only when Celery stores results through it.
CELERY_RESULT_BACKENDS = ("django-db", "django-cache")


@checks.register(TAG)
def settings_values(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    given = getattr(settings, "TEMPORA", {})
    if not isinstance(given, dict):
        return [checks.Error(f"TEMPORA must be a dict; it is {given!r}.", id="tempora.E003")]
    messages = [_unknown(key) for key in given if key not in SETTINGS]
    for key in SETTINGS:
        problem = tempora_settings.problem(key)
        if problem:
            messages.append(checks.Error(problem, id="tempora.E001"))
        where = tempora_settings.source(key)
        if key in given and where != "TEMPORA" and given[key] != getattr(settings, where):
            messages.append(
                checks.Warning(
                    f"TEMPORA[{key!r}] is ignored: {where} is set to another value, and the top-level name wins.",
                    hint="Remove one of them.",
                    id="tempora.W002",
                )
            )
    if not any(tempora_settings.problem(key) for key in CROSS_FIELD_KEYS):
        messages += _cross_field_rules()
    if tempora_settings.source("VAR_DIR") is None and tempora_settings.source("JOURNAL_DIR") is None:
        messages.append(
            checks.Warning(
                f"TEMPORA['VAR_DIR'] is not set: the scheduler keeps its journal in {tempora_settings.VAR_DIR}, "
                "which a reboot or a temporary-files cleaner may empty.",
                hint="Set TEMPORA['VAR_DIR'] to a directory on the local disk, e.g. BASE_DIR / 'var'.",
                id="tempora.W001",
            )
        )
    return messages


def _unknown(key) -> checks.Error:
    guess = OLD_NAMES.get(key) or next(iter(difflib.get_close_matches(str(key), SETTINGS, n=1)), None)
    return checks.Error(
        f"TEMPORA has no setting {key!r}.",
        hint=f"Did you mean {guess!r}?" if guess else None,
        id="tempora.E002",
    )


CROSS_FIELD_KEYS = ("NODE_DEAD_SECONDS", "LEASE_SECONDS", "DEFAULT_TIMEOUT", "MAX_TIMEOUT")


def _cross_field_rules() -> list[checks.CheckMessage]:
    values, name = tempora_settings, tempora_settings.name
    messages = []
    if values.NODE_DEAD_SECONDS < 2 * values.LEASE_SECONDS:
        messages.append(
            checks.Error(
                f"{name('NODE_DEAD_SECONDS')}={values.NODE_DEAD_SECONDS} is below twice "
                f"{name('LEASE_SECONDS')}={values.LEASE_SECONDS}.",
                hint="A node silent for one lease may only be slow: it is declared dead well after.",
                id="tempora.E004",
            )
        )
    if values.DEFAULT_TIMEOUT > values.MAX_TIMEOUT:
        messages.append(
            checks.Error(
                f"{name('DEFAULT_TIMEOUT')}={values.DEFAULT_TIMEOUT} is above {name('MAX_TIMEOUT')}={values.MAX_TIMEOUT}.",
                id="tempora.E005",
            )
        )
    return messages


@checks.register(TAG)
def companion_apps(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    messages = [
        checks.Error(f"Tempora needs {app!r} in INSTALLED_APPS ({why}).", id="tempora.E010")
        for app, why in REQUIRED_APPS.items()
        if not apps.is_installed(app)
    ]
    messages += [
        checks.Error(f"Tempora needs {middleware!r} in MIDDLEWARE ({why}).", id="tempora.E011")
        for middleware, why in REQUIRED_MIDDLEWARE.items()
        if middleware not in settings.MIDDLEWARE
    ]
    backend = str(getattr(settings, "CELERY_RESULT_BACKEND", "") or "")
    if backend in CELERY_RESULT_BACKENDS and not apps.is_installed("django_celery_results"):
        messages.append(
            checks.Error(
                f"CELERY_RESULT_BACKEND={backend!r} needs 'django_celery_results' in INSTALLED_APPS.",
                hint="Only the celery executor uses it: install the app or choose another result backend.",
                id="tempora.E010",
            )
        )
    return messages + _templates()


def _templates() -> list[checks.CheckMessage]:
    engines = [
        engine
        for engine in settings.TEMPLATES
        if engine.get("BACKEND") == "django.template.backends.django.DjangoTemplates"
    ]
    finds_ours = [
        engine
        for engine in engines
        if engine.get("APP_DIRS")
        or any("app_directories" in str(loader) for loader in engine.get("OPTIONS", {}).get("loaders", ()))
    ]
    if not finds_ours:
        return [
            checks.Error(
                "Tempora's templates are in the app: TEMPLATES needs a DjangoTemplates engine with APP_DIRS=True "
                "(or the app_directories loader).",
                id="tempora.E012",
            )
        ]
    processors = finds_ours[0].get("OPTIONS", {}).get("context_processors", ())
    return [
        checks.Error(f"Tempora's templates need {processor!r} in TEMPLATES' context_processors.", id="tempora.E012")
        for processor in CONTEXT_PROCESSORS
        if processor not in processors
    ]


@checks.register(TAG)
def tasks_backend(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """The django_tasks executor's backend, when a job uses it or the host chose one: without it
    every run of such a job fails ("not enqueued"). One rule, tasks_framework.backend_problem,
    which the services also apply when a job is given that executor."""
    problem = tasks_framework.backend_problem()
    if problem is None or tempora_settings.problem("TASKS_BACKEND"):
        return []  # fine, or a malformed value: E001 already says so
    if tempora_settings.source("TASKS_BACKEND") is None and not _django_tasks_jobs():
        return []  # a host that does not use Django's Tasks needs none of it
    return [
        checks.Error(
            problem,
            hint=(
                "Install the framework (Django 6, or pip install 'tempora[tasks]' and 'django_tasks' in INSTALLED_APPS), "
                "configure the backend in settings.TASKS (e.g. {'default': {'BACKEND': "
                "'django_tasks_db.DatabaseBackend'}}), and set TEMPORA['TASKS_BACKEND'] to its alias; or move the jobs "
                "to another executor."
            ),
            id="tempora.E013",
        )
    ]


def _django_tasks_jobs() -> bool:
    # Only asked when the backend is missing. Before `migrate` there is no table, and no job.
    try:
        return Job.objects.filter(executor=Job.Executor.DJANGO_TASKS).exists()
    except DatabaseError:
        return False
