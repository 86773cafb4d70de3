// The errors of the signing keys, the signed notes and the checkpoints they carry
// (signing_key.hpp, signed_note.hpp, tree_checkpoint.hpp): a key text or a note that does
// not parse or does not verify is an expected failure, returned as a value with a code a
// caller can act on and a message for the operator or auditor that names what is wrong.
#pragma once

#include <boost/outcome/basic_result.hpp>
#include <boost/outcome/policy/terminate.hpp>

#include <string>

namespace flowgate::audit {

enum class SigningErrc {
    // Key names and key texts.
    bad_key_name,      // empty, with '+', white space or a control character, or not UTF-8
    not_a_private_key, // a private key text must start with "PRIVATE+KEY+"
    malformed_key,     // not <name>+<8 hex digits>+<base64>
    bad_base64,        // a key or a signature that is not RFC 4648 base64
    wrong_key_length,  // an Ed25519 key is 32 bytes after its algorithm byte
    unknown_algorithm, // an algorithm byte other than 0x01 (Ed25519)
    key_id_mismatch,   // the key ID is not the one the name and the public key give
    duplicate_key,     // two keys of one name and key ID among the signers or verifiers
    crypto_failure,    // libcrypto failed (no memory, no randomness)
    unreadable_key,    // a key file missing, unreadable, not a regular file or too long
    // Signed notes.
    note_too_large,      // past max_note_bytes
    not_note_text,       // not UTF-8, or a control character other than newline
    no_blank_line,       // no blank line between the text and the signatures
    no_signature_lines,  // nothing after the blank line
    bad_signature_line,  // not "— <name> <base64 of key ID and signature>"
    too_many_signatures, // past max_note_signatures
    invalid_signature,   // a known key's signature that does not verify
    no_known_signature,  // no signature by any of the keys given
    // Checkpoint bodies.
    bad_checkpoint, // not origin, tree size and root hash lines as c2sp.org/tlog-checkpoint
};

struct SigningError {
    SigningErrc code = SigningErrc::malformed_key;
    std::string message;
};

template <class T>
using SigningResult =
    boost::outcome_v2::basic_result<T, SigningError, boost::outcome_v2::policy::terminate>;

} // namespace flowgate::audit
