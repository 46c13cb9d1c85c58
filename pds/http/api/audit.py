"""The auditor API: the access log, its signed checkpoints and RFC 9162 proofs.

Every endpoint needs a token whose grant holds ``audit:read`` (which grants no data), and
every call — allowed or refused — is itself one entry of the log. Hashes are standard
base64, as in checkpoints. See docs/audit.md.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request

from pds.errors import BadRequest, NotFound
from pds.http.api.auth import api_call
from pds.http.context import current_vault
from pds.words import plural

bp = Blueprint("audit_api", __name__, url_prefix="/audit")

SCOPE = "audit:read"
PAGE = 1000
MAX_COUNT = 10**19 - 1
"""The largest index or size a query parameter may give (19 digits; OpenAPI ``maximum``)."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _count(name: str, *, default: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        if default is None:
            raise BadRequest(f"the query parameter {name!r} is required", hint=_HINT)
        return default
    if not raw.isascii() or not raw.isdigit():
        raise BadRequest(f"{name}={raw[:40]!r} is not a non-negative integer", hint=_HINT)
    if len(raw.lstrip("0")) > len(str(MAX_COUNT)):
        raise BadRequest(f"{name}={raw[:40]} is too large: at most {MAX_COUNT}", hint=_HINT)
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
    asked_end = _count("end", default=start + PAGE)
    if asked_end < start:
        raise BadRequest(
            f"end={asked_end} is before start={start}: entries [start, end) need start <= end",
            hint=_HINT,
        )
    end = min(asked_end, start + PAGE, size)
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


# -- OpenAPI (pds.http.api.openapi adds these) -----------------------------------------------

_HASH = {"type": "string", "format": "byte", "description": "a SHA-256 hash, standard base64"}
_PROOF = {"type": "array", "items": _HASH}


def _count_param(
    name: str, description: str, *, required: bool = True, minimum: int = 0
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": {"type": "integer", "minimum": minimum, "maximum": MAX_COUNT},
    }


def _object(**properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(properties),
        "additionalProperties": False,
        "properties": properties,
    }


_ABOUT = {
    400: f"a parameter is missing, not a whole number or above {MAX_COUNT}, or the range is "
    "not one the log has (start <= end) or has a proof for (index < size, 0 < first <= second)",
    403: "insufficient_scope: the token's grant does not hold audit:read",
    404: "start or size is past the end of the log",
}


def openapi_paths(errors: Callable[..., dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The OpenAPI path items of the auditor API (``errors(*codes)`` gives the problem
    responses)."""
    sec = [{"oauth2": [SCOPE]}]
    integer = {"type": "integer"}

    def get(summary: str, body: dict[str, Any], *codes: int, **more: Any) -> dict[str, Any]:
        ok = {"description": "the answer", "content": {"application/json": {"schema": body}}}
        return {
            "get": {
                "summary": summary,
                "tags": ["auditor"],
                "security": sec,
                **more,
                "responses": {"200": ok, **errors(401, 403, *codes, about=_ABOUT)},
            }
        }

    checkpoint = get(
        "The newest signed checkpoint of the log (C2SP signed note; signed now if the log "
        "grew since the last one)",
        {},
    )
    checkpoint["get"]["responses"]["200"] = {
        "description": "the checkpoint: origin, size and root hash lines, then signatures",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
    return {
        "/audit/key": get(
            "The log's public key: the verifier key of its checkpoints and the raw key",
            _object(
                origin={"type": "string"},
                verifier_key={"type": "string", "description": "C2SP signed-note verifier key"},
                public_key={"type": "string", "format": "byte"},
                algorithm={"type": "string", "enum": ["Ed25519"]},
            ),
        ),
        "/audit/checkpoint": checkpoint,
        "/audit/entries": get(
            f"Log entries [start, end), at most {PAGE} at a time",
            _object(
                size=integer,
                start=integer,
                end=integer,
                entries={
                    "type": "array",
                    "items": _object(
                        index=integer,
                        entry={"type": "string", "description": "the entry, RFC 8785 JSON"},
                        leaf=_HASH,
                    ),
                },
            ),
            400,
            404,
            parameters=[
                _count_param("start", "the first index (default 0)", required=False),
                _count_param(
                    "end", f"past the last index (default start + {PAGE})", required=False
                ),
            ],
        ),
        "/audit/proof/inclusion": get(
            "RFC 9162 inclusion proof of entry index in the tree of size entries",
            _object(index=integer, size=integer, leaf=_HASH, root=_HASH, proof=_PROOF),
            400,
            404,
            parameters=[
                _count_param("index", "the entry's index"),
                _count_param("size", "the tree's size (at most the log's)"),
            ],
        ),
        "/audit/proof/consistency": get(
            "RFC 9162 consistency proof from the tree of size first to the one of size second",
            _object(
                first=integer,
                second=integer,
                first_root=_HASH,
                second_root=_HASH,
                proof=_PROOF,
            ),
            400,
            404,
            parameters=[
                _count_param("first", "the older tree's size", minimum=1),
                _count_param("second", "the newer tree's size (at most the log's)"),
            ],
        ),
    }
