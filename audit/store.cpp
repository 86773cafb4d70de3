// The audit store: schema and triggers, the group-committing writer thread, tail
// verification at open, and the read-only helpers the auditor tools use.
#include "audit/store.hpp"

#include "audit/reader.hpp"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <sched.h>
#include <thread>
#include <unistd.h>
#include <variant>

namespace flowgate::audit {

namespace outcome = boost::outcome_v2;

namespace {

constexpr int schema_version = 1;

// How often the checkpointer copies the WAL into the database file, and how soon it
// goes on while the WAL is longer than AuditOptions::wal_restart_frames.
constexpr std::chrono::milliseconds checkpoint_interval{100};
constexpr std::chrono::milliseconds hurried_checkpoint_interval{2};

// The most WAL frames the writer copies itself when it restarts a long WAL (1 MiB of
// 4 KiB pages): the checkpointer has copied the rest.
constexpr std::size_t wal_top_up_frames = 256;

// The zero hash as stored (hex), the prev_hash of row 1.
constexpr std::string_view genesis_hex =
    "0000000000000000000000000000000000000000000000000000000000000000";

// The append-only rules live in the database so that they hold for every connection,
// the sqlite3 shell included. A correct seq and prev_hash with a forged hash still
// gets in; that is what the chain is for.
constexpr const char* schema_sql = R"sql(
CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    time_us     INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    uid         INTEGER NOT NULL,
    gid         INTEGER NOT NULL,
    pid         INTEGER NOT NULL,
    service     TEXT NOT NULL,
    request     TEXT NOT NULL,
    decision    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    rule        TEXT NOT NULL,
    rule_source TEXT NOT NULL,
    legal_basis TEXT NOT NULL,
    obligations TEXT NOT NULL,
    policy_hash TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    activity    TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    direction   TEXT NOT NULL,
    data        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    detail      TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
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

std::int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

struct DbClose {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalize {
    void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using Db = std::unique_ptr<sqlite3, DbClose>;
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalize>;

AuditError sqlite_error(sqlite3* db, AuditErrc code, std::string_view doing) {
    std::string message(doing);
    message += ": ";
    message += db ? sqlite3_errmsg(db) : "out of memory";
    if (db) {
        message += " (";
        message += sqlite3_errstr(sqlite3_extended_errcode(db));
        message += ")";
    }
    return AuditError{code, std::move(message)};
}

AuditResult<Db> open_db(const std::filesystem::path& path, int flags,
                        std::chrono::milliseconds busy_timeout) {
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
    Db db(raw);
    if (rc != SQLITE_OK)
        return outcome::failure(
            sqlite_error(db.get(), AuditErrc::cannot_open, "opening " + path.string()));
    sqlite3_extended_result_codes(db.get(), 1);
    sqlite3_busy_timeout(db.get(), static_cast<int>(busy_timeout.count()));
    return db;
}

AuditResult<Stmt> prepare(sqlite3* db, std::string_view sql, AuditErrc code) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                           &raw, nullptr) != SQLITE_OK)
        return outcome::failure(sqlite_error(db, code, "preparing a statement"));
    return Stmt(raw);
}

AuditResult<void> exec(sqlite3* db, const char* sql, AuditErrc code, std::string_view doing) {
    if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK)
        return outcome::failure(sqlite_error(db, code, doing));
    return outcome::success();
}

std::string column_text(sqlite3_stmt* stmt, int column) {
    const auto* text = sqlite3_column_text(stmt, column);
    return text ? std::string(reinterpret_cast<const char*>(text),
                              static_cast<std::size_t>(sqlite3_column_bytes(stmt, column)))
                : std::string();
}

void bind_text(sqlite3_stmt* stmt, int index, std::string_view text) {
    // A null pointer would bind SQL NULL; an empty field is the empty string.
    sqlite3_bind_text64(stmt, index, text.data() != nullptr ? text.data() : "", text.size(),
                        SQLITE_STATIC, SQLITE_UTF8);
}

// A row's kind and decision are among the stored names.
AuditResult<void> check_names(const AuditRowView& row) {
    if (parse_audit_kind(row.kind) && parse_audit_decision(row.decision))
        return outcome::success();
    return outcome::failure(
        AuditError{AuditErrc::broken_chain, "row " + std::to_string(row.seq) + ": unknown kind '" +
                                                std::string(row.kind) + "' or decision '" +
                                                std::string(row.decision) + "'"});
}

