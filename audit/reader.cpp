// The streaming read-only reader; see audit_reader.hpp.
#include "audit/reader.hpp"

#include <sqlite3.h>

#include <charconv>
#include <cstring>
#include <stdexcept>

namespace flowgate::audit {

namespace outcome = boost::outcome_v2;

namespace {

constexpr int schema_version = 1;

constexpr const char* row_range =
    " FROM audit_log WHERE seq >= ?1 AND seq <= ?4 AND time_us >= ?2 AND time_us < ?3 "
    "ORDER BY seq";

struct StmtFinalize {
    void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalize>;

AuditError sqlite_error(sqlite3* db, AuditErrc code, std::string_view doing) {
    std::string message(doing);
    message += ": ";
    message += db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    return AuditError{code, std::move(message)};
}

AuditResult<Stmt> prepare(sqlite3* db, std::string_view sql) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &raw, nullptr) !=
        SQLITE_OK)
        return outcome::failure(sqlite_error(db, AuditErrc::bad_schema, "preparing a query"));
    return Stmt(raw);
}

std::string_view column_view(sqlite3_stmt* stmt, int column) {
    const auto* text = sqlite3_column_text(stmt, column);
    if (text == nullptr)
        return {};
    return {reinterpret_cast<const char*>(text),
            static_cast<std::size_t>(sqlite3_column_bytes(stmt, column))};
}

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

} // namespace

AuditRowView audit_row_view(sqlite3_stmt* stmt) {
    AuditRowView row;
    row.seq = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 0));
    row.time_us = sqlite3_column_int64(stmt, 1);
    row.kind = column_view(stmt, 2);
    row.uid = sqlite3_column_int64(stmt, 3);
    row.gid = sqlite3_column_int64(stmt, 4);
    row.pid = sqlite3_column_int64(stmt, 5);
    row.service = column_view(stmt, 6);
    row.request = column_view(stmt, 7);
    row.decision = column_view(stmt, 8);
    row.reason = column_view(stmt, 9);
    row.rule = column_view(stmt, 10);
    row.rule_source = column_view(stmt, 11);
    row.legal_basis = column_view(stmt, 12);
    row.obligations = column_view(stmt, 13);
    row.policy_hash = column_view(stmt, 14);
    row.purpose = column_view(stmt, 15);
    row.activity = column_view(stmt, 16);
    row.recipient = column_view(stmt, 17);
    row.direction = column_view(stmt, 18);
    row.data = column_view(stmt, 19);
    row.subject = column_view(stmt, 20);
    row.detail = column_view(stmt, 21);
    row.prev_hash = column_view(stmt, 22);
    row.hash = column_view(stmt, 23);
    return row;
}

AuditResult<std::unique_ptr<AuditReader>> AuditReader::open(const std::filesystem::path& path) {
    sqlite3* raw = nullptr;
    const int rc =
        sqlite3_open_v2(read_only_uri(path).c_str(), &raw,
                        SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, nullptr);
    std::unique_ptr<AuditReader> reader(new AuditReader(path, raw));
    if (rc != SQLITE_OK)
        return outcome::failure(
            sqlite_error(raw, AuditErrc::cannot_open, "opening " + path.string()));
    sqlite3_busy_timeout(raw, 2000);
    // Pages mapped rather than copied: a full pass reads the whole file.
    sqlite3_exec(raw, "PRAGMA mmap_size = 17179869184", nullptr, nullptr, nullptr);
    auto version = prepare(raw, "PRAGMA user_version");
    if (!version)
        return outcome::failure(
            sqlite_error(raw, AuditErrc::cannot_open, "reading " + path.string()));
    if (sqlite3_step(version.value().get()) != SQLITE_ROW)
        return outcome::failure(
            sqlite_error(raw, AuditErrc::cannot_open, "reading " + path.string()));
    if (sqlite3_column_int(version.value().get(), 0) != schema_version)
        return outcome::failure(AuditError{
            AuditErrc::bad_schema, path.string() + " is not a flowgate audit store (version " +
                                       std::to_string(schema_version) + ")"});
    version.value().reset();
    if (sqlite3_exec(raw, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK)
        return outcome::failure(
            sqlite_error(raw, AuditErrc::unavailable, "starting a read of " + path.string()));
    return reader;
}

AuditReader::AuditReader(std::filesystem::path path, sqlite3* db)
    : m_path(std::move(path)), m_db(db) {}

AuditReader::~AuditReader() {
    if (m_db != nullptr) {
        sqlite3_exec(m_db, "COMMIT", nullptr, nullptr, nullptr);
        sqlite3_close_v2(m_db);
    }
}

AuditResult<std::uint64_t> AuditReader::last_seq() {
    auto stmt = prepare(m_db, "SELECT COALESCE(MAX(seq), 0) FROM audit_log");
    if (!stmt)
        return stmt.error();
    if (sqlite3_step(stmt.value().get()) != SQLITE_ROW)
        return outcome::failure(
            sqlite_error(m_db, AuditErrc::unavailable, "reading " + m_path.string()));
    return static_cast<std::uint64_t>(sqlite3_column_int64(stmt.value().get(), 0));
}

AuditResult<void> AuditReader::for_each_row(const AuditRowRange& range,
                                            const std::function<bool(const AuditRowView&)>& visit) {
    auto prepared = prepare(m_db, std::string("SELECT ") + audit_row_columns + row_range);
    if (!prepared)
        return prepared.error();
    sqlite3_stmt* stmt = prepared.value().get();
    sqlite3_bind_int64(stmt, 1, range.from_seq);
    sqlite3_bind_int64(stmt, 4, range.to_seq);
    sqlite3_bind_int64(stmt, 2, range.since_us.value_or(INT64_MIN));
    sqlite3_bind_int64(stmt, 3, range.until_us.value_or(INT64_MAX));
    int step = SQLITE_ROW;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        const AuditRowView row = audit_row_view(stmt);
        if (!visit(row))
            return outcome::success();
    }
    if (step != SQLITE_DONE)
        return outcome::failure(
            sqlite_error(m_db, AuditErrc::unavailable, "reading " + m_path.string()));
    return outcome::success();
}

AuditResult<PolicyFiles> AuditReader::policy_files(const std::string& policy_hash) {
    auto prepared =
        prepare(m_db, "SELECT name, text FROM policy_files WHERE policy_hash = ?1 ORDER BY name");
    if (!prepared)
        return prepared.error();
    sqlite3_stmt* stmt = prepared.value().get();
    sqlite3_bind_text64(stmt, 1, policy_hash.data(), policy_hash.size(), SQLITE_STATIC,
                        SQLITE_UTF8);
    PolicyFiles files;
    int step = SQLITE_ROW;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW)
        files.emplace(std::string(column_view(stmt, 0)), std::string(column_view(stmt, 1)));
    if (step != SQLITE_DONE)
        return outcome::failure(
            sqlite_error(m_db, AuditErrc::unavailable, "reading the policy files"));
    return files;
}

} // namespace flowgate::audit
