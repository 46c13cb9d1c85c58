"""One appender for a served vault's access log: a process of its own that owns the log's
tail, so the workers of ``pds serve`` hand it their entries instead of each taking SQLite's
write lock for every API read.

Without it every audited read in a worker ran ``BEGIN IMMEDIATE``, re-read the tree's right
edge (stale whenever the other worker had appended since, which under load is always), wrote
its entry and paid a ``COMMIT`` with its fsync, while the other workers queued for the lock.
With it a worker sends the entry's canonical bytes over a Unix socket and waits for the
answer; the appender reads every entry that arrived while its previous commit was on the
disk and commits them all in one transaction (group commit across processes), keeping the
tree's right edge in memory between commits. A worker still answers its request only after
its own entry is committed: the appender replies once ``COMMIT`` has returned.

The appender is not the only writer: a write and its entry still commit together in the
writer's own transaction (``AuditLog.record`` inside a transaction), and the CLI appends
directly. Every batch runs in a ``BEGIN IMMEDIATE`` transaction that checks the tree's right
edge against the table, as any append does, so they interleave safely.

Frames: a request is a 4-byte big-endian length and the entry's bytes; the answer is one
status byte, then an 8-byte index (``OK``) or a 4-byte length and a message. The socket lives
in a fresh private directory (mode 0700), so only the vault's own user can append.

When no appender runs (the CLI, tests, a server started otherwise) or it cannot be reached,
:func:`client` gives None or the connection fails before anything is sent, and the caller
appends directly (``GroupCommit``). Once an entry has been sent, a broken connection is an
error (:class:`AccessLogUnavailable`), never a second attempt: the first may have committed.
Written by hand: this is a small, specific protocol over the standard library's sockets.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import selectors
import shutil
import signal
import socket
import struct
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pds.db import lock_path
from pds.db.locking import is_busy
from pds.diskfull import DiskFull, is_disk_full
from pds.errors import PdsError, VaultBusy

OK, FULL, BUSY, FAILED = 0, 1, 2, 3
MAX_ENTRY = 1 << 20
"""Bytes of one entry the appender accepts (entries are a few hundred bytes)."""
_LENGTH = struct.Struct(">I")
_INDEX = struct.Struct(">q")
SOCKET_NAME = "append.sock"
GONE = "each worker now writes its own entries"


class AccessLogUnavailable(PdsError):
    """The appender could not write the entry: the call it stands for is refused."""

    code = "access_log_unavailable"
    status = 503
    hint = "Try again in a moment; if it goes on, restart pds serve and run `pds audit verify`."


# -- the workers' side -------------------------------------------------------------------------


class Client:
    """A worker's way to the appender: one socket per thread, opened on first use."""

    def __init__(self, path: Path, folder: Path) -> None:
        self.path = path
        self.folder = folder
        """Where the vault lives (for a disk-full message)."""
        self._local = threading.local()
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def _socket(self) -> socket.socket | None:
        sock: socket.socket | None = getattr(self._local, "sock", None)
        pid = getattr(self._local, "pid", None)
        if sock is not None and pid == os.getpid():
            return sock
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(self.path))
        except OSError:
            sock.close()
            return None
        self._local.sock, self._local.pid = sock, os.getpid()
        with self._lock:
            self._open.append(sock)
        return sock

    def append(self, data: bytes) -> int | None:
        """Have the appender commit ``data``; its index, or None when no appender can be
        reached (nothing was sent: append directly). Raises the appender's error."""
        return self.receive() if self.send(data) else None

    def send(self, data: bytes) -> bool:
        """Hand ``data`` to the appender without waiting; False when no appender can be
        reached (nothing was sent: append directly). Every True must be followed by
        :meth:`receive` on the same thread before this thread sends again."""
        sock = self._socket()
        if sock is None:
            return False
        try:
            sock.sendall(_LENGTH.pack(len(data)) + data)
        except OSError:  # the appender is gone and read nothing: append directly
            self._drop()
            return False
        return True

    def receive(self) -> int:
        """Wait until the entry this thread sent is committed; its index. Raises the
        appender's error, or AccessLogUnavailable when the appender went away meanwhile."""
        sock = self._local.sock
        try:
            status = _read(sock, 1)[0]
            if status == OK:
                return _INDEX.unpack(_read(sock, _INDEX.size))[0]
            (size,) = _LENGTH.unpack(_read(sock, _LENGTH.size))
            message = _read(sock, size).decode("utf-8", "replace")
        except OSError:
            self._drop()
            raise AccessLogUnavailable(
                "the access log's appender stopped while writing this call's entry"
            ) from None
        if status == FULL:
            raise DiskFull(self.folder)
        if status == BUSY:
            raise VaultBusy(message, hint="Try again in a moment.")
        raise AccessLogUnavailable(f"the access log could not be written: {message}")

    def _drop(self) -> None:
        sock = getattr(self._local, "sock", None)
        self._local.sock = None
        if sock is not None:
            with self._lock:
                self._open.remove(sock)
            sock.close()

    def close(self) -> None:
        """Close every thread's socket (the appender is stopping)."""
        with self._lock:
            opened, self._open = self._open, []
        for sock in opened:
            sock.close()


