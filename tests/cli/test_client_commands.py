"""`pds clients ...` and `pds grants ...`."""

from __future__ import annotations

import json

from pds.cli import cli
from pds.oauth import store
from pds.settings import load_settings
from pds.vault import Vault
from tests.conftest import PASSPHRASE


def test_clients_add_list_and_grants(runner, initialised, env) -> None:
    added = runner.invoke(
        cli,
        [
            "clients",
            "add",
            "--name",
            "Acme Bank",
            "--redirect-uri",
            "https://acme.example/cb",
            "--json",
        ],
    )
    assert added.exit_code == 0, added.output
    doc = json.loads(added.output)
    assert set(doc) == {"client_id", "client_secret"}
    assert doc["client_id"].startswith("pds-")
    assert len(doc["client_secret"]) == 43

    public = runner.invoke(
        cli,
        [
            "clients",
            "add",
            "--name",
            "Pocket",
            "--redirect-uri",
            "http://127.0.0.1:9000/cb",
            "--public",
        ],
    )
    assert public.exit_code == 0, public.output
    lines = public.output.splitlines()
    assert lines[0] == 'Added client "Pocket" (public).'
    assert lines[1].startswith("client_id:     pds-")
    assert len(lines) == 2

    listed = json.loads(runner.invoke(cli, ["clients", "list", "--json"]).output)
    assert [(c["name"], c["public"], c["verified"]) for c in listed] == [
        ("Acme Bank", False, True),
        ("Pocket", True, True),
    ]

    settings = load_settings(env)
    with Vault.open(settings, PASSPHRASE) as v:
        from pds.oauth.access import parse_request

        store.create_grant(v.conn, doc["client_id"], parse_request("read:transactions", None))
        client = store.get_client(v.conn, doc["client_id"])
        assert client is not None
        assert client.check_client_secret(doc["client_secret"])

    grants = json.loads(runner.invoke(cli, ["grants", "list", "--json"]).output)
    assert [(g["id"], g["client_id"], g["scope"]) for g in grants] == [
        (1, doc["client_id"], "read:transactions")
    ]
    revoked = runner.invoke(cli, ["grants", "revoke", "1"])
    assert revoked.output == "Revoked grant 1; its tokens no longer work.\n"
    assert json.loads(runner.invoke(cli, ["grants", "list", "--json"]).output) == []
    assert len(json.loads(runner.invoke(cli, ["grants", "list", "--all", "--json"]).output)) == 1

    again = runner.invoke(cli, ["grants", "revoke", "1"])
    assert again.exit_code == 1
    assert again.output.startswith("Error: grant 1 was already revoked at ")
    missing = runner.invoke(cli, ["grants", "revoke", "7"])
    assert (missing.exit_code, missing.output) == (
        1,
        "Error: no grant with id 7\nHint: See the ids with `pds grants list`.\n",
    )


def test_clients_add_refuses_bad_redirect_uri(runner, initialised) -> None:
    result = runner.invoke(
        cli, ["clients", "add", "--name", "Acme", "--redirect-uri", "http://acme.example/cb"]
    )
    assert result.exit_code == 1
    assert result.output == (
        "Error: redirect URI 'http://acme.example/cb' uses http on a host that is not loopback; "
        "use https\nHint: Use https, or http on 127.0.0.1 or localhost.\n"
    )
