"""Where a webhook may go, and the HTTP POST that goes there (SSRF guard).

A business chooses its webhook URL, so without a guard it could make the vault POST into
the owner's own network: the router's admin page, a cloud metadata service
(169.254.169.254), a database on localhost. So, unless the owner sets
``PDS_WEBHOOKS_ALLOW_PRIVATE=1``:

- the URL must be ``https``; every address its host resolves to must be a public unicast
  address (:func:`refusal`): not loopback, private, shared (CGNAT), link-local, multicast,
  reserved, unspecified or documentation, and not an IPv4-mapped, 6to4 or Teredo form of
  one. One bad address refuses the host, so a name cannot mix a public and a private answer.
- The check runs when the subscription is made and again before every send; the send then
  connects to the very address that was checked (:class:`_PinnedHTTPS`, SNI and ``Host``
  still the host name and the certificate still checked against it), so a DNS answer that
  changes between the check and the connection (DNS rebinding) cannot redirect it.

With the setting on (a test bench, or a receiver on the owner's own network), private
addresses are allowed, and plain ``http`` too, but only to loopback.

:func:`post` is built on ``http.client`` rather than urllib: it never follows a redirect,
never uses a proxy from the environment, gives up after :data:`TIMEOUT` seconds per socket
operation and :data:`DEADLINE` seconds in all (a watchdog shuts the socket), and reads at
most :data:`MAX_BODY` bytes of the receiver's answer.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
from typing import Any

TIMEOUT = 5.0
DEADLINE = 15.0
MAX_BODY = 4096
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_EXTRA_BLOCKED = tuple(
    ipaddress.ip_network(n)
    for n in ("100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "64:ff9b::/96", "64:ff9b:1::/48")
)


class Refused(ValueError):
    """A webhook destination pds will not contact; the message says why."""


def _embedded(ip: Address) -> list[Address]:
    """The address and any IPv4 address carried inside it (mapped, 6to4, Teredo)."""
    found: list[Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        for inner in (ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())):
            if inner is not None:
                found.append(inner)
    return found


def is_public(ip: Address) -> bool:
    """True for a global unicast address that carries no non-public IPv4 address."""
    for a in _embedded(ip):
        if (
            not a.is_global
            or a.is_multicast
            or a.is_reserved
            or a.is_unspecified
            or getattr(a, "is_site_local", False)  # fec0::/10, deprecated but routable inside
            or any(a in net for net in _EXTRA_BLOCKED)
        ):
            return False
    return True


def resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to (a literal address resolves to itself)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))


def refusal(host: str, addresses: list[Address]) -> str | None:
    """Why a host with these addresses is refused, or None."""
    for ip in addresses:
        if not is_public(ip):
            return (
                f"url's host {host} is {ip}, a private, loopback, link-local or reserved "
                "address; pds sends webhooks only to public hosts"
            )
    return None


def checked_address(host: str, port: int, *, allow_private: bool) -> Address:
    """The address to connect to: resolved now and checked; Refused if it may not be used.

    OSError when the host does not resolve."""
    addresses = resolve(host, port)
    if not addresses:
        raise OSError(f"{host} has no address")
    if not allow_private and (why := refusal(host, addresses)):
        raise Refused(why)
    return addresses[0]


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a checked address: TLS SNI, certificate name and Host stay the host name."""

    def __init__(self, host: str, port: int, address: Address, **kwargs: Any) -> None:
        super().__init__(host, port, context=ssl.create_default_context(), **kwargs)
        self._create_connection = _connect_to(address)


class _PinnedHTTP(http.client.HTTPConnection):
    """Plain HTTP to a checked address (loopback only, with the owner's setting on)."""

    def __init__(self, host: str, port: int, address: Address, **kwargs: Any) -> None:
        super().__init__(host, port, **kwargs)
        self._create_connection = _connect_to(address)


def _connect_to(address: Address) -> Any:
    def create(where: tuple[str, int], timeout: Any = None, source: Any = None) -> socket.socket:
        return socket.create_connection((str(address), where[1]), timeout, source)

    return create


def connection(
    scheme: str, host: str, port: int, *, allow_private: bool
) -> http.client.HTTPConnection:
    """A connection (not yet open) to the checked address of ``host``."""
    address = checked_address(host, port, allow_private=allow_private)
    if scheme == "https":
        return _PinnedHTTPS(host, port, address, timeout=TIMEOUT)
    if not (allow_private and address.is_loopback):
        raise Refused("url must use https")
    return _PinnedHTTP(host, port, address, timeout=TIMEOUT)


class _Watchdog:
    """Shuts the connection's socket after :data:`DEADLINE` seconds (then ``fired``)."""

    def __init__(self, conn: http.client.HTTPConnection) -> None:
        self.conn = conn
        self.fired = False
        self.timer = threading.Timer(DEADLINE, self._shut)
        self.timer.daemon = True

    def _shut(self) -> None:
        self.fired = True
        sock = self.conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def post(
    url: str, headers: dict[str, str], body: bytes, *, allow_private: bool = False
) -> tuple[int | None, str | None]:
    """POST ``body``; (HTTP status, None) or (status or None, what went wrong)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn = connection(parts.scheme, host, port, allow_private=allow_private)
    except Refused as exc:
        return None, f"refused: {exc}"[:200]
    except (OSError, ValueError) as exc:
        return None, f"not delivered: {exc}"[:200]
    watchdog = _Watchdog(conn)
    watchdog.timer.start()
    try:
        conn.request("POST", target, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read(MAX_BODY)  # at most this much of whatever the receiver says
        status = resp.status
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if watchdog.fired:
            return None, f"not delivered: no answer within {DEADLINE:g} seconds"
        return None, f"not delivered: {exc.__class__.__name__}: {exc}"[:200]
    finally:
        watchdog.timer.cancel()
        conn.close()
    if watchdog.fired:
        return None, f"not delivered: no answer within {DEADLINE:g} seconds"
    if 200 <= status < 300:
        return status, None
    return status, f"HTTP {status}"
