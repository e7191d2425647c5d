"""The Django admin for Tempora's tables.

Every write goes through services.py, exactly as the API and the console do: a job and its
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

from __future__ import annotations

import json
from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction
from django.db.models import Count
from django.forms.models import BaseInlineFormSet
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import ngettext

from scheduler_app import services, triggers
from scheduler_app.models import Calendar, Execution, Job, SchedulerNode, SchedulerState, Trigger

admin.site.site_header = "Tempora"
admin.site.site_title = "Tempora admin"
admin.site.index_title = "Jobs, runs and the scheduler"

# Where a refused save leaves the service's errors for the second validation pass.
_SERVICE_ERRORS = "_tempora_service_errors"

_BADGE_COLOURS = {
    Execution.Status.SUCCEEDED: "#1a7f37",
    Execution.Status.FAILED: "#cf222e",
    Execution.Status.TIMED_OUT: "#cf222e",
    Execution.Status.LOST: "#cf222e",
    Execution.Status.RUNNING: "#0969da",
    Execution.Status.QUEUED: "#8250df",
    Execution.Status.SCHEDULED: "#57606a",
    Execution.Status.CANCELLED: "#57606a",
    Execution.Status.SKIPPED: "#9a6700",
    Execution.Status.MISSED: "#9a6700",
}


def status_badge(status: str, *, extra: str = ""):
    """A small coloured label; the text is escaped like any other value."""
    if not status:
        return "-"
    try:
        label = Execution.Status(status).label
    except ValueError:
        label = status
    text = f"{label} · {extra}" if extra else label
    return format_html(
        '<span style="background:{};color:#fff;padding:1px 7px;border-radius:9px;'
        'font-size:11px;white-space:nowrap">{}</span>',
        _BADGE_COLOURS.get(status, "#57606a"),
        text,
    )


def preformatted(text: str):
    return format_html('<pre style="white-space:pre-wrap;margin:0">{}</pre>', text) if text else "-"


def duration_text(value: timedelta | None) -> str:
    """`duration_text(timedelta(seconds=62.5))` → "1 min 2 s"."""
    if value is None:
        return "-"
    seconds = value.total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _error_dict(exc: ValidationError) -> dict[str, list[str]]:
    return exc.message_dict if hasattr(exc, "error_dict") else {NON_FIELD_ERRORS: exc.messages}


def _add_errors(form: forms.BaseForm, field: str, messages_: list[str]) -> None:
    if field in form.fields:
        form.add_error(field, messages_)
    elif field == NON_FIELD_ERRORS:
        form.add_error(None, messages_)
    else:
        form.add_error(None, [f"{field}: {message}" for message in messages_])


class _ServiceRefused(Exception):
    """A service raised ValidationError while saving what the forms had accepted."""

    def __init__(self, error: ValidationError):
        super().__init__(str(error))
        self.errors = _error_dict(error)


class ServiceErrorsForm(forms.ModelForm):
    """A model form that also shows the errors a service raised on the previous attempt."""

    service_errors: dict[str, list[str]] = {}

    def clean(self):
        cleaned_data = super().clean()
        for field, messages_ in self.service_errors.items():
            if not field.startswith("triggers."):  # the trigger formset shows those
                _add_errors(self, field, messages_)
        return cleaned_data


def _with_service_errors(cls: type, request) -> type:
    errors = getattr(request, _SERVICE_ERRORS, None)
    return type(cls.__name__, (cls,), {"service_errors": errors}) if errors else cls


class ServiceSavingAdmin(admin.ModelAdmin):
    """A ModelAdmin whose saves call services; a service's ValidationError becomes form errors."""

    form = ServiceErrorsForm

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except _ServiceRefused as refused:
            # The atomic block around the save has rolled back. Validate the same POST again,
            # this time with the service's errors, so the page shows them by their fields.
            setattr(request, _SERVICE_ERRORS, refused.errors)
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        return _with_service_errors(super().get_form(request, obj, change, **kwargs), request)


