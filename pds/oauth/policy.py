"""The owner's sharing policies applied to grants: on the consent page and on refresh.

:func:`apply` asks the policy engine (``pds.policy.explain_request``) about every item of an
:class:`~pds.oauth.access.Access` (one question per category and action) and returns what
today's policies allow within it: refused items dropped (with the reason), withheld fields
removed, the start of the time range moved up, the grant length capped. The consent page
shows it and stores ``approved ∩ allowed``; a refresh narrows (or revokes) a grant that is
wider than it (:func:`enforce_on_refresh`). The API asks ``pds.policy.decide`` on every
request (``pds.http.api.policy.enforce``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import TYPE_CHECKING

from pds import clock
from pds.oauth import store
from pds.oauth.access import Access, CategoryAccess
from pds.policy import Request, RuleSet, explain_request
from pds.vocabulary import ACTIONS, category_fields

if TYPE_CHECKING:
    from pds.vault import Vault

NOTHING_LEFT = "today's policies allow none of this grant"


@dataclass
class PolicyView:
    """What the owner's policies make of an Access.

    ``access``: the widest access they allow within it (None: nothing at all);
    ``refusals``: item key (``read:transactions``) -> the policy's reason;
    ``withheld``: category -> field -> reason; ``time_notes``: category -> reason the time
    range starts later; ``expires_reason``: why the grant is shorter; ``rule_ids`` and
    ``reasons``: every rule that refused or narrowed something, in order, without repeats.
    """

    access: Access | None
    refusals: dict[str, str] = field(default_factory=dict)
    withheld: dict[str, dict[str, str]] = field(default_factory=dict)
    time_notes: dict[str, str] = field(default_factory=dict)
    expires_reason: str | None = None
    rule_ids: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    @property
    def refused_entirely(self) -> bool:
        """Nothing of the request can ever be granted: answer ``access_denied``."""
        return self.access is None

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons) if self.reasons else NOTHING_LEFT

    def _said(self, rule_ids: tuple[str, ...], reason: str | None) -> None:
        for rid in rule_ids:
            if rid not in self.rule_ids:
                self.rule_ids.append(rid)
        for part in (reason or "").split("; "):
            if part and part not in self.reasons:
                self.reasons.append(part)


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def apply(client_id: str, access: Access, rules: RuleSet, now: datetime) -> PolicyView:
    """What today's policies allow within ``access`` (pure: no I/O)."""
    view = PolicyView(None)
    cats: dict[str, CategoryAccess] = {}
    expires_in = access.expires_in
    for name, whole in access.categories.items():
        got: CategoryAccess | None = None
        for c in whole.parts():  # read (and write), then totals with limits of their own
            kept: set[str] = set()
            fields = c.fields
            time_from = c.time_from
            for action in ACTIONS:
                if action not in c.actions:
                    continue
                req = Request(
                    client_id,
                    action,
                    (name,),
                    c.fields,
                    access.purpose,
                    _day(c.time_from),
                    _day(c.time_to),
                    access.expires_in,
                )
                exp = explain_request(req, rules, now)
                item = exp.items[0]
                if not item.allowed:
                    view.refusals[f"{action}:{name}"] = item.reason
                    view._said(item.rule_ids, item.reason)
                    continue
                kept.add(action)
                if exp.expires_in is not None and exp.expires_in < expires_in:
                    expires_in = exp.expires_in
                    view.expires_reason = exp.expires_reason
                    grant_rules = (
                        r for r in exp.decision.rule_ids if _kind(rules, r) == "max-grant"
                    )
                    view._said(tuple(grant_rules), exp.expires_reason)
                if action == "write":
                    continue
                hidden = item.constraints.redacted_fields(name)
                if hidden:
                    known = fields if fields is not None else category_fields(name)
                    if known is not None and not hidden.isdisjoint(known):
                        fields = tuple(f for f in known if f not in hidden)
                    why = view.withheld.setdefault(name, {})
                    for f in item.fields:
                        if not f.allowed and f.reason:
                            why.setdefault(f.name, f.reason)
                            view._said((), f.reason)
                    view._said(tuple(r for r in item.rule_ids if _is_redact(rules, r)), None)
                if item.since is not None and (
                    time_from is None or item.since.isoformat() > time_from
                ):
                    time_from = item.since.isoformat()
                    if item.time_reason:
                        view.time_notes[name] = item.time_reason
                        view._said(tuple(r for r in item.rule_ids if _is_history(rules, r)), None)
                        view._said((), item.time_reason)
            if kept:
                part = CategoryAccess(name, frozenset(kept), fields, time_from, c.time_to)
                got = part if got is None else got.merged(part)
        if got is not None:
            cats[name] = got
    allowed = replace(access, categories=cats, expires_in=expires_in)
    view.access = None if allowed.empty else allowed
    return view


def _kind(rules: RuleSet, rule_id: str) -> str:
    for r in rules.rules:
        if r.id == rule_id:
            return r.kind
    return ""


def _is_redact(rules: RuleSet, rule_id: str) -> bool:
    return _kind(rules, rule_id) == "redact-fields"


def _is_history(rules: RuleSet, rule_id: str) -> bool:
    return _kind(rules, rule_id) == "max-history"


class GrantRevokedByPolicy(Exception):
    """Raised by :func:`enforce_on_refresh` when nothing of the grant remains."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _created_ts(grant: store.Grant) -> int:
    return clock.epoch(grant.created_at)


def enforce_on_refresh(
    vault: Vault, grant: store.Grant, rules: RuleSet, now: datetime
) -> store.Grant:
    """The grant as today's policies allow it: unchanged, narrowed (stored, ``grant.narrow``
    audited with the rules) or revoked (``grant.revoke``; raises GrantRevokedByPolicy).

    Runs inside the caller's write transaction.
    """
    view = apply(grant.client_id, grant.access, rules, now)
    conn: sqlite3.Connection = vault.conn
    actor = f"client:{grant.client_id}"
    expires_at = grant.expires_at
    if view.access is not None:
        expires_at = min(expires_at, _created_ts(grant) + view.access.expires_in)
    if view.access is None or expires_at <= int(now.timestamp()):
        reason = view.reason
        from pds.oauth import receipts

        receipts.revoke(vault, grant.id, f"policy: {reason}")
        vault.audit(
            "grant.revoke",
            actor=actor,
            decision="refused",
            client_id=grant.client_id,
            grant_id=grant.id,
            purpose=grant.purpose,
            rule_ids=view.rule_ids,
            reason=reason,
        )
        raise GrantRevokedByPolicy(reason)
    if view.access == grant.access and expires_at == grant.expires_at:
        return grant
    narrowed = store.update_grant(conn, grant.id, view.access, expires_at)
    from pds.oauth import receipts

    receipts.issue(vault, narrowed, "narrow")
    vault.audit(
        "grant.narrow",
        actor=actor,
        client_id=grant.client_id,
        grant_id=grant.id,
        purpose=grant.purpose,
        rule_ids=view.rule_ids,
        reason=view.reason,
        detail={"scope": narrowed.scope, "was": grant.scope},
    )
    return narrowed
