#!/usr/bin/env python3
"""A second implementation of RFC 9162 section 2.1, written from the RFC alone, to check
flowgate's Merkle tree (audit/merkle.hpp) from outside it.

Usage: merkle_check.py DIR, where DIR holds what the C++ tests wrote:
  tree.json         {"leaf_inputs": [hex], "leaf_hashes": [hex],
                     "roots": [hex, for sizes 0, 1, ...],
                     "inclusion_sizes": N, "consistency_sizes": M}
  inclusion.json    [{"leaf_index": i, "tree_size": n, "path": [hex]}, ...]
  consistency.json  [{"old_size": m, "new_size": n, "path": [hex]}, ...]

It recomputes every leaf hash and root, generates every proof with the RFC's
definitions (PATH, SUBPROOF) and requires the same hashes, verifies each with the RFC's
verification algorithms, checks that the files hold a proof for every leaf of every
tree of 1..N leaves and for every pair 1 <= m <= n <= M, and that altered copies of
each proof (a flipped bit in a path element or a root, another size or index) fail.
Prints "ok: ..." and exits 0, or prints each failure and exits 1. Standard library only.
"""
import hashlib
import json
import pathlib
import sys


def sha256(data):
    return hashlib.sha256(data).digest()


def leaf_hash(leaf_input):
    return sha256(b"\x00" + leaf_input)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


