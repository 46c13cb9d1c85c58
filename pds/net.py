"""Small facts about hosts, shared by the issuer check and the webhook URL rules."""

from __future__ import annotations

import ipaddress


def loopback_host(host: str) -> bool:
    """True for ``localhost`` and any loopback address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
