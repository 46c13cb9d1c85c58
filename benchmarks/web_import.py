"""Web import benchmark: a 105 MB Apple Health export through the browser path against `pds
import`, and the web export against `pds export`.

Run it as a script (``python benchmarks/web_import.py [--rows N]``) or through
``benchmarks/run.py`` (``make bench``), which passes ``--rows N``: here that means records
in the export (420,000 by default: a 105 MB file). Never part of the test suite.

What one run does (docs/benchmarks.md, "Web import and export"):

1. Writes a synthetic Apple Health ``export.xml`` with ``write_health_export`` from
   ``benchmarks/connectors.py`` (not timed).
2. ``--repeats`` times, alternating:
   - **CLI**: ``pds init`` (not timed), then ``pds import --json export.xml``; wall clock
     and peak RSS of the whole process (kernel rusage via ``wait4``);
   - **web**: ``pds init`` in another fresh vault, ``pds serve --workers W`` (gunicorn, as
     shipped), the owner signed in over HTTP, then timed from the first byte of the upload
     to the job's ``done``: a multipart ``POST /import`` streamed from disk in 1 MiB pieces
     (``http.client``; never the whole file in memory), then ``GET /jobs/<id>.json`` every
     ``POLL_SECONDS`` (0.2 s: the time is late by at most that; the page's own script polls
     every second). Peak RSS is ``VmHWM`` of each gunicorn process (master and workers) read from
     ``/proc`` when the job is done; the largest is reported.
   - **export**: on the vault the web run filled, ``pds export --out`` (CLI, timed, peak
     RSS) against the web path: ``POST /export``, poll the job, ``GET`` the download
     streamed to a file (timed from the POST to the last byte).
3. Checks every run stored exactly the records the file holds and every export holds them.

Targets: the web import no slower than 1.5x the CLI (median wall ratio <= 1.5) and the
server's peak RSS no more than 1.5x the CLI's; the web export within 1.5x of ``pds export``.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from _common import (
    MB,
    PASSPHRASE,
    filesystem,
    finish,
    machine,
    pds_env,
    pds_executable,
    run_measured,
    spread,
    verdicts,
)

NAME = "web_import"
DEFAULT_ROWS = 420_000
MB_PER_RECORD = 91 / 365_243  # write_health_export's files: 365,243 records in 91 MB
TARGET_RATIO = 1.5
TARGET_RSS_RATIO = 1.5
POLL_SECONDS = 0.2
HERE = Path(__file__).resolve().parent


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _health_writer() -> Any:
    spec = importlib.util.spec_from_file_location("bench_connectors", HERE / "connectors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_health_export


# -- the owner's browser, over HTTP -----------------------------------------------------------


class Owner:
    """A session cookie, forms, and a multipart upload streamed from disk."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookie = ""

    def _conn(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)

    def _read(self, resp: http.client.HTTPResponse) -> tuple[int, dict[str, str], bytes]:
        for value in resp.headers.get_all("Set-Cookie") or []:
            jar = SimpleCookie(value)
            if "pds_session" in jar:
                self.cookie = f"pds_session={jar['pds_session'].value}"
        return resp.status, dict(resp.headers), resp.read()

    def send(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = self._conn()
        try:
            headers = {"Cookie": self.cookie}
            body = None
            if form is not None:
                body = urlencode(form).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request(method, path, body=body, headers=headers)
            return self._read(conn.getresponse())
        finally:
            conn.close()

    def csrf(self, path: str) -> str:
        page = self.send("GET", path)[2].decode()
        return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

    def sign_in(self) -> None:
        form = {"passphrase": PASSPHRASE, "csrf_token": self.csrf("/login"), "next": "/"}
        status = self.send("POST", "/login", form)[0]
        if status != 303:
            raise RuntimeError(f"sign-in answered {status}")

    def upload(self, path: Path) -> int:
        boundary = "pds-bench-" + os.urandom(8).hex()
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
            f"{self.csrf('/import')}\r\n"
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        conn = self._conn()
        try:
            conn.putrequest("POST", "/import")
            conn.putheader("Cookie", self.cookie)
            conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
            conn.putheader("Content-Length", str(len(head) + path.stat().st_size + len(tail)))
            conn.endheaders()
            conn.send(head)
            with path.open("rb") as fh:
                while chunk := fh.read(MB):
                    conn.send(chunk)
            conn.send(tail)
            status, headers, _ = self._read(conn.getresponse())
        finally:
            conn.close()
        if status != 303:
            raise RuntimeError(f"the upload answered {status}")
        return int(headers["Location"].rsplit("/", 1)[1])

    def wait(self, job_id: int) -> dict[str, Any]:
        while True:
            status, _, body = self.send("GET", f"/jobs/{job_id}.json")
            if status != 200:
                raise RuntimeError(f"job {job_id} answered {status}")
            job = json.loads(body)
            if job["state"] == "failed":
                raise RuntimeError(f"job {job_id} failed: {job['error']}")
            if job["state"] == "done":
                return job
            time.sleep(POLL_SECONDS)

    def download(self, job_id: int, target: Path) -> int:
        conn = self._conn()
        try:
            conn.request("GET", f"/jobs/{job_id}/download", headers={"Cookie": self.cookie})
            resp = conn.getresponse()
            if resp.status != 200:
                raise RuntimeError(f"the download answered {resp.status}")
            with target.open("wb") as out:
                while chunk := resp.read(MB):
                    out.write(chunk)
        finally:
            conn.close()
        return target.stat().st_size


# -- the server ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / MB
    return 0.0


class Server:
    def __init__(self, pds: str, env: dict[str, str], workers: int, log_path: Path) -> None:
        self.port = _free_port()
        env = {**env, "PDS_ISSUER": f"http://127.0.0.1:{self.port}"}
        cmd = [pds, "serve", "--port", str(self.port), "--workers", str(workers)]
        with log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 120
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pds serve did not start:\n{log_path.read_text()}")
            time.sleep(0.2)

    def peak_rss_mb(self) -> dict[str, float]:
        """VmHWM of the master and each worker (MB)."""
        pids = [self.proc.pid, *_children(self.proc.pid)]
        return {str(pid): _vm_hwm_mb(pid) for pid in pids}

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=60)


