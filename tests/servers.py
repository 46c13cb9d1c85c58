"""Real processes the tests start and talk to: a free port, a program started in its own
process group and waited for until it answers, stopped with its children afterwards, a
real `pds serve`, and the strict OAuth client's whole flow (openid-client, tests/node)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from .conftest import PASSPHRASE

NODE = shutil.which("node")
FLOW = Path(__file__).parent / "node" / "flow.mjs"


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, str, bytes]:
    """GET ``url``: status, Content-Type and body, errors (4xx, 5xx) included."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def answers(url: str) -> Callable[[], bool]:
    """A readiness check for :func:`running`: ``url`` answers 200."""
    return lambda: get(url)[0] == 200


@contextmanager
def running(
    argv: Sequence[str],
    log: Path,
    ready: Callable[[], bool],
    *,
    env: Mapping[str, str] | None = None,
    errors: Path | None = None,
    what: str | None = None,
    timeout: float = 60,
) -> Iterator[subprocess.Popen]:
    """``argv`` in a process group of its own, its output in ``log`` (stderr in ``errors``
    when given), once ``ready()`` is true (refused, reset and cut-off connections count as
    not yet); SIGTERM to the whole group when the block ends. The test fails with the
    program's output if it stops or is not ready within ``timeout`` seconds."""
    what = what or Path(argv[0]).name
    shown = errors or log
    with log.open("wb") as out, (errors or Path(os.devnull)).open("wb") as err:
        proc = subprocess.Popen(
            list(argv),
            env=None if env is None else dict(env),
            stdout=out,
            stderr=err if errors else subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert proc.poll() is None, f"{what} stopped:\n{shown.read_text()}"
            assert time.monotonic() < deadline, f"{what} did not start:\n{shown.read_text()}"
            try:
                if ready():
                    break
            except (OSError, http.client.HTTPException):  # not listening yet
                pass
            time.sleep(0.2)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


@contextmanager
def serving(
    env: dict[str, str],
    port: int,
    log: Path,
    workers: int = 2,
    threads: int = 1,
    prefix: Sequence[str] = (),
) -> Iterator[subprocess.Popen]:
    """A real `pds serve` on 127.0.0.1:``port`` (its output in ``log``; run under
    ``prefix``, a program that runs the command it is given), up once /healthz answers."""
    sizes = ["--workers", str(workers), "--threads", str(threads)]
    argv = [*prefix, sys.executable, "-m", "pds", "serve", "--port", str(port), *sizes]
    healthz = answers(f"http://127.0.0.1:{port}/healthz")
    with running(argv, log, healthz, env=env, what="pds serve") as proc:
        yield proc


def pds(env: Mapping[str, str], *args: str) -> str:
    """``pds *args``, which must succeed; its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "pds", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def flow_ok(base: str) -> dict:
    """What tests/node/flow.mjs prints for the demo vault's whole flow at ``base``."""
    return {
        "discovered": {"issuer": base, "pkce": ["S256"], "iss_parameter": True},
        "signed_in": True,
        "consented": True,
        "callback_has_iss": True,
        "token": {"type": "bearer", "scope": "read:transactions", "expires_in": 3600},
        "records": {"status": 200, "count": 5},
        "refresh_rotated": True,
        "read_after_refresh": 200,
        "read_after_revoke": 401,
        "challenge": "invalid_token",
        "ok": True,
    }


def openid_flow(
    base: str,
    client_id: str,
    secret: str,
    *extra: str,
    ca: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> dict:
    """openid-client's whole flow against the issuer ``base`` (redirect URI ``base/cb``),
    trusting ``ca`` besides the system's roots; ``extra``: flow.mjs's scope and mode."""
    assert NODE, "node is needed (make test installs it)"
    run_env = {k: v for k, v in (env or os.environ).items() if k != "NODE_EXTRA_CA_CERTS"}
    if ca is not None:
        run_env["NODE_EXTRA_CA_CERTS"] = str(ca)
    done = subprocess.run(
        [NODE, str(FLOW), base, client_id, secret, base + "/cb", PASSPHRASE, *extra],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout, done.stderr
    return json.loads(done.stdout)
