"""Check a pds vault's access log as an auditor, without the server: only ``cryptography``.

The log is an RFC 9162 Merkle tree; the vault signs checkpoints of it (a C2SP
tlog-checkpoint in a C2SP signed note, Ed25519). Two sources:

- a bundle written by ``pds audit export FILE`` (a JSON header line with the origin, the
  verifier key and the signed checkpoints, then ``<leaf hex> <entry>`` per entry):
  :func:`verify_bundle` replays every entry, recomputes its leaf hash and the running root,
  and checks each checkpoint (and each checkpoint you saved earlier) against it; a checkpoint
  signed by the key must cover the last entry (one past it is anybody's addition);
- a running vault's auditor API (a token with ``audit:read``): :func:`check_vault` checks
  the newest signed checkpoint, its consistency with one you saved earlier (an RFC 9162
  consistency proof), and the inclusion of one entry (an inclusion proof).

The key: pass the verifier key the owner gave you (``pds audit key``) as ``key``; without
it the key is taken from the log or vault itself, which proves only self-consistency.

As a program (``pds-verify``)::

    pds-verify bundle audit.bundle --key 'pds.vault/…+…+…' [--trusted saved.note]
    pds-verify url https://vault.example --token-file token [--key …] [--trusted saved.note]
        [--entry 7] [--all] [--save-checkpoint saved.note]

Exit status: 0 when everything holds; 1 when something does not verify (``FAILED:`` lines,
among them a bundle whose last entries no signed checkpoint covers); 2 when the check could
not be made (``error:`` on stderr): a usage error, a file that cannot be read or is not a
bundle, a vault that cannot be reached, or one that refuses the token (revoked, expired or
unknown: ask the owner for a new invitation).

This module imports nothing outside the standard library but ``cryptography``,
:mod:`pds_client.tlog` (the proofs and checkpoints) and :mod:`pds_client.errors`: an
auditor's machine needs neither authlib nor requests.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pds_client.errors import VerifyError
from pds_client.tlog import (
    EMPTY_ROOT,
    Checkpoint,
    VerifierKey,
    leaf_hash,
    node_hash,
    open_checkpoint,
    verify_consistency,
    verify_inclusion,
)

BUNDLE_FORMAT = "pds-audit-bundle/1"
_MAX_PROBLEMS = 20
_PAGE = 1000
_TIMEOUT = 30
_NEW_BUNDLE = "ask the vault's owner for a new bundle (`pds audit export`)"


# -- reports ------------------------------------------------------------------------------------


@dataclass
class Report:
    """What was checked (``checked``, one line each) and what failed (``problems``)."""

    origin: str
    verifier_key: str
    key_pinned: bool
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    newest: Checkpoint | None = None
    first_bad_index: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, message: str, index: int | None = None) -> None:
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(message)
        if index is not None and (self.first_bad_index is None or index < self.first_bad_index):
            self.first_bad_index = index

    def lines(self) -> list[str]:
        """The report in plain words, as ``pds-verify`` prints it."""
        whose = "pinned by you" if self.key_pinned else "taken from the log; pin it with --key"
        out = [f"Log: {self.origin}", f"Key: {self.verifier_key} ({whose})", *self.checked]
        out += [f"FAILED: {p}" for p in self.problems]
        out.append("OK" if self.ok else "The access log did NOT verify.")
        return out


def _trusted_key(origin: str, given: str | None, offered: str) -> tuple[VerifierKey, bool]:
    vkey = VerifierKey.parse(given or offered)
    if vkey.name != origin:
        raise VerifyError(f"the verifier key is for log {vkey.name!r}, not {origin!r}")
    return vkey, given is not None


def _entries(n: int) -> str:
    return "1 entry" if n == 1 else f"{n} entries"


# -- bundles ------------------------------------------------------------------------------------


def read_bundle(path: Path) -> tuple[dict[str, Any], Iterator[tuple[int, bytes, bytes]]]:
    """The bundle's header and its entries ``(index, entry bytes, stored leaf hash)``."""
    try:
        with path.open("rb") as fh:
            first = fh.readline()
    except OSError as exc:
        raise VerifyError(f"cannot read {path}: {exc.strerror}") from None
    try:
        header = json.loads(first)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != BUNDLE_FORMAT:
        raise VerifyError(f"{path} is not a pds audit bundle ({BUNDLE_FORMAT})")
    checkpoints = header.get("checkpoints")
    if not (
        isinstance(header.get("origin"), str)
        and isinstance(header.get("verifier_key"), str)
        and isinstance(checkpoints, list)
        and all(isinstance(c, str) for c in checkpoints)
    ):
        raise VerifyError(f"the header of {path} lacks origin, verifier_key or checkpoints")

    def entries() -> Iterator[tuple[int, bytes, bytes]]:
        with path.open("rb") as fh:
            fh.seek(len(first))
            for index, line in enumerate(fh):
                if not line.endswith(b"\n") or len(line) < 66 or line[64:65] != b" ":
                    raise VerifyError(f"line {index + 2} of {path} is not a log entry line")
                try:
                    stored = bytes.fromhex(line[:64].decode("ascii"))
                except (UnicodeDecodeError, ValueError):
                    raise VerifyError(
                        f"line {index + 2} of {path} does not start with a leaf hash"
                    ) from None
                yield index, line[65:-1], stored

    return header, entries()


