// Canonical row encoding and SHA-256 chaining; see canonical.hpp and
// docs/audit-store.md for the contract.
#include "audit/canonical.hpp"

#include "audit/sha256_context.hpp"

#include <openssl/evp.h>

#include <charconv>
#include <stdexcept>

namespace flowgate::audit {

namespace {

// Appended, not resized into: the row's buffer is reused, so after the first rows no
// field allocates, and nothing is zeroed only to be overwritten.
void append_field(std::string& out, std::string_view bytes) {
    const auto size = static_cast<std::uint64_t>(bytes.size());
    char prefix[8];
    for (int i = 0; i < 8; ++i) {
        prefix[i] = static_cast<char>((size >> (56 - 8 * i)) & 0xffU);
    }
    out.append(prefix, sizeof prefix);
    out.append(bytes);
}

void append_field(std::string& out, std::int64_t value) {
    char digits[24];
    auto [end, error] = std::to_chars(digits, digits + sizeof digits, value);
    (void)error; // 24 characters hold any int64
    append_field(out, std::string_view(digits, static_cast<std::size_t>(end - digits)));
}

void append_field(std::string& out, std::uint64_t seq) {
    append_field(out, static_cast<std::int64_t>(seq));
}

} // namespace

void canonical_row_bytes(const AuditRowView& row, int version, std::string& out) {
    out.clear();
    for_each_field(
        [&out, version](const AuditField& field, const auto& value) {
            if (field.hashed(version)) {
                append_field(out, value);
            }
        },
        row);
}

std::string canonical_row_bytes(const AuditRowView& row, int version) {
    std::string out;
    canonical_row_bytes(row, version, out);
    return out;
}

namespace {

// Reads one field off the front of `bytes`; false when it is not there whole.
bool take_field(std::string_view& bytes, std::string_view& out) {
    if (bytes.size() < 8) {
        return false;
    }
    std::uint64_t size = 0;
    for (std::size_t i = 0; i < 8; ++i) {
        size = (size << 8U) | static_cast<unsigned char>(bytes[i]);
    }
    bytes.remove_prefix(8);
    if (size > bytes.size()) {
        return false;
    }
    out = bytes.substr(0, static_cast<std::size_t>(size));
    bytes.remove_prefix(static_cast<std::size_t>(size));
    return true;
}

bool take_field(std::string_view& bytes, std::int64_t& out) {
    std::string_view text;
    if (!take_field(bytes, text) || text.empty()) {
        return false;
    }
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
    return error == std::errc() && end == text.data() + text.size();
}

bool take_field(std::string_view& bytes, std::uint64_t& out) {
    std::int64_t value = 0;
    if (!take_field(bytes, value)) {
        return false;
    }
    out = static_cast<std::uint64_t>(value);
    return true;
}

} // namespace

std::optional<AuditRowView> parse_canonical_row(std::string_view bytes, int version) {
    AuditRowView row;
    bool whole = true;
    for_each_field(
        [&](const AuditField& field, auto& value) {
            if (whole && field.hashed(version)) {
                whole = take_field(bytes, value);
            }
        },
        row);
    if (!whole || !bytes.empty()) {
        return std::nullopt;
    }
    return row;
}

struct ChainHasher::Context : Sha256Context {};

ChainHasher::ChainHasher() : m_context(std::make_unique<Context>()) {}
ChainHasher::~ChainHasher() = default;

ChainHash ChainHasher::hash(const ChainHash& prev, std::string_view canonical) {
    // Failure here means libcrypto itself is broken; nothing sensible can be logged
    // or answered without the chain, so it is the one exception of this library.
    EVP_MD_CTX* context = m_context->context;
    ChainHash out{};
    unsigned int size = 0;
    if (context == nullptr || m_context->sha256 == nullptr ||
        EVP_DigestInit_ex2(context, m_context->sha256, nullptr) != 1 ||
        EVP_DigestUpdate(context, prev.data(), prev.size()) != 1 ||
        EVP_DigestUpdate(context, canonical.data(), canonical.size()) != 1 ||
        EVP_DigestFinal_ex(context, out.data(), &size) != 1 || size != out.size()) {
        throw std::runtime_error("SHA-256 failed in libcrypto");
    }
    return out;
}

ChainHash sha256(std::string_view bytes) {
    ChainHash digest{};
    unsigned int size = 0;
    if (EVP_Digest(bytes.data(), bytes.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1 ||
        size != digest.size()) {
        // As for the chain's hash: libcrypto itself is broken.
        throw std::runtime_error("SHA-256 failed in libcrypto");
    }
    return digest;
}

ChainHash chain_hash(const ChainHash& prev, std::string_view canonical) {
    thread_local ChainHasher hasher;
    return hasher.hash(prev, canonical);
}

void to_hex(const ChainHash& hash, std::string& out) {
    char digits[64];
    to_hex(hash, digits);
    out.assign(digits, sizeof digits);
}

std::string to_hex(const ChainHash& hash) {
    std::string out;
    to_hex(hash, out);
    return out;
}

std::optional<ChainHash> hash_from_hex(std::string_view hex) {
    if (hex.size() != 64) {
        return std::nullopt;
    }
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') {
            return c - '0';
        }
        if (c >= 'a' && c <= 'f') {
            return c - 'a' + 10;
        }
        return -1;
    };
    ChainHash out{};
    for (std::size_t i = 0; i < out.size(); ++i) {
        const int high = nibble(hex[2 * i]);
        const int low = nibble(hex[2 * i + 1]);
        if (high < 0 || low < 0) {
            return std::nullopt;
        }
        out[i] = static_cast<std::uint8_t>(high * 16 + low);
    }
    return out;
}

} // namespace flowgate::audit
