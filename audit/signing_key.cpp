// Ed25519 keys and their texts; see signing_key.hpp. The curve arithmetic, SHA-256, the
// random generator and base64 are libcrypto's (base64 through request_text.hpp's one
// strict decoder); what is written here is only the c2sp.org/signed-note framing.
#include "audit/signing_key.hpp"

#include "audit/canonical.hpp"
#include "audit/request_text.hpp"

#include <boost/locale/utf.hpp>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <stdexcept>

namespace flowgate::audit {

namespace {

constexpr std::string_view private_key_prefix = "PRIVATE+KEY+";

struct PkeyFree {
    void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

struct MdCtxFree {
    void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

const unsigned char* bytes_of(std::string_view text) {
    static const unsigned char none = 0;
    return text.empty() ? &none : reinterpret_cast<const unsigned char*>(text.data());
}

SigningError crypto_error(std::string_view what) {
    // The reason libcrypto queued, for the operator; the queue is left empty.
    const unsigned long code = ERR_get_error();
    ERR_clear_error();
    std::string message = "libcrypto: " + std::string(what);
    if (code != 0) {
        std::array<char, 256> reason{};
        ERR_error_string_n(code, reason.data(), reason.size());
        message += ": ";
        message += reason.data();
    }
    return {SigningErrc::crypto_failure, std::move(message)};
}

Pkey private_pkey(const Ed25519Seed& seed) {
    return Pkey(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()));
}

// Unicode's White_Space code points (those of Go's unicode.IsSpace).
bool is_white_space(boost::locale::utf::code_point c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

// The text for a message: bytes that are not UTF-8 and control characters as \xNN.
std::string shown(std::string_view text) {
    std::string out;
    for (char c : printable_text(text)) {
        if (static_cast<unsigned char>(c) < 0x20) {
            std::array<char, 5> escaped{};
            std::snprintf(escaped.data(), escaped.size(), "\\x%02x",
                          static_cast<unsigned>(static_cast<unsigned char>(c)));
            out += escaped.data();
        } else {
            out += c;
        }
    }
    return out;
}

SigningError name_error(std::string_view name, std::string_view why) {
    return {SigningErrc::bad_key_name, "key name '" + shown(name) + "' " + std::string(why)};
}

bool is_lower_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

// The three parts of <name>+<hex key ID>+<base64>: the name and the key ID cannot hold
// '+', the base64 can.
struct KeyText {
    std::string_view name;
    KeyId id = 0;
    std::string key; // the decoded base64: algorithm byte, then key
};

SigningResult<KeyText> split_key_text(std::string_view text, std::string_view what) {
    if (text.ends_with('\n')) {
        text.remove_suffix(1);
    }
    const std::string form = std::string(what) + " is not <name>+<key ID>+<key>";
    const std::size_t first = text.find('+');
    const std::size_t second = first == std::string_view::npos ? first : text.find('+', first + 1);
    if (second == std::string_view::npos) {
        return SigningError{SigningErrc::malformed_key, form};
    }
    KeyText parts;
    parts.name = text.substr(0, first);
    if (auto error = key_name_error(parts.name)) {
        error->message = std::string(what) + ": " + error->message;
        return *error;
    }
    const std::string_view hex = text.substr(first + 1, second - first - 1);
    if (hex.size() != 8 || !std::all_of(hex.begin(), hex.end(), is_lower_hex)) {
        return SigningError{SigningErrc::malformed_key, form + ": its key ID '" + shown(hex) +
                                                            "' is not 8 lowercase hex digits"};
    }
    for (char c : hex) {
        parts.id = parts.id << 4U | static_cast<KeyId>(c <= '9' ? c - '0' : c - 'a' + 10);
    }
    auto key = base64_decode(text.substr(second + 1));
    if (!key) {
        return SigningError{SigningErrc::bad_base64, std::string(what) +
                                                         ": the key is not base64 "
                                                         "(RFC 4648, standard alphabet, padded)"};
    }
    parts.key = std::move(*key);
    if (parts.key.empty() || static_cast<std::uint8_t>(parts.key[0]) != ed25519_algorithm) {
        std::array<char, 8> algorithm{"none"};
        if (!parts.key.empty()) {
            std::snprintf(algorithm.data(), algorithm.size(), "0x%02x",
                          static_cast<unsigned>(static_cast<std::uint8_t>(parts.key[0])));
        }
        OPENSSL_cleanse(parts.key.data(), parts.key.size());
        return SigningError{SigningErrc::unknown_algorithm,
                            std::string(what) + ": algorithm byte " + algorithm.data() +
                                " is not Ed25519's (0x01)"};
    }
    if (parts.key.size() != 1 + 32) {
        const std::size_t size = parts.key.size() - 1;
        OPENSSL_cleanse(parts.key.data(), parts.key.size());
        return SigningError{SigningErrc::wrong_key_length,
                            std::string(what) + ": an Ed25519 key is 32 bytes, this one is " +
                                std::to_string(size)};
    }
    return parts;
}

SigningError id_mismatch(std::string_view what, const KeyText& parts, KeyId expected) {
    return {SigningErrc::key_id_mismatch, std::string(what) + ": key ID " + key_id_hex(parts.id) +
                                              " is not the one of " + "the name '" +
                                              std::string(parts.name) + "' and this key (" +
                                              key_id_hex(expected) + ")"};
}

} // namespace

std::optional<SigningError> key_name_error(std::string_view name) {
    if (name.empty()) {
        return SigningError{SigningErrc::bad_key_name, "a key name cannot be empty"};
    }
    if (!is_text(name)) {
        return name_error(name, "is not UTF-8 text");
    }
    if (name.find('+') != std::string_view::npos) {
        return name_error(name, "holds a '+'");
    }
    using Utf8 = boost::locale::utf::utf_traits<char>;
    const char* p = name.data();
    const char* const end = name.data() + name.size();
    while (p != end) {
        const boost::locale::utf::code_point c = Utf8::decode(p, end);
        if (is_white_space(c)) {
            return name_error(name, "holds white space");
        }
        if (c < 0x20) {
            return name_error(name, "holds a control character");
        }
    }
    return std::nullopt;
}

KeyId ed25519_key_id(std::string_view name, const Ed25519PublicKey& public_key) {
    std::string hashed(name);
    hashed += '\n';
    hashed += static_cast<char>(ed25519_algorithm);
    hashed.append(reinterpret_cast<const char*>(public_key.data()), public_key.size());
    const ChainHash digest = sha256(hashed);
    return KeyId{digest[0]} << 24U | KeyId{digest[1]} << 16U | KeyId{digest[2]} << 8U |
           KeyId{digest[3]};
}

std::string key_id_hex(KeyId id) {
    std::array<char, 9> text{};
    std::snprintf(text.data(), text.size(), "%08x", static_cast<unsigned>(id));
    return std::string(text.data(), 8);
}

bool VerifierKey::verifies(std::string_view message, const Ed25519Signature& signature) const {
    Pkey key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, public_key.data(),
                                         public_key.size()));
    MdCtx context(EVP_MD_CTX_new());
    const bool verified =
        key && context &&
        EVP_DigestVerifyInit(context.get(), nullptr, nullptr, nullptr, key.get()) == 1 &&
        EVP_DigestVerify(context.get(), signature.data(), signature.size(), bytes_of(message),
                         message.size()) == 1;
    ERR_clear_error();
    return verified;
}

std::string format_verifier_key(const VerifierKey& key) {
    std::string material(1, static_cast<char>(ed25519_algorithm));
    material.append(reinterpret_cast<const char*>(key.public_key.data()), key.public_key.size());
    return key.name + "+" + key_id_hex(key.id) + "+" + base64_encode(material);
}

SigningResult<VerifierKey> parse_verifier_key(std::string_view text) {
    if (text.starts_with(private_key_prefix)) {
        return SigningError{SigningErrc::malformed_key,
                            "verifier key: this is a private key (PRIVATE+KEY+...), which is "
                            "kept secret; give the verifier key it prints instead"};
    }
    auto parts = split_key_text(text, "verifier key");
    if (!parts) {
        return parts.error();
    }
    VerifierKey key;
    key.name = std::string(parts.value().name);
    key.id = parts.value().id;
    std::copy(parts.value().key.begin() + 1, parts.value().key.end(), key.public_key.begin());
    const KeyId expected = ed25519_key_id(key.name, key.public_key);
    if (expected != key.id) {
        return id_mismatch("verifier key", parts.value(), expected);
    }
    return key;
}

SigningKey::~SigningKey() {
    OPENSSL_cleanse(m_seed.data(), m_seed.size());
}

SigningResult<SigningKey> SigningKey::from_seed(std::string_view name, const Ed25519Seed& seed) {
    if (auto error = key_name_error(name)) {
        return *error;
    }
    Pkey pkey = private_pkey(seed);
    if (!pkey) {
        return crypto_error("cannot make an Ed25519 key of the seed");
    }
    SigningKey key;
    std::size_t size = key.m_public_key.size();
    if (EVP_PKEY_get_raw_public_key(pkey.get(), key.m_public_key.data(), &size) != 1 ||
        size != key.m_public_key.size()) {
        return crypto_error("cannot derive the Ed25519 public key");
    }
    key.m_name = std::string(name);
    key.m_seed = seed;
    key.m_id = ed25519_key_id(name, key.m_public_key);
    return key;
}

SigningResult<Ed25519Signature> SigningKey::sign(std::string_view message) const {
    Pkey pkey = private_pkey(m_seed);
    MdCtx context(EVP_MD_CTX_new());
    Ed25519Signature signature{};
    std::size_t size = signature.size();
    if (!pkey || !context ||
        EVP_DigestSignInit(context.get(), nullptr, nullptr, nullptr, pkey.get()) != 1 ||
        EVP_DigestSign(context.get(), signature.data(), &size, bytes_of(message), message.size()) !=
            1 ||
        size != signature.size()) {
        return crypto_error("Ed25519 signing failed");
    }
    return signature;
}

std::string SigningKey::private_key_text() const {
    std::string material(1, static_cast<char>(ed25519_algorithm));
    material.append(reinterpret_cast<const char*>(m_seed.data()), m_seed.size());
    std::string text = std::string(private_key_prefix) + m_name + "+" + key_id_hex(m_id) + "+" +
                       base64_encode(material);
    OPENSSL_cleanse(material.data(), material.size());
    return text;
}

SigningResult<SigningKey> generate_signing_key(std::string_view name) {
    if (auto error = key_name_error(name)) {
        return *error;
    }
    Ed25519Seed seed{};
    if (RAND_priv_bytes(seed.data(), static_cast<int>(seed.size())) != 1) {
        return crypto_error("no random bytes for a new key");
    }
    auto key = SigningKey::from_seed(name, seed);
    OPENSSL_cleanse(seed.data(), seed.size());
    return key;
}

SigningResult<SigningKey> parse_private_key(std::string_view text) {
    if (!text.starts_with(private_key_prefix)) {
        return SigningError{SigningErrc::not_a_private_key,
                            "private key: the text does not start with PRIVATE+KEY+"};
    }
    auto parts = split_key_text(text.substr(private_key_prefix.size()), "private key");
    if (!parts) {
        return parts.error();
    }
    Ed25519Seed seed{};
    std::copy(parts.value().key.begin() + 1, parts.value().key.end(), seed.begin());
    OPENSSL_cleanse(parts.value().key.data(), parts.value().key.size());
    auto key = SigningKey::from_seed(parts.value().name, seed);
    OPENSSL_cleanse(seed.data(), seed.size());
    if (!key) {
        return key.error();
    }
    if (key.value().id() != parts.value().id) {
        return id_mismatch("private key", parts.value(), key.value().id());
    }
    return key;
}

} // namespace flowgate::audit