# -- the runs ---------------------------------------------------------------------------------


def cli_import(pds: str, path: Path, home: Path) -> dict[str, Any]:
    env = pds_env(home)
    run_measured([pds, "init", "--json"], env)
    res = run_measured([pds, "import", "--json", str(path)], env)
    doc = json.loads(res.pop("stdout"))
    res.update(new=doc["new"], duplicate=doc["duplicate"], rejected=doc["rejected"])
    shutil.rmtree(home)
    return res


def web_run(pds: str, path: Path, home: Path, workers: int, tmp: Path) -> dict[str, Any]:
    env = pds_env(home)
    run_measured([pds, "init", "--json"], env)
    server = Server(pds, env, workers, tmp / "serve.log")
    try:
        owner = Owner(server.port)
        owner.sign_in()
        start = time.perf_counter()
        job_id = owner.upload(path)
        uploaded = time.perf_counter() - start
        job = owner.wait(job_id)
        wall = time.perf_counter() - start
        rss = server.peak_rss_mb()
        result = job["result"]
        out = {
            "wall_s": wall,
            "upload_s": uploaded,
            "new": result["new"],
            "duplicate": result["duplicate"],
            "rejected": result["rejected"],
            "peak_rss_mb": max(rss.values()),
            "rss_by_process_mb": rss,
        }
        # export: the CLI against the web job, on the vault just filled (server running:
        # the CLI reads the same vault, as an owner's would)
        cli = run_measured([pds, "export", "--out", str(tmp / "cli-export.zip"), "--json"], env)
        cli_doc = json.loads(cli.pop("stdout"))
        start = time.perf_counter()
        queued = owner.send("POST", "/export", {"csrf_token": owner.csrf("/export")})
        export_id = int(queued[1]["Location"].rsplit("/", 1)[1])
        done = owner.wait(export_id)
        size = owner.download(export_id, tmp / "web-export.zip")
        export_wall = time.perf_counter() - start
        with zipfile.ZipFile(tmp / "web-export.zip") as zf:
            manifest = json.loads(zf.read("manifest.json"))
        out["export"] = {
            "cli_wall_s": cli["wall_s"],
            "cli_max_rss_mb": cli["max_rss_mb"],
            "cli_records": cli_doc["records"],
            "web_wall_s": export_wall,
            "web_records": done["records"],
            "web_manifest_records": sum(manifest["categories"].values()),
            "bytes": size,
            "peak_rss_mb": max(server.peak_rss_mb().values()),
        }
        (tmp / "cli-export.zip").unlink()
        (tmp / "web-export.zip").unlink()
        leftovers = sorted(p.name for p in (home / "jobs").iterdir())
        if leftovers:
            raise RuntimeError(f"files left in the jobs folder: {leftovers}")
    finally:
        server.stop()
    shutil.rmtree(home)
    return out


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    write_health_export = _health_writer()
    pds = pds_executable()
    info = machine(gunicorn="gunicorn", defusedxml="defusedxml")
    with tempfile.TemporaryDirectory(prefix="pds-bench-web-", dir=args.tmpdir) as tmp_s:
        tmp = Path(tmp_s)
        info["filesystem"] = filesystem(tmp)
        megabytes = max(1, round(args.rows * MB_PER_RECORD))
        log(f"[web_import] writing a {megabytes} MB Apple Health export ...")
        health = tmp / "export.xml"
        counts = write_health_export(health, megabytes)
        expected = sum(counts.values())
        size = health.stat().st_size
        cli_runs, web_runs = [], []
        for i in range(args.repeats):
            log(f"[web_import] run {i + 1}/{args.repeats}: pds import ...")
            cli = cli_import(pds, health, tmp / f"home-cli-{i}")
            log(f"[web_import]   {cli['wall_s']:.1f} s, {cli['max_rss_mb']:.0f} MB")
            log(f"[web_import] run {i + 1}/{args.repeats}: upload + job ...")
            web = web_run(pds, health, tmp / f"home-web-{i}", args.workers, tmp)
            log(
                f"[web_import]   {web['wall_s']:.1f} s (upload {web['upload_s']:.1f} s), "
                f"{web['peak_rss_mb']:.0f} MB; export CLI {web['export']['cli_wall_s']:.1f} s,"
                f" web {web['export']['web_wall_s']:.1f} s"
            )
            for run in (cli, web):
                if (run["new"], run["duplicate"], run["rejected"]) != (expected, 0, 0):
                    raise RuntimeError(f"wrong records stored: {run} (expected {expected})")
            ex = web["export"]
            if not ex["cli_records"] == ex["web_records"] == ex["web_manifest_records"]:
                raise RuntimeError(f"the exports disagree: {ex}")
            cli_runs.append(cli)
            web_runs.append(web)
    return summarise(args, info, expected, size, cli_runs, web_runs)


