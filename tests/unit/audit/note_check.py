#!/usr/bin/env python3
"""A second, independent reader of flowgate's signed checkpoints, written from the
specifications (c2sp.org/signed-note, c2sp.org/tlog-checkpoint) with Python's standard
library and python3-cryptography's Ed25519 — no code shared with audit/ — so that a
checkpoint flowgate signs is shown to verify for an auditor who does not run flowgate.

    note_check.py VERIFIER_KEY_FILE NOTE_FILE

Exit 0 printing the checkpoint's origin, tree size and root hash (hex), one a line, when
the note carries a valid signature by that key over a well-formed checkpoint body; exit 1
saying why otherwise.
"""

import base64
import binascii
import hashlib
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

EM_DASH = "\u2014"


class Refused(Exception):
    pass


def b64(text):
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as error:
        raise Refused(f"not base64: {text!r}") from error


def parse_verifier_key(text):
    """<name>+<8 hex key ID>+<base64(0x01 || public key)>, the key ID recomputed."""
    parts = text.strip("\n").split("+", 2)
    if len(parts) != 3:
        raise Refused("the verifier key is not <name>+<key ID>+<key>")
    name, key_id, material = parts
    if not name or any(c.isspace() for c in name) or len(key_id) != 8:
        raise Refused("the verifier key's name or key ID is malformed")
    raw = b64(material)
    if len(raw) != 33 or raw[0] != 0x01:
        raise Refused("the verifier key is not an Ed25519 key (0x01 and 32 bytes)")
    computed = hashlib.sha256(name.encode("utf-8") + b"\n" + raw).digest()[:4]
    if computed.hex() != key_id:
        raise Refused(f"key ID {key_id} is not SHA-256(name, 0x0A, key)[:4] = {computed.hex()}")
    return name, computed, Ed25519PublicKey.from_public_bytes(raw[1:])


def open_note(data, name, key_id, public_key):
    """The note's text, once the signature by (name, key ID) verifies."""
    text = data.decode("utf-8")  # raises on bytes that are not UTF-8
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise Refused("the note holds a control character")
    split = text.rfind("\n\n")
    if split < 0:
        raise Refused("no blank line before the signatures")
    body, signatures = text[: split + 1], text[split + 2 :]
    if not signatures or not signatures.endswith("\n"):
        raise Refused("no signature lines, or the last one does not end in a newline")
    found = False
    for line in signatures[:-1].split("\n"):
        if not line.startswith(EM_DASH + " "):
            raise Refused(f"not a signature line: {line!r}")
        signer, _, encoded = line[2:].partition(" ")
        signature = b64(encoded)
        if signer != name or signature[:4] != key_id:
            continue  # another key's signature: ignored, as the specification says
        try:
            public_key.verify(signature[4:], body.encode("utf-8"))
        except InvalidSignature as error:
            raise Refused(f"the signature by {name} does not verify") from error
        found = True
    if not found:
        raise Refused(f"no signature by {name}+{key_id.hex()}")
    return body


def parse_checkpoint(body):
    lines = body.split("\n")
    if lines[-1] != "" or len(lines) < 4:
        raise Refused("a checkpoint is at least three lines, each ending in a newline")
    origin, size, root = lines[0], lines[1], lines[2]
    if not origin:
        raise Refused("empty origin")
    if not size.isascii() or not size.isdigit() or (len(size) > 1 and size[0] == "0"):
        raise Refused(f"bad tree size {size!r}")
    root_hash = b64(root)
    if len(root_hash) != 32:
        raise Refused("the root hash is not 32 bytes")
    if any(not line for line in lines[3:-1]):
        raise Refused("an empty extension line")
    return origin, int(size), root_hash


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as key_file:
        key_text = key_file.read()
    with open(argv[2], "rb") as note_file:
        note = note_file.read()
    try:
        name, key_id, public_key = parse_verifier_key(key_text)
        origin, size, root = parse_checkpoint(open_note(note, name, key_id, public_key))
    except (Refused, UnicodeDecodeError) as error:
        print(f"refused: {error}")
        return 1
    print(origin)
    print(size)
    print(root.hex())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
