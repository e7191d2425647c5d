"""Which addresses tempora.http_request may reach: public ones, and hosts the allow-list names.

The rule is applied to the addresses a host resolves to, at every hop of a request, and
fetch.py connects to exactly the addresses that were checked: a host spelled `127.1`,
`0x7f.1`, `2130706433`, `[::ffff:127.0.0.1]` or `ｌｏｃａｌｈｏｓｔ` ends up as the address it
means, and a DNS answer that changes between the check and the connection is never asked
for again. Only the standard library and gettext at import: the demo project's settings use
`allow_entry` and `domain_name` to check their environment at start-up (so their messages,
for operators, are not translated: gettext cannot run before the apps are loaded).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from urllib.parse import quote, urlsplit

from django.utils.translation import gettext

# Cloud metadata services answer credentials to whoever asks from inside the machine. Most
# are link-local or private anyway; 168.63.129.16 (Azure) and 192.0.0.192 (Oracle) are not.
METADATA = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",
        "169.254.170.2",
        "169.254.169.253",
        "fd00:ec2::254",
        "fd00:ec2::23",
        "100.100.100.200",
        "168.63.129.16",
        "192.0.0.192",
    )
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: another customer's network
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: a NAT64 inside a site
_LABEL = r"(?!-)[a-z0-9_-]{1,63}(?<!-)"
_NAME = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")
DEFAULT_PORTS = {"http": 80, "https": 443}

Resolver = Callable[..., list]


class Unreachable(ValueError):
    """This host or address may not be reached; the message says why (fetch.py names the field)."""


# Names and hosts -------------------------------------------------------------------------------


def domain_name(text: str) -> str:
    """`text` as a lowercase ASCII DNS name, or ValueError: `Exämple.COM.` -> `xn--exmple-cua.com`.

    IDNA's nameprep folds full-width and other compatibility forms, as the resolver would.
    """
    name = text.strip().rstrip(".") if isinstance(text, str) else ""
    try:
        name = name.encode("idna").decode("ascii").lower()
    except UnicodeError:
        name = ""
    if len(name) > 253 or not _NAME.match(name):
        raise ValueError(f"{text!r} is not a host or domain name.")
    return name


def host(text: str) -> str:
    """A URL's host as one spelling: an IP address in its canonical form (`::1`), else a DNS name."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return domain_name(text)


def _is_localhost(name: str) -> bool:
    # RFC 6761: localhost and every name under it mean this machine, whatever DNS says.
    return name == "localhost" or name.endswith(".localhost")


@dataclass(frozen=True)
class Target:
    """One request's destination: `url` as given, the rest normalised."""

    url: str
    scheme: str
    host: str
    port: int
    path: str  # what goes on the request line: path and query, percent-encoded

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port


def target(url: str) -> Target:
    """Parse an http(s) URL, or raise Unreachable: `http://Example.com./a b?q=1` -> example.com:80 `/a%20b?q=1`."""
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
    except ValueError:  # e.g. "http://[::1": an unclosed bracket
        parts = None
    if parts is None or parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise Unreachable(gettext("%(url)r is not an http:// or https:// URL with a host.") % {"url": url})
    if parts.username is not None or parts.password is not None:
        # http://allowed.example@127.0.0.1/ reads as "allowed.example" to a person.
        raise Unreachable(
            gettext("%(url)r carries a user name or password; send credentials in a header instead.") % {"url": url}
        )
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
        name = host(parts.hostname)
        if "[" in parts.netloc and ":" not in name:
            raise ValueError  # brackets hold an IPv6 address, nothing else
    except ValueError:
        raise Unreachable(gettext("%(url)r has no valid host and port.") % {"url": url}) from None
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=~")
    if parts.query:
        path += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=~?")
    return Target(url=url, scheme=parts.scheme, host=name, port=port, path=path)


# The allow-list --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Allowed:
    host: str
    port: int | None  # None: every port


def allow_entry(text: str) -> Allowed:
    """One TEMPORA_HTTP_ALLOW_HOSTS entry: `api.example.com`, `api.example.com:8443`, `10.0.0.5`, `[::1]:8080`."""
    entry = text.strip() if isinstance(text, str) else ""
    match = re.fullmatch(r"\[([^\]]+)\](?::(\d{1,5}))?", entry)
    if match:
        name, port = match[1], match[2]
    elif entry.count(":") > 1:
        name, port = entry, None  # a bare IPv6 address
    else:
        name, colon, port = entry.partition(":")
        port = port if colon else None
    try:
        if match and not isinstance(ipaddress.ip_address(name), IPv6Address):
            raise ValueError
        number = int(port) if port else None
        if port is not None and not (port.isdigit() and 0 < number < 65536):
            raise ValueError
        return Allowed(host(name), number)
    except ValueError:
        raise ValueError(f"{text!r} is not a host name, an IP address or host:port.") from None