def _adopt(target, saved) -> None:
    """Copy a row a service saved onto the admin's own instance (the admin logs and redirects with it)."""
    for field in type(saved)._meta.concrete_fields:
        setattr(target, field.attname, getattr(saved, field.attname))
    target._state.adding = False
    target._state.db = saved._state.db


# Jobs and triggers ----------------------------------------------------------------------


class TriggerFormSet(BaseInlineFormSet):
    """The job's triggers, validated by triggers.py and handed to the job service as definitions."""

    service_errors: dict[str, list[str]] = {}

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        # Trigger.clean reads its job (zone, start_at), which may not be saved yet.
        form.instance.job = self.instance
        return form

    def live_forms(self) -> list[forms.ModelForm]:
        """The rows the job will have, in order: `triggers.<index>` in service errors counts these."""
        return [
            form for form in self.forms
            if (form.instance.pk is not None or form.has_changed()) and not self._should_delete_form(form)
        ]

    @staticmethod
    def definition(form: forms.ModelForm) -> dict:
        data = form.cleaned_data
        # The preset only describes the cron it produced: keep it while that cron is untouched.
        kept_preset = not {"kind", "cron_expression"} & set(form.changed_data)
        return {
            "kind": data["kind"],
            "cron_expression": data.get("cron_expression") or "",
            "interval_seconds": data.get("interval_seconds"),
            "run_at": data.get("run_at"),
            "preset": form.instance.preset if kept_preset and form.instance.pk else "",
            "jitter_seconds": data.get("jitter_seconds") or 0,
            "calendar": data.get("calendar"),
        }

    def definitions(self) -> list[dict]:
        return [self.definition(form) for form in self.live_forms()]

    def clean(self):
        super().clean()
        try:
            zone = triggers.validate_timezone(self.instance.timezone)
        except triggers.ScheduleError:
            zone = triggers.validate_timezone("UTC")  # the job form reports the zone
        now = timezone.now()
        rows = self.live_forms()
        for form in rows:
            if form.errors:
                continue
            try:
                triggers.compile_trigger(self.definition(form), zone, now)
            except triggers.ScheduleError as exc:
                _add_errors(form, exc.field, [exc.message])
        for key, messages_ in self.service_errors.items():
            prefix, _, rest = key.partition(".")
            if prefix != "triggers":
                continue
            index, _, field = rest.partition(".")
            if index.isdigit() and int(index) < len(rows):
                _add_errors(rows[int(index)], field or NON_FIELD_ERRORS, messages_)
            else:
                raise ValidationError(messages_)

    def record_saved(self, job: Job | None) -> None:
        """Fill what Django's change message reads; formset.save() is never called here."""
        self.new_objects, self.changed_objects, self.deleted_objects = [], [], []
        if job is None:  # triggers were left as they were
            return
        for form, row in zip(self.live_forms(), job.triggers.select_related("job", "calendar").order_by("id")):
            if form.instance.pk is None:
                self.new_objects.append(row)
            elif form.has_changed():
                self.changed_objects.append((row, form.changed_data))
        self.deleted_objects = [form.instance for form in self.deleted_forms if form.instance.pk is not None]


class TriggerInline(admin.TabularInline):
    model = Trigger
    formset = TriggerFormSet
    fields = ("kind", "cron_expression", "interval_seconds", "run_at", "jitter_seconds", "calendar", "in_words")
    readonly_fields = ("in_words",)
    extra = 0

    def get_extra(self, request, obj=None, **kwargs):
        return 1 if obj is None else 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("calendar")

    def get_formset(self, request, obj=None, **kwargs):
        return _with_service_errors(super().get_formset(request, obj, **kwargs), request)

    @admin.display(description="In words")
    def in_words(self, trigger: Trigger) -> str:
        return trigger.describe() if trigger.pk else "-"

    # A code-defined job's triggers belong to its code.
    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and not (obj and obj.code_defined)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and not (obj and obj.code_defined)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and not (obj and obj.code_defined)


