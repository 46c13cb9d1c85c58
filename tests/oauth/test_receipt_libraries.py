"""Independent JOSE libraries verify a real receipt from a real consent with the vault's
key, and refuse it changed: joserfc (Python) and jose (Node.js), each running the very code
docs/oauth.md shows a business."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from joserfc.errors import BadSignatureError
from joserfc.jwk import OKPKey

from tests.oauth_kit import CB, bearer
from tests.servers import NODE

ROOT = Path(__file__).parents[2]
DOCS = (ROOT / "docs" / "oauth.md").read_text()
VERIFY_MJS = ROOT / "tests" / "node" / "receipt.mjs"


def _block(lang: str, starts: str) -> str:
    found = [b for b in re.findall(rf"```{lang}\n(.*?)```", DOCS, re.S) if b.startswith(starts)]
    assert len(found) == 1, f"docs/oauth.md shows one {lang} block starting {starts!r}"
    return found[0]


@pytest.fixture
def real(kit) -> dict[str, Any]:
    """A receipt as a business gets it: registered, consented to by the owner, fetched."""
    made = kit.http.post(
        "/oauth/register",
        json={
            "client_name": "Acme Energy",
            "redirect_uris": [CB],
            "contacts": ["privacy@acme-energy.example"],
            "controller_address": "1 Meter Lane, Leeds LS1 4AP",
            "controller_country": "GB",
            "controller_phone": "+44 113 496 0000",
        },
    ).json
    tokens = kit.tokens(made["client_id"], made["client_secret"], scope="read:energy")
    got = kit.http.get("/api/v1/grant/receipt", headers=bearer(tokens["access_token"]))
    assert got.status_code == 200, got.json
    return {**got.json, "client_id": made["client_id"]}


def _tampered(receipt: str) -> str:
    """The same receipt with its controller's phone number changed, signature kept."""
    header, payload, signature = receipt.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["piiControllers"][0]["phone"] = "+44 20 7946 0000"
    raw = json.dumps(claims, sort_keys=True, separators=(",", ":")).encode()
    return ".".join([header, base64.urlsafe_b64encode(raw).rstrip(b"=").decode(), signature])


def _expected(real: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "KI-CR-v1.1.0",
        "consentReceiptID": real["receipt_id"],
        "controller": {
            "piiController": "Acme Energy",
            "piiControllerId": real["client_id"],
            "onBehalf": False,
            "contact": "privacy@acme-energy.example",
            "address": {"streetAddress": "1 Meter Lane, Leeds LS1 4AP", "addressCountry": "GB"},
            "email": "privacy@acme-energy.example",
            "phone": "+44 113 496 0000",
            "piiControllerUrl": "",
        },
        "piiCategory": ["read energy"],
    }


def _seen(claims: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": claims["version"],
        "consentReceiptID": claims["consentReceiptID"],
        "controller": claims["piiControllers"][0],
        "piiCategory": claims["services"][0]["purposes"][0]["piiCategory"],
    }


def test_joserfc_verifies_a_real_receipt_with_the_documented_code(real) -> None:
    code = _block("python", "import json\n\nfrom joserfc")
    space: dict[str, Any] = {}
    exec(compile(code, "docs/oauth.md", "exec"), space)  # noqa: S102 - the docs' own snippet
    verify_receipt = space["verify_receipt"]
    claims = verify_receipt(real["receipt"], real["key"])
    assert _seen(claims) == _expected(real)
    header = json.loads(base64.urlsafe_b64decode(real["receipt"].split(".")[0] + "=="))
    assert header == {"alg": "Ed25519", "typ": "kantara-cr+jwt", "kid": real["key"]["kid"]}
    with pytest.raises(BadSignatureError):
        verify_receipt(_tampered(real["receipt"]), real["key"])


def _node(receipt: str, key: dict[str, Any]) -> dict[str, Any]:
    assert NODE, "node is needed (make test installs it)"
    done = subprocess.run(
        [NODE, str(VERIFY_MJS)],
        input=json.dumps({"receipt": receipt, "key": key}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_node_jose_verifies_a_real_receipt_with_the_documented_code(real) -> None:
    documented = _block("js", 'import { compactVerify, importJWK } from "jose";')
    script = VERIFY_MJS.read_text()
    between = script.split("// -- docs/oauth.md: verifyReceipt --\n")[1].split("// -- end --")[0]
    assert between == documented
    verdict = _node(real["receipt"], real["key"])
    assert verdict["valid"] is True
    assert verdict["header"] == {
        "alg": "Ed25519",
        "typ": "kantara-cr+jwt",
        "kid": real["key"]["kid"],
    }
    assert _seen(verdict["claims"]) == _expected(real)


def test_node_jose_refuses_a_changed_receipt_and_another_key(real) -> None:
    changed = _node(_tampered(real["receipt"]), real["key"])
    assert changed == {"valid": False, "error": "ERR_JWS_SIGNATURE_VERIFICATION_FAILED"}
    other = OKPKey.generate_key("Ed25519").as_dict(private=False)
    assert _node(real["receipt"], other) == {
        "valid": False,
        "error": "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
    }
