"""Offline verification of an access log: recompute the tree, check every signed checkpoint.

A :class:`LogSource` gives the log's origin, its verifier key, its signed checkpoints and its
entries in order (with the leaf hash the vault stored for each, where the source has it). It
can be the vault file itself, an exported bundle (:func:`write_bundle` / :class:`BundleSource`)
or a running vault's auditor API (``pds.audit.remote``). :func:`verify` then:

1. checks each checkpoint's Ed25519 signature (C2SP signed note) under the verifier key,
   which the auditor may pin (``key``) instead of taking the source's word for it;
2. reads every entry once, recomputing its RFC 9162 leaf hash (and comparing it with the
   stored one, which names an edited entry's index) and the running root;
3. compares the root at each checkpoint's size with the signed root, and the same for the
   checkpoints the auditor saved earlier (``trusted``): a log that was rewritten, shortened,
   reordered or extended by insertion no longer reproduces the root the auditor holds;
4. flags a fork: two validly signed checkpoints of one size with different roots;
5. for a bundle (``require_signed_end``), fails unless a checkpoint signed by the key covers
   every entry: entries past the newest signed checkpoint are vouched for by nobody, so
   anyone holding the file could have added them. A live vault's own log and its auditor
   API have such a tail normally (entries logged since the last checkpoint); it is reported
   (:func:`describe`) but is not a failure there.

Memory is O(log n) plus the checkpoints; the entries stream.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from pds.audit import checkpoint as cpmod
from pds.audit.log import CHECKPOINT_EVERY, CHECKPOINT_SECONDS
from pds.errors import PdsError
from pds.words import plural

BUNDLE_FORMAT = "pds-audit-bundle/1"
MAX_PROBLEMS = 20
_REWRITTEN = "an entry was changed, removed, inserted or moved"
_NEW_BUNDLE = "ask the vault's owner for a new bundle (`pds audit export`)"


class BundleError(PdsError, ValueError):
    code = "bad_audit_bundle"
    status = 400
    hint = "Export a new bundle with `pds audit export FILE`."


class LogSource(Protocol):
    origin: str
    verifier_key: str

    def signed_checkpoints(self) -> list[str]: ...

    def entries(self) -> Iterable[tuple[int, bytes, bytes | None]]: ...


@dataclass
class Problem:
    index: int | None
    message: str


@dataclass
class Report:
    origin: str
    verifier_key: str
    key_pinned: bool
    size: int = 0
    checkpoints: list[cpmod.Checkpoint] = field(default_factory=list)
    trusted: list[cpmod.Checkpoint] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    more_problems: int = 0
    newest_note: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_index(self) -> int | None:
        indexes = [p.index for p in self.problems if p.index is not None]
        return min(indexes) if indexes else None

    @property
    def newest_size(self) -> int | None:
        return max((cp.size for cp in self.checkpoints), default=None)

    def add(self, index: int | None, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(index, message))
        else:
            self.more_problems += 1

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "origin": self.origin,
            "verifier_key": self.verifier_key,
            "key_pinned": self.key_pinned,
            "entries": self.size,
            "checkpoints_verified": len(self.checkpoints),
            "newest_checkpoint_size": self.newest_size,
            "trusted_checkpoints": [cp.size for cp in self.trusted],
            "unsigned_entries": self.size - (self.newest_size or 0),
            "first_bad_index": self.first_bad_index,
            "problems": [{"index": p.index, "message": p.message} for p in self.problems],
            "more_problems": self.more_problems,
        }


def verify(
    source: LogSource,
    *,
    trusted: Sequence[str | bytes] = (),
    key: str | None = None,
    require_signed_end: bool = False,
) -> Report:
    """Check ``source`` completely; the report lists every problem found (``ok`` if none).

    ``require_signed_end`` (for bundles) makes entries past the newest checkpoint signed by
    the key a problem: nothing vouches for them.

    ``trusted`` notes are best given as the bytes of the files they were saved in: a signed
    note is checked byte for byte, so a file whose line endings, spaces or byte-order mark
    changed since it was saved does not verify.
    """
    vkey = key or source.verifier_key
    name, public_key = cpmod.parse_verifier_key(vkey)
    report = Report(source.origin, vkey, key_pinned=key is not None)
    if name != source.origin:
        report.add(None, f"the verifier key is for log {name!r}, not {source.origin!r}")
        return report

    roots: dict[int, bytes] = {}
    for note in source.signed_checkpoints():
        try:
            cp = cpmod.open_checkpoint(note, name, public_key, source.origin)
        except cpmod.CheckpointError as exc:
            report.add(None, f"a checkpoint of the log does not verify: {exc.message}")
            continue
        _note_root(report, roots, cp, "the log's")
        report.checkpoints.append(cp)
        if cp.size == report.newest_size:
            report.newest_note = note if isinstance(note, str) else note.decode("utf-8")
    for number, note in enumerate(trusted, start=1):
        try:
            cp = cpmod.open_checkpoint(note, name, public_key, source.origin)
        except cpmod.CheckpointError as exc:
            report.add(None, f"trusted checkpoint {number} does not verify: {exc.message}")
            continue
        _note_root(report, roots, cp, "a trusted")
        report.trusted.append(cp)

    by_size: dict[int, list[tuple[str, cpmod.Checkpoint]]] = {}
    for cp in report.checkpoints:
        by_size.setdefault(cp.size, []).append(("checkpoint", cp))
    for cp in report.trusted:
        by_size.setdefault(cp.size, []).append(("trusted checkpoint", cp))
    size = _replay(source.entries(), by_size, report)
    report.size = size
    for cp_size in sorted(s for s in by_size if s > size):
        for kind, _cp in by_size[cp_size]:
            older = (
                ", or this bundle is older than your checkpoint"
                if require_signed_end and kind == "trusted checkpoint"
                else ""
            )
            report.add(
                size,
                f"a {kind} covers {plural(cp_size, 'entry')} but the log has only {size}: "
                f"entries were removed{older}",
            )
    covered = report.newest_size
    if require_signed_end and covered is None and size == 0:
        report.add(
            None,
            "the bundle holds no checkpoint signed by the key: nothing in it can be verified; "
            + _NEW_BUNDLE,
        )
    elif require_signed_end and (covered or 0) < size:
        report.add(covered or 0, f"{uncovered(covered or 0, size)}; {_NEW_BUNDLE}")
    return report


def uncovered(covered: int, size: int) -> str:
    """What entries ``covered..size-1`` (past the newest signed checkpoint) are, in words."""
    if size - covered == 1:
        return (
            f"entry {covered} is not covered by any signed checkpoint: anyone with the file "
            "could have added it"
        )
    return (
        f"entries {covered}..{size - 1} are not covered by any signed checkpoint: anyone with "
        "the file could have added them"
    )


def _note_root(report: Report, roots: dict[int, bytes], cp: cpmod.Checkpoint, whose: str) -> None:
    seen = roots.setdefault(cp.size, cp.root)
    if seen != cp.root:
        report.add(
            None,
            f"fork: two validly signed checkpoints of size {cp.size} have different roots "
            f"({whose} says {cp.root.hex()[:16]}…, another says {seen.hex()[:16]}…)",
        )


def _replay(
    entries: Iterable[tuple[int, bytes, bytes | None]],
    by_size: dict[int, list[tuple[str, cpmod.Checkpoint]]],
    report: Report,
) -> int:
    sha = hashlib.sha256
    stack: list[tuple[int, bytes]] = []
    sizes = sorted(s for s in by_size if s > 0)
    if 0 in by_size:
        for _, cp in by_size[0]:
            if cp.root != sha(b"").digest():
                report.add(None, "a checkpoint of the empty log has a root other than SHA-256('')")
    pos = 0
    next_size = sizes[0] if sizes else -1
    expected = 0
    bad_leaf = False
    for index, data, stored in entries:
        if index != expected:
            report.add(expected, f"entry {expected} is missing (the next entry is {index})")
            return expected
        leaf = sha(b"\x00" + data).digest()
        if stored is not None and stored != leaf:
            report.add(
                index,
                f"entry {index} does not hash to the leaf recorded when it was appended: "
                "it was changed afterwards",
            )
            bad_leaf = True
        level, h = 0, leaf
        while stack and stack[-1][0] == level:
            h = sha(b"\x01" + stack.pop()[1] + h).digest()
            level += 1
        stack.append((level, h))
        expected += 1
        if expected == next_size:
            root = stack[-1][1]
            for _, left in reversed(stack[:-1]):
                root = sha(b"\x01" + left + root).digest()
            for kind, cp in by_size[expected]:
                if cp.root != root:
                    where = (
                        "" if bad_leaf else " (an entry was changed, removed, inserted or moved)"
                    )
                    report.add(
                        None,
                        f"the first {plural(expected, 'entry')} "
                        f"{'does' if expected == 1 else 'do'} not match the signed {kind} of "
                        f"size {expected}{where}",
                    )
            pos += 1
            next_size = sizes[pos] if pos < len(sizes) else -1
    return expected


# -- sources ----------------------------------------------------------------------------------


@dataclass
class VaultSource:
    """The log inside an open vault (``pds.audit.log.AuditLog``) with its stored leaf hashes."""

    log: object
    origin: str
    verifier_key: str

    def signed_checkpoints(self) -> list[str]:
        return [cp.note for cp in self.log.checkpoints()]  # type: ignore[attr-defined]

    def entries(self) -> Iterator[tuple[int, bytes, bytes | None]]:
        for index, entry, leaf in self.log.entries():  # type: ignore[attr-defined]
            yield index, entry.encode("utf-8"), leaf


def write_bundle(out: IO[bytes], source: LogSource) -> int:
    """Write ``source`` as a bundle: a JSON header line, then ``<leaf hex> <entry>`` lines.

    The header holds the origin, the verifier key and the signed checkpoints; each entry line
    is the entry's canonical bytes exactly, so a verifier hashes what it reads. No secrets.
    Only the entries the newest checkpoint covers are written (sign one just before, as
    ``pds audit export`` and the auditor page do): a verifier refuses a bundle whose last
    entries no signature covers, and a running vault logs new entries all the time.
    Returns the number of entries written.
    """
    checkpoints = source.signed_checkpoints()
    covered = max((_size_of(note) for note in checkpoints), default=0)
    header = {
        "format": BUNDLE_FORMAT,
        "origin": source.origin,
        "verifier_key": source.verifier_key,
        "checkpoints": checkpoints,
    }
    out.write(json.dumps(header, ensure_ascii=False).encode("utf-8") + b"\n")
    n = 0
    for _, data, leaf in source.entries():
        if n == covered:
            break
        out.write((leaf or hashlib.sha256(b"\x00" + data).digest()).hex().encode("ascii"))
        out.write(b" " + data + b"\n")
        n += 1
    return n


def _size_of(note: str) -> int:
    """The tree size a signed checkpoint note states (its signature is the verifier's job)."""
    return cpmod.parse_body(note.split("\n\n", 1)[0] + "\n").size


class BundleSource:
    """An exported bundle, read as a stream (see :func:`write_bundle`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with path.open("rb") as fh:
                first = fh.readline()
        except OSError as exc:
            raise BundleError(f"cannot read the bundle {path}: {exc.strerror}") from None
        try:
            header = json.loads(first)
        except ValueError:
            raise BundleError(f"{path} is not a pds audit bundle (no JSON header line)") from None
        if not isinstance(header, dict) or header.get("format") != BUNDLE_FORMAT:
            raise BundleError(f"{path} is not a pds audit bundle ({BUNDLE_FORMAT})")
        origin, vkey, cps = (
            header.get("origin"),
            header.get("verifier_key"),
            header.get("checkpoints"),
        )
        if not (
            isinstance(origin, str)
            and isinstance(vkey, str)
            and isinstance(cps, list)
            and all(isinstance(c, str) for c in cps)
        ):
            raise BundleError(f"the header of {path} lacks origin, verifier_key or checkpoints")
        self.origin, self.verifier_key, self._checkpoints = origin, vkey, cps
        self._skip = len(first)

    def signed_checkpoints(self) -> list[str]:
        return list(self._checkpoints)

    def entries(self) -> Iterator[tuple[int, bytes, bytes | None]]:
        with self.path.open("rb") as fh:
            fh.seek(self._skip)
            for index, line in enumerate(fh):
                if not line.endswith(b"\n") or len(line) < 66 or line[64:65] != b" ":
                    raise BundleError(f"line {index + 2} of {self.path} is not a log entry line")
                try:
                    leaf = bytes.fromhex(line[:64].decode("ascii"))
                except (UnicodeDecodeError, ValueError):
                    raise BundleError(
                        f"line {index + 2} of {self.path} does not start with a leaf hash"
                    ) from None
                yield index, line[65:-1], leaf


def describe(report: Report) -> list[str]:
    """The report in plain words, one line each, for ``pds audit verify``."""
    newest = report.newest_size
    key_note = (
        "pinned by you" if report.key_pinned else "taken from the log itself; pin it with --key"
    )
    lines = [
        f"Log:         {report.origin}",
        f"Key:         {report.verifier_key} ({key_note})",
        f"Entries:     {report.size}",
        f"Checkpoints: {len(report.checkpoints)} signed"
        + (f", newest at size {newest}" if newest is not None else ""),
    ]
    if report.trusted:
        sizes = ", ".join(str(cp.size) for cp in report.trusted)
        saved = plural(len(report.trusted), "saved checkpoint")
        at = "sizes" if len(report.trusted) > 1 else "size"
        lines.append(f"Trusted:     {saved} at {at} {sizes}")
    unsigned = report.size - (newest or 0)
    if report.ok:
        lines.append(
            "OK: every entry hashes to its leaf, every checkpoint is validly signed and matches "
            "the entries"
            + (", and the log extends every trusted checkpoint" if report.trusted else "")
            + "."
        )
        if unsigned > 0:
            first, last = newest or 0, report.size - 1
            which = f"entry {first} was" if unsigned == 1 else f"entries {first}..{last} were"
            lines.append(
                f"Note: {which} logged after the newest signed checkpoint, so no signature "
                f"covers {'it' if unsigned == 1 else 'them'} yet (normal for a running vault, "
                f"which signs one within {CHECKPOINT_EVERY} entries or "
                f"{CHECKPOINT_SECONDS // 60} minutes); "
                "a bundle must not have such entries."
            )
    else:
        for problem in report.problems:
            lines.append(f"FAILED: {problem.message}")
        if report.more_problems:
            lines.append(f"... and {plural(report.more_problems, 'more problem')}")
    return lines
