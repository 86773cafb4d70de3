// The SQLite calls the audit library makes, in one place: owning handles, one way to
// open a store read-only, preparing and running statements, and turning SQLite's
// failures into the library's error vocabulary (audit/error.hpp).
#pragma once

#include "audit/error.hpp"

#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace flowgate::audit {

struct DbClose {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalize {
    void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using Db = std::unique_ptr<sqlite3, DbClose>;
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalize>;

// "doing: SQLite's message (its extended code's text)".
AuditError sqlite_error(sqlite3* db, AuditErrc code, std::string_view doing);

// A connection with extended result codes and the busy timeout; `flags` as for
// sqlite3_open_v2 (the writer: READWRITE | CREATE | NOMUTEX).
AuditResult<Db> open_db(const std::filesystem::path& path, int flags,
                        std::chrono::milliseconds busy_timeout);

// The one way the library opens a store to read it: read-only (a mode=ro URI: no write
// lock, no journal, works while flowgated writes, thanks to WAL), without a mutex of its
// own (one thread at a time), pages mapped rather than copied, and only if the file is
// an audit store of a schema version this library reads (readable_schema_version()).
AuditResult<Db> open_read_only(const std::filesystem::path& path);

// `persistent`: a statement kept for the connection's life.
AuditResult<Stmt> prepare(sqlite3* db, std::string_view sql, AuditErrc code,
                          bool persistent = false);
AuditResult<void> exec(sqlite3* db, const char* sql, AuditErrc code, std::string_view doing);

// Runs a statement that returns no row and resets it, ready to run again.
bool step_once(sqlite3_stmt* stmt);

// A text column as a view into SQLite's buffer, valid until the statement steps again.
// Inline: a verify reads some twenty of them per row.
inline std::string_view column_view(sqlite3_stmt* stmt, int column) {
    const auto* text = sqlite3_column_text(stmt, column);
    if (text == nullptr) {
        return {};
    }
    return {reinterpret_cast<const char*>(text),
            static_cast<std::size_t>(sqlite3_column_bytes(stmt, column))};
}
// Binds without copying: the text must outlive the statement's next step.
void bind_text(sqlite3_stmt* stmt, int index, std::string_view text);

} // namespace flowgate::audit
