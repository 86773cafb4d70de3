// The canonical bytes of an audit row and the hash chain over them. Kept apart from
// the store so that the offline auditor tools recompute exactly what the writer
// computed; docs/audit-store.md specifies the same encoding for programs in other
// languages.
#pragma once

#include "audit/record.hpp"

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace flowgate::audit {

using ChainHash = std::array<std::uint8_t, 32>;

// The previous hash of the first row.
inline constexpr ChainHash genesis_hash{};

// One row's columns, as stored (the reader's rows point into SQLite's buffers and are
// invalidated by the next row), or as the writer is about to store them.
struct AuditRowView {
    std::uint64_t seq = 0;
    std::int64_t time_us = 0;
    std::string_view kind;
    std::int64_t uid = -1;
    std::int64_t gid = -1;
    std::int64_t pid = -1;
    std::string_view service;
    std::string_view request;
    std::string_view decision;
    std::string_view reason;
    std::string_view rule;
    std::string_view rule_source;
    std::string_view legal_basis;
    std::string_view obligations;
    std::string_view policy_hash;
    std::string_view purpose;
    std::string_view activity;
    std::string_view recipient;
    std::string_view direction;
    std::string_view data;
    std::string_view subject;
    std::string_view detail;
    std::string_view prev_hash; // hex
    std::string_view hash;      // hex
};

// The row's fields in their fixed order (docs/audit-store.md), each as an 8-byte
// big-endian byte length followed by its bytes; integers as decimal text, enums as
// their stored names. Replaces `out`, reusing its capacity.
void canonical_row_bytes(const AuditRowView& row, std::string& out);

// A view of the record as row `seq` (without the hashes); valid while the record is.
AuditRowView row_view(std::uint64_t seq, const AuditRecord& record);

// SHA-256(prev ‖ canonical) with one reusable digest context, for hashing a million
// rows (or a stream of decisions) without an allocation or a lookup per row.
class ChainHasher {
public:
    ChainHasher();
    ~ChainHasher();
    ChainHasher(const ChainHasher&) = delete;
    ChainHasher& operator=(const ChainHasher&) = delete;
    ChainHash hash(const ChainHash& prev, std::string_view canonical);

private:
    struct Context;
    std::unique_ptr<Context> m_context;
};

// canonical_row_bytes(row_view(seq, record)) as a new string.
std::string canonical_row_bytes(std::uint64_t seq, const AuditRecord& record);

// SHA-256(prev ‖ canonical), with a hasher of the calling thread's.
ChainHash chain_hash(const ChainHash& prev, std::string_view canonical);

std::string to_hex(const ChainHash& hash);
// As to_hex, replacing `out` and reusing its capacity.
void to_hex(const ChainHash& hash, std::string& out);
std::optional<ChainHash> hash_from_hex(std::string_view hex);

} // namespace flowgate::audit