// The statement's current row (selected as audit_row_columns), copied out.
AuditResult<AuditRow> read_row(sqlite3_stmt* stmt) {
    const AuditRowView view = audit_row_view(stmt);
    if (auto named = check_names(view); !named)
        return named.error();
    AuditRow row;
    row.seq = view.seq;
    AuditRecord& r = row.record;
    r.time_us = view.time_us;
    r.kind = *parse_audit_kind(view.kind);
    r.uid = view.uid;
    r.gid = view.gid;
    r.pid = view.pid;
    r.service = view.service;
    r.request = view.request;
    r.decision = *parse_audit_decision(view.decision);
    r.reason = view.reason;
    r.rule = view.rule;
    r.rule_source = view.rule_source;
    r.legal_basis = view.legal_basis;
    r.obligations = view.obligations;
    r.policy_hash = view.policy_hash;
    r.purpose = view.purpose;
    r.activity = view.activity;
    r.recipient = view.recipient;
    r.direction = view.direction;
    r.data = view.data;
    r.subject = view.subject;
    r.detail = view.detail;
    row.prev_hash = view.prev_hash;
    row.hash = view.hash;
    return row;
}

// Checks rows fed in seq order: each one's hash recomputed from its stored prev_hash
// and fields, and each linked to the one before (or to the genesis hash at seq 1).
class ChainChecker {
public:
    AuditResult<void> check(const AuditRowView& row) {
        auto broken = [&](std::string why) {
            return outcome::failure(
                AuditError{AuditErrc::broken_chain, "row " + std::to_string(row.seq) + ": " + why});
        };
        if (m_last_seq) {
            if (row.seq != *m_last_seq + 1)
                return broken("follows row " + std::to_string(*m_last_seq) +
                              " (a row is missing or out of sequence)");
            if (row.prev_hash != m_last_hash)
                return broken("prev_hash is not the hash of the row before");
        } else if (row.seq == 1 && row.prev_hash != genesis_hex) {
            return broken("the first row's prev_hash is not 32 zero bytes");
        }
        const auto prev = hash_from_hex(row.prev_hash);
        if (!prev)
            return broken("prev_hash is not 64 lowercase hex digits");
        canonical_row_bytes(row, m_canonical);
        if (to_hex(m_hasher.hash(*prev, m_canonical)) != row.hash)
            return broken("stored hash does not match the row's contents (altered)");
        m_last_seq = row.seq;
        m_last_hash = row.hash;
        ++m_rows;
        return outcome::success();
    }
    std::uint64_t rows() const { return m_rows; }
    std::optional<std::uint64_t> last_seq() const { return m_last_seq; }
    const std::string& last_hash() const { return m_last_hash; }

private:
    std::optional<std::uint64_t> m_last_seq;
    std::string m_last_hash;
    std::uint64_t m_rows = 0;
    ChainHasher m_hasher;
    std::string m_canonical;
};

// Verifies the rows with seq >= from_seq; with from_seq == 1, also that the chain starts
// at 1. The value: the last row's seq and hash (0 and the genesis hash when empty).
AuditResult<AuditVerifyReport> verify_rows(sqlite3* db, std::uint64_t from_seq) {
    auto first = prepare(db, "SELECT MIN(seq) FROM audit_log", AuditErrc::bad_schema);
    if (!first)
        return first.error();
    const int rc = sqlite3_step(first.value().get());
    if (rc != SQLITE_ROW)
        return outcome::failure(sqlite_error(db, AuditErrc::unavailable, "reading the audit log"));
    AuditVerifyReport report;
    report.last_hash = std::string(genesis_hex);
    if (sqlite3_column_type(first.value().get(), 0) == SQLITE_NULL)
        return report;
    report.first_seq = static_cast<std::uint64_t>(sqlite3_column_int64(first.value().get(), 0));
    if (report.first_seq != 1)
        return outcome::failure(AuditError{
            AuditErrc::broken_chain, "the first row has seq " + std::to_string(report.first_seq) +
                                         ", not 1 (rows were removed)"});

    auto rows = prepare(db,
                        std::string("SELECT ") + audit_row_columns +
                            " FROM audit_log WHERE seq >= ? ORDER BY seq",
                        AuditErrc::bad_schema);
    if (!rows)
        return rows.error();
    sqlite3_stmt* stmt = rows.value().get();
    sqlite3_bind_int64(stmt, 1, static_cast<sqlite3_int64>(from_seq));
    ChainChecker checker;
    int step = SQLITE_ROW;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        const AuditRowView row = audit_row_view(stmt);
        if (auto named = check_names(row); !named)
            return named.error();
        if (auto checked = checker.check(row); !checked)
            return checked.error();
    }
    if (step != SQLITE_DONE)
        return outcome::failure(sqlite_error(db, AuditErrc::unavailable, "reading the audit log"));
    report.first_seq = from_seq;
    report.rows_checked = checker.rows();
    report.last_seq = checker.last_seq().value_or(0);
    report.last_hash = checker.last_hash();
    return report;
}

