// The audit store's promises: rows come back as written and chained, the database
// itself refuses edits from any connection, concurrent decisions share transactions,
// and a store that cannot be written fails its submitters and then recovers.
#include "audit/checkpointer.hpp"
#include "audit/merkle.hpp"
#include "tests/unit/audit/fixture.hpp"

#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace flowgate::audit;
using namespace flowgate::audit::testing;

namespace {

// The edit must fail, and fail because of the append-only triggers (not, say, a typo).
void require_rejected(const fs::path& db, const std::string& sql) {
    INFO(sql);
    const auto result = sqlite3_shell_run(db, sql);
    CHECK(result.status != 0);
    CHECK_THAT(result.output, Catch::Contains("is append-only"));
}

// Waits for a known number of completions and keeps what they received.
class Completions {
public:
    AuditCompletion handler() {
        return [this](AuditResult<std::uint64_t> result) {
            std::lock_guard lock(m_mutex);
            ++m_calls;
            if (result) {
                m_seqs.push_back(result.value());
            } else {
                m_errors.push_back(result.error());
            }
            m_done.notify_all();
        };
    }
    void wait_for(std::size_t calls) {
        std::unique_lock lock(m_mutex);
        const bool reached =
            m_done.wait_for(lock, std::chrono::seconds(60), [&] { return m_calls >= calls; });
        REQUIRE(reached);
    }
    std::size_t calls() {
        std::lock_guard lock(m_mutex);
        return m_calls;
    }
    std::vector<std::uint64_t> seqs() {
        std::lock_guard lock(m_mutex);
        return m_seqs;
    }
    std::vector<AuditError> errors() {
        std::lock_guard lock(m_mutex);
        return m_errors;
    }

private:
    std::mutex m_mutex;
    std::condition_variable m_done;
    std::size_t m_calls = 0;
    std::vector<std::uint64_t> m_seqs;
    std::vector<AuditError> m_errors;
};

struct SqliteConnection {
    explicit SqliteConnection(const fs::path& db) {
        REQUIRE(sqlite3_open(db.c_str(), &m_db) == SQLITE_OK);
    }
    ~SqliteConnection() { sqlite3_close(m_db); }
    SqliteConnection(const SqliteConnection&) = delete;
    SqliteConnection& operator=(const SqliteConnection&) = delete;
    int exec(const std::string& sql) {
        return sqlite3_exec(m_db, sql.c_str(), nullptr, nullptr, nullptr);
    }
    std::int64_t count(const std::string& sql) {
        sqlite3_stmt* stmt = nullptr;
        REQUIRE(sqlite3_prepare_v2(m_db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
        std::int64_t value = -1;
        if (sqlite3_step(stmt) == SQLITE_ROW) {
            value = sqlite3_column_int64(stmt, 0);
        }
        sqlite3_finalize(stmt);
        return value;
    }
    sqlite3* m_db = nullptr;
};

// A store holding one row, and another connection holding its write lock (BEGIN
// IMMEDIATE) until the test lets it go.
struct LockedStore {
    explicit LockedStore(std::chrono::milliseconds busy_timeout)
        : db(dir.path() / "audit.db"), store(new_store(db, options_with(busy_timeout))), other(db) {
        REQUIRE(appended(*store, check_record(1)) == 1);
        REQUIRE(other.exec("BEGIN IMMEDIATE") == SQLITE_OK);
    }
    static AuditOptions options_with(std::chrono::milliseconds busy_timeout) {
        AuditOptions options;
        options.busy_timeout = busy_timeout;
        return options;
    }
    TempDir dir;
    fs::path db;
    std::unique_ptr<AuditStore> store;
    SqliteConnection other;
};

// A file system of 2 MiB (tmpfs; mounting it needs root), unmounted at the end.
class SmallDisk {
public:
    SmallDisk() : m_path(m_dir.path() / "small") {
        fs::create_directory(m_path);
        REQUIRE(::mount("tmpfs", m_path.c_str(), "tmpfs", 0, "size=2m") == 0);
    }
    ~SmallDisk() { ::umount2(m_path.c_str(), MNT_DETACH); }
    SmallDisk(const SmallDisk&) = delete;
    SmallDisk& operator=(const SmallDisk&) = delete;
    const fs::path& path() const { return m_path; }
    // Whether this process may mount one (root); says so when not.
    static bool allowed() {
        if (::geteuid() != 0) {
            WARN("mounting a small tmpfs needs root; the full-disk case runs only as root");
            return false;
        }
        return true;
    }

private:
    TempDir m_dir;
    fs::path m_path;
};

// This process's threads in the idle scheduling class.
int idle_threads() {
    int count = 0;
    for (const auto& task : fs::directory_iterator("/proc/self/task")) {
        if (::sched_getscheduler(std::stoi(task.path().filename().string())) == SCHED_IDLE) {
            ++count;
        }
    }
    return count;
}

// Whether `count` of this process's threads are in the idle class within 10 s.
bool idle_threads_reach(int count) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (idle_threads() != count && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return idle_threads() == count;
}

// The names of this process's threads, as top -H and perf show them.
std::multiset<std::string> thread_names() {
    std::multiset<std::string> names;
    for (const auto& task : fs::directory_iterator("/proc/self/task")) {
        std::ifstream in(task.path() / "comm");
        std::string name;
        std::getline(in, name);
        names.insert(name);
    }
    return names;
}

} // namespace

TEST_CASE("audit store: rows read back as written, chained from 32 zero bytes", "[audit]") {
    TempDir dir;
    const auto db = dir.path() / "audit.db";
    auto store = new_store(db);

    AuditRecord start;
    start.kind = to_string(AuditKind::start);
    start.detail = "flowgated 0.1.0";
    REQUIRE(appended(*store, start) == 1);
    REQUIRE(appended(*store, check_record(1)) == 2);
    REQUIRE(appended(*store, check_record(2, AuditDecision::deny)) == 3);
    AuditRecord refused;
    refused.kind = to_string(AuditKind::refused);
    refused.request = "{not json";
    refused.decision = to_string(AuditDecision::error);
    refused.reason = "malformed_request";
    REQUIRE(appended(*store, refused) == 4);
    store->close();

    const auto rows = rows_of(db);
    REQUIRE(rows.size() == 4);
    CHECK(rows[0].kind == to_string(AuditKind::start));
    CHECK(rows[0].detail == "flowgate"
                            "d 0.1.0");
    CHECK(rows[0].time_us > 0);
    CHECK(rows[0].prev_hash == std::string(64, '0'));

    const auto expected = check_record(1);
    const auto& got = rows[1];
    CHECK(got.uid == expected.uid);
    CHECK(got.gid == expected.gid);
    CHECK(got.pid == expected.pid);
    CHECK(got.service == expected.service);
    CHECK(got.request == expected.request);
    CHECK(got.decision == to_string(AuditDecision::allow));
    CHECK(got.reason == expected.reason);
    CHECK(got.rule == expected.rule);
    CHECK(got.rule_source == expected.rule_source);
    CHECK(got.legal_basis == expected.legal_basis);
    CHECK(got.obligations == expected.obligations);
    CHECK(got.policy_hash == expected.policy_hash);
    CHECK(got.purpose == expected.purpose);
    CHECK(got.activity == expected.activity);
    CHECK(got.recipient == expected.recipient);
    CHECK(got.direction == expected.direction);
    CHECK(got.data == expected.data);
    CHECK(got.subject == expected.subject);
    CHECK(rows[2].decision == to_string(AuditDecision::deny));
    CHECK(rows[3].kind == to_string(AuditKind::refused));
    CHECK(rows[3].request == "{not json");

    for (std::size_t i = 0; i < rows.size(); ++i) {
        CHECK(rows[i].seq == i + 1);
        const auto prev = hash_from_hex(rows[i].prev_hash);
        REQUIRE(prev);
        CHECK(to_hex(row_hash(*prev, canonical_row_bytes(view_of(rows[i]), schema_version),
                              schema_version)) == rows[i].hash);
        if (i > 0) {
            CHECK(rows[i].prev_hash == rows[i - 1].hash);
        }
    }
    check_intact(db, 4);
    const auto report = verified(db);
    CHECK(report.tail.seq == 4);
    CHECK(report.tail.hash == rows[3].hash);
}

TEST_CASE("audit store: the chain continues across a reopen", "[audit]") {
    TempDir dir;
    const auto db = dir.path() / "audit.db";
    {
        auto store = new_store(db);
        for (int i = 0; i < 3; ++i) {
            REQUIRE(store->append(check_record(i)));
        }
    }
    {
        auto store = open_store(db);
        CHECK(store->health().last_seq == 3);
        CHECK(appended(*store, check_record(3)) == 4);
        CHECK(appended(*store, check_record(4)) == 5);
    }
    const auto rows = rows_of(db);
    REQUIRE(rows.size() == 5);
    CHECK(rows[3].prev_hash == rows[2].hash);
    check_intact(db, 5);
}

TEST_CASE("audit store: open refuses a store whose tail does not chain", "[audit]") {
    TempDir dir;
    const auto db = dir.path() / "audit.db";
    {
        auto store = new_store(db);
        for (int i = 0; i < 5; ++i) {
            REQUIRE(store->append(check_record(i, AuditDecision::deny)));
        }
    }
    REQUIRE(fault_of(db).empty());

    std::string expected_message;
    SECTION("the last row's decision altered") {
        REQUIRE(sqlite3_shell_past_trigger(
                    db, "audit_log_no_update",
                    texts_stored_sql({"'allow'"}) +
                        "UPDATE audit_log SET decision_id = (SELECT id FROM audit_text WHERE "
                        "text = 'allow') WHERE seq = 5") == 0);
        expected_message = "seq 5: altered: its hash does not match its contents";
    }
    SECTION("a row's hash replaced by the next one's") {
        REQUIRE(sqlite3_shell_past_trigger(db, "audit_log_no_update",
                                           "UPDATE audit_log SET hash = (SELECT hash FROM "
                                           "audit_log WHERE seq = 5) WHERE seq = 4") == 0);
        expected_message = "seq 4: altered: its hash does not match its contents";
    }
    SECTION("a row removed before the last one") {
        REQUIRE(sqlite3_shell_past_trigger(db, "audit_log_no_delete",
                                           "DELETE FROM audit_log WHERE seq = 4") == 0);
        expected_message = "seq 4: missing: no row has seq 4";
    }
    SECTION("the first rows removed") {
        REQUIRE(sqlite3_shell_past_trigger(db, "audit_log_no_delete",
                                           "DELETE FROM audit_log WHERE seq = 1") == 0);
        expected_message = "seq 1: missing: no row has seq 1";
    }

    const auto reopened = AuditStore::open(db);
    REQUIRE_FALSE(reopened);
    CHECK(reopened.error().code == AuditErrc::broken_chain);
    CHECK_THAT(reopened.error().message, Catch::Contains(expected_message));
    // One verifier: the auditor's verify names the same fault in the same words.
    CHECK(fault_of(db) == reopened.error().message);
}

TEST_CASE("audit store: full verification finds an altered row the tail check does not read",
          "[audit]") {
    TempDir dir;
    const auto db = dir.path() / "audit.db";
    AuditOptions options;
    options.tail_rows_to_verify = 2;
    {
        auto store = new_store(db, options);
        for (int i = 0; i < 8; ++i) {
            REQUIRE(store->append(check_record(i)));
        }
    }
    REQUIRE(sqlite3_shell_past_trigger(
                db, "audit_log_no_update",
                "UPDATE audit_log SET subject = 'someone-else' WHERE seq = 2") == 0);
    CHECK(AuditStore::open(db, options));
    CHECK(fault_of(db) == "seq 2: altered: its hash does not match its contents");
}

TEST_CASE("audit store: the database rejects UPDATE, DELETE, INSERT OR REPLACE and "
          "out-of-sequence INSERT from another connection",
          "[audit]") {
    TempDir dir;
    const auto db = dir.path() / "audit.db";
    auto store = new_store(db);
    for (int i = 0; i < 3; ++i) {
        REQUIRE(store->append(check_record(i, AuditDecision::deny)));
    }
    REQUIRE(store->store_policy("sha256:abc", {{"kenpo.policy", "permit x;"}}));
    const auto before = rows_of(db);

    const std::string copy_of_row_2 =
        "SELECT " + columns_with({{"decision", "'allow'"}}) + " FROM audit_log WHERE seq = 2";
    SECTION("UPDATE") {
        require_rejected(db, "UPDATE audit_log SET decision_id = kind_id WHERE seq = 2");
    }
    SECTION("DELETE") {
        require_rejected(db, "DELETE FROM audit_log WHERE seq = 2");
    }
    SECTION("DELETE of every row") {
        require_rejected(db, "DELETE FROM audit_log");
    }
    SECTION("INSERT OR REPLACE of an existing row") {
        require_rejected(db, "INSERT OR REPLACE INTO audit_log " + copy_of_row_2);
    }
    SECTION("REPLACE of an existing row") {
        require_rejected(db, "REPLACE INTO audit_log " + copy_of_row_2);
    }
    SECTION("INSERT with a seq past the next one") {
        require_rejected(db, "INSERT INTO audit_log SELECT " + columns_with({{"seq", "seq + 2"}}) +
                                 " FROM audit_log WHERE seq = 3");
    }
    SECTION("INSERT with a seq before the last") {
        require_rejected(db, "INSERT INTO audit_log SELECT " + columns_with({{"seq", "seq - 3"}}) +
                                 " FROM audit_log WHERE seq = 3");
    }
    SECTION("a text's UPDATE, DELETE, or INSERT out of sequence") {
        require_rejected(db, "UPDATE audit_text SET text = 'allow' WHERE text = 'deny'");
        require_rejected(db, "DELETE FROM audit_text");
        require_rejected(db, "INSERT INTO audit_text (id, text) VALUES (1000, 'allow!')");
        require_rejected(db, "INSERT OR REPLACE INTO audit_text (id, text) VALUES (1, 'allow')");
    }
    SECTION("a policy text UPDATE, DELETE or REPLACE") {
        require_rejected(db, "UPDATE policy_files SET text = 'permit all;'");
        require_rejected(db, "DELETE FROM policy_files");
        require_rejected(db, "INSERT OR REPLACE INTO policy_files VALUES "
                             "('sha256:abc', 'kenpo.policy', 'permit all;', 0)");
        CHECK(policy_files_of(db, "sha256:abc") == PolicyFiles{{"kenpo.policy", "permit x;"}});
    }

    const auto after = rows_of(db);
    REQUIRE(after.size() == before.size());
    for (std::size_t i = 0; i < after.size(); ++i) {
        CHECK(after[i].hash == before[i].hash);
        CHECK(after[i].decision == to_string(AuditDecision::deny));
    }
    CHECK(fault_of(db).empty());
    // The shell's attempts leave the writer's connection able to go on.
    CHECK(appended(*store, check_record(9)) == 4);
}

TEST_CASE("audit store: the first row must be seq 1, and each next one the seq after", "[audit]") {
    TempDir dir;
    const auto db = dir.path() / "audit.db";
    new_store(db)->close(); // the schema, no row
    REQUIRE(sqlite3_shell(db, texts_stored_sql({"''", "'start'"})) == 0);
    auto insert = [&](const std::string& seq) {
        return "INSERT INTO audit_log SELECT " +
               columns_with(
                   {{"seq", seq}, {"kind", "'start'"}, {"hash", "'" + std::string(64, 'a') + "'"}},
                   "0", "''") +
               " FROM (SELECT 1)";
    };
    require_rejected(db, insert("2"));
    require_rejected(db, insert("NULL"));
    require_rejected(db, insert("0"));
    CHECK(sqlite3_shell_run(db, insert("1")).status == 0);
    require_rejected(db, insert("1"));
    require_rejected(db, insert("3"));
    CHECK(sqlite3_shell_run(db, insert("2")).status == 0);
}

TEST_CASE("audit store: a row of an unknown kind is refused at open and by verification",
          "[audit]") {
    TempDir dir;
    const auto db = dir.path() / "audit.db";
    {
        auto store = new_store(db);
        REQUIRE(store->append(check_record(1)));
    }
    const auto result = sqlite3_shell_run(
        db, texts_stored_sql({"'sell'"}) + "INSERT INTO audit_log SELECT " +
                columns_with({{"seq", "2"}, {"kind", "'sell'"}}) + " FROM audit_log WHERE seq = 1");
    REQUIRE(result.status == 0);
    const auto reopened = AuditStore::open(db);
    REQUIRE_FALSE(reopened);
    CHECK(reopened.error().code == AuditErrc::broken_chain);
    CHECK_THAT(reopened.error().message, Catch::Contains("seq 2: unknown kind 'sell'"));
    CHECK(fault_of(db) == reopened.error().message);
}

TEST_CASE("audit store: a correct append through another connection is allowed and chains",
          "[audit]") {
    // The triggers enforce order, not authorship; a forged hash is the chain's to catch.
    TempDir dir;
    const auto db = dir.path() / "audit.db";
    {
        auto store = new_store(db);
        REQUIRE(store->append(check_record(1)));
    }
    CHECK(sqlite3_shell(db, "INSERT INTO audit_log SELECT " + columns_with({{"seq", "seq + 1"}}) +
                                " FROM audit_log WHERE seq = 1") == 0);
    const auto reopened = AuditStore::open(db);
    REQUIRE_FALSE(reopened);
    CHECK(reopened.error().message == "seq 2: altered: its hash does not match its contents");
}

TEST_CASE("audit store: concurrent submissions share transactions and each is answered once",
          "[audit]") {
    TempDir dir;
    const auto db = dir.path() / "audit.db";
    auto store = new_store(db);
    constexpr int threads = 8;
    constexpr int per_thread = 400;
    constexpr std::size_t total = threads * per_thread;

    Completions completions;
    std::vector<std::thread> submitters;
    for (int t = 0; t < threads; ++t) {
        submitters.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                store->submit(check_record(t * per_thread + i), completions.handler());
            }
        });
    }
    for (auto& thread : submitters) {
        thread.join();
    }
    completions.wait_for(total);
    store->close();

    CHECK(completions.calls() == total);
    CHECK(completions.errors().empty());
    auto seqs = completions.seqs();
    std::sort(seqs.begin(), seqs.end());
    REQUIRE(seqs.size() == total);
    for (std::size_t i = 0; i < total; ++i) {
        REQUIRE(seqs[i] == i + 1);
    }

    const auto stats = store->stats();
    CHECK(stats.records == total);
    CHECK(stats.transactions < total / 10);
    CHECK(stats.failed_batches == 0);
    check_intact(db, total);
}

