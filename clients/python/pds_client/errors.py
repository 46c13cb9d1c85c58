"""The client's exceptions: one hierarchy, carrying what the vault said.

- :class:`ApiError`: an ``application/problem+json`` answer of the records API or the
  auditor API (RFC 9457: ``type``, ``title``, ``detail``, ``status``, and pds's ``hint``).
- :class:`OAuthError`: an RFC 6749 error of the token, revocation or registration
  endpoints, or of an authorization response (``error``, ``error_description``).
- :class:`DiscoveryError`, :class:`WebhookError`, :class:`ReceiptError` and
  :class:`VerifyError`: checks made here, in the client, that failed.

Everything is a :class:`PdsClientError`, whose ``str()`` is one sentence for a person.
Only the standard library is used, so the standalone verifier can import it.
"""

from __future__ import annotations

from typing import Any


class PdsClientError(Exception):
    """Anything that went wrong talking to a vault or checking what it sent."""

    status: int | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ApiError(PdsClientError):
    """A problem+json answer (RFC 9457): ``code`` is the last part of ``type``
    (``insufficient_scope``, ``invalid_token``, ``not_found``, ...)."""

    def __init__(
        self,
        status: int,
        type: str | None = None,  # RFC 9457 names it so
        title: str | None = None,
        detail: str | None = None,
        hint: str | None = None,
        instance: str | None = None,
    ) -> None:
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.hint = hint
        self.instance = instance
        self.code = (type or "").rsplit("/", 1)[-1] or None
        words = detail or title or "no explanation given"
        super().__init__(f"{status} {self.code or 'error'}: {words}")

    @classmethod
    def from_body(cls, status: int, body: Any) -> ApiError:
        """The error for an answer's status and parsed JSON body (anything: only a problem
        object's string members are taken)."""
        body = body if isinstance(body, dict) else {}

        def text(name: str) -> str | None:
            value = body.get(name)
            return value if isinstance(value, str) else None

        return cls(
            status,
            type=text("type"),
            title=text("title"),
            detail=text("detail"),
            hint=text("hint"),
            instance=text("instance"),
        )


class OAuthError(PdsClientError):
    """An RFC 6749 error: ``error`` (``invalid_grant``, ``access_denied``, ...) and
    ``error_description``; ``status`` is the HTTP status where there was one."""

    def __init__(
        self, error: str, error_description: str | None = None, status: int | None = None
    ) -> None:
        self.error = error
        self.error_description = error_description
        self.status = status
        super().__init__(f"{error}: {error_description}" if error_description else error)


class AuthorizationError(OAuthError):
    """The authorization response (the redirect back) is an error, or fails a check here:
    wrong ``iss`` (RFC 9207), wrong ``state``, no code."""


class DiscoveryError(PdsClientError):
    """The vault's RFC 8414 metadata is missing, malformed or for another issuer."""


class WebhookError(PdsClientError):
    """A webhook that does not verify (Standard Webhooks): missing headers, a signature that
    does not match, or a timestamp outside the tolerance."""


class ReceiptError(PdsClientError):
    """A consent receipt that does not verify: malformed, another algorithm or key, a
    signature that does not match, or claims that are not a pds consent receipt."""


class VerifyError(PdsClientError):
    """An access log, checkpoint or proof that does not verify."""
