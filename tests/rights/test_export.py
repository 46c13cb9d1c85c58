"""Export everything: the zip's layout, CSV neutralisation, all-or-nothing writing, the audit
entry, and export -> fresh vault -> import giving back the same records."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from connectors.base import Record
from pds import jobs, registry
from pds.cli import cli
from pds.errors import ImportFormatError
from pds.importer import ImportSummary, import_file, prepare
from pds.payloads import ProfileSchema
from pds.rights import export as exportmod
from pds.settings import Settings
from pds.vault import SourceInfo, Vault
from pds.vault.records import canonical
from tests.conftest import FAST_KDF, PASSPHRASE, fixture
from tests.factories import transaction
from tests.oauth_kit import csrf

PROFILE = {
    "name": "Ada Lovelace",
    "addresses": [{"label": "home", "lines": ["1 High St"], "postcode": "N1 1AA", "country": "GB"}],
    "email": "ada@example.org",
    "phone": "+447700900123",
    "marketing": {"email": True, "post": False},
}
INTENTION = {"text": "a new energy tariff from March", "kind": "switch", "expires_at": "2025-03-31"}


def _store(vault: Vault, name: str, records: list[Record]) -> None:
    summary = ImportSummary(name, "test")
    vault.ingest(
        SourceInfo("test", name, name.encode()), prepare(iter(records), name, summary, False)
    )


def _fill(vault: Vault) -> None:
    for path in ("midata/midata-spec-example.csv", "ofx/ofxparse-checking.ofx"):
        import_file(vault, fixture(path))
    _store(
        vault,
        "owner.json",
        [
            Record("profile", "2025-01-02T10:00:00Z", PROFILE),
            Record("intentions", "2025-01-03", INTENTION),
            Record("intentions", "2025-01-03", INTENTION),  # a genuine repeat stays two
        ],
    )


def _multiset(vault: Vault) -> Counter:
    return Counter((r.category, r.occurred_at, canonical(r.payload)) for r in vault.records())


def test_export_then_import_into_a_fresh_vault_gives_the_same_records(
    vault: Vault, tmp_path: Path
) -> None:
    _fill(vault)
    before = _multiset(vault)
    path, counts = exportmod.export_to(vault, tmp_path / "out.zip")
    assert path == tmp_path / "out.zip"
    assert counts == dict(vault.status()["categories"])
    assert sum(before.values()) == sum(counts.values()) > 10
    with Vault.create(Settings(home=tmp_path / "fresh", kdf=FAST_KDF), PASSPHRASE) as fresh:
        head = path.read_bytes()[:4096]
        assert registry.detect(head, "out.zip").name == "pds-export"
        summary = import_file(fresh, path)
        assert (summary.connector, summary.new, summary.duplicate) == (
            "pds-export",
            sum(counts.values()),
            0,
        )
        assert _multiset(fresh) == before
        # importing the same export again adds nothing
        assert import_file(fresh, path).new == 0


def test_zip_layout_manifest_first_and_stored(vault: Vault, tmp_path: Path) -> None:
    _fill(vault)
    out = tmp_path / "out"
    out.mkdir()
    path, counts = exportmod.export_to(vault, out)
    assert path.name.startswith("pds-export-")
    assert path.suffix == ".zip"
    assert [p.name for p in out.iterdir()] == [path.name]  # no temporary file left
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        assert infos[0].filename == "manifest.json"
        assert infos[0].compress_type == zipfile.ZIP_STORED
        manifest = json.loads(zf.read("manifest.json"))
        assert sorted(zf.namelist()) == sorted(
            ["manifest.json"]
            + [f"{c}.json" for c in counts]
            + [f"csv/{c}.csv" for c in counts]
            + [f"schemas/{c}.json" for c in counts]
        )
        assert manifest == {
            "format": "pds-export",
            "version": 1,
            "vault": vault.log.origin,
            "created_at": manifest["created_at"],
            "categories": {"intentions": 2, "profile": 1, "transactions": counts["transactions"]},
            "record_fields": ["occurred_at", "source", "payload"],
            "schemas": {c: f"schemas/{c}.json" for c in counts},
        }
        profile = json.loads(zf.read("profile.json"))
        assert profile == {
            "category": "profile",
            "records": [
                {
                    "occurred_at": "2025-01-02T10:00:00Z",
                    "source": {"connector": "test", "filename": "owner.json"},
                    "payload": ProfileSchema().load(PROFILE),
                }
            ],
        }
        schema = json.loads(zf.read("schemas/intentions.json"))
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["title"] == "intentions"
        assert schema["required"] == ["expires_at", "text"]
        assert schema["properties"]["kind"]["enum"] == ["buy", "switch", "move", "other"]
        rows = list(csv.reader(io.StringIO(zf.read("csv/profile.csv").decode())))
        assert rows[0][:8] == [
            "occurred_at",
            "source",
            "name",
            "addresses",
            "email",
            "phone",
            "preferred_language",
            "contact_channel",
        ]
        assert rows[0][-2:] == ["marketing.email", "marketing.post"]
        assert rows[1][5] == "'+447700900123"  # a phone number starts with +: neutralised
        assert rows[1][-2:] == ["true", "false"]


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ('=HYPERLINK("http://evil.example")', '\'=HYPERLINK("http://evil.example")'),
        ("+SUM(A1)", "'+SUM(A1)"),
        ("-1+2", "'-1+2"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("\x00=1+2", "'\x00=1+2"),
        ("\x00", "'\x00"),
        ("\x01x", "'\x01x"),
        ("\x1fx", "'\x1fx"),
        ("\nx", "'\nx"),
        ("x\x00", "x\x00"),
        ("-12.30", "-12.30"),
        ("-5", "-5"),
        ("12.30", "12.30"),
        ("COSTA = good", "COSTA = good"),
        ("", ""),
    ],
)
def test_neutralise(cell: str, shown: str) -> None:
    assert exportmod.neutralise(cell) == shown


def test_csv_cells_are_neutralised_but_amounts_stay_numbers(vault: Vault, tmp_path: Path) -> None:
    nasty = [
        transaction("2024-03-01", "-12.30", '=HYPERLINK("http://evil.example","x")'),
        transaction("2024-03-02", "40.00", "@SUM(1+1)*cmd|' /C calc'!A0", reference="-2+3"),
        transaction("2024-03-03", "-0.99", "\tTAB", counterparty="\rCR"),
    ]
    _store(vault, "nasty.csv", [Record("transactions", p["date"], p) for p in nasty])
    path, _ = exportmod.export_to(vault, tmp_path / "n.zip")
    with zipfile.ZipFile(path) as zf:
        text = zf.read("csv/transactions.csv").decode()
        records = json.loads(zf.read("transactions.json"))["records"]
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows == [
        ["occurred_at", "source", *nasty[0].keys()],
        [
            "2024-03-01", "test:nasty.csv", "2024-03-01", "-12.30", "GBP",
            "'=HYPERLINK(\"http://evil.example\",\"x\")", "", "", "VIS", "", "",
        ],
        [
            "2024-03-02", "test:nasty.csv", "2024-03-02", "40.00", "GBP",
            "'@SUM(1+1)*cmd|' /C calc'!A0", "", "", "VIS", "", "'-2+3",
        ],
        [
            "2024-03-03", "test:nasty.csv", "2024-03-03", "-0.99", "GBP",
            "'\tTAB", "'\rCR", "", "VIS", "", "",
        ],
    ]  # fmt: skip
    # the JSON keeps the values exactly as stored
    assert [r["payload"] for r in records] == nasty


def test_csv_prefixed_cells_are_quoted(vault: Vault, tmp_path: Path) -> None:
    rows = [
        transaction("2024-03-01", "-12.30", "\x00=1+2", counterparty="+44 7700"),
        transaction("2024-03-02", "-0.50", "\x1bESC", reference='=A1,"x"'),
        transaction("2024-03-03", "7", "PLAIN, SHOP", counterparty='say "hi"'),
    ]
    _store(vault, "nul.csv", [Record("transactions", p["date"], p) for p in rows])
    path, _ = exportmod.export_to(vault, tmp_path / "q.zip")
    with zipfile.ZipFile(path) as zf:
        text = zf.read("csv/transactions.csv").decode()
    assert text.split("\r\n")[1:] == [
        '2024-03-01,test:nul.csv,2024-03-01,-12.30,GBP,"\'\x00=1+2","\'+44 7700",,VIS,,',
        '2024-03-02,test:nul.csv,2024-03-02,-0.50,GBP,"\'\x1bESC",,,VIS,,"\'=A1,""x"""',
        '2024-03-03,test:nul.csv,2024-03-03,7,GBP,"PLAIN, SHOP","say ""hi""",,VIS,,',
        "",
    ]
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert [r[5] for r in parsed[1:]] == ["'\x00=1+2", "'\x1bESC", "PLAIN, SHOP"]
    assert parsed[2][10] == '\'=A1,"x"'
    for n in range(100):  # every C0 control leads to a prefixed, quoted cell
        cell = chr(n % 32) + f"cell {n}"
        assert exportmod.csv_line([cell, "x"]) == "\"'" + cell + '",x\r\n'


