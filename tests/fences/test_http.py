"""tempora.http_request's fences, tried against fake servers on 127.0.0.1 and ::1.

Each escape must be refused before anything connects: the servers record every connection
they accept, and a refused request leaves that list empty. Name resolution is the system's
(/etc/hosts for localhost and this machine's name); where a case needs answers no local
resolver gives, fetch.request takes the resolver as an argument.
"""

from __future__ import annotations

import json
import socket
import time

import pytest
from django.core.exceptions import ValidationError

from scheduler_app import builtin_tasks, services
from scheduler_app.builtin import fetch
from scheduler_app.registry import registry

# Every way we know to write an address of this machine's IPv4 loopback (or one that reaches it).
LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "127.1",
    "2130706433",
    "0x7f.1",
    "0177.0.0.1",
    "0x7f000001",
    "127.0.0.1.",
    "127.255.255.254",
    "localhost",
    "LocalHost",
    "localhost.",
    "app.localhost",
    "ｌｏｃａｌｈｏｓｔ",
    "0.0.0.0",
    "0",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
]
LOOPBACK6_SPELLINGS = ["[::1]", "[0:0:0:0:0:0:0:1]", "[::]"]

# Addresses no fake server answers on; each must be refused for the reason named, at save and at run.
FORBIDDEN = {
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "192.168.0.1": "private",
    "192.0.2.1": "private",
    "198.18.0.1": "private",
    "[fd12::1]": "private",
    "[100::1]": "private",
    "[2001:0:4136:e378:8000:63bf:3fff:fdd2]": "private",  # Teredo
    "169.254.169.254": "cloud metadata",
    "[fd00:ec2::254]": "cloud metadata",
    "100.100.100.200": "cloud metadata",
    "168.63.129.16": "cloud metadata",
    "192.0.0.192": "cloud metadata",
    "169.254.1.1": "link-local",
    "[fe80::1]": "link-local",
    "[fe80::1%25eth0]": "link-local",
    "100.64.0.1": "shared",
    "224.0.0.251": "multicast",
    "239.255.255.250": "multicast",
    "[ff02::1]": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    "[fec0::1]": "site-local",
    "[::127.0.0.1]": "loopback",  # IPv4-compatible
    "[2002:7f00:1::1]": "loopback",
    "[2002:a00:1::]": "private",  # 6to4
    "[64:ff9b::a00:1]": "private",
    "[64:ff9b:1::7f00:1]": "loopback",  # NAT64
}


def refused(*reasons: str) -> str:
    return rf"^url: .*({'|'.join(reasons)})"


def save_errors(**kwargs) -> str:
    """The kwargs error services.job_create answers for an http_request job with these arguments."""
    with pytest.raises(ValidationError) as failure:
        services.job_create(
            name="fenced",
            task="tempora.http_request",
            kwargs=kwargs,
            triggers=[{"kind": "interval", "interval_seconds": 60}],
        )
    return " ".join(failure.value.message_dict["kwargs"])


def answers(*ips: str, calls: list | None = None):
    """A resolver (socket.getaddrinfo's shape) that answers `ips` for any name."""

    def resolve(host, port, *args, **kwargs):
        if calls is not None:
            calls.append(host)
        return [
            (
                socket.AF_INET6 if ":" in ip else socket.AF_INET,
                socket.SOCK_STREAM,
                socket.IPPROTO_TCP,
                "",
                (ip, port, 0, 0) if ":" in ip else (ip, port),
            )
            for ip in ips
        ]

    return resolve


# Addresses --------------------------------------------------------------------------------


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_it_refuses_the_loopback_address_in_every_spelling(web4, host):
    with pytest.raises(ValueError, match=refused("loopback", "localhost", "unspecified")):
        builtin_tasks.http_request(f"http://{host}:{web4.port}/")
    assert web4.connections == []


@pytest.mark.parametrize("host", LOOPBACK6_SPELLINGS)
def test_it_refuses_the_ipv6_loopback_in_every_spelling(web6, host):
    with pytest.raises(ValueError, match=refused("loopback", "unspecified")):
        builtin_tasks.http_request(f"http://{host}:{web6.port}/")
    assert web6.connections == []


def test_it_refuses_a_name_that_resolves_to_loopback(web4):
    # This machine's own name: /etc/hosts answers it with a loopback address; no DNS involved.
    name = socket.gethostname()
    assert {info[4][0] for info in socket.getaddrinfo(name, None)} <= {"127.0.0.1", "::1", "127.0.1.1"}
    with pytest.raises(ValueError, match=rf"^url: {name} resolves to 127\.0\.\d\.1, a loopback address"):
        builtin_tasks.http_request(f"http://{name}:{web4.port}/")
    assert web4.connections == []