AuditResult<std::uint64_t> max_seq(sqlite3* db) {
    auto stmt = prepare(db, "SELECT COALESCE(MAX(seq), 0) FROM audit_log", AuditErrc::bad_schema);
    if (!stmt)
        return stmt.error();
    if (sqlite3_step(stmt.value().get()) != SQLITE_ROW)
        return outcome::failure(sqlite_error(db, AuditErrc::unavailable, "reading the last seq"));
    return static_cast<std::uint64_t>(sqlite3_column_int64(stmt.value().get(), 0));
}

AuditResult<int> user_version(sqlite3* db) {
    auto stmt = prepare(db, "PRAGMA user_version", AuditErrc::bad_schema);
    if (!stmt)
        return stmt.error();
    if (sqlite3_step(stmt.value().get()) != SQLITE_ROW)
        return outcome::failure(sqlite_error(db, AuditErrc::cannot_open, "reading the schema"));
    return sqlite3_column_int(stmt.value().get(), 0);
}

// Creates the schema in a new file; accepts a file holding this schema version.
AuditResult<void> ensure_schema(sqlite3* db) {
    auto version = user_version(db);
    if (!version)
        return version.error();
    if (version.value() == schema_version)
        return outcome::success();
    if (version.value() != 0)
        return outcome::failure(AuditError{
            AuditErrc::bad_schema, "audit store schema version " + std::to_string(version.value()) +
                                       ", expected " + std::to_string(schema_version)});
    if (auto begun = exec(db, "BEGIN IMMEDIATE", AuditErrc::cannot_open, "creating the schema");
        !begun)
        return begun;
    auto rollback_with = [&](AuditError error) {
        sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        return outcome::failure(std::move(error));
    };
    auto tables = prepare(db, "SELECT COUNT(*) FROM sqlite_schema", AuditErrc::bad_schema);
    if (!tables)
        return rollback_with(tables.error());
    if (sqlite3_step(tables.value().get()) != SQLITE_ROW)
        return rollback_with(sqlite_error(db, AuditErrc::cannot_open, "reading the schema"));
    const auto existing = sqlite3_column_int64(tables.value().get(), 0);
    tables.value().reset();
    if (existing != 0)
        return rollback_with(AuditError{AuditErrc::bad_schema,
                                        "the file holds tables but is not a flowgate audit store"});
    if (auto created = exec(db, schema_sql, AuditErrc::cannot_open, "creating the schema");
        !created)
        return rollback_with(created.error());
    const std::string set_version = "PRAGMA user_version = " + std::to_string(schema_version);
    if (auto set = exec(db, set_version.c_str(), AuditErrc::cannot_open, "creating the schema");
        !set)
        return rollback_with(set.error());
    return exec(db, "COMMIT", AuditErrc::cannot_open, "creating the schema");
}

} // namespace

std::string_view to_string(AuditDurability durability) {
    switch (durability) {
    case AuditDurability::full:
        return "full";
    case AuditDurability::relaxed:
        return "relaxed";
    }
    return "unknown";
}

// The writer: the write connection, the queue, the thread and the chain's head.
class AuditStore::Writer {
public:
    struct PolicyJob {
        std::string hash;
        PolicyFiles files;
    };
    struct Job {
        std::variant<AuditRecord, ViewedRecord, PolicyJob> payload;
        AuditCompletion done;
        bool delivered = false; // completed through m_options.deliver
    };

    Writer(std::filesystem::path path, AuditOptions options)
        : m_path(std::move(path)), m_options(options) {}

    ~Writer() { close(); }

    AuditResult<void> start() {
        if (auto connected = connect(); !connected)
            return connected;
        {
            std::lock_guard lock(m_state_mutex);
            m_health.last_seq = m_last_seq;
            m_health.changed_us = now_us();
        }
        m_thread = std::thread([this] { run(); });
        m_checkpointer = std::thread([this] { checkpoint_loop(); });
        return outcome::success();
    }

    void submit(Job job) {
        {
            std::lock_guard lock(m_queue_mutex);
            if (!m_stopping) {
                if (m_queue.capacity() == 0) // handed over with the last batch
                    m_queue.reserve(256);
                m_queue.push_back(std::move(job));
                m_wake.notify_one();
                return;
            }
        }
        job.done(outcome::failure(AuditError{AuditErrc::closed, "the audit store is closed"}));
    }

    void close() {
        {
            std::lock_guard lock(m_queue_mutex);
            m_stopping = true;
        }
        m_wake.notify_one();
        m_checkpoint_wake.notify_one();
        std::lock_guard join_lock(m_join_mutex);
        if (m_thread.joinable())
            m_thread.join();
        if (m_checkpointer.joinable())
            m_checkpointer.join();
        m_statements = {};
        m_db.reset();
    }

