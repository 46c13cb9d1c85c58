"""The auditor page's "Verify now": three checks run by the vault, reported in words.

1. The newest signed checkpoint (signed now if the log grew): its Ed25519 signature under
   the log's verifier key, and that its root is the root of the stored tree of its size.
2. Consistency (RFC 9162) from the last checkpoint this auditor verified here — remembered
   in the log itself, as the ``detail`` of their last ``auditor.verify`` entry (size and
   root) — to the newest one: the log only grew since, nothing was rewritten.
3. Inclusion (RFC 9162) of an entry the auditor chose: its leaf hash, recomputed from the
   entry's bytes, and its proof lead to the newest checkpoint's root.

The vault checks itself here; an auditor who trusts nothing on the server checks the bundle
(``pds-verify bundle``) with the key the owner gave them, and keeps the signed notes.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask_babel import gettext, ngettext

from pds.audit import checkpoint as cpmod
from pds.audit import merkle
from pds.db import audit as db_audit

if TYPE_CHECKING:
    from pds.vault import Vault

ACTION = "auditor.verify"


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``ok`` True (holds), False (fails) or None (nothing to check)."""

    title: str
    ok: bool | None
    text: str


@dataclass(frozen=True)
class Outcome:
    checks: list[Check]
    size: int
    root: str
    note: str
    remember: dict[str, Any]
    """The ``detail`` of the ``auditor.verify`` entry that records this check."""

    @property
    def ok(self) -> bool:
        return all(c.ok is not False for c in self.checks)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def last_seen(vault: Vault, client_id: str) -> dict[str, Any] | None:
    """The checkpoint (``size``, ``root``, ``time``) this auditor last verified, if any."""
    text = db_audit.newest_of(vault.conn, client_id, ACTION, "verified")
    if text is None:
        return None
    entry = json.loads(text)
    return {**entry["detail"], "time": entry["time"]}


def _signed(vault: Vault) -> tuple[Check, cpmod.Checkpoint | None, str]:
    stored = vault.log.checkpoint()
    key = vault.log_verifier_key()
    title = gettext("Signed checkpoint")
    try:
        name, public = cpmod.parse_verifier_key(key)
        cp = cpmod.open_checkpoint(stored.note, name, public, vault.log.origin)
    except cpmod.CheckpointError as exc:
        text = gettext("The newest checkpoint does NOT verify: %(problem)s.", problem=exc.message)
        return Check(title, False, text), None, stored.note
    if cp.root != vault.log.root(cp.size):
        text = gettext(
            "The newest checkpoint (%(size)s entries) is validly signed, but its root %(root)s "
            "is NOT the root of the stored log of that size.",
            size=cp.size,
            root=b64(cp.root),
        )
        return Check(title, False, text), None, stored.note
    text = gettext(
        "The newest checkpoint is validly signed with the log's key %(key)s: tree size "
        "%(size)s, root %(root)s, the root of the stored log of that size.",
        key=key,
        size=cp.size,
        root=b64(cp.root),
    )
    return Check(title, True, text), cp, stored.note


def _consistency(vault: Vault, seen: dict[str, Any] | None, cp: cpmod.Checkpoint) -> Check:
    title = gettext("Consistency with what you saw")
    if seen is None:
        return Check(
            title,
            None,
            gettext(
                "This is your first check here: there is no earlier checkpoint to compare "
                "with. This one (tree size %(size)s, root %(root)s) is remembered for your "
                "next check.",
                size=cp.size,
                root=b64(cp.root),
            ),
        )
    first, first_root, day = seen["size"], base64.b64decode(seen["root"]), seen["time"][:10]
    if first > cp.size:
        text = gettext(
            "The log now has %(size)s entries, fewer than the %(seen)s you saw on %(day)s: "
            "entries were removed.",
            size=cp.size,
            seen=first,
            day=day,
        )
        return Check(title, False, text)
    proof = vault.log.consistency_proof(first, cp.size) if 0 < first < cp.size else []
    hashes = ngettext("%(num)s hash", "%(num)s hashes", len(proof))
    words = {
        "size": cp.size,
        "root": b64(cp.root),
        "seen": first,
        "seen_root": seen["root"],
        "day": day,
        "hashes": hashes,
    }
    if merkle.verify_consistency(first, cp.size, first_root, cp.root, proof):
        text = gettext(
            "The log of %(size)s entries (root %(root)s) extends the one of %(seen)s entries "
            "you saw on %(day)s (root %(seen_root)s): the consistency proof of %(hashes)s "
            "holds. Nothing you saw was changed or removed.",
            **words,
        )
        return Check(title, True, text)
    text = gettext(
        "The log of %(size)s entries (root %(root)s) does NOT extend the one of %(seen)s "
        "entries you saw on %(day)s (root %(seen_root)s): the consistency proof of %(hashes)s "
        "fails. The log was rewritten since.",
        **words,
    )
    return Check(title, False, text)


def _inclusion(vault: Vault, index: int | None, cp: cpmod.Checkpoint) -> Check:
    title = gettext("Inclusion of an entry")
    if index is None:
        return Check(title, None, gettext("No entry was chosen."))
    if not 0 <= index < cp.size:
        text = gettext(
            "There is no entry %(index)s in the signed tree of %(size)s entries (they are "
            "numbered from 0).",
            index=index,
            size=cp.size,
        )
        return Check(title, None, text)
    [(_, entry, _)] = vault.log.entries(index, index + 1)
    leaf = merkle.leaf_hash(entry.encode("utf-8"))
    proof = vault.log.inclusion_proof(index, cp.size)
    doc = json.loads(entry)
    words = {
        "index": index,
        "action": doc.get("action", "?"),
        "time": doc.get("time", "?"),
        "size": cp.size,
        "leaf": b64(leaf),
        "root": b64(cp.root),
        "hashes": ngettext("%(num)s hash", "%(num)s hashes", len(proof)),
    }
    if merkle.verify_inclusion(leaf, index, cp.size, proof, cp.root):
        text = gettext(
            "Entry %(index)s (%(action)s at %(time)s) is in the signed tree of %(size)s "
            "entries: its leaf hash %(leaf)s and the inclusion proof of %(hashes)s lead to "
            "the root %(root)s.",
            **words,
        )
        return Check(title, True, text)
    text = gettext(
        "Entry %(index)s (%(action)s at %(time)s) is NOT in the signed tree of %(size)s "
        "entries as it reads now: its leaf hash %(leaf)s and the inclusion proof of "
        "%(hashes)s do not lead to the root %(root)s.",
        **words,
    )
    return Check(title, False, text)


def verify_now(vault: Vault, client_id: str, index: int | None) -> Outcome:
    """Run the three checks for the auditor ``client_id`` (entry ``index`` for inclusion)."""
    signed, cp, note = _signed(vault)
    if cp is None:
        return Outcome([signed], 0, "", note, {"verified": False})
    seen = last_seen(vault, client_id)
    checks = [signed, _consistency(vault, seen, cp), _inclusion(vault, index, cp)]
    verified = checks[1].ok is not False
    remember = {"size": cp.size, "root": b64(cp.root), "verified": verified}
    if index is not None and 0 <= index < cp.size:
        remember["entry"] = index
    return Outcome(checks, cp.size, b64(cp.root), note, remember)
