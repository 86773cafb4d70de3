// The texts of the interned columns, by id; see interned_texts.hpp.
#include "audit/interned_texts.hpp"

namespace flowgate::audit {

namespace outcome = boost::outcome_v2;

AuditResult<TextIds> TextIds::open(sqlite3* db) {
    auto find =
        prepare(db, "SELECT id FROM audit_text WHERE text = ?1", AuditErrc::cannot_open, true);
    if (!find) {
        return find.error();
    }
    auto insert = prepare(db, "INSERT INTO audit_text (id, text) VALUES (?1, ?2)",
                          AuditErrc::cannot_open, true);
    if (!insert) {
        return insert.error();
    }
    auto last =
        prepare(db, "SELECT COALESCE(MAX(id), 0) FROM audit_text", AuditErrc::cannot_open, true);
    if (!last) {
        return last.error();
    }
    return TextIds(std::move(find).value(), std::move(insert).value(), std::move(last).value());
}

TextIds::TextIds(Stmt find, Stmt insert, Stmt last)
    : m_find(std::move(find)), m_insert(std::move(insert)), m_last(std::move(last)) {}

void TextIds::forget() {
    m_ids.clear();
    m_last_id.reset();
}

std::optional<std::int64_t> TextIds::id_of(std::string_view text) {
    if (const auto known = m_ids.find(text); known != m_ids.end()) {
        return known->second;
    }
    if (m_ids.size() >= max_remembered) {
        m_ids.clear();
    }
    sqlite3_stmt* find = m_find.get();
    sqlite3_reset(find);
    bind_text(find, 1, text);
    const int found = sqlite3_step(find);
    if (found == SQLITE_ROW) {
        const std::int64_t id = sqlite3_column_int64(find, 0);
        sqlite3_reset(find);
        m_ids.emplace(text, id);
        return id;
    }
    sqlite3_reset(find);
    if (found != SQLITE_DONE) {
        return std::nullopt;
    }
    if (!m_last_id) {
        sqlite3_stmt* last = m_last.get();
        sqlite3_reset(last);
        if (sqlite3_step(last) != SQLITE_ROW) {
            sqlite3_reset(last);
            return std::nullopt;
        }
        m_last_id = sqlite3_column_int64(last, 0);
        sqlite3_reset(last);
    }
    const std::int64_t id = *m_last_id + 1;
    sqlite3_stmt* insert = m_insert.get();
    sqlite3_reset(insert);
    sqlite3_bind_int64(insert, 1, id);
    bind_text(insert, 2, text);
    if (!step_once(insert)) {
        return std::nullopt;
    }
    m_last_id = id;
    m_ids.emplace(text, id);
    return id;
}

AuditResult<std::string_view> TextList::text(std::int64_t id, std::uint64_t seq,
                                             std::string_view column) {
    if (id > 0 && static_cast<std::uint64_t>(id) > m_texts.size()) {
        if (auto read = read_from(static_cast<std::int64_t>(m_texts.size()) + 1); !read) {
            return read.error();
        }
    }
    if (id <= 0 || static_cast<std::uint64_t>(id) > m_texts.size()) {
        return outcome::failure(
            AuditError{AuditErrc::broken_chain,
                       "row " + std::to_string(seq) + ": its " + std::string(column) + " is text " +
                           std::to_string(id) + ", which audit_text does not hold"});
    }
    return std::string_view(m_texts[static_cast<std::size_t>(id - 1)]);
}

AuditResult<void> TextList::read_from(std::int64_t first_id) {
    if (!m_more) {
        auto more = prepare(m_db, "SELECT id, text FROM audit_text WHERE id >= ?1 ORDER BY id",
                            AuditErrc::bad_schema);
        if (!more) {
            return more.error();
        }
        m_more = std::move(more).value();
    }
    sqlite3_stmt* stmt = m_more.get();
    sqlite3_reset(stmt);
    sqlite3_bind_int64(stmt, 1, first_id);
    int step = SQLITE_ROW;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        const std::int64_t id = sqlite3_column_int64(stmt, 0);
        if (static_cast<std::uint64_t>(id) != m_texts.size() + 1) {
            sqlite3_reset(stmt);
            return outcome::failure(AuditError{AuditErrc::broken_chain,
                                               "audit_text holds text " + std::to_string(id) +
                                                   " after text " + std::to_string(m_texts.size()) +
                                                   ": its ids are not in sequence"});
        }
        m_texts.emplace_back(column_view(stmt, 1));
    }
    sqlite3_reset(stmt);
    if (step != SQLITE_DONE) {
        return outcome::failure(sqlite_error(m_db, AuditErrc::unavailable, "reading audit_text"));
    }
    return outcome::success();
}

} // namespace flowgate::audit
