// Canonical row encoding and SHA-256 chaining; see audit_chain.hpp and
// docs/audit-store.md for the contract.
#include "audit_chain.hpp"

#include <openssl/evp.h>

#include <memory>
#include <stdexcept>

namespace flowgate::daemon {

namespace {

void append_field(std::string& out, std::string_view bytes) {
    const std::uint64_t size = bytes.size();
    for (int shift = 56; shift >= 0; shift -= 8)
        out.push_back(static_cast<char>((size >> shift) & 0xffU));
    out.append(bytes);
}

void append_field(std::string& out, std::int64_t value) {
    append_field(out, std::to_string(value));
}

} // namespace

std::string_view to_string(AuditKind kind) {
    switch (kind) {
    case AuditKind::check:
        return "check";
    case AuditKind::explain:
        return "explain";
    case AuditKind::refused:
        return "refused";
    case AuditKind::start:
        return "start";
    case AuditKind::stop:
        return "stop";
    case AuditKind::load:
        return "load";
    case AuditKind::reload:
        return "reload";
    case AuditKind::reload_failed:
        return "reload_failed";
    case AuditKind::admin_refused:
        return "admin_refused";
    }
    return "unknown";
}

std::string_view to_string(AuditDecision decision) {
    switch (decision) {
    case AuditDecision::none:
        return "";
    case AuditDecision::allow:
        return "allow";
    case AuditDecision::deny:
        return "deny";
    case AuditDecision::error:
        return "error";
    }
    return "unknown";
}

std::optional<AuditKind> parse_audit_kind(std::string_view text) {
    for (auto kind : {AuditKind::check, AuditKind::explain, AuditKind::refused, AuditKind::start,
                      AuditKind::stop, AuditKind::load, AuditKind::reload, AuditKind::reload_failed,
                      AuditKind::admin_refused})
        if (to_string(kind) == text)
            return kind;
    return std::nullopt;
}

std::optional<AuditDecision> parse_audit_decision(std::string_view text) {
    for (auto decision :
         {AuditDecision::none, AuditDecision::allow, AuditDecision::deny, AuditDecision::error})
        if (to_string(decision) == text)
            return decision;
    return std::nullopt;
}

std::string canonical_row_bytes(std::uint64_t seq, const AuditRecord& record) {
    std::string out;
    // 22 length prefixes, the integers as text, and every text field: one allocation.
    out.reserve(22 * 8 + 6 * 20 + record.service.size() + record.request.size() +
                record.reason.size() + record.rule.size() + record.rule_source.size() +
                record.legal_basis.size() + record.obligations.size() + record.policy_hash.size() +
                record.purpose.size() + record.activity.size() + record.recipient.size() +
                record.direction.size() + record.data.size() + record.subject.size() +
                record.detail.size() + 32);
    append_field(out, std::to_string(seq));
    append_field(out, record.time_us);
    append_field(out, to_string(record.kind));
    append_field(out, record.uid);
    append_field(out, record.gid);
    append_field(out, record.pid);
    append_field(out, record.service);
    append_field(out, record.request);
    append_field(out, to_string(record.decision));
    append_field(out, record.reason);
    append_field(out, record.rule);
    append_field(out, record.rule_source);
    append_field(out, record.legal_basis);
    append_field(out, record.obligations);
    append_field(out, record.policy_hash);
    append_field(out, record.purpose);
    append_field(out, record.activity);
    append_field(out, record.recipient);
    append_field(out, record.direction);
    append_field(out, record.data);
    append_field(out, record.subject);
    append_field(out, record.detail);
    return out;
}

ChainHash chain_hash(const ChainHash& prev, std::string_view canonical) {
    // Failure here means libcrypto itself is broken; nothing sensible can be logged
    // or answered without the chain, so it is the one exception of this file.
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(),
                                                                    &EVP_MD_CTX_free);
    ChainHash out{};
    unsigned int size = 0;
    if (!context || EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) != 1 ||
        EVP_DigestUpdate(context.get(), prev.data(), prev.size()) != 1 ||
        EVP_DigestUpdate(context.get(), canonical.data(), canonical.size()) != 1 ||
        EVP_DigestFinal_ex(context.get(), out.data(), &size) != 1 || size != out.size())
        throw std::runtime_error("SHA-256 failed in libcrypto");
    return out;
}

std::string to_hex(const ChainHash& hash) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(hash.size() * 2);
    for (auto byte : hash) {
        out.push_back(digits[byte >> 4U]);
        out.push_back(digits[byte & 0xfU]);
    }
    return out;
}

std::optional<ChainHash> hash_from_hex(std::string_view hex) {
    if (hex.size() != 64)
        return std::nullopt;
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9')
            return c - '0';
        if (c >= 'a' && c <= 'f')
            return c - 'a' + 10;
        return -1;
    };
    ChainHash out{};
    for (std::size_t i = 0; i < out.size(); ++i) {
        const int high = nibble(hex[2 * i]);
        const int low = nibble(hex[2 * i + 1]);
        if (high < 0 || low < 0)
            return std::nullopt;
        out[i] = static_cast<std::uint8_t>(high * 16 + low);
    }
    return out;
}

} // namespace flowgate::daemon
