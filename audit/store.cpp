// The audit store's writer: the group-committing writer thread, the chain's head and
// its check at open, the WAL's restarts, and the hand-over of completions. The schema
// is audit/schema.cpp's, the chain verifier audit/verifier.cpp's, the WAL copying the
// checkpointer's (audit/checkpointer.cpp).
#include "audit/store.hpp"

#include "audit/checkpointer.hpp"
#include "audit/row_select.hpp"
#include "audit/schema.hpp"
#include "audit/signed_note.hpp"
#include "audit/sqlite.hpp"
#include "audit/tree_checkpoint.hpp"
#include "audit/tree_store.hpp"
#include "audit/verifier.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <fcntl.h>
#include <future>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <variant>
#include <vector>

namespace flowgate::audit {

namespace outcome = boost::outcome_v2;

namespace {

// The most WAL frames the writer copies itself when it restarts a long WAL (1 MiB of
// 4 KiB pages): the checkpointer has copied the rest.
constexpr std::size_t wal_top_up_frames = 256;

// SQLite's WAL format: a 32-byte header, then frames of a 24-byte header and a page.
constexpr std::int64_t wal_header_bytes = 32;
constexpr std::int64_t wal_frame_header_bytes = 24;

std::int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

AuditError broken(const ChainFault& fault) {
    return AuditError{AuditErrc::broken_chain, describe(fault)};
}

// Feeds the rows that `tail` selects (from the seq in parameter 1 on) to the verifier.
AuditResult<void> verify_rows(sqlite3* db, std::string_view tail, std::uint64_t from_seq,
                              ChainVerifier& verifier) {
    auto rows = RowSelect::prepare(db, schema_version, tail);
    if (!rows) {
        return rows.error();
    }
    sqlite3_bind_int64(rows.value().statement(), 1, static_cast<sqlite3_int64>(from_seq));
    for (;;) {
        auto row = rows.value().next();
        if (!row) {
            return row.error();
        }
        if (!row.value()) {
            return outcome::success();
        }
        if (!verifier.add(*row.value())) {
            return broken(*verifier.fault());
        }
    }
}

// The chain's head as the file holds it: the last row's seq and hash, once the first
// row and the last `window` rows verify. check_schema() has made sure that the rows are
// of this library's schema version, the one the verifiers hash by default.
struct ChainHead {
    std::uint64_t seq = 0;
    ChainHash hash = genesis_hash;
};

AuditResult<ChainHead> verify_head_and_tail(sqlite3* db, std::uint64_t window) {
    auto last = prepare(db, "SELECT COALESCE(MAX(seq), 0) FROM audit_log", AuditErrc::bad_schema);
    if (!last) {
        return last.error();
    }
    if (sqlite3_step(last.value().get()) != SQLITE_ROW) {
        return outcome::failure(sqlite_error(db, AuditErrc::unavailable, "reading the last seq"));
    }
    const auto last_seq = static_cast<std::uint64_t>(sqlite3_column_int64(last.value().get(), 0));
    last.value().reset();
    // The first row, wherever it is: rows removed from the start show here.
    ChainVerifier head;
    if (auto first = verify_rows(db, "WHERE seq >= ?1 ORDER BY seq LIMIT 1",
                                 static_cast<std::uint64_t>(INT64_MIN), head);
        !first) {
        return first.error();
    }
    const std::uint64_t from = last_seq > window ? last_seq - window : 1;
    ChainVerifier tail(from);
    if (auto checked = verify_rows(db, "WHERE seq >= ?1 ORDER BY seq", from, tail); !checked) {
        return checked.error();
    }
    return ChainHead{tail.last_seq(), tail.last_hash()};
}

// A new store's file, made whole beside PATH and then linked to it: link() refuses an
// existing PATH, so a store is never replaced, and no half-made file is ever at PATH.
// A WAL or journal left at PATH's name is refused too: SQLite would replay it into
// the new file.
AuditResult<void> create_store_file(const std::filesystem::path& path, std::string_view origin) {
    namespace fs = std::filesystem;
    for (const char* suffix : {"", "-wal", "-journal"}) {
        const fs::path existing = path.string() + suffix;
        std::error_code ignored;
        if (fs::symlink_status(existing, ignored).type() != fs::file_type::not_found) {
            return outcome::failure(AuditError{
                AuditErrc::cannot_open,
                existing.string() + " exists: a new store is never made over an existing one "
                                    "(move it away first to start a new chain)"});
        }
    }
    const fs::path made = path.string() + ".new-" + std::to_string(::getpid());
    std::error_code left_over; // by an earlier attempt of a process with this pid
    fs::remove(made, left_over);
    auto db = open_db(made, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      std::chrono::milliseconds(0));
    auto fail = [&](AuditError error) {
        std::error_code ignored;
        fs::remove(made, ignored);
        return outcome::failure(std::move(error));
    };
    if (!db) {
        return fail(db.error());
    }
    if (auto created = create_schema(db.value().get(), origin); !created) {
        db.value().reset();
        return fail(created.error());
    }
    db.value().reset();
    if (::link(made.c_str(), path.c_str()) != 0) {
        const int error = errno;
        return fail(AuditError{AuditErrc::cannot_open,
                               "creating " + path.string() + ": " + std::strerror(error)});
    }
    std::error_code ignored;
    fs::remove(made, ignored);
    return outcome::success();
}

// A single-value query's integer (0 when NULL), or nothing on failure.
std::optional<std::int64_t> query_int(sqlite3* db, const char* sql) {
    auto stmt = prepare(db, sql, AuditErrc::bad_schema);
    if (!stmt || sqlite3_step(stmt.value().get()) != SQLITE_ROW) {
        return std::nullopt;
    }
    return sqlite3_column_int64(stmt.value().get(), 0);
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
        : m_path(std::move(path)), m_options(std::move(options)),
          m_checkpointer(m_path, m_options.busy_timeout, m_options.wal_restart_frames) {}

    ~Writer() { close(); }

    AuditResult<void> start() {
        if (auto connected = connect(); !connected) {
            return connected;
        }
        {
            std::lock_guard lock(m_state_mutex);
            m_health.last_seq = m_last_seq;
            m_health.changed_us = now_us();
        }
        if (m_options.presize_wal) {
            presize_wal();
        }
        m_thread = std::thread([this] { run(); });
        m_checkpointer.start();
        return outcome::success();
    }

    void submit(Job job) {
        {
            std::lock_guard lock(m_queue_mutex);
            if (!m_stopping) {
                if (m_queue.capacity() == 0) { // handed over with the last batch
                    m_queue.reserve(256);
                }
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
        std::lock_guard join_lock(m_join_mutex);
        if (m_thread.joinable()) {
            m_thread.join();
        }
        m_checkpointer.stop();
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
    struct Statements {
        Stmt begin; // BEGIN IMMEDIATE and COMMIT, prepared once rather than parsed per batch
        Stmt commit;
        Stmt insert_row;
        Stmt policy_exists;
        Stmt insert_policy;
        Stmt insert_node;
        Stmt insert_checkpoint;
    };

    // Writes the WAL out to the length at which it restarts, past whatever it holds
    // (zeros, which no reader takes for frames: each frame carries the WAL's salt and a
    // running checksum). Until its first restart a WAL grows with every commit, and on
    // ext4 an fdatasync after an append also writes the file's new size and its blocks'
    // allocation: about twice the time of one that overwrites (0.18-0.25 ms against
    // 0.11-0.13 ms on the benchmark's machine). Done before the writer's first
    // transaction; a failure (a full disk) gives back what it added and changes nothing
    // else.
    void presize_wal() {
        const std::filesystem::path wal = m_path.string() + "-wal";
        const int fd = ::open(wal.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
            return; // no WAL opened: nothing to write out
        }
        struct stat status {};
        const std::int64_t page = query_int(m_db.get(), "PRAGMA page_size").value_or(4096);
        const auto target = static_cast<off_t>(
            wal_header_bytes + static_cast<std::int64_t>(m_options.wal_restart_frames) *
                                   (wal_frame_header_bytes + page));
        if (::fstat(fd, &status) == 0 && S_ISREG(status.st_mode) && status.st_size < target) {
            const std::vector<char> zeros(1 << 20);
            off_t at = status.st_size;
            while (at < target) {
                const auto length = std::min<off_t>(target - at, static_cast<off_t>(zeros.size()));
                const ssize_t written =
                    ::pwrite(fd, zeros.data(), static_cast<std::size_t>(length), at);
                if (written <= 0) {
                    break;
                }
                at += written;
            }
            if (at < target || ::fdatasync(fd) != 0) {
                const int error = errno;
                [[maybe_unused]] const int ignored = ::ftruncate(fd, status.st_size);
                spdlog::warn("audit: the WAL could not be written out to {} bytes ({}); it grows "
                             "as commits come",
                             target, std::strerror(error));
            }
        }
        ::close(fd);
    }

    // Opens the write connection, prepares it and reads the chain's head from the
    // file, verifying the tail: at start, and again after any failed batch, since a
    // failed COMMIT leaves it unsure what the file holds.
    AuditResult<void> connect() {
        m_statements = {};
        m_db.reset();
        // Never created here: a store that went missing is an error, not a new chain.
        std::error_code ignored;
        if (!std::filesystem::exists(m_path, ignored)) {
            return outcome::failure(
                AuditError{AuditErrc::cannot_open, "there is no audit store at " + m_path.string() +
                                                       "; " + std::string(create_store_hint)});
        }
        auto db =
            open_db(m_path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, m_options.busy_timeout);
        if (!db) {
            return db.error();
        }
        sqlite3* raw = db.value().get();
        // Before anything is written to the file, and again at every reconnect.
        if (auto schema = check_schema(raw, m_path); !schema) {
            return schema;
        }
        auto mode = prepare(raw, "PRAGMA journal_mode = WAL", AuditErrc::cannot_open);
        if (!mode) {
            return mode.error();
        }
        if (sqlite3_step(mode.value().get()) != SQLITE_ROW ||
            column_view(mode.value().get(), 0) != "wal") {
            return outcome::failure(
                sqlite_error(raw, AuditErrc::cannot_open, "switching to WAL journal mode"));
        }
        mode.value().reset();
        const char* synchronous = m_options.durability == AuditDurability::full
                                      ? "PRAGMA synchronous = FULL"
                                      : "PRAGMA synchronous = NORMAL";
        if (auto set = exec(raw, synchronous, AuditErrc::cannot_open, "setting durability"); !set) {
            return set;
        }
        // Checkpoints copy the WAL into the database file; done inside a commit they
        // would stall that batch's answers, so the checkpointer thread does them.
        if (auto set = exec(raw, "PRAGMA wal_autocheckpoint = 0", AuditErrc::cannot_open,
                            "handing checkpoints to the checkpointer");
            !set) {
            return set;
        }
        sqlite3_wal_hook(raw, &Writer::on_wal_commit, this);

        auto head = verify_head_and_tail(raw, m_options.tail_rows_to_verify);
        if (!head) {
            return head.error();
        }
        auto origin = prepare(raw, "SELECT origin FROM audit_origin", AuditErrc::bad_schema);
        if (!origin) {
            return origin.error();
        }
        if (sqlite3_step(origin.value().get()) != SQLITE_ROW) {
            return outcome::failure(AuditError{
                AuditErrc::bad_schema, m_path.string() + " holds no origin for its checkpoints"});
        }
        std::string origin_line(column_view(origin.value().get(), 0));
        origin.value().reset();
        const auto checkpoint_size =
            query_int(raw, "SELECT COALESCE(MAX(tree_size), 0) FROM audit_checkpoint");
        if (!checkpoint_size) {
            return outcome::failure(
                sqlite_error(raw, AuditErrc::unavailable, "reading the last checkpoint"));
        }
        // The tree's frontier from the nodes stored for the rows (a missing or short node
        // is a store someone changed).
        StoredTree tree(raw, schema_version);
        auto frontier = TreeFrontier::from_source(head.value().seq, tree);
        if (!frontier) {
            return outcome::failure(tree_error(frontier.error(), tree));
        }

        Statements statements;
        for (auto [target, sql] :
             {std::pair{&statements.begin, "BEGIN IMMEDIATE"},
              std::pair{&statements.commit, "COMMIT"},
              std::pair{&statements.insert_row, insert_row_sql().c_str()},
              std::pair{&statements.policy_exists,
                        "SELECT 1 FROM policy_files WHERE policy_hash = ? AND name = ?"},
              std::pair{&statements.insert_policy,
                        "INSERT INTO policy_files (policy_hash, name, text, stored_us) "
                        "VALUES (?, ?, ?, ?)"},
              std::pair{&statements.insert_node,
                        "INSERT INTO audit_tree (end, level, hash) VALUES (?, ?, ?)"},
              std::pair{&statements.insert_checkpoint,
                        "INSERT INTO audit_checkpoint (tree_size, time_us, note) "
                        "VALUES (?, ?, ?)"}}) {
            auto stmt = prepare(raw, sql, AuditErrc::cannot_open, true);
            if (!stmt) {
                return stmt.error();
            }
            *target = std::move(stmt).value();
        }
        auto texts = TextIds::open(raw);
        if (!texts) {
            return texts.error();
        }
        m_texts.emplace(std::move(texts).value());
        m_last_seq = head.value().seq;
        m_last_hash = head.value().hash;
        m_frontier = std::move(frontier).value();
        m_origin = std::move(origin_line);
        m_checkpoint_size = static_cast<std::uint64_t>(*checkpoint_size);
        m_checkpoint_due = true;
        m_db = std::move(db).value();
        m_statements = std::move(statements);
        return outcome::success();
    }

    void run() {
        // Named for top -H, perf and the benchmark's split of processor time by thread.
        pthread_setname_np(pthread_self(), "audit-writer");
        std::vector<Job> batch;
        for (;;) {
            {
                std::unique_lock lock(m_queue_mutex);
                m_wake.wait(lock, [&] { return !m_queue.empty() || m_stopping; });
                if (m_queue.empty()) {
                    lock.unlock();
                    checkpoint_at_close();
                    return;
                }
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

    // The last checkpoint, of the rows added since the one before (if any). A store
    // opened and closed without a write (a start refused after open) writes nothing: it
    // must not sign, nor hand to on_checkpoint, a tree it was never asked to add to.
    void checkpoint_at_close() {
        if (m_db && !m_needs_connect && m_stats.transactions != 0 &&
            m_last_seq != m_checkpoint_size) {
            std::vector<Job> none;
            m_checkpoint_due = true;
            commit(none);
        }
    }

    // One transaction for the whole batch; every job is answered after it ended.
    void commit(std::vector<Job>& batch) {
        auto fail_all = [&](AuditError error) {
            if (m_db) {
                sqlite3_exec(m_db.get(), "ROLLBACK", nullptr, nullptr, nullptr);
            }
            m_needs_connect = true;
            mark_unavailable(error.message);
            complete(batch, {}, AuditError{AuditErrc::unavailable, error.message});
        };
        if (m_needs_connect || !m_db) {
            if (auto connected = connect(); !connected) {
                return fail_all(connected.error());
            }
            m_needs_connect = false;
        }
        sqlite3* db = m_db.get();
        const auto began = std::chrono::steady_clock::now();
        if (!step_once(m_statements.begin.get())) {
            return fail_all(sqlite_error(db, AuditErrc::unavailable, "beginning a transaction"));
        }

        std::uint64_t seq = m_last_seq;
        ChainHash head = m_last_hash;
        std::size_t rows = 0;
        std::size_t policy_files = 0;
        std::vector<std::uint64_t> values(batch.size());
        for (std::size_t i = 0; i < batch.size(); ++i) {
            if (!std::holds_alternative<PolicyJob>(batch[i].payload)) {
                AuditRowView row;
                if (auto* record = std::get_if<AuditRecord>(&batch[i].payload)) {
                    row = view_of(*record);
                } else {
                    row = std::get<ViewedRecord>(batch[i].payload).row;
                }
                row.seq = seq + 1;
                canonical_row_bytes(row, schema_version, m_canonical);
                static_assert(chain_links_leaves(schema_version));
                const TreeHash leaf = m_tree_hasher.leaf(m_canonical);
                const auto hash = m_hasher.hash(head, hash_bytes(leaf));
                if (!insert_row(row, head, hash)) {
                    return fail_all(sqlite_error(db, AuditErrc::unavailable, "appending a row"));
                }
                if (!append_leaf(leaf)) {
                    return fail_all(sqlite_error(db, AuditErrc::unavailable, "storing the tree"));
                }
                head = hash;
                values[i] = ++seq;
                ++rows;
            } else {
                auto stored = insert_policy(std::get<PolicyJob>(batch[i].payload));
                if (!stored) {
                    return fail_all(
                        sqlite_error(db, AuditErrc::unavailable, "storing a policy text"));
                }
                values[i] = *stored;
                policy_files += *stored;
            }
        }
        std::optional<CheckpointRecord> checkpoint;
        const auto now = std::chrono::steady_clock::now();
        if (seq != m_checkpoint_size &&
            (m_checkpoint_due || now - m_checkpoint_time >= m_options.checkpoint_interval)) {
            auto made = store_checkpoint(seq);
            if (!made) {
                return fail_all(made.error());
            }
            checkpoint = std::move(made).value();
        }
        if (!step_once(m_statements.commit.get())) {
            return fail_all(sqlite_error(db, AuditErrc::unavailable, "committing"));
        }
        const auto took_us =
            static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                           std::chrono::steady_clock::now() - began)
                                           .count());

        m_last_seq = seq;
        m_last_hash = head;
        if (checkpoint) {
            m_checkpoint_size = seq;
            m_checkpoint_time = now;
            m_checkpoint_due = false;
        }
        {
            std::lock_guard lock(m_state_mutex);
            ++m_stats.transactions;
            m_stats.records += rows;
            m_stats.policies += policy_files;
            m_stats.wal_frames = m_wal_frames;
            m_stats.slowest_transaction_us = std::max(m_stats.slowest_transaction_us, took_us);
            m_stats.transactions_over_10ms += took_us > 10'000 ? 1 : 0;
            if (checkpoint) {
                ++m_stats.checkpoints;
                m_stats.checkpoint_size = seq;
            }
            m_health.last_seq = seq;
        }
        mark_available();
        complete(batch, std::move(values), std::nullopt);
        if (checkpoint) {
            announce(*checkpoint);
        }
        restart_wal_if_long();
    }

    // Appends a row's leaf to the tree, storing each complete subtree of a kept level.
    bool append_leaf(const TreeHash& leaf) {
        for (const TreeNode& node : m_frontier.append(leaf)) {
            if (node.id.level < tree_stored_from_level) {
                continue;
            }
            sqlite3_stmt* stmt = m_statements.insert_node.get();
            sqlite3_bind_int64(stmt, 1, static_cast<sqlite3_int64>(node_end(node.id)));
            sqlite3_bind_int(stmt, 2, static_cast<int>(node.id.level));
            sqlite3_bind_blob(stmt, 3, node.hash.data(), static_cast<int>(node.hash.size()),
                              SQLITE_STATIC);
            if (!step_once(stmt)) {
                return false;
            }
        }
        return true;
    }

    // The checkpoint of the tree of `size` rows (the frontier's), signed when there is a
    // key, inserted in the open transaction.
    AuditResult<CheckpointRecord> store_checkpoint(std::uint64_t size) {
        CheckpointRecord made;
        made.origin = m_origin;
        made.tree_size = size;
        made.root = m_frontier.root();
        made.time_us = now_us();
        auto body = format_tree_checkpoint(TreeCheckpoint{m_origin, size, made.root, {}});
        if (!body) {
            return outcome::failure(
                AuditError{AuditErrc::bad_schema,
                           "the log's origin cannot head a checkpoint: " + body.error().message});
        }
        if (m_options.signing_key) {
            auto note = sign_note(body.value(), *m_options.signing_key);
            if (!note) {
                return outcome::failure(AuditError{
                    AuditErrc::unavailable, "signing a checkpoint: " + note.error().message});
            }
            made.note = std::move(note).value();
            made.is_signed = true;
        } else {
            made.note = std::move(body).value();
        }
        sqlite3_stmt* stmt = m_statements.insert_checkpoint.get();
        sqlite3_bind_int64(stmt, 1, static_cast<sqlite3_int64>(size));
        sqlite3_bind_int64(stmt, 2, made.time_us);
        bind_text(stmt, 3, made.note);
        if (!step_once(stmt)) {
            return outcome::failure(
                sqlite_error(m_db.get(), AuditErrc::unavailable, "storing a checkpoint"));
        }
        return made;
    }

    // The journal's copy of a stored checkpoint, then the owner's.
    void announce(const CheckpointRecord& checkpoint) {
        spdlog::info("audit checkpoint: size={} signed={} note=\"{}\"", checkpoint.tree_size,
                     checkpoint.is_signed ? "yes" : "no", note_on_one_line(checkpoint.note));
        if (m_options.on_checkpoint) {
            try {
                m_options.on_checkpoint(checkpoint);
            } catch (const std::exception& e) {
                spdlog::error("audit: a checkpoint handler threw: {}", e.what());
            }
        }
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
        if (m_wal_frames < m_options.wal_restart_frames) {
            return;
        }
        const std::size_t copied = m_checkpointer.copied_frames();
        const bool starved = m_wal_frames >= 4 * m_options.wal_restart_frames;
        if (!starved && (copied > m_wal_frames || m_wal_frames - copied > wal_top_up_frames)) {
            return; // the checkpointer is behind; it hurries while the WAL is long
        }
        int frames = 0;
        int done = 0;
        const int copied_here = sqlite3_wal_checkpoint_v2(
            m_db.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &frames, &done);
        if (copied_here == SQLITE_OK && frames == done) {
            m_wal_frames = 0;
        } else if (starved) {
            // Something holds the WAL: the checkpointer itself, most likely, in the middle
            // of a round (its checkpoint's lock) or of the read it opens its connection
            // with (a reader's snapshot, which no frame after it may be copied past),
            // with no processor time to finish it under the load that made the WAL
            // long. It takes its turn at the normal class until the WAL is short again,
            // and the next batch tries once more.
            m_checkpointer.hurry();
        }
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
                    if (!batch[i].delivered) {
                        continue;
                    }
                    handed.push_back(std::move(batch[i]));
                    if (!error) {
                        handed_values.push_back(values[i]);
                    }
                }
            }
        }
        for (std::size_t i = 0; i < batch.size(); ++i) {
            if (batch[i].done && !(m_options.deliver && batch[i].delivered)) {
                finish(batch[i], result_of(error, values, i));
            }
        }
        if (handed.empty()) {
            return;
        }
        m_options.deliver([handed = std::move(handed), values = std::move(handed_values),
                           error = std::move(error)]() mutable {
            for (std::size_t i = 0; i < handed.size(); ++i) {
                finish(handed[i], result_of(error, values, i));
            }
        });
    }

    // The i-th job's outcome: the batch's error, or its value.
    static AuditResult<std::uint64_t> result_of(const std::optional<AuditError>& error,
                                                const std::vector<std::uint64_t>& values,
                                                std::size_t i) {
        if (error) {
            return outcome::failure(*error);
        }
        return values[i];
    }

    // Appends the row with its links; `row` is the writer's own copy.
    bool insert_row(AuditRowView& row, const ChainHash& prev, const ChainHash& hash) {
        sqlite3_stmt* stmt = m_statements.insert_row.get();
        sqlite3_reset(stmt);
        to_hex(prev, m_prev_hex);
        to_hex(hash, m_hash_hex);
        row.prev_hash = std::string_view(m_prev_hex, sizeof m_prev_hex);
        row.hash = std::string_view(m_hash_hex, sizeof m_hash_hex);
        return bind_row(stmt, row, *m_texts) && step_once(stmt);
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
            if (found == SQLITE_ROW) {
                continue;
            }
            if (found != SQLITE_DONE) {
                return std::nullopt;
            }
            sqlite3_stmt* insert = m_statements.insert_policy.get();
            sqlite3_reset(insert);
            bind_text(insert, 1, job.hash);
            bind_text(insert, 2, name);
            bind_text(insert, 3, text);
            sqlite3_bind_int64(insert, 4, stored_us);
            const bool done = sqlite3_step(insert) == SQLITE_DONE;
            sqlite3_reset(insert);
            if (!done) {
                return std::nullopt;
            }
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
    std::optional<TextIds> m_texts; // the connection's: made anew by every connect()
    std::uint64_t m_last_seq = 0;
    ChainHash m_last_hash = genesis_hash;
    bool m_needs_connect = false;
    std::size_t m_wal_frames = 0; // the WAL's length after the last commit
    ChainHasher m_hasher;
    TreeHasher m_tree_hasher;
    TreeFrontier m_frontier;
    std::string m_origin;
    std::uint64_t m_checkpoint_size = 0; // the tree size of the last stored checkpoint
    std::chrono::steady_clock::time_point m_checkpoint_time;
    bool m_checkpoint_due = true;
    std::string m_canonical; // buffers reused from row to row
    char m_prev_hex[64]{};
    char m_hash_hex[64]{};

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
    Checkpointer m_checkpointer;
};

AuditResult<std::unique_ptr<AuditStore>> AuditStore::open(const std::filesystem::path& path,
                                                          const AuditOptions& options) {
    auto writer = std::make_unique<Writer>(path, options);
    if (auto started = writer->start(); !started) {
        return started.error();
    }
    return std::unique_ptr<AuditStore>(new AuditStore(std::move(writer)));
}

AuditResult<std::unique_ptr<AuditStore>> AuditStore::create(const std::filesystem::path& path,
                                                            const AuditOptions& options,
                                                            std::string_view origin) {
    if (auto made = create_store_file(path, origin); !made) {
        return made.error();
    }
    return open(path, options);
}

AuditStore::AuditStore(std::unique_ptr<Writer> writer) : m_writer(std::move(writer)) {}

AuditStore::~AuditStore() = default;

void AuditStore::submit(AuditRecord record, AuditCompletion done) {
    if (record.time_us == 0) {
        record.time_us = now_us();
    }
    m_writer->submit(Writer::Job{std::move(record), std::move(done)});
}

void AuditStore::submit_delivered(AuditRecord record, AuditCompletion done) {
    if (record.time_us == 0) {
        record.time_us = now_us();
    }
    m_writer->submit(Writer::Job{std::move(record), std::move(done), true});
}

void AuditStore::submit_delivered(ViewedRecord record, AuditCompletion done) {
    if (record.row.time_us == 0) {
        record.row.time_us = now_us();
    }
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
    if (!result) {
        return result.error();
    }
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

} // namespace flowgate::audit
