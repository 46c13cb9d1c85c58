"""One background thread per server process, for work that must not wait for a request:
the webhook sender (``pds.webhooks.delivery``) and the job runner (``pds.jobs``).

Under ``pds serve`` (gunicorn), each worker process starts its own thread the first time it
is asked (at fork, or at its first request), with its own vault connection; a process
forked later starts its own. Outside gunicorn (tests, ``flask run``) a thread starts only
when the app's config asks for it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

Loop = Callable[[Any, Any, threading.Event, threading.Event], None]
"""A thread's body: ``loop(settings, keyring, stop, wake)``; it returns once ``stop`` is set
and may wait on ``wake`` between rounds."""


class ProcessThread:
    """A daemon thread running ``loop`` once per process."""

    def __init__(self, name: str, config_key: str, loop: Loop) -> None:
        self.name = name
        self.config_key = config_key
        self.loop = loop
        self._running: dict[int, tuple[threading.Thread, threading.Event, threading.Event]] = {}
        self._lock = threading.Lock()

    def ensure(self, settings: Any, keyring: Any, enabled: bool | None = None) -> None:
        """Start this process's thread once, when running under gunicorn (``pds serve``)
        or when ``enabled`` (the app's ``config_key`` setting) says so; never for a locked
        vault (no ``keyring``)."""
        if enabled is None:
            enabled = os.environ.get("SERVER_SOFTWARE", "").startswith("gunicorn/")
        if not enabled or keyring is None or os.getpid() in self._running:
            return
        with self._lock:
            if os.getpid() in self._running:
                return
            stop, wake = threading.Event(), threading.Event()
            thread = threading.Thread(
                target=self.loop,
                args=(settings, keyring, stop, wake),
                name=self.name,
                daemon=True,
            )
            self._running[os.getpid()] = (thread, stop, wake)
        thread.start()

    def wake(self) -> None:
        """Have this process's thread start its next round now."""
        found = self._running.get(os.getpid())
        if found:
            found[2].set()

    def stop(self) -> None:
        """Stop this process's thread (if any) and wait for it to finish its round."""
        with self._lock:
            found = self._running.pop(os.getpid(), None)
        if found:
            found[1].set()
            found[2].set()
            found[0].join()
