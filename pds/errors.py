"""PdsError and its subclasses: errors are data (code, message, hint, HTTP status).

One place turns them into RFC 9457 problem+json (``to_problem``) and into the CLI's
one-line ``Error: ...`` (``pds.cli``). Subclasses also inherit the matching builtin
where one fits, so callers may catch either.
"""

from __future__ import annotations

from typing import Any


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


class NotFound(PdsError, LookupError):
    code = "not_found"
    status = 404


class BackupError(PdsError, OSError):
    code = "backup_error"
    status = 500
