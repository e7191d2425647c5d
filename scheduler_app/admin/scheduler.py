"""The scheduler's own rows (nodes, the state singleton): read-only, with pause and resume actions."""

from __future__ import annotations

from django.contrib import admin

from scheduler_app import permissions, services
from scheduler_app.admin.bases import ReadOnlyAdmin
from scheduler_app.models import SchedulerNode, SchedulerState


@admin.register(SchedulerNode)
class SchedulerNodeAdmin(ReadOnlyAdmin):
    # Node names carry hosts and PIDs: view_schedulernode (Django's default answer), as the
    # console and the API ask it.
    list_display = ("name", "hostname", "pid", "role", "state", "alive", "started_at", "last_beat_at")
    list_filter = ("role", "state")
    search_fields = ("name", "hostname")

    @admin.display(description="Alive", boolean=True)
    def alive(self, node: SchedulerNode) -> bool:
        return node.is_alive()


@admin.register(SchedulerState)
class SchedulerStateAdmin(ReadOnlyAdmin):
    list_display = (
        "__str__",
        "leader",
        "lease_expires_at",
        "paused",
        "paused_at",
        "shutdown_requested_at",
        "updated_at",
    )
    actions = ("pause_scheduler", "resume_scheduler")

    def changelist_view(self, request, extra_context=None):
        # The singleton must exist for the actions to have a row to act on.
        SchedulerState.load()
        return super().changelist_view(request, extra_context)

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_view_permission(self, request, obj=None):
        return permissions.may_view_nodes(request.user) or permissions.may_control_scheduler(request.user)

    def has_operate_permission(self, request):
        return permissions.may_control_scheduler(request.user)

    @admin.action(description="Pause the scheduler (nothing fires)", permissions=["operate"])
    def pause_scheduler(self, request, queryset):
        services.scheduler_pause(actor=request.user)
        self.message_user(
            request, "The scheduler is paused: no job fires until it is resumed. Runs already started finish."
        )

    @admin.action(description="Resume the scheduler", permissions=["operate"])
    def resume_scheduler(self, request, queryset):
        services.scheduler_resume(actor=request.user)
        self.message_user(request, "The scheduler is running again.")
