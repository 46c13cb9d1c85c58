"""The access log's writer: canonical entries, the stored tree, checkpoints, vault events."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pds import db as dbmod
from pds.audit import checkpoint as cpmod
from pds.audit import merkle
from pds.audit.log import AuditError, AuditLog, canonical, make_entry
from pds.errors import NotFound, ValidationError, VaultLocked
from pds.settings import Settings
from pds.vault import SourceInfo, Vault, restore
from tests.conftest import PASSPHRASE
from tests.factories import prepared, transaction


def actions(vault: Vault) -> list[str]:
    return [json.loads(text)["action"] for _, text in vault.log.tail(1000)]


def fill(vault: Vault, n: int) -> None:
    for i in range(n):
        vault.audit("api.records.read", actor="client:c1", client_id="c1", count=i)


def test_canonical_entry_bytes_are_rfc8785() -> None:
    entry = make_entry(
        "api.records.read",
        actor="client:abc",
        client_id="abc",
        grant_id=7,
        category="transactions",
        count=50,
        purpose="crédit check",
        rule_ids=["r2", "r1"],
        at="2026-11-22T10:00:00.000Z",
    )
    assert canonical(entry) == (
        b'{"action":"api.records.read","actor":"client:abc","category":"transactions",'
        b'"client":"abc","count":50,"decision":"allowed","grant":"7",'
        b'"purpose":"cr\xc3\xa9dit check","rules":["r2","r1"],'
        b'"time":"2026-11-22T10:00:00.000Z","v":1}'
    )


def test_a_records_read_names_its_record_or_its_page_span() -> None:
    one = make_entry(
        "api.records.read", actor="client:abc", record=42, at="2026-11-22T10:00:00.000Z"
    )
    page = make_entry(
        "api.records.read",
        actor="client:abc",
        span=(("2024-01-05", 3), ("2024-02-05", 9)),
        at="2026-11-22T10:00:00.000Z",
    )
    assert canonical(one) == (
        b'{"action":"api.records.read","actor":"client:abc","decision":"allowed",'
        b'"record":42,"time":"2026-11-22T10:00:00.000Z","v":1}'
    )
    assert canonical(page) == (
        b'{"action":"api.records.read","actor":"client:abc","decision":"allowed",'
        b'"span":[["2024-01-05",3],["2024-02-05",9]],"time":"2026-11-22T10:00:00.000Z","v":1}'
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"actor": "owner", "decision": "maybe"},
            "audit decision 'maybe' is not one of allowed, refused, dropped",
        ),
        ({"actor": ""}, "an audit entry needs an action and an actor"),
        ({"actor": "owner", "count": "3"}, "audit field 'count' must be an integer"),
        ({"actor": "owner", "count": True}, "audit field 'count' must be an integer"),
        ({"actor": "owner", "category": 3}, "audit field 'category' must be a string"),
        ({"actor": "owner", "record": "7"}, "audit field 'record' must be an integer"),
        ({"actor": "owner", "record": False}, "audit field 'record' must be an integer"),
        (
            {"actor": "owner", "span": [["2024-01-05", 3]]},
            "audit field 'span' must be two [occurred_at, id] keys",
        ),
        (
            {"actor": "owner", "span": [["2024-01-05", 3], ["2024-02-05", "9"]]},
            "audit field 'span' must be two [occurred_at, id] keys",
        ),
    ],
)
def test_make_entry_refuses_malformed_fields(kwargs: dict, message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        make_entry("import", **kwargs)
    assert exc.value.message == message


def test_new_vault_log_starts_with_init_and_a_signed_checkpoint(vault: Vault) -> None:
    assert actions(vault) == ["vault.init"]
    cp = vault.log.latest_checkpoint()
    assert cp is not None
    assert cp.size == 1
    name, key = cpmod.parse_verifier_key(vault.log_verifier_key())
    assert name == vault.log.origin
    body = cpmod.open_checkpoint(cp.note, name, key, vault.log.origin)
    leaf = vault.conn.execute("SELECT entry, leaf FROM audit_log WHERE idx = 0").fetchone()
    assert leaf[1] == hashlib.sha256(b"\x00" + leaf[0].encode()).digest()
    assert body.root == leaf[1]


def test_stored_tree_matches_memory_tree_and_proofs_verify(vault: Vault) -> None:
    fill(vault, 40)
    texts = [text.encode() for _, text, _ in vault.log.entries()]
    tree = merkle.MemoryTree(texts)
    assert vault.log.size() == 41
    for size in (1, 2, 7, 16, 33, 41):
        root = vault.log.root(size)
        assert root == tree.root(size)
        for index in (0, size // 2, size - 1):
            proof = vault.log.inclusion_proof(index, size)
            assert proof == tree.inclusion_proof(index, size)
            assert merkle.verify_inclusion(merkle.leaf_hash(texts[index]), index, size, proof, root)
    assert vault.log.consistency_proof(13, 41) == tree.consistency_proof(13, 41)


def test_proof_beyond_the_log_is_not_found(vault: Vault) -> None:
    with pytest.raises(NotFound) as exc:
        vault.log.inclusion_proof(0, 5)
    assert exc.value.message == "the log has 1 entry, not 5"


@hsettings(max_examples=15)
@given(st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=8))
def test_two_connections_appending_in_turn_keep_one_tree(tmp_path_factory, bursts) -> None:
    from tests.conftest import FAST_KDF

    settings = Settings(home=tmp_path_factory.mktemp("v") / "vault", kdf=FAST_KDF)
    with Vault.create(settings, PASSPHRASE) as a:
        b = Vault.with_keyring(settings, a.keyring)
        try:
            for turn, n in enumerate(bursts):
                fill(a if turn % 2 else b, n)
            texts = [text.encode() for _, text, _ in a.log.entries()]
            assert a.log.size() == 1 + sum(bursts)
            assert a.log.root() == b.log.root() == merkle.MemoryTree(texts).root()
        finally:
            b.close()


def write_then_fail(vault: Vault) -> None:
    with dbmod.transaction(vault.conn):
        vault.audit("api.records.write", actor="client:c1", count=1)
        raise RuntimeError("the write failed")


def test_rolled_back_entry_leaves_no_trace_and_next_append_is_right(vault: Vault) -> None:
    fill(vault, 3)
    other = Vault.with_keyring(vault.settings, vault.keyring)
    try:
        with pytest.raises(RuntimeError, match="the write failed"):
            write_then_fail(vault)
        fill(other, 1)  # another worker takes the index the rolled-back entry had
        fill(vault, 1)
    finally:
        other.close()
    texts = [text.encode() for _, text, _ in vault.log.entries()]
    assert vault.log.size() == 6
    assert "api.records.write" not in actions(vault)
    assert vault.log.root() == merkle.MemoryTree(texts).root()


def test_checkpoints_every_n_entries_and_on_demand(vault: Vault) -> None:
    vault.log.every = 4
    fill(vault, 8)
    assert [cp.size for cp in vault.log.checkpoints()] == [1, 5, 9]
    assert vault.log.checkpoint().size == 9  # nothing new since size 9: no new signature
    fill(vault, 1)
    assert vault.log.checkpoint().size == 10
    assert [cp.size for cp in vault.log.checkpoints()] == [1, 5, 9, 10]


def test_checkpoint_after_time_passes(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> None:
    import pds.audit.log as logmod

    fill(vault, 2)
    assert [cp.size for cp in vault.log.checkpoints()] == [1]
    clock = logmod.time.time()
    monkeypatch.setattr(logmod.time, "time", lambda: clock + logmod.CHECKPOINT_SECONDS + 1)
    fill(vault, 1)
    assert [cp.size for cp in vault.log.checkpoints()] == [1, 4]


def test_vault_refuses_to_sign_over_a_rewritten_tree(vault: Vault) -> None:
    fill(vault, 6)
    vault.log.checkpoint()
    fill(vault, 2)
    # Someone rewrites an old leaf and every node above it: the new tree no longer
    # extends the signed one, and the vault will not sign it.
    conn = vault.conn
    conn.execute("UPDATE audit_log SET leaf = ? WHERE idx = 2", (b"\x11" * 32,))
    leaves = [row[0] for row in conn.execute("SELECT leaf FROM audit_log ORDER BY idx")]
    conn.execute("DELETE FROM audit_nodes")
    acc = merkle.RootAccumulator()
    for leaf in leaves:
        for level, index, h in acc.append(leaf)[1:]:
            conn.execute("INSERT INTO audit_nodes VALUES (?, ?, ?)", (level, index, h))
    fresh = AuditLog(conn, vault.log.origin, lambda: vault.keyring.signing_key(conn))
    with pytest.raises(AuditError) as exc:
        fresh.checkpoint()
    assert exc.value.message == (
        "the stored log of 9 entries does not extend the checkpoint signed at size 7; "
        "refusing to sign"
    )
    assert [cp.size for cp in vault.log.checkpoints()] == [1, 7]


def test_vault_events_each_write_one_entry(settings: Settings, tmp_path: Path) -> None:
    with Vault.create(settings, PASSPHRASE) as vault:
        vault.ingest(SourceInfo("midata", "a.csv", b"d" * 32), [[prepared(transaction())]])
        vault.ingest(SourceInfo("midata", "a.csv", b"d" * 32), [[prepared(transaction())]])
        vault.backup(tmp_path / "b.db")
        vault.change_passphrase("new passphrase")
        imports = [json.loads(t) for _, t in vault.log.tail(10) if '"import"' in t]
    assert [(e["count"], e["detail"]) for e in imports] == [
        (1, {"connector": "midata", "duplicate": 0}),
        (0, {"connector": "midata", "duplicate": 1}),
    ]
    with pytest.raises(VaultLocked):
        Vault.open(settings, PASSPHRASE)
    restore(settings, tmp_path / "b.db", PASSPHRASE)
    with Vault.open(settings, PASSPHRASE) as vault:
        # The backup holds the log as it was when it was made, then the restore itself.
        assert actions(vault) == ["vault.init", "import", "import", "backup", "restore"]
        refused = vault.log.tail(10)
    assert all(json.loads(t)["decision"] == "allowed" for _, t in refused)


def test_failed_unlock_is_logged_unsigned(vault: Vault, settings: Settings) -> None:
    vault.close()
    with pytest.raises(VaultLocked):
        Vault.open(settings, "not the passphrase")
    with Vault.open(settings, PASSPHRASE) as v:
        last = json.loads(v.log.tail(1)[0][1])
        assert (last["action"], last["actor"], last["decision"]) == (
            "unlock.failed",
            "owner",
            "refused",
        )
        assert v.log.latest_checkpoint().size == 1
        assert v.log.checkpoint().size == 2


def test_failed_import_writes_no_entry(vault: Vault) -> None:
    def batches():
        yield [prepared(transaction())]
        raise ValueError("line 9: bad amount")

    with pytest.raises(ValueError, match="line 9: bad amount"):
        vault.ingest(SourceInfo("midata", "a.csv", b"d" * 32), batches())
    assert actions(vault) == ["vault.init"]
    assert vault.status()["records"] == 0


_plain_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(alphabet=st.characters(max_codepoint=127)), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.text(alphabet=st.characters(max_codepoint=127)), _plain_json))
def test_fast_canonical_form_equals_rfc8785(entry: dict) -> None:
    import rfc8785

    try:
        expected = rfc8785.dumps(entry)
    except rfc8785.CanonicalizationError:
        with pytest.raises(rfc8785.CanonicalizationError):
            canonical(entry)
        return
    assert canonical(entry) == expected


def test_canonical_form_of_non_plain_values_uses_rfc8785() -> None:
    import rfc8785

    assert canonical({"b": 1.5, "a": "\u00e9", "\u00e9": [2]}) == (
        '{"a":"\u00e9","b":1.5,"\u00e9":[2]}'.encode()
    )
    with pytest.raises(rfc8785.IntegerDomainError):
        canonical({"count": 2**60})
