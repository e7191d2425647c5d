"""The API tokens page: a key is shown once, tokens are personal, revoking stops them."""

from __future__ import annotations

import pytest

from scheduler_app import services
from scheduler_app.models import ApiToken
from tests.web.conftest import XSS, client_for, htmx


@pytest.mark.django_db
def test_it_shows_a_new_key_once(owner_client, owner):
    response = owner_client.post("/tokens/", {"name": "ci-deploy"}, **htmx("tokens-area"))
    body = response.content.decode()
    token = ApiToken.objects.get(user=owner)
    assert "<html" not in body and token.prefix in body
    key = body.split('id="new-key" class="mono" value="')[1].split('"')[0]
    assert key.startswith(token.prefix) and ApiToken.hash_key(key) == token.key_hash
    assert key not in owner_client.get("/tokens/").content.decode()


@pytest.mark.django_db
def test_it_lists_only_the_users_own_tokens(owner_client, outsider, team_admin):
    services.token_create(user=outsider, name="theirs")
    services.token_create(user=team_admin, name="staffs")
    body = owner_client.get("/tokens/").content.decode()
    assert "theirs" not in body and "staffs" not in body


@pytest.mark.django_db
def test_revoking_a_token(owner_client, owner):
    token, _key = services.token_create(user=owner, name="old")
    response = owner_client.post(f"/tokens/{token.pk}/revoke/", **htmx())
    assert response.status_code == 204
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert "Revoked" in owner_client.get("/tokens/").content.decode()


@pytest.mark.django_db
def test_a_token_needs_a_name(owner_client):
    body = owner_client.post("/tokens/", {"name": ""}, **htmx("tokens-area")).content.decode()
    assert 'id="id_name_error"' in body and not ApiToken.objects.exists()


@pytest.mark.django_db
def test_a_hostile_token_name_is_text(owner, outsider):
    services.token_create(user=owner, name=XSS)
    body = client_for(owner).get("/tokens/").content.decode()
    assert "<img src=x" not in body and "&lt;img src=x onerror=alert(1)&gt;" in body
