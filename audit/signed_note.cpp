// Signing and opening notes; see signed_note.hpp. Parsing follows the specification's
// rules in their order: the whole note is text, the last blank line separates the text
// from the signature lines, every line after it is a signature line; only then are the
// signatures by known keys checked, each of them.
#include "audit/signed_note.hpp"

#include "audit/request_text.hpp"

#include <boost/locale/utf.hpp>

#include <algorithm>
#include <optional>

namespace flowgate::audit {

namespace {

constexpr std::string_view signature_prefix = "\xE2\x80\x94 "; // U+2014 EM DASH, a space

// The byte at which `text` stops being note text, or none: the decoder is the one
// is_text() uses (RFC 3629 UTF-8: no overlong form, no surrogate, nothing past U+10FFFF).
std::optional<std::size_t> first_fault(std::string_view text) {
    using Utf8 = boost::locale::utf::utf_traits<char>;
    const char* const begin = text.data();
    const char* const end = text.data() + text.size();
    for (const char* p = begin; p != end;) {
        const char* const at = p;
        const boost::locale::utf::code_point c = Utf8::decode(p, end);
        if (c == boost::locale::utf::illegal || c == boost::locale::utf::incomplete ||
            (c < 0x20 && c != '\n')) {
            return static_cast<std::size_t>(at - begin);
        }
    }
    return std::nullopt;
}

std::size_t line_number(std::string_view text, std::size_t offset) {
    return 1 + static_cast<std::size_t>(std::count(text.begin(), text.begin() + offset, '\n'));
}

std::string key_label(std::string_view name, KeyId id) {
    return std::string(name) + "+" + key_id_hex(id);
}

SigningError line_error(std::size_t line, std::string_view why) {
    return {SigningErrc::bad_signature_line,
            "signature line " + std::to_string(line) + " " + std::string(why)};
}

// One signature line, without its newline.
struct SignatureLine {
    std::string_view name;
    KeyId id = 0;
    std::string signature; // after the key ID
};

SigningResult<SignatureLine> parse_signature_line(std::string_view line, std::size_t number) {
    if (!line.starts_with(signature_prefix)) {
        return line_error(number, "does not start with an em dash (U+2014) and a space");
    }
    line.remove_prefix(signature_prefix.size());
    const std::size_t space = line.find(' ');
    if (space == std::string_view::npos) {
        return line_error(number, "is not '— <key name> <base64 signature>'");
    }
    SignatureLine parsed;
    parsed.name = line.substr(0, space);
    if (auto error = key_name_error(parsed.name)) {
        return line_error(number, "has a bad key name: " + error->message);
    }
    auto decoded = base64_decode(line.substr(space + 1));
    if (!decoded) {
        return line_error(number, "has a signature that is not base64 (RFC 4648, padded)");
    }
    if (decoded->size() < 5) {
        return line_error(number, "has a signature too short to hold a key ID and a signature");
    }
    for (std::size_t i = 0; i < 4; ++i) {
        parsed.id = parsed.id << 8U | KeyId{static_cast<std::uint8_t>((*decoded)[i])};
    }
    parsed.signature = decoded->substr(4);
    return parsed;
}

} // namespace

bool is_note_text(std::string_view text) {
    return !first_fault(text).has_value();
}

SigningResult<std::string> sign_note(std::string_view text, const SigningKey& key) {
    return sign_note(text, std::span<const SigningKey>(&key, 1));
}

SigningResult<std::string> sign_note(std::string_view text, std::span<const SigningKey> keys) {
    if (keys.empty()) {
        return SigningError{SigningErrc::no_signature_lines, "a note needs a key to sign it"};
    }
    if (keys.size() > max_note_signatures) {
        return SigningError{SigningErrc::too_many_signatures,
                            "a note holds at most " + std::to_string(max_note_signatures) +
                                " signatures"};
    }
    if (!text.ends_with('\n')) {
        return SigningError{SigningErrc::not_note_text, "the text of a note must end in a newline"};
    }
    if (auto fault = first_fault(text)) {
        return SigningError{SigningErrc::not_note_text,
                            "the text of a note must be UTF-8 without control characters but "
                            "newline: line " +
                                std::to_string(line_number(text, *fault)) + " is not"};
    }
    for (auto key = keys.begin(); key != keys.end(); ++key) {
        const bool twice = std::any_of(keys.begin(), key, [&key](const SigningKey& before) {
            return before.name() == key->name() && before.id() == key->id();
        });
        if (twice) {
            return SigningError{SigningErrc::duplicate_key,
                                "two signing keys are " + key_label(key->name(), key->id())};
        }
    }
    std::string note(text);
    note += '\n';
    for (const SigningKey& key : keys) {
        auto signature = key.sign(text);
        if (!signature) {
            return signature.error();
        }
        std::string signed_bytes;
        for (unsigned shift : {24U, 16U, 8U, 0U}) {
            signed_bytes += static_cast<char>(key.id() >> shift & 0xFFU);
        }
        signed_bytes.append(reinterpret_cast<const char*>(signature.value().data()),
                            signature.value().size());
        note += signature_prefix;
        note += key.name();
        note += ' ';
        note += base64_encode(signed_bytes);
        note += '\n';
    }
    if (note.size() > max_note_bytes) {
        return SigningError{SigningErrc::note_too_large,
                            "the signed note would be " + std::to_string(note.size()) +
                                " bytes, past the limit of " + std::to_string(max_note_bytes)};
    }
    return note;
}

std::string_view note_text_unchecked(std::string_view note) {
    const std::size_t split = note.rfind("\n\n");
    return split == std::string_view::npos ? note : note.substr(0, split + 1);
}

SigningResult<OpenedNote> open_note(std::string_view note, std::span<const VerifierKey> known) {
    if (note.size() > max_note_bytes) {
        return SigningError{SigningErrc::note_too_large,
                            "the note is " + std::to_string(note.size()) +
                                " bytes, past the limit of " + std::to_string(max_note_bytes)};
    }
    if (auto fault = first_fault(note)) {
        return SigningError{SigningErrc::not_note_text,
                            "a note is UTF-8 without control characters but newline: line " +
                                std::to_string(line_number(note, *fault)) + " is not"};
    }
    const std::size_t split = note.rfind("\n\n");
    if (split == std::string_view::npos) {
        return SigningError{SigningErrc::no_blank_line,
                            "no blank line separates the note's text from its signature lines"};
    }
    std::string_view lines = note.substr(split + 2);
    if (lines.empty()) {
        return SigningError{SigningErrc::no_signature_lines,
                            "the note has no signature line after its blank line"};
    }
    if (!lines.ends_with('\n')) {
        return SigningError{SigningErrc::bad_signature_line,
                            "the note's last signature line does not end in a newline"};
    }
    OpenedNote opened;
    opened.text = std::string(note.substr(0, split + 1));
    const std::size_t first_line = line_number(note, split + 2);
    std::size_t count = 0;
    while (!lines.empty()) {
        const std::size_t end = lines.find('\n');
        const std::string_view line = lines.substr(0, end);
        lines.remove_prefix(end + 1);
        if (++count > max_note_signatures) {
            return SigningError{SigningErrc::too_many_signatures,
                                "the note has more than " + std::to_string(max_note_signatures) +
                                    " signature lines"};
        }
        auto parsed = parse_signature_line(line, first_line + count - 1);
        if (!parsed) {
            return parsed.error();
        }
        const SignatureLine& signature = parsed.value();
        const auto same_key = [&signature](const auto& key) {
            return key.name == signature.name && key.id == signature.id;
        };
        const auto matches = std::count_if(known.begin(), known.end(), same_key);
        const std::string label = key_label(signature.name, signature.id);
        if (matches == 0) {
            if (std::none_of(opened.unknown.begin(), opened.unknown.end(), same_key)) {
                opened.unknown.push_back({std::string(signature.name), signature.id});
            }
            continue;
        }
        if (matches > 1) {
            return SigningError{SigningErrc::duplicate_key,
                                "two of the keys given are " + label + ": which one signed?"};
        }
        const VerifierKey& key = *std::find_if(known.begin(), known.end(), same_key);
        Ed25519Signature bytes{};
        bool verified = false;
        if (signature.signature.size() == bytes.size()) {
            std::copy(signature.signature.begin(), signature.signature.end(), bytes.begin());
            verified = key.verifies(opened.text, bytes);
        }
        if (!verified) {
            return SigningError{SigningErrc::invalid_signature,
                                "the signature by " + label + " does not verify: the note " +
                                    "was altered, or not signed by that key"};
        }
        if (std::none_of(opened.verified.begin(), opened.verified.end(), same_key)) {
            opened.verified.push_back(key);
        }
    }
    if (opened.verified.empty()) {
        std::string signers;
        for (const NoteSignature& other : opened.unknown) {
            signers += (signers.empty() ? "" : ", ") + key_label(other.name, other.id);
        }
        return SigningError{SigningErrc::no_known_signature,
                            "the note is signed by none of the keys given (only by " + signers +
                                ")"};
    }
    return opened;
}

} // namespace flowgate::audit
