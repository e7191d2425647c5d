"""/api/executions/ and /api/dead-letters/: runs, their retry and cancel verbs."""

from __future__ import annotations

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from scheduler_app import services
from scheduler_app.api.filters import HistorySearchFilter, OrderingFilter
from scheduler_app.api.pagination import HistoryPagination
from scheduler_app.api.schema import extend_schema
from scheduler_app.api.serializers.executions import ClearedSerializer, ExecutionDetailSerializer, ExecutionSerializer
from scheduler_app.api.views.base import GenericViewSet, ReadOnlyModelViewSet, mixins
from scheduler_app.filtersets import SEARCH_WINDOW, DeadLetterFilter, ExecutionFilter
from scheduler_app.models import Execution

# What a list leaves out (ExecutionSerializer does not show them): the bulky text and JSON, and
# the liveness columns only recovery reads.
LIST_DEFERRED = ("result", "output", "traceback", "process_group", "heartbeat_at")

PAGING = (
    "Paged by a cursor: follow `next` (older runs) and `previous` (newer ones); "
    "`page_size` 1-500, 50 by default. There is no total count."
)


class HistoryList:
    """A run history's list: paged by cursor (api/pagination.py) in an order an index serves,
    searched among the newest runs only (api/filters.py)."""

    pagination_class = HistoryPagination
    filter_backends = (DjangoFilterBackend, HistorySearchFilter, OrderingFilter)
    search_fields = ["error", "output"]
    # Orders an index serves without a sort, and a cursor can follow (no nulls).
    ordering_fields = ["scheduled_for", "id"]
    ordering = ["-scheduled_for", "-id"]


class _ExecutionsBase:
    search_fields = ["error", "output"]
    lookup_value_regex = r"[0-9]+"

    def visible(self):
        if self.action != "list":
            return Execution.objects.visible_to(self.request.user).select_related("requested_by")
        # The same runs, in the form that keeps a page on its index (querysets.py).
        return Execution.objects.listed_for(self.request.user).select_related("requested_by").defer(*LIST_DEFERRED)

    def get_serializer_class(self):
        return ExecutionDetailSerializer if self.action == "retrieve" else ExecutionSerializer

    def _retry(self, execution: Execution) -> Response:
        retry = services.execution_retry(execution=execution, actor=self.request.user)
        return Response(ExecutionDetailSerializer(retry).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["executions"])
@extend_schema_view(
    list=extend_schema(
        summary="List runs",
        description=(
            "Runs of your jobs (all runs with the view_job permission), newest first. "
            f"{PAGING} `search` looks in error and output among the newest {SEARCH_WINDOW:,} runs that match "
            "the other filters."
        ),
    ),
    retrieve=extend_schema(summary="One run with its result, output and traceback"),
)
class ExecutionViewSet(HistoryList, _ExecutionsBase, ReadOnlyModelViewSet):
    filterset_class = ExecutionFilter

    def get_queryset(self):
        return self.visible()

    @extend_schema(
        summary="Retry a run",
        description="Runs a failed, timed-out, lost, cancelled or missed run again as the next attempt (409 otherwise).",
        request=None,
        responses={201: ExecutionDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        return self._retry(self.get_object())

    @extend_schema(
        summary="Cancel a run",
        description=(
            "A run no process holds yet is cancelled at once (200, status `cancelled`). One a scheduler or worker "
            "holds is asked to stop (202, `cancel_pending` true): it becomes `cancelled` once its body has stopped, "
            "within seconds for Python code; a body blocked in a call stops when that call returns. 409 if it "
            "already finished, or if its scheduler is not running (nothing could stop it)."
        ),
        request=None,
        responses={200: ExecutionDetailSerializer, 202: ExecutionDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        execution = services.execution_cancel(execution=self.get_object(), actor=request.user)
        return Response(
            ExecutionDetailSerializer(execution).data,
            status=status.HTTP_202_ACCEPTED if execution.cancel_pending else status.HTTP_200_OK,
        )


@extend_schema(tags=["dead letters"])
@extend_schema_view(
    list=extend_schema(
        summary="List dead letters",
        description=(
            "Runs that failed with no retries left, newest failure first; new ones unless ?acknowledged=true. "
            "Paged by a cursor: follow `next` and `previous`; `page_size` 1-500, 50 by default."
        ),
    ),
    retrieve=extend_schema(summary="One dead letter with its error and traceback"),
    destroy=extend_schema(
        summary="Acknowledge one dead letter", description="It leaves the queue; the run stays in the history."
    ),
)
class DeadLetterViewSet(
    _ExecutionsBase, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, GenericViewSet
):
    filterset_class = DeadLetterFilter
    pagination_class = HistoryPagination
    # The index execution_dead_letters serves this order; a cursor follows finished_at, which a
    # dead letter always has.
    ordering_fields = ["finished_at", "id"]
    ordering = ["-finished_at", "-id"]

    def get_queryset(self):
        letters = self.visible().filter(dead_letter=True)
        if "acknowledged" not in self.request.query_params and self.action in ("list", "clear"):
            letters = letters.filter(acknowledged_at__isnull=True)
        return letters

    def perform_destroy(self, execution: Execution) -> None:
        services.dead_letter_acknowledge(executions=Execution.objects.filter(pk=execution.pk), actor=self.request.user)

    @extend_schema(summary="Acknowledge a dead letter", request=None, responses=ExecutionDetailSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        execution = self.get_object()
        services.dead_letter_acknowledge(executions=Execution.objects.filter(pk=execution.pk), actor=self.request.user)
        execution.refresh_from_db()
        return Response(ExecutionDetailSerializer(execution).data)

    @extend_schema(
        summary="Retry a dead letter",
        description="Runs it again as the next attempt; the dead letter counts as acknowledged.",
        request=None,
        responses={201: ExecutionDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        return self._retry(self.get_object())

    @extend_schema(
        summary="Clear the dead-letter queue",
        operation_id="api_dead_letters_clear",
        description="Acknowledges every dead letter you can see (optionally only one job's); the runs stay in the history.",
        parameters=[OpenApiParameter("job", OpenApiTypes.INT, description="Only this job's dead letters.")],
        request=None,
        responses=ClearedSerializer,
        filters=False,
    )
    def clear(self, request):
        letters = self.filter_queryset(self.get_queryset())
        cleared = services.dead_letter_acknowledge(
            executions=Execution.objects.filter(pk__in=letters.values("pk")), actor=request.user
        )
        return Response({"cleared": cleared})
