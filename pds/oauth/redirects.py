"""Which redirect URIs a client may register: https, or plain http on a loopback host.

The owner's ``pds clients add`` (``pds.oauth.admin``) and RFC 7591 dynamic registration
(``pds.oauth.endpoints``) both ask :func:`redirect_uri_problem`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pds.net import loopback_host


def printable_ascii(text: str) -> bool:
    """Every character visible ASCII: no space, no control character, nothing beyond."""
    return all(" " < ch < "\x7f" for ch in text)


def redirect_uri_problem(uri: str) -> str | None:
    """Why a redirect URI cannot be registered, or None: https, or http on loopback; no
    fragment, no user name."""
    if not printable_ascii(uri):
        return "a redirect URI must be printable ASCII with no spaces or control characters"
    try:
        parts = urlsplit(uri)
    except ValueError:
        return f"redirect URI {uri!r} is not a URL"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"redirect URI {uri!r} must be an https URL"
    if parts.fragment or "#" in uri:
        return f"redirect URI {uri!r} must not have a fragment"
    if parts.username is not None or parts.password is not None:
        return f"redirect URI {uri!r} must not have a user name"
    if parts.scheme == "http" and not loopback_host(parts.hostname):
        return f"redirect URI {uri!r} uses http on a host that is not loopback; use https"
    return None
