"""The console's job form and trigger forms.

They read what a user typed (JSON, numbers within the model's bounds, dates in the job's
zone); the services check the job and its triggers, and their errors are put back on the
fields they name (`triggers.1.cron_expression` → the second trigger's expression).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.forms import formset_factory
from django.utils.functional import lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from scheduler_app import permissions, triggers, validators
from scheduler_app.conf import tempora_settings
from scheduler_app.models import MAX_TRIGGERS, Calendar, Job, Trigger
from scheduler_app.registry import registry
from scheduler_app.services.errors import ErrorPlaces
from scheduler_app.web import cron_builder

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"


class JsonTextField(forms.CharField):
    """JSON typed in a textarea; `empty` is the value of an empty box."""

    widget = forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "mono"})

    def __init__(self, *, empty, **kwargs):
        self.empty = empty
        kwargs.setdefault("required", False)
        super().__init__(strip=True, **kwargs)

    def prepare_value(self, value):
        if isinstance(value, (list, dict)):
            return json.dumps(value, ensure_ascii=False)
        return value

    def to_python(self, value):
        text = super().to_python(value)
        if not text:
            return type(self.empty)()
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                _("This is not valid JSON: %(error)s (line %(line)s, column %(column)s)."),
                params={"error": exc.msg, "line": exc.lineno, "column": exc.colno},
                code="invalid_json",
            ) from None


class LocalDateTimeField(forms.CharField):
    """A `datetime-local` input: a wall time, read in the job's zone by the form's clean()."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local", "step": "60"}, format=DATETIME_LOCAL)

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_python(self, value):
        text = super().to_python(value)
        if not text:
            return None
        if isinstance(text, datetime):
            return text
        try:
            return datetime.fromisoformat(text.strip().replace(" ", "T"))
        except ValueError:
            raise ValidationError(_("Enter a date and time like 2026-12-25 09:00."), code="invalid") from None

    def prepare_value(self, value):
        if isinstance(value, datetime):
            return value.strftime(DATETIME_LOCAL)
        return value


def local_input(instant: datetime | None, zone: ZoneInfo) -> str:
    """An aware instant as the wall time a datetime-local input shows in `zone`."""
    return instant.astimezone(zone).strftime(DATETIME_LOCAL) if instant else ""


def task_choices(current: str = "", user=None) -> list[tuple[str, str]]:
    """The tasks `user` may schedule, plus the current one (saving it is refused with a reason
    if it is unregistered or needs a permission the user lacks)."""
    allowed = permissions.tasks_for(user)
    choices = [("", "—")] + [(info.name, info.name) for info in allowed]
    if current and current not in registry:
        choices.append((current, _("%(task)s (not registered)") % {"task": current}))
    elif current and current not in {info.name for info in allowed}:
        choices.append((current, _("%(task)s (needs a permission you lack)") % {"task": current}))
    return choices


def _timeout_help() -> str:
    return gettext("Empty: the default limit, %(default)d s. At most %(max)d s.") % {
        "default": tempora_settings.DEFAULT_TIMEOUT,
        "max": tempora_settings.MAX_TIMEOUT,
    }


class JobForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200, help_text=_("Unique, e.g. nightly-backup"))
    description = forms.CharField(
        label=_("Description"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=Job._meta.get_field("description").max_length,
    )
    task = forms.ChoiceField(label=_("Task"), validators=[validators.validate_task_name])
    args = JsonTextField(
        label=_("Arguments (JSON list)"),
        empty=[],
        validators=[validators.validate_args],
        help_text=_('e.g. ["hello", 3]'),
    )
    kwargs = JsonTextField(
        label=_("Keyword arguments (JSON object)"),
        empty={},
        validators=[validators.validate_kwargs],
        help_text=_('e.g. {"message": "hello"}'),
    )
    group = forms.CharField(label=_("Group"), max_length=100, initial="default", validators=[validators.validate_group])
    tags = forms.CharField(label=_("Tags"), required=False, help_text=_("Comma-separated, e.g. etl, nightly"))
    priority = forms.IntegerField(
        label=_("Priority"),
        **validators.field_bounds(Job, "priority"),
        initial=5,
        help_text=_("1 (lowest) to 10 (highest)"),
    )
    timezone = forms.CharField(
        label=_("Time zone"),
        max_length=64,
        initial="UTC",
        validators=[validators.validate_timezone_name],
        widget=forms.TextInput(attrs={"list": "zone-names", "autocomplete": "off"}),
        help_text=_("An IANA name, e.g. Europe/Berlin"),
    )
    timeout = forms.IntegerField(
        label=_("Timeout (seconds)"),
        required=False,
        validators=[validators.validate_timeout],
        help_text=lazy(_timeout_help, str)(),
    )
    max_retries = forms.IntegerField(label=_("Retries"), **validators.field_bounds(Job, "max_retries"), initial=0)
    retry_backoff = forms.IntegerField(
        label=_("First retry after (seconds)"),
        initial=30,
        **validators.field_bounds(Job, "retry_backoff"),
        help_text=_("Doubles each attempt"),
    )
    retry_backoff_max = forms.IntegerField(
        label=_("Longest wait between retries (seconds)"),
        initial=3600,
        **validators.field_bounds(Job, "retry_backoff_max"),
    )
    # Not required: a form posted without it (older pages, scripts) keeps the default.
    lost_policy = forms.ChoiceField(
        label=_("When its scheduler dies mid-run"),
        choices=Job.LostPolicy.choices,
        initial=Job.LostPolicy.AUTO,
        required=False,
        help_text=_("Run it again (at least once), or only record it lost (at most once)"),
    )
    overlap_policy = forms.ChoiceField(
        label=_("When a run is still going"), choices=Job.Overlap.choices, initial=Job.Overlap.SKIP
    )
    max_instances = forms.IntegerField(
        label=_("Max instances"),
        **validators.field_bounds(Job, "max_instances"),
        initial=1,
        help_text=_("Concurrent runs under 'allow'"),
    )
    misfire_grace_time = forms.IntegerField(
        label=_("Misfire grace (seconds)"),
        **validators.field_bounds(Job, "misfire_grace_time"),
        help_text=_("Later than this, a run is recorded as missed"),
    )
    catch_up = forms.ChoiceField(label=_("Missed runs"), choices=Job.CatchUp.choices, initial=Job.CatchUp.ONCE)
    executor = forms.ChoiceField(label=_("Executor"), choices=Job.Executor.choices, initial=Job.Executor.THREAD)
    start_at = LocalDateTimeField(label=_("Not before"), help_text=_("In the job's zone"))
    end_at = LocalDateTimeField(label=_("Not after"), help_text=_("In the job's zone"))
    max_runs = forms.IntegerField(label=_("Max runs"), required=False, **validators.field_bounds(Job, "max_runs"))
    paused = forms.BooleanField(label=_("Paused"), required=False)

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["misfire_grace_time"].initial = tempora_settings.MISFIRE_GRACE_TIME
        current = self.data.get(self.add_prefix("task"), "") if self.is_bound else self.initial.get("task", "")
        self.fields["task"].choices = task_choices(current, user)
        for name, field in self.fields.items():
            if field.help_text:
                field.widget.attrs.setdefault("aria-describedby", f"id_{name}_help")

    @classmethod
    def initial_for(cls, job: Job) -> dict:
        zone = job.zone
        data = {name: getattr(job, name) for name in cls.base_fields if hasattr(job, name)}
        data["tags"] = ", ".join(job.tags)
        data["start_at"] = local_input(job.start_at, zone)
        data["end_at"] = local_input(job.end_at, zone)
        return data

    def clean_lost_policy(self) -> str:
        return self.cleaned_data.get("lost_policy") or Job.LostPolicy.AUTO

    def clean_tags(self) -> list[str]:
        raw = self.cleaned_data.get("tags", "")
        tags = validators.normalise_tags(raw.split(","))
        validators.validate_tags(tags)
        return tags

    def zone(self) -> ZoneInfo:
        try:
            return triggers.validate_timezone((self.data.get(self.add_prefix("timezone")) or "").strip())
        except triggers.ScheduleError:
            return ZoneInfo("UTC")

    def clean(self):
        data = super().clean()
        zone = self.zone()
        for name in ("start_at", "end_at"):
            if data.get(name) is not None:
                data[name] = triggers.local_to_utc(data[name].replace(tzinfo=None), zone)
        if data.get("start_at") and data.get("end_at") and data["end_at"] <= data["start_at"]:
            self.add_error("end_at", _("The window must end after it starts."))
        return data

    def job_fields(self) -> dict[str, Any]:
        """The cleaned values as services.job_create/job_update take them."""
        return {name: self.cleaned_data[name] for name in self.fields}


class RunNowForm(forms.Form):
    """Run now with other arguments than the job's: a box left empty keeps the job's own.
    The service checks them against the task's signature, as it checks a job's."""

    args = JsonTextField(
        label=_("Arguments (JSON list)"), empty=None, help_text=_('Empty: the job\'s own. e.g. ["hello", 3]')
    )
    kwargs = JsonTextField(
        label=_("Keyword arguments (JSON object)"),
        empty=None,
        help_text=_('Empty: the job\'s own. e.g. {"message": "hello"}'),
    )

    def errors_text(self) -> str:
        return " ".join(
            f"{self.fields[name].label}: {message}" for name, messages in self.errors.items() for message in messages
        )


TRIGGER_KINDS = [
    ("cron", _("Cron expression")),
    ("daily", _("Daily at")),
    ("weekly", _("Weekly on days at")),
    ("hourly", _("Hourly at minute")),
    ("interval", _("Every N (interval)")),
    ("once", _("Once, at a moment")),
]
INTERVAL_UNITS = [("1", _("seconds")), ("60", _("minutes")), ("3600", _("hours")), ("86400", _("days"))]
WEEKDAYS = [
    ("0", _("Mon")),
    ("1", _("Tue")),
    ("2", _("Wed")),
    ("3", _("Thu")),
    ("4", _("Fri")),
    ("5", _("Sat")),
    ("6", _("Sun")),
]
# Where a triggers.py error about a definition key shows on this form.
ERROR_FIELDS = {
    "cron_expression": "cron_expression",
    "interval_seconds": "interval_value",
    "run_at": "run_at",
    "delay_seconds": "run_at",
    "at": "at",
    "days": "days",
    "minute": "minute",
    "jitter_seconds": "jitter_seconds",
    "kind": "kind",
    "calendar": "calendar",
}


class TriggerForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=TRIGGER_KINDS, initial="cron")
    cron_expression = forms.CharField(
        label=_("Cron expression"),
        required=False,
        max_length=200,
        widget=forms.TextInput(
            attrs={"class": "mono", "spellcheck": "false", "autocomplete": "off", "placeholder": "0 9 * * MON-FRI"}
        ),
        help_text=_("minute hour day month weekday; 0 and 7 are Sunday"),
    )
    interval_value = forms.IntegerField(label=_("Every"), required=False, min_value=1)
    interval_unit = forms.ChoiceField(label=_("Unit"), choices=INTERVAL_UNITS, initial="60", required=False)
    run_at = LocalDateTimeField(label=_("At (in the job's zone)"))
    at = forms.CharField(
        label=_("At (HH:MM)"), required=False, initial="09:00", widget=forms.TimeInput(attrs={"type": "time"})
    )
    days = forms.MultipleChoiceField(
        label=_("Days"), choices=WEEKDAYS, required=False, widget=forms.CheckboxSelectMultiple
    )
    minute = forms.IntegerField(label=_("Minute past the hour"), required=False, min_value=0, max_value=59, initial=0)
    jitter_seconds = forms.IntegerField(
        label=_("Jitter (seconds)"), required=False, initial=0, **validators.field_bounds(Trigger, "jitter_seconds")
    )
    calendar = forms.ModelChoiceField(
        label=_("Skip the dates of"), queryset=Calendar.objects.none(), required=False, empty_label=_("no calendar")
    )

    def __init__(self, *args, calendars=None, zone: ZoneInfo | None = None, now: datetime | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if calendars is not None:
            self.fields["calendar"].queryset = calendars
        self.zone = zone or ZoneInfo("UTC")
        self.now = now

    @staticmethod
    def initial_for(trigger: Trigger, zone: ZoneInfo) -> dict:
        data: dict[str, Any] = {
            "kind": trigger.kind,
            "jitter_seconds": trigger.jitter_seconds,
            "calendar": trigger.calendar_id,
            "cron_expression": trigger.cron_expression,
        }
        fields = trigger.cron_expression.split()
        if trigger.kind == "cron" and trigger.preset and len(fields) == 5:
            minute, hour, _dom, _month, dow = fields
            data["kind"] = trigger.preset
            data["minute"] = int(minute)
            if trigger.preset in ("daily", "weekly"):
                data["at"] = f"{int(hour):02d}:{int(minute):02d}"
            if trigger.preset == "weekly":
                data["days"] = [str((int(d) - 1) % 7) for d in dow.split(",")]
        elif trigger.kind == "interval" and trigger.interval_seconds:
            for size, _label in reversed(INTERVAL_UNITS):
                if trigger.interval_seconds % int(size) == 0:
                    data["interval_value"], data["interval_unit"] = trigger.interval_seconds // int(size), size
                    break
        elif trigger.kind == "once" and trigger.run_at:
            data["run_at"] = local_input(trigger.run_at, zone)
        return data

    def definition(self) -> dict:
        """This form as a trigger definition (see triggers.compile_trigger)."""
        data = self.cleaned_data
        kind = data.get("kind") or "cron"
        out: dict[str, Any] = {
            "kind": kind,
            "jitter_seconds": data.get("jitter_seconds") or 0,
            "calendar": data.get("calendar"),
        }
        if kind == "cron":
            out["cron_expression"] = data.get("cron_expression") or ""
        elif kind == "interval":
            value = data.get("interval_value")
            out["interval_seconds"] = value * int(data.get("interval_unit") or 1) if value else None
        elif kind == "once":
            run_at = data.get("run_at")
            out["run_at"] = run_at.replace(tzinfo=None).isoformat() if run_at else None
        elif kind in ("daily", "weekly"):
            out["at"] = data.get("at") or ""
            if kind == "weekly":
                out["days"] = [int(d) for d in data.get("days") or []]
        elif kind == "hourly":
            out["minute"] = data.get("minute") if data.get("minute") is not None else ""
        return out

    def compiled(self) -> dict:
        """The Trigger row's fields for this form, for the preview (raises triggers.ScheduleError)."""
        definition = self.definition()
        fields = triggers.compile_trigger(definition, self.zone, self.now)
        fields["calendar"] = definition["calendar"]
        return fields

    def add_schedule_error(self, key: str, message: str) -> None:
        field = ERROR_FIELDS.get(key)
        if field is None or field not in self.fields:
            field = None
        # add_error drops the field from cleaned_data; keep the form's values for the preview.
        self._errors.setdefault(
            field or NON_FIELD_ERRORS,
            self.error_class(error_class="nonfield" if field is None else None, renderer=self.renderer),
        )
        self._errors[field or NON_FIELD_ERRORS].append(message)

    def cron_picks(self) -> tuple[dict[str, cron_builder.Pick], str]:
        """The builder's pickers for this form's expression."""
        expression = (
            self.data.get(self.add_prefix("cron_expression"))
            if self.is_bound
            else self.initial.get("cron_expression", "")
        )
        return cron_builder.decompose(expression or "* * * * *")


class BaseTriggerFormSet(forms.BaseFormSet):
    def __init__(self, *args, calendars=None, zone=None, now=None, **kwargs):
        self.calendars, self.zone, self.now = calendars, zone, now
        super().__init__(*args, **kwargs)

    def get_form_kwargs(self, index):
        return {"calendars": self.calendars, "zone": self.zone, "now": self.now}

    @property
    def empty_form(self):
        form = self.form(
            auto_id=self.auto_id,
            prefix=self.add_prefix("__prefix__"),
            empty_permitted=True,
            use_required_attribute=False,
            renderer=self.renderer,
            **self.get_form_kwargs(None),
        )
        self.add_fields(form, None)
        return form

    def live_forms(self) -> list[TriggerForm]:
        """The triggers the job will have, in order: `triggers.<i>` in service errors counts these."""
        if self.is_bound:
            self.errors  # noqa: B018  (validates once, so every form has cleaned_data)
        initial = self.initial_form_count()
        return [
            form
            for index, form in enumerate(self.forms)
            if not self._should_delete_form(form) and (index < initial or form.has_changed())
        ]

    def definitions(self) -> list[dict]:
        return [form.definition() for form in self.live_forms()]

    def add_service_errors(self, places: ErrorPlaces) -> list[str]:
        """Put the service's `triggers.<i>.<field>` errors on their forms; answer the ones that fit nowhere."""
        rows = self.live_forms()
        fitting, left = places.row_errors("triggers", len(rows))
        for index, fields in fitting.items():
            for field, messages in fields.items():
                for message in messages:
                    rows[index].add_schedule_error(field, message)
        return left


TriggerFormSet = formset_factory(
    TriggerForm, formset=BaseTriggerFormSet, extra=0, can_delete=True, max_num=MAX_TRIGGERS, validate_max=True
)


class CalendarForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100, help_text=_("e.g. UK bank holidays"))
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    excluded_dates = forms.CharField(
        label=_("Dates to skip"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "class": "mono"}),
        help_text=_("One date per line (or comma-separated) as YYYY-MM-DD, e.g. 2026-12-25"),
    )
    business_days_only = forms.BooleanField(label=_("Also skip Saturdays and Sundays"), required=False)

    def clean_excluded_dates(self) -> list[str]:
        raw = self.cleaned_data.get("excluded_dates", "")
        dates = [part.strip() for part in raw.replace(",", "\n").splitlines() if part.strip()]
        validators.validate_date_list(dates)
        return dates


class RuntimeSettingsForm(forms.Form):
    """services.RUNTIME_SETTINGS as number inputs with their bounds."""

    LABELS = {
        "max_workers": _("Worker threads"),
        "misfire_grace_time": _("Default misfire grace (seconds)"),
        "history_per_job": _("Runs kept per job"),
        "history_days": _("Days of history kept"),
    }

    def __init__(self, *args, settings_spec: dict, **kwargs):
        super().__init__(*args, **kwargs)
        for key, (setting_name, low, high) in settings_spec.items():
            self.fields[key] = forms.IntegerField(
                label=self.LABELS.get(key, key),
                min_value=low,
                max_value=high,
                help_text=f"{setting_name}, {low}–{high}",
            )