@pytest.mark.parametrize(("host", "reason"), FORBIDDEN.items())
def test_it_refuses_every_address_that_is_not_public_when_run(host, reason):
    started = time.monotonic()
    with pytest.raises(ValueError, match=refused(reason)):
        builtin_tasks.http_request(f"http://{host}/latest/meta-data/", timeout=1)
    assert time.monotonic() - started < 0.5  # refused before any connection was tried


@pytest.mark.django_db
@pytest.mark.parametrize(("host", "reason"), FORBIDDEN.items())
def test_it_refuses_every_address_that_is_not_public_when_saved(host, reason):
    assert reason in save_errors(url=f"http://{host}/latest/meta-data/")


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["127.1", "2130706433", "[::ffff:127.0.0.1]", "localhost.", "ｌｏｃａｌｈｏｓｔ"])
def test_it_refuses_loopback_spellings_when_saved(host):
    message = save_errors(url=f"http://{host}:8000/admin/")
    assert message.startswith("url: ") and ("loopback" in message or "localhost" in message)


@pytest.mark.django_db
def test_a_name_is_only_resolved_when_the_job_runs(web4):
    # DNS answers change: a save never resolves names, the run always does.
    job = services.job_create(
        name="by-name", task="tempora.http_request", kwargs={"url": f"http://{socket.gethostname()}:{web4.port}/"}
    )
    with pytest.raises(ValueError, match="a loopback address"):
        registry.get(job.task)(*job.args, **job.kwargs)
    assert web4.connections == []


def test_it_refuses_a_name_whose_answer_is_private(web4):
    with pytest.raises(ValueError, match=r"^url: intranet\.example\.com resolves to 10\.0\.0\.7, a private address"):
        fetch.request("http://intranet.example.com/", resolve=answers("10.0.0.7"))


def test_one_private_answer_among_public_ones_is_enough_to_refuse():
    with pytest.raises(ValueError, match=r"resolves to 127.0.0.1, a loopback address"):
        fetch.request("http://mixed.example.com/", resolve=answers("93.184.216.34", "127.0.0.1"))


def test_it_connects_to_the_address_it_checked_not_a_second_lookup(settings, web4):
    # The system resolver does not know rebind.test: only the checked answer can reach the server.
    settings.TEMPORA_HTTP_ALLOW_HOSTS = [f"rebind.test:{web4.port}"]
    calls = []
    result = fetch.request(f"http://rebind.test:{web4.port}/pinned", resolve=answers("127.0.0.1", calls=calls))
    assert result["status_code"] == 200
    assert calls == ["rebind.test"]
    assert [(r["path"], r["headers"]["Host"]) for r in web4.requests] == [("/pinned", f"rebind.test:{web4.port}")]


# The allow-list ---------------------------------------------------------------------------


def test_the_allow_list_lets_a_named_host_and_port_through(settings, web4):
    settings.TEMPORA_HTTP_ALLOW_HOSTS = [f"127.0.0.1:{web4.port}"]
    result = builtin_tasks.http_request(f"{web4.base}/ok")
    assert (result["status_code"], result["body"]) == (200, "reached")
    assert len(web4.connections) == 1


def test_the_allow_list_names_ipv6_hosts_in_brackets(settings, web6):
    settings.TEMPORA_HTTP_ALLOW_HOSTS = [f"[::1]:{web6.port}"]
    assert builtin_tasks.http_request(f"{web6.base}/ok")["status_code"] == 200
    assert len(web6.connections) == 1


def test_a_host_without_a_port_is_allowed_on_every_port(settings, web4):
    settings.TEMPORA_HTTP_ALLOW_HOSTS = ["localhost"]
    assert builtin_tasks.http_request(f"http://localhost:{web4.port}/")["status_code"] == 200


def test_the_allow_list_matches_the_port_too(settings, web4):
    settings.TEMPORA_HTTP_ALLOW_HOSTS = [f"127.0.0.1:{web4.port + 1}"]
    with pytest.raises(ValueError, match=refused("loopback")):
        builtin_tasks.http_request(f"{web4.base}/")
    assert web4.connections == []


def test_the_allow_list_names_a_host_as_it_is_spelled(settings, web4):
    settings.TEMPORA_HTTP_ALLOW_HOSTS = ["127.0.0.1"]
    with pytest.raises(ValueError, match=refused("loopback")):
        builtin_tasks.http_request(f"http://127.1:{web4.port}/")
    assert web4.connections == []


@pytest.mark.django_db
def test_a_job_saved_while_allowed_is_refused_when_the_allow_list_no_longer_names_it(settings, web4):
    settings.TEMPORA_HTTP_ALLOW_HOSTS = [web4.hostport]
    job = services.job_create(name="was-allowed", task="tempora.http_request", kwargs={"url": web4.base})
    settings.TEMPORA_HTTP_ALLOW_HOSTS = []
    with pytest.raises(ValueError, match=refused("loopback")):
        registry.get(job.task)(*job.args, **job.kwargs)
    assert web4.connections == []