def summarise(
    args: argparse.Namespace,
    info: dict[str, Any],
    records: int,
    size: int,
    cli: list[dict[str, Any]],
    web: list[dict[str, Any]],
) -> dict[str, Any]:
    ratios = [w["wall_s"] / c["wall_s"] for c, w in zip(cli, web, strict=True)]
    ratio = statistics.median(ratios)
    cli_rss = max(c["max_rss_mb"] for c in cli)
    web_rss = max(w["peak_rss_mb"] for w in web)
    export_ratios = [w["export"]["web_wall_s"] / w["export"]["cli_wall_s"] for w in web]
    export_ratio = statistics.median(export_ratios)
    summary = [
        {
            "metric": f"web import / pds import wall time ({size / MB:.0f} MB, {records:,} "
            "records)",
            "value": f"{ratio:.2f}x",
            "target": f"<= {TARGET_RATIO}x",
            "met": ratio <= TARGET_RATIO,
        },
        {
            "metric": "server peak RSS / pds import peak RSS",
            "value": f"{web_rss:.0f} MB / {cli_rss:.0f} MB = {web_rss / cli_rss:.2f}x",
            "target": f"<= {TARGET_RSS_RATIO}x",
            "met": web_rss / cli_rss <= TARGET_RSS_RATIO,
        },
        {
            "metric": "web export (job + download) / pds export wall time",
            "value": f"{export_ratio:.2f}x",
            "target": f"<= {TARGET_RATIO}x",
            "met": export_ratio <= TARGET_RATIO,
        },
    ]
    return {
        "name": NAME,
        "machine": info,
        "params": {"records": records, "bytes": size, "repeats": args.repeats},
        "workers": args.workers,
        "cli": {
            "wall_s": spread([c["wall_s"] for c in cli]),
            "max_rss_mb": [c["max_rss_mb"] for c in cli],
        },
        "web": {
            "wall_s": spread([w["wall_s"] for w in web]),
            "upload_s": [w["upload_s"] for w in web],
            "peak_rss_mb": [w["peak_rss_mb"] for w in web],
            "rss_by_process_mb": [w["rss_by_process_mb"] for w in web],
            "ratios": ratios,
        },
        "export": {
            "cli_wall_s": spread([w["export"]["cli_wall_s"] for w in web]),
            "web_wall_s": spread([w["export"]["web_wall_s"] for w in web]),
            "cli_max_rss_mb": [w["export"]["cli_max_rss_mb"] for w in web],
            "server_peak_rss_mb": [w["export"]["peak_rss_mb"] for w in web],
            "bytes": [w["export"]["bytes"] for w in web],
            "ratios": export_ratios,
        },
        "summary": summary,
    }


