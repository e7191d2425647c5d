"""Jobs with their triggers inline, saved by job_create/job_update in one transaction."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.forms.models import BaseInlineFormSet
from django.utils.translation import ngettext

from scheduler_app import permissions, services, triggers
from scheduler_app.admin.bases import (
    JobRightsAdmin,
    ServiceRefused,
    ServiceSavingAdmin,
    add_errors,
    adopt,
    refusal_shown,
    with_service_errors,
)
from scheduler_app.admin.display import status_badge
from scheduler_app.conf import tempora_settings
from scheduler_app.models import Job, Trigger
from scheduler_app.permissions import JobAction
from scheduler_app.services.errors import ErrorPlaces


class TriggerFormSet(BaseInlineFormSet):
    """The job's triggers, handed to the job service as definitions; the service checks them
    (and the Trigger model's own clean, with the row)."""

    service_errors = ErrorPlaces()

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        # Trigger.clean reads its job (zone, start_at), which may not be saved yet.
        form.instance.job = self.instance
        return form

    def live_forms(self) -> list[forms.ModelForm]:
        """The rows the job will have, in order: `triggers.<index>` in service errors counts these."""
        return [
            form
            for form in self.forms
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
        rows = self.live_forms()
        fitting, left = self.service_errors.row_errors("triggers", len(rows))
        for index, fields in fitting.items():
            for field, messages_ in fields.items():
                add_errors(rows[index], field, messages_)
        if left:
            raise ValidationError(left)

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
        return with_service_errors(super().get_formset(request, obj, **kwargs), request)

    @admin.display(description="In words")
    def in_words(self, trigger: Trigger) -> str:
        return trigger.describe() if trigger.pk else "-"

    # A job's triggers are part of the job: whoever may change it (and may create one, for a
    # new job) edits them; a code-defined job's belong to its code.
    def _may_edit(self, request, obj) -> bool:
        if obj is None:
            return permissions.may_create_jobs(request.user)
        return not obj.code_defined and permissions.may(request.user, JobAction.CHANGE, obj)

    def has_view_permission(self, request, obj=None):
        return obj is None or permissions.may(request.user, JobAction.VIEW, obj)

    def has_add_permission(self, request, obj=None):
        return self._may_edit(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._may_edit(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._may_edit(request, obj)


class StateFilter(admin.SimpleListFilter):
    """Jobs by Job.schedule_state, the state every interface shows."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return Job.State.choices

    def queryset(self, request, queryset):
        return queryset.in_state(self.value()) if self.value() else queryset


class JobChangeList(ChangeList):
    def get_results(self, request):
        super().get_results(request)
        Job.count_runs_used(self.result_list)  # each row's state, without a query per row


@admin.register(Job)
class JobAdmin(JobRightsAdmin, ServiceSavingAdmin):
    inlines = [TriggerInline]
    list_display = (
        "name",
        "group",
        "task",
        "schedule",
        "state_label",
        "next_run",
        "last_status_badge",
        "run_count",
        "failure_count",
        "paused",
        "owner",
    )
    list_filter = (StateFilter, "group", "paused", "executor", "task", "overlap_policy", "code_defined", "owner")
    search_fields = ("name", "description", "task", "group")
    list_select_related = ("owner",)
    autocomplete_fields = ("owner",)
    actions = ("pause_jobs", "resume_jobs", "run_jobs_now", "duplicate_jobs")
    fieldsets = (
        (None, {"fields": ("name", "description", "task", "args", "kwargs", "group", "tags", "priority", "owner")}),
        ("When", {"fields": ("timezone", "start_at", "end_at", "max_runs", "paused")}),
        (
            "How it runs",
            {
                "fields": (
                    "executor",
                    "timeout",
                    "overlap_policy",
                    "max_instances",
                    "misfire_grace_time",
                    "catch_up",
                )
            },
        ),
        ("Retries", {"fields": ("max_retries", "retry_backoff", "retry_backoff_max", "lost_policy")}),
    )
    state_fieldset = (
        "State",
        {
            "fields": (
                "state_label",
                "code_defined",
                "import_error",
                "next_run_full",
                "last_status_badge",
                "last_run_at",
                "run_count",
                "failure_count",
                "created_at",
                "updated_at",
            )
        },
    )
    readonly_fields = state_fieldset[1]["fields"]

    def get_queryset(self, request):
        # The schedule column describes every trigger and its calendar: two queries per page.
        return super().get_queryset(request).visible_to(request.user).prefetch_related("triggers__calendar")

    def get_changelist(self, request, **kwargs):
        return JobChangeList

    def get_fieldsets(self, request, obj=None):
        return self.fieldsets if obj is None else (*self.fieldsets, self.state_fieldset)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.code_defined:
            # The code owns the definition; pausing is the one thing a person may change here.
            editable = [name for _, options in self.fieldsets for name in options["fields"] if name != "paused"]
            return (*editable, *self.readonly_fields)
        return self.readonly_fields

    def get_changeform_initial_data(self, request):
        defaults = {"owner": request.user.pk, "misfire_grace_time": tempora_settings.MISFIRE_GRACE_TIME}
        return {**defaults, **super().get_changeform_initial_data(request)}

    def has_add_permission(self, request):
        return permissions.may_create_jobs(request.user)

    def has_delete_permission(self, request, obj=None):
        # The next code sync would bring a deleted code-defined job back.
        return super().has_delete_permission(request, obj) and not (obj and obj.code_defined)

    def get_autocomplete_fields(self, request):
        # Searching users is for those who may give jobs to anyone (see formfield_for_foreignkey).
        return self.autocomplete_fields if permissions.may_own(request.user, None) else ()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # Giving a job to someone else needs change_job (services say so too); the others
        # see only themselves in the list.
        if db_field.name == "owner" and not permissions.may_own(request.user, None):
            kwargs["queryset"] = get_user_model().objects.filter(pk=request.user.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    # Columns ------------------------------------------------------------------------------

    @admin.display(description="Schedule")
    def schedule(self, job: Job) -> str:
        return job.schedule_description()

    @admin.display(description="State")
    def state_label(self, job: Job) -> str:
        state = job.current_state
        return f"{state.label}: {state.error}" if state.error else state.label

    @admin.display(description="Next run", ordering="next_run_at")
    def next_run(self, job: Job) -> str:
        # Only a run that will happen: a finished or paused job has none, whatever was planned.
        upcoming = job.current_state.upcoming
        if upcoming is None:
            return "-"
        try:
            return triggers.format_local(upcoming, job.zone)
        except (KeyError, ValueError):
            return triggers.format_utc(upcoming)

    @admin.display(description="Next run")
    def next_run_full(self, job: Job) -> str:
        upcoming = job.current_state.upcoming
        if upcoming is None:
            return "-"
        return f"{self.next_run(job)} = {triggers.format_utc(upcoming)}"

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
                    saved = pause(job=job, actor=request.user)
            else:
                # Triggers are replaced only when the inline changed: replacing re-anchors intervals.
                if trigger_formset is not None and (not change or trigger_formset.has_changed()):
                    definitions = trigger_formset.definitions()
                fields = {name: form.cleaned_data[name] for name in services.JOB_FIELDS if name in form.cleaned_data}
                if change:
                    saved = services.job_update(job=job, triggers=definitions, actor=request.user, **fields)
                else:
                    saved = services.job_create(triggers=definitions or [], actor=request.user, **fields)
        except (ValidationError, permissions.Forbidden) as exc:
            raise ServiceRefused(exc) from exc
        adopt(job, saved)
        if trigger_formset is not None:
            trigger_formset.record_saved(saved if definitions is not None else None)

    def delete_model(self, request, obj):
        services.job_delete(job=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        services.jobs_delete(jobs=queryset, actor=request.user)

    # Actions ----------------------------------------------------------------------------------

    @admin.action(description="Pause the selected jobs", permissions=["operate"])
    @refusal_shown
    def pause_jobs(self, request, queryset):
        changed = services.jobs_pause(jobs=queryset, actor=request.user)
        self.message_user(request, ngettext("Paused %d job.", "Paused %d jobs.", changed) % changed)

    @admin.action(description="Resume the selected jobs", permissions=["operate"])
    @refusal_shown
    def resume_jobs(self, request, queryset):
        changed = services.jobs_resume(jobs=queryset, actor=request.user)
        self.message_user(
            request,
            ngettext("Resumed %d job; ", "Resumed %d jobs; ", changed) % changed
            + "they plan from now (runs missed while paused are not caught up).",
        )

    @admin.action(description="Run the selected jobs now", permissions=["operate"])
    @refusal_shown
    def run_jobs_now(self, request, queryset):
        executions = services.jobs_run_now(jobs=queryset, actor=request.user)
        count = len(executions)
        self.message_user(
            request,
            ngettext(
                "Requested a run of %d job: the scheduler will start it within a few seconds (see Executions).",
                "Requested a run of %d jobs: the scheduler will start them within a few seconds (see Executions).",
                count,
            )
            % count,
        )

    @admin.action(description="Duplicate the selected jobs (copies start paused)", permissions=["add"])
    @refusal_shown
    @transaction.atomic
    def duplicate_jobs(self, request, queryset):
        copies = [
            services.job_duplicate(job=job, actor=request.user)
            for job in queryset.prefetch_related("triggers__calendar")
        ]
        names = ", ".join(copy.name for copy in copies)
        self.message_user(
            request,
            ngettext("Created %d paused copy: ", "Created %d paused copies: ", len(copies)) % len(copies) + names,
        )
