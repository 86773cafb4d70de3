// The schema is derived from the field table: a created store's audit_log has exactly
// the table's columns, and every field goes into its own column and comes back from it.
// A store is made only by create(), and open() refuses one whose schema is not exactly
// what create() makes.
#include "audit/schema.hpp"
#include "audit/sqlite.hpp"
#include "tests/unit/audit/fixture.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <iterator>
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
    new_store(path)->close();
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
    REQUIRE(create_schema(db));

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
    new_store(path)->close();
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

TEST_CASE("schema: a missing store is not created by open, and create never replaces one",
          "[audit]") {
    TempDir dir;
    const auto path = dir.path() / "audit.db";
    SECTION("open of a missing file fails, naming --init-store, and makes no file") {
        const auto opened = AuditStore::open(path);
        REQUIRE_FALSE(opened);
        CHECK(opened.error().code == AuditErrc::cannot_open);
        CHECK_THAT(opened.error().message,
                   Catch::Contains(path.string()) && Catch::Contains("--init-store"));
        CHECK_FALSE(fs::exists(path));
    }
    SECTION("an empty file is refused, naming --init-store") {
        { std::ofstream touch(path); }
        const auto opened = AuditStore::open(path);
        REQUIRE_FALSE(opened);
        CHECK(opened.error().code == AuditErrc::bad_schema);
        CHECK_THAT(opened.error().message,
                   Catch::Contains("is empty") && Catch::Contains("--init-store"));
    }
    SECTION("create refuses an existing store, and its rows stay") {
        write_store(path, 1);
        const auto again = AuditStore::create(path);
        REQUIRE_FALSE(again);
        CHECK(again.error().code == AuditErrc::cannot_open);
        CHECK_THAT(again.error().message, Catch::Contains("exists"));
        check_intact(path, 1);
    }
    SECTION("create refuses a WAL left behind under the store's name") {
        { std::ofstream wal(path.string() + "-wal"); }
        const auto made = AuditStore::create(path);
        REQUIRE_FALSE(made);
        CHECK_THAT(made.error().message, Catch::Contains("-wal exists"));
        CHECK_FALSE(fs::exists(path));
    }
    SECTION("create leaves only the store behind") {
        new_store(path)->close();
        std::vector<std::string> names;
        for (const auto& entry : fs::directory_iterator(dir.path())) {
            names.push_back(entry.path().filename().string());
        }
        std::sort(names.begin(), names.end());
        // The WAL and its index stay once a connection made them; no temporary file does.
        for (const std::string& name : names) {
            CHECK(name.starts_with("audit.db"));
            CHECK(name.find(".new-") == std::string::npos);
        }
    }
}

TEST_CASE("schema: a store whose tables, triggers or indexes differ from a new one's is refused "
          "by name",
          "[audit]") {
    TempDir dir;
    const auto path = dir.path() / "audit.db";
    write_store(path, 1);
    auto refused_with = [&](const std::string& sql) {
        INFO(sql);
        const ShellResult edited = sqlite3_shell_run(path, sql);
        INFO(edited.output);
        REQUIRE(edited.status == 0);
        const auto opened = AuditStore::open(path);
        REQUIRE_FALSE(opened);
        CHECK(opened.error().code == AuditErrc::bad_schema);
        return opened.error().message;
    };
    for (const char* trigger :
         {"audit_log_no_update", "audit_log_no_delete", "audit_log_in_sequence",
          "policy_files_no_update", "policy_files_no_delete", "policy_files_once"}) {
        DYNAMIC_SECTION("trigger " << trigger << " dropped") {
            CHECK_THAT(refused_with(std::string("DROP TRIGGER ") + trigger),
                       Catch::Contains(std::string("missing trigger ") + trigger));
        }
    }
    SECTION("a trigger replaced by one that does nothing") {
        CHECK_THAT(refused_with("DROP TRIGGER audit_log_no_delete; CREATE TRIGGER "
                                "audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT 1; "
                                "END;"),
                   Catch::EndsWith(": trigger audit_log_no_delete changed"));
    }
    SECTION("an extra trigger that silently ignores inserts") {
        CHECK_THAT(refused_with("CREATE TRIGGER swallow BEFORE INSERT ON audit_log BEGIN SELECT "
                                "RAISE(IGNORE); END;"),
                   Catch::EndsWith(": unexpected trigger swallow"));
    }
    SECTION("a table changed (a column added) and an index added") {
        const std::string message = refused_with("ALTER TABLE policy_files ADD COLUMN note TEXT; "
                                                 "CREATE INDEX by_kind ON audit_log(kind)");
        CHECK_THAT(message, Catch::Contains("table policy_files changed"));
        CHECK_THAT(message, Catch::Contains("unexpected index by_kind"));
    }
    SECTION("a view put in a table's place") {
        const std::string message = refused_with("ALTER TABLE audit_log RENAME TO old_log; CREATE "
                                                 "VIEW audit_log AS SELECT * FROM old_log");
        CHECK_THAT(message, Catch::Contains("table audit_log changed"));
        CHECK_THAT(message, Catch::Contains("unexpected table old_log"));
    }
    SECTION("an unchanged store still opens") {
        CHECK(AuditStore::open(path));
    }
}

TEST_CASE("schema: a store made by the first release (its schema text as that release wrote "
          "it) is opened and written",
          "[audit]") {
    // Stores made before the schema was generated from the field table: the generated
    // text must stay byte for byte what they hold, or the check at open refuses them.
    std::ifstream in(FLOWGATE_SOURCE_DIR "/tests/unit/audit/data/schema-v1.sql");
    REQUIRE(in);
    const std::string first_release((std::istreambuf_iterator<char>(in)),
                                    std::istreambuf_iterator<char>());
    CHECK(first_release == schema_sql());
    TempDir dir;
    const auto path = dir.path() / "audit.db";
    REQUIRE(sqlite3_shell(path, first_release + "PRAGMA user_version = 1;") == 0);
    auto store = AuditStore::open(path);
    INFO((store ? std::string() : store.error().message));
    REQUIRE(store);
    CHECK(appended(*store.value(), check_record(1)) == 1);
    store.value()->close();
    check_intact(path, 1);
}