@admin.register(Job)
class JobAdmin(ServiceSavingAdmin):
    inlines = [TriggerInline]
    list_display = (
        "name", "group", "task", "schedule", "next_run", "last_status_badge",
        "run_count", "failure_count", "paused", "owner",
    )
    list_filter = ("group", "paused", "executor", "task", "overlap_policy", "code_defined", "owner")
    search_fields = ("name", "description", "task", "group")
    list_select_related = ("owner",)
    autocomplete_fields = ("owner",)
    actions = ("pause_jobs", "resume_jobs", "run_jobs_now", "duplicate_jobs")
    fieldsets = (
        (None, {"fields": ("name", "description", "task", "args", "kwargs", "group", "tags", "priority", "owner")}),
        ("When", {"fields": ("timezone", "start_at", "end_at", "max_runs", "paused")}),
        ("How it runs", {"fields": (
            "executor", "timeout", "overlap_policy", "max_instances", "misfire_grace_time", "catch_up",
        )}),
        ("Retries", {"fields": ("max_retries", "retry_backoff", "retry_backoff_max")}),
    )
    state_fieldset = ("State", {"fields": (
        "code_defined", "import_error", "next_run_full", "last_status_badge", "last_run_at",
        "run_count", "failure_count", "created_at", "updated_at",
    )})
    readonly_fields = state_fieldset[1]["fields"]

    def get_queryset(self, request):
        # The schedule column describes every trigger and its calendar: two queries per page.
        return super().get_queryset(request).visible_to(request.user).prefetch_related("triggers__calendar")

    def get_fieldsets(self, request, obj=None):
        return self.fieldsets if obj is None else (*self.fieldsets, self.state_fieldset)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.code_defined:
            # The code owns the definition; pausing is the one thing a person may change here.
            editable = [name for _, options in self.fieldsets for name in options["fields"] if name != "paused"]
            return (*editable, *self.readonly_fields)
        return self.readonly_fields

    def get_changeform_initial_data(self, request):
        defaults = {"owner": request.user.pk, "misfire_grace_time": settings.SCHEDULER_MISFIRE_GRACE_TIME}
        return {**defaults, **super().get_changeform_initial_data(request)}

    def has_delete_permission(self, request, obj=None):
        # The next code sync would bring a deleted code-defined job back.
        return super().has_delete_permission(request, obj) and not (obj and obj.code_defined)

    # Columns ------------------------------------------------------------------------------

    @admin.display(description="Schedule")
    def schedule(self, job: Job) -> str:
        return job.schedule_description()

    @admin.display(description="Next run", ordering="next_run_at")
    def next_run(self, job: Job) -> str:
        if job.next_run_at is None:
            return "-"
        try:
            return triggers.format_local(job.next_run_at, job.zone)
        except (KeyError, ValueError):
            return triggers.format_utc(job.next_run_at)

    @admin.display(description="Next run")
    def next_run_full(self, job: Job) -> str:
        if job.next_run_at is None:
            return "-"
        return f"{self.next_run(job)} = {triggers.format_utc(job.next_run_at)}"

    @admin.display(description="Last status", ordering="last_status")
    def last_status_badge(self, job: Job):
        return status_badge(job.last_status)

    # Saving through services ----------------------------------------------------------------

    def save_model(self, request, obj, form, change):
        # Deliberately empty: the job is saved with its triggers in save_related, in one service call.
        pass

    def save_related(self, request, form, formsets, change):
        job = form.instance
        trigger_formset = next((fs for fs in formsets if isinstance(fs, TriggerFormSet)), None)
        definitions = None
        try:
            if change and job.code_defined:
                saved = job
                if "paused" in form.changed_data:
                    pause = services.job_pause if form.cleaned_data["paused"] else services.job_resume
                    saved = pause(job=job)
            else:
                # Triggers are replaced only when the inline changed: replacing re-anchors intervals.
                if trigger_formset is not None and (not change or trigger_formset.has_changed()):
                    definitions = trigger_formset.definitions()
                fields = {name: form.cleaned_data[name] for name in services.JOB_FIELDS if name in form.cleaned_data}
                if change:
                    saved = services.job_update(job=job, triggers=definitions, **fields)
                else:
                    saved = services.job_create(triggers=definitions or [], **fields)
        except ValidationError as exc:
            raise _ServiceRefused(exc) from exc
        _adopt(job, saved)
        if trigger_formset is not None:
            trigger_formset.record_saved(saved if definitions is not None else None)

    def delete_model(self, request, obj):
        services.job_delete(job=obj)

    def delete_queryset(self, request, queryset):
        services.jobs_delete(jobs=queryset)

    # Actions ----------------------------------------------------------------------------------

    @admin.action(description="Pause the selected jobs", permissions=["change"])
    def pause_jobs(self, request, queryset):
        changed = services.jobs_pause(jobs=queryset)
        self.message_user(request, ngettext("Paused %d job.", "Paused %d jobs.", changed) % changed)

    @admin.action(description="Resume the selected jobs", permissions=["change"])
    def resume_jobs(self, request, queryset):
        changed = services.jobs_resume(jobs=queryset)
        self.message_user(
            request,
            ngettext("Resumed %d job; ", "Resumed %d jobs; ", changed) % changed
            + "they plan from now (runs missed while paused are not caught up).",
        )

    @admin.action(description="Run the selected jobs now", permissions=["change"])
    def run_jobs_now(self, request, queryset):
        executions = services.jobs_run_now(jobs=queryset, user=request.user)
        count = len(executions)
        self.message_user(request, ngettext(
            "Requested a run of %d job: the scheduler will start it within a few seconds (see Executions).",
            "Requested a run of %d jobs: the scheduler will start them within a few seconds (see Executions).",
            count,
        ) % count)

    @admin.action(description="Duplicate the selected jobs (copies start paused)", permissions=["add"])
    def duplicate_jobs(self, request, queryset):
        copies = [services.job_duplicate(job=job) for job in queryset.prefetch_related("triggers__calendar")]
        names = ", ".join(copy.name for copy in copies)
        self.message_user(
            request,
            ngettext("Created %d paused copy: ", "Created %d paused copies: ", len(copies)) % len(copies) + names,
        )