    bool available() const noexcept { return m_available.load(std::memory_order_acquire); }
    AuditHealth health() const {
        std::lock_guard lock(m_state_mutex);
        return m_health;
    }
    AuditStats stats() const {
        std::lock_guard lock(m_state_mutex);
        return m_stats;
    }
    const std::filesystem::path& path() const noexcept { return m_path; }
    AuditDurability durability() const noexcept { return m_options.durability; }

private:
    // Copies the WAL into the database file now and then, on a connection of its own,
    // without blocking the writer (PASSIVE). A failure (a full disk, say) is retried on
    // the next round; the writer's health is what the daemon reports.
    void checkpoint_loop() {
        // Copying is background work: it runs when the serving thread and the writer
        // leave a processor free (if the system lets it: without, at the normal policy).
        // Should that starve it, the writer copies the WAL itself; see
        // restart_wal_if_long().
        sched_param idle{};
        sched_setscheduler(static_cast<pid_t>(::gettid()), SCHED_IDLE, &idle);
        Db db;
        auto pause = checkpoint_interval;
        for (;;) {
            {
                std::unique_lock lock(m_queue_mutex);
                m_checkpoint_wake.wait_for(lock, pause, [&] { return m_stopping; });
                if (m_stopping)
                    return;
            }
            if (!db) {
                auto opened = open_db(m_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                                      m_options.busy_timeout);
                if (!opened)
                    continue;
                db = std::move(opened).value();
                // A connection learns that the file is in WAL mode on its first read;
                // until then a checkpoint call on it does nothing at all.
                if (sqlite3_exec(db.get(), "SELECT COUNT(*) FROM sqlite_schema", nullptr, nullptr,
                                 nullptr) != SQLITE_OK) {
                    db.reset();
                    continue;
                }
            }
            int frames = 0;
            int copied = 0;
            const int rc = sqlite3_wal_checkpoint_v2(db.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                                     &frames, &copied);
            if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
                spdlog::debug("audit checkpoint failed: {}", sqlite3_errmsg(db.get()));
                db.reset();
            }
            m_checkpointed_frames.store(rc == SQLITE_OK && copied > 0 ? copied : 0,
                                        std::memory_order_relaxed);
            // A long WAL: go on copying, so that the writer is soon left only a little.
            pause = static_cast<std::size_t>(std::max(frames, 0)) >= m_options.wal_restart_frames
                        ? hurried_checkpoint_interval
                        : checkpoint_interval;
        }
    }

    // Runs a statement that returns no row, ready to run again.
    static bool step_once(sqlite3_stmt* stmt) {
        const bool done = sqlite3_step(stmt) == SQLITE_DONE;
        sqlite3_reset(stmt);
        return done;
    }

    struct Statements {
        Stmt begin; // BEGIN IMMEDIATE and COMMIT, prepared once rather than parsed per batch
        Stmt commit;
        Stmt insert_row;
        Stmt policy_exists;
        Stmt insert_policy;
    };

    // Opens the write connection, prepares it and reads the chain's head from the
    // file, verifying the tail: at start, and again after any failed batch, since a
    // failed COMMIT leaves it unsure what the file holds.
    AuditResult<void> connect() {
        m_statements = {};
        m_db.reset();
        auto db = open_db(m_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                          m_options.busy_timeout);
        if (!db)
            return db.error();
        sqlite3* raw = db.value().get();
        auto mode = prepare(raw, "PRAGMA journal_mode = WAL", AuditErrc::cannot_open);
        if (!mode)
            return mode.error();
        if (sqlite3_step(mode.value().get()) != SQLITE_ROW ||
            column_text(mode.value().get(), 0) != "wal")
            return outcome::failure(
                sqlite_error(raw, AuditErrc::cannot_open, "switching to WAL journal mode"));
        mode.value().reset();
        const char* synchronous = m_options.durability == AuditDurability::full
                                      ? "PRAGMA synchronous = FULL"
                                      : "PRAGMA synchronous = NORMAL";
        if (auto set = exec(raw, synchronous, AuditErrc::cannot_open, "setting durability"); !set)
            return set;
        // Checkpoints copy the WAL into the database file; done inside a commit they
        // would stall that batch's answers, so the checkpointer thread does them.
        if (auto set = exec(raw, "PRAGMA wal_autocheckpoint = 0", AuditErrc::cannot_open,
                            "handing checkpoints to the checkpointer");
            !set)
            return set;
        sqlite3_wal_hook(raw, &Writer::on_wal_commit, this);
        if (auto schema = ensure_schema(raw); !schema)
            return schema;

        auto last = max_seq(raw);
        if (!last)
            return last.error();
        const std::uint64_t window = m_options.tail_rows_to_verify;
        const std::uint64_t from = last.value() > window ? last.value() - window : 1;
        auto tail = verify_rows(raw, from);
        if (!tail)
            return tail.error();
        auto head = hash_from_hex(tail.value().last_hash);
        if (!head)
            return outcome::failure(
                AuditError{AuditErrc::broken_chain, "the last row's hash is not hex"});

        Statements statements;
        const std::string insert = std::string("INSERT INTO audit_log (") + audit_row_columns +
                                   ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";
        for (auto [target, sql] :
             {std::pair{&statements.begin, "BEGIN IMMEDIATE"},
              std::pair{&statements.commit, "COMMIT"},
              std::pair{&statements.insert_row, insert.c_str()},
              std::pair{&statements.policy_exists,
                        "SELECT 1 FROM policy_files WHERE policy_hash = ? AND name = ?"},
              std::pair{&statements.insert_policy,
                        "INSERT INTO policy_files (policy_hash, name, text, stored_us) "
                        "VALUES (?, ?, ?, ?)"}}) {
            auto stmt = prepare(raw, sql, AuditErrc::cannot_open);
            if (!stmt)
                return stmt.error();
            *target = std::move(stmt).value();
        }
        m_last_seq = tail.value().last_seq;
        m_last_hash = *head;
        m_db = std::move(db).value();
        m_statements = std::move(statements);
        return outcome::success();
    }

    void run() {
        std::vector<Job> batch;
        for (;;) {
            {
                std::unique_lock lock(m_queue_mutex);
                m_wake.wait(lock, [&] { return !m_queue.empty() || m_stopping; });
                if (m_queue.empty())
                    return;
                if (m_queue.size() <= m_options.max_batch) {
                    batch.swap(m_queue);
                } else {
                    auto split = m_queue.begin() + static_cast<std::ptrdiff_t>(m_options.max_batch);
                    batch.assign(std::make_move_iterator(m_queue.begin()),
                                 std::make_move_iterator(split));
                    m_queue.erase(m_queue.begin(), split);
                }
            }
            commit(batch);
            batch.clear();
        }
    }

    // One transaction for the whole batch; every job is answered after it ended.
    void commit(std::vector<Job>& batch) {
        auto fail_all = [&](AuditError error) {
            if (m_db)
                sqlite3_exec(m_db.get(), "ROLLBACK", nullptr, nullptr, nullptr);
            m_needs_connect = true;
            mark_unavailable(error.message);
            complete(batch, {}, AuditError{AuditErrc::unavailable, error.message});
        };
        if (m_needs_connect || !m_db) {
            if (auto connected = connect(); !connected)
                return fail_all(connected.error());
            m_needs_connect = false;
        }
        sqlite3* db = m_db.get();
        if (!step_once(m_statements.begin.get()))
            return fail_all(sqlite_error(db, AuditErrc::unavailable, "beginning a transaction"));

        std::uint64_t seq = m_last_seq;
        ChainHash head = m_last_hash;
        std::size_t rows = 0;
        std::size_t policy_files = 0;
        std::vector<std::uint64_t> values(batch.size());
        for (std::size_t i = 0; i < batch.size(); ++i) {
            if (!std::holds_alternative<PolicyJob>(batch[i].payload)) {
                AuditRowView row;
                if (auto* record = std::get_if<AuditRecord>(&batch[i].payload))
                    row = row_view(seq + 1, *record);
                else
                    row = std::get<ViewedRecord>(batch[i].payload).row;
                row.seq = seq + 1;
                canonical_row_bytes(row, m_canonical);
                const auto hash = m_hasher.hash(head, m_canonical);
                if (!insert_row(row, head, hash))
                    return fail_all(sqlite_error(db, AuditErrc::unavailable, "appending a row"));
                head = hash;
                values[i] = ++seq;
                ++rows;
            } else {
                auto stored = insert_policy(std::get<PolicyJob>(batch[i].payload));
                if (!stored)
                    return fail_all(
                        sqlite_error(db, AuditErrc::unavailable, "storing a policy text"));
                values[i] = *stored;
                policy_files += *stored;
            }
        }
        if (!step_once(m_statements.commit.get()))
            return fail_all(sqlite_error(db, AuditErrc::unavailable, "committing"));

        m_last_seq = seq;
        m_last_hash = head;
        {
            std::lock_guard lock(m_state_mutex);
            ++m_stats.transactions;
            m_stats.records += rows;
            m_stats.policies += policy_files;
            m_stats.wal_frames = m_wal_frames;
            m_health.last_seq = seq;
        }
        mark_available();
        complete(batch, std::move(values), std::nullopt);
        restart_wal_if_long();
    }

    // Called by SQLite after each commit with the WAL's length in frames.
    static int on_wal_commit(void* self, sqlite3* /*db*/, const char* /*name*/, int frames) {
        static_cast<Writer*>(self)->m_wal_frames = static_cast<std::size_t>(std::max(frames, 0));
        return SQLITE_OK;
    }

    // After a batch was answered: once the WAL is long and the checkpointer has copied
    // all but its last frames, copies those here, between two transactions, so that
    // the WAL is copied to its end and the next transaction starts it over. A WAL four
    // times too long (the checkpointer starved by a sustained overload) is copied here
    // whatever is left: the next batch waits, but the WAL stays bounded.
    void restart_wal_if_long() {
        if (m_wal_frames < m_options.wal_restart_frames)
            return;
        const std::size_t copied = m_checkpointed_frames.load(std::memory_order_relaxed);
        const bool starved = m_wal_frames >= 4 * m_options.wal_restart_frames;
        if (!starved && (copied > m_wal_frames || m_wal_frames - copied > wal_top_up_frames))
            return; // the checkpointer is behind; it hurries while the WAL is long
        int frames = 0;
        int done = 0;
        if (sqlite3_wal_checkpoint_v2(m_db.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &frames,
                                      &done) == SQLITE_OK &&
            frames == done)
            m_wal_frames = 0;
    }

    // Calls each job's completion with its value (or everyone's error): in place, or,
    // for delivered jobs, through m_options.deliver, the batch's in one call. The jobs
    // go along, so their records are freed on the thread that allocated them.
    void complete(std::vector<Job>& batch, std::vector<std::uint64_t> values,
                  std::optional<AuditError> error) {
        std::vector<Job> handed;
        std::vector<std::uint64_t> handed_values;
        if (m_options.deliver) {
            const bool all_delivered = std::all_of(batch.begin(), batch.end(),
                                                   [](const Job& job) { return job.delivered; });
            if (all_delivered) {
                handed = std::move(batch);
                handed_values = std::move(values);
                batch = std::vector<Job>();
            } else {
                for (std::size_t i = 0; i < batch.size(); ++i) {
                    if (!batch[i].delivered)
                        continue;
                    handed.push_back(std::move(batch[i]));
                    if (!error)
                        handed_values.push_back(values[i]);
                }
            }
        }
        for (std::size_t i = 0; i < batch.size(); ++i)
            if (batch[i].done && !(m_options.deliver && batch[i].delivered))
                finish(batch[i], result_of(error, values, i));
        if (handed.empty())
            return;
        m_options.deliver([handed = std::move(handed), values = std::move(handed_values),
                           error = std::move(error)]() mutable {
            for (std::size_t i = 0; i < handed.size(); ++i)
                finish(handed[i], result_of(error, values, i));
        });
    }

    // The i-th job's outcome: the batch's error, or its value.
    static AuditResult<std::uint64_t> result_of(const std::optional<AuditError>& error,
                                                const std::vector<std::uint64_t>& values,
                                                std::size_t i) {
        if (error)
            return outcome::failure(*error);
        return values[i];
    }

    bool insert_row(const AuditRowView& r, const ChainHash& prev, const ChainHash& hash) {
        sqlite3_stmt* stmt = m_statements.insert_row.get();
        sqlite3_reset(stmt);
        to_hex(prev, m_prev_hex);
        to_hex(hash, m_hash_hex);
        sqlite3_bind_int64(stmt, 1, static_cast<sqlite3_int64>(r.seq));
        sqlite3_bind_int64(stmt, 2, r.time_us);
        bind_text(stmt, 3, r.kind);
        sqlite3_bind_int64(stmt, 4, r.uid);
        sqlite3_bind_int64(stmt, 5, r.gid);
        sqlite3_bind_int64(stmt, 6, r.pid);
        bind_text(stmt, 7, r.service);
        bind_text(stmt, 8, r.request);
        bind_text(stmt, 9, r.decision);
        bind_text(stmt, 10, r.reason);
        bind_text(stmt, 11, r.rule);
        bind_text(stmt, 12, r.rule_source);
        bind_text(stmt, 13, r.legal_basis);
        bind_text(stmt, 14, r.obligations);
        bind_text(stmt, 15, r.policy_hash);
        bind_text(stmt, 16, r.purpose);
        bind_text(stmt, 17, r.activity);
        bind_text(stmt, 18, r.recipient);
        bind_text(stmt, 19, r.direction);
        bind_text(stmt, 20, r.data);
        bind_text(stmt, 21, r.subject);
        bind_text(stmt, 22, r.detail);
        bind_text(stmt, 23, m_prev_hex);
        bind_text(stmt, 24, m_hash_hex);
        const bool done = sqlite3_step(stmt) == SQLITE_DONE;
        sqlite3_reset(stmt);
        return done;
    }

    // The number of files newly stored, or nothing on a write failure.
    std::optional<std::size_t> insert_policy(const PolicyJob& job) {
        std::size_t stored = 0;
        const auto stored_us = now_us();
        for (const auto& [name, text] : job.files) {
            sqlite3_stmt* exists = m_statements.policy_exists.get();
            sqlite3_reset(exists);
            bind_text(exists, 1, job.hash);
            bind_text(exists, 2, name);
            const int found = sqlite3_step(exists);
            sqlite3_reset(exists);
            if (found == SQLITE_ROW)
                continue;
            if (found != SQLITE_DONE)
                return std::nullopt;
            sqlite3_stmt* insert = m_statements.insert_policy.get();
            sqlite3_reset(insert);
            bind_text(insert, 1, job.hash);
            bind_text(insert, 2, name);
            bind_text(insert, 3, text);
            sqlite3_bind_int64(insert, 4, stored_us);
            const bool done = sqlite3_step(insert) == SQLITE_DONE;
            sqlite3_reset(insert);
            if (!done)
                return std::nullopt;
            ++stored;
        }
        return stored;
    }

    static void finish(Job& job, AuditResult<std::uint64_t> result) {
        try {
            job.done(std::move(result));
        } catch (const std::exception& e) {
            spdlog::error("audit: a completion handler threw: {}", e.what());
        } catch (...) {
            spdlog::error("audit: a completion handler threw");
        }
    }

    void mark_unavailable(const std::string& message) {
        std::lock_guard lock(m_state_mutex);
        ++m_stats.failed_batches;
        m_health.last_error = message;
        if (m_health.available) {
            m_health.available = false;
            m_health.changed_us = now_us();
            m_available.store(false, std::memory_order_release);
            spdlog::error("audit store unavailable: path={} error=\"{}\"", m_path.string(),
                          message);
        }
    }

    void mark_available() {
        std::lock_guard lock(m_state_mutex);
        if (!m_health.available) {
            m_health.available = true;
            m_health.changed_us = now_us();
            m_available.store(true, std::memory_order_release);
            spdlog::info("audit store recovered: path={} last_seq={}", m_path.string(),
                         m_health.last_seq);
        }
    }

    const std::filesystem::path m_path;
    const AuditOptions m_options;

    // Owned by the writer thread once it runs.
    Db m_db;
    Statements m_statements;
    std::uint64_t m_last_seq = 0;
    ChainHash m_last_hash = genesis_hash;
    bool m_needs_connect = false;
    std::size_t m_wal_frames = 0; // the WAL's length after the last commit
    ChainHasher m_hasher;
    std::string m_canonical; // buffers reused from row to row
    std::string m_prev_hex;
    std::string m_hash_hex;

    std::mutex m_queue_mutex;
    std::condition_variable m_wake;
    std::vector<Job> m_queue;
    bool m_stopping = false;

    mutable std::mutex m_state_mutex;
    AuditHealth m_health;
    AuditStats m_stats;
    std::atomic<bool> m_available{true};

    std::mutex m_join_mutex;
    std::thread m_thread;
    std::condition_variable m_checkpoint_wake;
    std::thread m_checkpointer;
    std::atomic<std::size_t> m_checkpointed_frames{0}; // WAL frames copied by the last round
};

