// The library's SQLite helpers; see sqlite.hpp.
#include "audit/sqlite.hpp"

#include "audit/schema.hpp"

namespace flowgate::audit {

namespace outcome = boost::outcome_v2;

namespace {

// A file: URI for the path; only the characters a URI gives meaning to are escaped.
std::string read_only_uri(const std::filesystem::path& path) {
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string uri = "file:";
    for (unsigned char c : std::filesystem::absolute(path).string()) {
        if (c == '%' || c == '?' || c == '#' || c < 0x20) {
            uri += '%';
            uri += digits[c >> 4U];
            uri += digits[c & 0xFU];
        } else {
            uri += static_cast<char>(c);
        }
    }
    return uri + "?mode=ro";
}

// SQLite's allocation statistics off, before the process's first connection (hence at
// static initialisation: a test or tool may open its own connection first). Debian's
// library is built without lookaside, so each small allocation of a statement's step
// goes to malloc, and with the statistics on each one also takes a process-wide mutex
// and updates counters nothing here reads. Refused (SQLITE_MISUSE, left as it was) when
// something in the process has already initialised SQLite.
[[maybe_unused]] const int sqlite_configured = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);

} // namespace

AuditError sqlite_error(sqlite3* db, AuditErrc code, std::string_view doing) {
    std::string message(doing);
    message += ": ";
    message += db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    if (db != nullptr) {
        message += " (";
        message += sqlite3_errstr(sqlite3_extended_errcode(db));
        message += ")";
    }
    return AuditError{code, std::move(message)};
}

AuditResult<Db> open_db(const std::filesystem::path& path, int flags,
                        std::chrono::milliseconds busy_timeout) {
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
    Db db(raw);
    if (rc != SQLITE_OK) {
        return outcome::failure(
            sqlite_error(db.get(), AuditErrc::cannot_open, "opening " + path.string()));
    }
    sqlite3_extended_result_codes(db.get(), 1);
    sqlite3_busy_timeout(db.get(), static_cast<int>(busy_timeout.count()));
    return db;
}

AuditResult<Db> open_read_only(const std::filesystem::path& path) {
    sqlite3* raw = nullptr;
    const int rc =
        sqlite3_open_v2(read_only_uri(path).c_str(), &raw,
                        SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, nullptr);
    Db db(raw);
    if (rc != SQLITE_OK) {
        return outcome::failure(
            sqlite_error(db.get(), AuditErrc::cannot_open, "opening " + path.string()));
    }
    sqlite3_extended_result_codes(db.get(), 1);
    sqlite3_busy_timeout(db.get(), 2000);
    // A full pass reads the whole file.
    sqlite3_exec(db.get(), "PRAGMA mmap_size = 17179869184", nullptr, nullptr, nullptr);
    if (auto checked = readable_schema_version(db.get(), path); !checked) {
        return checked.error();
    }
    return db;
}

AuditResult<Stmt> prepare(sqlite3* db, std::string_view sql, AuditErrc code, bool persistent) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                           persistent ? SQLITE_PREPARE_PERSISTENT : 0, &raw,
                           nullptr) != SQLITE_OK) {
        return outcome::failure(sqlite_error(db, code, "preparing a statement"));
    }
    return Stmt(raw);
}

AuditResult<void> exec(sqlite3* db, const char* sql, AuditErrc code, std::string_view doing) {
    if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
        return outcome::failure(sqlite_error(db, code, doing));
    }
    return outcome::success();
}

bool step_once(sqlite3_stmt* stmt) {
    const bool done = sqlite3_step(stmt) == SQLITE_DONE;
    sqlite3_reset(stmt);
    return done;
}

void bind_text(sqlite3_stmt* stmt, int index, std::string_view text) {
    // A null pointer would bind SQL NULL; an empty field is the empty string.
    sqlite3_bind_text64(stmt, index, text.data() != nullptr ? text.data() : "", text.size(),
                        SQLITE_STATIC, SQLITE_UTF8);
}

} // namespace flowgate::audit
