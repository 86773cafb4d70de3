// The rows of audit_log a statement selects, read as AuditRowView whatever the store's
// version: a version-4 store's interned columns read back as their texts (audit_text),
// and each row's prev_hash, which version 4 does not store, as the hash of the row
// before it. The one way the library reads rows (the reader, the stored tree, the
// writer's check at open).
#pragma once

#include "audit/error.hpp"
#include "audit/interned_texts.hpp"
#include "audit/record.hpp"
#include "audit/sqlite.hpp"

#include <cstdint>
#include <optional>
#include <string_view>

namespace flowgate::audit {

class RowSelect {
public:
    // "SELECT <the version's columns> FROM audit_log " + tail; the caller binds tail's
    // parameters to statement().
    static AuditResult<RowSelect> prepare(sqlite3* db, int version, std::string_view tail);

    sqlite3_stmt* statement() const { return m_stmt.get(); }

    // The next row, or nothing after the last; the view is valid until the next call.
    AuditResult<std::optional<AuditRowView>> next();
    // Ready to bind and run again.
    void reset();

private:
    RowSelect(sqlite3* db, int version, Stmt stmt);
    AuditResult<void> link_to_row_before(AuditRowView& row);

    sqlite3* m_db;
    int m_version;
    Stmt m_stmt;
    TextList m_texts;
    Stmt m_hash_at;                          // the hash of one row, by seq
    std::optional<std::uint64_t> m_last_seq; // the row read before, whose hash is m_last_hash
    char m_last_hash[64] = {};
    char m_prev_hash[64] = {};
};

} // namespace flowgate::audit
