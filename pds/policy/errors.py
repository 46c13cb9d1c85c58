"""The policy engine's errors (kept here, beside the engine, not in pds.errors)."""

from __future__ import annotations

from pds.errors import PdsError


class PolicyError(PdsError, ValueError):
    """A policy file that cannot be used; the message names the file, the rule and the field.

    A bad file is refused whole: none of its rules is used.
    """

    code = "policy_error"
    status = 422
    hint = "Fix the file and run `pds policy check FILE`; the policies in force stay as they were."


class UnknownPolicy(PdsError, LookupError):
    code = "unknown_policy"
    status = 404
    hint = "`pds policy list` shows the policy names."