def _n(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def report(r: dict[str, Any]) -> str:
    m, p = r["machine"], r["params"]
    lines = [
        f"Web import benchmark ({m['date']}; {m['nproc']} CPUs, {m['cpu']}; Python "
        f"{m['python']}, SQLite {m['sqlite']}, gunicorn {m['gunicorn']}; {m['filesystem']})",
        f"  file: {p['bytes'] / MB:.1f} MB, {p['records']:,} records; {p['repeats']} runs a side;"
        f" pds serve --workers {r['workers']}",
        f"  pds import: {_n(r['cli']['wall_s']['runs'])} s, peak RSS "
        f"{_n(r['cli']['max_rss_mb'])} MB",
        f"  web: {_n(r['web']['wall_s']['runs'])} s (upload part {_n(r['web']['upload_s'])} s),"
        f" server peak RSS {_n(r['web']['peak_rss_mb'])} MB",
        f"  export: pds export {_n(r['export']['cli_wall_s']['runs'])} s (RSS "
        f"{_n(r['export']['cli_max_rss_mb'])} MB), web {_n(r['export']['web_wall_s']['runs'])} s"
        f" (server RSS {_n(r['export']['server_peak_rss_mb'])} MB), zip "
        f"{_n([b / MB for b in r['export']['bytes']])} MB",
        *verdicts(r["summary"]),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="records (420,000: 105 MB)")
    ap.add_argument("--repeats", type=int, default=2, help="runs per side (2)")
    ap.add_argument("--workers", type=int, default=2, help="pds serve --workers (2)")
    ap.add_argument("--tmpdir", help="where to put the temporary files (default: $TMPDIR)")
    ap.add_argument("--json", dest="json_out", help="also write the results as JSON here")
    args = ap.parse_args(argv)
    if args.rows < 1 or args.repeats < 1:
        ap.error("--rows and --repeats must be at least 1")
    result = run_benchmark(args)
    return finish(result, report(result), args.json_out)


if __name__ == "__main__":
    sys.exit(main())
