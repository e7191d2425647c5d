"""The production switch (TEMPORA_SECURE), the proxy settings, the login-lock settings and the
Content-Security-Policy header, read the way a deployment reads them: from the environment, in a
fresh process."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import RequestFactory

from config.client_ip import client_ip

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_VARIABLES = (
    "DEBUG",
    "TEMPORA_SECURE",
    "SECRET_KEY",
    "SECURE_COOKIES",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER",
    "TRUSTED_PROXY_COUNT",
    "LOGIN_FAILURE_LIMIT",
    "LOGIN_COOLOFF_MINUTES",
    "LOGIN_LOCKOUT_BY",
    "ALLOWED_HOSTS",
)


def manage(tmp_path, *args: str, **variables: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in SETTINGS_VARIABLES}
    env.update(TEMPORA_VAR_DIR=str(tmp_path), **variables)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def setting(tmp_path, expression: str, **variables: str) -> str:
    done = manage(tmp_path, "shell", "-c", f"from django.conf import settings; print(repr({expression}))", **variables)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


# check --deploy ----------------------------------------------------------------------------


def test_the_production_switch_makes_check_deploy_clean(tmp_path):
    done = manage(
        tmp_path, "check", "--deploy", DEBUG="false", TEMPORA_SECURE="true", SECRET_KEY=secrets.token_urlsafe(50)
    )
    assert done.returncode == 0, done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout, done.stdout + done.stderr
    assert "WARNING" not in done.stderr and "security." not in done.stderr, done.stderr


def test_without_the_switch_check_deploy_warns(tmp_path):
    done = manage(tmp_path, "check", "--deploy", DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50))
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in done.stderr, done.stderr


def test_the_switch_sets_hsts_redirect_and_secure_cookies(tmp_path):
    values = setting(
        tmp_path,
        "(settings.SECURE_HSTS_SECONDS, settings.SECURE_HSTS_INCLUDE_SUBDOMAINS, settings.SECURE_HSTS_PRELOAD,"
        " settings.SECURE_SSL_REDIRECT, settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE,"
        " settings.LANGUAGE_COOKIE_SECURE)",
        TEMPORA_SECURE="true",
    )
    assert values == "(31536000, True, True, True, True, True, True)"
    assert (
        setting(
            tmp_path,
            "(settings.SECURE_HSTS_SECONDS, settings.SECURE_SSL_REDIRECT, settings.SESSION_COOKIE_SECURE)",
        )
        == "(0, False, False)"
    )


def test_hsts_parts_can_be_turned_down(tmp_path):
    values = setting(
        tmp_path,
        "(settings.SECURE_HSTS_SECONDS, settings.SECURE_HSTS_INCLUDE_SUBDOMAINS, settings.SECURE_HSTS_PRELOAD)",
        TEMPORA_SECURE="true",
        SECURE_HSTS_SECONDS="3600",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="false",
        SECURE_HSTS_PRELOAD="false",
    )
    assert values == "(3600, False, False)"


def test_the_secure_policy_upgrades_insecure_requests(tmp_path):
    assert "upgrade-insecure-requests" in setting(
        tmp_path, "settings.CONTENT_SECURITY_POLICY['DIRECTIVES']", TEMPORA_SECURE="true"
    )
    assert "upgrade-insecure-requests" not in setting(tmp_path, "settings.CONTENT_SECURITY_POLICY['DIRECTIVES']")


def test_the_proxy_ssl_header_is_opt_in(tmp_path):
    assert setting(tmp_path, "settings.SECURE_PROXY_SSL_HEADER") == "None"
    assert setting(tmp_path, "settings.SECURE_PROXY_SSL_HEADER", SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto") == (
        "('HTTP_X_FORWARDED_PROTO', 'https')"
    )
    assert setting(tmp_path, "settings.SECURE_PROXY_SSL_HEADER", SECURE_PROXY_SSL_HEADER="X-Forwarded-Ssl=on") == (
        "('HTTP_X_FORWARDED_SSL', 'on')"
    )


def test_the_login_lock_settings_come_from_the_environment(tmp_path):
    assert setting(
        tmp_path,
        "(settings.AXES_FAILURE_LIMIT, settings.AXES_COOLOFF_TIME, settings.AXES_LOCKOUT_PARAMETERS)",
        LOGIN_FAILURE_LIMIT="3",
        LOGIN_COOLOFF_MINUTES="60",
        LOGIN_LOCKOUT_BY="username, ip_address",
    ) == ("(3, datetime.timedelta(seconds=3600), ['username', 'ip_address'])")
    assert (
        setting(tmp_path, "(settings.AXES_FAILURE_LIMIT, settings.AXES_COOLOFF_TIME, settings.AXES_LOCKOUT_PARAMETERS)")
        == "(5, datetime.timedelta(seconds=900), [['username', 'ip_address']])"
    )


@pytest.mark.parametrize(
    "variable, value, message",
    [
        ("TEMPORA_SECURE", "maybe", "TEMPORA_SECURE='maybe' is not a boolean"),
        ("SECURE_HSTS_SECONDS", "-1", "SECURE_HSTS_SECONDS=-1 is below its minimum of 0"),
        ("SECURE_PROXY_SSL_HEADER", "X Forwarded Proto", "SECURE_PROXY_SSL_HEADER='X Forwarded Proto'"),
        ("TRUSTED_PROXY_COUNT", "one", "TRUSTED_PROXY_COUNT='one' is not an integer"),
        ("LOGIN_FAILURE_LIMIT", "0", "LOGIN_FAILURE_LIMIT=0 is below its minimum of 1"),
        ("LOGIN_COOLOFF_MINUTES", "soon", "LOGIN_COOLOFF_MINUTES='soon' is not an integer"),
        ("LOGIN_LOCKOUT_BY", "password", "LOGIN_LOCKOUT_BY='password'"),
        ("LOGIN_LOCKOUT_BY", "", "LOGIN_LOCKOUT_BY=''"),
    ],
)
def test_a_malformed_security_setting_stops_start_up_naming_it(tmp_path, variable, value, message):
    done = manage(tmp_path, "check", **{variable: value})
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


# The client's address -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "proxies, forwarded, expected",
    [
        (0, "198.51.100.7", "192.0.2.1"),  # no proxy trusted: the header is the client's claim
        (1, "198.51.100.7", "198.51.100.7"),
        (1, "10.9.9.9, 198.51.100.7", "198.51.100.7"),  # the first entry was sent by the client itself
        (2, "10.9.9.9, 198.51.100.7, 172.16.0.2", "198.51.100.7"),
        (2, "198.51.100.7", "192.0.2.1"),  # fewer entries than proxies: not through them, use the socket
        (1, "", "192.0.2.1"),
        (1, "not-an-address", "192.0.2.1"),
    ],
)
def test_it_takes_the_client_address_the_trusted_proxies_saw(settings, proxies, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


# Content-Security-Policy -----------------------------------------------------------------------


POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def directives(header: str) -> dict[str, str]:
    return {part.split()[0]: " ".join(part.split()[1:]) for part in header.split(";") if part.strip()}


@pytest.mark.django_db
def test_every_page_carries_a_strict_policy(client, owner):
    client.force_login(owner)
    for path in ("/", "/jobs/", "/login/", "/admin/login/"):
        header = client.get(path)["Content-Security-Policy"]
        policy = directives(header)
        for name, value in POLICY.items():
            assert policy[name] == value, (path, name, header)
        assert "unsafe-inline" not in header and "unsafe-eval" not in header, header


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_the_api_docs_run_their_inline_code_by_nonce_only(client, owner, path):
    client.force_login(owner)
    response = client.get(path)
    body = response.content.decode()
    policy = directives(response["Content-Security-Policy"])
    nonce = re.search(r"'nonce-([^']+)'", policy["script-src"]).group(1)
    inline_scripts = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", body)
    assert inline_scripts and all(f'nonce="{nonce}"' in attributes for attributes in inline_scripts), inline_scripts
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", body), "the docs load something from elsewhere"
