"""`manage.py tempora_roles`: list the shipped groups and their permissions; `--reset` puts
them back as shipped (they are created on migrate when missing)."""

from django.core.management.base import BaseCommand

from scheduler_app.permissions import ROLES, ensure_roles


class Command(BaseCommand):
    help = "Show Tempora's shipped groups (viewers, operators, editors, admins); --reset restores them."

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset", action="store_true", help="Give each shipped group exactly its shipped permissions."
        )

    def handle(self, *args, reset: bool = False, **options):
        touched = ensure_roles(reset=reset, using=options.get("database") or "default")
        for name, codenames in ROLES.items():
            mark = " (created)" if name in touched and not reset else " (reset)" if name in touched else ""
            self.stdout.write(f"{name}{mark}")
            for codename in codenames:
                self.stdout.write(f"    {codename}")
