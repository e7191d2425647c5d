"""Per-user API tokens: stored hashed, shown once, Token or Bearer, revocable."""

from __future__ import annotations

import base64
import hashlib

import pytest
from rest_framework.test import APIClient

from scheduler_app import services
from scheduler_app.models import ApiToken

pytestmark = pytest.mark.django_db


def test_a_token_is_shown_once_and_stored_hashed(as_owner, owner):
    response = as_owner.post("/api/tokens/", {"name": "ci"}, format="json")
    assert response.status_code == 201
    key = response.json()["key"]
    token = ApiToken.objects.get()
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest() and key not in token.key_hash
    assert key.startswith(token.prefix) and len(token.prefix) < len(key) // 3
    listed = as_owner.get("/api/tokens/").json()["results"]
    assert listed[0]["prefix"] == token.prefix and "key" not in listed[0]
    assert "key" not in as_owner.get(f"/api/tokens/{token.pk}/").json()


@pytest.mark.parametrize("scheme", ["Token", "Bearer", "token", "bearer"])
def test_a_token_authenticates(token_client, owner, make_job, scheme):
    make_job(owner=owner)
    client = token_client(owner, scheme)
    response = client.get("/api/jobs/")
    assert response.status_code == 200 and response.json()["count"] == 1
    assert ApiToken.objects.get().last_used_at is not None


@pytest.mark.parametrize(
    "header", ["Token wrong", "Bearer tmp_notakey", "Token", "Token a b", "Token " + "x" * 500, "Basic Zm9vOmJhcg=="]
)
def test_a_bad_key_is_a_401(anonymous, header):
    anonymous.credentials(HTTP_AUTHORIZATION=header)
    response = anonymous.get("/api/jobs/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_a_revoked_token_stops_working_at_once(owner, as_owner):
    token, key = services.token_create(user=owner, name="short-lived")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/jobs/").status_code == 200
    assert as_owner.post(f"/api/tokens/{token.pk}/revoke/").json()["active"] is False
    assert client.get("/api/jobs/").status_code == 401


def test_delete_revokes_but_keeps_the_record(owner, as_owner):
    token, _key = services.token_create(user=owner, name="x")
    assert as_owner.delete(f"/api/tokens/{token.pk}/").status_code == 204
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_an_inactive_users_token_is_refused(owner):
    _token, key = services.token_create(user=owner, name="x")
    owner.is_active = False
    owner.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/jobs/").status_code == 401


def test_the_first_token_can_be_made_with_a_password(owner):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"owner:owner-pass-123").decode())
    response = client.post("/api/tokens/", {"name": "cli"}, format="json")
    assert response.status_code == 201 and response.json()["user"] == "owner"
    # ... and nowhere else: programs use the token.
    assert client.get("/api/jobs/").status_code == 401


def test_last_used_is_written_at_most_once_a_minute(owner):
    from datetime import timedelta

    from django.utils import timezone

    _token, key = services.token_create(user=owner, name="x")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    client.get("/api/jobs/")
    first = ApiToken.objects.get().last_used_at
    client.get("/api/jobs/")
    assert ApiToken.objects.get().last_used_at == first
    ApiToken.objects.update(last_used_at=timezone.now() - timedelta(minutes=2))
    client.get("/api/jobs/")
    assert ApiToken.objects.get().last_used_at > first


def test_a_token_name_is_required(as_owner):
    response = as_owner.post("/api/tokens/", {}, format="json")
    assert response.status_code == 400 and "name" in response.json()


def test_team_admins_see_every_users_tokens(owner, outsider, as_team_admin):
    services.token_create(user=owner, name="a")
    services.token_create(user=outsider, name="b")
    assert {t["user"] for t in as_team_admin.get("/api/tokens/").json()["results"]} == {"owner", "outsider"}