def largest_power_of_two_below(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(hashes):
    """MTH over leaf hashes (section 2.1.1)."""
    n = len(hashes)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return hashes[0]
    k = largest_power_of_two_below(n)
    return node_hash(mth(hashes[:k]), mth(hashes[k:]))


def path(m, hashes):
    """PATH(m, D[n]) (section 2.1.3.1)."""
    n = len(hashes)
    if n == 1:
        return []
    k = largest_power_of_two_below(n)
    if m < k:
        return path(m, hashes[:k]) + [mth(hashes[k:])]
    return path(m - k, hashes[k:]) + [mth(hashes[:k])]


def subproof(m, hashes, b):
    """SUBPROOF(m, D[n], b) (section 2.1.4.1)."""
    n = len(hashes)
    if m == n:
        return [] if b else [mth(hashes)]
    k = largest_power_of_two_below(n)
    if m <= k:
        return subproof(m, hashes[:k], b) + [mth(hashes[k:])]
    return subproof(m - k, hashes[k:], False) + [mth(hashes[:k])]


def verify_inclusion(leaf_index, tree_size, hash_, inclusion_path, root_hash):
    """Section 2.1.3.2."""
    if leaf_index >= tree_size:
        return False
    fn, sn, r = leaf_index, tree_size - 1, hash_
    for p in inclusion_path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_hash


def verify_consistency(first, second, first_hash, second_hash, consistency_path):
    """Section 2.1.4.2, for 0 < first < second; a tree is consistent with itself by an
    empty path (PROOF(m, D[m]) is empty); first 0 is refused."""
    if first == 0 or first > second:
        return False
    if first == second:
        return not consistency_path and first_hash == second_hash
    if not consistency_path:
        return False
    consistency_path = list(consistency_path)
    if first & (first - 1) == 0:
        consistency_path.insert(0, first_hash)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = consistency_path[0]
    for c in consistency_path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0


def flipped(hash_, bit):
    out = bytearray(hash_)
    out[(bit // 8) % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


def main(directory):
    directory = pathlib.Path(directory)
    tree = json.loads((directory / "tree.json").read_text())
    inclusions = json.loads((directory / "inclusion.json").read_text())
    consistencies = json.loads((directory / "consistency.json").read_text())
    failures = []

    inputs = [bytes.fromhex(x) for x in tree["leaf_inputs"]]
    hashes = [leaf_hash(x) for x in inputs]
    if [bytes.fromhex(x) for x in tree["leaf_hashes"]] != hashes:
        failures.append("leaf hashes differ from SHA-256(0x00 || leaf input)")
    roots = [mth(hashes[:n]) for n in range(len(tree["roots"]))]
    for n, root in enumerate(tree["roots"]):
        if bytes.fromhex(root) != roots[n]:
            failures.append(f"root of the tree of {n} leaves differs from MTH")

    seen = set()
    for proof in inclusions:
        m, n = proof["leaf_index"], proof["tree_size"]
        given = [bytes.fromhex(x) for x in proof["path"]]
        name = f"inclusion proof of leaf {m} in the tree of {n}"
        seen.add((m, n))
        if given != path(m, hashes[:n]):
            failures.append(f"{name}: not RFC 9162's PATH({m}, D[{n}])")
        if not verify_inclusion(m, n, hashes[m], given, roots[n]):
            failures.append(f"{name}: does not verify")
        altered = [(m, n, hashes[m], given, flipped(roots[n], 7), "a flipped root"),
                   (m, n, flipped(hashes[m], 3), given, roots[n], "a flipped leaf hash")]
        for i in range(len(given)):
            wrong = list(given)
            wrong[i] = flipped(given[i], i * 37 + 5)
            altered.append((m, n, hashes[m], wrong, roots[n], f"element {i} flipped"))
        altered += [(other, n, hashes[m], given, roots[n], f"leaf index {other}")
                    for other in range(n + 1) if other != m]
        altered += [(m, other, hashes[m], given, roots[other], f"tree size {other}")
                    for other in range(1, min(2 * n + 2, len(roots))) if other != n]
        altered += [(m, other, hashes[m], given, roots[n], f"tree size {other}, same root")
                    for other in (2 * n, n // 2)]
        for case in altered:
            if verify_inclusion(*case[:5]):
                failures.append(f"{name}: still verifies with {case[5]}")
    expected = {(m, n) for n in range(1, tree["inclusion_sizes"] + 1) for m in range(n)}
    if not expected <= seen:
        failures.append(f"{len(expected - seen)} inclusion proofs missing")

    seen = set()
    for proof in consistencies:
        m, n = proof["old_size"], proof["new_size"]
        given = [bytes.fromhex(x) for x in proof["path"]]
        name = f"consistency proof from {m} to {n} leaves"
        seen.add((m, n))
        if given != subproof(m, hashes[:n], True):
            failures.append(f"{name}: not RFC 9162's PROOF({m}, D[{n}])")
        if not verify_consistency(m, n, roots[m], roots[n], given):
            failures.append(f"{name}: does not verify")
        altered = [(m, n, flipped(roots[m], 1), roots[n], given, "a flipped old root"),
                   (m, n, roots[m], flipped(roots[n], 2), given, "a flipped new root")]
        for i in range(len(given)):
            wrong = list(given)
            wrong[i] = flipped(given[i], i * 29 + 11)
            altered.append((m, n, roots[m], roots[n], wrong, f"element {i} flipped"))
        limit = tree["consistency_sizes"] + 1
        altered += [(other, n, roots[other], roots[n], given, f"old size {other}")
                    for other in range(0, n + 1) if other != m]
        altered += [(m, other, roots[m], roots[other], given, f"new size {other}")
                    for other in range(m, limit) if other != n]
        if m < n:
            altered += [(old, new, roots[m], roots[n], given, f"sizes {old}, {new}, same roots")
                        for old, new in ((m - 1, n), (m + 1, n), (m ^ 2, n), (m, 2 * n),
                                         (m, n // 2))]
        for case in altered:
            if verify_consistency(*case[:5]):
                failures.append(f"{name}: still verifies with {case[5]}")
    expected = {(m, n) for n in range(1, tree["consistency_sizes"] + 1)
                for m in range(1, n + 1)}
    if not expected <= seen:
        failures.append(f"{len(expected - seen)} consistency proofs missing")

    for failure in failures:
        print(failure)
    if failures:
        return 1
    print(f"ok: {len(hashes)} leaf hashes, {len(roots)} roots, {len(inclusions)} inclusion "
          f"proofs, {len(consistencies)} consistency proofs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
