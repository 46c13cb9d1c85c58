"""Fixtures chain: settings (temp data dir) -> vault (unlocked) -> runner (CLI).

Where the tests are: the folders mirror the packages they test.

- ``cli/``: the ``pds`` commands (pds.cli); ``http/``: hosts, limits, methods, proxy hops,
  security, throttling (pds.http), with ``http/api/`` and ``http/web/`` for its two halves;
- ``oauth/``, ``rights/``, ``profile/``, ``webhooks/``, ``jobs/``, ``importer/``, ``vault/``,
  ``audit/``, ``db/``, ``policy/``, ``policyfiles/``: the package of the same name;
- ``connectors/``: one file per connector, named after it, and the charset rule;
- ``hostile/``: hostile input (XML, zips, text, size, depth and time bounds) across connectors;
- ``deploy/``: what ships and how it runs: container files, entrypoint, systemd units, Caddy
  over https, Litestream, the lock file, packaging, ``pds serve`` and a live server;
- ``browser/``: Playwright on Chromium; ``node/``: the openid-client flow; ``fixtures/``: real
  files (their sources in ``fixtures/SOURCES.md``);
- top level: the single modules (words, numbers, clock, jsonbody, diskfull, payloads), the layout's rules
  (test_architecture.py), and the shared helpers: this conftest, factories.py, oauth_kit.py,
  servers.py, skipbad.py, wxban.py. Tests import them absolutely (``from tests.oauth_kit
  import ...``) and find files from ``TESTS``, ``ROOT`` and ``FIXTURES`` here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from pds.settings import KdfParams, Settings
from pds.vault import Vault

# CI and developer machines are shared and noisy: judge properties, not timings.
hypothesis_settings.register_profile(
    "pds", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("pds")

TESTS = Path(__file__).parent
ROOT = TESTS.resolve().parent  # the repository
FIXTURES = TESTS / "fixtures"
PASSPHRASE = "test passphrase: tulip ladder"
# Library-level tests use a cheap KDF; the CLI tests go through the real default cost.
FAST_KDF = KdfParams(memory_kib=8 * 1024, iterations=1, lanes=4)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "vault", kdf=FAST_KDF)


@pytest.fixture
def vault(settings: Settings):
    v = Vault.create(settings, PASSPHRASE)
    yield v
    v.close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    return {"PDS_HOME": str(home), "PDS_PASSPHRASE": PASSPHRASE, "PDS_PASSPHRASE_FILE": ""}


@pytest.fixture
def runner(env: dict[str, str]) -> CliRunner:
    return CliRunner(env=env)


@pytest.fixture
def initialised(runner: CliRunner, home: Path) -> Path:
    result = runner.invoke(_cli(), ["init"])
    assert result.exit_code == 0, result.output
    return home


def _cli():
    from pds.cli import cli

    return cli


def fixture(path: str) -> Path:
    return FIXTURES / path


# -- OAuth, API and web ----------------------------------------------------------------------


@pytest.fixture
def app(vault: Vault):
    """The pds Flask app on the unlocked test vault (issuer http://127.0.0.1:8000)."""
    from pds.http.app import create_app

    application = create_app(vault.settings, vault.keyring)
    yield application
    for v in application.extensions["pds_vaults"].values():
        v.close()
    application.extensions["pds_counters"].close()


@pytest.fixture
def kit(app, vault: Vault):
    from .oauth_kit import Kit

    return Kit(app, vault)
