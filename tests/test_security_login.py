"""Login throttling (django-axes): the console login, the admin login and HTTP Basic on
/api/tokens/ share one count per (username, client address). The limit locks the account from
that address; the right password is refused while locked; the lock ends after the cool-off;
other users and API tokens are not affected.

Every test uses the limit and cool-off the settings read from the environment
(LOGIN_FAILURE_LIMIT, LOGIN_COOLOFF_MINUTES), under a frozen clock.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from axes.models import AccessAttempt
from django.test import Client
from rest_framework.test import APIClient

from scheduler_app import services

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
OWNER_PASSWORD = "owner-pass-123"  # tests/conftest.py
STAFF_PASSWORD = "bare-staff-pass-123"


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def limit(settings) -> int:
    return settings.AXES_FAILURE_LIMIT


@pytest.fixture
def cool_off(settings) -> timedelta:
    return settings.AXES_COOLOFF_TIME


def console_login(client: Client, username: str, password: str):
    return client.post("/login/", {"username": username, "password": password})


def admin_login(client: Client, username: str, password: str):
    return client.post("/admin/login/", {"username": username, "password": password, "next": "/admin/"})


def basic(username: str, password: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"{username}:{password}".encode()).decode())
    return client


def create_token(username: str, password: str):
    return basic(username, password).post("/api/tokens/", {"name": "laptop"}, format="json")


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


# The console ------------------------------------------------------------------------------


def test_it_locks_the_console_login_after_the_failure_limit(client, owner, limit, cool_off, clock):
    for _ in range(limit - 1):
        response = console_login(client, "owner", "wrong")
        assert response.status_code == 200  # the form again, with its error
        assert "Please enter a correct username and password" in response.content.decode()
    locked = console_login(client, "owner", "wrong")
    assert locked.status_code == 429
    body = locked.content.decode()
    minutes = int(cool_off.total_seconds() // 60)
    assert "Too many failed sign-ins" in body and f"{minutes}\xa0minutes" in body
    assert locked["Retry-After"] == str(int(cool_off.total_seconds()))


def test_the_right_password_is_refused_while_locked(client, owner, limit, clock):
    for _ in range(limit):
        console_login(client, "owner", "wrong")
    response = console_login(client, "owner", OWNER_PASSWORD)
    assert response.status_code == 429 and "Too many failed sign-ins" in response.content.decode()
    assert not signed_in(client)


def test_the_lock_ends_after_the_cool_off(client, owner, limit, cool_off, clock):
    for _ in range(limit):
        console_login(client, "owner", "wrong")
    clock.shift(cool_off - timedelta(seconds=1))
    assert console_login(client, "owner", OWNER_PASSWORD).status_code == 429
    # Each refused attempt starts the cool-off again: a guesser who keeps trying stays locked.
    clock.shift(cool_off + timedelta(seconds=1))
    response = console_login(client, "owner", OWNER_PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/"
    assert signed_in(client)


def test_another_user_from_the_same_address_is_not_locked(client, owner, outsider, limit, clock):
    for _ in range(limit):
        console_login(client, "owner", "wrong")
    other = Client()
    response = console_login(other, "outsider", "outsider-pass-123")
    assert response.status_code == 302 and signed_in(other)


def test_a_success_before_the_limit_forgets_the_failures(client, owner, limit, clock):
    for _ in range(limit - 1):
        console_login(client, "owner", "wrong")
    assert console_login(client, "owner", OWNER_PASSWORD).status_code == 302
    client.post("/logout/")
    for _ in range(limit - 1):
        assert console_login(client, "owner", "wrong").status_code == 200
    assert console_login(client, "owner", OWNER_PASSWORD).status_code == 302


# The admin -------------------------------------------------------------------------------


def test_it_locks_the_admin_login(client, bare_staff, limit, clock):
    for _ in range(limit - 1):
        assert admin_login(client, "bare_staff", "wrong").status_code == 200
    assert admin_login(client, "bare_staff", "wrong").status_code == 429
    refused = admin_login(client, "bare_staff", STAFF_PASSWORD)
    assert refused.status_code == 429 and "Too many failed sign-ins" in refused.content.decode()
    assert not signed_in(client)


def test_console_and_admin_failures_count_together(client, bare_staff, limit, clock):
    for attempt in range(limit):
        (console_login if attempt % 2 else admin_login)(client, "bare_staff", "wrong")
    assert console_login(client, "bare_staff", STAFF_PASSWORD).status_code == 429


# HTTP Basic on /api/tokens/ ------------------------------------------------------------


def test_it_locks_basic_auth_token_creation(owner, limit, cool_off, clock):
    for _ in range(limit - 1):
        response = create_token("owner", "wrong")
        assert response.status_code == 401
    locked = create_token("owner", "wrong")
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.json()["detail"]
    assert locked["Retry-After"] == str(int(cool_off.total_seconds()))
    refused = create_token("owner", OWNER_PASSWORD)
    assert refused.status_code == 429 and refused["Content-Type"] == "application/json"
    assert not owner.api_tokens.exists()

    clock.shift(cool_off + timedelta(seconds=1))
    created = create_token("owner", OWNER_PASSWORD)
    assert created.status_code == 201 and created.json()["key"]


def test_basic_auth_of_another_user_is_not_locked(owner, outsider, limit, clock):
    for _ in range(limit):
        create_token("owner", "wrong")
    assert create_token("outsider", "outsider-pass-123").status_code == 201


def test_wrong_api_tokens_are_not_login_failures(owner, limit, clock):
    _token, key = services.token_create(user=owner, name="ci")
    for _ in range(limit * 2):
        wrong = APIClient()
        wrong.credentials(HTTP_AUTHORIZATION="Token not-a-real-key")
        assert wrong.get("/api/jobs/").status_code == 401
    assert not AccessAttempt.objects.exists()
    good = APIClient()
    good.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert good.get("/api/jobs/").status_code == 200
    assert create_token("owner", OWNER_PASSWORD).status_code == 201


def test_a_locked_account_keeps_its_working_tokens(owner, limit, clock):
    _token, key = services.token_create(user=owner, name="ci")
    for _ in range(limit):
        create_token("owner", "wrong")
    good = APIClient()
    good.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert good.get("/api/jobs/").status_code == 200


# Behind a proxy --------------------------------------------------------------------------


def test_without_trusted_proxies_a_forwarded_address_is_ignored(owner, limit, clock):
    # A client cannot dodge the lock by sending a new X-Forwarded-For each time.
    for n in range(limit):
        Client(HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").post("/login/", {"username": "owner", "password": "wrong"})
    response = Client(HTTP_X_FORWARDED_FOR="203.0.113.99").post(
        "/login/", {"username": "owner", "password": OWNER_PASSWORD}
    )
    assert response.status_code == 429


def test_behind_one_trusted_proxy_the_lock_follows_the_forwarded_address(owner, limit, clock, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    # The proxy appends the address it saw; anything before it is the client's own claim.
    attacker = Client(HTTP_X_FORWARDED_FOR="198.51.100.7, 203.0.113.5")
    for _ in range(limit):
        attacker.post("/login/", {"username": "owner", "password": "wrong"})
    assert AccessAttempt.objects.get().ip_address == "203.0.113.5"
    assert attacker.post("/login/", {"username": "owner", "password": OWNER_PASSWORD}).status_code == 429
    colleague = Client(HTTP_X_FORWARDED_FOR="203.0.113.6")
    assert colleague.post("/login/", {"username": "owner", "password": OWNER_PASSWORD}).status_code == 302