AuditResult<std::unique_ptr<AuditStore>> AuditStore::open(const std::filesystem::path& path,
                                                          const AuditOptions& options) {
    auto writer = std::make_unique<Writer>(path, options);
    if (auto started = writer->start(); !started)
        return started.error();
    return std::unique_ptr<AuditStore>(new AuditStore(std::move(writer)));
}

AuditStore::AuditStore(std::unique_ptr<Writer> writer) : m_writer(std::move(writer)) {}

AuditStore::~AuditStore() = default;

void AuditStore::submit(AuditRecord record, AuditCompletion done) {
    if (record.time_us == 0)
        record.time_us = now_us();
    m_writer->submit(Writer::Job{std::move(record), std::move(done)});
}

void AuditStore::submit_delivered(AuditRecord record, AuditCompletion done) {
    if (record.time_us == 0)
        record.time_us = now_us();
    m_writer->submit(Writer::Job{std::move(record), std::move(done), true});
}

void AuditStore::submit_delivered(ViewedRecord record, AuditCompletion done) {
    if (record.row.time_us == 0)
        record.row.time_us = now_us();
    m_writer->submit(Writer::Job{std::move(record), std::move(done), true});
}

AuditResult<std::uint64_t> AuditStore::append(AuditRecord record) {
    std::promise<AuditResult<std::uint64_t>> promise;
    auto future = promise.get_future();
    submit(std::move(record),
           [&promise](AuditResult<std::uint64_t> result) { promise.set_value(std::move(result)); });
    return future.get();
}