def allowed(destination: Target, entries: Iterable[Allowed]) -> bool:
    return any(e.host == destination.host and e.port in (None, destination.port) for e in entries)


# Addresses -----------------------------------------------------------------------------------


def _embedded_ipv4(ip: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, 6to4, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or ip in _NAT64_LOCAL:
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # ::a.b.c.d, the deprecated IPv4-compatible form
        return IPv4Address(int(ip))
    return None


def refusal(ip: IPv4Address | IPv6Address) -> str | None:
    """Why `ip` may not be reached ("a loopback address"), or None for a public address."""
    if isinstance(ip, IPv6Address):
        if ip.scope_id:
            ip = IPv6Address(str(ip).split("%")[0])
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            reason = refusal(embedded)
            if reason or ip.ipv4_mapped is not None:  # a mapped address reaches the IPv4 one itself
                return reason
            if ip in _NAT64_LOCAL:
                return gettext("a private address")
    if ip in METADATA:
        return gettext("a cloud metadata address")
    if ip.is_loopback:
        return gettext("a loopback address")
    if ip.is_unspecified:
        return gettext("the unspecified address")
    if ip.is_link_local:
        return gettext("a link-local address")
    if ip.is_multicast:
        return gettext("a multicast address")
    if ip in _SHARED:
        return gettext("a shared (carrier-grade NAT) address")
    if ip.version == 4 and ip.is_reserved:
        return gettext("a reserved address")
    if ip.is_private:
        return gettext("a private address")
    if ip.is_reserved:
        return gettext("a reserved address")
    if ip.version == 6 and ip.is_site_local:
        return gettext("a site-local address")
    if not ip.is_global:
        return gettext("a private address")
    return None


def _address(info: tuple) -> IPv4Address | IPv6Address:
    return ipaddress.ip_address(info[4][0].split("%")[0])


def _refuse(text: str) -> Unreachable:
    return Unreachable(
        gettext("%(what)s; Tempora reaches only public addresses unless TEMPORA_HTTP_ALLOW_HOSTS names the host.")
        % {"what": text}
    )


def _numeric(destination: Target) -> list | None:
    """The addresses a host written as a number means (`127.1`, `0x7f000001`, `::1`), with no lookup."""
    try:
        return socket.getaddrinfo(
            destination.host, destination.port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST
        )
    except socket.gaierror:
        return None


def _check(destination: Target, infos: list, *, resolved: bool) -> list:
    for info in infos:
        reason = refusal(_address(info))
        if reason is None:
            continue
        if resolved:
            text = gettext("%(host)s resolves to %(address)s, %(reason)s")
        else:
            text = gettext("%(host)s is %(reason)s")
        raise _refuse(text % {"host": destination.host, "address": _address(info), "reason": reason})
    return infos


def _literal(destination: Target) -> list | None:
    """Refuse what the URL alone shows (a localhost name, a non-public address written as a
    number); the checked addresses of a numeric host, None for a name to resolve."""
    if _is_localhost(destination.host):
        raise _refuse(gettext("%(host)s is a localhost name") % {"host": destination.host})
    try:
        reason = refusal(ipaddress.ip_address(destination.host))
    except ValueError:
        reason = None  # not in canonical form: getaddrinfo below reads 127.1 and friends
    if reason:  # also an address getaddrinfo cannot read, such as fe80::1%25eth0
        raise _refuse(gettext("%(host)s is %(reason)s") % {"host": destination.host, "reason": reason})
    infos = _numeric(destination)
    return None if infos is None else _check(destination, infos, resolved=False)


def check_literal(destination: Target, entries: Iterable[Allowed]) -> None:
    """The check a job's arguments get when it is saved: names are resolved only when it runs
    (DNS answers change), so a save never waits on DNS."""
    if not allowed(destination, entries):
        _literal(destination)


def addresses(destination: Target, entries: Iterable[Allowed], resolve: Resolver = socket.getaddrinfo) -> list:
    """The addresses to connect to (getaddrinfo's tuples), every one checked; Unreachable if any is refused.

    socket.gaierror when the name does not resolve.
    """
    if allowed(destination, entries):
        return resolve(destination.host, destination.port, type=socket.SOCK_STREAM)
    infos = _literal(destination)
    if infos is not None:
        return infos
    return _check(destination, resolve(destination.host, destination.port, type=socket.SOCK_STREAM), resolved=True)
