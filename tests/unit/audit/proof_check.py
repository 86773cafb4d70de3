#!/usr/bin/env python3
"""An independent checker of flowgate's proof documents (`flowgate audit prove`,
`consistency`, `records --proofs`), written from docs/audit-store.md with Python's
standard library and python3-cryptography: the signed checkpoints are read by
note_check.py, the tree's proofs checked by merkle_check.py (each written from its
specification alone), and the row's canonical bytes rebuilt here from the row's columns.

    proof_check.py VERIFIER_KEY_FILE DOCUMENT_FILE...

For each document, one line: "ok: " and what it proves, or "refused: " and why. Exit 0
when every document was ok, 1 otherwise.
"""

import base64
import binascii
import datetime
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from merkle_check import leaf_hash, sha256, verify_consistency, verify_inclusion  # noqa: E402
from note_check import Refused, open_note, parse_checkpoint, parse_verifier_key  # noqa: E402

# The columns of the canonical bytes, in order, with the schema version each appeared in.
FIELDS = [("seq", 1), ("time", 1), ("kind", 1), ("uid", 1), ("gid", 1), ("pid", 1),
          ("service", 1), ("request", 1), ("request_encoding", 2), ("request_bytes", 2),
          ("request_sha256", 2), ("decision", 1), ("reason", 1), ("rule", 1),
          ("rule_source", 1), ("legal_basis", 1), ("obligations", 1), ("policy_hash", 1),
          ("purpose", 1), ("activity", 1), ("recipient", 1), ("direction", 1), ("data", 1),
          ("subject", 1), ("detail", 1)]
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def time_us(text):
    """2024-05-01T09:30:00.123456Z, in microseconds since the epoch."""
    try:
        moment = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    except (TypeError, ValueError) as error:
        raise Refused(f"the row's time {text!r} is not a UTC time with microseconds") from error
    return (moment.replace(tzinfo=datetime.timezone.utc) - EPOCH) // datetime.timedelta(
        microseconds=1)


def canonical_bytes(row, version):
    """Each column of the version: an 8-byte big-endian length, then its bytes."""
    out = b""
    for name, since in FIELDS:
        if since > version:
            continue
        if name not in row:
            raise Refused(f"the row has no {name}")
        value = time_us(row[name]) if name == "time" else row[name]
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise Refused(f"the row's {name} is neither an integer nor a text")
        data = str(value).encode("utf-8")
        out += len(data).to_bytes(8, "big") + data
    return out


def hash_of(text):
    try:
        value = base64.b64decode(text.encode("ascii"), validate=True)
    except (AttributeError, binascii.Error, UnicodeEncodeError) as error:
        raise Refused(f"not a base64 hash: {text!r}") from error
    if len(value) != 32:
        raise Refused(f"not 32 bytes: {text!r}")
    return value


def checkpoint(note, key):
    if not isinstance(note, str):
        raise Refused("a checkpoint is not a text")
    return parse_checkpoint(open_note(note.encode("utf-8"), *key))


def check_row(proof, size, root, where=""):
    """The row's leaf, from its columns, and its path to the root."""
    row, index = proof["row"], proof["leaf_index"]
    if index != row["seq"] - 1:
        raise Refused(f"{where}leaf_index {index} is not the row's seq less one")
    leaf = leaf_hash(canonical_bytes(row, proof["schema_version"]))
    if leaf != hash_of(proof["leaf_hash"]):
        raise Refused(f"{where}the row does not hash to leaf_hash")
    if not verify_inclusion(index, size, leaf, [hash_of(p) for p in proof["inclusion_path"]],
                            root):
        raise Refused(f"{where}the inclusion path does not lead to the checkpoint's root")
    return row["seq"]


def check(document, key):
    kind = document.get("proof")
    if kind in ("inclusion", "subject"):
        origin, size, root = checkpoint(document["checkpoint"], key)
        if document["tree_size"] != size:
            raise Refused(f"tree_size is not the checkpoint's {size}")
        if kind == "inclusion":
            seq = check_row(document, size, root)
            return f"seq {seq} is in {origin} at tree size {size}"
        seqs = set()
        for i, proof in enumerate(document["records"]):
            where = f"records[{i}]: "
            if proof["row"]["subject"] != document["subject"]:
                raise Refused(f"{where}the row is about {proof['row']['subject']!r}, "
                              f"not {document['subject']!r}")
            seq = check_row(proof, size, root, where)
            if seq in seqs:
                raise Refused(f"{where}seq {seq} is there twice")
            seqs.add(seq)
        return f"{len(seqs)} rows about {document['subject']} are in {origin} at tree size {size}"
    if kind == "consistency":
        old_origin, old_size, old_root = checkpoint(document["old_checkpoint"], key)
        origin, new_size, new_root = checkpoint(document["new_checkpoint"], key)
        if old_origin != origin:
            raise Refused("the checkpoints are of two logs")
        if (document["old_size"], document["new_size"]) != (old_size, new_size):
            raise Refused("the sizes are not the checkpoints'")
        if (hash_of(document["old_root"]), hash_of(document["new_root"])) != (old_root, new_root):
            raise Refused("the roots are not the checkpoints'")
        path = [hash_of(p) for p in document["consistency_path"]]
        if old_size == 0:  # every log extends the empty tree, by the empty path
            consistent = not path and old_root == sha256(b"")
        else:
            consistent = verify_consistency(old_size, new_size, old_root, new_root, path)
        if not consistent:
            raise Refused("the consistency path does not lead from the old root to the new")
        return f"{origin} at tree size {new_size} extends its tree of size {old_size}"
    raise Refused(f"not a proof document: {kind!r}")


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    key = parse_verifier_key(pathlib.Path(argv[1]).read_text(encoding="utf-8"))
    status = 0
    for name in argv[2:]:
        try:
            document = json.loads(pathlib.Path(name).read_text(encoding="utf-8"))
            print("ok: " + check(document, key))
        except (Refused, KeyError, TypeError, UnicodeDecodeError) as error:
            print(f"refused: {error}")
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
