"""/api/tokens/: your API tokens. Create (the key is shown once), list, revoke.

These endpoints also accept HTTP Basic authentication (`curl -u user:password`), so a
program's first token needs no browser; every other endpoint takes the token.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_view
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from scheduler_app import permissions, services
from scheduler_app.api.authentication import PasswordAuthentication
from scheduler_app.api.schema import extend_schema
from scheduler_app.api.serializers.tokens import TokenCreatedSerializer, TokenSerializer
from scheduler_app.api.strict import StrictSerializer
from scheduler_app.api.views.base import AUTHENTICATION, GenericViewSet, mixins
from scheduler_app.models import ApiToken


class TokenCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100, help_text="What the token is for, e.g. 'ci-deploy'.")


@extend_schema(tags=["tokens"])
@extend_schema_view(
    list=extend_schema(
        summary="List your API tokens",
        description="Every user's with the view_apitoken permission. Keys are never shown again.",
    ),
    retrieve=extend_schema(summary="One API token"),
    destroy=extend_schema(
        summary="Revoke an API token", description="It stops working at once; the row stays for the record."
    ),
)
class TokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, GenericViewSet):
    serializer_class = TokenSerializer
    authentication_classes = [*AUTHENTICATION, PasswordAuthentication]
    ordering_fields = ["created_at", "last_used_at", "name"]
    ordering = ["-created_at", "-id"]
    search_fields = ["name", "prefix"]
    filterset_fields = []
    lookup_value_regex = r"[0-9]+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        tokens = ApiToken.objects.select_related("user")
        return permissions.tokens_for(self.request.user, tokens)

    @extend_schema(
        summary="Create an API token",
        description="Answers the key once: send it as `Authorization: Token <key>` (or `Bearer <key>`).",
        request=TokenCreateSerializer,
        responses={201: TokenCreatedSerializer},
    )
    def create(self, request):
        form = TokenCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        token, key = services.token_create(user=request.user, name=form.validated_data["name"])
        token.key = key
        return Response(TokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, token: ApiToken) -> None:
        services.token_revoke(token=token, actor=self.request.user)

    @extend_schema(summary="Revoke an API token", request=None, responses=TokenSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        token = services.token_revoke(token=self.get_object(), actor=request.user)
        return Response(TokenSerializer(token).data)
