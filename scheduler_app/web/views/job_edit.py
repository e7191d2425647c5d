"""Creating and editing a job: the form, its triggers with the cron builder, the live preview.

Saving calls services.job_create / job_update; whatever they refuse comes back on the field
it names. The preview posts the whole form (debounced, app.js says which input changed) and
answers the preview panel plus, out of band, the trigger's expression (a picker changed) or
its pickers (the expression changed): the builder is server-rendered from triggers.py too.
"""

from __future__ import annotations

from zoneinfo import available_timezones

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from scheduler_app import permissions, services, triggers
from scheduler_app.api import throttling
from scheduler_app.models import Calendar, Job
from scheduler_app.services.errors import ErrorPlaces
from scheduler_app.web import base, cron_builder, preview
from scheduler_app.web.forms import JobForm, TriggerForm, TriggerFormSet

PREFIX = "triggers"
NEW_TRIGGER = {"kind": "cron", "cron_expression": "0 9 * * 1-5"}


def usable_calendars(request: HttpRequest):
    """Calendars a user may link: those they can see."""
    return Calendar.objects.visible_to(request.user)


def _forms(request: HttpRequest, job: Job | None, data=None):
    now = timezone.now()
    if data is not None:
        job_form = JobForm(data, user=request.user)
        zone = job_form.zone()
        formset = TriggerFormSet(data, prefix=PREFIX, calendars=usable_calendars(request), zone=zone, now=now)
        return job_form, formset
    if job is None:
        initial = {"task": request.GET.get("task", "")}
        job_form = JobForm(initial=initial, user=request.user)
        trigger_initial = [NEW_TRIGGER]
        zone = triggers.validate_timezone("UTC")
    else:
        job_form = JobForm(initial=JobForm.initial_for(job), user=request.user)
        zone = job.zone
        trigger_initial = [TriggerForm.initial_for(t, zone) for t in job.triggers.select_related("calendar")]
    formset = TriggerFormSet(
        initial=trigger_initial, prefix=PREFIX, calendars=usable_calendars(request), zone=zone, now=now
    )
    return job_form, formset


def _context(request: HttpRequest, job: Job | None, job_form: JobForm, formset, *, live_preview=None) -> dict:
    task = job_form["task"].value() or ""
    return {
        "task_info": base.task_view(task),
        "task_url": reverse("tempora:task-info"),
        "job": job,
        "form": job_form,
        "formset": formset,
        "zones": sorted(available_timezones()),
        "preview": live_preview,
        "now": timezone.now(),
        "viewer_zone": base.viewer_zone(request),
    }


def _preview_for(request: HttpRequest, job: Job | None, job_form: JobForm, formset) -> preview.Preview:
    live = formset.live_forms() if formset.is_bound else formset.forms
    if not formset.is_bound:
        for form in live:  # unbound forms: preview their initial values
            form.cleaned_data = {**{name: field.initial for name, field in form.fields.items()}, **form.initial}
            if form.cleaned_data.get("calendar") is not None and not hasattr(form.cleaned_data["calendar"], "pk"):
                form.cleaned_data["calendar"] = Calendar.objects.filter(pk=form.cleaned_data["calendar"]).first()
        job_form.cleaned_data = (
            {name: getattr(job, name, None) for name in ("start_at", "end_at", "max_runs")} if job else {}
        )
        job_form.data = {"timezone": job.timezone if job else "UTC"}
    return preview.build(
        job_form=job_form,
        trigger_forms=live,
        job_pk=job.pk if job else None,
        now=timezone.now(),
        viewer_zone=base.viewer_zone(request),
    )


def _with_extra_trigger(data):
    data = data.copy()
    key = f"{PREFIX}-TOTAL_FORMS"
    total = int(data.get(key, "0")) if str(data.get(key, "0")).isdigit() else 0
    data[key] = str(total + 1)
    data[f"{PREFIX}-{total}-kind"] = "cron"
    data[f"{PREFIX}-{total}-cron_expression"] = NEW_TRIGGER["cron_expression"]
    return data


def _save(request: HttpRequest, job: Job | None, job_form: JobForm, formset) -> Job:
    fields = job_form.job_fields()
    definitions = formset.definitions()
    if job is None:
        return services.job_create(triggers=definitions, actor=request.user, **fields)
    # The service keeps unchanged triggers as they are (their ids and interval anchors).
    return services.job_update(job=job, triggers=definitions, actor=request.user, **fields)


def _check_triggers(request: HttpRequest, job_form: JobForm, formset) -> None:
    """The job's own fields have errors, so nothing is saved: the service still checks the
    triggers, so that their errors show at the same time."""
    try:
        services.job_triggers_check(
            definitions=formset.definitions(),
            timezone=job_form.zone().key,
            start_at=job_form.cleaned_data.get("start_at"),
            actor=request.user,
        )
    except ValidationError as exc:
        _put_errors(job_form, formset, exc)


