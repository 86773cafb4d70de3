// Canonical row encoding and SHA-256 chaining; see audit_chain.hpp and
// docs/audit-store.md for the contract.
#include "audit/canonical.hpp"

#include <openssl/evp.h>

#include <charconv>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace flowgate::audit {

namespace {

void append_field(std::string& out, std::string_view bytes) {
    const std::size_t at = out.size();
    out.resize(at + 8 + bytes.size());
    char* p = out.data() + at;
    const auto size = static_cast<std::uint64_t>(bytes.size());
    for (int i = 0; i < 8; ++i)
        p[i] = static_cast<char>((size >> (56 - 8 * i)) & 0xffU);
    if (!bytes.empty())
        std::memcpy(p + 8, bytes.data(), bytes.size());
}

void append_field(std::string& out, std::int64_t value) {
    char digits[24];
    auto [end, error] = std::to_chars(digits, digits + sizeof digits, value);
    (void)error; // 24 characters hold any int64
    append_field(out, std::string_view(digits, static_cast<std::size_t>(end - digits)));
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

AuditRowView row_view(std::uint64_t seq, const AuditRecord& record) {
    AuditRowView row;
    row.seq = seq;
    row.time_us = record.time_us;
    row.kind = to_string(record.kind);
    row.uid = record.uid;
    row.gid = record.gid;
    row.pid = record.pid;
    row.service = record.service;
    row.request = record.request;
    row.decision = to_string(record.decision);
    row.reason = record.reason;
    row.rule = record.rule;
    row.rule_source = record.rule_source;
    row.legal_basis = record.legal_basis;
    row.obligations = record.obligations;
    row.policy_hash = record.policy_hash;
    row.purpose = record.purpose;
    row.activity = record.activity;
    row.recipient = record.recipient;
    row.direction = record.direction;
    row.data = record.data;
    row.subject = record.subject;
    row.detail = record.detail;
    return row;
}

void canonical_row_bytes(const AuditRowView& row, std::string& out) {
    out.clear();
    append_field(out, static_cast<std::int64_t>(row.seq));
    append_field(out, row.time_us);
    append_field(out, row.kind);
    append_field(out, row.uid);
    append_field(out, row.gid);
    append_field(out, row.pid);
    append_field(out, row.service);
    append_field(out, row.request);
    append_field(out, row.decision);
    append_field(out, row.reason);
    append_field(out, row.rule);
    append_field(out, row.rule_source);
    append_field(out, row.legal_basis);
    append_field(out, row.obligations);
    append_field(out, row.policy_hash);
    append_field(out, row.purpose);
    append_field(out, row.activity);
    append_field(out, row.recipient);
    append_field(out, row.direction);
    append_field(out, row.data);
    append_field(out, row.subject);
    append_field(out, row.detail);
}

struct ChainHasher::Context {
    EVP_MD_CTX* context = EVP_MD_CTX_new();
    // Fetched once: EVP_sha256() would look the implementation up on every init.
    EVP_MD* sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    ~Context() {
        EVP_MD_free(sha256);
        EVP_MD_CTX_free(context);
    }
};

ChainHasher::ChainHasher() : m_context(std::make_unique<Context>()) {}
ChainHasher::~ChainHasher() = default;

ChainHash ChainHasher::hash(const ChainHash& prev, std::string_view canonical) {
    // Failure here means libcrypto itself is broken; nothing sensible can be logged
    // or answered without the chain, so it is the one exception of this file.
    EVP_MD_CTX* context = m_context->context;
    ChainHash out{};
    unsigned int size = 0;
    if (context == nullptr || m_context->sha256 == nullptr ||
        EVP_DigestInit_ex2(context, m_context->sha256, nullptr) != 1 ||
        EVP_DigestUpdate(context, prev.data(), prev.size()) != 1 ||
        EVP_DigestUpdate(context, canonical.data(), canonical.size()) != 1 ||
        EVP_DigestFinal_ex(context, out.data(), &size) != 1 || size != out.size())
        throw std::runtime_error("SHA-256 failed in libcrypto");
    return out;
}

std::string canonical_row_bytes(std::uint64_t seq, const AuditRecord& record) {
    std::string out;
    canonical_row_bytes(row_view(seq, record), out);
    return out;
}

ChainHash chain_hash(const ChainHash& prev, std::string_view canonical) {
    thread_local ChainHasher hasher;
    return hasher.hash(prev, canonical);
}

std::string to_hex(const ChainHash& hash) {
    std::string out;
    to_hex(hash, out);
    return out;
}

void to_hex(const ChainHash& hash, std::string& out) {
    static constexpr char digits[] = "0123456789abcdef";
    out.resize(hash.size() * 2);
    for (std::size_t i = 0; i < hash.size(); ++i) {
        out[2 * i] = digits[hash[i] >> 4U];
        out[2 * i + 1] = digits[hash[i] & 0xfU];
    }
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

} // namespace flowgate::audit
