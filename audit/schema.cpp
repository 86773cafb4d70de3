// The audit file's schema and the row's columns in SQL; see schema.hpp.
#include "audit/schema.hpp"

#include "audit/sqlite.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <map>
#include <type_traits>
#include <unistd.h>
#include <vector>

namespace flowgate::audit {

namespace outcome = boost::outcome_v2;

namespace {

// The append-only rules live in the database so that they hold for every connection,
// the sqlite3 shell included. A correct seq (and, before version 4, prev_hash) with a
// forged hash still gets in; that is what the chain is for.
constexpr const char* linked_in_sequence = R"sql(
CREATE TRIGGER audit_log_in_sequence BEFORE INSERT ON audit_log
WHEN (NEW.seq - 1, NEW.prev_hash) IS NOT (SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1)
  AND NOT (NEW.seq IS 1
           AND NEW.prev_hash IS '0000000000000000000000000000000000000000000000000000000000000000'
           AND NOT EXISTS (SELECT 1 FROM audit_log))
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: seq must follow the last row and prev_hash must be its hash'); END;
)sql";

// Version 4 stores no prev_hash (it is the row before's hash): a row's seq must follow.
constexpr const char* in_sequence = R"sql(
CREATE TRIGGER audit_log_in_sequence BEFORE INSERT ON audit_log
WHEN NEW.seq IS NOT COALESCE((SELECT MAX(seq) FROM audit_log), 0) + 1
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: seq must follow the last row'); END;
)sql";

constexpr const char* no_update_or_delete = R"sql(
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE is not allowed'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE is not allowed'); END;)sql";

constexpr const char* policy_files = R"sql(
CREATE TABLE policy_files (
    policy_hash TEXT NOT NULL,
    name        TEXT NOT NULL,
    text        TEXT NOT NULL,
    stored_us   INTEGER NOT NULL,
    PRIMARY KEY (policy_hash, name)
);
CREATE TRIGGER policy_files_no_update BEFORE UPDATE ON policy_files
BEGIN SELECT RAISE(ABORT, 'policy_files is append-only: UPDATE is not allowed'); END;
CREATE TRIGGER policy_files_no_delete BEFORE DELETE ON policy_files
BEGIN SELECT RAISE(ABORT, 'policy_files is append-only: DELETE is not allowed'); END;
CREATE TRIGGER policy_files_once BEFORE INSERT ON policy_files
WHEN EXISTS (SELECT 1 FROM policy_files WHERE policy_hash = NEW.policy_hash AND name = NEW.name)
BEGIN SELECT RAISE(ABORT, 'policy_files is append-only: a stored file is never replaced'); END;
)sql";

// Version 3: the tree's stored nodes, the checkpoints and the log's origin, each
// append-only as the log is. A node, a checkpoint or the origin is written once and
// never changed; checkpoints are stored in the order of their tree sizes.
constexpr const char* tree_checkpoints_and_origin = R"sql(
CREATE TABLE audit_tree (
    end         INTEGER NOT NULL,
    level       INTEGER NOT NULL,
    hash        BLOB NOT NULL,
    PRIMARY KEY (end, level)
) WITHOUT ROWID;
CREATE TRIGGER audit_tree_no_update BEFORE UPDATE ON audit_tree
BEGIN SELECT RAISE(ABORT, 'audit_tree is append-only: UPDATE is not allowed'); END;
CREATE TRIGGER audit_tree_no_delete BEFORE DELETE ON audit_tree
BEGIN SELECT RAISE(ABORT, 'audit_tree is append-only: DELETE is not allowed'); END;
CREATE TRIGGER audit_tree_once BEFORE INSERT ON audit_tree
WHEN EXISTS (SELECT 1 FROM audit_tree WHERE end = NEW.end AND level = NEW.level)
BEGIN SELECT RAISE(ABORT, 'audit_tree is append-only: a stored node is never replaced'); END;

CREATE TABLE audit_checkpoint (
    tree_size   INTEGER NOT NULL,
    time_us     INTEGER NOT NULL,
    note        TEXT NOT NULL
);
CREATE TRIGGER audit_checkpoint_no_update BEFORE UPDATE ON audit_checkpoint
BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only: UPDATE is not allowed'); END;
CREATE TRIGGER audit_checkpoint_no_delete BEFORE DELETE ON audit_checkpoint
BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only: DELETE is not allowed'); END;
CREATE TRIGGER audit_checkpoint_in_order BEFORE INSERT ON audit_checkpoint
WHEN NEW.tree_size < (SELECT MAX(tree_size) FROM audit_checkpoint)
BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only: a checkpoint never shrinks the tree'); END;

