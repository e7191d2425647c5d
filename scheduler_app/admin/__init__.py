"""The Django admin for Tempora's tables.

Every write goes through the services (scheduler_app/services/), exactly as the API and the console do: a job and its
triggers are saved by one `job_create`/`job_update` call (one transaction, the same
validators), calendars by `calendar_*`, and the actions call the matching service and say
what happened with `message_user`. Executions and the scheduler's own rows are read-only;
they change only through actions.

The forms run the model's validators (its fields' bounds, Trigger.clean); the service is the
check of the job and its triggers. If it refuses (a name taken meanwhile, a trigger it cannot
compile), its transaction rolls back and the page is validated again with the service's
errors shown on the fields they name (`ServiceSavingAdmin.changeform_view`,
services/errors.ErrorPlaces for `triggers.<i>.<field>`).
"""

from django.contrib import admin

from scheduler_app.admin import calendars, executions, jobs, scheduler  # noqa: F401 (they register)

admin.site.site_header = "Tempora"
admin.site.site_title = "Tempora admin"
admin.site.index_title = "Jobs, runs and the scheduler"