void AuditStore::submit_policy(std::string policy_hash, PolicyFiles files, AuditCompletion done) {
    m_writer->submit(
        Writer::Job{Writer::PolicyJob{std::move(policy_hash), std::move(files)}, std::move(done)});
}

AuditResult<std::size_t> AuditStore::store_policy(const std::string& policy_hash,
                                                  const PolicyFiles& files) {
    std::promise<AuditResult<std::uint64_t>> promise;
    auto future = promise.get_future();
    submit_policy(policy_hash, files, [&promise](AuditResult<std::uint64_t> result) {
        promise.set_value(std::move(result));
    });
    auto result = future.get();
    if (!result)
        return result.error();
    return static_cast<std::size_t>(result.value());
}

bool AuditStore::available() const noexcept {
    return m_writer->available();
}
AuditHealth AuditStore::health() const {
    return m_writer->health();
}
AuditStats AuditStore::stats() const {
    return m_writer->stats();
}
const std::filesystem::path& AuditStore::path() const noexcept {
    return m_writer->path();
}
AuditDurability AuditStore::durability() const noexcept {
    return m_writer->durability();
}
void AuditStore::close() {
    m_writer->close();
}

namespace {

AuditResult<Db> open_read_only(const std::filesystem::path& path) {
    auto db = open_db(path, SQLITE_OPEN_READONLY, std::chrono::milliseconds(2000));
    if (!db)
        return db;
    auto version = user_version(db.value().get());
    if (!version)
        return version.error();
    if (version.value() != schema_version)
        return outcome::failure(
            AuditError{AuditErrc::bad_schema, path.string() + " is not a flowgate audit store"});
    return db;
}

} // namespace

