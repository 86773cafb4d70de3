// The one chain verifier, alone and as the parallel verify runs it: a long log is cut
// into parts checked side by side, whose seams are checked after; with a small part
// size (a parameter), every kind of fault inside a part and exactly at a seam is found
// at the same seq and in the same words as one sequential pass finds it.
#include "audit/merkle.hpp"
#include "audit/parts.hpp"
#include "audit/verifier.hpp"
#include "tests/unit/audit/fixture.hpp"

#include <catch2/catch.hpp>

using namespace flowgate::audit;
using namespace flowgate::audit::testing;

namespace {

// Ten rows, verified in parts [1, 3], [4, 6], [7, 9] and [10, …].
constexpr int log_rows = 10;

VerifyOptions in_parts(std::optional<Checkpoint> checkpoint = std::nullopt) {
    VerifyOptions options;
    options.checkpoint = std::move(checkpoint);
    options.pass.threads = 4;
    options.pass.split_from_rows = 1;
    return options;
}

VerifyOptions in_one_pass(std::optional<Checkpoint> checkpoint = std::nullopt) {
    VerifyOptions options;
    options.checkpoint = std::move(checkpoint);
    options.pass.threads = 1;
    return options;
}

void write_log(const fs::path& db) {
    AuditOptions options;
    options.durability = AuditDurability::relaxed;
    auto store = new_store(db, options);
    for (int i = 1; i <= log_rows; ++i) {
        REQUIRE(appended(*store, check_record(i)) == static_cast<std::uint64_t>(i));
    }
}

// Runs SQL on the file with the append-only triggers out of the way, as a forger would.
void tamper(const fs::path& db, const std::string& sql) {
    INFO(sql);
    const auto result =
        sqlite3_shell_run(db, "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete; "
                              "DROP TRIGGER audit_log_in_sequence; " +
                                  sql);
    INFO(result.output);
    REQUIRE(result.status == 0);
}

// Row `seq` rewritten by someone who knows the chain: its fields changed and its hash
// recomputed over `prev_hash`, so that the row is consistent with a row whose hash that is.
void forge(const fs::path& db, std::uint64_t seq, const std::string& subject,
           const std::string& prev_hash) {
    const auto rows = rows_of(db);
    REQUIRE(rows.size() >= seq);
    AuditRecord row = rows[seq - 1];
    row.subject = subject;
    row.prev_hash = prev_hash;
    const auto prev = hash_from_hex(prev_hash);
    REQUIRE(prev);
    row.hash =
        to_hex(row_hash(*prev, canonical_row_bytes(view_of(row), schema_version), schema_version));
    tamper(db, "UPDATE audit_log SET subject = '" + subject + "', hash = '" + row.hash +
                   "' WHERE seq = " + std::to_string(seq) + ";");
}

// Check rows 1 to `count`, as an old store's writer is given them.
std::vector<AuditRecord> check_records(int count) {
    std::vector<AuditRecord> records;
    for (int i = 1; i <= count; ++i) {
        records.push_back(check_record(i));
    }
    return records;
}

std::string hash_of(const fs::path& db, std::uint64_t seq) {
    return rows_of(db).at(seq - 1).hash;
}

} // namespace