def _put_errors(job_form: JobForm, formset, error: ValidationError) -> None:
    places = ErrorPlaces.of(error)
    for message in formset.add_service_errors(places):
        job_form.add_error(None, message)
    for key, messages in places.own.items():
        for message in messages:
            job_form.add_error(key if key in job_form.fields else None, message)


def _hide_errors(job_form: JobForm, formset) -> None:
    job_form._errors = {}
    for form in formset.forms:
        form._errors = {}
    formset._errors = [{} for _form in formset.forms]
    formset._non_form_errors = formset.error_class()


def _as_typed(request: HttpRequest, job: Job | None, data, *, error: str = "", status: int = 200):
    """The form as typed, nothing saved, showing only `error` (if any) instead of field errors."""
    job_form, formset = _forms(request, job, data)
    job_form.is_valid(), formset.is_valid()
    context = _context(request, job, job_form, formset, live_preview=_preview_for(request, job, job_form, formset))
    _hide_errors(job_form, formset)
    if error:
        job_form.add_error(None, error)
    return base.render_page(
        request, "scheduler_app/jobs/form.html", context, fragments=["job-form-area"], status=status
    )


def _edit(request: HttpRequest, job: Job | None):
    if request.method == "POST" and not (job and job.code_defined):
        if "_add_trigger" in request.POST:
            # Another trigger form, nothing saved: the form comes back as typed, without errors yet.
            return _as_typed(request, job, _with_extra_trigger(request.POST))
        job_form, formset = _forms(request, job, request.POST)
        valid = job_form.is_valid()
        if formset.is_valid() and valid:
            try:
                saved = _save(request, job, job_form, formset)
            except ValidationError as exc:
                _put_errors(job_form, formset, exc)
            else:
                message = _("Created %(name)s.") if job is None else _("Saved %(name)s.")
                return base.done(
                    request,
                    message % {"name": saved.name},
                    next_url=reverse("tempora:job", args=[saved.pk]),
                    redirect=True,
                )
        else:
            _check_triggers(request, job_form, formset)
        context = _context(request, job, job_form, formset)
        context["preview"] = _preview_for(request, job, job_form, formset)
        response = base.render_page(request, "scheduler_app/jobs/form.html", context, fragments=["job-form-area"])
        if request.htmx:
            base.toast(response, _("Please correct the errors shown."), "error", changed=False)
        return response
    job_form, formset = _forms(request, job)
    context = _context(request, job, job_form, formset)
    context["preview"] = _preview_for(request, job, job_form, formset)
    return base.render_page(request, "scheduler_app/jobs/form.html", context, fragments=["job-form-area"])


@base.console_view
def job_create(request: HttpRequest):
    base.require(permissions.may_create_jobs(request.user), _("You may not create jobs."))
    if request.method == "POST" and "_add_trigger" not in request.POST:
        # A save counts against the user's write rate, as the API's POST /api/jobs/ does.
        wait = throttling.write_wait(request)
        if wait is not None:
            message = base.throttled_message(wait)
            response = _as_typed(request, None, request.POST, error=message, status=429)
            response["Retry-After"] = str(wait)
            return base.toast(response, message, "error", changed=False) if request.htmx else response
    return _edit(request, None)


@base.console_view
def job_edit(request: HttpRequest, pk: int):
    job = base.get_job(request, pk)
    base.require(permissions.may(request.user, permissions.JobAction.CHANGE, job), _("You may not change this job."))
    return _edit(request, job)


@base.console_view
def job_preview(request: HttpRequest):
    """The preview panel for the form as typed so far (and the builder's other half)."""
    job = base.get_job(request, int(request.POST["job_pk"])) if request.POST.get("job_pk", "").isdigit() else None
    data = request.POST.copy()
    synced, prefix = cron_builder.sync(data, data.get("_source", ""))
    job_form, formset = _forms(request, job, data)
    job_form.is_valid()
    formset.is_valid()
    context = _context(request, job, job_form, formset)
    context["preview"] = _preview_for(request, job, job_form, formset)
    context["synced"] = synced
    context["synced_form"] = next((form for form in formset.forms if form.prefix == prefix), None)
    return base.render_page(request, "scheduler_app/jobs/preview.html", context, fragments=["preview"])


@base.console_view
def task_info(request: HttpRequest):
    """The chosen task's description and parameters, beside the task field."""
    name = request.GET.get("task", "")
    info = base.task_view(name)
    return base.render_page(
        request, "scheduler_app/jobs/task_info.html", {"info": info, "name": name}, fragments=["task-info"]
    )