def _read(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionResetError("the appender closed the connection")
        data += chunk
    return data


_clients: dict[str, Client] = {}


def client(lock: Path) -> Client | None:
    """The appender of the vault whose writer lock is ``lock`` in this process tree, or
    None."""
    return _clients.get(str(lock))


# -- the appender's side -----------------------------------------------------------------------

Commit = Callable[[Sequence[bytes]], Sequence[int]]
"""Commit entries in one transaction, in order; their indexes (``AuditLog.append_batch``)."""


@dataclass
class _Peer:
    sock: socket.socket
    buffer: bytearray


def serve(listener: socket.socket, commit: Commit, stop: int | None = None) -> None:
    """Answer workers on ``listener`` until ``stop`` (a file descriptor) is readable or
    closed by its other end, then close it: every entry that arrived since the last commit
    goes in the next one, and each worker gets its entry's index or the batch's error."""
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, None)
    if stop is not None:
        sel.register(stop, selectors.EVENT_READ, "stop")
    try:
        while True:
            batch: list[tuple[_Peer, bytes]] = []
            for key, _ in sel.select():
                if key.data == "stop":
                    return
                if key.data is None:
                    sock, _ = listener.accept()
                    sel.register(sock, selectors.EVENT_READ, _Peer(sock, bytearray()))
                    continue
                peer: _Peer = key.data
                if not _receive(peer, batch):
                    sel.unregister(peer.sock)
                    peer.sock.close()
            if batch:
                _answer(batch, commit)
    finally:
        for key in list(sel.get_map().values()):
            if isinstance(key.data, _Peer):
                key.data.sock.close()
        sel.close()
        listener.close()


def _receive(peer: _Peer, batch: list[tuple[_Peer, bytes]]) -> bool:
    """Read what ``peer`` sent; add its complete entries to ``batch``. False once it is gone
    or sent something that is not a frame."""
    try:
        chunk = peer.sock.recv(65536)
    except OSError:
        return False
    if not chunk:
        return False
    buf = peer.buffer
    buf += chunk
    while len(buf) >= _LENGTH.size:
        (size,) = _LENGTH.unpack_from(buf)
        if size > MAX_ENTRY:
            return False
        if len(buf) < _LENGTH.size + size:
            break
        batch.append((peer, bytes(buf[_LENGTH.size : _LENGTH.size + size])))
        del buf[: _LENGTH.size + size]
    return True


def _answer(batch: list[tuple[_Peer, bytes]], commit: Commit) -> None:
    try:
        indexes = commit([data for _, data in batch])
        replies = [bytes([OK]) + _INDEX.pack(i) for i in indexes]
    except Exception as exc:  # noqa: BLE001 - every worker in the batch gets the error
        status = FULL if is_disk_full(exc) else BUSY if is_busy(exc) else FAILED
        message = (exc.message if isinstance(exc, PdsError) else str(exc)).encode()
        replies = [bytes([status]) + _LENGTH.pack(len(message)) + message] * len(batch)
    for (peer, _), reply in zip(batch, replies, strict=True):
        with contextlib.suppress(OSError):  # a worker gone meanwhile: its peer closes next
            peer.sock.sendall(reply)


class Appender:
    """A running appender process (see :func:`start`)."""

    def __init__(self, pid: int, path: Path, key: str, stop_fd: int) -> None:
        self.pid = pid
        self.path = path
        self._key = key
        self._stop_fd: int | None = stop_fd
        self._owner = os.getpid()

    def stop(self) -> None:
        """Stop it and wait for it (from the process that started it; a no-op in its
        forked children, which inherit the exit hook and the pipe: the appender sees the
        pipe close once the starter and every child are gone)."""
        if os.getpid() != self._owner or self._stop_fd is None:
            return
        gone = _clients.pop(self._key, None)
        if gone is not None:
            gone.close()
        os.close(self._stop_fd)
        self._stop_fd = None
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        shutil.rmtree(self.path.parent, ignore_errors=True)


def start(database: Path, open_commit: Callable[[], Commit]) -> Appender:
    """Fork the appender of the vault at ``database`` and make it this process's (and its
    later children's) :func:`client`. ``open_commit`` runs in the appender and opens its own
    connection. It stops with :meth:`Appender.stop`, or when this process exits."""
    folder = Path(tempfile.mkdtemp(prefix="pds-log-"))  # mode 0700
    path = folder / SOCKET_NAME
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(128)
    stop_read, stop_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the appender
        os.close(stop_write)
        # Ctrl-C or a service manager's SIGTERM stops the server, whose workers may still be
        # finishing requests: the appender goes once they are all gone (the pipe closes).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        code = 0
        try:
            serve(listener, open_commit(), stop_read)
        except BaseException as exc:  # noqa: BLE001 - say so and go: workers append directly
            reason = exc.message if isinstance(exc, PdsError) else repr(exc)
            os.write(2, f"pds: the access log's appender stopped ({reason}); {GONE}\n".encode())
            code = 1
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            os._exit(code)  # never run the parent's exit handlers or close its connections
    os.close(stop_read)
    listener.close()
    key = str(lock_path(database))
    _clients[key] = Client(path, database.parent)
    running = Appender(pid, path, key, stop_write)
    atexit.register(running.stop)
    return running
