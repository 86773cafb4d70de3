// Reading audit_log's rows of every version; see row_select.hpp.
#include "audit/row_select.hpp"

#include "audit/schema.hpp"

#include <algorithm>
#include <cstring>

namespace flowgate::audit {

namespace outcome = boost::outcome_v2;

namespace {

void read_field(sqlite3_stmt* stmt, int column, std::uint64_t& seq) {
    seq = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, column));
}
void read_field(sqlite3_stmt* stmt, int column, std::int64_t& value) {
    value = sqlite3_column_int64(stmt, column);
}
void read_field(sqlite3_stmt* stmt, int column, std::string_view& text) {
    text = column_view(stmt, column);
}

} // namespace

AuditResult<RowSelect> RowSelect::prepare(sqlite3* db, int version, std::string_view tail) {
    auto stmt = audit::prepare(
        db, "SELECT " + audit_columns(version) + " FROM audit_log " + std::string(tail),
        AuditErrc::bad_schema);
    if (!stmt) {
        return stmt.error();
    }
    return RowSelect(db, version, std::move(stmt).value());
}

RowSelect::RowSelect(sqlite3* db, int version, Stmt stmt)
    : m_db(db), m_version(version), m_stmt(std::move(stmt)), m_texts(db) {}

void RowSelect::reset() {
    sqlite3_reset(m_stmt.get());
    m_last_seq.reset();
}

AuditResult<std::optional<AuditRowView>> RowSelect::next() {
    sqlite3_stmt* stmt = m_stmt.get();
    const int step = sqlite3_step(stmt);
    if (step == SQLITE_DONE) {
        return std::optional<AuditRowView>();
    }
    if (step != SQLITE_ROW) {
        return outcome::failure(
            sqlite_error(m_db, AuditErrc::unavailable, "reading the audit log"));
    }
    AuditRowView row;
    int column = 0;
    std::optional<AuditError> failed;
    for_each_field(
        [&](const AuditField& field, auto& value) {
            using Value = std::decay_t<decltype(value)>;
            if (!field.in_version(m_version)) {
                return;
            }
            if constexpr (std::is_same_v<Value, std::string_view>) {
                if (field.interned(m_version)) {
                    const std::int64_t id = sqlite3_column_int64(stmt, column++);
                    auto text = m_texts.text(id, row.seq, field.name);
                    if (!text) {
                        failed = text.error();
                    } else {
                        value = text.value();
                    }
                    return;
                }
            }
            read_field(stmt, column++, value);
        },
        row);
    if (failed) {
        return outcome::failure(std::move(*failed));
    }
    if (m_version >= 4) {
        if (auto linked = link_to_row_before(row); !linked) {
            return linked.error();
        }
    }
    return std::optional<AuditRowView>(row);
}

// prev_hash: the hash of the row read just before, or read by seq (64 zeros for row 1;
// empty when the store has no row before, which the chain's check names).
AuditResult<void> RowSelect::link_to_row_before(AuditRowView& row) {
    const bool follows = m_last_seq && row.seq == *m_last_seq + 1;
    if (follows) {
        std::memcpy(m_prev_hash, m_last_hash, sizeof m_prev_hash);
        row.prev_hash = std::string_view(m_prev_hash, sizeof m_prev_hash);
    } else if (row.seq == 1) {
        std::memset(m_prev_hash, '0', sizeof m_prev_hash);
        row.prev_hash = std::string_view(m_prev_hash, sizeof m_prev_hash);
    } else {
        if (!m_hash_at) {
            auto hash_at = audit::prepare(m_db, "SELECT hash FROM audit_log WHERE seq = ?1",
                                          AuditErrc::bad_schema);
            if (!hash_at) {
                return hash_at.error();
            }
            m_hash_at = std::move(hash_at).value();
        }
        sqlite3_stmt* stmt = m_hash_at.get();
        sqlite3_reset(stmt);
        sqlite3_bind_int64(stmt, 1, static_cast<sqlite3_int64>(row.seq - 1));
        const int step = sqlite3_step(stmt);
        if (step != SQLITE_ROW && step != SQLITE_DONE) {
            sqlite3_reset(stmt);
            return outcome::failure(
                sqlite_error(m_db, AuditErrc::unavailable, "reading the audit log"));
        }
        const std::string_view before = step == SQLITE_ROW ? column_view(stmt, 0) : "";
        const std::size_t size = std::min(before.size(), sizeof m_prev_hash);
        if (size != 0) {
            std::memcpy(m_prev_hash, before.data(), size);
        }
        row.prev_hash = std::string_view(m_prev_hash, size);
        sqlite3_reset(stmt);
    }
    m_last_seq = row.seq;
    const std::size_t size = std::min(row.hash.size(), sizeof m_last_hash);
    if (size != 0) {
        std::memcpy(m_last_hash, row.hash.data(), size);
    }
    if (size != sizeof m_last_hash) {
        m_last_seq.reset(); // not a hash: the next row reads its link by seq, and fails
    }
    return outcome::success();
}

} // namespace flowgate::audit
