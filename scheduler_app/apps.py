from django.apps import AppConfig
from django.db.models.signals import post_migrate

from scheduler_app.registry import autodiscover

# This module is imported before any app's models: what uses models is imported in the
# functions below, which run once the app registry is ready.


def _create_roles(sender, using="default", **kwargs) -> None:
    from scheduler_app.permissions import ensure_roles  # noqa: PLC0415  (needs the auth models)

    # After auth's own post_migrate handler has created the permissions (it runs first:
    # django.contrib.auth comes before scheduler_app in INSTALLED_APPS).
    ensure_roles(using=using)


class SchedulerAppConfig(AppConfig):
    name = "scheduler_app"
    verbose_name = "Tempora"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import scheduler_app.builtin.checks  # noqa: PLC0415  (registers the system checks)
        import scheduler_app.checks  # noqa: F401, PLC0415

        # Task modules are imported once the app registry is ready (a task module may use
        # models); the built-ins first, then every app's jobs.py.
        from scheduler_app import builtin_tasks  # noqa: F401, PLC0415  (registers the built-ins)

        # Tasks must be known before any job is validated or run.
        autodiscover()
        post_migrate.connect(_create_roles, sender=self, dispatch_uid="tempora-roles")
