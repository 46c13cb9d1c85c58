"""The sharing-policy engine: load, validate, evaluate, explain (see docs/policies.md).

Pure core: :func:`decide` and :func:`explain_request` take a :class:`Request`, the rules and
``now``, and do no I/O. :mod:`pds.policyfiles.loader` is the only module that reads files.
"""

from __future__ import annotations

from pds.policy.engine import (
    CategoryVerdict,
    Explanation,
    FieldVerdict,
    RuleSet,
    decide,
    explain_request,
)
from pds.policy.errors import PolicyError, UnknownPolicy
from pds.policy.model import (
    ACTIONS,
    DEFAULT_MIN_BUCKET,
    NO_RULE,
    Constraints,
    Decision,
    Request,
)
from pds.policy.purposes import PURPOSES, Purpose, covered_by, label
from pds.policy.rules import (
    KINDS,
    AggregatesOnly,
    AllowedPurposes,
    DenyCategory,
    DenyPurpose,
    MaxGrant,
    MaxHistory,
    MinBucket,
    RateLimit,
    RedactFields,
    Rule,
)

__all__ = [
    "ACTIONS",
    "DEFAULT_MIN_BUCKET",
    "KINDS",
    "NO_RULE",
    "PURPOSES",
    "AggregatesOnly",
    "AllowedPurposes",
    "CategoryVerdict",
    "Constraints",
    "Decision",
    "DenyCategory",
    "DenyPurpose",
    "Explanation",
    "FieldVerdict",
    "MaxGrant",
    "MaxHistory",
    "MinBucket",
    "PolicyError",
    "Purpose",
    "RateLimit",
    "RedactFields",
    "Request",
    "Rule",
    "RuleSet",
    "UnknownPolicy",
    "covered_by",
    "decide",
    "explain_request",
    "label",
]