TEST_CASE("audit store: no transaction takes more than max_batch records", "[audit]") {
    TempDir dir;
    AuditOptions options;
    options.max_batch = 2;
    auto store = new_store(dir.path() / "audit.db", options);
    Completions completions;
    for (int i = 0; i < 10; ++i) {
        store->submit(check_record(i), completions.handler());
    }
    completions.wait_for(10);
    store->close();
    CHECK(completions.errors().empty());
    CHECK(store->stats().records == 10);
    CHECK(store->stats().transactions >= 5);
}

TEST_CASE("audit store: a completion runs only once its row is visible to other connections",
          "[audit]") {
    TempDir dir;
    const auto db = dir.path() / "audit.db";
    auto store = new_store(db);
    std::mutex mutex;
    std::vector<std::pair<std::uint64_t, std::int64_t>> seen; // seq, rows with that seq
    Completions completions;
    for (int i = 0; i < 50; ++i) {
        store->submit(check_record(i),
                      [&, done = completions.handler()](AuditResult<std::uint64_t> result) mutable {
                          if (result) {
                              SqliteConnection reader(db);
                              const auto found =
                                  reader.count("SELECT COUNT(*) FROM audit_log WHERE seq = " +
                                               std::to_string(result.value()));
                              std::lock_guard lock(mutex);
                              seen.emplace_back(result.value(), found);
                          }
                          done(std::move(result));
                      });
    }
    completions.wait_for(50);
    REQUIRE(seen.size() == 50);
    for (const auto& [seq, found] : seen) {
        INFO("seq " << seq);
        CHECK(found == 1);
    }
}