# Redirects ---------------------------------------------------------------------------------


def test_every_redirect_is_checked(settings, web4, web6):
    settings.TEMPORA_HTTP_ALLOW_HOSTS = [web4.hostport]
    with pytest.raises(ValueError, match=r"^url: the redirect to http://\[::1\]:\d+/ was refused: ::1 is a loopback"):
        builtin_tasks.http_request(f"{web4.base}/redirect?to={web6.base}/")
    assert len(web4.connections) == 1
    assert web6.connections == []


def test_a_redirect_to_another_spelling_of_an_allowed_host_is_refused(settings, web4):
    settings.TEMPORA_HTTP_ALLOW_HOSTS = [web4.hostport]
    with pytest.raises(ValueError, match=r"was refused: 127.1 is a loopback address"):
        builtin_tasks.http_request(f"{web4.base}/redirect?to=http://127.1:{web4.port}/")
    assert len(web4.connections) == 1


@pytest.mark.parametrize("target", ["ftp://127.0.0.1:{port}/", "file:///etc/passwd", "gopher://127.0.0.1:{port}/"])
def test_a_redirect_to_another_scheme_is_refused(settings, web4, target):
    settings.TEMPORA_HTTP_ALLOW_HOSTS = [web4.hostport]
    with pytest.raises(ValueError, match=r"was refused: .* is not an http:// or https:// URL"):
        builtin_tasks.http_request(f"{web4.base}/redirect?to={target.format(port=web4.port)}")
    assert len(web4.connections) == 1


def test_redirects_are_followed_a_bounded_number_of_times(settings, web4):
    settings.TEMPORA_HTTP_ALLOW_HOSTS = [web4.hostport]
    settings.TEMPORA_HTTP_MAX_REDIRECTS = 3
    with pytest.raises(fetch.HttpRequestError, match="more than 3 redirects") as failure:
        builtin_tasks.http_request(f"{web4.base}/loop")
    assert failure.value.error_class == "too_many_redirects"
    assert len(web4.connections) == 4


def test_an_allowed_redirect_is_followed_and_reported(settings, web4):
    settings.TEMPORA_HTTP_ALLOW_HOSTS = [web4.hostport]
    result = builtin_tasks.http_request(f"{web4.base}/redirect?to=/ok")
    assert (result["status_code"], result["body"], result["redirects"]) == (200, "reached", [f"{web4.base}/ok"])


@pytest.mark.parametrize(
    ("status", "method", "body"), [(303, "GET", ""), (307, "POST", "payload"), (308, "POST", "payload")]
)
def test_a_redirect_keeps_or_drops_the_method_as_its_status_says(settings, web4, status, method, body):
    settings.TEMPORA_HTTP_ALLOW_HOSTS = [web4.hostport]
    builtin_tasks.http_request(f"{web4.base}/redirect{status}?to=/echo", method="POST", body="payload")
    assert [(r["method"], r["path"], r["body"]) for r in web4.requests][-1] == (method, "/echo", body)


def test_credentials_are_not_sent_to_another_host_after_a_redirect(settings, web4, web6):
    settings.TEMPORA_HTTP_ALLOW_HOSTS = [web4.hostport, web6.hostport]
    builtin_tasks.http_request(f"{web4.base}/redirect307?to={web6.base}/", headers={"Authorization": "Bearer s3cret"})
    assert web4.requests[0]["headers"]["Authorization"] == "Bearer s3cret"
    assert "Authorization" not in web6.requests[0]["headers"]


# Methods, schemes, headers, limits ------------------------------------------------------------


@pytest.mark.parametrize("method", ["CONNECT", "TRACE", "FOO", "PROPFIND", "HELO", "GET / HTTP/1.1\r\nX:", ""])
def test_only_standard_methods_are_sent(settings, web4, method):
    settings.TEMPORA_HTTP_ALLOW_HOSTS = [web4.hostport]
    with pytest.raises(ValueError, match=r"^method: .* is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"):
        builtin_tasks.http_request(f"{web4.base}/", method=method)
    assert web4.connections == []


@pytest.mark.parametrize("method", ["GET", "head", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_each_standard_method_reaches_an_allowed_host(settings, web4, method):
    settings.TEMPORA_HTTP_ALLOW_HOSTS = [web4.hostport]
    builtin_tasks.http_request(f"{web4.base}/", method=method)
    assert [r["method"] for r in web4.requests] == [method.upper()]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/",
        "file:///etc/passwd",
        "gopher://127.0.0.1:70/",
        "http:///path",
        "//127.0.0.1/",
        "http://127.0.0.1:99999/",
        "http://[::1",
        "http://[v1.x]/",
        "http://a b/",
        42,
    ],
)
def test_only_http_and_https_urls_with_a_host_are_taken(url):
    with pytest.raises(ValueError, match=r"^url: "):
        builtin_tasks.http_request(url)


