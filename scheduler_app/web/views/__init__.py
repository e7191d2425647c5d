"""The console's views, one module per page (see scheduler_app/web/urls.py)."""
