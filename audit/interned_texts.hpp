// audit_text, where a version-4 store keeps each text of its interned columns once
// (kind, service, decision, reason, rule, policy_hash, the request's names …): the rows
// hold the texts' ids. The writer's side turns texts into ids, storing the new ones in
// the rows' transaction; the reader's side turns ids back into texts.
#pragma once

#include "audit/error.hpp"
#include "audit/sqlite.hpp"

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace flowgate::audit {

// The writer's: the id of a text, stored with the next id if the store lacks it. Ids
// inserted in a transaction that rolls back are gone from the store: forget() them all.
// It remembers at most `max_remembered` texts (a client can make reasons of its own
// names), and looks the others up by the table's unique index.
class TextIds {
public:
    static constexpr std::size_t max_remembered = 1 << 16;

    // Reads the last id; the statements are prepared for the connection's life.
    static AuditResult<TextIds> open(sqlite3* db);

    // The text's id, or nothing when the store could not be read or written.
    std::optional<std::int64_t> id_of(std::string_view text);
    void forget();

private:
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view text) const {
            return std::hash<std::string_view>{}(text);
        }
    };
    TextIds(Stmt find, Stmt insert, Stmt last);

    Stmt m_find;
    Stmt m_insert;
    Stmt m_last;
    std::optional<std::int64_t> m_last_id; // read again after forget()
    std::unordered_map<std::string, std::int64_t, Hash, std::equal_to<>> m_ids;
};

// The reader's: every text by id, read in order as rows name them (texts are never
// changed, and a snapshot's rows name only texts of that snapshot).
class TextList {
public:
    explicit TextList(sqlite3* db) : m_db(db) {}

    // The text of `id`; an id the table lacks fails with broken_chain, naming the
    // row's seq and column.
    AuditResult<std::string_view> text(std::int64_t id, std::uint64_t seq, std::string_view column);

private:
    AuditResult<void> read_from(std::int64_t first_id);

    sqlite3* m_db;
    Stmt m_more;
    std::deque<std::string> m_texts; // id 1 first; a deque, so that views stay valid
};

} // namespace flowgate::audit