CREATE TABLE audit_origin (
    origin      TEXT NOT NULL
);
CREATE TRIGGER audit_origin_no_update BEFORE UPDATE ON audit_origin
BEGIN SELECT RAISE(ABORT, 'audit_origin is append-only: UPDATE is not allowed'); END;
CREATE TRIGGER audit_origin_no_delete BEFORE DELETE ON audit_origin
BEGIN SELECT RAISE(ABORT, 'audit_origin is append-only: DELETE is not allowed'); END;
CREATE TRIGGER audit_origin_once BEFORE INSERT ON audit_origin
WHEN EXISTS (SELECT 1 FROM audit_origin)
BEGIN SELECT RAISE(ABORT, 'audit_origin is append-only: a log has one origin'); END;
)sql";

// Version 4: each text an interned column holds, stored once; ids 1, 2, 3, … in order,
// so that a reader can keep them in a list.
constexpr const char* interned_texts = R"sql(
CREATE TABLE audit_text (
    id          INTEGER PRIMARY KEY,
    text        TEXT NOT NULL UNIQUE
);
CREATE TRIGGER audit_text_no_update BEFORE UPDATE ON audit_text
BEGIN SELECT RAISE(ABORT, 'audit_text is append-only: UPDATE is not allowed'); END;
CREATE TRIGGER audit_text_no_delete BEFORE DELETE ON audit_text
BEGIN SELECT RAISE(ABORT, 'audit_text is append-only: DELETE is not allowed'); END;
CREATE TRIGGER audit_text_in_sequence BEFORE INSERT ON audit_text
WHEN NEW.id IS NOT COALESCE((SELECT MAX(id) FROM audit_text), 0) + 1
BEGIN SELECT RAISE(ABORT, 'audit_text is append-only: id must follow the last text'); END;
)sql";

std::string column_name(const AuditField& field, int version) {
    return field.interned(version) ? std::string(field.name) + "_id" : std::string(field.name);
}

// The rows as version 3 showed them, every column a text or an integer, prev_hash
// included: for the auditors' own queries and scripts.
std::string rows_view_sql(int version) {
    std::string sql = "\nCREATE VIEW audit_rows AS SELECT";
    const char* separator = "\n";
    for_each_field(
        [&](const AuditField& field, const auto& /*value*/) {
            if (!field.hashed(version) && field.role != FieldRole::prev_hash &&
                field.role != FieldRole::hash) {
                return;
            }
            sql += separator;
            separator = ",\n";
            if (field.interned(version)) {
                sql +=
                    "    (SELECT text FROM audit_text WHERE id = " + column_name(field, version) +
                    ") AS " + std::string(field.name);
            } else if (field.role == FieldRole::prev_hash) {
                sql += "    COALESCE((SELECT hash FROM audit_log AS before WHERE before.seq = "
                       "audit_log.seq - 1), '" +
                       std::string(64, '0') + "') AS prev_hash";
            } else {
                sql += "    " + std::string(field.name);
            }
        },
        AuditRowView{});
    sql += "\nFROM audit_log;\n";
    return sql;
}

// The SQL type of a field: the key, integers and texts.
template <class Value> std::string_view column_type(const AuditField& field, int version) {
    if (field.role == FieldRole::key) {
        return "INTEGER PRIMARY KEY";
    }
    return std::is_integral_v<Value> || field.interned(version) ? "INTEGER NOT NULL"
                                                                : "TEXT NOT NULL";
}

std::string make_schema_sql(int version) {
    std::string sql = "\nCREATE TABLE audit_log (";
    const char* separator = "\n";
    for_each_field(
        [&](const AuditField& field, const auto& value) {
            using Value = std::decay_t<decltype(value)>;
            if (!field.in_version(version)) {
                return;
            }
            std::string name = column_name(field, version);
            name.resize(std::max<std::size_t>(name.size(), 11), ' ');
            sql += separator;
            sql += "    " + name + " " + std::string(column_type<Value>(field, version));
            separator = ",\n";
        },
        AuditRowView{});
    sql += "\n);";
    sql += no_update_or_delete;
    sql += version >= 4 ? in_sequence : linked_in_sequence;
    sql += policy_files;
    if (version >= 3) {
        sql += tree_checkpoints_and_origin;
    }
    if (version >= 4) {
        sql += interned_texts;
        sql += rows_view_sql(version);
    }
    return sql;
}

void bind_field(sqlite3_stmt* stmt, int index, std::uint64_t seq) {
    sqlite3_bind_int64(stmt, index, static_cast<sqlite3_int64>(seq));
}
void bind_field(sqlite3_stmt* stmt, int index, std::int64_t value) {
    sqlite3_bind_int64(stmt, index, value);
}
void bind_field(sqlite3_stmt* stmt, int index, std::string_view text) {
    bind_text(stmt, index, text);
}

