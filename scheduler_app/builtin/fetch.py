"""tempora.http_request: one HTTP(S) request with the standard library, classified and timed.

error_class is one of success, timeout, dns_error, connection_error, too_many_redirects,
http_4xx, http_5xx. A run fails (HttpRequestError) when the status is not the expected one,
or, with no expected_status, when the request did not succeed; the message carries the key
facts because the run's result dict is lost when it raises.

Fenced (network.py decides which addresses): only public addresses, unless
TEMPORA_HTTP_ALLOW_HOSTS names the host, checked after name resolution at every hop; the
connection goes to the very address that was checked (no second lookup an attacker's DNS
could answer differently), so proxies (*_proxy variables) are not used. Standard methods
only; redirects followed at most TEMPORA_HTTP_MAX_REDIRECTS times; the timeout bounds the
whole request, redirects included, and is capped by TEMPORA_HTTP_MAX_TIMEOUT; at most
TEMPORA_HTTP_MAX_BODY_BYTES of the body are kept.
"""

from __future__ import annotations

import codecs
import http.client
import json
import logging
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from django.utils.translation import gettext

from scheduler_app.builtin import Refused, conf, network

logger = logging.getLogger(__name__)

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
DEFAULT_TIMEOUT = 30  # seconds, or TEMPORA_HTTP_MAX_TIMEOUT if that is lower
_CHUNK = 64 * 1024
_REDIRECTS = {301, 302, 303, 307, 308}
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 header names
_BODY_HEADERS = {"content-type", "content-length", "transfer-encoding"}
_CREDENTIAL_HEADERS = {"authorization", "cookie", "proxy-authorization"}
USER_AGENT = "Tempora (tempora.http_request)"


class HttpRequestError(RuntimeError):
    """The request failed or answered an unexpected status; `.result` holds what was measured."""

    def __init__(self, message: str, result: dict) -> None:
        super().__init__(message)
        self.result = result
        self.error_class = result["error_class"]


@dataclass(frozen=True)
class Plan:
    target: network.Target
    method: str
    headers: dict[str, str]
    data: bytes | None
    timeout: float
    expected: set[int] | None


def check(
    url: str,
    method: str = "GET",
    headers: dict | None = None,
    body: Any = None,
    timeout: float | None = None,
    expected_status: int | list[int] | None = None,
) -> Plan:
    """The arguments' checks, the same at save and at run: everything but resolving the host."""
    try:
        target = network.target(url)
        network.check_literal(target, conf.http_allow_hosts())
    except network.Unreachable as exc:
        raise Refused(gettext("url: %(reason)s") % {"reason": exc}) from None
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise Refused(
            gettext("method: %(method)r is not one of %(methods)s.") % {"method": method, "methods": ", ".join(METHODS)}
        )
    limit = conf.integer("HTTP_MAX_TIMEOUT")
    if timeout is None:
        timeout = min(DEFAULT_TIMEOUT, limit)
    elif isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(gettext("timeout: %(timeout)r is not a number of seconds above 0.") % {"timeout": timeout})
    elif timeout > limit:
        raise Refused(
            gettext("timeout: %(timeout)s is above the limit of %(limit)d seconds (TEMPORA_HTTP_MAX_TIMEOUT).")
            % {"timeout": timeout, "limit": limit}
        )
    data, headers = _encode(body, headers)
    return Plan(target, method.upper(), headers, data, timeout, _expected(expected_status))


def validate(arguments: dict) -> None:
    """@task(validate=...): the checks a job's arguments get when it is saved."""
    check(**arguments)


