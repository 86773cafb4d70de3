// The streaming read-only reader; see reader.hpp.
#include "audit/reader.hpp"

#include "audit/schema.hpp"

namespace flowgate::audit {

namespace outcome = boost::outcome_v2;

AuditResult<std::unique_ptr<AuditReader>> AuditReader::open(const std::filesystem::path& path) {
    auto db = open_read_only(path);
    if (!db) {
        return db.error();
    }
    if (auto begun = exec(db.value().get(), "BEGIN", AuditErrc::unavailable,
                          "starting a read of " + path.string());
        !begun) {
        return begun.error();
    }
    // Read inside the snapshot, so that it is the version of the rows the passes read.
    auto version = readable_schema_version(db.value().get(), path);
    if (!version) {
        return version.error();
    }
    return std::unique_ptr<AuditReader>(
        new AuditReader(path, std::move(db).value(), version.value()));
}

AuditReader::AuditReader(std::filesystem::path path, Db db, int version)
    : m_path(std::move(path)), m_db(std::move(db)), m_version(version) {}

AuditReader::~AuditReader() {
    sqlite3_exec(m_db.get(), "COMMIT", nullptr, nullptr, nullptr);
}

AuditResult<std::uint64_t> AuditReader::last_seq() {
    auto stmt =
        prepare(m_db.get(), "SELECT COALESCE(MAX(seq), 0) FROM audit_log", AuditErrc::bad_schema);
    if (!stmt) {
        return stmt.error();
    }
    if (sqlite3_step(stmt.value().get()) != SQLITE_ROW) {
        return outcome::failure(
            sqlite_error(m_db.get(), AuditErrc::unavailable, "reading " + m_path.string()));
    }
    return static_cast<std::uint64_t>(sqlite3_column_int64(stmt.value().get(), 0));
}

AuditResult<void> AuditReader::for_each_row(const AuditRowRange& range,
                                            const std::function<bool(const AuditRowView&)>& visit) {
    auto prepared = prepare(m_db.get(),
                            "SELECT " + audit_columns(m_version) +
                                " FROM audit_log WHERE seq >= ?1 AND seq <= ?4 AND time_us >= ?2 "
                                "AND time_us < ?3 ORDER BY seq",
                            AuditErrc::bad_schema);
    if (!prepared) {
        return prepared.error();
    }
    sqlite3_stmt* stmt = prepared.value().get();
    sqlite3_bind_int64(stmt, 1, range.from_seq);
    sqlite3_bind_int64(stmt, 4, range.to_seq);
    sqlite3_bind_int64(stmt, 2, range.since_us.value_or(INT64_MIN));
    sqlite3_bind_int64(stmt, 3, range.until_us.value_or(INT64_MAX));
    int step = SQLITE_ROW;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (!visit(read_row(stmt, m_version))) {
            return outcome::success();
        }
    }
    if (step != SQLITE_DONE) {
        return outcome::failure(
            sqlite_error(m_db.get(), AuditErrc::unavailable, "reading " + m_path.string()));
    }
    return outcome::success();
}

AuditResult<std::vector<AuditRecord>> AuditReader::rows(const AuditRowRange& range) {
    std::vector<AuditRecord> out;
    auto walked = for_each_row(range, [&out](const AuditRowView& row) {
        out.push_back(record_of(row));
        return true;
    });
    if (!walked) {
        return walked.error();
    }
    return out;
}

AuditResult<PolicyFiles> AuditReader::policy_files(const std::string& policy_hash) {
    auto prepared = prepare(
        m_db.get(), "SELECT name, text FROM policy_files WHERE policy_hash = ?1 ORDER BY name",
        AuditErrc::bad_schema);
    if (!prepared) {
        return prepared.error();
    }
    sqlite3_stmt* stmt = prepared.value().get();
    bind_text(stmt, 1, policy_hash);
    PolicyFiles files;
    int step = SQLITE_ROW;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        files.emplace(std::string(column_view(stmt, 0)), std::string(column_view(stmt, 1)));
    }
    if (step != SQLITE_DONE) {
        return outcome::failure(
            sqlite_error(m_db.get(), AuditErrc::unavailable, "reading the policy files"));
    }
    return files;
}

} // namespace flowgate::audit
