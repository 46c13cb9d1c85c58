"""PdsError and its subclasses: errors are data (code, message, hint, HTTP status).

One place turns them into RFC 9457 problem+json (``to_problem``) and into the CLI's
one-line ``Error: ...`` (``pds.cli``). Subclasses also inherit the matching builtin
where one fits, so callers may catch either.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from pds.words import plural


class PdsError(Exception):
    """Root of every error a person can cause. ``message`` says what was wrong."""

    code = "pds_error"
    status = 400
    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        """The RFC 9457 problem details object for this error."""
        problem: dict[str, Any] = {
            "type": f"https://pds.invalid/problems/{self.code}",
            "title": self.title(),
            "status": self.status,
            "detail": self.message,
        }
        if self.hint:
            problem["hint"] = self.hint
        if instance:
            problem["instance"] = instance
        return problem

    @classmethod
    def title(cls) -> str:
        return cls.code.replace("_", " ").capitalize()

    def headers(self) -> dict[str, str]:
        """Extra HTTP response headers for this error (e.g. ``WWW-Authenticate``)."""
        return {}


class ConfigError(PdsError, ValueError):
    code = "config_error"
    status = 500


class VaultNotFound(PdsError, FileNotFoundError):
    code = "vault_not_found"
    status = 500
    hint = "Create one with `pds init`, or point PDS_HOME at an existing vault."


class VaultExists(PdsError, FileExistsError):
    code = "vault_exists"
    status = 409


class VaultLocked(PdsError, PermissionError):
    """Wrong passphrase or a damaged key: deliberately one error, one message."""

    code = "vault_locked"
    status = 401


class SchemaTooNew(PdsError, RuntimeError):
    code = "schema_too_new"
    status = 500


class VaultBusy(PdsError, sqlite3.OperationalError):
    """Another write holds the vault (an import holds it from its first record to its
    last) longer than a writer waits: nothing of this write was done. Raised in place of
    SQLite's "database is locked" (``pds.db.locking``); HTTP 503 with ``Retry-After``.

    Also an ``sqlite3.OperationalError`` whose ``sqlite_errorcode`` is ``SQLITE_BUSY``, so
    code that retries on SQLite's own error retries on this one too."""

    code = "vault_busy"
    status = 503
    hint = "Try again when it is done."
    retry_after = 30
    MESSAGE = "the vault is busy: another write to it (an import?) is under way"

    def __init__(self, message: str = MESSAGE, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.sqlite_errorcode = sqlite3.SQLITE_BUSY
        self.sqlite_errorname = "SQLITE_BUSY"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class ImportFormatError(PdsError, ValueError):
    """A file a connector cannot read; the message names the file and the line or element."""

    code = "import_format_error"
    status = 422


class UnknownConnector(PdsError, LookupError):
    code = "unknown_connector"
    status = 422


class ValidationError(PdsError, ValueError):
    code = "validation_error"
    status = 422


class IdempotencyKeyReused(PdsError, ValueError):
    """An ``Idempotency-Key`` sent again with another record than its first (HTTP 422)."""

    code = "idempotency_key_reused"
    status = 422
    hint = (
        "Send a new Idempotency-Key for a new record; resend the first record unchanged to "
        "get its answer again."
    )

    def __init__(self, key: str) -> None:
        super().__init__(
            f'the Idempotency-Key "{key}" was already used with a different record; '
            "nothing was stored"
        )


class NotFound(PdsError, LookupError):
    code = "not_found"
    status = 404


class BackupError(PdsError, OSError):
    code = "backup_error"
    status = 500


# -- bearer-token API errors (RFC 6750 codes; sent as problem+json with WWW-Authenticate) ----


class InvalidRequest(PdsError, ValueError):
    """A malformed API request (e.g. an access token in the URL)."""

    code = "invalid_request"
    status = 400

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": f'Bearer error="{self.code}"'}


class InvalidToken(PdsError, PermissionError):
    """No access token, or one that is unknown, expired or revoked (HTTP 401)."""

    code = "invalid_token"
    status = 401
    hint = "Get a new access token (refresh it, or ask the owner again)."

    def __init__(self, message: str, *, hint: str | None = None, missing: bool = False) -> None:
        super().__init__(message, hint=hint)
        self.missing = missing

    def headers(self) -> dict[str, str]:
        if self.missing:  # RFC 6750 §3.1: no error code when no credentials were sent
            return {"WWW-Authenticate": 'Bearer realm="pds"'}
        return {"WWW-Authenticate": f'Bearer realm="pds", error="{self.code}"'}


class InsufficientScope(PdsError, PermissionError):
    """The token is valid but its grant does not cover the request (HTTP 403)."""

    code = "insufficient_scope"
    status = 403
    hint = "Ask the owner for a grant that covers it."

    def __init__(self, message: str, *, scope: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.scope = scope

    def headers(self) -> dict[str, str]:
        return {
            "WWW-Authenticate": f'Bearer realm="pds", error="{self.code}", scope="{self.scope}"'
        }


class BadRequest(PdsError, ValueError):
    """A malformed query parameter or body in an API call (HTTP 400)."""

    code = "bad_request"
    status = 400


class PolicyRefused(PdsError, PermissionError):
    """The owner's sharing policies refuse this request, whatever the grant says (HTTP 403).

    ``decision`` is the policy engine's ``Decision`` (its rules and reason go to the log).
    """

    code = "policy_refused"
    status = 403
    hint = "The owner's policies decide this; the grant cannot widen them."

    def __init__(self, decision: Any, *, hint: str | None = None) -> None:
        super().__init__(f"refused by the owner's policies: {decision.reason}", hint=hint)
        self.decision = decision


class RateLimited(PolicyRefused):
    """The owner's rate-limit policy: no more requests from this business today (HTTP 429)."""

    code = "rate_limited"
    status = 429
    hint = "Try again tomorrow (UTC)."

    def __init__(self, decision: Any, retry_after: int) -> None:
        super().__init__(decision)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class TooManyRefusals(PdsError, PermissionError):
    """Too many API calls without a valid access token from one address (HTTP 429); the
    further ones are refused without an access-log entry until the window ends."""

    code = "too_many_refusals"
    status = 429
    hint = "Send a valid access token; calls with one are not affected."

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "too many calls without a valid access token from this address; "
            f"try again in {plural(retry_after, 'second')}"
        )
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}