TEST_CASE("audit store: policy texts are stored once per hash", "[audit]") {
    TempDir dir;
    const auto db = dir.path() / "audit.db";
    auto store = new_store(db);
    const PolicyFiles files{{"base.policy", "forbid a;"}, {"kenpo.policy", "permit b;"}};
    auto first = store->store_policy("sha256:one", files);
    REQUIRE(first);
    CHECK(first.value() == 2);
    auto again = store->store_policy("sha256:one", files);
    REQUIRE(again);
    CHECK(again.value() == 0);
    auto other = store->store_policy("sha256:two", {{"kenpo.policy", "permit c;"}});
    REQUIRE(other);
    CHECK(other.value() == 1);

    AuditRecord load;
    load.kind = to_string(AuditKind::load);
    load.policy_hash = "sha256:one";
    REQUIRE(store->append(load));
    AuditRecord failed;
    failed.kind = to_string(AuditKind::reload_failed);
    failed.detail = "kenpo.policy:1:8: error: expected ';'";
    REQUIRE(store->append(failed));
    store->close();

    CHECK(policy_files_of(db, "sha256:one") == files);
    CHECK(policy_files_of(db, "sha256:two") == PolicyFiles{{"kenpo.policy", "permit c;"}});
    CHECK(policy_files_of(db, "sha256:none").empty());
    CHECK(store->stats().policies == 3);
    const auto rows = rows_of(db);
    REQUIRE(rows.size() == 2);
    CHECK(rows[1].kind == to_string(AuditKind::reload_failed));
}