AuditResult<int> user_version(sqlite3* db) {
    auto stmt = prepare(db, "PRAGMA user_version", AuditErrc::bad_schema);
    if (!stmt) {
        return stmt.error();
    }
    if (sqlite3_step(stmt.value().get()) != SQLITE_ROW) {
        return outcome::failure(sqlite_error(db, AuditErrc::cannot_open, "reading the schema"));
    }
    return sqlite3_column_int(stmt.value().get(), 0);
}

// What sqlite_schema holds for one table, index, trigger or view, by name.
struct SchemaObject {
    std::string type;
    std::string table;
    std::string sql; // NULL (an index SQLite makes for a key) reads as ""
    bool operator==(const SchemaObject&) const = default;
};
using SchemaObjects = std::map<std::string, SchemaObject>;

AuditResult<SchemaObjects> schema_objects(sqlite3* db) {
    auto stmt =
        prepare(db, "SELECT name, type, tbl_name, sql FROM sqlite_schema", AuditErrc::bad_schema);
    if (!stmt) {
        return stmt.error();
    }
    SchemaObjects objects;
    int step = SQLITE_ROW;
    while ((step = sqlite3_step(stmt.value().get())) == SQLITE_ROW) {
        sqlite3_stmt* row = stmt.value().get();
        objects[std::string(column_view(row, 0))] =
            SchemaObject{std::string(column_view(row, 1)), std::string(column_view(row, 2)),
                         std::string(column_view(row, 3))};
    }
    if (step != SQLITE_DONE) {
        return outcome::failure(sqlite_error(db, AuditErrc::cannot_open, "reading the schema"));
    }
    return objects;
}

// The objects create_schema() makes, as SQLite records them: made once, in memory, so
// that the check compares against exactly what a new store holds.
const AuditResult<SchemaObjects>& created_schema_objects() {
    static const AuditResult<SchemaObjects> objects = []() -> AuditResult<SchemaObjects> {
        auto db = open_db(":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                          std::chrono::milliseconds(0));
        if (!db) {
            return db.error();
        }
        if (auto created = create_schema(db.value().get()); !created) {
            return created.error();
        }
        return schema_objects(db.value().get());
    }();
    return objects;
}

// "missing trigger X, trigger Y changed, unexpected trigger Z", or "" when alike.
std::string schema_differences(const SchemaObjects& expected, const SchemaObjects& found) {
    std::vector<std::string> differences;
    for (const auto& [name, object] : expected) {
        const auto there = found.find(name);
        if (there == found.end()) {
            differences.push_back("missing " + object.type + " " + name);
        } else if (there->second != object) {
            differences.push_back(object.type + " " + name + " changed");
        }
    }
    for (const auto& [name, object] : found) {
        if (!expected.contains(name)) {
            differences.push_back("unexpected " + object.type + " " + name);
        }
    }
    std::string out;
    for (const std::string& difference : differences) {
        out += (out.empty() ? "" : ", ") + difference;
    }
    return out;
}

} // namespace

const std::string& schema_sql() {
    static const std::string sql = make_schema_sql(schema_version);
    return sql;
}

std::string schema_sql(int version) {
    return make_schema_sql(version);
}

std::string audit_columns(int version) {
    std::string out;
    for_each_field(
        [&out, version](const AuditField& field, const auto& /*value*/) {
            if (field.in_version(version)) {
                out += out.empty() ? "" : ", ";
                out += column_name(field, version);
            }
        },
        AuditRowView{});
    return out;
}

const std::string& audit_columns() {
    static const std::string columns = audit_columns(schema_version);
    return columns;
}

const std::string& insert_row_sql() {
    static const std::string sql = [] {
        std::string parameters;
        for_each_field(
            [&parameters](const AuditField& field, const auto& /*value*/) {
                if (field.in_version(schema_version)) {
                    parameters += parameters.empty() ? "?" : ", ?";
                }
            },
            AuditRowView{});
        return "INSERT INTO audit_log (" + audit_columns() + ") VALUES (" + parameters + ")";
    }();
    return sql;
}

bool bind_row(sqlite3_stmt* stmt, const AuditRowView& row, TextIds& texts) {
    int index = 0;
    bool bound = true;
    for_each_field(
        [&](const AuditField& field, const auto& value) {
            using Value = std::decay_t<decltype(value)>;
            if (!field.in_version(schema_version)) {
                return;
            }
            ++index;
            if constexpr (std::is_same_v<Value, std::string_view>) {
                if (field.interned(schema_version)) {
                    const auto id = texts.id_of(value);
                    bound = bound && id.has_value();
                    sqlite3_bind_int64(stmt, index, id.value_or(0));
                    return;
                }
            }
            bind_field(stmt, index, value);
        },
        row);
    return bound;
}

