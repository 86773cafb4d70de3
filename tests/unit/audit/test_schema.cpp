// The schema is derived from the field table: a created store's audit_log has exactly
// the table's columns, and every field goes into its own column and comes back from it;
// version 1's schema is the table's version-1 fields, and the document shows the same
// statements. A store is made only by create(), and open() refuses one whose schema is
// not exactly what create() makes, a version-1 store with what to do about it.
#include "audit/row_select.hpp"
#include "audit/schema.hpp"
#include "audit/sqlite.hpp"
#include "audit/verifier.hpp"
#include "tests/unit/audit/fixture.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <sstream>
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
            if (!field.in_version(schema_version)) {
                return;
            }
            const bool key = field.role == FieldRole::key;
            const bool interned = field.interned(schema_version);
            out.push_back(Column{std::string(field.name) + (interned ? "_id" : ""),
                                 std::is_integral_v<Value> || interned ? "INTEGER" : "TEXT", !key,
                                 key});
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
    CHECK(audit_columns().starts_with("seq, time_us, kind_id, uid, "));
    CHECK(audit_columns().ends_with(", subject, detail, hash"));
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
    record.prev_hash = std::string(genesis_hex); // not stored: the reader gives row 1's

    auto insert = prepare(db, insert_row_sql(), AuditErrc::bad_schema);
    REQUIRE(insert);
    auto texts = TextIds::open(db);
    REQUIRE(texts);
    REQUIRE(bind_row(insert.value().get(), view_of(record), texts.value()));
    REQUIRE(step_once(insert.value().get()));

    auto select = RowSelect::prepare(db, schema_version, "");
    REQUIRE(select);
    auto first = select.value().next();
    REQUIRE(first);
    REQUIRE(first.value());
    const AuditRecord back = record_of(*first.value());
    for_each_field(
        [](const AuditField& field, const auto& written, const auto& read) {
            INFO(field.name);
            CHECK(written == read);
        },
        record, back);
    // And the column named for each field holds that field's value (in the view, for an
    // interned one).
    auto purpose = prepare(db, "SELECT purpose, uid FROM audit_rows", AuditErrc::bad_schema);
    REQUIRE(purpose);
    REQUIRE(sqlite3_step(purpose.value().get()) == SQLITE_ROW);
    CHECK(column_view(purpose.value().get(), 0) == record.purpose);
    CHECK(sqlite3_column_int64(purpose.value().get(), 1) == record.uid);
}

TEST_CASE("schema: a store of a version this flowgate does not know is refused by the writer "
          "and the readers",
          "[audit]") {
    TempDir dir;
    const auto path = dir.path() / "audit.db";
    new_store(path)->close();
    REQUIRE(sqlite3_shell(path, "PRAGMA user_version = 5") == 0);

    const auto writer = AuditStore::open(path);
    REQUIRE_FALSE(writer);
    CHECK(writer.error().code == AuditErrc::bad_schema);
    CHECK_THAT(writer.error().message, Catch::Contains("schema version 5, expected 4"));
    const auto reader = AuditReader::open(path);
    REQUIRE_FALSE(reader);
    CHECK(reader.error().code == AuditErrc::bad_schema);
    CHECK_THAT(reader.error().message,
               Catch::Contains("is not a flowgate audit store of a version this flowgate reads "
                               "(1 to 4): its user_version is 5"));
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
          "policy_files_no_update", "policy_files_no_delete", "policy_files_once",
          "audit_text_no_update", "audit_text_no_delete", "audit_text_in_sequence"}) {
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
                                                 "CREATE INDEX by_kind ON audit_log(kind_id)");
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