def test_a_url_with_a_user_name_is_refused(settings, web4):
    # http://allowed@127.0.0.1/ reads as "allowed" to a person; the user name belongs in a header.
    settings.TEMPORA_HTTP_ALLOW_HOSTS = [web4.hostport]
    with pytest.raises(ValueError, match=r"url: .*user name or password"):
        builtin_tasks.http_request(f"http://user:pw@{web4.hostport}/")
    assert web4.connections == []


@pytest.mark.parametrize(
    "headers",
    [{"X-A": "1\r\nX-Injected: 1"}, {"X-A\r\nX-B": "1"}, {"Bad Name": "1"}, {"X-A": "\n"}, {"X-A": {"nested": 1}}],
)
def test_headers_cannot_smuggle_lines_or_odd_names(settings, web4, headers):
    settings.TEMPORA_HTTP_ALLOW_HOSTS = [web4.hostport]
    with pytest.raises(ValueError, match=r"^headers: "):
        builtin_tasks.http_request(f"{web4.base}/", headers=headers)
    assert web4.connections == []


@pytest.mark.django_db
def test_the_timeout_is_capped_by_a_setting(settings):
    settings.TEMPORA_HTTP_MAX_TIMEOUT = 5
    with pytest.raises(ValueError, match=r"^timeout: 6 is above the limit of 5 seconds \(TEMPORA_HTTP_MAX_TIMEOUT\)"):
        builtin_tasks.http_request("http://example.com/", timeout=6)
    assert "timeout: 6 is above the limit" in save_errors(url="http://example.com/", timeout=6)


def test_the_timeout_bounds_the_whole_request_not_each_read(settings, web4):
    # The server sends a byte every 0.2 s: no single read waits a second, the answer takes 13 s.
    settings.TEMPORA_HTTP_ALLOW_HOSTS = [web4.hostport]
    started = time.monotonic()
    with pytest.raises(fetch.HttpRequestError, match="failed: timeout") as failure:
        builtin_tasks.http_request(f"{web4.base}/drip", timeout=1)
    assert failure.value.error_class == "timeout"
    assert time.monotonic() - started < 2


def test_the_default_timeout_stays_under_the_cap(settings, web4):
    settings.TEMPORA_HTTP_MAX_TIMEOUT = 1
    settings.TEMPORA_HTTP_ALLOW_HOSTS = [web4.hostport]
    started = time.monotonic()
    with pytest.raises(fetch.HttpRequestError, match="failed: timeout"):
        builtin_tasks.http_request(f"{web4.base}/drip")
    assert time.monotonic() - started < 2


def test_the_stored_body_is_capped_by_a_setting(settings, web4):
    settings.TEMPORA_HTTP_ALLOW_HOSTS = [web4.hostport]
    settings.TEMPORA_HTTP_MAX_BODY_BYTES = 100
    result = builtin_tasks.http_request(f"{web4.base}/large")
    assert (result["body"], result["truncated"], result["response_size"]) == ("x" * 100, True, 50_000)


# The interfaces: a 400 naming the field -------------------------------------------------------


@pytest.mark.django_db
def test_the_api_answers_400_naming_kwargs(owner):
    from rest_framework.test import APIClient

    from tests.conftest import grant

    client = APIClient()
    client.force_authenticate(grant(owner, "scheduler_app.use_network_tasks"))  # fenced even for those allowed
    response = client.post(
        "/api/jobs/",
        {
            "name": "steal",
            "task": "tempora.http_request",
            "kwargs": {"url": "http://169.254.169.254/latest/meta-data/"},
            "triggers": [{"kind": "interval", "interval_seconds": 60}],
        },
        format="json",
    )
    assert response.status_code == 400, response.content
    [message] = response.json()["kwargs"]
    assert message.startswith("url: 169.254.169.254 is a cloud metadata address")


@pytest.mark.django_db
def test_the_console_shows_the_refusal_on_the_kwargs_field(owner):
    from tests.conftest import grant
    from tests.web.conftest import client_for
    from tests.web.test_job_form import form_data

    body = (
        client_for(grant(owner, "scheduler_app.use_network_tasks"))
        .post(
            "/jobs/new/",
            form_data(
                task="tempora.http_request",
                kwargs=json.dumps({"url": "http://[::1]:6379/"}),
            ),
        )
        .content.decode()
    )
    assert 'id="id_kwargs_error"' in body and "::1 is a loopback address" in body