def test_export_is_one_audit_entry_with_counts_only(vault: Vault, tmp_path: Path) -> None:
    _fill(vault)
    before = vault.log.size()
    _, counts = exportmod.export_to(vault, tmp_path / "a.zip")
    assert vault.log.size() == before + 1
    entry = json.loads(vault.log.tail(1)[0][1])
    assert {k: entry[k] for k in ("actor", "action", "decision", "count", "detail")} == {
        "actor": "owner",
        "action": "export",
        "decision": "allowed",
        "count": sum(counts.values()),
        "detail": {"categories": counts, "format": "pds-export/1"},
    }
    assert "Lovelace" not in json.dumps(entry)


def test_existing_target_is_refused_and_left_alone(vault: Vault, tmp_path: Path) -> None:
    target = tmp_path / "taken.zip"
    target.write_bytes(b"mine")
    before = vault.log.size()
    with pytest.raises(exportmod.ExportError, match=r"taken.zip already exists$"):
        exportmod.export_to(vault, target)
    assert target.read_bytes() == b"mine"
    assert vault.log.size() == before


def test_failure_midway_leaves_no_file_and_no_entry(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(vault)

    def broken(*args: object) -> bytes:
        raise OSError("disk full")

    monkeypatch.setattr(exportmod, "_csv", broken)
    before = vault.log.size()
    with pytest.raises(OSError, match="disk full"):
        exportmod.export_to(vault, tmp_path / "x.zip")
    assert list(tmp_path.iterdir()) == [tmp_path / "vault"]
    assert vault.log.size() == before
    assert not vault.conn.in_transaction


def _rezip(src: Path, dst: Path, change: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, change.get(info.filename, zin.read(info.filename)))
    return dst


def test_truncated_export_imports_nothing(vault: Vault, tmp_path: Path) -> None:
    _fill(vault)
    path, _ = exportmod.export_to(vault, tmp_path / "e.zip")
    with zipfile.ZipFile(path) as zf:
        doc = json.loads(zf.read("intentions.json"))
    doc["records"] = doc["records"][:1]
    bad = _rezip(path, tmp_path / "bad.zip", {"intentions.json": json.dumps(doc).encode()})
    with Vault.create(Settings(home=tmp_path / "fresh", kdf=FAST_KDF), PASSPHRASE) as fresh:
        with pytest.raises(ImportFormatError) as err:
            import_file(fresh, bad)
        assert err.value.message == (
            "bad.zip intentions.json: the manifest says 2 records but the file holds 1"
        )
        assert fresh.status()["records"] == 0


def test_record_without_payload_names_it(vault: Vault, tmp_path: Path) -> None:
    _store(vault, "o.json", [Record("intentions", "2025-01-03", INTENTION)])
    path, _ = exportmod.export_to(vault, tmp_path / "e.zip")
    doc = {"category": "intentions", "records": [{"occurred_at": "2025-01-03"}]}
    bad = _rezip(path, tmp_path / "bad.zip", {"intentions.json": json.dumps(doc).encode()})
    with Vault.create(Settings(home=tmp_path / "fresh", kdf=FAST_KDF), PASSPHRASE) as fresh:
        with pytest.raises(ImportFormatError) as err:
            import_file(fresh, bad)
        assert err.value.message == (
            "bad.zip intentions.json record 1: needs occurred_at (text) and payload (object)"
        )


def test_web_export_button(kit, tmp_path: Path) -> None:
    _fill(kit.vault)
    assert kit.app.test_client().get("/export").status_code == 302
    assert kit.login("/export").status_code == 303
    page = kit.http.get("/export")
    assert page.status_code == 200
    assert "intentions: 2 records" in page.text
    before = kit.vault.log.size()
    refused = kit.http.post("/export", data={"csrf_token": "wrong"})
    assert refused.status_code == 403
    assert kit.vault.log.size() == before
    queued = kit.http.post("/export", data={"csrf_token": csrf(page.text)})
    assert (queued.status_code, queued.headers["Location"]) == (303, "/jobs/1")
    assert kit.vault.log.size() == before  # nothing is exported until the job runs
    assert jobs.run_once(kit.vault) == [1]
    done = kit.http.get("/jobs/1")
    assert sum(exportmod.counts(kit.vault).values()) == 12
    assert '<p class="ok">The export holds 12 records.</p>' in done.text
    resp = kit.http.get("/jobs/1/download", buffered=True)  # read whole, then closed
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.mimetype == "application/zip"
    assert resp.headers["Content-Disposition"].startswith("attachment; filename=pds-export-")
    data = resp.data
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.namelist()[0] == "manifest.json"
        assert json.loads(zf.read("manifest.json"))["categories"]["intentions"] == 2
    assert kit.vault.log.size() == before + 1
    assert kit.audit_actions()[-1] == ("export", "allowed")
    assert list((kit.vault.settings.home / "jobs").iterdir()) == []  # deleted once downloaded
    again = kit.http.get("/jobs/1/download")
    assert again.status_code == 404
    assert "the export of job 1 is not here (any more)" in again.text


def test_cli_export(runner, initialised: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine.zip"
    result = runner.invoke(cli, ["export", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"export": str(out), "records": 0, "categories": {}}
    with zipfile.ZipFile(out) as zf:
        assert zf.namelist() == ["manifest.json"]
    again = runner.invoke(cli, ["export", "--out", str(out)])
    assert again.exit_code == 1
    assert again.output.splitlines() == [
        f"Error: {out} already exists",
        "Hint: Choose a new file name; pds never overwrites.",
    ]


def test_reimport_into_the_same_vault_adds_nothing_for_files_without_ids(
    vault: Vault, tmp_path: Path
) -> None:
    import_file(vault, fixture("midata/midata-spec-example.csv"))
    _store(vault, "o.json", [Record("intentions", "2025-01-03", INTENTION)] * 2)
    before = _multiset(vault)
    path, _ = exportmod.export_to(vault, tmp_path / "e.zip")
    summary = import_file(vault, path)
    assert (summary.new, summary.duplicate) == (0, sum(before.values()))
    assert _multiset(vault) == before
