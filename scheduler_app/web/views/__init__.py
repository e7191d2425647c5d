"""The console's views, one module per page (see scheduler_app/urls/console.py)."""
