// The keys that sign the log's checkpoints, so that an auditor can check a checkpoint with
// a public key alone: Ed25519 (RFC 8032, through libcrypto), named and identified as
// c2sp.org/signed-note says, and written as the texts Go's golang.org/x/mod/sumdb/note
// reads and writes — the verifier key an auditor is given,
//     <name>+<key ID, 8 hex digits>+<base64(0x01 ‖ 32-byte public key)>
// and the private key file the daemon signs with,
//     PRIVATE+KEY+<name>+<key ID, 8 hex digits>+<base64(0x01 ‖ 32-byte seed)>
// where the key ID is the first 4 bytes (big-endian) of
// SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key). See docs/audit-store.md.
#pragma once

#include "audit/signing_error.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace flowgate::audit {

// The signature type byte of Ed25519 in c2sp.org/signed-note.
inline constexpr std::uint8_t ed25519_algorithm = 0x01;

using KeyId = std::uint32_t;
using Ed25519PublicKey = std::array<std::uint8_t, 32>;
using Ed25519Seed = std::array<std::uint8_t, 32>; // the private key of RFC 8032
using Ed25519Signature = std::array<std::uint8_t, 64>;

// Why `name` is not a key name, or none when it is one: a key name is non-empty UTF-8
// without '+', white space (Unicode's White_Space, as Go's unicode.IsSpace) or a control
// character below U+0020 (which no note may hold).
std::optional<SigningError> key_name_error(std::string_view name);

// SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key), its first 4 bytes big-endian.
KeyId ed25519_key_id(std::string_view name, const Ed25519PublicKey& public_key);

// "%08x": the key ID as key texts write it.
std::string key_id_hex(KeyId id);

// A public key an auditor trusts, under its name. A VerifierKey from parse_verifier_key()
// or SigningKey::verifier() always has the key ID its name and key give.
struct VerifierKey {
    std::string name;
    KeyId id = 0;
    Ed25519PublicKey public_key{};

    // True when `signature` is the Ed25519 signature of `message` by this key.
    bool verifies(std::string_view message, const Ed25519Signature& signature) const;

    friend bool operator==(const VerifierKey&, const VerifierKey&) = default;
};

// <name>+<hex key ID>+<base64(0x01 ‖ public key)>.
std::string format_verifier_key(const VerifierKey& key);
// The key of a verifier key text (one final newline, as a file ends, is allowed): a
// malformed text, bad base64, an algorithm other than Ed25519, a key of the wrong length, a bad
// name or a key ID that is not the one of the name and key are errors, each named.
SigningResult<VerifierKey> parse_verifier_key(std::string_view text);

// A private key and its name. The seed is wiped when the key is destroyed; it leaves the
// object only as the private key text.
class SigningKey {
public:
    // The key of this name whose RFC 8032 private key is `seed`.
    static SigningResult<SigningKey> from_seed(std::string_view name, const Ed25519Seed& seed);

    SigningKey(const SigningKey& other) = default;
    SigningKey(SigningKey&& other) noexcept = default;
    SigningKey& operator=(const SigningKey& other) = default;
    SigningKey& operator=(SigningKey&& other) noexcept = default;
    ~SigningKey();

    const std::string& name() const noexcept { return m_name; }
    KeyId id() const noexcept { return m_id; }
    const Ed25519PublicKey& public_key() const noexcept { return m_public_key; }
    VerifierKey verifier() const { return {m_name, m_id, m_public_key}; }

    // The Ed25519 signature of `message` (deterministic, as RFC 8032's is).
    SigningResult<Ed25519Signature> sign(std::string_view message) const;

    // PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 ‖ seed)>: to be kept secret.
    std::string private_key_text() const;

private:
    SigningKey() = default;

    std::string m_name;
    KeyId m_id = 0;
    Ed25519Seed m_seed{};
    Ed25519PublicKey m_public_key{};
};

// A new key of this name from libcrypto's random generator.
SigningResult<SigningKey> generate_signing_key(std::string_view name);

// The key of a private key text (one final newline, as a key file ends, is allowed): a
// missing PRIVATE+KEY+ prefix and the verifier key text's errors, each named.
SigningResult<SigningKey> parse_private_key(std::string_view text);

} // namespace flowgate::audit
