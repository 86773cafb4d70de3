// A read-only, streaming view of an audit store, for the auditor's tools and the
// tests. The tools walk logs of millions of rows, so rows are not copied out: each one
// is handed over as views into SQLite's own buffers, valid until the next row. The file
// is opened read-only (no write lock, no root; it works while flowgated writes it,
// thanks to WAL), and one read transaction spans the reader's life, so every pass sees
// the same consistent snapshot. A store of an earlier schema version is read with the
// columns it has: the rows' newer fields keep their defaults, and schema_version() says
// which version the rows, and so their canonical bytes, are of.
#pragma once

#include "audit/error.hpp"
#include "audit/merkle.hpp"
#include "audit/record.hpp"
#include "audit/sqlite.hpp"

#include <climits>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

namespace flowgate::audit {

// Which rows a pass reads, in seq order.
// Every row by default, including any a forger gave a seq below 1.
struct AuditRowRange {
    std::int64_t from_seq = INT64_MIN;    // seq >= from_seq
    std::int64_t to_seq = INT64_MAX;      // seq <= to_seq
    std::optional<std::int64_t> since_us; // time_us >= since_us
    std::optional<std::int64_t> until_us; // time_us < until_us
};

// A checkpoint as the store holds it (schema version 3): the signed note, or the
// unsigned checkpoint body, of the tree of the first tree_size rows.
struct StoredCheckpoint {
    std::uint64_t tree_size = 0;
    std::int64_t time_us = 0;
    std::string note;
};

// One reader belongs to one thread at a time (the connection has no mutex of its own).
class AuditReader {
public:
    // Opens the file read-only (open_read_only()), checks that it is an audit store of a
    // schema version this library reads and starts the read snapshot.
    static AuditResult<std::unique_ptr<AuditReader>> open(const std::filesystem::path& path);

    ~AuditReader();
    AuditReader(const AuditReader&) = delete;
    AuditReader& operator=(const AuditReader&) = delete;

    // The highest seq in the snapshot (0 when empty): the total for progress reports.
    AuditResult<std::uint64_t> last_seq();

    // Calls `visit` for each row in the range, in seq order, until it returns false.
    AuditResult<void> for_each_row(const AuditRowRange& range,
                                   const std::function<bool(const AuditRowView&)>& visit);

    // The rows of the range, copied out (for small logs: tests, the store's own checks).
    AuditResult<std::vector<AuditRecord>> rows(const AuditRowRange& range = {});

    // The policy files stored under the hash (empty if none).
    AuditResult<PolicyFiles> policy_files(const std::string& policy_hash);

    // The log's tree (audit/tree_store.hpp): from its stored nodes, or, in a store of
    // version 1 or 2, from its rows. Sizes are of the tree of the first N rows; leaf
    // index = seq - 1.
    AuditResult<TreeHash> tree_root(std::uint64_t size);
    AuditResult<std::vector<TreeHash>> inclusion_proof(std::uint64_t leaf_index,
                                                       std::uint64_t tree_size);
    AuditResult<std::vector<TreeHash>> consistency_proof(std::uint64_t old_size,
                                                         std::uint64_t new_size);

    // The checkpoints' origin line; empty for a store of version 1 or 2, which has none.
    AuditResult<std::string> origin();
    // The stored checkpoints, in the order they were stored (none before version 3).
    AuditResult<std::vector<StoredCheckpoint>> checkpoints();
    AuditResult<std::optional<StoredCheckpoint>> latest_checkpoint();

    // The connection, for a pass of the library's own (the verifier's tree check).
    sqlite3* connection() const noexcept { return m_db.get(); }

    const std::filesystem::path& path() const noexcept { return m_path; }
    // The store's PRAGMA user_version (audit/schema.hpp).
    int schema_version() const noexcept { return m_version; }

private:
    AuditReader(std::filesystem::path path, Db db, int version);
    // The stored checkpoints, in `order` (an ORDER BY, with any LIMIT).
    AuditResult<std::vector<StoredCheckpoint>> read_checkpoints(std::string_view order);
    std::filesystem::path m_path;
    Db m_db;
    int m_version;
};

} // namespace flowgate::audit
