"""Every state change in Tempora. The admin, the API, the console and the scheduler call these.

Rules every function keeps:
- keyword-only, typed arguments; the caller's clock may be injected as `now`;
- `full_clean()` before save, so the model's validators (the ones forms and the API use)
  decide, and a ValidationError names the field;
- one transaction per call, so a failure leaves nothing half-written;
- `updated_at` is stamped on every write, bulk ones included: the scheduler's sync reads it;
- nothing here runs a job: "run now" records a request that the scheduler picks up;
- who may do it is asked here, of scheduler_app/permissions.py: every interface passes the
  signed-in user as `actor`; `actor=None` is the system itself (the scheduler, code-defined
  jobs, management commands), which may do anything.
"""

from scheduler_app.services.base import ServiceError
from scheduler_app.services.calendars import CALENDAR_FIELDS, calendar_create, calendar_delete, calendar_update
from scheduler_app.services.code_jobs import code_jobs_sync
from scheduler_app.services.executions import dead_letter_acknowledge, execution_cancel, execution_retry
from scheduler_app.services.jobs import (
    JOB_FIELDS,
    group_cancel,
    group_pause,
    group_resume,
    job_create,
    job_delete,
    job_duplicate,
    job_pause,
    job_resume,
    job_run_now,
    job_triggers_check,
    job_update,
    jobs_delete,
    jobs_pause,
    jobs_resume,
    jobs_run_now,
)
from scheduler_app.services.scheduler import (
    RUNTIME_SETTINGS,
    Liveness,
    scheduler_config_update,
    scheduler_liveness,
    scheduler_pause,
    scheduler_resume,
    scheduler_setting,
    scheduler_shutdown_request,
)
from scheduler_app.services.tokens import TOKEN_TOUCH_SECONDS, token_create, token_mark_used, token_revoke

__all__ = [
    "CALENDAR_FIELDS",
    "JOB_FIELDS",
    "RUNTIME_SETTINGS",
    "TOKEN_TOUCH_SECONDS",
    "Liveness",
    "ServiceError",
    "calendar_create",
    "calendar_delete",
    "calendar_update",
    "code_jobs_sync",
    "dead_letter_acknowledge",
    "execution_cancel",
    "execution_retry",
    "group_cancel",
    "group_pause",
    "group_resume",
    "job_create",
    "job_delete",
    "job_duplicate",
    "job_pause",
    "job_resume",
    "job_run_now",
    "job_triggers_check",
    "job_update",
    "jobs_delete",
    "jobs_pause",
    "jobs_resume",
    "jobs_run_now",
    "scheduler_config_update",
    "scheduler_liveness",
    "scheduler_pause",
    "scheduler_resume",
    "scheduler_setting",
    "scheduler_shutdown_request",
    "token_create",
    "token_mark_used",
    "token_revoke",
]
