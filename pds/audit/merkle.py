"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing and proofs. Pure: no SQL, no I/O.

Vocabulary (RFC 9162 §2.1):

- ``leaf_hash(d) = SHA-256(0x00 || d)`` and ``node_hash(l, r) = SHA-256(0x01 || l || r)``.
- ``MTH(D_n)``: the root of n leaves. For n > 1 it splits at k, the largest power of two
  smaller than n: ``MTH(D_n) = node_hash(MTH(D[0:k]), MTH(D[k:n]))``.
- A *perfect subtree* ``(level, index)`` is the complete subtree over the 2**level leaves
  ``[index * 2**level, (index + 1) * 2**level)``; level 0 is a leaf hash. Every such subtree
  is a node of every tree whose size covers it, and it never changes once complete.

Storage persists the perfect subtrees that :class:`RootAccumulator` reports as complete on
each append; proof generation then reads them back through a callback
``perfect(level, index) -> bytes`` and never needs the whole log:

- :func:`subtree_hash`, :func:`inclusion_proof` and :func:`consistency_proof` make O(log n)
  ``perfect`` calls for every range a proof needs: at most ``2 * ceil(log2 n)`` calls for
  an inclusion or a consistency proof in a tree of n leaves (checked in the tests).
- The verifiers :func:`verify_inclusion` and :func:`verify_consistency` are the RFC's
  §2.1.3.2 and §2.1.4.2 algorithms step for step; they return ``False``, never raise, on any
  malformed input.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

from pds.errors import ValidationError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MemoryTree",
    "PerfectFn",
    "RootAccumulator",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "mth",
    "node_hash",
    "subtree_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""RFC 9162 §2.1.1: the hash of an empty list is the hash of an empty string, MTH({}) = HASH()."""

PerfectFn = Callable[[int, int], bytes]
"""``perfect(level, index)``: the stored hash of the perfect subtree over leaves
``[index * 2**level, (index + 1) * 2**level)``."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 §2.1.1: the hash of a one-entry list, ``MTH({d(0)}) = SHA-256(0x00 || d(0))``."""
    return hashlib.sha256(_LEAF_PREFIX + bytes(entry)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: an interior node, ``SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))``."""
    return hashlib.sha256(_NODE_PREFIX + bytes(left) + bytes(right)).digest()


def _split(n: int) -> int:
    """RFC 9162 §2.1.1: k, the largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def mth(leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.1: MTH over already-hashed leaves, by the reference recursion.

    Splits at the largest power of two smaller than n. It reads every leaf: use it as the
    test oracle and for small ranges; :class:`RootAccumulator` streams large logs.
    """

    def rec(lo: int, hi: int) -> bytes:
        if hi - lo == 1:
            return bytes(leaf_hashes[lo])
        k = _split(hi - lo)
        return node_hash(rec(lo, lo + k), rec(lo + k, hi))

    if len(leaf_hashes) == 0:
        return EMPTY_ROOT
    return rec(0, len(leaf_hashes))


def _require_hash(value: bytes, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        raise ValueError(f"{what} must be {HASH_SIZE} bytes")
    return bytes(value)


class RootAccumulator:
    """A streaming MTH: a compact range, the stack of perfect subtrees covering ``[0, size)``.

    RFC 9162 §2.1.1 implies that MTH(D_n) is the right-to-left fold of the perfect subtrees
    given by the binary digits of n, largest (leftmost) first. The stack holds one hash per
    set bit of ``size``, so memory is O(log n) and a verifier computes the root of a million
    leaves reading each once.

    :meth:`append` reports every perfect subtree the new leaf completed as
    ``(level, index, hash)``: storage persists these, and :meth:`resume` rebuilds the
    accumulator from them in O(log n) ``perfect`` calls.
    """

    __slots__ = ("_size", "_stack")

    def __init__(self) -> None:
        self._size = 0
        # (level, hash), levels strictly decreasing from bottom to top.
        self._stack: list[tuple[int, bytes]] = []

    @classmethod
    def resume(cls, size: int, perfect: PerfectFn) -> RootAccumulator:
        """The accumulator of a stored tree of ``size`` leaves, from its perfect subtrees."""
        if not isinstance(size, int) or size < 0:
            raise ValidationError(f"tree size {size!r} is not a non-negative integer")
        acc = cls()
        start = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                acc._stack.append((level, _require_hash(perfect(level, start >> level), "hash")))
                start += 1 << level
        acc._size = size
        return acc

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    def append(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; return the perfect subtrees it completed, ``(level, index, hash)``.

        The list starts with ``(0, i, leaf_hash)`` for the new leaf i, then one entry per
        level it completed: ``(level, i >> level, hash)`` while ``i + 1`` is a multiple of
        ``2**level``.
        """
        h = _require_hash(leaf_hash, "leaf hash")
        i = self._size
        level = 0
        completed = [(0, i, h)]
        stack = self._stack
        while stack and stack[-1][0] == level:
            _, left = stack.pop()
            h = node_hash(left, h)
            level += 1
            completed.append((level, i >> level, h))
        stack.append((level, h))
        self._size = i + 1
        return completed

    def root(self) -> bytes:
        """RFC 9162 §2.1.1: MTH of the leaves appended so far (EMPTY_ROOT for none)."""
        if not self._stack:
            return EMPTY_ROOT
        h = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            h = node_hash(left, h)
        return h


def _check_range(start: int, end: int) -> None:
    if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end):
        raise ValidationError(f"[{start}, {end}) is not a range of leaves")


