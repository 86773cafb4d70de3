// The canonical bytes of an audit row and the hash chain over them. Kept apart from
// the store so that the offline auditor tools recompute exactly what the writer
// computed; docs/audit-store.md specifies the same encoding for programs in other
// languages.
#pragma once

#include "audit_record.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace flowgate::daemon {

using ChainHash = std::array<std::uint8_t, 32>;

// The previous hash of the first row.
inline constexpr ChainHash genesis_hash{};

// The row's fields in their fixed order, each as an 8-byte big-endian byte length
// followed by its bytes; integers as decimal text, enums as their stored names.
std::string canonical_row_bytes(std::uint64_t seq, const AuditRecord& record);

// SHA-256(prev ‖ canonical).
ChainHash chain_hash(const ChainHash& prev, std::string_view canonical);

std::string to_hex(const ChainHash& hash);
std::optional<ChainHash> hash_from_hex(std::string_view hex);

} // namespace flowgate::daemon