# Executions -------------------------------------------------------------------------------


@admin.register(Execution)
class ExecutionAdmin(admin.ModelAdmin):
    list_display = ("job_name", "scheduled", "status_badge", "reason", "attempt", "duration_display", "worker")
    list_filter = ("status", "reason", "dead_letter")
    date_hierarchy = "scheduled_for"
    search_fields = ("job_name", "error")
    # The scheduled time is shown in the job's zone.
    list_select_related = ("job",)
    actions = ("retry_executions", "cancel_executions", "acknowledge_dead_letters")
    fieldsets = (
        (None, {"fields": (
            "job_link", "job_name", "trigger", "status_badge", "reason", "attempt", "dead_letter", "acknowledged_at",
        )}),
        ("Timing", {"fields": (
            "scheduled_for", "run_after", "created_at", "queued_at", "started_at", "finished_at",
            "duration_display", "lag_display", "cancel_requested_at",
        )}),
        ("Where", {"fields": ("worker", "task_id", "requested_by")}),
        ("What happened", {"fields": ("result_display", "output_display", "error_display", "traceback_display")}),
    )
    readonly_fields = (
        "job_link", "status_badge", "duration_display", "lag_display",
        "result_display", "output_display", "error_display", "traceback_display",
    )

    def get_queryset(self, request):
        return super().get_queryset(request).visible_to(request.user)

    # History is written by the scheduler; people act on it through the actions only.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_operate_permission(self, request):
        return request.user.has_perm("scheduler_app.change_execution")

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
    def retry_executions(self, request, queryset):
        retried, refused = 0, 0
        for execution in queryset:
            try:
                services.execution_retry(execution=execution, user=request.user)
                retried += 1
            except ValidationError:
                refused += 1
        message = ngettext("Queued %d retry.", "Queued %d retries.", retried) % retried
        if refused:
            message += " " + ngettext(
                "%d run was left alone: only failed, timed-out, lost, cancelled or missed runs of an existing job "
                "can be retried.",
                "%d runs were left alone: only failed, timed-out, lost, cancelled or missed runs of an existing job "
                "can be retried.",
                refused,
            ) % refused
        self.message_user(request, message, messages.WARNING if refused else messages.SUCCESS)

    @admin.action(description="Cancel the selected runs", permissions=["operate"])
    def cancel_executions(self, request, queryset):
        cancelled, stopping, finished = 0, 0, 0
        for execution in queryset:
            try:
                result = services.execution_cancel(execution=execution)
            except ValidationError:
                finished += 1
                continue
            if result.status == Execution.Status.CANCELLED:
                cancelled += 1
            else:
                stopping += 1
        parts = [ngettext("Cancelled %d waiting run.", "Cancelled %d waiting runs.", cancelled) % cancelled]
        if stopping:
            parts.append(ngettext(
                "Asked the scheduler to stop %d running run.", "Asked the scheduler to stop %d running runs.", stopping
            ) % stopping)
        if finished:
            parts.append(ngettext(
                "%d run had already finished.", "%d runs had already finished.", finished
            ) % finished)
        self.message_user(request, " ".join(parts), messages.WARNING if finished else messages.SUCCESS)

    @admin.action(description="Acknowledge the selected dead letters", permissions=["operate"])
    def acknowledge_dead_letters(self, request, queryset):
        count = services.dead_letter_acknowledge(executions=queryset)
        message = ngettext("Acknowledged %d dead letter.", "Acknowledged %d dead letters.", count) % count
        self.message_user(request, message)


