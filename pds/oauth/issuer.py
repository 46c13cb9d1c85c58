"""The issuer URL pds announces, checked once at start: the origin clients reach the vault at.

Apart from ``pds.oauth.server`` (authlib's Flask integration): checking it needs no Flask,
and only ``pds.http`` imports the server.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from pds.errors import ConfigError
from pds.net import loopback_host


def check_issuer(issuer: str) -> str:
    """The issuer URL, or ConfigError: https, or plain http only on a loopback host.

    It is an identifier clients compare character for character (RFC 8414 §3.3), and the
    host every request must be addressed to (``pds.http.security.HostCheck``), so it must be
    written the one way a browser writes the origin: lower case, no spaces, the host in
    ASCII (an internationalised name in its ``xn--`` form), a port (if any) from 1 to 65535
    and not the scheme's default (a browser drops ``:443``; clients compare strings).
    pds refuses any other spelling rather than announce one it did not get. A trailing
    ``/`` is dropped.
    """
    hint = (
        "Set PDS_ISSUER to the https origin the server is reached at, e.g. https://pds.example.org."
    )
    if any(c.isspace() or not c.isprintable() for c in issuer):
        raise ConfigError(
            f"PDS_ISSUER {issuer!r} has spaces or control characters in it", hint=hint
        )
    try:
        parts = urlsplit(issuer)
        hostname = parts.hostname
    except ValueError:  # an unclosed or malformed [IPv6] host
        parts, hostname = urlsplit(""), None
    if parts.scheme not in ("http", "https") or not hostname:
        raise ConfigError(f"PDS_ISSUER {issuer!r} is not an http(s) URL", hint=hint)
    if parts.query or parts.fragment or "@" in parts.netloc or issuer.endswith(("?", "#")):
        raise ConfigError(
            f"PDS_ISSUER {issuer!r} must not have a query, fragment or user name", hint=hint
        )
    if parts.path not in ("", "/"):
        raise ConfigError(f"PDS_ISSUER {issuer!r} must be an origin, without a path", hint=hint)
    after_host = parts.netloc.rpartition("]")[2] if parts.netloc.startswith("[") else parts.netloc
    if after_host and after_host[0] != ":" and parts.netloc.startswith("["):
        raise ConfigError(f"PDS_ISSUER {issuer!r} is not an http(s) URL", hint=hint)
    colon, port = after_host.partition(":")[1:]
    if colon and not (re.fullmatch(r"[1-9][0-9]{0,4}", port) and int(port) <= 65535):
        raise ConfigError(
            f"PDS_ISSUER {issuer!r} has a port that is not a whole number from 1 to 65535",
            hint=hint,
        )
    if colon and int(port) == {"http": 80, "https": 443}.get(parts.scheme):
        plain = issuer.rstrip("/").removesuffix(f":{port}")
        raise ConfigError(
            f"PDS_ISSUER {issuer!r} must be written without the default port: {plain!r}",
            hint=hint,
        )
    if issuer != issuer.lower():
        raise ConfigError(
            f"PDS_ISSUER {issuer!r} must be written in lower case: {issuer.lower().rstrip('/')!r}",
            hint=hint,
        )
    if not _ascii_host(hostname):
        raise ConfigError(
            f"PDS_ISSUER {issuer!r} has a host name that is not a valid one",
            hint=hint + " A name is letters, digits, hyphens and dots (an internationalised "
            "name in its xn-- form); an IPv6 address is in brackets.",
        )
    if parts.scheme == "http" and not loopback_host(hostname):
        raise ConfigError(
            f"PDS_ISSUER {issuer!r} uses plain http on a host that is not loopback",
            hint=hint + " Plain http is allowed only on 127.0.0.1, ::1 or localhost.",
        )
    return issuer.rstrip("/")


def _ascii_host(hostname: str) -> bool:
    """A DNS name in ASCII (each label 1 to 63 letters, digits or hyphens), or an IP address."""
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        return len(hostname) <= 253 and all(
            re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", label)
            for label in hostname.split(".")
        )
    return True
