"""A whole number too long for Python's ``int()`` (more than 4,300 digits), or too big for
SQLite, never reaches a person as Python's own message or a crash: every place pds reads one
(command-line options, API bodies and query strings, OAuth authorization_details, connector
files, mapping and policy files, profile files) says what was wrong in words."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from pds.cli import cli
from pds.errors import PdsError
from pds.importer import import_file
from tests.oauth.test_negative import error_redirect as error_redirect_query
from tests.oauth_kit import bearer, pkce

BIG = "9" * 5000
SHOWN = "'999999999999999999999999'\u2026 (5,000 characters)"
TOP = 2**63 - 1
TOO_LONG = "a whole number of 5,000 digits is too long (pds reads at most 4,300 digits)"


def run(runner: CliRunner, *args: str):
    return runner.invoke(cli, list(args))


@pytest.mark.parametrize(
    ("args", "where", "bounds"),
    [
        (["records", "--limit"], "'--limit'", f"1 to {TOP}"),
        (["audit", "tail", "-n"], "'-n'", f"1 to {TOP}"),
        (["grants", "revoke"], "'GRANT_ID'", f"1 to {TOP}"),
        (["receipts", "show"], "'GRANT_ID'", f"1 to {TOP}"),
        (["requests", "show"], "'REQUEST_ID'", f"1 to {TOP}"),
        (["intentions", "withdraw"], "'RECORD_ID'", f"1 to {TOP}"),
        (["deliveries", "list", "-n"], "'-n'", f"1 to {TOP}"),
        (["import", "x.csv", "--fulfils"], "'--fulfils'", f"1 to {TOP}"),
        (["serve", "--port"], "'--port'", "1 to 65535"),
        (["serve", "--workers"], "'--workers'", "1 to 64"),
        (
            ["policy", "explain", "--client", "c", "--category", "health", "--grant-days"],
            "'--grant-days'",
            "1 to 36500",
        ),
    ],
)
def test_cli_numbers_too_long_or_too_big(runner, initialised, args, where, bounds) -> None:
    for value, shown in (
        (BIG, SHOWN),
        (BIG, SHOWN),
        ("9" * 20, "'99999999999999999999'"),  # past SQLite's INTEGER: was an OverflowError
        ("\u00b2", "'\u00b2'"),
        ("1.5", "'1.5'"),
        ("-1", "'-1'"),
    ):
        if value.startswith("-") and not where.startswith("'-"):
            continue  # an argument: click reads "-1" as an option
        result = run(runner, *args, value)
        assert result.exit_code == 2, result.output
        assert result.stderr.splitlines()[-1] == (
            f"Error: Invalid value for {where}: {shown} is not a whole number from {bounds}"
        )


def test_cli_numbers_still_read_ordinary_values(runner, initialised) -> None:
    assert run(runner, "audit", "tail", "-n", "0001", "--json").exit_code == 0
    assert len(json.loads(run(runner, "audit", "tail", "-n", "1", "--json").stdout)) == 1
    assert run(runner, "records", "--limit", str(TOP)).exit_code == 0
    missing = run(runner, "grants", "revoke", str(TOP))
    assert missing.exit_code == 1
    assert missing.stderr.splitlines()[0].startswith("Error: ")


def test_api_body_with_a_huge_number(kit) -> None:
    client_id, secret = kit.add_client()
    token = kit.tokens(client_id, secret, scope="write:transactions")["access_token"]
    body = (
        '{"category": "transactions", "occurred_at": "2024-01-01", "payload": {"n": ' + BIG + "}}"
    )
    for _ in range(2):
        resp = kit.http.post(
            "/api/v1/records",
            data=body,
            headers={**bearer(token), "Content-Type": "application/json"},
        )
        assert resp.status_code == 400
        assert resp.json["detail"] == (
            "the body holds a whole number of 5,000 digits; pds reads at most 4,300"
        )
    assert kit.vault.conn.execute("SELECT count(*) FROM records").fetchone() == (0,)


def test_registration_with_a_huge_number(kit) -> None:
    body = '{"redirect_uris": ["http://127.0.0.1:9/cb"], "software_version": ' + BIG + "}"
    for _ in range(2):
        resp = kit.http.post(
            "/oauth/register", data=body, headers={"Content-Type": "application/json"}
        )
        assert (resp.status_code, resp.json) == (
            400,
            {
                "error": "invalid_request",
                "error_description": "The body holds a whole number of 5,000 digits; pds "
                "reads at most 4,300.",
            },
        )
    assert kit.vault.conn.execute("SELECT count(*) FROM clients").fetchone() == (0,)


def test_authorization_details_with_a_huge_number(kit) -> None:
    client_id, _ = kit.add_client()
    _, challenge = pkce()
    details = '[{"type": "pds_records", "actions": ["read"], "categories": ["health"], ' + (
        '"expires_in": ' + BIG + "}]"
    )
    kit.login()
    url = kit.authorize_url(client_id, challenge, scope=None, authorization_details=details)
    q = error_redirect_query(kit.http.get(url))
    assert (q["error"], q["error_description"]) == (
        "invalid_authorization_details",
        f"authorization_details: {TOO_LONG}",
    )


def test_connector_files_with_a_huge_number(vault, tmp_path: Path) -> None:
    takeout = tmp_path / "Records.json"
    takeout.write_text('{"locations": [{"latitudeE7": ' + BIG + "}]}")
    export = tmp_path / "pds-export.zip"
    with zipfile.ZipFile(export, "w") as zf:
        manifest = {"format": "pds-export", "version": 1, "categories": {"health": 1}}
        zf.writestr(zipfile.ZipInfo("manifest.json"), json.dumps(manifest, indent=2))
        zf.writestr("health.json", '{"category": "health", "records": [{"n": ' + BIG + "}]}")
    fhir = tmp_path / "records.json"
    fhir.write_text('{"resourceType": "Bundle", "type": "collection", "n": ' + BIG + "}")
    cases = [
        (takeout, "Records.json: location #1: " + TOO_LONG),
        (export, "pds-export.zip health.json: " + TOO_LONG),
        (fhir, "records.json: " + TOO_LONG),
    ]
    for path, message in cases:
        for _ in range(2):
            with pytest.raises(PdsError) as err:
                import_file(vault, path)
            assert err.value.message == message
    assert vault.conn.execute("SELECT count(*) FROM records").fetchone() == (0,)


def test_mapping_and_policy_files_with_a_huge_number(runner, initialised, tmp_path) -> None:
    from connectors.csvmapping import parse_mapping
    from pds.policy import PolicyError
    from pds.policyfiles.schema import parse_policy

    mapping = 'name = "mybank"\ntitle = "My bank"\nskip = ' + BIG + "\n"
    with pytest.raises(PdsError) as err:
        parse_mapping(mapping, "mybank.toml")
    assert err.value.message == f"mybank.toml: not valid TOML ({TOO_LONG})"
    policy = '[[rule]]\nid = "r"\nkind = "rate-limit"\nrequests = ' + BIG + "\n"
    with pytest.raises(PolicyError) as perr:
        parse_policy(policy, "policies/x.toml")
    assert perr.value.message == f"policies/x.toml: not valid TOML: {TOO_LONG}"
    path = tmp_path / "x.toml"
    path.write_text(policy)
    for _ in range(2):
        result = run(runner, "policy", "check", str(path))
        assert result.exit_code == 1
        assert result.stderr.splitlines()[0] == f"Error: {path}: not valid TOML: {TOO_LONG}"
    state = initialised / "policies" / "enabled.toml"
    state.parent.mkdir(exist_ok=True)
    state.write_text("enabled = [" + BIG + "]\n")
    result = run(runner, "policy", "list")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == f"Error: {state}: cannot be read ({TOO_LONG})"


def test_profile_file_with_a_huge_number(runner, initialised, tmp_path) -> None:
    doc = tmp_path / "me.json"
    doc.write_text('{"name": ' + BIG + "}")
    for _ in range(2):
        result = run(runner, "profile", "edit", "--file", str(doc))
        assert result.exit_code == 1
        assert result.stderr.splitlines()[0] == f"Error: {doc}: {TOO_LONG}"


def test_shown_keeps_short_values_whole() -> None:
    from pds.numbers import shown, whole

    assert shown("12") == "'12'"
    assert shown(BIG) == SHOWN
    assert [whole(t, 1, 500) for t in ("1", "0500", "501", "0", "", "\u0663", "+1")] == [
        1,
        500,
        None,
        None,
        None,
        None,
        None,
    ]


def test_ids_in_urls_past_sqlite_are_not_found(kit) -> None:
    client_id, secret = kit.add_client()
    token = kit.tokens(client_id, secret)["access_token"]
    missing = kit.http.get("/api/v1/records/999999", headers=bearer(token)).json
    # kit.tokens signed the owner in: the owner's pages answer below
    for value in ("9" * 20, BIG, str(2**63)):
        for url in (f"/grants/{value}/revoke", f"/records/{value}", f"/grants/{value}/receipt"):
            resp = kit.http.get(url)
            assert resp.status_code == 404, (url[:40], resp.status_code)
        api = kit.http.get(f"/api/v1/records/{value}", headers=bearer(token))
        assert (api.status_code, api.json["detail"]) == (404, missing["detail"])
    assert kit.http.get("/grants/\u0663/revoke").status_code == 404
    assert kit.http.get(f"/records/{2**63 - 1}").status_code == 404  # in range: looked up