AuditResult<std::vector<AuditRow>> read_audit_rows(const std::filesystem::path& path,
                                                   std::uint64_t from_seq, std::size_t limit) {
    auto db = open_read_only(path);
    if (!db)
        return db.error();
    auto stmt = prepare(db.value().get(),
                        std::string("SELECT ") + audit_row_columns +
                            " FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT ?",
                        AuditErrc::bad_schema);
    if (!stmt)
        return stmt.error();
    sqlite3_bind_int64(stmt.value().get(), 1, static_cast<sqlite3_int64>(from_seq));
    sqlite3_bind_int64(stmt.value().get(), 2,
                       limit > INT64_MAX ? -1 : static_cast<sqlite3_int64>(limit));
    std::vector<AuditRow> rows;
    int step = SQLITE_ROW;
    while ((step = sqlite3_step(stmt.value().get())) == SQLITE_ROW) {
        auto row = read_row(stmt.value().get());
        if (!row)
            return row.error();
        rows.push_back(std::move(row).value());
    }
    if (step != SQLITE_DONE)
        return outcome::failure(
            sqlite_error(db.value().get(), AuditErrc::unavailable, "reading the audit log"));
    return rows;
}

AuditResult<PolicyFiles> read_policy_files(const std::filesystem::path& path,
                                           const std::string& policy_hash) {
    auto db = open_read_only(path);
    if (!db)
        return db.error();
    auto stmt = prepare(db.value().get(),
                        "SELECT name, text FROM policy_files WHERE policy_hash = ? ORDER BY name",
                        AuditErrc::bad_schema);
    if (!stmt)
        return stmt.error();
    bind_text(stmt.value().get(), 1, policy_hash);
    PolicyFiles files;
    int step = SQLITE_ROW;
    while ((step = sqlite3_step(stmt.value().get())) == SQLITE_ROW)
        files.emplace(column_text(stmt.value().get(), 0), column_text(stmt.value().get(), 1));
    if (step != SQLITE_DONE)
        return outcome::failure(
            sqlite_error(db.value().get(), AuditErrc::unavailable, "reading policy files"));
    return files;
}

AuditResult<AuditVerifyReport> verify_audit_file(const std::filesystem::path& path) {
    auto db = open_read_only(path);
    if (!db)
        return db.error();
    // One read transaction, so the rows checked are one consistent snapshot.
    if (auto begun = exec(db.value().get(), "BEGIN", AuditErrc::unavailable, "reading"); !begun)
        return begun.error();
    auto report = verify_rows(db.value().get(), 1);
    sqlite3_exec(db.value().get(), "COMMIT", nullptr, nullptr, nullptr);
    return report;
}

} // namespace flowgate::audit
