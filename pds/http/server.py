"""Production serving: gunicorn with the app built once in the master (the vault unlocked
once, by Argon2id) and one SQLite connection per worker thread, opened on its first request.

Every worker is gunicorn's ``gthread`` worker, one thread by default: its main loop keeps
telling the master it is alive while the request thread reads a body, so a large upload
over a slow link (a 90 MB Apple Health export at 10 Mbit/s takes over a minute) is not
killed by the worker timeout, which gunicorn's ``sync`` worker applies to the whole
request, body included. The timeout (``TIMEOUT``, ``pds serve --timeout``) still restarts a
worker whose main loop stops answering. One thread was measured against the ``sync``
worker for the API's reads (docs/benchmarks.md, "Worker class for uploads (run F)"). With
``threads`` > 1 the threads of a worker share the access log's commits
(``pds.audit.log.GroupCommit``): while one thread's entry is being written to disk the
others' entries queue for the next commit, so a slow disk (an SD card, a network volume,
where one fsync takes milliseconds) no longer caps the server at one request per fsync;
on a disk that syncs fast (a few hundred microseconds) the read path is CPU work, and more
threads only add contention for the interpreter lock. ``docs/benchmarks.md`` has the
measurements.
"""

from __future__ import annotations

import errno
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication

from pds.errors import ConfigError
from pds.net import loopback_host
from pds.settings import Settings
from pds.vault.keys import Keyring

if TYPE_CHECKING:
    from flask import Flask

TIMEOUT = 60
"""Seconds a worker's main loop may go without telling the master it is alive before the
master kills and replaces the worker (gunicorn's ``timeout``; ``pds serve --timeout``)."""

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
    from pds.oauth.issuer import check_issuer

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


def check_listen(host: str, port: int) -> None:
    """ConfigError unless ``host``:``port`` can be listened on now: bound as gunicorn binds
    it (``SO_REUSEADDR``, IPv6 for an address with a colon), then let go at once."""
    where = f"cannot listen on {_netloc(host, port)}"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except socket.gaierror:
        raise ConfigError(f"{where}: no such host", hint=OWN_ADDRESS) from None
    except OSError as exc:
        reason, hint = {
            errno.EADDRINUSE: (
                "address already in use",
                f"Another program is using port {port}: stop it, or serve on another "
                "port (pds serve --port 8123, make run PORT=8123).",
            ),
            errno.EADDRNOTAVAIL: (f"{host} is not an address of this machine", OWN_ADDRESS),
            errno.EACCES: (
                "permission denied",
                "Ports below 1024 need privileges: serve on a higher port (pds serve "
                "--port 8000) behind a reverse proxy (docs/deploy.md).",
            ),
        }.get(exc.errno or 0, (exc.strerror or str(exc), None))
        raise ConfigError(f"{where}: {reason}", hint=hint) from None


OWN_ADDRESS = (
    "Give --host an address of this machine: 127.0.0.1 (this machine only) "
    "or 0.0.0.0 (every network)."
)


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
    timeout: int = TIMEOUT,
) -> None:
    """Serve ``settings``' vault with gunicorn until it is stopped: ``workers`` processes
    of ``threads`` request threads on ``host``:``port``."""
    from pds.http.app import create_app

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
            "timeout": timeout,
            "post_fork": _post_fork(app),  # each worker resumes queued jobs at once
        },
    ).run()


def _worker_options(threads: int) -> dict[str, Any]:
    options: dict[str, Any] = {"worker_class": "gthread", "threads": threads}
    if threads == 1:
        # A worker takes a connection only when its thread is free, as the sync worker
        # does: one busy with a long upload leaves new connections to the other workers
        # instead of queueing them behind it (so no keep-alive, which the sync worker never
        # had either).
        options.update(worker_connections=1, keepalive=0)
    else:  # request threads that compete for the interpreter
        options["post_worker_init"] = lambda worker: sys.setswitchinterval(SWITCH_INTERVAL)
    return options


def _post_fork(app: Flask) -> Callable[[Any, Any], None]:
    """A gunicorn ``post_fork`` hook starting each worker's job thread at once, so that
    jobs a stopped server left are resumed without waiting for a request."""
    from pds import jobs
    from pds.http.context import start_worker

    def hook(_server: Any, _worker: Any) -> None:
        start_worker(app, jobs.worker)

    return hook