def subtree_hash(start: int, end: int, perfect: PerfectFn) -> bytes:
    """RFC 9162 §2.1.1: MTH(D[start:end]), the hash of the sublist of leaves [start, end).

    When ``start`` is a multiple of the largest power of two not above ``end - start`` (true
    of every node of every tree, so of every range a proof needs), the range is the aligned
    perfect subtrees given by the binary digits of its length, largest first, and its MTH is
    their right-to-left fold: ``node(P1, node(P2, ... node(Pm-1, Pm)))``, the §2.1.1 split
    applied repeatedly. That costs one ``perfect`` call per set bit of ``end - start``.

    Any other range is split per §2.1.1 (at start + k) and each half is hashed the same way.
    Such a sublist's MTH is generally not built from aligned stored subtrees, so the cost can
    reach ``end - start`` calls; proofs never ask for one.
    """
    _check_range(start, end)
    n = end - start
    if n == 0:
        return EMPTY_ROOT
    top = 1 << (n.bit_length() - 1)  # largest power of two <= n
    if start % top:
        k = _split(n)
        return node_hash(
            subtree_hash(start, start + k, perfect), subtree_hash(start + k, end, perfect)
        )
    parts: list[bytes] = []
    pos = start
    for level in range(n.bit_length() - 1, -1, -1):
        if n >> level & 1:
            parts.append(_require_hash(perfect(level, pos >> level), "stored subtree hash"))
            pos += 1 << level
    h = parts[-1]
    for left in reversed(parts[:-1]):
        h = node_hash(left, h)
    return h


def inclusion_proof(index: int, size: int, perfect: PerfectFn) -> list[bytes]:
    """RFC 9162 §2.1.3.1: PATH(m, D_n), the audit path of leaf ``index`` in a tree of ``size``.

    ``PATH(m, D_n) = PATH(m, D[0:k]) : MTH(D[k:n])`` if m < k, else
    ``PATH(m - k, D[k:n]) : MTH(D[0:k])``; the leaf's sibling comes first. Only the one
    sibling where the path leaves the tree's right edge can be a non-perfect range, so the
    proof costs at most ``2 * ceil(log2(size))`` ``perfect`` calls.
    """
    if not (isinstance(index, int) and isinstance(size, int) and 0 <= index < size):
        raise ValidationError(f"leaf index {index} is not in a tree of size {size}")
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(subtree_hash(lo + k, hi, perfect))
            hi = lo + k
        else:
            path.append(subtree_hash(lo, lo + k, perfect))
            lo += k
    path.reverse()
    return path