TEST_CASE("verify: the log is cut into contiguous parts that cover every seq once", "[audit]") {
    for (std::uint64_t last = 0; last <= 40; ++last) {
        for (unsigned threads = 1; threads <= 6; ++threads) {
            INFO("last " << last << ", threads " << threads);
            PassOptions options;
            options.threads = threads;
            options.split_from_rows = 1;
            const auto parts = split_log(last, options);
            REQUIRE_FALSE(parts.empty());
            CHECK(parts.size() <= threads);
            CHECK(parts.front().range.from_seq == INT64_MIN);
            CHECK(parts.front().start == 1);
            CHECK_FALSE(parts.back().end);
            CHECK(parts.back().range.to_seq == INT64_MAX);
            for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
                REQUIRE(parts[i].end);
                CHECK(parts[i].start <= *parts[i].end);
                CHECK(parts[i + 1].start == *parts[i].end + 1);
                CHECK(parts[i + 1].range.from_seq == static_cast<std::int64_t>(parts[i + 1].start));
            }
            CHECK((last == 0 || parts.back().start <= last));
        }
    }
    PassOptions unsplit;
    unsplit.threads = 8;
    CHECK(split_log(99'999, unsplit).size() == 1);
    CHECK(split_log(100'000, unsplit).size() == 8);
}

TEST_CASE("verify: an intact log verifies the same in parts and in one pass", "[audit]") {
    TempDir dir;
    const auto db = dir.path() / "audit.db";
    write_log(db);
    const auto parts = verified(db, in_parts());
    const auto single = verified(db, in_one_pass());
    CHECK_FALSE(parts.fault);
    CHECK(parts.rows == log_rows);
    CHECK(parts.tail.seq == log_rows);
    CHECK(parts.tail.hash == hash_of(db, log_rows));
    CHECK(single.rows == parts.rows);
    CHECK(single.tail.hash == parts.tail.hash);

    SECTION("with a checkpoint exactly at a seam") {
        const Checkpoint at_seam{4, hash_of(db, 4)};
        CHECK(fault_of(db, in_parts(at_seam)).empty());
        CHECK(fault_of(db, in_one_pass(at_seam)).empty());
    }
}

TEST_CASE("verify: a fault inside a part or exactly at a seam is found where one pass finds it",
          "[audit]") {
    TempDir dir;
    const auto db = dir.path() / "audit.db";
    write_log(db);
    std::optional<Checkpoint> checkpoint;
    std::string expected;

    SECTION("a row altered inside a part") {
        tamper(db, "UPDATE audit_log SET subject = 'p-999' WHERE seq = 5;");
        expected = "seq 5: altered: its hash does not match its contents";
    }
    SECTION("the first row of a part altered") {
        tamper(db, texts_stored_sql({"'deny'"}) +
                       "UPDATE audit_log SET decision_id = (SELECT id FROM audit_text WHERE text "
                       "= 'deny') WHERE seq = 4;");
        expected = "seq 4: altered: its hash does not match its contents";
    }
    SECTION("the last row of a part altered") {
        tamper(db, "UPDATE audit_log SET subject = 'p-999' WHERE seq = 6;");
        expected = "seq 6: altered: its hash does not match its contents";
    }
    SECTION("the first row of a part removed") {
        tamper(db, "DELETE FROM audit_log WHERE seq = 7;");
        expected = "seq 7: missing: no row has seq 7 (rows were removed)";
    }
    SECTION("the last row of a part removed") {
        tamper(db, "DELETE FROM audit_log WHERE seq = 3;");
        expected = "seq 3: missing: no row has seq 3 (rows were removed)";
    }
    SECTION("a whole part removed") {
        tamper(db, "DELETE FROM audit_log WHERE seq BETWEEN 4 AND 6;");
        expected = "seq 4: missing: no row has seq 4 (rows were removed)";
    }
    SECTION("the first row removed") {
        tamper(db, "DELETE FROM audit_log WHERE seq = 1;");
        expected = "seq 1: missing: no row has seq 1 (rows were removed)";
    }
    // Version 4 stores no prev_hash: each row is hashed over the stored hash of the row
    // before it, so a row made to follow another one than its own shows where it is.
    SECTION("the first row of a part rebuilt on another row: consistent alone, not linked") {
        forge(db, 7, "p-999", hash_of(db, 5));
        expected = "seq 7: altered: its hash does not match its contents";
    }
    SECTION("the last row of a part with a hash that is not hex") {
        tamper(db, "UPDATE audit_log SET hash = 'xyz' WHERE seq = 3;");
        expected = "seq 3: altered: its hash does not match its contents";
    }
    SECTION("the first row of a part rebuilt on its own row before, then the next one broken") {
        // Row 4 is consistent with row 3; row 5 was hashed over the old row 4.
        forge(db, 4, "p-999", hash_of(db, 3));
        expected = "seq 5: altered: its hash does not match its contents";
    }
    SECTION("two rows reordered across a seam") {
        tamper(db, "UPDATE audit_log SET seq = -1 WHERE seq = 6; "
                   "UPDATE audit_log SET seq = 6 WHERE seq = 7; "
                   "UPDATE audit_log SET seq = 7 WHERE seq = -1;");
        expected = "seq 6: altered: its hash does not match its contents";
    }
    SECTION("a row of an unknown kind at a seam") {
        tamper(db, texts_stored_sql({"'sell'"}) +
                       "UPDATE audit_log SET kind_id = (SELECT id FROM audit_text WHERE text = "
                       "'sell') WHERE seq = 10;");
        expected = "seq 10: unknown kind 'sell' or decision 'allow': not a row flowgate writes";
    }
    SECTION("a row numbered below 1") {
        tamper(db, "UPDATE audit_log SET seq = 0 WHERE seq = 1;");
        expected = "seq 1: out of sequence: a row numbered 0 where seq 1 belongs";
    }
    SECTION("a checkpoint at a seam that the log no longer holds") {
        checkpoint = Checkpoint{4, std::string(64, 'a')};
        expected = "seq 4: differs from the checkpoint (hash " + std::string(64, 'a') +
                   "): the log was rebuilt or replaced since";
    }
    SECTION("a checkpoint past the end: the log was cut") {
        checkpoint = Checkpoint{12, std::string(64, 'a')};
        expected = "seq 11: truncated: the log ends at seq 10 but the checkpoint holds seq 12";
    }

    CHECK(fault_of(db, in_parts(checkpoint)) == expected);
    CHECK(fault_of(db, in_one_pass(checkpoint)) == expected);
}

TEST_CASE("verify: rows fed from a later seq take the first link as given, for the caller to "
          "check",
          "[audit]") {
    TempDir dir;
    const auto db = dir.path() / "audit.db";
    write_log(db);
    const auto rows = rows_of(db);
    ChainVerifier from_four(4);
    for (std::size_t i = 3; i < rows.size(); ++i) {
        REQUIRE(from_four.add(view_of(rows[i])));
    }
    CHECK(from_four.first_prev() == rows[2].hash);
    CHECK(from_four.rows() == 7);
    CHECK(from_four.last_seq() == 10);
    CHECK(to_hex(from_four.last_hash()) == rows[9].hash);
    CHECK(from_four.end_at(10));
    CHECK_FALSE(from_four.end_at(11));
    REQUIRE(from_four.fault());
    CHECK(describe(*from_four.fault()) == "seq 11: missing: no row has seq 11 (rows were removed)");

    SECTION("from seq 1 the chain must start at 32 zero bytes") {
        AuditRecord first = rows[0];
        first.prev_hash = rows[1].hash;
        ChainVerifier verifier;
        CHECK_FALSE(verifier.add(view_of(first)));
        CHECK(describe(*verifier.fault()) ==
              "seq 1: does not start the chain (prev_hash is not 32 zero bytes)");
        CHECK(verifier.first_prev().empty());
    }
}

TEST_CASE("verify: a version-1 store verifies with the version-1 fields, and a row altered in it "
          "is caught",
          "[audit]") {
    TempDir dir;
    const auto db = dir.path() / "audit.db";
    std::vector<AuditRecord> records = check_records(log_rows);
    // A line with bytes that are not UTF-8, stored as received, as version 1 did.
    records[7].kind = to_string(AuditKind::refused);
    records[7].request = "{\"op\":\"check\",\"purpose\":\"\xff\xfe\"}";
    write_v1_store(db, records);

    const auto parts = verified(db, in_parts());
    CHECK_FALSE(parts.fault);
    CHECK(parts.rows == log_rows);
    CHECK(parts.tail.hash == hash_of(db, log_rows));
    CHECK_FALSE(verified(db, in_one_pass()).fault);

    SECTION("its rows do not verify as version-2 rows: the version decides the bytes hashed") {
        const auto rows = rows_of(db);
        ChainVerifier as_version_2(1, nullptr, 2);
        CHECK_FALSE(as_version_2.add(view_of(rows[0])));
        ChainVerifier as_version_1(1, nullptr, 1);
        CHECK(as_version_1.add(view_of(rows[0])));
    }
    SECTION("a row altered") {
        tamper(db, "UPDATE audit_log SET subject = 'p-999' WHERE seq = 5;");
        CHECK(fault_of(db, in_parts()) == "seq 5: altered: its hash does not match its contents");
        CHECK(fault_of(db, in_one_pass()) ==
              "seq 5: altered: its hash does not match its contents");
    }
    SECTION("the request of bytes that are not UTF-8 altered") {
        tamper(db, "UPDATE audit_log SET request = CAST(X'7BFF' AS TEXT) WHERE seq = 8;");
        CHECK(fault_of(db, in_one_pass()) ==
              "seq 8: altered: its hash does not match its contents");
    }
}

TEST_CASE("verify: a version-3 store's stored links are checked, in parts and in one pass",
          "[audit]") {
    TempDir dir;
    const auto db = dir.path() / "audit.db";
    std::vector<AuditRecord> records = check_records(log_rows);
    write_old_store(db, 3, records);
    REQUIRE(fault_of(db, in_parts()).empty());
    std::string expected;
    SECTION("a prev_hash that is not hex") {
        tamper(db, "UPDATE audit_log SET prev_hash = 'xyz' WHERE seq = 4;");
        expected = "seq 4: does not link to the row before it (prev_hash is not 64 hex digits)";
    }
    SECTION("two rows reordered across a seam") {
        tamper(db, "UPDATE audit_log SET seq = -1 WHERE seq = 6; "
                   "UPDATE audit_log SET seq = 6 WHERE seq = 7; "
                   "UPDATE audit_log SET seq = 7 WHERE seq = -1;");
        expected = "seq 6: does not link to the row before it (prev_hash is not that row's hash: "
                   "a row was removed, inserted or reordered)";
    }
    CHECK(fault_of(db, in_parts()) == expected);
    CHECK(fault_of(db, in_one_pass()) == expected);
}
