"""API benchmark: `GET /api/v1/records` under `pds serve` against a bare Flask app, same run.

Run it as a script (``python benchmarks/api.py [--rows N]``) or through
``benchmarks/run.py`` (``make bench``), which passes ``--rows N``: here that means
transactions in the vault. Never part of the test suite.

What one run does (see docs/benchmarks.md, section "API reads"):

1. Setup (not timed): ``Vault.create`` with the default Argon2id cost in a temp dir,
   ``--rows`` synthetic midata transactions through ``pds.importer.import_file``, a client
   registered with ``pds.oauth.admin.add_client`` (what ``pds clients add`` calls), and an
   access token for ``read:transactions`` from the real OAuth flow driven in-process with
   Flask's test client (authorize with PKCE, owner login, consent, token endpoint), as
   tests/oauth_kit.py does. The token is a real row in the vault's token table.
2. Servers on 127.0.0.1, all with the worker and thread counts ``pds serve`` uses by
   default (``--server-threads T`` gives every server T threads per worker instead):
   - **pds**: the real CLI, ``pds serve --port P --workers W --threads T`` (gunicorn via
     ``pds.http.server.run``);
   - **pds, no audit**: ``benchmarks/_api_server.py noaudit``: the same app and the same
     ``pds.http.server.run``, with ``pds.http.api.auth.audit_allowed`` replaced by a no-op in that
     process only (product code is unchanged);
   - **bare Flask**: ``benchmarks/_api_server.py bare``: ``pds.http.server.run`` serving a
     one-route Flask app returning a small JSON document (same gunicorn settings);
   - **Community Solid Server** (optional peer), if ``npm`` can install
     ``@solid/community-server`` under benchmarks/out/: file backend
     (``@css:config/file-root.json``), GET of a small public resource.
3. Load: ``wrk -t2 -c32 -d15s --latency`` (installed with ``apt-get install -y wrk`` if
   missing), one Lua script adding ``Authorization: Bearer <token>`` for every target. Each
   target is warmed up once, then ``--repeats`` rounds, each round every target in turn.
   Requests/s and p50/p99 per run; medians over rounds. Any non-2xx answer or socket error
   fails the run. Access-log entries written during each pds run are counted.
4. ``EXPLAIN QUERY PLAN`` of every SQL statement one records read executes (captured with
   ``sqlite3.Connection.set_trace_callback`` in-process), the records query checked to be
   an index search with no table scan and no temp b-tree.
5. In-process profile (Flask test client, no HTTP): mean time per request audited, not
   audited, and bare; then cProfile of audited reads, cumulative time of each part. When a
   target is missed and py-spy is installed (``pip install py-spy``), ``py-spy record
   --idle --nonblocking`` on every live ``pds serve`` worker during ``--spy-seconds`` more
   of load: where the workers spend their wall time, lock waits included.

The shipped default policies stay in force, with the owner's copy of ``default.toml`` in
PDS_HOME raising the daily rate limit (one run sends more than 10,000 requests).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import platform
import pstats
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from _common import PASSPHRASE, finish, load_helper, pds_env, pds_executable

NAME = "api"
DEFAULT_ROWS = 10_000
CB = "https://bench.example/cb"
PATH = "/api/v1/records?category=transactions&limit=50"
TARGET_RATIO = 0.45
TARGET_P99_MS = 30.0
TARGET_AUDIT_OVERHEAD = 0.15
TARGET_PEER_MULTIPLE = 8.0
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
CSS_DIR = OUT / "css"
CSS_BIN = CSS_DIR / "node_modules" / ".bin" / "community-solid-server"
PEER_RESOURCE = "/bench/hello.json"
PEER_DOCUMENT = b'{"status": "ok", "service": "solid", "items": [1, 2, 3]}\n'

BARE, PDS, NOAUDIT, PEER = "bare", "pds", "pds-noaudit", "css"
LABELS = {
    BARE: "bare Flask (gunicorn, small JSON)",
    PDS: "pds read, audited (pds serve)",
    NOAUDIT: "pds read, audit write no-op",
    PEER: "Community Solid Server GET",
}

# -- small helpers ----------------------------------------------------------------------------


def log(msg: str) -> None:
    print(msg, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def own_vault(app: Any) -> Any:
    """The vault ``pds.http.context.current_vault`` opened for this thread of this process."""
    import threading

    return app.extensions["pds_vaults"][(os.getpid(), threading.get_ident())]


def serve_default(option: str) -> int:
    """What `pds serve` uses when ``--<option>`` is not given (its click default)."""
    from pds.cli.serve import serve

    return next(int(p.default) for p in serve.params if p.name == option)  # type: ignore[arg-type]


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=False
        ).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass

    def version(pkg: str) -> str | None:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "gunicorn": version("gunicorn"),
        "flask": version("flask"),
        "authlib": version("authlib"),
        "cryptography": version("cryptography"),
    }


# -- servers ----------------------------------------------------------------------------------


class Server:
    """A server in its own process group (killed as a group), answering on 127.0.0.1:port."""

    def __init__(
        self, name: str, cmd: list[str], port: int, env: dict[str, str], logdir: Path
    ) -> None:
        self.name, self.cmd, self.port = name, cmd, port
        self.logfile = logdir / f"{name}.log"
        self._log = self.logfile.open("wb")
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, path: str, headers: dict[str, str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}{path}"
        last: object = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(  # noqa: S310 - loopback only
                    urllib.request.Request(url, headers=headers), timeout=5
                ) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError) as exc:
                last = exc
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s ({last}):\n{self.tail()}")

    def tail(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-20:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        # gunicorn's workers share the group: make sure none is left behind
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()


def get(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback only
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback only
        return resp.status, resp.read()


# -- the vault and the token ------------------------------------------------------------------


def make_vault(home: Path, rows: int, tmp: Path) -> dict[str, Any]:
    from pds.demo import write_synthetic_midata
    from pds.importer import import_file
    from pds.settings import Settings
    from pds.vault import Vault

    settings = Settings(home=home)
    start = time.perf_counter()
    with Vault.create(settings, PASSPHRASE) as vault:
        csv_path = write_synthetic_midata(tmp / "api-midata.csv", rows)
        summary = import_file(vault, csv_path, connector="midata")
        st = vault.status()
    csv_path.unlink()
    return {
        "rows": rows,
        "imported": summary.new,
        "records": st["records"],
        "categories": st["categories"],
        "setup_s": time.perf_counter() - start,
    }


RATE_LIMIT_LINE = re.compile(r"^per_day = \d+$", re.M)
BENCH_PER_DAY = 10_000_000  # the most a rate-limit rule accepts


def raise_rate_limit(home: Path) -> str:
    """The owner's copy of the default policy with its daily rate limit at the maximum.

    The shipped default allows a client 10,000 requests a day, which one load run exceeds;
    an owner changes a rule by copying the file into <PDS_HOME>/policies/ (same name wins).
    The rule stays in force, so its evaluation is still part of every measured request.
    """
    try:
        from pds.policyfiles.loader import TEMPLATES, read_file
    except ImportError:
        return "no policy engine in this pds"
    shipped = TEMPLATES / "default.toml"
    if not shipped.exists():
        return "no shipped default policy"
    text, n = RATE_LIMIT_LINE.subn(f"per_day = {BENCH_PER_DAY}", shipped.read_text())
    if not n:
        return "shipped default policy has no rate limit"
    own = home / "policies" / "default.toml"
    own.parent.mkdir(parents=True, exist_ok=True)
    own.write_text(text, encoding="utf-8")
    read_file(own)  # refuse to run on a file pds would not load
    return (
        f"shipped default policies in force, rate limit raised to {BENCH_PER_DAY:,} a day"
        " (owner's copy in PDS_HOME/policies/default.toml)"
    )


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    if not m:
        raise RuntimeError(f"no CSRF token in the page:\n{html[:2000]}")
    return m.group(1)


def obtain_token(home: Path) -> dict[str, Any]:
    """A real access token for read:transactions: the OAuth code flow with PKCE, in-process."""
    import base64

    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    from pds.http.app import create_app
    from pds.oauth import admin
    from pds.settings import Settings
    from pds.vault import Vault

    settings = Settings(home=home)
    with Vault.open(settings, PASSPHRASE) as vault:
        client, secret = admin.add_client(vault, "Benchmark Bank", [CB])
        app = create_app(settings, vault.keyring)
        http = app.test_client()
        verifier = secrets.token_urlsafe(48)
        url = "/oauth/authorize?" + urlencode(
            {
                "response_type": "code",
                "client_id": client.client_id,
                "redirect_uri": CB,
                "scope": "read:transactions",
                "state": secrets.token_urlsafe(8),
                "code_challenge": create_s256_code_challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        page = http.get(url)
        if page.status_code == 302 and "/login" in page.headers["Location"]:
            login = http.get("/login", query_string={"next": url})
            resp = http.post(
                "/login",
                data={"passphrase": PASSPHRASE, "csrf_token": _csrf(login.text), "next": url},
            )
            if resp.status_code != 303:
                raise RuntimeError(f"login failed: {resp.status_code} {resp.text[:500]}")
            page = http.get(url)
        if page.status_code != 200:
            raise RuntimeError(f"consent page: {page.status_code} {page.text[:500]}")
        resp = http.post(url, data={"csrf_token": _csrf(page.text), "decision": "allow"})
        if resp.status_code != 303:
            raise RuntimeError(f"consent: {resp.status_code} {resp.text[:500]}")
        q = {k: v[0] for k, v in parse_qs(urlsplit(resp.headers["Location"]).query).items()}
        basic = base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()
        resp = http.post(
            "/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": q["code"],
                "redirect_uri": CB,
                "code_verifier": verifier,
            },
            headers={"Authorization": f"Basic {basic}"},
        )
        if resp.status_code != 200:
            raise RuntimeError(f"token endpoint: {resp.status_code} {resp.text[:500]}")
        body = resp.json
        (rows,) = vault.conn.execute("SELECT count(*) FROM tokens").fetchone()
    return {
        "client_id": client.client_id,
        "access_token": body["access_token"],
        "scope": body["scope"],
        "expires_in": body["expires_in"],
        "token_rows": rows,
    }


def audit_count(db_path: Path) -> int:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    finally:
        conn.close()


# -- load generators --------------------------------------------------------------------------

LUA = """\
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer %(token)s"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\\"requests\\": %%.0f, \\"duration_us\\": %%.0f, \\"bytes\\": %%.0f, " ..
    "\\"connect\\": %%.0f, \\"read\\": %%.0f, \\"write\\": %%.0f, \\"status\\": %%.0f, " ..
    "\\"timeout\\": %%.0f, \\"p50_us\\": %%.1f, \\"p90_us\\": %%.1f, \\"p99_us\\": %%.1f, " ..
    "\\"max_us\\": %%.1f, \\"mean_us\\": %%.1f}\\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
