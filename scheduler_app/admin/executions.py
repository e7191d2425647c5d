"""Executions: read-only history with a date hierarchy; actions call the services."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import ngettext

from scheduler_app import permissions, services, triggers
from scheduler_app.admin.bases import JobRightsAdmin, ReadOnlyAdmin, refusal_shown
from scheduler_app.admin.display import preformatted, status_badge
from scheduler_app.models import Execution
from scheduler_app.permissions import JobAction
from scheduler_app.web.display import duration_text  # the console's wording, so both read alike


@admin.register(Execution)
class ExecutionAdmin(JobRightsAdmin, ReadOnlyAdmin):
    list_display = ("job_name", "scheduled", "status_badge", "reason", "attempt", "duration_display", "worker")
    list_filter = ("status", "reason", "dead_letter")
    date_hierarchy = "scheduled_for"
    search_fields = ("job_name", "error")
    # The scheduled time is shown in the job's zone.
    list_select_related = ("job",)
    actions = ("retry_executions", "cancel_executions", "acknowledge_dead_letters")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "job_link",
                    "job_name",
                    "trigger",
                    "status_badge",
                    "reason",
                    "attempt",
                    "args",
                    "kwargs",
                    "dead_letter",
                    "acknowledged_at",
                )
            },
        ),
        (
            "Timing",
            {
                "fields": (
                    "scheduled_for",
                    "run_after",
                    "created_at",
                    "queued_at",
                    "started_at",
                    "finished_at",
                    "duration_display",
                    "lag_display",
                    "cancel_requested_at",
                )
            },
        ),
        ("Where", {"fields": ("worker", "task_id", "requested_by")}),
        ("What happened", {"fields": ("result_display", "output_display", "error_display", "traceback_display")}),
    )
    readonly_fields = (
        "job_link",
        "status_badge",
        "duration_display",
        "lag_display",
        "result_display",
        "output_display",
        "error_display",
        "traceback_display",
    )

    def get_queryset(self, request):
        return super().get_queryset(request).visible_to(request.user)

    def job_of(self, execution: Execution):
        return execution.job

    def may(self, request, action, execution) -> bool:
        return permissions.may_execution(request.user, action, execution)

    # History is read-only here (ReadOnlyAdmin's answers), whoever the user is.
    has_change_permission = ReadOnlyAdmin.has_change_permission
    has_delete_permission = ReadOnlyAdmin.has_delete_permission

    @admin.display(description="Scheduled for", ordering="scheduled_for")
    def scheduled(self, execution: Execution) -> str:
        if execution.job is not None:
            try:
                return triggers.format_local(execution.scheduled_for, execution.job.zone)
            except (KeyError, ValueError):
                pass
        return triggers.format_utc(execution.scheduled_for)

    @admin.display(description="Status", ordering="status")
    def status_badge(self, execution: Execution):
        dead = "dead letter" if execution.dead_letter and execution.acknowledged_at is None else ""
        return status_badge(execution.status, extra=dead)

    @admin.display(description="Duration")
    def duration_display(self, execution: Execution) -> str:
        return duration_text(execution.duration)

    @admin.display(description="Lag")
    def lag_display(self, execution: Execution) -> str:
        return duration_text(execution.lag)

    @admin.display(description="Job")
    def job_link(self, execution: Execution):
        if execution.job_id is None:
            return "(deleted)"
        url = reverse("admin:scheduler_app_job_change", args=[execution.job_id])
        return format_html('<a href="{}">{}</a>', url, execution.job_name)

    @admin.display(description="Result")
    def result_display(self, execution: Execution):
        if execution.result is None:
            return "-"
        return preformatted(json.dumps(execution.result, indent=2, ensure_ascii=False, default=str))

    @admin.display(description="Output")
    def output_display(self, execution: Execution):
        return preformatted(execution.output)

    @admin.display(description="Error")
    def error_display(self, execution: Execution):
        return preformatted(execution.error)

    @admin.display(description="Traceback")
    def traceback_display(self, execution: Execution):
        return preformatted(execution.traceback)

    @admin.action(description="Retry the selected runs", permissions=["operate"])
    @refusal_shown
    @transaction.atomic  # a run the service refuses is left alone; any other failure undoes all
    def retry_executions(self, request, queryset):
        retried, refused = 0, 0
        permissions.require_executions(request.user, JobAction.RETRY, queryset.select_related("job"))
        for execution in queryset:
            try:
                services.execution_retry(execution=execution, actor=request.user)
                retried += 1
            except ValidationError:
                refused += 1
        message = ngettext("Queued %d retry.", "Queued %d retries.", retried) % retried
        if refused:
            message += (
                " "
                + ngettext(
                    "%d run was left alone: only failed, timed-out, lost, cancelled or missed runs of an existing job "
                    "can be retried.",
                    "%d runs were left alone: only failed, timed-out, lost, cancelled or missed runs of an existing job "
                    "can be retried.",
                    refused,
                )
                % refused
            )
        self.message_user(request, message, messages.WARNING if refused else messages.SUCCESS)

    @admin.action(description="Cancel the selected runs", permissions=["operate"])
    @refusal_shown
    @transaction.atomic
    def cancel_executions(self, request, queryset):
        cancelled, stopping, finished, refused = 0, 0, 0, []
        permissions.require_executions(request.user, JobAction.CANCEL, queryset.select_related("job"))
        for execution in queryset:
            try:
                result = services.execution_cancel(execution=execution, actor=request.user)
            except ValidationError as exc:
                if execution.status in Execution.FINISHED:
                    finished += 1
                else:  # nothing can stop it (its scheduler is dead): say why
                    refused.append(f"{execution.job_name} #{execution.pk}: {' '.join(exc.messages)}")
                continue
            if result.status == Execution.Status.CANCELLED:
                cancelled += 1
            else:
                stopping += 1
        parts = [ngettext("Cancelled %d waiting run.", "Cancelled %d waiting runs.", cancelled) % cancelled]
        if stopping:
            parts.append(
                ngettext(
                    "Asked the scheduler to stop %d running run.",
                    "Asked the scheduler to stop %d running runs.",
                    stopping,
                )
                % stopping
            )
        if finished:
            parts.append(ngettext("%d run had already finished.", "%d runs had already finished.", finished) % finished)
        parts.extend(refused)
        self.message_user(request, " ".join(parts), messages.WARNING if finished or refused else messages.SUCCESS)

    @admin.action(description="Acknowledge the selected dead letters", permissions=["operate"])
    @refusal_shown
    def acknowledge_dead_letters(self, request, queryset):
        count = services.dead_letter_acknowledge(executions=queryset, actor=request.user)
        message = ngettext("Acknowledged %d dead letter.", "Acknowledged %d dead letters.", count) % count
        self.message_user(request, message)
