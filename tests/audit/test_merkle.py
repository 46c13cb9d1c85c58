"""RFC 9162 Merkle hashing and proofs: known answers and the laws, checked with hypothesis."""

from __future__ import annotations

import hashlib
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pds.audit.merkle import (
    EMPTY_ROOT,
    MemoryTree,
    RootAccumulator,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    mth,
    node_hash,
    subtree_hash,
    verify_consistency,
    verify_inclusion,
)
from pds.errors import ValidationError

# ---------------------------------------------------------------------------------------------
# Known answers. The eight leaves, the roots of their first 1..8 and the proofs are the RFC 6962
# test vectors of certificate-transparency's merkle_tree_test, as published in
# github.com/transparency-dev/merkle, file proof/verify_test.go (`leaves`, `roots`,
# `inclusionProofs`, `consistencyProofs`). Go numbers the inclusion vectors' leaves from 1;
# the indices below are 0-based.
# ---------------------------------------------------------------------------------------------

LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]

ROOTS = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]


def _h(*hexes: str) -> list[bytes]:
    return [bytes.fromhex(x) for x in hexes]


# (index, size, proof)
INCLUSION_VECTORS = [
    (0, 1, []),
    (
        0,
        8,
        _h(
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ),
    ),
    (
        5,
        8,
        _h(
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
    (2, 3, _h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")),
    (
        1,
        5,
        _h(
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ),
    ),
]

# (first, second, proof)
CONSISTENCY_VECTORS = [
    (1, 1, []),
    (
        1,
        8,
        _h(
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ),
    ),
    (
        6,
        8,
        _h(
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
    (
        2,
        5,
        _h(
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ),
    ),
    (
        6,
        7,
        _h(
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
]

SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def with_flipped(proof: list[bytes], i: int, bit: int) -> list[bytes]:
    return [flip(p, bit) if j == i else p for j, p in enumerate(proof)]


# ---------------------------------------------------------------------------------------------
# Independent oracles, written from the RFC 9162 definitions over plain lists.
# ---------------------------------------------------------------------------------------------


def split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_path(m: int, hashes: list[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(m, D_n)."""
    n = len(hashes)
    if n == 1:
        return []
    k = split(n)
    if m < k:
        return [*ref_path(m, hashes[:k]), mth(hashes[k:])]
    return [*ref_path(m - k, hashes[k:]), mth(hashes[:k])]


def ref_subproof(m: int, hashes: list[bytes], whole: bool) -> list[bytes]:
    """RFC 9162 §2.1.4.1 SUBPROOF(m, D_n, b)."""
    n = len(hashes)
    if m == n:
        return [] if whole else [mth(hashes)]
    k = split(n)
    if m <= k:
        return [*ref_subproof(m, hashes[:k], whole), mth(hashes[k:])]
    return [*ref_subproof(m - k, hashes[k:], False), mth(hashes[:k])]


def path_sides(m: int, n: int) -> tuple[str, ...]:
    """The side of each sibling in PATH(m, D_n), leaf first: the only use of n in §2.1.3.2."""
    if n == 1:
        return ()
    k = split(n)
    if m < k:
        return (*path_sides(m, k), "right")
    return (*path_sides(m - k, n - k), "left")


@cache
def built(seed: int, n: int) -> tuple[MemoryTree, tuple[bytes, ...]]:
    entries = [f"{seed}:{i}".encode() for i in range(n)]
    return MemoryTree(entries), tuple(leaf_hash(e) for e in entries)


class Counter:
    def __init__(self, tree: MemoryTree) -> None:
        self.tree = tree
        self.calls = 0

    def __call__(self, level: int, index: int) -> bytes:
        self.calls += 1
        return self.tree.perfect(level, index)


def ceil_log2(n: int) -> int:
    return (n - 1).bit_length()


# ---------------------------------------------------------------------------------------------
# Known answers
# ---------------------------------------------------------------------------------------------


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert mth([]) == EMPTY_ROOT
    assert RootAccumulator().root() == EMPTY_ROOT
    assert MemoryTree().root() == EMPTY_ROOT
    assert MemoryTree([b"x"]).root(0) == EMPTY_ROOT


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest() == ROOTS[0]
    assert (
        node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    )
    assert leaf_hash(b"a" * 64) != node_hash(b"a" * 32, b"a" * 32)


@pytest.mark.parametrize("n", range(1, 9))
def test_rfc6962_roots_of_the_first_n_leaves(n: int) -> None:
    hashes = [leaf_hash(d) for d in LEAVES[:n]]
    tree = MemoryTree(LEAVES[:n])
    acc = RootAccumulator()
    for h in hashes:
        acc.append(h)
    assert mth(hashes) == ROOTS[n - 1]
    assert acc.root() == ROOTS[n - 1]
    assert tree.root() == ROOTS[n - 1]
    assert subtree_hash(0, n, tree.perfect) == ROOTS[n - 1]
    assert MemoryTree(LEAVES).root(n) == ROOTS[n - 1]


def test_rfc6962_eight_leaf_root() -> None:
    assert MemoryTree(LEAVES).root().hex() == (
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    )


def inclusion_probes(index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes):
    """The corruptions of transparency-dev/merkle's corruptInclusionProof (verify_test.go)."""
    yield "index - 1", (leaf, index - 1, size, proof, root)
    yield "index + 1", (leaf, index + 1, size, proof, root)
    yield "index ^ 2", (leaf, index ^ 2, size, proof, root)
    yield "size * 2", (leaf, index, size * 2, proof, root)
    yield "size // 2", (leaf, index, size // 2, proof, root)
    yield "wrong leaf", (b"WrongLeaf", index, size, proof, root)
    yield "other leaf", (SOME_HASH, index, size, proof, root)
    yield "empty root", (leaf, index, size, proof, EMPTY_ROOT)
    yield "random root", (leaf, index, size, proof, SOME_HASH)
    yield "trailing garbage", (leaf, index, size, [*proof, b""], root)
    yield "trailing root", (leaf, index, size, [*proof, root], root)
    yield "preceding garbage", (leaf, index, size, [b"", *proof], root)
    yield "preceding root", (leaf, index, size, [root, *proof], root)
    if proof:
        yield "removed component", (leaf, index, size, proof[:-1], root)
    if len(proof) > 1:
        yield "inserted component", (leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], root)
    for i in range(len(proof)):
        for bit in range(256):
            yield f"proof[{i}] bit {bit}", (leaf, index, size, with_flipped(proof, i, bit), root)


@pytest.mark.parametrize(("index", "size", "expected"), INCLUSION_VECTORS)
def test_rfc6962_inclusion_proofs(index: int, size: int, expected: list[bytes]) -> None:
    tree = MemoryTree(LEAVES)
    leaf = leaf_hash(LEAVES[index])
    assert tree.inclusion_proof(index, size) == expected
    assert verify_inclusion(leaf, index, size, expected, ROOTS[size - 1])
    wrongly_accepted = [
        desc
        for desc, args in inclusion_probes(index, size, expected, ROOTS[size - 1], leaf)
        if verify_inclusion(*args)
    ]
    assert wrongly_accepted == []


def consistency_probes(first: int, second: int, root1: bytes, root2: bytes, proof: list[bytes]):
    """The corruptions of transparency-dev/merkle's corruptConsistencyProof (verify_test.go)."""
    yield "first - 1", (first - 1, second, root1, root2, proof)
    yield "first + 1", (first + 1, second, root1, root2, proof)
    yield "first ^ 2", (first ^ 2, second, root1, root2, proof)
    yield "second * 2", (first, second * 2, root1, root2, proof)
    yield "second // 2", (first, second // 2, root1, root2, proof)
    yield "wrong root1", (first, second, b"WrongRoot", root2, proof)
    yield "wrong root2", (first, second, root1, b"WrongRoot", proof)
    yield "swapped roots", (first, second, root2, root1, proof)
    yield "swapped sizes", (second, first, root1, root2, proof)
    yield "swapped sizes and roots", (second, first, root2, root1, proof)
    yield "empty proof", (first, second, root1, root2, [])
    yield "trailing garbage", (first, second, root1, root2, [*proof, b""])
    yield "trailing root1", (first, second, root1, root2, [*proof, root1])
    yield "trailing root2", (first, second, root1, root2, [*proof, root2])
    yield "preceding garbage", (first, second, root1, root2, [b"", *proof])
    yield "preceding root1", (first, second, root1, root2, [root1, *proof])
    yield "preceding root2", (first, second, root1, root2, [root2, *proof])
    yield "preceding proof[0]", (first, second, root1, root2, [proof[0], *proof])
    yield "truncated proof", (first, second, root1, root2, proof[:-1])
    for i in range(len(proof)):
        for bit in range(256):
            yield (
                f"proof[{i}] bit {bit}",
                (first, second, root1, root2, with_flipped(proof, i, bit)),
            )
    for bit in range(256):
        yield f"root1 bit {bit}", (first, second, flip(root1, bit), root2, proof)
        yield f"root2 bit {bit}", (first, second, root1, flip(root2, bit), proof)


@pytest.mark.parametrize(("first", "second", "expected"), CONSISTENCY_VECTORS)
def test_rfc6962_consistency_proofs(first: int, second: int, expected: list[bytes]) -> None:
    tree = MemoryTree(LEAVES)
    root1, root2 = ROOTS[first - 1], ROOTS[second - 1]
    assert tree.consistency_proof(first, second) == expected
    assert verify_consistency(first, second, root1, root2, expected)
    if not expected:
        return
    wrongly_accepted = [
        desc
        for desc, args in consistency_probes(first, second, root1, root2, expected)
        if verify_consistency(*args)
    ]
    assert wrongly_accepted == []


# The edge cases of transparency-dev/merkle's TestVerifyConsistency, with our decision for
# first == 0: the first root must be the empty tree's root (Go does not look at it).
R1, R2 = b"1" * 32, b"2" * 32


@pytest.mark.parametrize(
    ("first", "second", "root1", "root2", "proof", "ok"),
    [
        (0, 0, R1, R2, [], False),
        (1, 1, R1, R2, [], False),
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [], True),
        (0, 0, R1, R1, [], False),  # a tree of size 0 has only one root
        (0, 1, EMPTY_ROOT, R2, [], True),  # the empty tree is a prefix of every tree
        (0, 1, R1, R2, [], False),  # ... but only with its own root
        (0, 5, EMPTY_ROOT, R2, [R2], False),  # ... and with an empty proof
        (1, 1, R2, R2, [], True),
        (1, 0, R1, R2, [], False),  # time travel to the past
        (2, 1, R1, R2, [], False),
        (1, 2, R1, R2, [], False),  # empty proof for 0 < first < second
        (0, 0, EMPTY_ROOT, R2, [], False),
        (1, 1, EMPTY_ROOT, R2, [], False),
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
    ],
)
def test_consistency_edge_cases(
    first: int, second: int, root1: bytes, root2: bytes, proof: list[bytes], ok: bool
) -> None:
    assert verify_consistency(first, second, root1, root2, proof) is ok


@pytest.mark.parametrize(
    "args",
    [
        (SOME_HASH, 0, 0, [], SOME_HASH),  # index >= size
        (SOME_HASH, 1, 1, [], SOME_HASH),
        (SOME_HASH, 2, 1, [], SOME_HASH),
        (SOME_HASH, -1, 1, [], SOME_HASH),
        (SOME_HASH, "0", 1, [], SOME_HASH),
        (SOME_HASH, 0, None, [], SOME_HASH),
        (SOME_HASH, 0, 1.0, [], SOME_HASH),
        (SOME_HASH, True, 2, [SOME_HASH], SOME_HASH),
        (SOME_HASH, 0, 1, [], b""),  # wrong root size
        (b"", 0, 1, [], SOME_HASH),
        ("x" * 32, 0, 1, [], SOME_HASH),
        (SOME_HASH, 0, 2, SOME_HASH, SOME_HASH),  # a proof that is bytes, not a list
        (SOME_HASH, 0, 2, [SOME_HASH[:31]], SOME_HASH),
        (SOME_HASH, 0, 2, [None], SOME_HASH),
        (SOME_HASH, 0, 2, None, SOME_HASH),
        (SOME_HASH, 0, 2**70, [SOME_HASH] * 1000, SOME_HASH),
    ],
)
def test_verify_inclusion_is_false_for_malformed_input(args: tuple) -> None:
    assert verify_inclusion(*args) is False


@pytest.mark.parametrize(
    "args",
    [
        (-1, 2, SOME_HASH, SOME_HASH, []),
        (1, "2", SOME_HASH, SOME_HASH, [SOME_HASH]),
        (1, 2, SOME_HASH[:31], SOME_HASH, [SOME_HASH]),
        (1, 2, SOME_HASH, None, [SOME_HASH]),
        (1, 2, SOME_HASH, SOME_HASH, SOME_HASH),
        (1, 2, SOME_HASH, SOME_HASH, [b"short"]),
        (3, 2**70, SOME_HASH, SOME_HASH, [SOME_HASH] * 1000),
    ],
)
def test_verify_consistency_is_false_for_malformed_input(args: tuple) -> None:
    assert verify_consistency(*args) is False


def test_single_leaf_tree() -> None:
    # transparency-dev/merkle TestVerifyInclusionSingleEntry: root and leaf hash are the same.
    h = leaf_hash(b"data")
    assert MemoryTree([b"data"]).root() == h
    assert verify_inclusion(h, 0, 1, [], h)
    assert not verify_inclusion(h, 0, 1, [], EMPTY_ROOT)
    assert not verify_inclusion(EMPTY_ROOT, 0, 1, [], h)


def test_proof_requests_out_of_range_are_refused() -> None:
    tree = MemoryTree(LEAVES)
    with pytest.raises(ValidationError, match="leaf index 8 is not in a tree of size 8"):
        tree.inclusion_proof(8)
    with pytest.raises(ValidationError, match="leaf index 0 is not in a tree of size 0"):
        inclusion_proof(0, 0, tree.perfect)
    with pytest.raises(ValidationError, match="no consistency proof from tree size 5 to 3"):
        consistency_proof(5, 3, tree.perfect)
    with pytest.raises(ValidationError, match="larger than the log"):
        tree.consistency_proof(1, 9)
    with pytest.raises(ValidationError):
        subtree_hash(3, 2, tree.perfect)
    with pytest.raises(LookupError):
        tree.perfect(3, 1)
    assert tree.consistency_proof(0, 8) == []
    assert tree.consistency_proof(8, 8) == []


def test_accumulator_rejects_what_is_not_a_hash() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        RootAccumulator().append(b"short")


def test_accumulator_streams_a_large_log_in_log_memory() -> None:
    n = 150_000
    hashes = [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    acc = RootAccumulator()
    for h in hashes:
        acc.append(h)
    assert acc.size == n
    assert len(acc._stack) == bin(n).count("1")
    assert acc.root() == mth(hashes)


# ---------------------------------------------------------------------------------------------
# The laws (hypothesis)
# ---------------------------------------------------------------------------------------------

seeds = st.integers(0, 3)
sizes = st.integers(1, 300)


@settings(max_examples=150, deadline=None)
@given(seeds, sizes, st.data())
def test_subtree_hash_equals_mth_for_any_range(seed: int, n: int, data: st.DataObject) -> None:
    tree, hashes = built(seed, n)
    start = data.draw(st.integers(0, n), label="start")
    end = data.draw(st.integers(start, n), label="end")
    counter = Counter(tree)
    assert subtree_hash(start, end, counter) == mth(hashes[start:end])
    length = end - start
    if length and start % (1 << (length.bit_length() - 1)) == 0:
        # The ranges proofs use: one stored subtree per binary digit of the length.
        assert counter.calls == bin(length).count("1")


@settings(max_examples=100, deadline=None)
@given(seeds, sizes, st.data())
def test_subtree_hash_of_tree_nodes(seed: int, n: int, data: st.DataObject) -> None:
    # Every node of the tree of size n: [j * 2**l, min((j + 1) * 2**l, n)).
    tree, hashes = built(seed, n)
    level = data.draw(st.integers(0, ceil_log2(n)), label="level")
    j = data.draw(st.integers(0, (n - 1) >> level), label="j")
    start, end = j << level, min((j + 1) << level, n)
    counter = Counter(tree)
    assert subtree_hash(start, end, counter) == mth(hashes[start:end])
    assert counter.calls <= level + 1


@settings(max_examples=100, deadline=None)
@given(seeds, sizes, st.lists(st.integers(0, 300), max_size=5))
def test_accumulator_root_equals_mth(seed: int, n: int, probes: list[int]) -> None:
    _, hashes = built(seed, n)
    checkpoints = {min(p, n) for p in probes} | {n}
    acc = RootAccumulator()
    reported: dict[tuple[int, int], bytes] = {}
    for i, h in enumerate(hashes):
        for level, index, sub in acc.append(h):
            assert (level, index) not in reported
            reported[level, index] = sub
        assert acc.size == i + 1
        if i + 1 in checkpoints:
            assert acc.root() == mth(hashes[: i + 1])
            assert len(acc._stack) == bin(i + 1).count("1")
    # Exactly the perfect subtrees inside [0, n), each with its MTH.
    expected = {(lv, ix) for lv in range(n.bit_length()) for ix in range(n >> lv)}
    assert set(reported) == expected
    for (level, index), sub in reported.items():
        assert sub == mth(hashes[index << level : (index + 1) << level])


@settings(max_examples=100, deadline=None)
@given(seeds, sizes, st.data())
def test_accumulator_resumes_from_stored_subtrees(seed: int, n: int, data: st.DataObject) -> None:
    tree, hashes = built(seed, n)
    k = data.draw(st.integers(0, n), label="k")
    counter = Counter(tree)
    acc = RootAccumulator.resume(k, counter)
    assert counter.calls == bin(k).count("1")
    assert acc.size == k
    assert acc.root() == tree.root(k)
    fresh = RootAccumulator()
    for h in hashes[:k]:
        fresh.append(h)
    for h in hashes[k:]:
        assert acc.append(h) == fresh.append(h)
    assert acc.root() == tree.root()


@settings(max_examples=150, deadline=None)
@given(seeds, sizes, st.data())
def test_inclusion_proofs(seed: int, n: int, data: st.DataObject) -> None:
    tree, hashes = built(seed, n)
    size = data.draw(st.integers(1, n), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    root = tree.root(size)
    leaf = hashes[index]
    counter = Counter(tree)
    proof = inclusion_proof(index, size, counter)
    assert proof == ref_path(index, list(hashes[:size]))
    assert counter.calls <= 2 * ceil_log2(size)
    assert verify_inclusion(leaf, index, size, proof, root)
    assert verify_inclusion(bytearray(leaf), index, size, tuple(proof), bytearray(root))

    # Any other index (in range or not) fails.
    for other in range(size + 2):
        if other != index:
            assert not verify_inclusion(leaf, other, size, proof, root)
    # Any other leaf fails: every other leaf of the log, and one not in it.
    for other in {hashes[j] for j in range(size) if j != index} | {SOME_HASH}:
        assert not verify_inclusion(other, index, size, proof, root)
    # Any other root fails: the roots of the log at other sizes, and a flipped bit.
    for other_size in range(1, n + 1):
        if other_size != size:
            assert not verify_inclusion(leaf, index, size, proof, tree.root(other_size))
    bit = data.draw(st.integers(0, 255), label="root bit")
    assert not verify_inclusion(leaf, index, size, proof, flip(root, bit))
    # Any other size fails, except the sizes where RFC 9162 §2.1.3.2 walks the same path
    # shape (e.g. leaf 0 of 3 and of 4): the algorithm uses the size only for the shape,
    # and it is the root, signed together with its size, that binds the size.
    sides = path_sides(index, size)
    for other_size in range(2 * size + 2):
        if other_size != size:
            same_shape = index < other_size and path_sides(index, other_size) == sides
            assert verify_inclusion(leaf, index, other_size, proof, root) is same_shape
    # Any single bit flipped in any proof element fails.
    for i in range(len(proof)):
        bit = data.draw(st.integers(0, 255), label=f"bit of proof[{i}]")
        assert not verify_inclusion(leaf, index, size, with_flipped(proof, i, bit), root)
    # A proof with an element missing or added fails.
    if proof:
        assert not verify_inclusion(leaf, index, size, proof[:-1], root)
    assert not verify_inclusion(leaf, index, size, [*proof, SOME_HASH], root)


@settings(max_examples=150, deadline=None)
@given(seeds, sizes, st.data())
def test_consistency_proofs(seed: int, n: int, data: st.DataObject) -> None:
    tree, hashes = built(seed, n)
    second = data.draw(st.integers(1, n), label="second")
    first = data.draw(st.integers(1, second), label="first")
    root1, root2 = tree.root(first), tree.root(second)
    counter = Counter(tree)
    proof = consistency_proof(first, second, counter)
    if first < second:
        assert proof == ref_subproof(first, list(hashes[:second]), True)
    else:
        assert proof == []
    assert counter.calls <= 2 * ceil_log2(second)
    assert verify_consistency(first, second, root1, root2, proof)

    # Any bit of either root or of the proof changed fails.
    bit1 = data.draw(st.integers(0, 255), label="root1 bit")
    bit2 = data.draw(st.integers(0, 255), label="root2 bit")
    assert not verify_consistency(first, second, flip(root1, bit1), root2, proof)
    assert not verify_consistency(first, second, root1, flip(root2, bit2), proof)
    for i in range(len(proof)):
        bit = data.draw(st.integers(0, 255), label=f"bit of proof[{i}]")
        assert not verify_consistency(first, second, root1, root2, with_flipped(proof, i, bit))
    # Swapped sizes (first != second) fail, whatever the roots.
    if first != second:
        assert not verify_consistency(second, first, root1, root2, proof)
        assert not verify_consistency(second, first, root2, root1, proof)
        # Another tree's roots fail too.
        assert not verify_consistency(first, second, root2, root1, proof)
    # A proof with an element missing or added fails.
    if proof:
        assert not verify_consistency(first, second, root1, root2, proof[:-1])
    assert not verify_consistency(first, second, root1, root2, [*proof, SOME_HASH])
    # From the empty tree: an empty proof, and only the empty tree's root.
    assert tree.consistency_proof(0, second) == []
    assert verify_consistency(0, second, EMPTY_ROOT, root2, [])
    assert not verify_consistency(0, second, flip(EMPTY_ROOT, bit1), root2, [])