def consistency_proof(first: int, second: int, perfect: PerfectFn) -> list[bytes]:
    """RFC 9162 §2.1.4.1: PROOF(m, D_n) = SUBPROOF(m, D_n, true) for first = m, second = n.

    ``SUBPROOF(m, D_n, b)`` is ``{}`` if m = n and b, ``{MTH(D_n)}`` if m = n and not b;
    otherwise ``SUBPROOF(m, D[0:k], b) : MTH(D[k:n])`` if m <= k, else
    ``SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])``. As for inclusion, at most one element
    is a non-perfect range: at most ``2 * ceil(log2(second))`` ``perfect`` calls.

    The RFC defines proofs for 0 < first < second; for ``first == 0`` and
    ``first == second`` the proof is empty (see :func:`verify_consistency`).
    """
    if not (isinstance(first, int) and isinstance(second, int) and 0 <= first <= second):
        raise ValidationError(f"no consistency proof from tree size {first} to {second}")
    if first == 0 or first == second:
        return []
    path: list[bytes] = []
    lo, hi = 0, second
    whole = True  # the RFC's b: is [lo, hi) still the prefix containing the old root?
    while True:
        m, n = first - lo, hi - lo
        if m == n:
            if not whole:
                path.append(subtree_hash(lo, hi, perfect))
            break
        k = _split(n)
        if m <= k:
            path.append(subtree_hash(lo + k, hi, perfect))
            hi = lo + k
        else:
            path.append(subtree_hash(lo, lo + k, perfect))
            lo += k
            whole = False
    path.reverse()
    return path


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes | bytearray) and len(value) == HASH_SIZE


