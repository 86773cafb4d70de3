// The schema is derived from the field table: a created store's audit_log has exactly
// the table's columns, and every field goes into its own column and comes back from it.
#include "audit/schema.hpp"
#include "audit/sqlite.hpp"
#include "tests/unit/audit/fixture.hpp"

#include <catch2/catch.hpp>

#include <type_traits>
#include <vector>

using namespace flowgate::audit;
using namespace flowgate::audit::testing;

namespace {

struct Column {
    std::string name;
    std::string type;
    bool not_null = false;
    bool primary_key = false;
    bool operator==(const Column&) const = default;
};

std::ostream& operator<<(std::ostream& out, const Column& column) {
    return out << column.name << " " << column.type << (column.not_null ? " NOT NULL" : "")
               << (column.primary_key ? " PRIMARY KEY" : "");
}

// The columns as the field table says they must be.
std::vector<Column> columns_of_field_table() {
    std::vector<Column> out;
    for_each_field(
        [&out](const AuditField& field, const auto& value) {
            using Value = std::decay_t<decltype(value)>;
            const bool key = field.role == FieldRole::key;
            out.push_back(Column{std::string(field.name),
                                 std::is_integral_v<Value> ? "INTEGER" : "TEXT", !key, key});
        },
        AuditRowView{});
    return out;
}

// The columns as SQLite reports them for a store's file.
std::vector<Column> columns_in_file(sqlite3* db) {
    auto stmt = prepare(db, "PRAGMA table_info(audit_log)", AuditErrc::bad_schema);
    REQUIRE(stmt);
    std::vector<Column> out;
    while (sqlite3_step(stmt.value().get()) == SQLITE_ROW) {
        sqlite3_stmt* row = stmt.value().get();
        out.push_back(Column{std::string(column_view(row, 1)), std::string(column_view(row, 2)),
                             sqlite3_column_int(row, 3) != 0, sqlite3_column_int(row, 5) != 0});
    }
    return out;
}

} // namespace

TEST_CASE("schema: a created store's audit_log has exactly the field table's columns", "[audit]") {
    TempDir dir;
    const auto path = dir.path() / "audit.db";
    open_store(path)->close();
    auto db = open_read_only(path);
    REQUIRE(db);
    const auto expected = columns_of_field_table();
    CHECK(columns_in_file(db.value().get()) == expected);
    CHECK(audit_columns().starts_with("seq, time_us, kind, "));
    CHECK(audit_columns().ends_with(", prev_hash, hash"));
}

TEST_CASE("schema: every field is written to its own column and read back from it", "[audit]") {
    auto opened = open_db(":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                          std::chrono::milliseconds(100));
    REQUIRE(opened);
    sqlite3* db = opened.value().get();
    REQUIRE(ensure_schema(db));

    // A distinct value in every field, so that two fields swapped anywhere show.
    AuditRecord record;
    int n = 0;
    for_each_field(
        [&n](const AuditField& field, auto& value) {
            using Value = std::decay_t<decltype(value)>;
            ++n;
            if constexpr (std::is_same_v<Value, std::string>) {
                value = std::string(field.name) + "-" + std::to_string(n);
            } else {
                value = static_cast<Value>(1000 + n);
            }
        },
        record);
    record.seq = 1;
    record.prev_hash = std::string(genesis_hex);
    REQUIRE(exec(db, "DROP TRIGGER audit_log_in_sequence", AuditErrc::bad_schema, "test"));

    auto insert = prepare(db, insert_row_sql(), AuditErrc::bad_schema);
    REQUIRE(insert);
    bind_row(insert.value().get(), view_of(record));
    REQUIRE(step_once(insert.value().get()));

    auto select =
        prepare(db, "SELECT " + audit_columns() + " FROM audit_log", AuditErrc::bad_schema);
    REQUIRE(select);
    REQUIRE(sqlite3_step(select.value().get()) == SQLITE_ROW);
    const AuditRecord back = record_of(read_row(select.value().get()));
    for_each_field(
        [](const AuditField& field, const auto& written, const auto& read) {
            INFO(field.name);
            CHECK(written == read);
        },
        record, back);
    // And the column named for each field holds that field's value.
    auto purpose = prepare(db, "SELECT purpose, uid FROM audit_log", AuditErrc::bad_schema);
    REQUIRE(purpose);
    REQUIRE(sqlite3_step(purpose.value().get()) == SQLITE_ROW);
    CHECK(column_view(purpose.value().get(), 0) == record.purpose);
    CHECK(sqlite3_column_int64(purpose.value().get(), 1) == record.uid);
}

TEST_CASE("schema: a store of another schema version is refused by the writer and the readers",
          "[audit]") {
    TempDir dir;
    const auto path = dir.path() / "audit.db";
    open_store(path)->close();
    REQUIRE(sqlite3_shell(path, "PRAGMA user_version = 2") == 0);

    const auto writer = AuditStore::open(path);
    REQUIRE_FALSE(writer);
    CHECK(writer.error().code == AuditErrc::bad_schema);
    CHECK_THAT(writer.error().message, Catch::Contains("schema version 2, expected 1"));
    const auto reader = AuditReader::open(path);
    REQUIRE_FALSE(reader);
    CHECK(reader.error().code == AuditErrc::bad_schema);
    CHECK_THAT(reader.error().message, Catch::Contains("is not a flowgate audit store"));
}