def request(
    url: str,
    method: str = "GET",
    headers: dict | None = None,
    body: Any = None,
    timeout: float | None = None,
    expected_status: int | list[int] | None = None,
    *,
    resolve: network.Resolver = socket.getaddrinfo,
) -> dict:
    """Make the request; `resolve` answers name lookups (socket.getaddrinfo; tests pass their own)."""
    plan = check(url, method, headers, body, timeout, expected_status)
    result: dict[str, Any] = {
        "url": url,
        "method": plan.method,
        "status_code": None,
        "error_class": None,
        "latency_ms": None,
        "response_size": 0,
        "content_type": None,
        "body": "",
        "truncated": False,
        "redirects": [],
    }
    detail = ""
    logger.info("%s %s (timeout %ss)", plan.method, url, plan.timeout)
    started = time.perf_counter()
    watchdog = _Watchdog(plan.timeout)
    try:
        _exchange(plan, result, watchdog, resolve)
        result["error_class"] = _status_class(result["status_code"])
    except _TooManyRedirects as exc:
        result["error_class"], detail = "too_many_redirects", str(exc)
    except (OSError, http.client.HTTPException) as exc:
        result["status_code"] = None
        if watchdog.expired:
            result["error_class"] = "timeout"
            detail = gettext("the whole request took longer than %(timeout)ss") % {"timeout": plan.timeout}
        else:
            result["error_class"], detail = _failure_class(exc), str(exc) or type(exc).__name__
    finally:
        watchdog.cancel()
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)

    status = result["status_code"]
    logger.info(
        "%s %s -> %s (%s) in %.1f ms, %d bytes",
        plan.method,
        url,
        status if status is not None else "no response",
        result["error_class"],
        result["latency_ms"],
        result["response_size"],
    )
    answered = result["error_class"] in ("success", "http_4xx", "http_5xx")  # not cut short by a failure
    ok = answered and (status in plan.expected if plan.expected is not None else result["error_class"] == "success")
    if not ok:
        raise HttpRequestError(_message(result, plan.expected, detail), result)
    return result


class _TooManyRedirects(Exception):
    pass


def _exchange(plan: Plan, result: dict, watchdog: _Watchdog, resolve: network.Resolver) -> None:
    """Send the request, following redirects, each hop checked; fill `result` with the final answer."""
    entries = conf.http_allow_hosts()
    limit = conf.integer("HTTP_MAX_REDIRECTS")
    target, method, headers, data = plan.target, plan.method, dict(plan.headers), plan.data
    while True:
        try:
            infos = network.addresses(target, entries, resolve)
        except network.Unreachable as exc:
            if not result["redirects"]:
                raise Refused(gettext("url: %(reason)s") % {"reason": exc}) from None
            raise Refused(
                gettext("url: the redirect to %(url)s was refused: %(reason)s") % {"url": target.url, "reason": exc}
            ) from None
        connection = _Connection(target, infos, watchdog)
        try:
            connection.request(method, target.path, body=data, headers=headers)
            response = connection.getresponse()
            location = response.getheader("Location") if response.status in _REDIRECTS else None
            if location is None:
                result["status_code"] = response.status
                result["content_type"] = response.getheader("Content-Type")
                _read_body(response, result, conf.integer("HTTP_MAX_BODY_BYTES"))
                if watchdog.expired:  # the watchdog's shutdown may have ended the body early
                    raise TimeoutError
                return
        finally:
            connection.close()
        if len(result["redirects"]) >= limit:
            raise _TooManyRedirects(gettext("more than %(limit)d redirects") % {"limit": limit})
        following = urljoin(target.url, location.strip())
        result["redirects"].append(following)
        try:
            next_target = network.target(following)
        except network.Unreachable as exc:
            raise Refused(
                gettext("url: the redirect to %(url)s was refused: %(reason)s") % {"url": following, "reason": exc}
            ) from None
        method, data, headers = _redirected(response.status, method, data, headers, target, next_target)
        target = next_target


def _redirected(
    status: int, method: str, data: bytes | None, headers: dict[str, str], old: network.Target, new: network.Target
) -> tuple[str, bytes | None, dict[str, str]]:
    """The next hop's method, body and headers, as browsers do: 303 (and 301/302 after a POST) become
    a GET without the body; 307 and 308 repeat the request. Credentials stay with their origin."""
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, data = "GET", None
        headers = {name: value for name, value in headers.items() if name.lower() not in _BODY_HEADERS}
    if new.origin != old.origin:
        headers = {name: value for name, value in headers.items() if name.lower() not in _CREDENTIAL_HEADERS}
    return method, data, headers


