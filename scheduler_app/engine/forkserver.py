"""What the forkserver imports before its first fork (runner._child_context): Django set up
once, with no database connection open, and the child's body loaded, so every child starts ready.
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

# After django.setup(): the child's body imports the task registry and the ORM.
from scheduler_app.engine import child  # noqa: E402, F401
