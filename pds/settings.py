"""Settings: where the vault lives, the issuer URL, and where the passphrase comes from.

Read from ``PDS_*`` environment variables; nothing is read at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from pds.errors import ConfigError
from pds.numbers import whole

DEFAULT_HOME = Path("~/.local/share/pds")
DEFAULT_ISSUER = "http://127.0.0.1:8000"
"""The issuer of an app made with no PDS_ISSUER outside ``pds serve`` (whose issuer follows
the address it listens on: ``pds.http.server.issuer_for``)."""
MAX_PROXY_HOPS = 10


@dataclass(frozen=True)
class KdfParams:
    """Argon2id cost. The defaults are the floor the vault accepts for a real vault."""

    memory_kib: int = 64 * 1024
    iterations: int = 3
    lanes: int = 4


@dataclass(frozen=True)
class Settings:
    home: Path
    issuer: str | None = None
    """PDS_ISSUER: the origin clients reach the vault at (checked by
    ``pds.oauth.issuer.check_issuer``). None when unset: ``pds serve`` then uses the loopback
    address it listens on, and an app made otherwise :data:`DEFAULT_ISSUER`."""
    passphrase: str | None = field(default=None, repr=False)
    passphrase_file: Path | None = None
    kdf: KdfParams = KdfParams()
    webhooks_allow_private: bool = False
    """PDS_WEBHOOKS_ALLOW_PRIVATE=1: let webhooks go to loopback and private addresses (and
    plain http to loopback). Off by default: a business could otherwise make the vault POST
    into the owner's own network (pds.webhooks.net)."""
    open_registration: bool = True
    """PDS_OPEN_REGISTRATION=0 (or false, no, off): businesses cannot register themselves
    (RFC 7591); only the owner adds them. On by default."""
    proxy_hops: int = 0
    """PDS_PROXY_HOPS=N: N reverse proxies stand in front of pds, so the last N entries of
    ``X-Forwarded-For`` and ``X-Forwarded-Proto``/``-Host`` are the client's address, scheme
    and host (werkzeug's ProxyFix, ``pds.http.app``). 0 by default: those headers are ignored,
    as a client reaching pds directly could write anything in them."""
    locale: str | None = None
    """PDS_LOCALE (``en_GB``, ``de_DE``, ``fr``...): the language and the way dates and
    amounts are written on the owner's pages. Unset: the browser's preferred language
    (``Accept-Language``), else British English (``pds.http.locale``)."""

    @property
    def db_path(self) -> Path:
        return self.home / "vault.db"

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    def read_passphrase(self) -> str | None:
        """The passphrase from PDS_PASSPHRASE_FILE, then PDS_PASSPHRASE; None if neither."""
        if self.passphrase_file is not None:
            try:
                text = self.passphrase_file.read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(
                    f"cannot read PDS_PASSPHRASE_FILE {self.passphrase_file}: {exc.strerror}",
                    hint="Point PDS_PASSPHRASE_FILE at a readable file holding the passphrase.",
                ) from None
            return text.rstrip("\r\n")
        return self.passphrase


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``PDS_*`` environment variables (``env`` defaults to os.environ)."""
    env = os.environ if env is None else env
    home = Path(env.get("PDS_HOME") or DEFAULT_HOME).expanduser()
    pfile = env.get("PDS_PASSPHRASE_FILE")
    return Settings(
        home=home,
        issuer=env.get("PDS_ISSUER") or None,
        passphrase=env.get("PDS_PASSPHRASE") or None,
        passphrase_file=Path(pfile).expanduser() if pfile else None,
        webhooks_allow_private=_flag(env, "PDS_WEBHOOKS_ALLOW_PRIVATE"),
        open_registration=_on_unless_off(env, "PDS_OPEN_REGISTRATION"),
        proxy_hops=_proxy_hops(env),
        locale=env.get("PDS_LOCALE", "").strip() or None,
    )


def _proxy_hops(env: Mapping[str, str]) -> int:
    """PDS_PROXY_HOPS: unset or empty is 0; a whole number up to :data:`MAX_PROXY_HOPS`."""
    value = env.get("PDS_PROXY_HOPS", "").strip()
    hops = whole(value or "0", 0, MAX_PROXY_HOPS)
    if hops is None:
        raise ConfigError(
            f"PDS_PROXY_HOPS={env['PDS_PROXY_HOPS']!r} is not a whole number "
            f"from 0 to {MAX_PROXY_HOPS}",
            hint="Set PDS_PROXY_HOPS to the number of reverse proxies in front of pds "
            "(1 behind one Caddy or nginx), or 0 when clients reach pds directly.",
        )
    return hops


def _on_unless_off(env: Mapping[str, str], name: str) -> bool:
    """A setting that is on by default: 0, false, no or off (any case) turns it off; unset,
    empty, 1, true, yes or on leave it on; anything else is a ConfigError (not a guess)."""
    value = env.get(name, "").strip().lower()
    if value in ("", "1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(
        f"{name}={env[name]!r} is neither on nor off", hint=f"Set {name} to 1 (on) or 0 (off)."
    )


def _flag(env: Mapping[str, str], name: str) -> bool:
    """An on/off setting: 1, true, yes or on (any case) is on; unset or anything else off."""
    return env.get(name, "").strip().lower() in ("1", "true", "yes", "on")
