// The canonical bytes of an audit row and the SHA-256 chain over them. The writer, the
// store's tail check and the auditor's verifier all hash through this one encoding, so
// that the tools recompute exactly what the writer computed; docs/audit-store.md
// specifies the same bytes for programs in other languages.
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

// The previous hash of the first row, and as stored (hex).
inline constexpr ChainHash genesis_hash{};
inline constexpr std::string_view genesis_hex =
    "0000000000000000000000000000000000000000000000000000000000000000";

// The hashed fields of a row of a store of schema `version` (the fields that version
// has: 22 in version 1, 25 in version 2), in the field table's order, each as an 8-byte
// big-endian byte length followed by its bytes; integers as decimal text (seq as a
// signed 64-bit integer, as SQLite stores it), kind and decision as their stored names.
// Replaces `out`, reusing its capacity.
void canonical_row_bytes(const AuditRowView& row, int version, std::string& out);
std::string canonical_row_bytes(const AuditRowView& row, int version);

// The row whose canonical bytes of schema `version` are `bytes`, its texts viewing them
// (valid while the bytes are): what a copy of the log that keeps only these bytes (the
// central store) reads its rows from. The fields the version lacks keep their defaults;
// prev_hash and hash, which the bytes do not cover, stay empty. None when the bytes are
// not such a row: a length past their end, an integer that is not decimal, bytes left.
std::optional<AuditRowView> parse_canonical_row(std::string_view bytes, int version);

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

// SHA-256(prev ‖ canonical), with a hasher of the calling thread's: a row's hash in a
// store of version 1 or 2. From version 3 the chain links the rows' Merkle leaf hashes
// instead (row_hash() in audit/merkle.hpp).
ChainHash chain_hash(const ChainHash& prev, std::string_view canonical);

// Whether the rows of a store of this version chain through their leaf hashes.
inline constexpr bool chain_links_leaves(int version) {
    return version >= 3;
}

// SHA-256 of some bytes, once (a line's digest, a key's ID): not for a row at a time.
ChainHash sha256(std::string_view bytes);

// Lowercase hex, 64 digits.
std::string to_hex(const ChainHash& hash);
// As to_hex, into a fixed buffer (no allocation; inline: a verify does it per row).
inline void to_hex(const ChainHash& hash, char (&out)[64]) {
    constexpr char digits[] = "0123456789abcdef";
    for (std::size_t i = 0; i < hash.size(); ++i) {
        out[2 * i] = digits[hash[i] >> 4U];
        out[2 * i + 1] = digits[hash[i] & 0xfU];
    }
}
// As to_hex, replacing `out` and reusing its capacity.
void to_hex(const ChainHash& hash, std::string& out);
std::optional<ChainHash> hash_from_hex(std::string_view hex);

} // namespace flowgate::audit
