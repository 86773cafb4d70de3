// Signed notes (c2sp.org/signed-note, as Go's golang.org/x/mod/sumdb/note writes them): a
// text ending in a newline, a blank line, then one line per signature,
//     — <key name> <base64(4-byte big-endian key ID ‖ Ed25519 signature of the text)>
// (the dash is U+2014 EM DASH, followed by a space). The log's checkpoints travel in them,
// so that whoever holds a verifier key can check a checkpoint without trusting the host
// that wrote it. See docs/audit-store.md.
#pragma once

#include "audit/signing_error.hpp"
#include "audit/signing_key.hpp"

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace flowgate::audit {

// The most bytes of a note open_note() reads, and sign_note() writes: a checkpoint with its
// signatures is a few hundred bytes; anything near this size is not one.
inline constexpr std::size_t max_note_bytes = std::size_t{1} << 20U;
// The most signature lines of a note (the specification asks for at least 16 to be read).
inline constexpr std::size_t max_note_signatures = 100;

// True when `text` is UTF-8 with no control character below U+0020 other than newline:
// what a note, all of it, must be.
bool is_note_text(std::string_view text);

// A signature on a note by a key that was not among those given: not checked, only named.
struct NoteSignature {
    std::string name;
    KeyId id = 0;

    friend bool operator==(const NoteSignature&, const NoteSignature&) = default;
};

// A note whose signatures by the keys given all verified.
struct OpenedNote {
    std::string text;                   // the signed text, its final newline included
    std::vector<VerifierKey> verified;  // the known keys that signed it, each once, in order
    std::vector<NoteSignature> unknown; // signatures by other keys, ignored, each once
};

// The note of `text` signed by `key`, or by each of `keys` in order. The text must be note
// text (is_note_text) ending in a newline; the keys at least one, at most
// max_note_signatures, no two with the same name and key ID.
SigningResult<std::string> sign_note(std::string_view text, const SigningKey& key);
SigningResult<std::string> sign_note(std::string_view text, std::span<const SigningKey> keys);

// The text of a note without looking at its signatures: what comes before its last blank
// line, or all of `note` when it has none (a checkpoint body stored unsigned). For a
// note whose text is checked some other way (a store's own checkpoint, against its tree).
std::string_view note_text_unchecked(std::string_view note);

// The text of `note` once its signatures are checked against the keys `known`: a
// signature by a key of `known` (same name and key ID) must verify, or the whole note is
// refused (invalid_signature); signatures by other keys are ignored, as the specification
// requires; at least one signature must be by a known key (no_known_signature). A note
// that is not of the form above is refused with the rule it breaks, before any signature
// is checked.
SigningResult<OpenedNote> open_note(std::string_view note, std::span<const VerifierKey> known);

} // namespace flowgate::audit
