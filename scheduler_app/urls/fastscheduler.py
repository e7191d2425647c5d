"""The FastScheduler-compatible API (namespace `tempora-fastscheduler`), at scheduler/api/."""

from scheduler_app.api.compat import views as compat
from scheduler_app.urls.routing import route

app_name = "tempora-fastscheduler"

JOB = r"jobs/(?P<job_id>[^/]+)"
GROUP = r"groups/(?P<group>[^/]+)"

urlpatterns = [
    route("status", compat.StatusView, "status"),
    route("jobs", compat.JobsView, "jobs"),
    route(JOB, compat.JobView, "job"),
    *(route(f"{JOB}/{verb}", view, f"job-{verb}") for verb, view in compat.VERB_VIEWS.items()),
    route("history", compat.HistoryView, "history"),
    route("dead-letters", compat.DeadLettersView, "dead-letters"),
    route("groups", compat.GroupsView, "groups"),
    route(f"{GROUP}/jobs", compat.GroupJobsView, "group-jobs"),
    route(f"{GROUP}/pause", compat.GroupPauseView, "group-pause"),
    route(f"{GROUP}/resume", compat.GroupResumeView, "group-resume"),
    route(GROUP, compat.GroupView, "group"),
]
