"""A running vault's auditor API as a log source for ``pds audit verify --url``.

Uses only the standard library (``urllib``): the auditor's token goes in the Authorization
header, never in the URL. Entries are fetched in pages; each page's entries are the exact
canonical bytes the vault hashed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pds.errors import ConfigError, PdsError

PAGE = 1000
TIMEOUT = 30


class RemoteError(PdsError):
    code = "audit_remote_failed"
    status = 502


def read_token(path: Path | None) -> str:
    """The auditor's access token, from a file or PDS_AUDIT_TOKEN (never a command argument)."""
    if path is not None:
        try:
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the token file {path}: {exc}") from None
    else:
        token = os.environ.get("PDS_AUDIT_TOKEN", "").strip()
    if not token:
        raise ConfigError(
            "no auditor token",
            hint="Put the access token in a file and pass --token-file, or set PDS_AUDIT_TOKEN.",
        )
    return token


class RemoteSource:
    """``GET /audit/key``, ``/audit/checkpoint`` and ``/audit/entries`` of a running vault."""

    def __init__(self, base_url: str, token: str) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(f"{base_url!r} is not an http(s) URL of a pds vault")
        self.base = base_url.rstrip("/")
        self.token = token
        key = self._get_json("/audit/key")
        self.origin: str = key["origin"]
        self.verifier_key: str = key["verifier_key"]

    def _get(self, path: str) -> tuple[bytes, str]:
        req = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
            self.base + path, headers={"Authorization": f"Bearer {self.token}"}
        )
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:  # noqa: S310
                return resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            detail = ""
            with contextlib.suppress(ValueError, AttributeError):
                detail = json.loads(exc.read()).get("detail", "")
            raise RemoteError(
                f"{self.base}{path.split('?')[0]} answered {exc.code}"
                + (f": {detail}" if detail else ""),
                hint="Check the URL and that the token has the audit:read scope.",
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RemoteError(f"cannot reach {self.base}: {reason}") from None

    def _get_json(self, path: str) -> Any:
        body, _ = self._get(path)
        try:
            return json.loads(body)
        except ValueError:
            raise RemoteError(f"{self.base}{path} did not answer JSON") from None

    def signed_checkpoints(self) -> list[str]:
        body, _ = self._get("/audit/checkpoint")
        return [body.decode("utf-8", errors="replace")]

    def entries(self) -> Iterator[tuple[int, bytes, bytes | None]]:
        start = 0
        while True:
            page = self._get_json(f"/audit/entries?start={start}&end={start + PAGE}")
            items = page.get("entries", [])
            for item in items:
                yield item["index"], item["entry"].encode("utf-8"), base64.b64decode(item["leaf"])
            if len(items) < PAGE:
                return
            start += len(items)
