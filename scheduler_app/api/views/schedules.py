"""/api/cron/validate, /api/cron/presets and /api/schedules/preview: check a schedule before saving it.

Every answer comes from triggers.py, the code the scheduler fires by, so a preview shows
the times the job will really run.
"""

from __future__ import annotations

from django.utils import timezone
from rest_framework.response import Response

from scheduler_app import triggers
from scheduler_app.api.schema import extend_schema
from scheduler_app.api.serializers.schedules import (
    CronPresetSerializer,
    CronValidateRequestSerializer,
    CronValidateResponseSerializer,
    PreviewRequestSerializer,
    PreviewResponseSerializer,
)
from scheduler_app.api.serializers.triggers import compile_definitions, specs_for_preview
from scheduler_app.api.views.base import ApiView

PRESETS = [
    ("every minute", "* * * * *"),
    ("every 5 minutes", "*/5 * * * *"),
    ("every 15 minutes", "*/15 * * * *"),
    ("every hour", "0 * * * *"),
    ("every day at midnight", "0 0 * * *"),
    ("every day at 09:00", "0 9 * * *"),
    ("weekdays at 09:00", "0 9 * * MON-FRI"),
    ("every Monday at 10:00", "0 10 * * MON"),
    ("first day of the month", "0 0 1 * *"),
    ("last day of the month", "0 0 L * *"),
    ("first Monday of the month at 09:00", "0 9 * * 1#1"),
    ("every year on 1 January", "@yearly"),
]


def _next_runs(runs, zone) -> list[dict]:
    return [{"at": at, "local": triggers.format_local(at, zone)} for at in runs]


@extend_schema(tags=["schedules"])
class CronValidateView(ApiView):
    query_serializer_class = CronValidateRequestSerializer

    def _answer(self, data) -> Response:
        form = CronValidateRequestSerializer(data=data)
        form.is_valid(raise_exception=True)
        expression, zone_name, count = (form.validated_data[k] for k in ("expression", "timezone", "count"))
        answer = {
            "valid": False,
            "expression": expression,
            "timezone": zone_name,
            "field": None,
            "error": None,
            "description": None,
            "fixed_time": None,
            "next_runs": [],
        }
        try:
            zone = triggers.validate_timezone(zone_name)
            cron = triggers.parse_cron(expression)
        except triggers.ScheduleError as exc:
            answer.update(field=exc.field, error=exc.message)
            return Response(answer)
        runs = triggers.next_runs(
            [triggers.TriggerSpec(kind="cron", cron_expression=cron.expression)], zone, timezone.now(), count
        )
        answer.update(
            valid=True,
            expression=cron.expression,
            description=triggers.describe_cron(cron.expression),
            fixed_time=cron.fixed_time,
            next_runs=_next_runs(runs, zone),
        )
        return Response(answer)

    @extend_schema(
        summary="Check a cron expression (query string)",
        description="Valid or the reason (naming the input), the expression in words, and its next runs in the zone.",
        parameters=[CronValidateRequestSerializer],
        responses=CronValidateResponseSerializer,
    )
    def get(self, request):
        return self._answer(request.query_params)

    @extend_schema(
        summary="Check a cron expression",
        description="Valid or the reason (naming the input), the expression in words, and its next runs in the zone.",
        request=CronValidateRequestSerializer,
        responses=CronValidateResponseSerializer,
    )
    def post(self, request):
        return self._answer(request.data)


@extend_schema(tags=["schedules"])
class CronPresetsView(ApiView):
    @extend_schema(summary="Common cron expressions with their descriptions", responses=CronPresetSerializer(many=True))
    def get(self, request):
        return Response(
            [
                {"name": name, "expression": expression, "description": triggers.describe_cron(expression)}
                for name, expression in PRESETS
            ]
        )


@extend_schema(tags=["schedules"])
class SchedulePreviewView(ApiView):
    @extend_schema(
        summary="Preview any schedule",
        description=(
            "Trigger specs in the shapes a job's `triggers` take (cron, interval, once, daily, weekly, hourly; "
            "with calendar and jitter) → their description and next runs. Jitter here uses a preview seed: "
            "a saved job's offsets differ."
        ),
        request=PreviewRequestSerializer,
        responses=PreviewResponseSerializer,
    )
    def post(self, request):
        form = PreviewRequestSerializer(data=request.data, context={"request": request})
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            zone = triggers.validate_timezone(data["timezone"])
        except triggers.ScheduleError as exc:
            return Response({"timezone": [exc.message]}, status=400)
        now = timezone.now()
        definitions = [dict(item) for item in data["triggers"]]
        compiled = compile_definitions(definitions, zone, now)
        start_at, end_at = data.get("start_at"), data.get("end_at")
        if start_at and end_at and end_at <= start_at:
            return Response({"end_at": ["The window must end after it starts."]}, status=400)
        specs = specs_for_preview(definitions, compiled, now=now, start_at=start_at)
        window = triggers.Window(start_at=start_at, end_at=end_at)
        runs = triggers.next_runs(specs, zone, data.get("after") or now, data["count"], window)
        described = [triggers.describe(spec, zone) for spec in specs]
        return Response(
            {
                "timezone": zone.key,
                "description": "; ".join(described),
                "triggers": [
                    {
                        "kind": spec.kind,
                        "cron_expression": spec.cron_expression,
                        "preset": spec.preset,
                        "description": text,
                    }
                    for spec, text in zip(specs, described, strict=True)
                ],
                "next_runs": _next_runs(runs, zone),
            }
        )