TEST_CASE("schema: version 1's schema is the field table's version-1 fields, byte for byte as "
          "the first release wrote it",
          "[audit]") {
    // The fields marked since 2 are exactly the ones version 1 lacks: the reader selects,
    // and the verifier hashes, the version-1 columns by these marks.
    CHECK(v1_schema_sql() == schema_sql(1));
    CHECK(audit_columns(1) == "seq, time_us, kind, uid, gid, pid, service, request, decision, "
                              "reason, rule, rule_source, legal_basis, obligations, policy_hash, "
                              "purpose, activity, recipient, direction, data, subject, detail, "
                              "prev_hash, hash");
    CHECK(audit_columns(3) == "seq, time_us, kind, uid, gid, pid, service, request, "
                              "request_encoding, request_bytes, request_sha256, decision, reason, "
                              "rule, rule_source, legal_basis, obligations, policy_hash, purpose, "
                              "activity, recipient, direction, data, subject, detail, prev_hash, "
                              "hash");
    CHECK(audit_columns() ==
          "seq, time_us, kind_id, uid, gid, pid, service_id, request, request_encoding_id, "
          "request_bytes, request_sha256, decision_id, reason_id, rule_id, rule_source_id, "
          "legal_basis_id, obligations_id, policy_hash_id, purpose_id, activity_id, "
          "recipient_id, direction_id, data_id, subject, detail, hash");
    CHECK(schema_sql() == schema_sql(schema_version));
}

TEST_CASE("schema: a version-1 store is refused by the writer, saying the tools still read it "
          "and how to start a new one",
          "[audit]") {
    TempDir dir;
    const auto path = dir.path() / "audit.db";
    write_v1_store(path, {check_record(1)});
    const auto opened = AuditStore::open(path);
    REQUIRE_FALSE(opened);
    CHECK(opened.error().code == AuditErrc::bad_schema);
    CHECK_THAT(opened.error().message,
               Catch::StartsWith(path.string() + " is an audit store of schema version 1; this "
                                                 "flowgated writes version 4") &&
                   Catch::Contains("`flowgate audit verify`") &&
                   Catch::Contains("the record of its period") &&
                   Catch::Contains("at another path with `flowgated --init-store`"));
    // Refused before anything was written: the store is as the first release left it.
    CHECK(sqlite3_shell_run(path, "PRAGMA user_version").output == "1\n");
    CHECK(sqlite3_shell_run(path, "SELECT COUNT(*) FROM audit_log").output == "1\n");
}

TEST_CASE("schema: a version-1 store is read with the columns it has, the new fields at their "
          "defaults",
          "[audit]") {
    TempDir dir;
    const auto path = dir.path() / "audit.db";
    AuditRecord raw = check_record(2);
    raw.request = "{\"op\":\"check\",\"purpose\":\"\xff\xfe\"}"; // as version 1 stored bytes
    write_v1_store(path, {check_record(1), raw});
    auto reader = reader_of(path);
    CHECK(reader->schema_version() == 1);
    auto rows = reader->rows();
    REQUIRE(rows);
    REQUIRE(rows.value().size() == 2);
    const AuditRecord& first = rows.value()[0];
    CHECK(first.seq == 1);
    CHECK(first.request == check_record(1).request);
    CHECK(first.subject == "p-1");
    CHECK(first.detail.empty());
    CHECK(first.request_encoding.empty());
    CHECK(first.request_bytes == 0);
    CHECK(first.request_sha256.empty());
    CHECK(rows.value()[1].request == raw.request);
    CHECK(rows.value()[1].prev_hash == first.hash);
}

TEST_CASE("schema: the CREATE TABLE statements of docs/audit-store.md are the ones the field "
          "table generates",
          "[audit]") {
    std::ifstream in(FLOWGATE_SOURCE_DIR "/docs/audit-store.md");
    REQUIRE(in);
    const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // A statement as the document shows it, without its comments and their padding.
    auto documented = [&doc](const std::string& table) {
        const std::string opening = "CREATE TABLE " + table + " (";
        const auto begin = doc.find(opening);
        REQUIRE(begin != std::string::npos);
        const auto end = doc.find("\n);", begin);
        REQUIRE(end != std::string::npos);
        std::string out;
        std::istringstream lines(doc.substr(begin, end + 3 - begin));
        std::string line;
        while (std::getline(lines, line)) {
            line = line.substr(0, line.find("--"));
            line.erase(line.find_last_not_of(' ') + 1);
            out += (out.empty() ? "" : "\n") + line;
        }
        return out;
    };
    auto generated = [](const std::string& table) {
        const std::string& sql = schema_sql();
        const auto begin = sql.find("CREATE TABLE " + table + " (");
        REQUIRE(begin != std::string::npos);
        return sql.substr(begin, sql.find("\n);", begin) + 3 - begin);
    };
    CHECK(documented("audit_log") == generated("audit_log"));
    CHECK(documented("policy_files") == generated("policy_files"));
    CHECK_THAT(doc, Catch::Contains("## Schema (version " + std::to_string(schema_version) +
                                    ", `PRAGMA user_version = " + std::to_string(schema_version) +
                                    "`)"));
}

