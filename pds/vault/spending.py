"""Spending categories: the category the owner's rules (``pds.policyfiles.spending``) give
each transaction, stored per record in ``spending`` (``pds.db.spending``).

A category's name is personal ("Gambling"), so it is sealed like a payload: AES-256-GCM
under the transactions category key, a fresh nonce, the record id and key version in the
associated data (a sealed name copied to another record does not open). Forgetting
transactions destroys that key and deletes the rows with their records.

Categories are given at import (:func:`at_import`: the new transactions of each batch, in
the import's own transaction, only when there are rules) and again on demand
(:func:`apply`: every transaction, in one transaction, replacing what was there). Editing
the rules changes nothing stored until they are applied; :func:`save_rules` writes the
owner's rules file with its access-log entry, all or nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pds import db as dbmod
from pds.db import spending as store
from pds.policyfiles import spending as rules_file
from pds.policyfiles.spending import SpendingRules
from pds.vault import records as recmod

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

    from pds.vault import Prepared, Vault

CATEGORY = "transactions"
BATCH = 1000


def _ad(record_id: int, key_version: int) -> bytes:
    return f"pds-spending:{record_id}:{key_version}".encode()


def seal_name(aead: AESGCM, record_id: int, key_version: int, name: str) -> tuple[bytes, bytes]:
    """(nonce, ciphertext‖tag) of one record's category name."""
    nonce = os.urandom(12)
    return nonce, aead.encrypt(nonce, name.encode("utf-8"), _ad(record_id, key_version))


def open_name(aead: AESGCM, record_id: int, key_version: int, nonce: bytes, ct: bytes) -> str:
    try:
        return aead.decrypt(nonce, ct, _ad(record_id, key_version)).decode("utf-8")
    except (InvalidTag, ValueError):
        raise recmod.SealError(
            f"the spending category of record {record_id} does not decrypt: it was altered or moved"
        ) from None


def at_import(
    vault: Vault, rules: SpendingRules
) -> Callable[[sqlite3.Connection, int, list[tuple[int, Prepared]]], None] | None:
    """The hook :meth:`pds.vault.Vault.ingest` calls for each batch it stored, giving its new
    transactions their categories; None when there are no rules (nothing to do)."""
    if not rules:
        return None

    def categorise(
        conn: sqlite3.Connection, source_id: int, batch: list[tuple[int, Prepared]]
    ) -> None:
        found = [
            (rid, name)
            for rid, item in batch
            if item.category == CATEGORY
            and (name := rules.category_for(item.payload or json.loads(item.plain))) is not None
        ]
        if not found:
            return
        new = store.stored_ids(conn, source_id, found[0][0], found[-1][0])
        version, aead = vault.keyring.category_aead(conn, CATEGORY)
        store.put(
            conn,
            [
                (rid, version, *seal_name(aead, rid, version, name))
                for rid, name in found
                if rid in new
            ],
        )

    return categorise


def apply(vault: Vault, rules: SpendingRules) -> dict[str, int]:
    """Give every transaction the category of the rules (none where no rule matches),
    replacing every stored one, in one transaction with a ``spending.apply`` access-log
    entry. Returns how many transactions there are and how many got a category."""
    conn = vault.conn
    total = given = 0
    with dbmod.transaction(conn):
        store.clear(conn)
        rows: list[tuple[int, int, bytes, bytes]] = []
        key: tuple[int, AESGCM] | None = None
        for rec in vault.records(CATEGORY):
            total += 1
            name = rules.category_for(rec.payload)
            if name is None:
                continue
            if key is None:
                key = vault.keyring.category_aead(conn, CATEGORY)
            version, aead = key
            rows.append((rec.id, version, *seal_name(aead, rec.id, version, name)))
            given += 1
            if len(rows) >= BATCH:
                store.put(conn, rows)
                rows = []
        store.put(conn, rows)
        vault.audit("spending.apply", actor="owner", category=CATEGORY, count=given)
    return {"transactions": total, "categorised": given}


def save_rules(vault: Vault, home: Path, text: str) -> SpendingRules:
    """Check ``text`` and make it the owner's rules file with a ``spending.rules`` access-log
    entry (how many rules; no rule text, category names are personal), all or nothing: the
    entry commits first, then the checked file, already written beside it, is renamed over
    the old one. A bad text (SpendingRulesError) or a vault that cannot take the entry
    (``VaultBusy`` while an import holds it) leaves the file unchanged."""
    with rules_file.saving(home, text) as rules, dbmod.transaction(vault.conn):
        vault.audit("spending.rules", actor="owner", count=len(rules.rules))
    return rules


def names(vault: Vault) -> dict[int, str]:
    """Every transaction's category name by record id (those with one)."""
    conn = vault.conn
    if not store.count(conn):
        return {}
    current, aead = vault.keyring.category_aead(conn, CATEGORY)
    out: dict[int, str] = {}
    for rid, version, nonce, ct in store.rows(conn):
        if version != current:
            raise recmod.SealError(
                f"the spending category of record {rid} is sealed under a key that no longer exists"
            )
        out[rid] = open_name(aead, rid, version, nonce, ct)
    return out