def verify_bundle(
    path: Path | str, *, key: str | None = None, trusted: Iterable[str | bytes] = ()
) -> Report:
    """Check a bundle completely: every checkpoint's signature, every entry's leaf hash, the
    root at each checkpoint's size, and each ``trusted`` checkpoint (saved earlier, as the
    bytes of its file) against the same replay: a log rewritten since does not match it.
    A checkpoint signed by the key must cover the last entry: entries past the newest one
    (or any entry, with none) are a problem, since anyone holding the file could add them."""
    header, entries = read_bundle(Path(path))
    origin = header["origin"]
    vkey, pinned = _trusted_key(origin, key, header["verifier_key"])
    report = Report(origin, vkey.text, pinned)
    wanted: dict[int, list[tuple[str, Checkpoint]]] = {}
    for note in header["checkpoints"]:
        try:
            cp = open_checkpoint(note, vkey)
        except VerifyError as exc:
            report.fail(f"a checkpoint of the log does not verify: {exc.message}")
            continue
        wanted.setdefault(cp.size, []).append(("checkpoint", cp))
        if report.newest is None or cp.size > report.newest.size:
            report.newest = cp
    for number, note in enumerate(trusted, start=1):
        try:
            cp = open_checkpoint(note, vkey)
        except VerifyError as exc:
            report.fail(f"trusted checkpoint {number} does not verify: {exc.message}")
            continue
        wanted.setdefault(cp.size, []).append(("trusted checkpoint", cp))
    for size, cps in wanted.items():
        if len({cp.root for _, cp in cps}) > 1:
            report.fail(f"fork: two validly signed checkpoints of size {size} have different roots")
    mismatched: set[int] = set()
    size = _replay(entries, wanted, report, mismatched)
    for cp_size in sorted(s for s in wanted if s > size):
        for kind, _ in wanted[cp_size]:
            older = ", or this bundle is older than your checkpoint" if kind != "checkpoint" else ""
            report.fail(
                f"a {kind} covers {_entries(cp_size)} but the log has only {size}: "
                f"entries were removed{older}",
                size,
            )
    covered = report.newest.size if report.newest else 0
    if report.newest is None and size == 0:
        report.fail(
            "the bundle holds no checkpoint signed by the key: nothing in it can be verified; "
            + _NEW_BUNDLE
        )
    elif covered < size:
        report.fail(f"{_uncovered(covered, size)}; {_NEW_BUNDLE}", covered)
    signed = sum(kind == "checkpoint" for cps in wanted.values() for kind, _ in cps)
    report.checked.append(f"Entries: {size}, each hashed to its leaf")
    report.checked.append(
        f"Checkpoints: {signed} signed"
        + (f", newest at size {report.newest.size}" if report.newest else "")
    )
    saved = sorted(
        cp.size
        for cps in wanted.values()
        for kind, cp in cps
        if kind != "checkpoint" and cp.size <= size and cp.size not in mismatched
    )
    if saved:
        report.checked.append(f"Trusted: the log extends your checkpoints of size {saved}")
    return report


def _uncovered(covered: int, size: int) -> str:
    if size - covered == 1:
        return (
            f"entry {covered} is not covered by any signed checkpoint: anyone with the file "
            "could have added it"
        )
    return (
        f"entries {covered}..{size - 1} are not covered by any signed checkpoint: anyone with "
        "the file could have added them"
    )


def _replay(
    entries: Iterable[tuple[int, bytes, bytes]],
    wanted: dict[int, list[tuple[str, Checkpoint]]],
    report: Report,
    mismatched: set[int] | None = None,
) -> int:
    for _, cp in wanted.get(0, []):
        if cp.root != EMPTY_ROOT:
            report.fail("a checkpoint of the empty log has a root other than SHA-256('')")
    stack: list[tuple[int, bytes]] = []
    count = 0
    for index, data, stored in entries:
        leaf = leaf_hash(data)
        if stored != leaf:
            report.fail(
                f"entry {index} does not hash to the leaf recorded when it was appended: "
                "it was changed afterwards",
                index,
            )
        level, h = 0, leaf
        while stack and stack[-1][0] == level:
            h = node_hash(stack.pop()[1], h)
            level += 1
        stack.append((level, h))
        count += 1
        if count in wanted:
            root = stack[-1][1]
            for _, left in reversed(stack[:-1]):
                root = node_hash(left, root)
            for kind, cp in wanted[count]:
                if cp.root != root:
                    if mismatched is not None:
                        mismatched.add(count)
                    report.fail(
                        f"the first {_entries(count)} {'does' if count == 1 else 'do'} not match "
                        f"the signed {kind} "
                        f"of size {count} (an entry was changed, removed, inserted or moved)",
                        index,
                    )
    return count


