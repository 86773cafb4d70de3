// The streaming read-only reader; see reader.hpp.
#include "audit/reader.hpp"

#include "audit/row_select.hpp"
#include "audit/schema.hpp"
#include "audit/tree_store.hpp"

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
    auto select = RowSelect::prepare(
        m_db.get(), m_version,
        "WHERE seq >= ?1 AND seq <= ?4 AND time_us >= ?2 AND time_us < ?3 ORDER BY seq");
    if (!select) {
        return select.error();
    }
    sqlite3_stmt* stmt = select.value().statement();
    sqlite3_bind_int64(stmt, 1, range.from_seq);
    sqlite3_bind_int64(stmt, 4, range.to_seq);
    sqlite3_bind_int64(stmt, 2, range.since_us.value_or(INT64_MIN));
    sqlite3_bind_int64(stmt, 3, range.until_us.value_or(INT64_MAX));
    for (;;) {
        auto row = select.value().next();
        if (!row) {
            return outcome::failure(
                AuditError{row.error().code, m_path.string() + ": " + row.error().message});
        }
        if (!row.value() || !visit(*row.value())) {
            return outcome::success();
        }
    }
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

namespace {

// A value of the tree through a StoredTree over the reader's snapshot.
template <class Make> auto through_tree(sqlite3* db, int version, Make make) {
    StoredTree tree(db, version);
    auto made = make(tree);
    using Value = std::decay_t<decltype(made.value())>;
    if (!made) {
        return AuditResult<Value>(outcome::failure(tree_error(made.error(), tree)));
    }
    return AuditResult<Value>(std::move(made).value());
}

} // namespace

AuditResult<TreeHash> AuditReader::tree_root(std::uint64_t size) {
    return through_tree(m_db.get(), m_version,
                        [size](StoredTree& tree) { return root_from_source(size, tree); });
}

AuditResult<std::vector<TreeHash>> AuditReader::inclusion_proof(std::uint64_t leaf_index,
                                                                std::uint64_t tree_size) {
    return through_tree(m_db.get(), m_version, [&](StoredTree& tree) {
        return audit::inclusion_proof(leaf_index, tree_size, tree);
    });
}

AuditResult<std::vector<TreeHash>> AuditReader::consistency_proof(std::uint64_t old_size,
                                                                  std::uint64_t new_size) {
    return through_tree(m_db.get(), m_version, [&](StoredTree& tree) {
        return audit::consistency_proof(old_size, new_size, tree);
    });
}

AuditResult<std::string> AuditReader::origin() {
    if (m_version < 3) {
        return std::string();
    }
    auto stmt = prepare(m_db.get(), "SELECT origin FROM audit_origin", AuditErrc::bad_schema);
    if (!stmt) {
        return stmt.error();
    }
    const int step = sqlite3_step(stmt.value().get());
    if (step == SQLITE_ROW) {
        return std::string(column_view(stmt.value().get(), 0));
    }
    if (step == SQLITE_DONE) {
        return outcome::failure(
            AuditError{AuditErrc::bad_schema, m_path.string() + " holds no origin"});
    }
    return outcome::failure(
        sqlite_error(m_db.get(), AuditErrc::unavailable, "reading " + m_path.string()));
}

AuditResult<std::vector<StoredCheckpoint>> AuditReader::checkpoints() {
    return read_checkpoints("ORDER BY rowid");
}

AuditResult<std::optional<StoredCheckpoint>> AuditReader::latest_checkpoint() {
    auto last = read_checkpoints("ORDER BY rowid DESC LIMIT 1");
    if (!last) {
        return last.error();
    }
    if (last.value().empty()) {
        return std::optional<StoredCheckpoint>();
    }
    return std::optional<StoredCheckpoint>(std::move(last.value().front()));
}

AuditResult<std::vector<StoredCheckpoint>> AuditReader::read_checkpoints(std::string_view order) {
    std::vector<StoredCheckpoint> out;
    if (m_version < 3) {
        return out;
    }
    auto stmt = prepare(
        m_db.get(), "SELECT tree_size, time_us, note FROM audit_checkpoint " + std::string(order),
        AuditErrc::bad_schema);
    if (!stmt) {
        return stmt.error();
    }
    int step = SQLITE_ROW;
    while ((step = sqlite3_step(stmt.value().get())) == SQLITE_ROW) {
        sqlite3_stmt* row = stmt.value().get();
        out.push_back(StoredCheckpoint{static_cast<std::uint64_t>(sqlite3_column_int64(row, 0)),
                                       sqlite3_column_int64(row, 1),
                                       std::string(column_view(row, 2))});
    }
    if (step != SQLITE_DONE) {
        return outcome::failure(
            sqlite_error(m_db.get(), AuditErrc::unavailable, "reading the checkpoints"));
    }
    return out;
}

} // namespace flowgate::audit
