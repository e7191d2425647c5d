from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _create_roles(sender, using="default", **kwargs) -> None:
    from scheduler_app.permissions import ensure_roles

    # After auth's own post_migrate handler has created the permissions (it runs first:
    # django.contrib.auth comes before scheduler_app in INSTALLED_APPS).
    ensure_roles(using=using)


class SchedulerAppConfig(AppConfig):
    name = "scheduler_app"
    verbose_name = "Tempora"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import scheduler_app.builtin.checks  # noqa: F401  (registers the system checks)
        import scheduler_app.checks  # noqa: F401
        from scheduler_app.registry import autodiscover

        # Tasks must be known before any job is validated or run.
        autodiscover()
        post_migrate.connect(_create_roles, sender=self, dispatch_uid="tempora-roles")
