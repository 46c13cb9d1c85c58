"""Production serving: gunicorn with the app built once in the master (the vault unlocked
once, by Argon2id), worker processes of ``threads`` threads each (gunicorn's ``gthread``
worker, keep-alive connections), and one SQLite connection per thread opened on its first
request. Threads of one worker share the access log's commits
(``pds.audit.log.GroupCommit``): while one thread's entry is being written to disk, the
entries of the others queue for the next commit instead of each waiting for an fsync."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from pds.settings import Settings
from pds.vault.keys import Keyring


THREADS = 8
"""Threads per worker process by default (``pds serve --threads``)."""


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
    threads: int = THREADS,
) -> None:
    from pds.app import create_app

    app = create_app(settings, keyring)
    _Server(
        app,
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "worker_class": "gthread",
            "threads": threads,
            "preload_app": True,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "timeout": 60,
        },
    ).run()
