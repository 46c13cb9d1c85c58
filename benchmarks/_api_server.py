"""Server entry points for benchmarks/api.py (never product code, never imported by pds).

    python benchmarks/_api_server.py noaudit --port P --workers W --threads T  # audit a no-op
    python benchmarks/_api_server.py bare --port P --workers W --threads T     # bare Flask

Both serve through ``pds.http.server.run`` itself, so the gunicorn settings (worker class for
the thread count, preload_app, timeout, logging) are exactly the ones ``pds serve`` uses:

- ``noaudit``: unlocks the vault in PDS_HOME as ``pds serve`` does (PDS_PASSPHRASE), then,
  in this process only, replaces ``audit_allowed`` in ``pds.http.api.auth`` (and the name
  ``pds.http.api.records`` imported from it) with a function that only marks the call as
  audited. The app ``pds.http.server.run`` builds with ``pds.http.app.create_app`` is otherwise
  pds's own: same token check, grant check, query, decryption and rendering; no access-log
  entry.
- ``bare``: ``pds.http.server.run`` with ``pds.http.app.create_app`` replaced (in this process) by a
  function returning a one-route Flask app that answers a small JSON document.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import _common  # noqa: F401 - first: moves benchmarks/ behind pds's own packages on sys.path

BARE_DOCUMENT = {"status": "ok", "service": "bare-flask", "items": [1, 2, 3]}


def _no_audit(**fields: Any) -> int:
    """Stand-in for pds.http.api.auth.audit_allowed: the call counts as audited, nothing written."""
    from flask import g

    g.pds_audited = True
    return 0


def serve_noaudit(host: str, port: int, workers: int, threads: int) -> None:
    import pds.http.api.auth
    import pds.http.api.records
    from pds.http.server import run
    from pds.settings import load_settings
    from pds.vault import Vault

    settings = load_settings()
    with Vault.open(settings, settings.read_passphrase() or "") as vault:
        keyring = vault.keyring
    pds.http.api.auth.audit_allowed = _no_audit  # used by the api_call decorator
    pds.http.api.records.audit_allowed = _no_audit  # the name the records views imported
    run(settings, keyring, host=host, port=port, workers=workers, threads=threads)


def bare_app() -> Any:
    from flask import Flask, jsonify

    app = Flask("bare")

    @app.get("/")
    def index() -> Any:
        return jsonify(BARE_DOCUMENT)

    return app


def serve_bare(host: str, port: int, workers: int, threads: int) -> None:
    import pds.http.app
    from pds.http.server import run
    from pds.settings import Settings

    app = bare_app()
    pds.http.app.create_app = lambda settings=None, keyring=None: app  # run() looks it up at call
    home = Settings(home=Path("/nonexistent"))
    run(home, None, host=host, port=port, workers=workers, threads=threads)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["noaudit", "bare"])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--workers", type=int, required=True)
    ap.add_argument("--threads", type=int, required=True)
    args = ap.parse_args(argv)
    serve = serve_noaudit if args.mode == "noaudit" else serve_bare
    serve(args.host, args.port, args.workers, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
