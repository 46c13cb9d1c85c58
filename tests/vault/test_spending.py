"""Spending categories in the vault: given at import by the owner's rules, sealed, never
duplicated by a re-import, unchanged by a rule edit until applied, gone with their records."""

from __future__ import annotations

import pytest

from pds import db as dbmod
from pds import importer
from pds.importer import import_file
from pds.policyfiles.spending import parse_rules, save
from pds.vault import Vault, spending
from pds.vault.records import SealError
from tests.conftest import PASSPHRASE, fixture

NATIONWIDE = fixture("midata/nationwide-test-midata.csv")
RULES = """
[[rule]]
category = "Eating out"
contains = "coffee"

[[rule]]
category = "Travel"
matches = "\\\\b(park|garage)\\\\b"
direction = "out"

[[rule]]
category = "Bills"
contains = "broadband"

[[rule]]
category = "Gambling"
contains = "grocery"
"""


def by_description(vault) -> dict[str, str]:
    names = spending.names(vault)
    return {
        r.payload["description"]: names[r.id]
        for r in vault.records("transactions")
        if r.id in names
    }


def rows(vault) -> int:
    return vault.conn.execute("SELECT count(*) FROM spending").fetchone()[0]


def test_an_import_gives_new_transactions_their_categories(vault) -> None:
    save(vault.settings.home, RULES)
    assert import_file(vault, NATIONWIDE).new == 8
    assert by_description(vault) == {
        "A COFFEE SHOP GB": "Eating out",
        "A PARK GB": "Travel",
        "GROCERY SHOP GB": "Gambling",
        "A GARAGE GB": "Travel",
        "BROADBAND": "Bills",
    }
    again = import_file(vault, NATIONWIDE)
    assert (again.new, again.duplicate, rows(vault)) == (0, 8, 5)


def test_the_names_are_sealed_and_do_not_open_on_another_record(vault) -> None:
    save(vault.settings.home, RULES)
    import_file(vault, NATIONWIDE)
    dbmod.checkpoint_wal(vault.conn)
    raw = vault.settings.db_path.read_bytes()
    assert b"Gambling" not in raw
    assert b"Eating out" not in raw
    (a, ct_a), (b, ct_b) = vault.conn.execute(
        "SELECT record_id, ciphertext FROM spending ORDER BY record_id LIMIT 2"
    ).fetchall()
    with vault.conn:
        vault.conn.execute("UPDATE spending SET ciphertext = ? WHERE record_id = ?", (ct_b, a))
    with pytest.raises(SealError) as caught:
        spending.names(vault)
    assert caught.value.message == (
        f"the spending category of record {a} does not decrypt: it was altered or moved"
    )


def test_the_second_and_the_hundredth_of_a_long_file_across_batches(
    vault, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(importer, "BATCH", 7)
    lines = ["Date,Type,Merchant/Description,Debit/Credit,Balance"]
    lines += [f"{1 + n % 28:02d}/03/2014,VIS,SHOP {n},-{n}.00,0.00" for n in range(1, 151)]
    csv = tmp_path / "long-midata.csv"
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    save(vault.settings.home, '[[rule]]\ncategory = "Picked"\nmatches = "^shop (2|100)$"\n')
    assert import_file(vault, csv, connector="midata").new == 150
    assert by_description(vault) == {"SHOP 2": "Picked", "SHOP 100": "Picked"}


def test_an_import_without_rules_or_with_a_broken_file_gives_none(vault) -> None:
    import_file(vault, NATIONWIDE)
    assert rows(vault) == 0
    (vault.settings.home / "spending.toml").write_text("[[rule]]\ncategory = 1\n")
    import_file(vault, fixture("midata/midata-spec-example.csv"))
    assert rows(vault) == 0


def test_a_rule_edit_changes_nothing_until_applied(vault) -> None:
    save(vault.settings.home, RULES)
    import_file(vault, NATIONWIDE)
    save(vault.settings.home, '[[rule]]\ncategory = "Shops"\ncontains = "shop"\n')
    assert by_description(vault)["GROCERY SHOP GB"] == "Gambling"
    assert rows(vault) == 5
    done = spending.apply(vault, parse_rules('[[rule]]\ncategory = "Shops"\ncontains = "shop"\n'))
    assert done == {"transactions": 8, "categorised": 2}
    assert by_description(vault) == {"A COFFEE SHOP GB": "Shops", "GROCERY SHOP GB": "Shops"}
    entry = vault.conn.execute("SELECT entry FROM audit_log ORDER BY idx DESC LIMIT 1").fetchone()
    assert '"action":"spending.apply"' in entry[0]
    assert '"count":2' in entry[0]


def test_forgetting_transactions_forgets_their_categories(vault) -> None:
    save(vault.settings.home, RULES)
    import_file(vault, NATIONWIDE)
    assert rows(vault) == 5
    vault.forget_category("transactions")
    assert rows(vault) == 0
    assert spending.names(vault) == {}


def test_a_vault_from_before_spending_categories_gets_the_table(settings) -> None:
    with Vault.create(settings, PASSPHRASE) as v:
        v.conn.execute("DROP TABLE spending")
        v.conn.execute("PRAGMA user_version = 8")
    with Vault.open(settings, PASSPHRASE) as v:
        assert dbmod.schema_version(v.conn) == dbmod.SCHEMA_VERSION == 11
        columns = [r[1] for r in v.conn.execute("PRAGMA table_info(spending)")]
        assert columns == ["record_id", "key_version", "nonce", "ciphertext"]