"""


def ensure_wrk() -> tuple[str | None, str]:
    found = shutil.which("wrk")
    if found:
        return found, "found"
    if shutil.which("apt-get") is None:
        return None, "wrk is not installed and there is no apt-get"
    log("wrk is missing: apt-get install -y wrk")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    proc = subprocess.run(
        ["apt-get", "install", "-y", "-q", "wrk"], env=env, capture_output=True, text=True
    )
    if proc.returncode != 0 or not shutil.which("wrk"):
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        proc = subprocess.run(
            ["apt-get", "install", "-y", "-q", "wrk"], env=env, capture_output=True, text=True
        )
    found = shutil.which("wrk")
    if found:
        return found, "installed with apt-get"
    return None, f"apt-get install wrk failed: {proc.stderr.strip()[-300:]}"


def run_wrk(
    wrk: str, url: str, script: Path, *, threads: int, connections: int, seconds: float
) -> dict[str, Any]:
    cmd = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr}")
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{proc.stdout}\n{proc.stderr}")
    r = json.loads(line[len("WRKJSON ") :])
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["text"] = proc.stdout.replace(line, "").rstrip()
    return r


def _py_load_worker(args: tuple[str, str, int, dict[str, str], float]) -> dict[str, Any]:
    """One process of the fallback load generator: ``conns`` threads, each a request loop."""
    import http.client
    import threading

    host_port, path, conns, headers, seconds = args
    host, port = host_port.rsplit(":", 1)
    lat: list[float] = []
    errors = [0]
    non2xx = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def loop() -> None:
        mine: list[float] = []
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        while True:
            start = time.perf_counter()
            if start >= deadline:
                break
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if not 200 <= resp.status < 400:
                    with lock:
                        non2xx[0] += 1
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
            except (OSError, http.client.HTTPException):
                conn.close()
                with lock:
                    errors[0] += 1
                continue
            mine.append(time.perf_counter() - start)
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=loop) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"lat": lat, "errors": errors[0], "non2xx": non2xx[0]}


def run_python_load(
    url: str, token: str, *, threads: int, connections: int, seconds: float
) -> dict[str, Any]:
    """Fallback when wrk cannot be installed: ``threads`` processes x threads of http.client."""
    import multiprocessing

    parts = urlsplit(url)
    headers = {"Authorization": f"Bearer {token}"}
    per = [connections // threads + (i < connections % threads) for i in range(threads)]
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    jobs = [(parts.netloc, path, n, headers, seconds) for n in per]
    start = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(threads) as pool:
        results = pool.map(_py_load_worker, jobs)
    took = time.perf_counter() - start
    lat = sorted(x for r in results for x in r["lat"])

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1e6 if lat else 0.0

    n = len(lat)
    return {
        "requests": n,
        "duration_us": took * 1e6,
        "rps": n / took,
        "connect": 0,
        "read": sum(r["errors"] for r in results),
        "write": 0,
        "status": sum(r["non2xx"] for r in results),
        "timeout": 0,
        "p50_us": pct(50),
        "p90_us": pct(90),
        "p99_us": pct(99),
        "max_us": lat[-1] * 1e6 if lat else 0.0,
        "mean_us": statistics.fmean(lat) * 1e6 if lat else 0.0,
        "text": "",
    }


# -- the peer: Community Solid Server ---------------------------------------------------------


def ensure_css(timeout_s: float) -> tuple[Path | None, str]:
    if CSS_BIN.exists():
        return CSS_BIN, "found under benchmarks/out/css"
    npm = shutil.which("npm")
    if npm is None:
        return None, "npm is not installed"
    CSS_DIR.mkdir(parents=True, exist_ok=True)
    if not (CSS_DIR / "package.json").exists():
        (CSS_DIR / "package.json").write_text('{"name": "pds-bench-peer", "private": true}\n')
    log(f"installing @solid/community-server under {CSS_DIR} (npm, up to {timeout_s:.0f} s)")
    try:
        proc = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "@solid/community-server"],
            cwd=CSS_DIR,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return None, f"npm install did not finish within {timeout_s:.0f} s"
    if proc.returncode != 0 or not CSS_BIN.exists():
        return None, f"npm install failed: {proc.stderr.strip()[-300:]}"
    return CSS_BIN, "installed with npm"


def css_version() -> str | None:
    pkg = CSS_DIR / "node_modules" / "@solid" / "community-server" / "package.json"
    try:
        return json.loads(pkg.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def start_css(binary: Path, tmp: Path, logdir: Path) -> Server:
    port = free_port()
    root = tmp / "css-root"
    root.mkdir()
    cmd = [
        str(binary),
        "-c",
        "@css:config/file-root.json",
        "-f",
        str(root),
        "-p",
        str(port),
        "-b",
        f"http://127.0.0.1:{port}/",
        "-l",
        "warn",
    ]
    server = Server(PEER, cmd, port, dict(os.environ), logdir)
    server.wait_ready("/", {}, timeout=180)
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{PEER_RESOURCE}",
        data=PEER_DOCUMENT,
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback only
        if resp.status not in (200, 201, 205):
            raise RuntimeError(f"PUT of the peer resource answered {resp.status}")
    return server


# -- query plans ------------------------------------------------------------------------------


def _plan_ok(rows: list[str]) -> bool:
    """An index search: no table or index scan, no temp b-tree."""
    return all(
        r.startswith("SEARCH") and "INDEX" in r and "TEMP B-TREE" not in r for r in rows
    ) and bool(rows)


def query_plans(home: Path, token: str) -> dict[str, Any]:
    """Every statement one audited records read runs, and its EXPLAIN QUERY PLAN."""
    from pds.http.app import create_app
    from pds.settings import Settings
    from pds.vault import Vault

    settings = Settings(home=home)
    with Vault.open(settings, PASSPHRASE) as vault:
        app = create_app(settings, vault.keyring)
    http = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert http.get(PATH, headers=headers).status_code == 200
    conn: sqlite3.Connection = own_vault(app).conn
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        resp = http.get(PATH, headers=headers)
    finally:
        conn.set_trace_callback(None)
    assert resp.status_code == 200, resp.text
    statements = []
    for sql in dict.fromkeys(seen):
        head = sql.lstrip().split(None, 1)[0].upper()
        entry: dict[str, Any] = {"sql": sql, "plan": []}
        if head in {"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"}:
            entry["plan"] = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql)]
        statements.append(entry)
    records = [s for s in statements if re.match(r"\s*SELECT .* FROM records WHERE", s["sql"])]
    own_vault(app).close()
    return {
        "statements": statements,
        "records_query": records[0] if records else None,
        "records_plan_ok": bool(records) and _plan_ok(records[0]["plan"]),
    }


# -- in-process profile -----------------------------------------------------------------------

PARTS = [
    ("token check (authlib + token/grant lookup)", "pds/http/api/auth.py", "authenticate"),
    ("query + decrypt 50 records (Vault.page)", "pds/vault/__init__.py", "page"),
    ("  of which the SQL query (query_rows)", "pds/db/records.py", "query_rows"),
    ("audit append (audit_allowed)", "pds/http/api/auth.py", "audit_allowed"),
    ("  of which Vault.audit (entry, hash, INSERT, COMMIT)", "pds/vault/__init__.py", "audit"),
    ("render: filter payloads (_out)", "pds/http/api/records.py", "_out"),
    ("render: JSON encode (flask jsonify)", "flask/json/__init__.py", "jsonify"),
    ("view body in all (list_records)", "pds/http/api/records.py", "list_records"),
]


def profile_inprocess(home: Path, token: str, n: int) -> dict[str, Any]:
    """Per-request cost through the Flask test client (no HTTP, no gunicorn)."""
    import pds.http.api
    import pds.http.api.auth
    import pds.http.api.records
    from pds.http.app import create_app
    from pds.settings import Settings
    from pds.vault import Vault

    helper = load_helper("_api_server")
    settings = Settings(home=home)
    with Vault.open(settings, PASSPHRASE) as vault:
        app = create_app(settings, vault.keyring)
    http = app.test_client()
    bare = helper.bare_app().test_client()
    headers = {"Authorization": f"Bearer {token}"}

    def loop(client: Any, path: str, count: int) -> float:
        start = time.perf_counter()
        for _ in range(count):
            resp = client.get(path, headers=headers)
            if resp.status_code != 200:
                raise RuntimeError(f"{path}: {resp.status_code} {resp.text[:300]}")
        return (time.perf_counter() - start) / count * 1e6

    def timed(fn: Callable[[], float]) -> float:
        fn()  # warm
        return min(fn() for _ in range(3))

    audited = timed(lambda: loop(http, PATH, n))
    real = pds.http.api.auth.audit_allowed
    pds.http.api.auth.audit_allowed = pds.http.api.records.audit_allowed = helper._no_audit
    try:
        unaudited = timed(lambda: loop(http, PATH, n))
    finally:
        pds.http.api.auth.audit_allowed = pds.http.api.records.audit_allowed = real
    bare_us = timed(lambda: loop(bare, "/", n))

    prof = cProfile.Profile()
    prof.enable()
    loop(http, PATH, n)
    prof.disable()
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    total_tt = sum(v[2] for v in stats.values())

    def cum(file_end: str, func: str) -> float:
        return sum(
            v[3]
            for (f, _line, name), v in stats.items()
            if name == func and f.replace("\\", "/").endswith(file_end)
        )

    parts = [
        {"part": label, "us_per_request": cum(f, fn) / n * 1e6, "share": cum(f, fn) / total_tt}
        for label, f, fn in PARTS
    ]
    top = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:12]
    top_funcs = [
        {
            "function": _short(pstats.func_std_string(key)),
            "calls_per_request": v[1] / n,
            "self_us_per_request": v[2] / n * 1e6,
        }
        for key, v in top
    ]
    own_vault(app).close()
    return {
        "requests": n,
        "audited_us": audited,
        "unaudited_us": unaudited,
        "bare_us": bare_us,
        "profiled_us": total_tt / n * 1e6,
        "parts": parts,
        "top_functions": top_funcs,
    }


def _short(where: str) -> str:
    for marker in ("/site-packages/", f"/python{sys.version_info[0]}.{sys.version_info[1]}/"):
        if marker in where:
            return where.split(marker, 1)[1]
    return where.replace(str(ROOT) + "/", "")


# -- py-spy on the live pds workers -----------------------------------------------------------

SPY_FUNCS = [
    ("gunicorn worker: handle one request", "SyncWorker.handle "),
    ("Flask app (wsgi_app)", "Flask.wsgi_app "),
    ("token check (authenticate)", "authenticate "),
    ("query + decrypt (Vault.page)", "Vault.page "),
    ("audit append (AuditLog.record)", "AuditLog.record "),
    ("render (jsonify)", "jsonify "),
    ("gunicorn: send response (Response.write, close)", "Response.write "),
    ("gunicorn: wait for a connection (accept/select)", "SyncWorker.wait "),
]


def py_spy_executable() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def spy_workers(
    spy: str, master: int, seconds: float, load: Callable[[float], Any], tmp: Path
) -> dict[str, Any]:
    """py-spy (``--idle --nonblocking``) on every worker while ``load`` runs; wall-time shares."""
    workers = children(master)
    procs = []
    for w in workers:
        out = tmp / f"spy-{w}.txt"
        cmd = [spy, "record", "--pid", str(w), "--duration", f"{seconds:.0f}", "--rate", "200"]
        cmd += ["--idle", "--nonblocking", "--format", "raw", "--output", str(out)]
        procs.append((out, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)))
    run = load(seconds + 3)
    notes = [p.communicate(timeout=seconds + 60)[0].decode(errors="replace") for _, p in procs]
    total = 0
    inclusive: dict[str, int] = dict.fromkeys([label for label, _ in SPY_FUNCS], 0)
    leaves: dict[str, int] = {}
    for out, _ in procs:
        if not out.exists():
            continue
        for line in out.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            total += n
            frames = stack.split(";")
            for label, needle in SPY_FUNCS:
                if any(f.startswith(needle) for f in frames):
                    inclusive[label] += n
            leaf = _short(frames[-1])
            leaves[leaf] = leaves.get(leaf, 0) + n
    top = sorted(leaves.items(), key=lambda kv: kv[1], reverse=True)[:12]
    return {
        "workers": workers,
        "samples": total,
        "rps_while_sampled": run["rps"],
        "inclusive": [
            {"part": k, "share": v / total if total else 0.0} for k, v in inclusive.items()
        ],
        "top_lines": [{"line": k, "share": v / total if total else 0.0} for k, v in top],
        "notes": [n.strip().splitlines()[-1] if n.strip() else "" for n in notes],
    }


# -- the run ----------------------------------------------------------------------------------


def _stat(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    started = datetime.now(UTC)
    workers = serve_default("workers")
    server_threads = args.server_threads or serve_default("threads")
    result: dict[str, Any] = {
        "name": NAME,
        "started": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {
            "rows": args.rows,
            "repeats": args.repeats,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "threads": args.threads,
            "workers": workers,
            "server_threads": server_threads,
            "path": PATH,
        },
    }
    wrk, wrk_note = (None, "--loader python") if args.loader == "python" else ensure_wrk()
    result["loader"] = {"tool": "wrk" if wrk else "python", "note": wrk_note}
    if wrk:
        ver = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
        result["loader"]["version"] = (ver.stdout or ver.stderr).splitlines()[0]
    log(f"load generator: {result['loader']}")

    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="pds-bench-api-", dir=args.tmpdir) as tmp_s:
        tmp = Path(tmp_s)
        home = tmp / "vault"
        logdir = OUT / "api-logs" if args.keep_logs else tmp
        logdir.mkdir(parents=True, exist_ok=True)
        log(f"creating a vault with {args.rows:,} transactions ...")
        result["vault"] = make_vault(home, args.rows, tmp)
        result["policies"] = raise_rate_limit(home)
        log(f"policies: {result['policies']}")
        tok = obtain_token(home)
        token = tok.pop("access_token")
        result["token"] = tok
        log(f"token for {tok['scope']} via the OAuth code flow ({tok['token_rows']} token row)")
        script = tmp / "bearer.lua"
        script.write_text(LUA % {"token": token})
        auth = {"Authorization": f"Bearer {token}"}
        try:
            py = sys.executable
            env = pds_env(home)
            targets: dict[str, tuple[Server, str]] = {}
            port = free_port()
            per_worker = ["--workers", str(workers), "--threads", str(server_threads)]
            cmd = [pds_executable(), "serve", "--port", str(port), *per_worker]
            srv = Server(PDS, cmd, port, env, logdir)
            servers.append(srv)
            targets[PDS] = (srv, PATH)
            helper = str(HERE / "_api_server.py")
            for name, mode, path in ((NOAUDIT, "noaudit", PATH), (BARE, "bare", "/")):
                port = free_port()
                cmd = [py, helper, mode, "--port", str(port), *per_worker]
                srv = Server(name, cmd, port, env, logdir)
                servers.append(srv)
                targets[name] = (srv, path)
            for srv, path in targets.values():
                srv.wait_ready(path, auth, timeout=60)
            peer_note = "skipped (--no-peer)"
            if not args.no_peer:
                binary, peer_note = ensure_css(args.peer_install_timeout)
                if binary is not None:
                    try:
                        srv = start_css(binary, tmp, logdir)
                        servers.append(srv)
                        targets[PEER] = (srv, PEER_RESOURCE)
                        peer_note += f"; @solid/community-server {css_version()}"
                    except (RuntimeError, OSError) as exc:
                        peer_note = f"could not start: {exc}"[:400]
            result["peer"] = {"note": peer_note, "running": PEER in targets}
            log(f"peer: {peer_note}")

            sizes = {}
            for name, (srv, path) in targets.items():
                status, body = get(f"http://127.0.0.1:{srv.port}{path}", auth)
                sizes[name] = len(body)
                if name in (PDS, NOAUDIT):
                    n = len(json.loads(body)["records"])
                    if n != 50:
                        raise RuntimeError(f"{name} answered {n} records, not 50")
            result["response_bytes"] = sizes

            def load(name: str, seconds: float) -> dict[str, Any]:
                srv, path = targets[name]
                url = f"http://127.0.0.1:{srv.port}{path}"
                if wrk:
                    return run_wrk(
                        wrk,
                        url,
                        script,
                        threads=args.threads,
                        connections=args.connections,
                        seconds=seconds,
                    )
                return run_python_load(
                    url, token, threads=args.threads, connections=args.connections, seconds=seconds
                )

            for name in targets:
                log(f"warm-up {name} {args.warmup:g} s")
                load(name, args.warmup)
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
            db_path = home / "vault.db"
            for rnd in range(args.repeats):
                for name in targets:
                    before = audit_count(db_path)
                    r = load(name, args.duration)
                    time.sleep(args.settle)  # let requests in flight when wrk stopped finish
                    r["audit_entries"] = audit_count(db_path) - before
                    bad = r["status"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
                    if bad:
                        raise RuntimeError(f"{name}: {bad} errors or non-2xx answers:\n{r}")
                    runs[name].append(r)
                    log(
                        f"round {rnd + 1} {name:<12} {r['rps']:8,.0f} req/s"
                        f"  p50 {r['p50_us'] / 1000:6.2f} ms  p99 {r['p99_us'] / 1000:6.2f} ms"
                        f"  audit entries +{r['audit_entries']:,}"
                    )
            rps = {name: statistics.median(r["rps"] for r in rs) for name, rs in runs.items()}
            p99 = statistics.median(r["p99_us"] for r in runs[PDS]) / 1000
            missed = (
                rps[PDS] < TARGET_RATIO * rps[BARE]
                or p99 > TARGET_P99_MS
                or (rps[NOAUDIT] - rps[PDS]) / rps[NOAUDIT] > TARGET_AUDIT_OVERHEAD
            )
            spy = py_spy_executable()
            result["py_spy"] = None
            if args.spy_seconds > 0 and spy and (missed or args.always_spy):
                log(f"a target was missed: py-spy on the pds workers for {args.spy_seconds:g} s")
                master = targets[PDS][0].proc.pid
                result["py_spy"] = spy_workers(
                    spy, master, args.spy_seconds, lambda sec: load(PDS, sec), tmp
                )
            elif missed:
                result["py_spy"] = {"skipped": "py-spy is not installed (pip install py-spy)"}
            result["servers_alive_after_load"] = {s.name: s.proc.poll() is None for s in servers}
        finally:
            for srv in reversed(servers):
                srv.stop()
            result["server_logs_tail"] = {s.name: s.tail()[-1500:] for s in servers}

        result["plans"] = query_plans(home, token)
        log("profiling in-process ...")
        result["profile"] = profile_inprocess(home, token, args.profile_requests)

    summary_runs: dict[str, Any] = {}
    for name, rs in runs.items():
        summary_runs[name] = {
            "rps": _stat([r["rps"] for r in rs]),
            "p50_ms": _stat([r["p50_us"] / 1000 for r in rs]),
            "p99_ms": _stat([r["p99_us"] / 1000 for r in rs]),
            "requests": [int(r["requests"]) for r in rs],
            "audit_entries": [r["audit_entries"] for r in rs],
            "wrk_text": [r["text"] for r in rs],
        }
    result["runs"] = summary_runs
    med = {name: s["rps"]["median"] for name, s in summary_runs.items()}
    per_round = {
        "pds_over_bare": [a["rps"] / b["rps"] for a, b in zip(runs[PDS], runs[BARE], strict=True)],
        "audit_overhead": [
            (n["rps"] - a["rps"]) / n["rps"] for a, n in zip(runs[PDS], runs[NOAUDIT], strict=True)
        ],
    }
    ratios: dict[str, Any] = {
        "pds_over_bare": med[PDS] / med[BARE],
        "noaudit_over_bare": med[NOAUDIT] / med[BARE],
        "audit_overhead": (med[NOAUDIT] - med[PDS]) / med[NOAUDIT],
        "per_round": per_round,
    }
    if PEER in med:
        ratios["pds_over_peer"] = med[PDS] / med[PEER]
        per_round["pds_over_peer"] = [
            a["rps"] / b["rps"] for a, b in zip(runs[PDS], runs[PEER], strict=True)
        ]
    result["ratios"] = ratios
    p99 = summary_runs[PDS]["p99_ms"]["median"]
    summary = [
        {
            "metric": "pds audited read / bare Flask (req/s, median of rounds)",
            "value": f"{ratios['pds_over_bare']:.0%}",
            "target": f">= {TARGET_RATIO:.0%}",
            "met": ratios["pds_over_bare"] >= TARGET_RATIO,
        },
        {
            "metric": f"pds audited read p99 at {args.connections} connections",
            "value": f"{p99:.1f} ms",
            "target": f"<= {TARGET_P99_MS:.0f} ms",
            "met": p99 <= TARGET_P99_MS,
        },
        {
            "metric": "audit append cost (no-audit rate - audited rate) / no-audit rate",
            "value": f"{ratios['audit_overhead']:.0%}",
            "target": f"<= {TARGET_AUDIT_OVERHEAD:.0%}",
            "met": ratios["audit_overhead"] <= TARGET_AUDIT_OVERHEAD,
        },
        {
            "metric": "records query plan: index search, no scan, no temp b-tree",
            "value": "yes" if result["plans"]["records_plan_ok"] else "no",
            "target": "yes",
            "met": result["plans"]["records_plan_ok"],
        },
    ]
    if "pds_over_peer" in ratios:
        summary.append(
            {
                "metric": "pds audited read / Community Solid Server GET",
                "value": f"{ratios['pds_over_peer']:.1f}x",
                "target": f">= {TARGET_PEER_MULTIPLE:g}x",
                "met": ratios["pds_over_peer"] >= TARGET_PEER_MULTIPLE,
            }
        )
    else:
        summary.append(
            {
                "metric": "pds audited read / Community Solid Server GET",
                "value": f"not measured: {result['peer']['note']}",
                "target": f">= {TARGET_PEER_MULTIPLE:g}x",
                "met": None,
            }
        )
    result["summary"] = summary
    result["took_s"] = (datetime.now(UTC) - started).total_seconds()
    return result


# -- the report -------------------------------------------------------------------------------


def report(r: dict[str, Any]) -> str:
    m, s = r["machine"], r["settings"]
    lines = [
        f"API benchmark ({r['started']}, {r['took_s']:.0f} s)",
        f"  machine: {m['nproc']} CPUs ({m['cpu_model']}), Python {m['python']},"
        f" SQLite {m['sqlite']}, gunicorn {m['gunicorn']}, Flask {m['flask']}",
        f"  vault: {r['vault']['records']:,} records ({r['vault']['imported']:,} transactions"
        f" imported); token for {r['token']['scope']} from the OAuth code flow",
        f"  servers: gunicorn gthread, {s['workers']} workers x {s['server_threads']} threads"
        " (`pds serve` defaults unless"
        " --server-threads), preload_app, via pds.http.server.run",
        f"  load: {r['loader']['tool']} {r['loader'].get('version', '')} ({r['loader']['note']}),"
        f" {s['threads']} threads, {s['connections']} connections, {s['duration_s']:g} s per run"
        f" after a {s['warmup_s']:g} s warm-up, {s['repeats']} rounds",
        f"  pds request: GET {s['path']} with Authorization: Bearer",
        f"  policies: {r.get('policies')}",
        f"  peer: {r['peer']['note']}",
        "",
        f"  {'target':<36} {'req/s median (min-max)':>26} {'p50 ms':>7} {'p99 ms':>7} {'bytes':>6}",
    ]
    for name, run in r["runs"].items():
        rps, p50, p99 = run["rps"], run["p50_ms"]["median"], run["p99_ms"]["median"]
        lines.append(
            f"  {LABELS[name]:<36} {rps['median']:>9,.0f} ({rps['min']:,.0f}-{rps['max']:,.0f})"
            f"{'':>3} {p50:>7.2f} {p99:>7.2f} {r['response_bytes'][name]:>6}"
        )
    ra = r["ratios"]
    pr = ra["per_round"]

    def rng(values: list[float], fmt: str) -> str:
        return "rounds " + ", ".join(format(v, fmt) for v in values)

    lines += [
        "",
        f"  pds audited / bare Flask     : {ra['pds_over_bare']:.1%}"
        f"  ({rng(pr['pds_over_bare'], '.1%')})",
        f"  pds no-audit / bare Flask    : {ra['noaudit_over_bare']:.1%}",
        f"  audit append cost            : {ra['audit_overhead']:.1%}"
        f"  ({rng(pr['audit_overhead'], '.1%')})",
    ]
    if "pds_over_peer" in ra:
        lines.append(
            f"  pds audited / Solid server   : {ra['pds_over_peer']:.1f}x"
            f"  ({rng(pr['pds_over_peer'], '.1f')})"
        )
    pds_run = r["runs"][PDS]
    lines.append(
        f"  access-log entries written per pds run: {pds_run['audit_entries']}"
        f" (wrk completed {pds_run['requests']}); no-audit runs:"
        f" {r['runs'][NOAUDIT]['audit_entries']}"
    )
    lines += ["", "Query plans of one audited records read (every statement it runs):"]
    for st in r["plans"]["statements"]:
        sql = st["sql"] if len(st["sql"]) < 160 else st["sql"][:157] + "..."
        lines.append(f"  {sql}")
        for p in st["plan"]:
            lines.append(f"      -> {p}")
    lines.append(
        "  records query: "
        + ("index search, no scan, no temp b-tree" if r["plans"]["records_plan_ok"] else "NOT OK")
    )
    p = r["profile"]
    lines += [
        "",
        f"In-process (Flask test client, no HTTP), {p['requests']:,} requests, best of 3:",
        f"  audited read {p['audited_us']:.0f} us, audit write no-op {p['unaudited_us']:.0f} us,"
        f" bare Flask {p['bare_us']:.0f} us per request",
        f"  cProfile of audited reads ({p['profiled_us']:.0f} us/request under the profiler),"
        " cumulative time:",
    ]
    for part in p["parts"]:
        lines.append(
            f"    {part['part']:<54} {part['us_per_request']:7.0f} us {part['share']:>5.0%}"
        )
    lines.append("  top functions by self time (us/request under cProfile):")
    for f in p["top_functions"][:10]:
        lines.append(
            f"    {f['self_us_per_request']:7.1f}  {f['calls_per_request']:6.1f}x  {f['function']}"
        )
    spy = r.get("py_spy")
    if spy and "skipped" in spy:
        lines += ["", f"py-spy: {spy['skipped']}"]
    elif spy:
        lines += [
            "",
            f"py-spy on the live pds workers {spy['workers']} (wall time, --idle,"
            f" {spy['samples']:,} samples, {spy['rps_while_sampled']:,.0f} req/s while sampled):",
        ]
        for part in spy["inclusive"]:
            lines.append(f"    {part['part']:<54} {part['share']:>6.1%}")
        lines.append("  top lines (where the worker is, wall time):")
        for t in spy["top_lines"][:10]:
            lines.append(f"    {t['share']:>6.1%}  {t['line']}")
    lines.append("")
    for item in r["summary"]:
        verdict = {True: "met", False: "NOT met", None: "not measured"}[item["met"]]
        lines.append(f"  {item['metric']}: {item['value']} (target {item['target']}): {verdict}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--rows", type=int, default=DEFAULT_ROWS, help="transactions in the vault (10,000)"
    )
    ap.add_argument("--repeats", type=int, default=3, help="load rounds per target (3)")
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per load run (15)")
    ap.add_argument("--warmup", type=float, default=5.0, help="warm-up seconds per target (5)")
    ap.add_argument(
        "--settle", type=float, default=1.0, help="idle seconds after each load run (1)"
    )
    ap.add_argument("--connections", type=int, default=32, help="open connections (32)")
    ap.add_argument("--threads", type=int, default=2, help="load generator threads (2)")
    ap.add_argument(
        "--server-threads", type=int, default=0, help="threads per server worker (pds's default)"
    )
    ap.add_argument("--loader", choices=["wrk", "python"], default="wrk")
    ap.add_argument("--no-peer", action="store_true", help="skip the Community Solid Server")
    ap.add_argument(
        "--peer-install-timeout", type=float, default=240.0, help="npm install limit, s (240)"
    )
    ap.add_argument(
        "--profile-requests", type=int, default=1000, help="in-process requests to profile"
    )
    ap.add_argument(
        "--spy-seconds", type=float, default=10.0, help="py-spy sampling when a target is missed"
    )
    ap.add_argument("--always-spy", action="store_true", help="py-spy even if targets are met")
    ap.add_argument("--keep-logs", action="store_true", help="server logs in benchmarks/out/")
    ap.add_argument("--tmpdir", help="where to put the temporary files (default: $TMPDIR)")
    ap.add_argument("--json", dest="json_out", help="also write the results as JSON here")
    args = ap.parse_args(argv)
    if args.rows < 50 or args.repeats < 1:
        ap.error("--rows must be at least 50 and --repeats at least 1")
    result = run_benchmark(args)
    return finish(result, report(result), args.json_out)


if __name__ == "__main__":
    sys.exit(main())
