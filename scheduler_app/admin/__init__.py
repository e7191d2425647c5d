"""The Django admin for Tempora's tables.

Every write goes through the services (scheduler_app/services/), exactly as the API and the console do: a job and its
triggers are saved by one `job_create`/`job_update` call (one transaction, the same
validators), calendars by `calendar_*`, and the actions call the matching service and say
what happened with `message_user`. Executions and the scheduler's own rows are read-only;
they change only through actions.

Validation happens twice by design: the forms run the model validators and
`triggers.compile_trigger` (so errors sit next to their field), and the service checks
again when saving. If the service still refuses (a name taken meanwhile, say), its
transaction rolls back and the page is validated again with the service's errors shown on
the fields they name (`ServiceSavingAdmin.changeform_view`).
"""

from django.contrib import admin

from scheduler_app.admin import calendars, executions, jobs, scheduler  # noqa: F401 (they register)

admin.site.site_header = "Tempora"
admin.site.site_title = "Tempora admin"
admin.site.index_title = "Jobs, runs and the scheduler"
