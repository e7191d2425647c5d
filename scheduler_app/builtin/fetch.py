"""tempora.http_request: one HTTP(S) request with the standard library, classified and timed.

error_class is one of success, timeout, dns_error, connection_error, http_4xx, http_5xx.
A run fails (HttpRequestError) when the status is not the expected one, or, with no
expected_status, when the request did not succeed; the message carries the key facts because
the run's result dict is lost when it raises.
"""

from __future__ import annotations

import codecs
import http.client
import json
import logging
import socket
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

BODY_LIMIT = 10 * 1024  # bytes of the response body kept in the result
_CHUNK = 64 * 1024
USER_AGENT = "Tempora (tempora.http_request)"


class HttpRequestError(RuntimeError):
    """The request failed or answered an unexpected status; `.result` holds what was measured."""

    def __init__(self, message: str, result: dict) -> None:
        super().__init__(message)
        self.result = result
        self.error_class = result["error_class"]


def request(
    url: str, method: str = "GET", headers: dict | None = None, body: Any = None, timeout: float = 30,
    expected_status: int | list[int] | None = None,
) -> dict:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"url: {url!r} is not an http:// or https:// URL with a host.")
    if not isinstance(method, str) or not method.isalpha():
        raise ValueError(f"method: {method!r} is not an HTTP method such as GET or POST.")
    method = method.upper()
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError(f"timeout: {timeout!r} is not a number of seconds above 0.")
    expected = _expected(expected_status)
    data, headers = _encode(body, headers)

    result: dict[str, Any] = {
        "url": url, "method": method, "status_code": None, "error_class": None, "latency_ms": None,
        "response_size": 0, "content_type": None, "body": "", "truncated": False,
    }
    detail = ""
    logger.info("%s %s (timeout %ss)", method, url, timeout)
    started = time.perf_counter()
    try:
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            # build_opener honours the *_proxy environment variables and follows redirects.
            response = urllib.request.build_opener().open(req, timeout=timeout)
        except urllib.error.HTTPError as exc:
            response = exc  # a 4xx/5xx answer is still a response with a body worth reporting
        with response:
            result["status_code"] = response.getcode()
            result["content_type"] = response.headers.get("Content-Type")
            _read_body(response, result)
        result["error_class"] = _status_class(result["status_code"])
    except urllib.error.URLError as exc:
        result["error_class"], detail = _failure_class(exc.reason), str(exc.reason)
    except (OSError, http.client.HTTPException) as exc:
        result["error_class"], detail = _failure_class(exc), str(exc) or type(exc).__name__
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)

    status = result["status_code"]
    logger.info(
        "%s %s -> %s (%s) in %.1f ms, %d bytes", method, url, status if status is not None else "no response",
        result["error_class"], result["latency_ms"], result["response_size"],
    )
    answered = result["error_class"] in ("success", "http_4xx", "http_5xx")  # not cut short by a failure
    ok = answered and (status in expected if expected is not None else result["error_class"] == "success")
    if not ok:
        raise HttpRequestError(_message(result, expected, detail), result)
    return result


def _expected(expected_status: Any) -> set[int] | None:
    if expected_status is None:
        return None
    values = expected_status if isinstance(expected_status, (list, tuple, set)) else [expected_status]
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) and 100 <= v <= 599 for v in values):
        raise ValueError(f"expected_status: {expected_status!r} is not a status code (100-599) or a list of them.")
    return set(values)


def _encode(body: Any, headers: dict | None) -> tuple[bytes | None, dict[str, str]]:
    if headers is not None and not isinstance(headers, dict):
        raise ValueError(f"headers: expected an object of name: value, not {type(headers).__name__}.")
    headers = {str(name): str(value) for name, value in (headers or {}).items()}
    names = {name.lower() for name in headers}
    content_type = None
    if body is None:
        data = None
    elif isinstance(body, (dict, list)):
        data, content_type = json.dumps(body).encode(), "application/json"
    elif isinstance(body, str):
        # urllib would label any body form-encoded; plain text is the honest default.
        data, content_type = body.encode(), "text/plain; charset=utf-8"
    elif isinstance(body, bytes):
        data = body
    else:
        raise ValueError(f"body: expected an object (sent as JSON) or a string, not {type(body).__name__}.")
    if content_type and "content-type" not in names:
        headers["Content-Type"] = content_type
    if "user-agent" not in names:
        headers["User-Agent"] = USER_AGENT
    return data, headers


def _read_body(response: Any, result: dict) -> None:
    """Read the whole body to count it, keeping only the first BODY_LIMIT bytes."""
    if getattr(response, "fp", True) is None:  # an HTTPError raised without a body
        return
    kept = bytearray()
    size = 0
    while chunk := response.read(_CHUNK):
        size += len(chunk)
        if len(kept) < BODY_LIMIT:
            kept += chunk[: BODY_LIMIT - len(kept)]
    charset = response.headers.get_content_charset() or "utf-8"
    try:
        decoder = codecs.getincrementaldecoder(charset)(errors="replace")
    except LookupError:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    truncated = size > BODY_LIMIT
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