# Calendars --------------------------------------------------------------------------------


@admin.register(Calendar)
class CalendarAdmin(ServiceSavingAdmin):
    list_display = ("name", "business_days_only", "excluded_count", "used_by", "updated_at")
    search_fields = ("name", "description")
    list_filter = ("business_days_only",)
    autocomplete_fields = ("owner",)
    fields = ("name", "description", "excluded_dates", "business_days_only", "owner")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(trigger_count=Count("triggers"))

    @admin.display(description="Excluded dates")
    def excluded_count(self, calendar: Calendar) -> int:
        return len(calendar.excluded_dates)

    @admin.display(description="Triggers using it", ordering="trigger_count")
    def used_by(self, calendar: Calendar) -> int:
        return calendar.trigger_count

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in self.fields if name in form.cleaned_data}
        try:
            if change:
                saved = services.calendar_update(calendar=obj, **fields)
            else:
                saved = services.calendar_create(**fields)
        except ValidationError as exc:
            raise _ServiceRefused(exc) from exc
        _adopt(obj, saved)

    def delete_model(self, request, obj):
        # A calendar in use is PROTECTed: the admin refuses before it gets here.
        services.calendar_delete(calendar=obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for calendar in queryset:
                services.calendar_delete(calendar=calendar)


# The scheduler's own rows -----------------------------------------------------------------


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SchedulerNode)
class SchedulerNodeAdmin(ReadOnlyAdmin):
    list_display = ("name", "hostname", "pid", "role", "state", "alive", "started_at", "last_beat_at")
    list_filter = ("role", "state")
    search_fields = ("name", "hostname")

    @admin.display(description="Alive", boolean=True)
    def alive(self, node: SchedulerNode) -> bool:
        return node.is_alive()


@admin.register(SchedulerState)
class SchedulerStateAdmin(ReadOnlyAdmin):
    list_display = (
        "__str__", "leader", "lease_expires_at", "paused", "paused_at", "shutdown_requested_at", "updated_at",
    )
    actions = ("pause_scheduler", "resume_scheduler")

    def changelist_view(self, request, extra_context=None):
        # The singleton must exist for the actions to have a row to act on.
        SchedulerState.load()
        return super().changelist_view(request, extra_context)

    def has_operate_permission(self, request):
        return request.user.has_perm("scheduler_app.change_schedulerstate")

    @admin.action(description="Pause the scheduler (nothing fires)", permissions=["operate"])
    def pause_scheduler(self, request, queryset):
        services.scheduler_pause()
        self.message_user(
            request, "The scheduler is paused: no job fires until it is resumed. Runs already started finish."
        )

    @admin.action(description="Resume the scheduler", permissions=["operate"])
    def resume_scheduler(self, request, queryset):
        services.scheduler_resume()
        self.message_user(request, "The scheduler is running again.")
