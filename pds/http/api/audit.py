"""The auditor API: the access log, its signed checkpoints and RFC 9162 proofs.

Every endpoint needs a token whose grant holds ``audit:read`` (which grants no data), and
every call — allowed or refused — is itself one entry of the log. Hashes are standard
base64, as in checkpoints. See docs/audit.md.
"""

from __future__ import annotations

import base64

from flask import Blueprint, Response, jsonify, request

from pds.errors import BadRequest, NotFound
from pds.http.api.auth import api_call
from pds.http.context import current_vault
from pds.words import plural

bp = Blueprint("audit_api", __name__, url_prefix="/audit")

SCOPE = "audit:read"
PAGE = 1000


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _count(name: str, *, default: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        if default is None:
            raise BadRequest(f"the query parameter {name!r} is required", hint=_HINT)
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        raise BadRequest(f"{name}={raw[:40]!r} is not a non-negative integer", hint=_HINT)
    return int(raw)


_HINT = "See GET /audit/checkpoint for the log's size; docs/audit.md lists the parameters."


@bp.get("/key")
@api_call("api.audit.key", scope=SCOPE)
def key() -> Response:
    vault = current_vault()
    vkey = vault.log_verifier_key()
    raw = vault.keyring.signing_key(vault.conn).public_key().public_bytes_raw()
    return jsonify(
        origin=vault.log.origin, verifier_key=vkey, public_key=_b64(raw), algorithm="Ed25519"
    )


@bp.get("/checkpoint")
@api_call("api.audit.checkpoint", scope=SCOPE)
def checkpoint() -> Response:
    """The newest signed checkpoint (signed now if the log grew since the last one)."""
    cp = current_vault().log.checkpoint()
    return Response(cp.note, mimetype="text/plain", headers={"Cache-Control": "no-store"})


@bp.get("/entries")
@api_call("api.audit.entries", scope=SCOPE)
def entries() -> Response:
    log = current_vault().log
    size = log.size()
    start = _count("start", default=0)
    end = min(_count("end", default=start + PAGE), start + PAGE, size)
    if start > size:
        raise NotFound(f"the log has {plural(size, 'entry')}; start={start} is past its end")
    items = [
        {"index": index, "entry": text, "leaf": _b64(leaf)}
        for index, text, leaf in log.entries(start, max(start, end))
    ]
    return jsonify(size=size, start=start, end=start + len(items), entries=items)


@bp.get("/proof/inclusion")
@api_call("api.audit.inclusion", scope=SCOPE)
def inclusion() -> Response:
    log = current_vault().log
    index, size = _count("index"), _count("size")
    if index >= size:
        raise BadRequest(f"index {index} is not inside a tree of size {size}", hint=_HINT)
    proof = log.inclusion_proof(index, size)
    return jsonify(
        index=index,
        size=size,
        leaf=_b64(log.perfect(0, index)),
        root=_b64(log.root(size)),
        proof=[_b64(h) for h in proof],
    )


@bp.get("/proof/consistency")
@api_call("api.audit.consistency", scope=SCOPE)
def consistency() -> Response:
    log = current_vault().log
    first, second = _count("first"), _count("second")
    if not 0 < first <= second:
        raise BadRequest(
            f"no consistency proof from size {first} to {second}: need 0 < first <= second",
            hint=_HINT,
        )
    proof = log.consistency_proof(first, second)
    return jsonify(
        first=first,
        second=second,
        first_root=_b64(log.root(first)),
        second_root=_b64(log.root(second)),
        proof=[_b64(h) for h in proof],
    )