# -- a running vault's auditor API ---------------------------------------------------------------


class AuditorApi:
    """``/audit/key``, ``/audit/checkpoint``, ``/audit/entries`` and ``/audit/proof/*`` of a
    running vault, with an ``audit:read`` access token (in the header, never the URL)."""

    def __init__(self, base_url: str, token: str) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise VerifyError(f"{base_url!r} is not an http(s) URL of a pds vault")
        self.base = base_url.rstrip("/")
        self.token = token

    def get(self, path: str) -> bytes:
        """The body of ``GET path``; VerifyError with the vault's ``detail`` otherwise."""
        req = urllib.request.Request(  # noqa: S310 - the scheme is checked above
            self.base + path, headers={"Authorization": f"Bearer {self.token}"}
        )
        try:
            with urllib.request.urlopen(req, timeout=_TIMEOUT) as resp:  # noqa: S310
                return resp.read()
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read()).get("detail") or ""
            except (ValueError, AttributeError):
                detail = ""
            where = path.split("?")[0]
            raise VerifyError(
                f"{self.base}{where} answered {exc.code}" + (f": {detail}" if detail else "")
            ) from None
        except OSError as exc:
            raise VerifyError(f"cannot reach {self.base}: {getattr(exc, 'reason', exc)}") from None

    def json(self, path: str) -> dict[str, Any]:
        try:
            found = json.loads(self.get(path))
        except ValueError:
            found = None
        if not isinstance(found, dict):
            raise VerifyError(f"{self.base}{path.split('?')[0]} did not answer a JSON object")
        return found

    def key(self) -> dict[str, Any]:
        return self.json("/audit/key")

    def checkpoint(self) -> bytes:
        return self.get("/audit/checkpoint")

    def entry(self, index: int) -> tuple[bytes, bytes]:
        """Entry ``index``'s bytes and the leaf hash the vault stored for it."""
        page = self.json(f"/audit/entries?start={index}&end={index + 1}")
        items = page.get("entries") or []
        if not items or items[0].get("index") != index:
            raise VerifyError(f"the vault did not return entry {index}")
        return items[0]["entry"].encode("utf-8"), _b64(items[0]["leaf"])

    def entries(self) -> Iterator[tuple[int, bytes, bytes]]:
        start = 0
        while True:
            items = self.json(f"/audit/entries?start={start}&end={start + _PAGE}")["entries"]
            for item in items:
                yield item["index"], item["entry"].encode("utf-8"), _b64(item["leaf"])
            if len(items) < _PAGE:
                return
            start += len(items)

    def inclusion(self, index: int, size: int) -> dict[str, Any]:
        return self.json(f"/audit/proof/inclusion?index={index}&size={size}")

    def consistency(self, first: int, second: int) -> dict[str, Any]:
        return self.json(f"/audit/proof/consistency?first={first}&second={second}")


def _b64(text: Any) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise VerifyError(f"{str(text)[:60]!r} is not base64") from None


def check_vault(
    api: AuditorApi,
    *,
    key: str | None = None,
    trusted: str | bytes | None = None,
    entry: int | None = None,
    replay: bool = False,
) -> Report:
    """Check the vault's newest signed checkpoint; with ``trusted`` (a checkpoint saved
    earlier, the bytes of its file) that the log now extends it (consistency proof); with
    ``entry`` that entry is in the signed tree as the vault serves it (inclusion proof);
    with ``replay`` every entry, as a bundle is checked (what ``pds audit verify --url``
    does: one request per 1,000 entries)."""
    offered = api.key()
    origin = offered.get("origin")
    if not isinstance(origin, str) or not isinstance(offered.get("verifier_key"), str):
        raise VerifyError(f"{api.base}/audit/key did not give an origin and a verifier key")
    vkey, pinned = _trusted_key(origin, key, offered["verifier_key"])
    report = Report(origin, vkey.text, pinned)
    try:
        cp = open_checkpoint(api.checkpoint(), vkey)
    except VerifyError as exc:
        report.fail(f"the vault's checkpoint does not verify: {exc.message}")
        return report
    report.newest = cp
    report.checked.append(f"Checkpoint: size {cp.size}, signed by {vkey.name}")
    if trusted is not None:
        _check_consistency(api, vkey, cp, trusted, report)
    if entry is not None:
        _check_inclusion(api, cp, entry, report)
    if replay:
        count = _replay(api.entries(), {cp.size: [("checkpoint", cp)]}, report)
        if count < cp.size:
            report.fail(
                f"the checkpoint covers {_entries(cp.size)} but the vault served only {count}: "
                "entries were removed",
                count,
            )
        after = (
            f" (the vault logged {_entries(count - cp.size)} since, this check's own requests "
            "among them: no signature covers them yet)"
            if count > cp.size
            else ""
        )
        report.checked.append(
            f"Entries: {count}, each hashed to its leaf; the first {cp.size} match the "
            f"checkpoint{after}"
        )
    return report