AuditResult<int> readable_schema_version(sqlite3* db, const std::filesystem::path& path) {
    auto version = user_version(db);
    if (!version) {
        return version.error();
    }
    if (version.value() < oldest_readable_schema_version || version.value() > schema_version) {
        return outcome::failure(AuditError{
            AuditErrc::bad_schema,
            path.string() + " is not a flowgate audit store of a version this flowgate reads (" +
                std::to_string(oldest_readable_schema_version) + " to " +
                std::to_string(schema_version) + "): its user_version is " +
                std::to_string(version.value())});
    }
    return version.value();
}

std::string default_log_origin() {
    std::array<char, 256> host{};
    if (::gethostname(host.data(), host.size() - 1) != 0 || host[0] == '\0') {
        std::strcpy(host.data(), "localhost");
    }
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    ::gmtime_r(&now, &utc);
    std::array<char, 32> stamp{};
    std::strftime(stamp.data(), stamp.size(), "%Y%m%dT%H%M%SZ", &utc);
    return std::string(host.data()) + "/flowgate/" + stamp.data();
}

AuditResult<void> create_schema(sqlite3* db, std::string_view origin) {
    if (auto begun = exec(db, "BEGIN IMMEDIATE", AuditErrc::cannot_open, "creating the schema");
        !begun) {
        return begun;
    }
    auto rollback_with = [&](AuditError error) {
        sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        return outcome::failure(std::move(error));
    };
    auto existing = schema_objects(db);
    if (!existing) {
        return rollback_with(existing.error());
    }
    if (!existing.value().empty()) {
        return rollback_with(AuditError{AuditErrc::bad_schema,
                                        "the file holds tables but is not a flowgate audit store"});
    }
    if (auto created =
            exec(db, schema_sql().c_str(), AuditErrc::cannot_open, "creating the schema");
        !created) {
        return rollback_with(created.error());
    }
    auto insert_origin =
        prepare(db, "INSERT INTO audit_origin (origin) VALUES (?1)", AuditErrc::cannot_open);
    if (!insert_origin) {
        return rollback_with(insert_origin.error());
    }
    const std::string chosen = origin.empty() ? default_log_origin() : std::string(origin);
    bind_text(insert_origin.value().get(), 1, chosen);
    if (sqlite3_step(insert_origin.value().get()) != SQLITE_DONE) {
        return rollback_with(sqlite_error(db, AuditErrc::cannot_open, "storing the log's origin"));
    }
    insert_origin.value().reset();
    const std::string set_version = "PRAGMA user_version = " + std::to_string(schema_version);
    if (auto set = exec(db, set_version.c_str(), AuditErrc::cannot_open, "creating the schema");
        !set) {
        return rollback_with(set.error());
    }
    return exec(db, "COMMIT", AuditErrc::cannot_open, "creating the schema");
}

AuditResult<void> check_schema(sqlite3* db, const std::filesystem::path& path) {
    auto version = user_version(db);
    if (!version) {
        return version.error();
    }
    auto found = schema_objects(db);
    if (!found) {
        return found.error();
    }
    if (version.value() == 0 && found.value().empty()) {
        return outcome::failure(
            AuditError{AuditErrc::bad_schema, path.string() + " is empty, not an audit store; " +
                                                  std::string(create_store_hint)});
    }
    if (version.value() == 0) {
        return outcome::failure(AuditError{
            AuditErrc::bad_schema,
            path.string() + ": the file holds tables but is not a flowgate audit store"});
    }
    if (version.value() >= oldest_readable_schema_version && version.value() < schema_version) {
        return outcome::failure(AuditError{
            AuditErrc::bad_schema,
            path.string() + " is an audit store of schema version " +
                std::to_string(version.value()) + "; this flowgated writes version " +
                std::to_string(schema_version) +
                ". The auditor's tools (`flowgate audit verify`, `records`, `export`, "
                "`replay`) still read it: keep it, unchanged, as the record of its period, and "
                "make a new store at another path with `flowgated --init-store` (as the user "
                "flowgated runs as)"});
    }
    if (version.value() != schema_version) {
        return outcome::failure(AuditError{
            AuditErrc::bad_schema, "audit store schema version " + std::to_string(version.value()) +
                                       ", expected " + std::to_string(schema_version)});
    }
    const auto& expected = created_schema_objects();
    if (!expected) {
        return expected.error();
    }
    const std::string differences = schema_differences(expected.value(), found.value());
    if (!differences.empty()) {
        return outcome::failure(
            AuditError{AuditErrc::bad_schema,
                       path.string() +
                           " is not the schema flowgate creates (its append-only protection may "
                           "have been removed or changed): " +
                           differences});
    }
    return outcome::success();
}

} // namespace flowgate::audit
