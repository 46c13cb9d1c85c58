"""How strong a new passphrase must be: zxcvbn (Dropbox's estimator) rates it 3 or more of 4.

``pds init``, ``pds passphrase`` and ``pds demo`` (when it creates the vault) refuse a weaker
one with zxcvbn's own feedback and a hint: four or more random words, with an example drawn
just then from zxcvbn's English word list (never a fixed example people would copy).
``--allow-weak-passphrase`` lets a throwaway vault (tests, a demo) keep a weak one.
"""

from __future__ import annotations

import secrets
from functools import cache

from pds.errors import ConfigError

MIN_SCORE = 3
"""zxcvbn's "safely unguessable: moderate protection from offline slow-hash scenario"."""

SCORED_CHARS = 256
"""zxcvbn reads this much of a passphrase (its time grows fast with length; 0.4 s here)."""

EXAMPLE_WORDS = 4
_CONTEXT = ["pds", "personal", "data", "store", "vault", "passphrase", "password"]


class WeakPassphrase(ConfigError):
    code = "weak_passphrase"


def require_strong(passphrase: str, *, allow_weak: bool = False) -> None:
    """Raise :class:`WeakPassphrase` unless zxcvbn scores ``passphrase`` at least
    :data:`MIN_SCORE` (an empty one is left to the vault, which says it is empty)."""
    if allow_weak or not passphrase:
        return
    result = _score(passphrase)
    if result["score"] >= MIN_SCORE:
        return
    feedback = result["feedback"]
    guessed = result["crack_times_display"]["offline_slow_hashing_1e4_per_second"]
    why = [_sentence(feedback.get("warning") or "")] if feedback.get("warning") else []
    why.append(f"it could be guessed in {guessed}")
    hint = (
        f'Use four or more random words, e.g. "{example()}" (picked at random '
        "just now; do not reuse an example printed anywhere)."
    )
    tips = " ".join(feedback.get("suggestions") or [])
    raise WeakPassphrase(
        f"that passphrase is too weak ({'; '.join(why)})", hint=f"{hint} {tips}".strip()
    )


def _score(passphrase: str) -> dict:
    from zxcvbn import zxcvbn

    text = passphrase[:SCORED_CHARS]
    return zxcvbn(text, user_inputs=_CONTEXT, max_length=SCORED_CHARS)


def _sentence(text: str) -> str:
    text = text.strip().rstrip(".")
    return text[:1].lower() + text[1:]


@cache
def _words() -> tuple[str, ...]:
    """Common English words of 4 to 8 letters, from the list zxcvbn ships."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    found = [
        w
        for w in FREQUENCY_LISTS["english_wikipedia"]
        if w.isascii() and w.isalpha() and w.islower() and 4 <= len(w) <= 8
    ]
    return tuple(found[:8192])


def example(count: int = EXAMPLE_WORDS) -> str:
    """``count`` words drawn at random (``secrets``) that zxcvbn itself rates strong."""
    words = _words()
    while True:
        candidate = " ".join(secrets.choice(words) for _ in range(count))
        if _score(candidate)["score"] >= MIN_SCORE:
            return candidate