def _is_path(value: object) -> bool:
    return isinstance(value, list | tuple) and all(_is_hash(p) for p in value)


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` show leaf ``index`` of tree ``size`` is ``leaf_hash``?

    The RFC algorithm verbatim. ``proof`` is a list or tuple of 32-byte hashes; anything
    malformed (wrong types or lengths, ``index >= size``, a path too long or too short)
    gives ``False``. Note that the algorithm uses ``size`` only to fix the shape of the path:
    it is the root, signed together with its size in a checkpoint, that binds the size.
    """
    if not (_is_count(index) and _is_count(size) and _is_hash(leaf_hash) and _is_hash(root)):
        return False
    if not _is_path(proof):
        return False
    # 1. If leaf_index >= tree_size, fail.
    if index >= size:
        return False
    # 2. fn = leaf_index, sn = tree_size - 1.  3. r = hash.
    fn, sn = index, size - 1
    r = bytes(leaf_hash)
    # 4. For each value p in the inclusion_path array:
    for p in proof:
        # a. If sn is 0, stop the iteration and fail.
        if sn == 0:
            return False
        # b. If LSB(fn) is set, or if fn is equal to sn:
        if fn & 1 or fn == sn:
            # i. r = HASH(0x01 || p || r)
            r = node_hash(p, r)
            # ii. If LSB(fn) is not set, right-shift fn and sn until LSB(fn) is set or fn is 0.
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            # Otherwise: r = HASH(0x01 || r || p)
            r = node_hash(r, p)
        # c. Right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 5. sn must be 0 and r must equal root_hash.
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: is the tree (second, second_root) an extension of (first, first_root)?

    For 0 < first < second, the RFC algorithm verbatim. The RFC leaves two cases out; here:

    - ``first == second``: consistent iff the proof is empty and the roots are equal.
    - ``first == 0``: the empty tree is a prefix of every tree, so consistent iff the proof
      is empty and ``first_root`` is ``EMPTY_ROOT`` (SHA-256 of nothing, the only root a
      tree of size 0 can have); ``second_root`` is not constrained unless ``second`` is
      also 0. (Go's transparency-dev/merkle does not check ``first_root`` here; we do.)

    Anything malformed (wrong types or lengths, ``first > second``, a path too long or too
    short) gives ``False``.
    """
    if not (_is_count(first) and _is_count(second)):
        return False
    if not (_is_hash(first_root) and _is_hash(second_root) and _is_path(proof)):
        return False
    if first > second:
        return False
    if first == 0:
        return (
            len(proof) == 0
            and first_root == EMPTY_ROOT
            and (second > 0 or second_root == EMPTY_ROOT)
        )
    if first == second:
        return len(proof) == 0 and first_root == second_root
    # 1. If consistency_path is an empty array, fail.
    if len(proof) == 0:
        return False
    path = [bytes(p) for p in proof]
    # 2. If first is an exact power of 2, prepend first_hash to the consistency_path array.
    if first & (first - 1) == 0:
        path.insert(0, bytes(first_root))
    # 3. fn = first - 1, sn = second - 1.
    fn, sn = first - 1, second - 1
    # 4. If LSB(fn) is set, right-shift both fn and sn equally until LSB(fn) is not set.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. fr = sr = the first value in the consistency_path array.
    fr = sr = path[0]
    # 6. For each subsequent value c in the consistency_path array:
    for c in path[1:]:
        # a. If sn is 0, stop the iteration and fail.
        if sn == 0:
            return False
        # b. If LSB(fn) is set, or if fn is equal to sn:
        if fn & 1 or fn == sn:
            # i. fr = HASH(0x01 || c || fr); ii. sr = HASH(0x01 || c || sr)
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            # iii. If LSB(fn) is not set, right-shift fn and sn until LSB(fn) is set or fn is 0.
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            # Otherwise: sr = HASH(0x01 || sr || c)
            sr = node_hash(sr, c)
        # c. Right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 7. fr must equal first_hash, sr must equal second_hash, and sn must be 0.
    return sn == 0 and fr == first_root and sr == second_root


class MemoryTree:
    """An in-memory log for tests and small logs: every perfect subtree kept in a dict.

    Built on :class:`RootAccumulator`'s completed-subtree reports, exactly as storage will
    be, so it also exercises the ``perfect`` callback contract.
    """

    def __init__(self, entries: Iterable[bytes] = ()) -> None:
        self._acc = RootAccumulator()
        self._nodes: dict[tuple[int, int], bytes] = {}
        for entry in entries:
            self.append(entry)

    @property
    def size(self) -> int:
        return self._acc.size

    def append(self, entry: bytes) -> int:
        """Append one entry (hashed with :func:`leaf_hash`); return its leaf index."""
        return self.append_leaf_hash(leaf_hash(entry))

    def append_leaf_hash(self, leaf: bytes) -> int:
        """Append an already-hashed leaf; return its leaf index."""
        index = self._acc.size
        for level, i, h in self._acc.append(leaf):
            self._nodes[level, i] = h
        return index

    def perfect(self, level: int, index: int) -> bytes:
        """The hash of the complete subtree ``(level, index)``; LookupError if not complete."""
        try:
            return self._nodes[level, index]
        except KeyError:
            raise LookupError(
                f"no complete subtree at level {level}, index {index} in a tree of {self.size}"
            ) from None

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first ``size`` leaves (default: all of them)."""
        if size is None:
            return self._acc.root()
        if not (isinstance(size, int) and 0 <= size <= self.size):
            raise ValidationError(f"tree size {size} is not between 0 and {self.size}")
        return subtree_hash(0, size, self.perfect)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """:func:`inclusion_proof` for leaf ``index`` in the first ``size`` leaves."""
        size = self.size if size is None else size
        if size > self.size:
            raise ValidationError(f"tree size {size} is larger than the log ({self.size})")
        return inclusion_proof(index, size, self.perfect)

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        """:func:`consistency_proof` between the first ``first`` and ``second`` leaves."""
        second = self.size if second is None else second
        if second > self.size:
            raise ValidationError(f"tree size {second} is larger than the log ({self.size})")
        return consistency_proof(first, second, self.perfect)