TEST_CASE("schema: a version-3 store is read and verified as it is, and its rows hash as the "
          "same rows of a version-4 store",
          "[audit]") {
    TempDir dir;
    std::vector<AuditRecord> records;
    for (int n = 1; n <= 40; ++n) {
        AuditRecord record =
            check_record(n, n % 3 == 0 ? AuditDecision::deny : AuditDecision::allow);
        record.time_us = 1'700'000'000'000'000 + n;
        record.reason = n % 3 == 0 ? "no rule permits p-" + std::to_string(n) : "permitted";
        records.push_back(record);
    }
    const auto old_path = dir.path() / "v3.db";
    write_old_store(old_path, 3, records);
    const auto new_path = dir.path() / "v4.db";
    {
        auto store = new_store(new_path);
        for (const AuditRecord& record : records) {
            appended(*store, record);
        }
    }
    auto old_reader = reader_of(old_path);
    CHECK(old_reader->schema_version() == 3);
    auto verified = verify_log(*old_reader);
    REQUIRE(verified);
    CHECK_FALSE(verified.value().fault);
    CHECK(verified.value().tree_checked);
    CHECK_FALSE(verified.value().tree_fault);
    CHECK(verified.value().rows == records.size());

    auto new_reader = reader_of(new_path);
    CHECK(new_reader->schema_version() == schema_version);
    auto old_rows = old_reader->rows();
    auto new_rows = new_reader->rows();
    REQUIRE(old_rows);
    REQUIRE(new_rows);
    // The version-4 store begins with its init row only when the daemon makes it: these
    // stores hold the same rows, so the same fields, links and hashes.
    REQUIRE(old_rows.value().size() == new_rows.value().size());
    for (std::size_t i = 0; i < old_rows.value().size(); ++i) {
        INFO("row " << i + 1);
        CHECK(old_rows.value()[i].reason == new_rows.value()[i].reason);
        CHECK(old_rows.value()[i].decision == new_rows.value()[i].decision);
        CHECK(old_rows.value()[i].prev_hash == new_rows.value()[i].prev_hash);
        CHECK(old_rows.value()[i].hash == new_rows.value()[i].hash);
    }
    auto old_root = old_reader->tree_root(records.size());
    auto new_root = new_reader->tree_root(records.size());
    REQUIRE(old_root);
    REQUIRE(new_root);
    CHECK(old_root.value() == new_root.value());
}

TEST_CASE("schema: version 4 stores each repeated text once, and audit_rows shows the rows whole",
          "[audit]") {
    TempDir dir;
    const auto path = dir.path() / "audit.db";
    {
        auto store = new_store(path);
        for (int n = 1; n <= 50; ++n) {
            appended(*store, check_record(n));
        }
    }
    // 50 rows of one service, decision, kind and policy: their texts are there once each.
    CHECK(sqlite3_shell_run(path, "SELECT COUNT(*) FROM audit_text WHERE text = 'allow'").output ==
          "1\n");
    CHECK(sqlite3_shell_run(path, "SELECT COUNT(DISTINCT decision_id) FROM audit_log").output ==
          "1\n");
    // The view gives back every field as the reader reads it, prev_hash included.
    auto rows = reader_of(path)->rows();
    REQUIRE(rows);
    const AuditRecord& seventh = rows.value()[6];
    CHECK(sqlite3_shell_run(path, "SELECT kind || '|' || decision || '|' || subject || '|' || "
                                  "prev_hash || '|' || hash FROM audit_rows WHERE seq = 7")
              .output == seventh.kind + "|" + seventh.decision + "|" + seventh.subject + "|" +
                             seventh.prev_hash + "|" + seventh.hash + "\n");
    CHECK(seventh.prev_hash == rows.value()[5].hash);
    // A text id the table lacks (someone edited the row) is named by the reader.
    REQUIRE(sqlite3_shell(path, "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET "
                                "reason_id = 999 WHERE seq = 9") == 0);
    auto broken = reader_of(path)->rows();
    REQUIRE_FALSE(broken);
    CHECK_THAT(broken.error().message,
               Catch::Contains("row 9: its reason is text 999, which audit_text does not hold"));
}
