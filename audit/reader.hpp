// A read-only, streaming view of an audit store for the offline auditor tools. The
// tools walk logs of millions of rows, so rows are not copied into AuditRecords: each
// one is handed over as views into SQLite's own buffers, valid until the next row.
// The file is opened read-only (no write lock, no root; it works while flowgated
// writes it, thanks to WAL), and one read transaction spans the reader's life, so
// every pass sees the same consistent snapshot.
#pragma once

#include "audit/canonical.hpp"
#include "audit/store.hpp"

#include <climits>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

struct sqlite3;
struct sqlite3_stmt;

namespace flowgate::audit {

// The audit_log columns in the order of AuditRowView and of the canonical bytes, for
// a SELECT or an INSERT.
inline constexpr const char* audit_row_columns =
    "seq, time_us, kind, uid, gid, pid, service, request, decision, reason, rule, "
    "rule_source, legal_basis, obligations, policy_hash, purpose, activity, recipient, "
    "direction, data, subject, detail, prev_hash, hash";

// The current row of a statement that selects audit_row_columns, as views into
// SQLite's buffers, valid until the statement steps again.
AuditRowView audit_row_view(sqlite3_stmt* stmt);

// Which rows a pass reads, in seq order.
// Every row by default, including any a forger gave a seq below 1.
struct AuditRowRange {
    std::int64_t from_seq = INT64_MIN;    // seq >= from_seq
    std::int64_t to_seq = INT64_MAX;      // seq <= to_seq
    std::optional<std::int64_t> since_us; // time_us >= since_us
    std::optional<std::int64_t> until_us; // time_us < until_us
};

// One reader belongs to one thread at a time (the connection is opened without its
// own mutex).
class AuditReader {
public:
    // Opens the file read-only (SQLITE_OPEN_READONLY through a mode=ro URI), checks
    // that it is an audit store of this schema version and starts the read snapshot.
    static AuditResult<std::unique_ptr<AuditReader>> open(const std::filesystem::path& path);

    ~AuditReader();
    AuditReader(const AuditReader&) = delete;
    AuditReader& operator=(const AuditReader&) = delete;

    // The highest seq in the snapshot (0 when empty): the total for progress reports.
    AuditResult<std::uint64_t> last_seq();

    // Calls `visit` for each row in the range, in seq order, until it returns false.
    AuditResult<void> for_each_row(const AuditRowRange& range,
                                   const std::function<bool(const AuditRowView&)>& visit);

    // The policy files stored under the hash (empty if none).
    AuditResult<PolicyFiles> policy_files(const std::string& policy_hash);

    const std::filesystem::path& path() const noexcept { return m_path; }

private:
    AuditReader(std::filesystem::path path, sqlite3* db);
    std::filesystem::path m_path;
    sqlite3* m_db = nullptr;
};

} // namespace flowgate::audit