class _Watchdog:
    """Shuts the connection down when the request's time is up. A timeout on each read alone
    would let a server that trickles a byte at a time hold a worker thread for ever."""

    def __init__(self, timeout: float) -> None:
        self.deadline = time.monotonic() + timeout
        self.expired = False
        self.connection: http.client.HTTPConnection | None = None
        self._timer = threading.Timer(timeout, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.expired = True
            raise TimeoutError("timed out")
        return left

    def _expire(self) -> None:
        self.expired = True
        sock = self.connection.sock if self.connection is not None else None
        if sock is not None:
            try:
                # socket.socket's own shutdown, also for a TLS socket: it wakes a blocked read.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass

    def cancel(self) -> None:
        self._timer.cancel()


class _Connection(http.client.HTTPConnection):
    """An HTTP(S) connection to addresses already checked, never to a fresh lookup of the host.

    The host still names the server in the Host header, in SNI and in certificate checks.
    """

    def __init__(self, target: network.Target, infos: list, watchdog: _Watchdog) -> None:
        super().__init__(target.host, target.port)
        self._infos, self._watchdog, self._tls = infos, watchdog, target.scheme == "https"
        if self._tls:
            self.default_port = 443  # so the Host header leaves the default port out
        watchdog.connection = self

    def connect(self) -> None:
        error: OSError = OSError(gettext("no address to connect to"))
        for family, kind, proto, _name, address in self._infos:
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(self._watchdog.remaining())
                sock.connect(address)
                break
            except OSError as exc:
                sock.close()
                error = exc
        else:
            raise error
        self.sock = sock
        if self._tls:
            self.sock = ssl.create_default_context().wrap_socket(
                sock, server_hostname=self.host, do_handshake_on_connect=False
            )
            self.sock.do_handshake()  # after self.sock is set, so the watchdog can interrupt it
        self.sock.settimeout(self._watchdog.remaining())


def _expected(expected_status: Any) -> set[int] | None:
    if expected_status is None:
        return None
    values = expected_status if isinstance(expected_status, (list, tuple, set)) else [expected_status]
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) and 100 <= v <= 599 for v in values):
        raise ValueError(
            gettext("expected_status: %(value)r is not a status code (100-599) or a list of them.")
            % {"value": expected_status}
        )
    return set(values)


def _encode(body: Any, headers: Any) -> tuple[bytes | None, dict[str, str]]:
    if headers is not None and not isinstance(headers, dict):
        raise ValueError(
            gettext("headers: expected an object of name: value, not %(type)s.") % {"type": type(headers).__name__}
        )
    checked: dict[str, str] = {}
    for name, value in (headers or {}).items():
        if not isinstance(name, str) or not _TOKEN.match(name):
            raise Refused(gettext("headers: %(name)r is not a header name.") % {"name": name})
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise Refused(gettext("headers: the value of %(name)s must be text.") % {"name": name})
        if any(char in str(value) for char in "\r\n\x00"):
            raise Refused(gettext("headers: the value of %(name)s contains a line break.") % {"name": name})
        checked[name] = str(value)
    names = {name.lower() for name in checked}
    content_type = None
    if body is None:
        data = None
    elif isinstance(body, (dict, list)):
        data, content_type = json.dumps(body).encode(), "application/json"
    elif isinstance(body, str):
        data, content_type = body.encode(), "text/plain; charset=utf-8"
    elif isinstance(body, bytes):
        data = body
    else:
        raise ValueError(
            gettext("body: expected an object (sent as JSON) or a string, not %(type)s.")
            % {"type": type(body).__name__}
        )
    if content_type and "content-type" not in names:
        checked["Content-Type"] = content_type
    if "user-agent" not in names:
        checked["User-Agent"] = USER_AGENT
    return data, checked


def _read_body(response: http.client.HTTPResponse, result: dict, limit: int) -> None:
    """Read the whole body to count it, keeping only the first `limit` bytes."""
    kept = bytearray()
    size = 0
    while chunk := response.read(_CHUNK):
        size += len(chunk)
        if len(kept) < limit:
            kept += chunk[: limit - len(kept)]
    charset = response.msg.get_content_charset() or "utf-8"
    try:
        decoder = codecs.getincrementaldecoder(charset)(errors="replace")
    except LookupError:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    truncated = size > limit
    # final=False drops a character cut in half at the limit instead of showing garbage.
    result.update(response_size=size, truncated=truncated, body=decoder.decode(bytes(kept), final=not truncated))


def _status_class(status: int) -> str:
    if 400 <= status < 500:
        return "http_4xx"
    if status >= 500:
        return "http_5xx"
    return "success"


def _failure_class(reason: Any) -> str:
    if isinstance(reason, socket.gaierror):
        return "dns_error"
    if isinstance(reason, TimeoutError):  # socket.timeout is TimeoutError since Python 3.10
        return "timeout"
    return "connection_error"


def _message(result: dict, expected: set[int] | None, detail: str) -> str:
    where = f"{result['method']} {result['url']}"
    status = result["status_code"]
    if status is None:
        text = f"{where} failed: {result['error_class']} ({detail}) after {result['latency_ms']} ms"
    else:
        text = f"{where} returned {status} ({result['error_class']}) in {result['latency_ms']} ms"
    if expected is not None:
        text += f"; expected {' or '.join(str(code) for code in sorted(expected))}"
    if result["body"]:
        snippet = result["body"][:200]
        text += f"; body: {snippet!r}{'...' if len(result['body']) > 200 else ''}"
    return text
