"""Forget a category for good (crypto-shredding), GDPR Art. 17 applied to the owner's vault.

Each category's data key is HKDF(master key, its random salt); destroying the salt destroys
the key, so no copy of a ciphertext made afterwards (a backup, a stolen disk) can be opened,
even with the master key. :meth:`pds.vault.Vault.forget_category` destroys the salt, deletes
the records (and files left with none) and logs ``category.forget`` in one transaction;
this module checks the request and removes the rows other features derived from the
category (in the same transaction).

A backup made *before* the category was forgotten still holds its salt and ciphertexts:
pds cannot reach it, and says so.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from pds.db import profile as db_profile
from pds.errors import ValidationError
from pds.vocabulary import CATEGORIES

if TYPE_CHECKING:
    from pds.vault import Vault

OLD_BACKUPS = "Backups made before now still hold it (sealed under the old key): delete them too."


@dataclass(frozen=True)
class Forgotten:
    category: str
    records: int
    key_version: int | None
    checkpointed: bool

    @property
    def said(self) -> str:
        """What happened, in a sentence for the owner."""
        noun = "record" if self.records == 1 else "records"
        return f"Forgot {self.category}: {self.records} {noun} deleted and their key destroyed."

    def as_dict(self) -> dict[str, object]:
        return {
            "category": self.category,
            "records": self.records,
            "key_version": self.key_version,
            "checkpointed": self.checkpointed,
        }


def check_category(category: str) -> str:
    if category not in CATEGORIES:
        raise ValidationError(
            f'"{category}" is not a category', hint=f"Use one of {', '.join(CATEGORIES)}."
        )
    return category


def _derived_rows(category: str) -> Callable[[sqlite3.Connection], None]:
    """What else goes with the category's records (pds.db.profile.forget_derived): profile
    and intention changes (field names) with their pending and past webhook deliveries,
    and the plaintext expiry day of each intention record."""
    return partial(db_profile.forget_derived, category=category)


def forget(vault: Vault, category: str) -> Forgotten:
    """Crypto-shred ``category``; NotFound when the vault holds nothing of it."""
    check_category(category)
    done = vault.forget_category(category, _derived_rows(category))
    return Forgotten(category, done["records"], done["key_version"], done["checkpointed"])
