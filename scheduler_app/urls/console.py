"""The console (namespace `tempora`), at the prefix scheduler_app.urls is mounted under.

One URL, one view: each answers its whole page, or only the fragment an htmx request targets
(web/base.py)."""

from django.urls import path

from scheduler_app.web.views import (
    account,
    calendar,
    dashboard,
    dead_letters,
    executions,
    job_detail,
    job_edit,
    jobs,
    scheduler,
    tokens,
)

app_name = "tempora"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("login/", account.LoginView.as_view(), name="login"),
    path("logout/", account.LogoutView.as_view(), name="logout"),
    path("preferences/zone/", account.set_zone, name="set-zone"),
    # Jobs
    path("jobs/", jobs.job_list, name="jobs"),
    path("jobs/bulk/", jobs.bulk, name="jobs-bulk"),
    path("jobs/new/", job_edit.job_create, name="job-create"),
    path("jobs/preview/", job_edit.job_preview, name="job-preview"),
    path("jobs/task/", job_edit.task_info, name="task-info"),
    path("jobs/<int:pk>/", job_detail.job_detail, name="job"),
    path("jobs/<int:pk>/edit/", job_edit.job_edit, name="job-edit"),
    path("jobs/<int:pk>/run/", job_detail.job_run, name="job-run"),
    path("jobs/<int:pk>/pause/", job_detail.job_pause, name="job-pause"),
    path("jobs/<int:pk>/resume/", job_detail.job_resume, name="job-resume"),
    path("jobs/<int:pk>/delete/", job_detail.job_delete, name="job-delete"),
    path("jobs/<int:pk>/duplicate/", job_detail.job_duplicate, name="job-duplicate"),
    # Runs
    path("executions/", executions.execution_list, name="executions"),
    path("executions/<int:pk>/", executions.execution_detail, name="execution"),
    path("executions/<int:pk>/retry/", executions.execution_retry, name="execution-retry"),
    path("executions/<int:pk>/cancel/", executions.execution_cancel, name="execution-cancel"),
    path("dead-letters/", dead_letters.dead_letter_list, name="dead-letters"),
    path("dead-letters/acknowledge/", dead_letters.dead_letter_acknowledge, name="dead-letters-acknowledge"),
    # Calendar
    path("calendar/", calendar.month, name="calendar"),
    path("calendar/<str:value>/", calendar.day, name="calendar-day"),
    path("calendars/new/", calendar.calendar_create, name="calendar-create"),
    path("calendars/<int:pk>/edit/", calendar.calendar_edit, name="calendar-edit"),
    path("calendars/<int:pk>/delete/", calendar.calendar_delete, name="calendar-delete"),
    # The scheduler
    path("scheduler/", scheduler.scheduler, name="scheduler"),
    path("scheduler/pause/", scheduler.scheduler_pause, name="scheduler-pause"),
    path("scheduler/resume/", scheduler.scheduler_resume, name="scheduler-resume"),
    path("scheduler/shutdown/", scheduler.scheduler_shutdown, name="scheduler-shutdown"),
    path("scheduler/settings/", scheduler.scheduler_settings, name="scheduler-settings"),
    *tokens.urlpatterns,
]
