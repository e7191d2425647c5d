"""API tokens: the key is shown once, in the answer to the create request."""

from __future__ import annotations

from rest_framework import serializers

from scheduler_app.models import ApiToken


class TokenSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="username", read_only=True)
    active = serializers.BooleanField(source="is_active", read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "user", "active", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]


class TokenCreatedSerializer(TokenSerializer):
    key = serializers.CharField(
        read_only=True,
        help_text="The secret: send it as 'Authorization: Token <key>' (or Bearer). It is shown only now.",
    )

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "key"]
