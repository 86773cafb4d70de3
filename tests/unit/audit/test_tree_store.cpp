// The tree a store keeps (schema version 3): the writer's nodes and checkpoints, the
// reader's roots and proofs, and verify's recomputation of both, against the tree of
// the rows as read back, hashed here from their canonical bytes.
#include "audit/canonical.hpp"
#include "audit/merkle.hpp"
#include "audit/signed_note.hpp"
#include "audit/signing_key.hpp"
#include "audit/tree_checkpoint.hpp"
#include "audit/tree_store.hpp"
#include "tests/unit/audit/fixture.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <regex>
#include <thread>

namespace flowgate::audit::testing {

namespace {

// The leaf hashes of the store's rows, from the rows an auditor reads back.
std::vector<TreeHash> leaves_of(const fs::path& db) {
    std::vector<TreeHash> out;
    for (const AuditRecord& record : rows_of(db)) {
        out.push_back(leaf_hash(canonical_row_bytes(view_of(record), schema_version)));
    }
    return out;
}

std::uint64_t stored_nodes(const fs::path& db) {
    const ShellResult count = sqlite3_shell_run(db, "SELECT COUNT(*) FROM audit_tree");
    REQUIRE(count.status == 0);
    return std::stoull(count.output);
}

// The number of perfect subtrees of level >= 4 that n leaves complete.
std::uint64_t expected_nodes(std::uint64_t n) {
    std::uint64_t total = 0;
    for (unsigned level = tree_stored_from_level; level < 64; ++level) {
        total += n >> level;
    }
    return total;
}

const SigningKey& test_key() {
    static const SigningKey key = [] {
        auto made = generate_signing_key("test.example/log");
        REQUIRE(made);
        return made.value();
    }();
    return key;
}

} // namespace

TEST_CASE("tree store: the writer keeps exactly the nodes of its rows, and every root and "
          "proof the reader gives is the rows' own",
          "[audit]") {
    TempDir dir;
    const auto db = dir.path() / "audit.db";
    // Rows in batches of several sizes, across a reopen: the frontier resumes from the
    // stored nodes.
    {
        auto store = new_store(db);
        for (int i = 0; i < 37; ++i) {
            appended(*store, check_record(i));
        }
    }
    {
        auto store = open_store(db);
        std::atomic<int> done{0};
        for (int i = 37; i < 300; ++i) {
            store->submit(check_record(i), [&done](AuditResult<std::uint64_t> r) {
                REQUIRE(r);
                ++done;
            });
        }
        store->close();
        REQUIRE(done == 263);
    }
    const std::vector<TreeHash> leaves = leaves_of(db);
    REQUIRE(leaves.size() == 300);
    CHECK(stored_nodes(db) == expected_nodes(300));

    MemoryNodeSource memory(leaves);
    auto reader = reader_of(db);
    for (std::uint64_t size : {1U, 2U, 15U, 16U, 17U, 31U, 32U, 33U, 64U, 255U, 256U, 299U, 300U}) {
        INFO("size " << size);
        auto expected = root_from_source(size, memory);
        REQUIRE(expected);
        auto root = reader->tree_root(size);
        REQUIRE(root);
        CHECK(root.value() == expected.value());
        for (std::uint64_t leaf : {std::uint64_t{0}, size / 2, size - 1}) {
            auto proof = reader->inclusion_proof(leaf, size);
            REQUIRE(proof);
            auto memory_proof = inclusion_proof(leaf, size, memory);
            REQUIRE(memory_proof);
            CHECK(proof.value() == memory_proof.value());
            CHECK(verify_inclusion(leaf, size, leaves[leaf], proof.value(), root.value()));
        }
        if (size < 300) {
            auto consistency = reader->consistency_proof(size, 300);
            REQUIRE(consistency);
            auto whole = reader->tree_root(300);
            REQUIRE(whole);
            CHECK(verify_consistency(size, 300, root.value(), whole.value(), consistency.value()));
        }
    }
    CHECK_FALSE(reader->tree_root(301));
    CHECK_FALSE(reader->inclusion_proof(300, 300));

    const VerifyResult result = verified(db);
    CHECK_FALSE(result.fault);
    CHECK(result.tree_checked);
    CHECK_FALSE(result.tree_fault);
    CHECK(result.tree_nodes == expected_nodes(300));
    CHECK(result.tree_root == root_from_source(300, memory).value());
}

TEST_CASE("tree store: checkpoints are stored in the rows' transactions, signed with the key, "
          "at open and at close, and each is announced",
          "[audit]") {
    TempDir dir;
    const auto db = dir.path() / "audit.db";
    AuditOptions options;
    options.signing_key = std::make_shared<const SigningKey>(test_key());
    std::vector<CheckpointRecord> announced;
    options.on_checkpoint = [&announced](const CheckpointRecord& checkpoint) {
        announced.push_back(checkpoint);
    };
    {
        auto store = new_store(db, options);
        appended(*store, check_record(1)); // the first batch after open: a checkpoint
        appended(*store, check_record(2)); // within the interval: none
        appended(*store, check_record(3));
    } // closed: a checkpoint of the rows since
    REQUIRE(announced.size() == 2);
    CHECK(announced[0].tree_size == 1);
    CHECK(announced[1].tree_size == 3);

    auto reader = reader_of(db);
    auto origin = reader->origin();
    REQUIRE(origin);
    CHECK(std::regex_match(origin.value(), std::regex(R"([^/]+/flowgate/\d{8}T\d{6}Z)")));
    auto stored = reader->checkpoints();
    REQUIRE(stored);
    REQUIRE(stored.value().size() == 2);
    const VerifierKey verifier = test_key().verifier();
    for (std::size_t i = 0; i < 2; ++i) {
        CHECK(stored.value()[i].note == announced[i].note);
        CHECK(announced[i].is_signed);
        auto opened = open_note(stored.value()[i].note, std::span(&verifier, 1));
        REQUIRE(opened);
        auto checkpoint = parse_tree_checkpoint(opened.value().text);
        REQUIRE(checkpoint);
        CHECK(checkpoint.value().origin == origin.value());
        CHECK(checkpoint.value().size == stored.value()[i].tree_size);
        CHECK(checkpoint.value().root == reader->tree_root(checkpoint.value().size).value());
        CHECK(checkpoint.value().root == announced[i].root);
    }
    auto latest = reader->latest_checkpoint();
    REQUIRE(latest);
    REQUIRE(latest.value());
    CHECK(latest.value()->tree_size == 3);
    const VerifyResult result = verified(db);
    CHECK_FALSE(result.tree_fault);
    CHECK(result.checkpoints == 2);

    // With no interval, every batch; without a key, unsigned bodies under the origin
    // given at creation.
    const auto plain = dir.path() / "plain.db";
    AuditOptions each;
    each.checkpoint_interval = std::chrono::milliseconds(0);
    {
        auto made = AuditStore::create(plain, each, "host.example/flowgate/test");
        REQUIRE(made);
        for (int i = 0; i < 3; ++i) {
            appended(*made.value(), check_record(i));
        }
    }
    auto plain_reader = reader_of(plain);
    auto bodies = plain_reader->checkpoints();
    REQUIRE(bodies);
    REQUIRE(bodies.value().size() == 3);
    auto body = parse_tree_checkpoint(bodies.value()[2].note);
    REQUIRE(body);
    CHECK(body.value().origin == "host.example/flowgate/test");
    CHECK(body.value().size == 3);
    CHECK(verified(plain).checkpoints == 3);
}

TEST_CASE("tree store: the tree's tables are append-only, as the log is", "[audit]") {
    TempDir dir;
    const auto db = dir.path() / "audit.db";
    write_store(db, 40);
    for (const char* sql :
         {"UPDATE audit_tree SET level = level", "DELETE FROM audit_tree",
          "INSERT OR REPLACE INTO audit_tree SELECT end, level, hash FROM "
          "audit_tree LIMIT 1",
          "UPDATE audit_checkpoint SET note = ''", "DELETE FROM audit_checkpoint",
          "INSERT INTO audit_checkpoint VALUES (0, 0, '')",
          "UPDATE audit_origin SET origin = 'elsewhere'", "DELETE FROM audit_origin",
          "INSERT INTO audit_origin VALUES ('another')"}) {
        INFO(sql);
        const ShellResult result = sqlite3_shell_run(db, sql);
        CHECK(result.status != 0);
        CHECK_THAT(result.output, Catch::Contains("is append-only"));
    }
    check_intact(db, 40);
}

TEST_CASE("tree store: verify names a stored node that was altered, removed or added, and "
          "a checkpoint whose root is not the tree's, in one part or across parts",
          "[audit]") {
    TempDir dir;
    const auto db = dir.path() / "audit.db";
    write_store(db, 200);
    REQUIRE(verified(db).tree_nodes == expected_nodes(200));

    struct Case {
        const char* what;
        const char* trigger;
        std::string sql;
        const char* fault;
    };
    const std::vector<Case> cases = {
        {"altered", "audit_tree_no_update",
         "UPDATE audit_tree SET hash = zeroblob(32) WHERE end = 64 AND level = 5",
         "the tree's node of level 5 ending at size 64 differs from the one its rows give"},
        {"altered across the seam", "audit_tree_no_update",
         "UPDATE audit_tree SET hash = zeroblob(32) WHERE end = 128 AND level = 7",
         "the tree's node of level 7 ending at size 128 differs"},
        {"removed", "audit_tree_no_delete", "DELETE FROM audit_tree WHERE end = 32 AND level = 4",
         "the tree's node of level 4 ending at size 32 is missing"},
        {"added", "audit_tree_once", "INSERT INTO audit_tree VALUES (400, 4, zeroblob(32))",
         "the tree's node of level 4 ending at size 400 is not a node of a tree of the log's "
         "rows"},
        {"a forged checkpoint", "audit_checkpoint_in_order",
         "INSERT INTO audit_checkpoint VALUES (100, 0, (SELECT origin FROM audit_origin) || "
         "char(10) || '100' || char(10) || 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=' || "
         "char(10))",
         "the checkpoint of size 100 stored at 0 holds a root that is not the tree's"},
        {"a checkpoint past the end", "audit_checkpoint_in_order",
         "INSERT INTO audit_checkpoint SELECT 201, 0, replace(note, char(10) || '200' || "
         "char(10), char(10) || '201' || char(10)) FROM audit_checkpoint WHERE tree_size = 200",
         "is of more rows than the log holds (200): the log was truncated"},
    };
    for (const Case& c : cases) {
        INFO(c.what);
        const auto copy = dir.path() / (std::string(c.what) + ".db");
        fs::copy_file(db, copy);
        REQUIRE(sqlite3_shell_past_trigger(copy, c.trigger, c.sql) == 0);
        for (std::uint64_t split : {std::uint64_t{100'000}, std::uint64_t{50}}) {
            VerifyOptions options;
            options.pass.split_from_rows = split;
            options.pass.threads = 3;
            const VerifyResult result = verified(copy, options);
            CHECK_FALSE(result.fault); // the chain is intact: only the tree shows it
            REQUIRE(result.tree_fault);
            CHECK_THAT(*result.tree_fault, Catch::Contains(c.fault));
        }
    }
}

TEST_CASE("tree store: the writer refuses a store whose tree lost a node it resumes from",
          "[audit]") {
    TempDir dir;
    const auto db = dir.path() / "audit.db";
    write_store(db, 48); // frontier: the node of level 5 [0, 32) and of level 4 [32, 48)
    REQUIRE(sqlite3_shell_past_trigger(db, "audit_tree_no_delete",
                                       "DELETE FROM audit_tree WHERE end = 48 AND level = 4") == 0);
    auto opened = AuditStore::open(db);
    REQUIRE_FALSE(opened);
    CHECK(opened.error().code == AuditErrc::broken_chain);
    CHECK_THAT(opened.error().message,
               Catch::Contains("the tree's node of level 4 ending at size 48 is missing"));
}

} // namespace flowgate::audit::testing
