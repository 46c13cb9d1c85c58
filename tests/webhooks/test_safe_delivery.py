"""Security review of the customer-managed-relationship features: webhook SSRF, the sender's
limits, receipts verification, the export file and the CSV view."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import socket
import stat
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import OKPKey

from pds.oauth import receipts as rmod
from pds.profile import profile
from pds.rights import export as exportmod
from pds.settings import load_settings
from pds.webhooks import delivery
from pds.webhooks import net as webhook_net
from tests.http.api.test_records import problem
from tests.oauth_kit import bearer
from tests.webhooks.test_propagation import Receiver, business, profile_grant, subscribe

PUBLIC = ipaddress.ip_address("93.184.215.14")
LOOPBACK = ipaddress.ip_address("127.0.0.1")


def refused(host: str, ip: str) -> str:
    return (
        f"url's host {host} is {ip}, a private, loopback, link-local or reserved address; "
        "pds sends webhooks only to public hosts"
    )


# -- the setting ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "on"), [("1", True), ("true", True), ("", False), ("0", False), ("no", False)]
)
def test_private_webhooks_are_off_unless_the_owner_turns_them_on(value: str, on: bool) -> None:
    assert load_settings({"PDS_WEBHOOKS_ALLOW_PRIVATE": value}).webhooks_allow_private is on
    assert load_settings({}).webhooks_allow_private is False


# -- which addresses are public -------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 - an address under test, nothing binds to it
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fec0::1",
        "2001:db8::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "2002:a00:1::1",  # 6to4 around 10.0.0.1
        "64:ff9b::a00:1",  # NAT64 around 10.0.0.1
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert webhook_net.is_public(ipaddress.ip_address(address)) is False


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert webhook_net.is_public(ipaddress.ip_address(address)) is True


# -- refused when subscribing ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "host", "ip"),
    [
        ("https://127.0.0.1/hook", "127.0.0.1", "127.0.0.1"),
        ("https://169.254.169.254/latest/meta-data/", "169.254.169.254", "169.254.169.254"),
        ("https://192.168.1.1:8443/admin", "192.168.1.1", "192.168.1.1"),
        ("https://[::1]/hook", "::1", "::1"),
        ("https://[::ffff:10.0.0.1]/hook", "::ffff:10.0.0.1", "::ffff:a00:1"),
        ("https://localhost/hook", "localhost", "127.0.0.1"),
        ("https://admin.localhost/hook", "admin.localhost", "127.0.0.1"),
        ("https://2130706433/hook", "2130706433", "127.0.0.1"),  # 127.0.0.1 as one number
        ("https://0x7f.1/hook", "0x7f.1", "127.0.0.1"),
    ],
)
def test_a_webhook_into_the_owners_network_is_refused(kit, url: str, host: str, ip: str) -> None:
    token = business(kit, "Acme Energy", profile_grant())
    resp = kit.http.post(
        "/api/v1/subscriptions", json={"url": url, "categories": ["profile"]}, headers=bearer(token)
    )
    body = problem(resp, 400, "unsafe_webhook_url", refused(host, ip))
    assert body["hint"] == "Register an https endpoint on a public host that you control."
    assert kit.audit_actions()[-1] == ("api.subscriptions.create", "refused")
    assert kit.vault.conn.execute("SELECT count(*) FROM subscriptions").fetchone()[0] == 0


def test_a_name_with_one_private_answer_is_refused(kit, monkeypatch) -> None:
    answers = [PUBLIC, ipaddress.ip_address("10.0.0.7")]
    monkeypatch.setattr(webhook_net, "resolve", lambda host, port: answers)
    token = business(kit, "Acme Energy", profile_grant())
    resp = kit.http.post(
        "/api/v1/subscriptions",
        json={"url": "https://hooks.example/x", "categories": ["profile"]},
        headers=bearer(token),
    )
    problem(resp, 400, "unsafe_webhook_url", refused("hooks.example", "10.0.0.7"))


def test_plain_http_to_loopback_needs_the_owners_setting(kit) -> None:
    token = business(kit, "Acme Energy", profile_grant())
    resp = kit.http.post(
        "/api/v1/subscriptions",
        json={"url": "http://127.0.0.1:9/hook", "categories": ["profile"]},
        headers=bearer(token),
    )
    problem(resp, 422, "validation_error", "url must use https")


# -- checked again at every send ------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_dns_rebinding_after_subscribing_is_caught_at_send_time(kit, monkeypatch, receiver) -> None:
    answer = [PUBLIC]
    monkeypatch.setattr(webhook_net, "resolve", lambda host, port: list(answer))
    token = business(kit, "Acme Energy", profile_grant())
    port = receiver.url.split(":")[2].split("/")[0]
    subscribe(kit, token, f"https://hooks.example:{port}/hook")  # public when checked
    answer[0] = LOOPBACK  # then the name is pointed at the vault's own machine
    profile.set_field(kit.vault, "name", "Ada")
    assert delivery.run_once(kit.vault) == {"delivered": 0, "failed": 1, "dropped": 0}
    assert receiver.got == []
    log = delivery.log_rows(kit.vault)
    assert [(x["attempt"], x["status"]) for x in log] == [(2, "pending"), (1, "failed")]
    assert log[1]["last_error"] == "refused: " + refused("hooks.example", "127.0.0.1")


def test_the_send_connects_to_the_checked_address_under_the_host_name(
    monkeypatch, receiver
) -> None:
    calls: list[str] = []

    def resolve_once(host: str, port: int) -> list[Any]:
        calls.append(host)
        if len(calls) > 1:
            raise AssertionError("resolved twice: the connection must use the checked address")
        return [LOOPBACK]

    monkeypatch.setattr(webhook_net, "resolve", resolve_once)
    port = receiver.url.split(":")[2].split("/")[0]
    url = f"http://hooks.test:{port}/hook?x=1"
    got = webhook_net.post(url, {"Content-Type": "application/json"}, b"{}", allow_private=True)
    assert got == (204, None)
    assert calls == ["hooks.test"]
    assert receiver.got[0][0]["Host"] == f"hooks.test:{port}"


def test_plain_http_to_a_private_non_loopback_address_is_refused_at_send(monkeypatch) -> None:
    monkeypatch.setattr(webhook_net, "resolve", lambda h, p: [ipaddress.ip_address("10.0.0.2")])
    got = webhook_net.post("http://hooks.test/x", {}, b"{}", allow_private=True)
    assert got == (None, "refused: url must use https")


class _Raw:
    """A TCP server on 127.0.0.1 that runs ``answer(conn)`` for each connection."""

    def __init__(self, answer) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.first: list[bytes] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(10)
                try:
                    self.first.append(conn.recv(65536))
                    self.answer(conn, self.stop)
                except OSError:
                    pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


def _drip(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    while not stop.wait(0.1):
        conn.sendall(b"X-Slow: a\r\n")  # never ends its headers


def _huge(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n" + b"x" * 8192)
    stop.wait(30)  # then stalls: reading to the end would hang


def test_a_receiver_that_never_finishes_cannot_hang_the_sender(monkeypatch) -> None:
    monkeypatch.setattr(webhook_net, "DEADLINE", 1.0)
    server = _Raw(_drip)
    try:
        start = time.monotonic()
        status, error = webhook_net.post(
            f"http://127.0.0.1:{server.port}/", {}, b"{}", allow_private=True
        )
        took = time.monotonic() - start
    finally:
        server.close()
    assert (status, error) == (None, "not delivered: no answer within 1 seconds")
    assert took < 4.0


def test_only_the_first_few_kilobytes_of_an_answer_are_read(monkeypatch) -> None:
    server = _Raw(_huge)
    try:
        start = time.monotonic()
        got = webhook_net.post(f"http://127.0.0.1:{server.port}/", {}, b"{}", allow_private=True)
        took = time.monotonic() - start
    finally:
        server.close()
    assert got == (200, None)
    assert took < webhook_net.DEADLINE


def test_a_redirect_is_a_failed_attempt_and_never_followed(monkeypatch) -> None:
    other = Receiver()
    bouncer = _Raw(
        lambda conn, stop: conn.sendall(
            f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {other.url}\r\n"
            "Content-Length: 0\r\n\r\n".encode()
        )
    )
    try:
        got = webhook_net.post(f"http://127.0.0.1:{bouncer.port}/", {}, b"{}", allow_private=True)
    finally:
        bouncer.close()
        other.close()
    assert got == (307, "HTTP 307")
    assert other.got == []


# -- receipts: only the key the verifier chose is trusted -----------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _payload(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_a_receipt_carrying_its_own_key_does_not_verify_against_it(signed) -> None:
    token, key = signed
    forger = OKPKey.generate_key("Ed25519")
    body = _payload(token)
    body["pds"]["scope"] = "read:energy read:health"
    body["publicKey"] = rmod.public_jwk(forger)
    header = {"alg": "Ed25519", "typ": rmod.TYP, "kid": forger.thumbprint()}
    header["jwk"] = rmod.public_jwk(forger)
    forged = jws.serialize_compact(
        header, json.dumps(body).encode(), forger, algorithms=["Ed25519"]
    )
    with pytest.raises(rmod.ReceiptError) as err:
        rmod.verify(forged, key)
    assert err.value.message == (
        f"the receipt was signed by key {forger.thumbprint()!r}, "
        f"not by the key given ({key.thumbprint()})"
    )
    # claiming the vault's kid does not help either: the signature is the forger's
    header["kid"] = key.thumbprint()
    forged = jws.serialize_compact(
        header, json.dumps(body).encode(), forger, algorithms=["Ed25519"]
    )
    with pytest.raises(rmod.ReceiptError) as err:
        rmod.verify(forged, key)
    assert err.value.message == rmod.CHANGED


def test_hmac_keyed_with_the_public_key_is_refused(signed) -> None:
    token, key = signed
    header = {"alg": "HS256", "typ": rmod.TYP, "kid": key.thumbprint()}
    signing_input = f"{_b64(json.dumps(header).encode())}.{token.split('.')[1]}"
    public = key.as_dict(private=False)["x"].encode()
    mac = hmac.digest(public, signing_input.encode(), hashlib.sha256)
    with pytest.raises(rmod.ReceiptError) as err:
        rmod.verify(f"{signing_input}.{_b64(mac)}", key)
    assert err.value.message == (
        "the receipt's header names algorithm 'HS256'; pds receipts are signed with 'Ed25519'"
    )


@pytest.fixture
def signed(vault) -> tuple[str, OKPKey]:
    from pds.oauth import admin, store
    from pds.oauth.access import parse_request

    client, _ = admin.add_client(vault, "Acme", ["https://a.example/cb"])
    grant = store.create_grant(vault.conn, client.client_id, parse_request("read:energy", None))
    return rmod.issue(vault, grant).jws, rmod.signing_jwk(vault)


def test_cli_verify_says_which_key_it_trusted(runner, initialised, tmp_path) -> None:
    from pds.cli import cli
    from pds.oauth import admin, store
    from pds.oauth.access import parse_request
    from pds.settings import Settings
    from pds.vault import Vault
    from tests.conftest import PASSPHRASE

    with Vault.open(Settings(home=initialised), PASSPHRASE) as v:
        client, _ = admin.add_client(v, "Acme", ["https://a.example/cb"])
        grant = store.create_grant(v.conn, client.client_id, parse_request("read:energy", None))
        token = rmod.issue(v, grant).jws
        kid = rmod.signing_jwk(v).thumbprint()
    receipt = tmp_path / "r.jws"
    receipt.write_text(token)
    out = runner.invoke(cli, ["receipts", "verify", str(receipt)])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[-1] == f"  checked with this vault's key ({kid})"
    as_json = json.loads(runner.invoke(cli, ["receipts", "verify", str(receipt), "--json"]).output)
    assert as_json["key"] == {"kid": kid, "trusted": "this vault's key"}


def test_each_business_gets_only_its_own_receipt(kit) -> None:
    mine = business(kit, "Acme Energy", profile_grant())
    theirs = business(kit, "Bolt Shop", profile_grant())
    from pds.oauth import store

    grants = {g.id: g.client_id for g in store.list_grants(kit.vault.conn)}
    for token in (mine, theirs):
        body = kit.http.get("/api/v1/grant/receipt", headers=bearer(token)).json
        claims = _payload(body["receipt"])
        assert grants[claims["pds"]["grant_id"]] == claims["pds"]["client_id"]
        assert body["receipt"] in (
            r.jws for r in rmod.for_grant(kit.vault.conn, claims["pds"]["grant_id"])
        )
    mine_claims = _payload(
        kit.http.get("/api/v1/grant/receipt", headers=bearer(mine)).json["receipt"]
    )
    theirs_claims = _payload(
        kit.http.get("/api/v1/grant/receipt", headers=bearer(theirs)).json["receipt"]
    )
    assert mine_claims["piiControllers"][0]["piiController"] == "Acme Energy"
    assert theirs_claims["piiControllers"][0]["piiController"] == "Bolt Shop"
    assert mine_claims["piiPrincipalId"] != theirs_claims["piiPrincipalId"]


# -- export ---------------------------------------------------------------------------------


def test_export_never_writes_through_a_symlink(vault, tmp_path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    link = tmp_path / "out.zip"
    link.symlink_to(victim)
    with pytest.raises(exportmod.ExportError) as err:
        exportmod.export_to(vault, link)
    assert err.value.message == f"{link} already exists"
    dangling = tmp_path / "dangling.zip"
    dangling.symlink_to(tmp_path / "nowhere" / "x.zip")
    with pytest.raises(exportmod.ExportError) as err:
        exportmod.export_to(vault, dangling)
    assert err.value.message == f"{dangling} already exists"
    assert victim.read_text() == "keep me"
    left = sorted(p.name for p in tmp_path.iterdir() if p.name != "vault")
    assert left == ["dangling.zip", "out.zip", "victim.txt"]


def test_export_file_is_private_and_a_late_rival_is_not_overwritten(
    vault, tmp_path, monkeypatch
) -> None:
    path, _ = exportmod.export_to(vault, tmp_path / "a.zip")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    target = tmp_path / "b.zip"
    real = exportmod.write_zip

    def rival_appears(*args: Any) -> dict[str, int]:
        target.write_text("someone else's")
        return real(*args)

    monkeypatch.setattr(exportmod, "write_zip", rival_appears)
    before = vault.log.size()
    with pytest.raises(exportmod.ExportError) as err:
        exportmod.export_to(vault, target)
    assert err.value.message == f"{target} already exists"
    assert target.read_text() == "someone else's"
    assert vault.log.size() == before  # no export entry for an export that did not happen
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "vault") == ["a.zip", "b.zip"]


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ("\n=1+1", "'\n=1+1"),
        ("\uff1dSUM(A1)", "'\uff1dSUM(A1)"),
        ("\uff0bcmd", "'\uff0bcmd"),
        ("\uff0d1", "'\uff0d1"),
        ("\uff20x", "'\uff20x"),
        ("-3.50", "-3.50"),
    ],
)
def test_csv_neutralises_line_feed_and_full_width_formula_starts(cell: str, shown: str) -> None:
    assert exportmod.neutralise(cell) == shown


def test_https_goes_to_the_checked_address_with_the_host_name_as_sni(monkeypatch) -> None:
    server = _Raw(lambda conn, stop: None)  # reads the TLS ClientHello, then hangs up
    monkeypatch.setattr(webhook_net, "resolve", lambda host, port: [LOOPBACK])
    try:
        status, error = webhook_net.post(
            f"https://hooks.test:{server.port}/", {}, b"{}", allow_private=True
        )
    finally:
        server.close()
    assert status is None
    assert error is not None
    assert error.startswith("not delivered: ")
    assert len(server.first) == 1
    assert server.first[0][:1] == b"\x16"  # a TLS handshake record, to the pinned address
    assert b"hooks.test" in server.first[0]  # SNI: the certificate is checked for the name


def test_cli_verify_reads_the_receipt_file_as_bytes(runner, initialised, tmp_path) -> None:
    from pds.cli import cli
    from pds.oauth import admin, store
    from pds.oauth.access import parse_request
    from pds.settings import Settings
    from pds.vault import Vault
    from tests.conftest import PASSPHRASE

    with Vault.open(Settings(home=initialised), PASSPHRASE) as v:
        client, _ = admin.add_client(v, "Acme", ["https://a.example/cb"])
        grant = store.create_grant(v.conn, client.client_id, parse_request("read:energy", None))
        token = rmod.issue(v, grant).jws
    receipt = tmp_path / "r.jws"
    for envelope in (token, token + "\n", token + "\r\n", " " + token + " \r\n"):
        receipt.write_bytes(envelope.encode())
        out = runner.invoke(cli, ["receipts", "verify", str(receipt)])
        assert out.exit_code == 0, out.output
    for body in (b"\xef\xbb\xbf" + token.encode(), b"\xef\xbb\xbf" + token.encode() + b"\r\n"):
        receipt.write_bytes(body)
        out = runner.invoke(cli, ["receipts", "verify", str(receipt)])
        assert out.exit_code == 1
        assert out.stderr.splitlines()[0] == (
            f"Error: {receipt} starts with a byte-order mark; save the receipt as it was issued "
            "(UTF-8 without BOM)"
        )
    receipt.write_bytes(b"\xff" + token.encode())
    out = runner.invoke(cli, ["receipts", "verify", str(receipt)])
    assert out.exit_code == 1
    assert out.stderr.splitlines()[0] == f"Error: {receipt} is not UTF-8 text: it is not a receipt"
