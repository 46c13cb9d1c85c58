"""Production serving: gunicorn with the app built once in the master (the vault unlocked
once, by Argon2id) and one SQLite connection per worker thread, opened on its first request.

By default each worker is one process of one thread (gunicorn's ``sync`` worker): on a
machine whose disk syncs fast (a few hundred microseconds) the read path is CPU work, and
Python threads only add contention for the interpreter lock. With ``threads`` > 1 the
workers are gunicorn's ``gthread`` workers, and the threads of a worker share the access
log's commits (``pds.audit.log.GroupCommit``): while one thread's entry is being written to
disk the others' entries queue for the next commit, so a slow disk (an SD card, a network
volume, where one fsync takes milliseconds) no longer caps the server at one request per
fsync. ``docs/benchmarks.md`` has the measurements.
"""

from __future__ import annotations

import sys
from typing import Any

from gunicorn.app.base import BaseApplication

from pds.errors import ConfigError
from pds.net import loopback_host
from pds.settings import Settings
from pds.vault.keys import Keyring

SWITCH_INTERVAL = 0.0005
"""The interpreter's thread switch interval in threaded workers (Python's default is 5 ms:
a thread back from the disk or the network waits that long for a busy one to let go)."""


def served_url(host: str, port: int) -> str:
    """The http URL of ``host``:``port`` (an IPv6 address in brackets)."""
    return f"http://{_netloc(host, port)}"


def issuer_for(settings: Settings, host: str, port: int) -> str:
    """The issuer ``pds serve --host host --port port`` announces: PDS_ISSUER when set,
    else the URL it serves on, which must then be a loopback one (plain http is never
    offered beyond this machine). ConfigError otherwise, before the vault is unlocked; and
    behind a reverse proxy (PDS_PROXY_HOPS > 0) PDS_ISSUER must be set: clients reach the
    vault at the proxy's public https address, never at the loopback one served."""
    from pds.oauth.server import check_issuer

    if not settings.issuer and settings.proxy_hops:
        raise ConfigError(
            f"PDS_PROXY_HOPS={settings.proxy_hops} says pds is behind a reverse proxy, "
            "and PDS_ISSUER is not set",
            hint="Set PDS_ISSUER to the https address clients reach the vault at through the "
            "proxy, e.g. https://vault.example.org (docs/deploy.md), or PDS_PROXY_HOPS=0 when "
            "nothing stands in front of pds.",
        )
    if settings.issuer:
        return check_issuer(settings.issuer)
    if not loopback_host(host):
        raise ConfigError(
            f"--host {host!r} is not a loopback address, and PDS_ISSUER is not set",
            hint="Set PDS_ISSUER to the https origin the server is reached at, e.g. "
            "https://pds.example.org (docs/deploy.md), or serve on 127.0.0.1.",
        )
    return check_issuer(served_url(host, port))


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Server(BaseApplication):
    def __init__(self, app: Any, options: dict[str, Any]):
        self._app = app
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self._app


def run(
    settings: Settings,
    keyring: Keyring,
    *,
    host: str,
    port: int,
    workers: int,
    threads: int,
) -> None:
    from pds import jobs
    from pds.app import create_app

    app = create_app(settings, keyring)
    _Server(
        app,
        {
            "bind": _netloc(host, port),
            "workers": workers,
            **_worker_options(threads),
            "preload_app": True,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "timeout": 60,
            "post_fork": jobs.post_fork(app),  # each worker resumes queued jobs at once
        },
    ).run()


def _worker_options(threads: int) -> dict[str, Any]:
    if threads <= 1:
        return {"worker_class": "sync"}
    return {
        "worker_class": "gthread",
        "threads": threads,
        "post_worker_init": lambda worker: sys.setswitchinterval(SWITCH_INTERVAL),
    }
