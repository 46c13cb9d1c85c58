"""The container files: Dockerfile, compose.yaml, deploy/compose.Caddyfile, the entrypoint,
and the README's container lines, checked against each other and run without a Docker engine.

hadolint lints the Dockerfile and shellcheck the entrypoint; Debian's Caddy reads the compose
Caddyfile. The image's own install steps are replayed into a fresh virtual environment, and
its ENTRYPOINT and CMD run there with the settings the README's `docker run` line and
compose.yaml give, until the server answers /healthz.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from pds.oauth.issuer import check_issuer
from tests.conftest import ROOT
from tests.servers import answers, free_port, get, running

BIN = Path(sys.executable).parent
STRONG = "pewter lantern orchard migrate"


# -- reading the files ----------------------------------------------------------------------------


@dataclass
class Dockerfile:
    instructions: list[tuple[str, str]]
    env: dict[str, str] = field(default_factory=dict)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def one(self, keyword: str) -> str:
        (args,) = self.all(keyword)
        return args

    def exec_form(self, keyword: str) -> list[str]:
        return json.loads(self.one(keyword))


def read_dockerfile(text: str) -> Dockerfile:
    """Its instructions, continuation lines joined, comments left out."""
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(" ")
            instructions.append((keyword.upper(), args.strip()))
    found = Dockerfile(instructions)
    for args in found.all("ENV"):
        found.env.update(dict(pair.split("=", 1) for pair in shlex.split(args)))
    return found


DOCKERFILE = read_dockerfile((ROOT / "Dockerfile").read_text(encoding="utf-8"))
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
PDS = COMPOSE["services"]["pds"]
CADDY = COMPOSE["services"]["caddy"]


def interpolate(value: str, env: dict[str, str]) -> str:
    """compose's ${VAR}, ${VAR:-default} and ${VAR:?error} in ``value``."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if env.get(name):
            return env[name]
        if op == ":?":
            raise KeyError(arg)
        return arg or ""

    return re.sub(r"\$\{([A-Z_]+)(?:(:[-?])([^}]*))?\}", one, value)