TEST_CASE("audit store: a write lock held past busy_timeout fails the batch, then it recovers",
          "[audit]") {
    LockedStore locked(std::chrono::milliseconds(100));
    const fs::path& db = locked.db;
    auto& store = locked.store;
    SqliteConnection& other = locked.other;
    Completions completions;
    for (int i = 0; i < 3; ++i) {
        store->submit(check_record(i), completions.handler());
    }
    completions.wait_for(3);
    CHECK(completions.seqs().empty());
    REQUIRE(completions.errors().size() == 3);
    for (const auto& error : completions.errors()) {
        CHECK(error.code == AuditErrc::unavailable);
    }
    CHECK_FALSE(store->available());
    CHECK_FALSE(store->health().available);
    CHECK_THAT(store->health().last_error, Catch::Contains("locked"));
    CHECK(store->stats().failed_batches >= 1);

    REQUIRE(other.exec("COMMIT") == SQLITE_OK);
    const auto next = store->append(check_record(5));
    REQUIRE(next);
    CHECK(next.value() == 2);
    CHECK(store->available());
    CHECK(store->health().last_seq == 2);
    store->close();
    CHECK(fault_of(db).empty());
}

TEST_CASE("audit store: a batch held up by a lock shows as the slowest transaction", "[audit]") {
    LockedStore locked(std::chrono::milliseconds(10'000));
    auto& store = locked.store;
    const AuditStats before = store->stats();
    // The writer's BEGIN waits for the other connection's lock, released after 60 ms.
    std::atomic<int> released{-1};
    std::thread release([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(60));
        released = locked.other.exec("COMMIT");
    });
    const auto started = std::chrono::steady_clock::now();
    const auto seq = store->append(check_record(2));
    const auto waited = std::chrono::steady_clock::now() - started;
    release.join();
    REQUIRE(released == SQLITE_OK);
    REQUIRE(seq);
    CHECK(seq.value() == 2);
    const AuditStats after = store->stats();
    CHECK(after.transactions == before.transactions + 1);
    CHECK(after.transactions_over_10ms == before.transactions_over_10ms + 1);
    CHECK(after.slowest_transaction_us >= 60'000);
    CHECK(after.slowest_transaction_us <=
          static_cast<std::uint64_t>(
              std::chrono::duration_cast<std::chrono::microseconds>(waited).count()));
    store->close();
}

TEST_CASE("audit store: rows queued behind a batch that fails take the places it left", "[audit]") {
    LockedStore locked(std::chrono::milliseconds(500));
    const fs::path& db = locked.db;
    auto& store = locked.store;
    SqliteConnection& other = locked.other;
    // Three rows queued by the failing row's completion (on the writer, once its batch
    // has failed) follow the log's head as committed, not the row that failed.
    Completions behind;
    std::promise<bool> first_failed;
    store->submit(check_record(2), [&](AuditResult<std::uint64_t> result) {
        for (int i = 3; i <= 5; ++i) {
            store->submit(check_record(i), behind.handler());
        }
        first_failed.set_value(!result.has_value());
    });
    REQUIRE(first_failed.get_future().get());
    REQUIRE(other.exec("COMMIT") == SQLITE_OK); // the next batch takes the lock
    behind.wait_for(3);
    CHECK(behind.errors().empty());
    CHECK(behind.seqs() == std::vector<std::uint64_t>{2, 3, 4});
    store->close();
    check_intact(db, 4);
    const auto rows = rows_of(db);
    REQUIRE(rows.size() == 4);
    CHECK(rows[1].uid == check_record(3).uid);
}

TEST_CASE("audit store: a full disk fails the batch, then it recovers when space is freed",
          "[daemon][audit][root]") {
    if (!SmallDisk::allowed()) {
        return;
    }
    SmallDisk small;
    const auto db = small.path() / "audit.db";
    auto store = new_store(db);
    REQUIRE(appended(*store, check_record(1)) == 1);

    const auto filler = small.path() / "filler";
    {
        std::ofstream out(filler, std::ios::binary);
        const std::string block(64 * 1024, 'x');
        while (out.write(block.data(), static_cast<std::streamsize>(block.size()))) {
            out.flush();
        }
    }
    // Rows larger than any WAL space left over from the first commit.
    auto big_record = [](int n) {
        auto record = check_record(n);
        record.request.append(200 * 1024, ' ');
        return record;
    };
    Completions completions;
    for (int i = 0; i < 4; ++i) {
        store->submit(big_record(i), completions.handler());
    }
    completions.wait_for(4);
    CHECK(completions.seqs().empty());
    REQUIRE(completions.errors().size() == 4);
    CHECK(completions.errors()[0].code == AuditErrc::unavailable);
    CHECK_FALSE(store->available());
    CHECK_THAT(store->health().last_error, Catch::Contains("full"));

    fs::remove(filler);
    const auto next = store->append(big_record(9));
    REQUIRE(next);
    CHECK(next.value() == 2);
    CHECK(store->available());
    store->close();
    check_intact(db, 2);
}

TEST_CASE("audit store: a WAL written out at open holds no frames: a crash's copy recovers "
          "exactly what was committed",
          "[audit]") {
    TempDir dir;
    const auto db = dir.path() / "audit.db";
    const fs::path wal = db.string() + "-wal";
    AuditOptions options;
    options.presize_wal = true;
    options.wal_restart_frames = 64;
    const std::uintmax_t written_out = 32 + 64 * (24 + 4096);
    auto store = new_store(db, options);
    REQUIRE(fs::exists(wal));
    CHECK(fs::file_size(wal) >= written_out);
    for (int i = 0; i < 10; ++i) {
        REQUIRE(store->append(check_record(i)));
    }
    // The files as a power cut would leave them, twice: the WAL's committed frames, then
    // the zeros it was written out with (and no -shm: whoever opens it next recovers it).
    const auto read_copy = dir.path() / "read.db";
    const auto reopened_copy = dir.path() / "reopened.db";
    for (const auto& copy : {read_copy, reopened_copy}) {
        fs::copy_file(db, copy);
        fs::copy_file(wal, copy.string() + "-wal");
        CHECK(fs::file_size(copy.string() + "-wal") >= written_out);
    }
    store->close();
    // A reader recovers the ten rows, and nothing of the zeros.
    check_intact(read_copy, 10);
    // The store reopened on the crash's WAL, to a greater length, writes it out past its
    // frames (leaving them be), and the chain goes on.
    options.wal_restart_frames = 128;
    auto again = open_store(reopened_copy, options);
    CHECK(fs::file_size(reopened_copy.string() + "-wal") >= 32 + 128 * (24 + 4096));
    REQUIRE(again->append(check_record(10)));
    again->close();
    check_intact(reopened_copy, 11);
    check_intact(db, 10);
}

TEST_CASE("audit store: a WAL that cannot be written out (a full disk) is left as it was",
          "[daemon][audit][root]") {
    if (!SmallDisk::allowed()) {
        return;
    }
    SmallDisk small;
    const auto db = small.path() / "audit.db";
    AuditOptions options;
    options.presize_wal = true; // 64 MiB of WAL on 2 MiB
    auto store = new_store(db, options);
    CHECK(fs::file_size(db.string() + "-wal") < 1024 * 1024);
    REQUIRE(appended(*store, check_record(1)) == 1);
    REQUIRE(appended(*store, check_record(2)) == 2);
    CHECK(store->available());
    store->close();
    check_intact(db, 2);
}

TEST_CASE("audit store: relaxed durability stores and chains the same rows", "[audit]") {
    TempDir dir;
    const auto db = dir.path() / "audit.db";
    AuditOptions options;
    options.durability = AuditDurability::relaxed;
    auto store = new_store(db, options);
    CHECK(store->durability() == AuditDurability::relaxed);
    CHECK(to_string(store->durability()) == "relaxed");
    REQUIRE(store->append(check_record(1)));
    REQUIRE(store->append(check_record(2)));
    store->close();
    CHECK(verified(db).rows == 2);
    CHECK(fault_of(db).empty());
}

TEST_CASE("audit store: a file that is not an audit store is refused", "[audit]") {
    TempDir dir;
    const auto db = dir.path() / "other.db";
    REQUIRE(sqlite3_shell(db, "CREATE TABLE t (x);") == 0);
    const auto store = AuditStore::open(db);
    REQUIRE_FALSE(store);
    CHECK(store.error().code == AuditErrc::bad_schema);

    const auto missing_dir = AuditStore::open(dir.path() / "no" / "such" / "audit.db");
    REQUIRE_FALSE(missing_dir);
    CHECK(missing_dir.error().code == AuditErrc::cannot_open);
}

TEST_CASE("audit store: submissions after close fail at once with closed", "[audit]") {
    TempDir dir;
    auto store = new_store(dir.path() / "audit.db");
    store->close();
    const auto result = store->append(check_record(1));
    REQUIRE_FALSE(result);
    CHECK(result.error().code == AuditErrc::closed);
}

TEST_CASE("audit store: the checkpointer copies the WAL into the database file by itself",
          "[audit]") {
    TempDir dir;
    const auto db = dir.path() / "audit.db";
    AuditOptions options;
    options.wal_restart_frames = std::size_t{1} << 30; // the writer never copies
    auto store = new_store(db, options);
    Completions completions;
    for (int i = 0; i < 2000; ++i) {
        store->submit(check_record(i), completions.handler());
    }
    completions.wait_for(2000);
    REQUIRE(completions.errors().empty());
    // Nothing but the checkpointer (every 100 ms) moves the rows out of the WAL.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (fs::file_size(db) < 512 * 1024 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(fs::file_size(db) >= 512 * 1024);
    store->close();
}

TEST_CASE("audit store: the checkpointer runs in the idle scheduling class", "[audit]") {
    const int before = idle_threads();
    TempDir dir;
    auto store = new_store(dir.path() / "audit.db");
    // The thread sets its class as it starts.
    CHECK(idle_threads_reach(before + 1));
    store->close();
    CHECK(idle_threads() == before);
}

TEST_CASE("audit store: the writer and the checkpointer carry their names", "[audit]") {
    const auto before = thread_names();
    CHECK(before.count("audit-writer") == 0);
    TempDir dir;
    auto store = new_store(dir.path() / "audit.db");
    REQUIRE(appended(*store, check_record(1)) == 1); // the writer runs: it has named itself
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (thread_names().count("wal-checkpoint") == before.count("wal-checkpoint") &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    const auto running = thread_names();
    CHECK(running.count("audit-writer") == 1);
    CHECK(running.count("wal-checkpoint") == before.count("wal-checkpoint") + 1);
    store->close();
    CHECK(thread_names().count("audit-writer") == 0);
}

TEST_CASE("audit store: SQLite keeps no allocation statistics in a process that links the store",
          "[audit]") {
    // Switched off before any connection: with them on, every allocation of the writer's
    // steps would take a process-wide mutex. A store at work allocates; none is counted.
    TempDir dir;
    auto store = new_store(dir.path() / "audit.db");
    REQUIRE(appended(*store, check_record(1)) == 1);
    CHECK(sqlite3_memory_used() == 0);
    CHECK(sqlite3_memory_highwater(0) == 0);
    store->close();
}

TEST_CASE("audit store: a hurried checkpointer leaves the idle class until the WAL is short",
          "[audit]") {
    TempDir dir;
    const auto db = dir.path() / "audit.db";
    new_store(db)->close();
    const int before = idle_threads();
    Checkpointer checkpointer(db, std::chrono::milliseconds(2000), 64);
    CHECK_FALSE(checkpointer.hurry()); // not running yet
    checkpointer.start();
    REQUIRE(idle_threads_reach(before + 1));
    if (!checkpointer.hurry()) {
        WARN("moving a thread out of the idle class needs CAP_SYS_NICE or RLIMIT_NICE >= 20");
        CHECK(idle_threads() == before + 1);
        return;
    }
    // At once in the normal class (unless a round has already put it back, and said so);
    // back in the idle one after a round that finds the WAL short (this one has no frames).
    const bool out_of_idle = idle_threads() == before;
    CHECK((out_of_idle || !checkpointer.hurried()));
    CHECK(idle_threads_reach(before + 1));
    CHECK_FALSE(checkpointer.hurried());
    checkpointer.stop();
    CHECK(idle_threads() == before);
}

TEST_CASE("audit store: a long WAL starts over, copied into the database file", "[audit]") {
    TempDir dir;
    const auto db = dir.path() / "audit.db";
    const auto wal = dir.path() / "audit.db-wal";
    AuditOptions options;
    options.wal_restart_frames = 64; // 256 KiB of 4 KiB pages
    auto store = new_store(db, options);
    constexpr int batches = 100;
    constexpr int per_batch = 100;
    std::uintmax_t longest_wal = 0;
    Completions completions;
    for (int b = 0; b < batches; ++b) {
        for (int i = 0; i < per_batch; ++i) {
            store->submit(check_record(b * per_batch + i), completions.handler());
        }
        completions.wait_for(static_cast<std::size_t>((b + 1) * per_batch));
        longest_wal = std::max(longest_wal, fs::file_size(wal));
        const auto pages = store->stats().wal_frames;
        CHECK(pages > 0);
        CHECK(pages < 4 * 64 + 100); // restarted by then; a batch adds under 100 pages
    }
    REQUIRE(completions.errors().empty());
    // 10,000 rows are about 2.7 MiB of pages; without restarts the WAL would hold them all.
    // It is restarted once it is 64 frames long, after at most four times that.
    CHECK(longest_wal < 4 * 1024 * 1024);
    // So the rows are in the database file, but for those the WAL holds now (which close
    // copies in): the file holds far more than one WAL's limit.
    const std::uintmax_t in_file = fs::file_size(db);
    const std::uintmax_t in_wal = std::uintmax_t{4096} * store->stats().wal_frames;
    store->close();
    const std::uintmax_t whole = fs::file_size(db);
    INFO("database file " << in_file << " bytes and WAL " << in_wal << " before close, " << whole
                          << " after");
    CHECK(in_file + in_wal >= whole);
    CHECK(in_file >= 4 * 64 * 4096);
    check_intact(db, batches * per_batch);
}

TEST_CASE("audit store: delivered completions run, a batch at a time, where deliver puts them",
          "[audit]") {
    TempDir dir;
    std::mutex mutex;
    std::condition_variable ready;
    std::vector<UniqueFunction<void()>> handed; // one entry per committed batch
    AuditOptions options;
    options.deliver = [&](UniqueFunction<void()> work) {
        std::lock_guard lock(mutex);
        handed.push_back(std::move(work));
        ready.notify_all();
    };
    auto store = new_store(dir.path() / "audit.db", options);
    std::atomic<int> called{0};
    // Another connection holds the write lock while the 50 are submitted: the writer
    // takes the first alone, waits for the lock, then the other 49 together.
    SqliteConnection other(dir.path() / "audit.db");
    REQUIRE(other.exec("BEGIN IMMEDIATE") == SQLITE_OK);
    for (int i = 0; i < 50; ++i) {
        store->submit_delivered(check_record(i), [&](AuditResult<std::uint64_t> result) {
            CHECK(result);
            ++called;
        });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    REQUIRE(other.exec("COMMIT") == SQLITE_OK);
    // Undelivered, nothing is called back, however long the rows have been committed.
    REQUIRE(store->append(check_record(99)).value() == 51);
    CHECK(called == 0);
    // Run what is handed over, as the daemon's serving thread does, until all 50 ran.
    std::size_t deliveries = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (called < 50 && std::chrono::steady_clock::now() < deadline) {
        std::vector<UniqueFunction<void()>> batches;
        {
            std::unique_lock lock(mutex);
            ready.wait_for(lock, std::chrono::milliseconds(100), [&] { return !handed.empty(); });
            batches.swap(handed);
        }
        deliveries += batches.size();
        for (auto& batch : batches) {
            batch();
        }
    }
    CHECK(called == 50);
    CHECK(deliveries >= 1);
    CHECK(deliveries <= 2); // one call per committed batch, not one per record
    store->close();
}