def _check_consistency(
    api: AuditorApi, vkey: VerifierKey, cp: Checkpoint, trusted: str | bytes, report: Report
) -> None:
    try:
        old = open_checkpoint(trusted, vkey)
    except VerifyError as exc:
        report.fail(f"your saved checkpoint does not verify: {exc.message}")
        return
    if old.size > cp.size:
        report.fail(
            f"the vault's log has {_entries(cp.size)}, fewer than the "
            f"{old.size} of your saved checkpoint: entries were removed"
        )
        return
    if old.size == cp.size:
        proof: list[bytes] = []
    else:
        answer = api.consistency(old.size, cp.size)
        proof = [_b64(h) for h in answer.get("proof", [])]
    if not verify_consistency(old.size, cp.size, old.root, cp.root, proof):
        report.fail(
            f"the log of size {cp.size} is not an extension of your saved checkpoint of size "
            f"{old.size}: entries before it were changed, removed, inserted or moved"
        )
        return
    report.checked.append(f"Consistency: the log extends your checkpoint of size {old.size}")


def _check_inclusion(api: AuditorApi, cp: Checkpoint, index: int, report: Report) -> None:
    if not 0 <= index < cp.size:
        report.fail(f"entry {index} is not covered by the checkpoint of size {cp.size}")
        return
    data, stored = api.entry(index)
    leaf = leaf_hash(data)
    if leaf != stored:
        report.fail(
            f"entry {index} does not hash to the leaf recorded when it was appended: "
            "it was changed afterwards",
            index,
        )
        return
    proof = [_b64(h) for h in api.inclusion(index, cp.size).get("proof", [])]
    if not verify_inclusion(leaf, index, cp.size, proof, cp.root):
        report.fail(f"entry {index} is not in the signed tree of size {cp.size}", index)
        return
    report.checked.append(f"Inclusion: entry {index} is in the signed tree of size {cp.size}")


# -- the program ----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``pds-verify``: see the module's docstring."""
    parser = argparse.ArgumentParser(
        prog="pds-verify", description="Check a pds vault's signed access log."
    )
    sub = parser.add_subparsers(dest="source", required=True)
    bundle = sub.add_parser("bundle", help="an exported bundle (pds audit export)")
    bundle.add_argument("file", type=Path)
    url = sub.add_parser("url", help="a running vault's auditor API")
    url.add_argument("url")
    url.add_argument("--token-file", type=Path, help="the audit:read token (or PDS_AUDIT_TOKEN)")
    url.add_argument("--entry", type=int, help="check the inclusion of this entry")
    url.add_argument("--all", action="store_true", help="also fetch and replay every entry")
    for p in (bundle, url):
        p.add_argument("--key", help="the verifier key to trust (from `pds audit key`)")
        p.add_argument(
            "--trusted",
            type=Path,
            action="append",
            default=[],
            help="a checkpoint you saved earlier (its file)",
        )
        p.add_argument(
            "--save-checkpoint", type=Path, help="after success, save the newest checkpoint here"
        )
    args = parser.parse_args(argv)
    try:
        trusted = [p.read_bytes() for p in args.trusted]
        key = args.key
        if key and Path(key).is_file():
            key = Path(key).read_text(encoding="utf-8").strip()
        if args.source == "bundle":
            report = verify_bundle(args.file, key=key, trusted=trusted)
        else:
            if len(trusted) > 1:
                raise VerifyError("give at most one --trusted checkpoint with url")
            api = AuditorApi(args.url, _token(args.token_file))
            report = check_vault(
                api,
                key=key,
                trusted=trusted[0] if trusted else None,
                entry=args.entry,
                replay=args.all,
            )
    except (VerifyError, OSError) as exc:
        print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
    print("\n".join(report.lines()))
    if report.ok and args.save_checkpoint and report.newest:
        args.save_checkpoint.write_bytes(report.newest.note.encode("utf-8"))
    return 0 if report.ok else 1


def _token(path: Path | None) -> str:
    token = (
        path.read_text(encoding="utf-8").strip()
        if path
        else os.environ.get("PDS_AUDIT_TOKEN", "").strip()
    )
    if not token:
        raise VerifyError("no auditor token: pass --token-file or set PDS_AUDIT_TOKEN")
    return token


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