def readme_blocks() -> list[list[str]]:
    """The sh blocks of the README's container section, one command a line."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Run it in a container\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    return [re.sub(r" \\\n\s*", " ", b).strip().splitlines() for b in blocks]


def command(line: str) -> str:
    """A README line without its comment."""
    return line.split("  #", 1)[0].rstrip()


def docker_run_flags(line: str) -> tuple[dict[str, list[str]], list[str]]:
    """The options of a `docker run` line (flag -> values) and what follows them."""
    words = shlex.split(line.replace("$PWD", str(ROOT)))
    assert words[:2] == ["docker", "run"]
    flags: dict[str, list[str]] = {}
    rest = words[2:]
    while rest and rest[0].startswith("-"):
        flag = rest.pop(0)
        if flag == "-d":
            flags[flag] = []
        else:
            flags.setdefault(flag, []).append(rest.pop(0))
    return flags, rest


# -- linters --------------------------------------------------------------------------------------


def test_hadolint_finds_nothing() -> None:
    done = subprocess.run(
        [str(BIN / "hadolint"), "--failure-threshold", "style", "Dockerfile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert not (ROOT / ".hadolint.yaml").exists()  # no rule is switched off


def test_hadolint_would_say_so() -> None:
    """The linter really reads the file: an unpinned apt-get install is reported."""
    done = subprocess.run(
        [str(BIN / "hadolint"), "-"],
        input="FROM debian:bookworm\nRUN apt-get update && apt-get install -y curl\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "DL3008" in done.stdout


def test_shellcheck_finds_nothing_in_the_entrypoint() -> None:
    done = subprocess.run(
        [str(BIN / "shellcheck"), "--shell=sh", "deploy/entrypoint.sh"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert os.access(ROOT / "deploy" / "entrypoint.sh", os.X_OK)
    first = (ROOT / "deploy" / "entrypoint.sh").read_text(encoding="utf-8").splitlines()[:1]
    assert first == ["#!/bin/sh"]


# -- the Dockerfile ------------------------------------------------------------------------------


def test_the_image_installs_the_lock_then_pds_and_runs_the_entrypoint() -> None:
    runs = DOCKERFILE.all("RUN")
    installs = [r for r in runs if r.startswith("pip install")]
    assert installs == [
        "pip install --no-cache-dir --require-hashes -r requirements.lock",
        "pip install --no-cache-dir --no-deps .",
    ]
    assert "COPY deploy/entrypoint.sh /usr/local/bin/pds-entrypoint" in [
        f"COPY {a}" for a in DOCKERFILE.all("COPY")
    ]
    assert DOCKERFILE.exec_form("ENTRYPOINT") == ["pds-entrypoint"]
    cmd = ["pds", "serve", "--host", "0.0.0.0", "--port", "8000"]  # noqa: S104 (the container's)
    assert DOCKERFILE.exec_form("CMD") == cmd
    assert DOCKERFILE.one("USER") == "10001:10001"
    assert "--uid 10001 --gid pds" in runs[0]
    assert "--gid 10001 pds" in runs[0]
    assert DOCKERFILE.exec_form("VOLUME") == [DOCKERFILE.env["PDS_HOME"]] == ["/data"]
    assert DOCKERFILE.one("EXPOSE") == "8000"
    assert "http://127.0.0.1:8000/healthz" in DOCKERFILE.one("HEALTHCHECK")


def test_the_build_context_is_what_the_image_copies() -> None:
    """.dockerignore leaves everything out but the COPY sources: no .venv, vault or secret."""
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    rules = [ln for ln in lines if ln and not ln.startswith("#")]
    assert rules[0] == "*"
    assert rules[-1] == "**/__pycache__"
    sources = [src for args in DOCKERFILE.all("COPY") for src in args.split()[:-1]]
    assert sorted(r.removeprefix("!") for r in rules[1:-1]) == sorted(sources)
    for src in sources:
        assert (ROOT / src).exists(), src


# -- compose.yaml and its Caddyfile ---------------------------------------------------------------


def test_compose_runs_pds_behind_caddy_with_a_secret() -> None:
    port = DOCKERFILE.one("EXPOSE")
    assert sorted(COMPOSE["services"]) == ["caddy", "pds"]
    assert (PDS["build"], PDS["restart"], CADDY["restart"]) == (
        ".",
        "unless-stopped",
        "unless-stopped",
    )
    # pds: only the compose network reaches it, on the image's port
    assert "ports" not in PDS
    assert PDS["expose"] == [port]
    # the passphrase: a Docker secret from a file, where PDS_PASSPHRASE_FILE looks
    assert PDS["secrets"] == ["pds_passphrase"]
    assert COMPOSE["secrets"] == {"pds_passphrase": {"file": "./secrets/pds_passphrase"}}
    assert PDS["environment"]["PDS_PASSPHRASE_FILE"] == "/run/secrets/pds_passphrase"
    # the vault: a named volume on the image's volume (a new one takes /data's owner, 10001)
    assert PDS["volumes"] == [f"pds-data:{DOCKERFILE.exec_form('VOLUME')[0]}"]
    assert sorted(COMPOSE["volumes"]) == ["caddy-config", "caddy-data", "pds-data"]
    # one proxy in front: pds believes one hop of X-Forwarded-*
    assert PDS["environment"]["PDS_PROXY_HOPS"] == "1"
    # Caddy: the official image, its Caddyfile from the repo, https ports, its state kept
    assert CADDY["image"] == "caddy:2"
    assert CADDY["ports"] == ["80:80", "443:443", "443:443/udp"]
    assert CADDY["volumes"] == [
        "./deploy/compose.Caddyfile:/etc/caddy/Caddyfile:ro",
        "caddy-data:/data",
        "caddy-config:/config",
    ]
    assert (ROOT / "deploy" / "compose.Caddyfile").is_file()
    assert CADDY["depends_on"] == {"pds": {"condition": "service_healthy"}}
    assert DOCKERFILE.one("HEALTHCHECK")


def test_one_name_makes_the_issuer_and_caddys_site() -> None:
    env = {"PDS_DOMAIN": "vault.example.org"}
    issuer = interpolate(PDS["environment"]["PDS_ISSUER"], env)
    assert issuer == "https://vault.example.org"
    assert check_issuer(issuer) == issuer
    caddy_env = {k: interpolate(v, env) for k, v in CADDY["environment"].items()}
    assert caddy_env == {"PDS_DOMAIN": "vault.example.org"}
    with pytest.raises(KeyError, match="set PDS_DOMAIN in .env to the vault's DNS name"):
        interpolate(PDS["environment"]["PDS_ISSUER"], {})
    caddy = shutil.which("caddy")
    assert caddy, "Debian's caddy is needed (make test installs it)"
    done = subprocess.run(
        [caddy, "adapt", "--config", str(ROOT / "deploy" / "compose.Caddyfile")],
        env={**os.environ, **caddy_env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout)
    (server,) = config["apps"]["http"]["servers"].values()
    (route,) = server["routes"]
    assert route["match"] == [{"host": ["vault.example.org"]}]
    handlers = route["handle"][0]["routes"][0]["handle"]
    proxy = [h for h in handlers if h["handler"] == "reverse_proxy"]
    assert proxy == [{"handler": "reverse_proxy", "upstreams": [{"dial": "pds:8000"}]}]
    assert "log" not in json.dumps(server)  # no access log of client addresses


# -- the README's lines ---------------------------------------------------------------------------


def test_the_readme_lines_are_the_tested_ones() -> None:
    port = DOCKERFILE.one("EXPOSE")
    uid = DOCKERFILE.one("USER")
    secret_file = COMPOSE["secrets"]["pds_passphrase"]["file"].removeprefix("./")
    in_container = PDS["environment"]["PDS_PASSPHRASE_FILE"]
    volume = DOCKERFILE.exec_form("VOLUME")[0]
    domain = re.search(r"\$\{([A-Z_]+):\?", PDS["environment"]["PDS_ISSUER"]).group(1)
    run_block, compose_block = readme_blocks()
    assert [command(c) for c in run_block] == [
        "docker build -t pds .",
        f"mkdir -p {Path(secret_file).parent} && (umask 077 && cat > {secret_file})",
        f"sudo chown {uid} {secret_file}",
        f"docker run -d --name pds -p 127.0.0.1:{port}:{port} -v pds-data:{volume} "
        f'-v "$PWD/{secret_file}:{in_container}:ro" -e PDS_PASSPHRASE_FILE={in_container} '
        f"-e PDS_ISSUER=http://127.0.0.1:{port} pds",
    ]
    guide = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    section = guide.split("\n## In a container\n", 1)[1].split("\n## ", 1)[0]
    in_guide = re.sub(r" \\\n\s*", " ", section)
    assert all(line in in_guide for line in run_block)  # docs/deploy.md gives the same lines
    assert [command(c) for c in compose_block] == [
        f"echo {domain}=vault.example.org > .env",
        "docker compose up -d --build",
        "docker compose exec pds pds status",
    ]


# -- the image's steps, replayed ------------------------------------------------------------------


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Dockerfile's WORKDIR, COPY and RUN steps replayed into a fresh venv (``/app``
    is a folder here, pip the venv's, ``/usr/local/bin`` the venv's bin); returns the venv.
    Downloads may come from pip's cache: every file is checked against the lock's hashes."""
    top = tmp_path_factory.mktemp("image")
    venv, app = top / "venv", top / "app"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    workdir = None
    for keyword, args in DOCKERFILE.instructions:
        if keyword == "WORKDIR":
            workdir = args
            app.mkdir()
        elif keyword == "COPY" and workdir:
            *sources, dest = args.split()
            bindir = "/usr/local/bin/"
            to = venv / "bin" / dest[len(bindir) :] if dest.startswith(bindir) else app / dest
            for src in sources:
                path, into = ROOT / src, to / Path(src).name if dest.endswith("/") else to
                if path.is_dir():
                    shutil.copytree(path, into, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy2(path, into)
        elif keyword == "RUN" and workdir:
            words = shlex.split(args)
            assert words[0] == "pip", args
            words = [w for w in words if w != "--no-cache-dir"]
            subprocess.run(
                [str(venv / "bin" / "pip"), *words[1:], "--quiet"],
                cwd=app,
                check=True,
                capture_output=True,
            )
    return venv


@contextmanager
def run_image(
    venv: Path, env: dict[str, str], tmp_path: Path
) -> Iterator[tuple[int, subprocess.Popen]]:
    """ENTRYPOINT + CMD from the venv, with CMD's port made a free one."""
    port = free_port()
    argv = DOCKERFILE.exec_form("ENTRYPOINT") + DOCKERFILE.exec_form("CMD")
    argv[argv.index("--port") + 1] = str(port)
    full = {k: v for k, v in os.environ.items() if not k.startswith("PDS_")}
    full.update(DOCKERFILE.env)
    full.update(env)
    full["PATH"] = f"{venv / 'bin'}{os.pathsep}/usr/bin:/bin"
    log = tmp_path / "container.log"
    healthz = f"http://127.0.0.1:{port}/healthz"
    with running(argv, log, answers(healthz), env=full, what="the image's command") as proc:
        status, _, body = get(healthz)
        assert (status, json.loads(body)) == (200, {"status": "ok"})
        yield port, proc


def container_paths(tmp_path: Path) -> tuple[Path, Path]:
    """This test's folders for the image's /data and the passphrase secret."""
    data = tmp_path / "data"
    secret = tmp_path / "pds_passphrase"
    secret.write_text(STRONG + "\n", encoding="utf-8")
    return data, secret


@pytest.mark.slow
def test_the_readme_docker_run_starts_on_a_fresh_volume(image: Path, tmp_path: Path) -> None:
    (line,) = [c for c in readme_blocks()[0] if c.startswith("docker run")]
    flags, rest = docker_run_flags(line)
    assert rest == ["pds"]
    env = dict(e.split("=", 1) for e in flags["-e"])
    mounts = dict(v.split(":", 2)[1::-1] for v in flags["-v"])  # container path -> source
    assert mounts[env["PDS_PASSPHRASE_FILE"]] == str(ROOT / "secrets" / "pds_passphrase")
    assert mounts[DOCKERFILE.env["PDS_HOME"]] == "pds-data"
    data, secret = container_paths(tmp_path)
    env.update(PDS_HOME=str(data), PDS_PASSPHRASE_FILE=str(secret))
    with run_image(image, env, tmp_path):
        pass
    log = (tmp_path / "container.log").read_text().splitlines()
    assert log[:2] == [
        f"No vault in {data}: creating one with the passphrase in {secret}.",
        f"Created an encrypted vault at {data}.",
    ]
    done = subprocess.run(
        [str(image / "bin" / "pds"), "status", "--json"],
        env={**os.environ, "PDS_HOME": str(data), "PDS_PASSPHRASE_FILE": str(secret)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["records"] == 0


@pytest.mark.slow
def test_the_compose_service_starts_on_a_fresh_volume(image: Path, tmp_path: Path) -> None:
    env = {
        k: interpolate(v, {"PDS_DOMAIN": "vault.example.org"})
        for k, v in PDS["environment"].items()
    }
    data, secret = container_paths(tmp_path)
    env.update(PDS_HOME=str(data), PDS_PASSPHRASE_FILE=str(secret))
    with run_image(image, env, tmp_path):
        pass
    assert (data / "vault.db").is_file()
