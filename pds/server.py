"""Production serving: gunicorn with the app built once in the master (the vault unlocked
once, by Argon2id) and one SQLite connection opened per worker on its first request."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from pds.settings import Settings
from pds.vault.keys import Keyring


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


def run(settings: Settings, keyring: Keyring, *, host: str, port: int, workers: int) -> None:
    from pds.app import create_app

    app = create_app(settings, keyring)
    _Server(
        app,
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "worker_class": "sync",
            "preload_app": True,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "timeout": 60,
        },
    ).run()
