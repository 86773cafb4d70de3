// The audit file's schema and the row's columns in SQL; see schema.hpp.
#include "audit/schema.hpp"

#include "audit/sqlite.hpp"

#include <cstdint>
#include <type_traits>

namespace flowgate::audit {

namespace outcome = boost::outcome_v2;

namespace {

// The append-only rules live in the database so that they hold for every connection,
// the sqlite3 shell included. A correct seq and prev_hash with a forged hash still
// gets in; that is what the chain is for.
constexpr const char* triggers_and_policy_files = R"sql(
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE is not allowed'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE is not allowed'); END;
CREATE TRIGGER audit_log_in_sequence BEFORE INSERT ON audit_log
WHEN (NEW.seq - 1, NEW.prev_hash) IS NOT (SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1)
  AND NOT (NEW.seq IS 1
           AND NEW.prev_hash IS '0000000000000000000000000000000000000000000000000000000000000000'
           AND NOT EXISTS (SELECT 1 FROM audit_log))
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: seq must follow the last row and prev_hash must be its hash'); END;

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

// The SQL type of a field: the key, integers and texts.
template <class Value> std::string_view column_type(const AuditField& field) {
    if (field.role == FieldRole::key) {
        return "INTEGER PRIMARY KEY";
    }
    return std::is_integral_v<Value> ? "INTEGER NOT NULL" : "TEXT NOT NULL";
}

std::string make_schema_sql() {
    std::string sql = "\nCREATE TABLE audit_log (";
    const char* separator = "\n";
    for_each_field(
        [&](const AuditField& field, const auto& value) {
            using Value = std::decay_t<decltype(value)>;
            std::string name(field.name);
            name.resize(std::max<std::size_t>(name.size(), 11), ' ');
            sql += separator;
            sql += "    " + name + " " + std::string(column_type<Value>(field));
            separator = ",\n";
        },
        AuditRowView{});
    sql += "\n);";
    sql += triggers_and_policy_files;
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

void read_field(sqlite3_stmt* stmt, int column, std::uint64_t& seq) {
    seq = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, column));
}
void read_field(sqlite3_stmt* stmt, int column, std::int64_t& value) {
    value = sqlite3_column_int64(stmt, column);
}
void read_field(sqlite3_stmt* stmt, int column, std::string_view& text) {
    text = column_view(stmt, column);
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

} // namespace

const std::string& schema_sql() {
    static const std::string sql = make_schema_sql();
    return sql;
}

const std::string& audit_columns() {
    static const std::string columns = [] {
        std::string out;
        for_each_field(
            [&out](const AuditField& field, const auto& /*value*/) {
                out += out.empty() ? "" : ", ";
                out += field.name;
            },
            AuditRowView{});
        return out;
    }();
    return columns;
}

const std::string& insert_row_sql() {
    static const std::string sql = [] {
        std::string parameters;
        for_each_field(
            [&parameters](const AuditField& /*field*/, const auto& /*value*/) {
                parameters += parameters.empty() ? "?" : ", ?";
            },
            AuditRowView{});
        return "INSERT INTO audit_log (" + audit_columns() + ") VALUES (" + parameters + ")";
    }();
    return sql;
}

void bind_row(sqlite3_stmt* stmt, const AuditRowView& row) {
    int index = 0;
    for_each_field([stmt, &index](const AuditField& /*field*/,
                                  const auto& value) { bind_field(stmt, ++index, value); },
                   row);
}

AuditRowView read_row(sqlite3_stmt* stmt) {
    AuditRowView row;
    int column = 0;
    for_each_field([stmt, &column](const AuditField& /*field*/,
                                   auto& value) { read_field(stmt, column++, value); },
                   row);
    return row;
}

AuditResult<void> check_schema_version(sqlite3* db, const std::filesystem::path& path) {
    auto version = user_version(db);
    if (!version) {
        return version.error();
    }
    if (version.value() != schema_version) {
        return outcome::failure(AuditError{
            AuditErrc::bad_schema, path.string() + " is not a flowgate audit store (version " +
                                       std::to_string(schema_version) + ")"});
    }
    return outcome::success();
}

AuditResult<void> ensure_schema(sqlite3* db) {
    auto version = user_version(db);
    if (!version) {
        return version.error();
    }
    if (version.value() == schema_version) {
        return outcome::success();
    }
    if (version.value() != 0) {
        return outcome::failure(AuditError{
            AuditErrc::bad_schema, "audit store schema version " + std::to_string(version.value()) +
                                       ", expected " + std::to_string(schema_version)});
    }
    if (auto begun = exec(db, "BEGIN IMMEDIATE", AuditErrc::cannot_open, "creating the schema");
        !begun) {
        return begun;
    }
    auto rollback_with = [&](AuditError error) {
        sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        return outcome::failure(std::move(error));
    };
    auto tables = prepare(db, "SELECT COUNT(*) FROM sqlite_schema", AuditErrc::bad_schema);
    if (!tables) {
        return rollback_with(tables.error());
    }
    if (sqlite3_step(tables.value().get()) != SQLITE_ROW) {
        return rollback_with(sqlite_error(db, AuditErrc::cannot_open, "reading the schema"));
    }
    const auto existing = sqlite3_column_int64(tables.value().get(), 0);
    tables.value().reset();
    if (existing != 0) {
        return rollback_with(AuditError{AuditErrc::bad_schema,
                                        "the file holds tables but is not a flowgate audit store"});
    }
    if (auto created =
            exec(db, schema_sql().c_str(), AuditErrc::cannot_open, "creating the schema");
        !created) {
        return rollback_with(created.error());
    }
    const std::string set_version = "PRAGMA user_version = " + std::to_string(schema_version);
    if (auto set = exec(db, set_version.c_str(), AuditErrc::cannot_open, "creating the schema");
        !set) {
        return rollback_with(set.error());
    }
    return exec(db, "COMMIT", AuditErrc::cannot_open, "creating the schema");
}

} // namespace flowgate::audit
