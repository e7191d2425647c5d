"""Celery's autodiscovery imports each installed app's `tasks` module: here, the "celery"
executor's task (engine/celery_executor.py), which the scheduler sends runs to."""

from scheduler_app.engine.celery_executor import run_execution

__all__ = ["run_execution"]
