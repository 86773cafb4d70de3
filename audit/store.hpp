// The append-only, hash-chained SQLite audit store (docs/audit-store.md). The daemon
// answers no decision before the decision's row is committed, so this is where every
// answered decision becomes evidence: one writer thread owns the write connection,
// batches whatever decisions are waiting into one transaction (one fsync per batch,
// not per decision), chains each row to the one before it, and calls each submitter
// back only after COMMIT returned. When the file cannot be written, submitters get
// an error (the daemon answers deny, reason audit_unavailable), health() says so, and
// the next submission tries again.
#pragma once

#include "audit/canonical.hpp"
#include "audit/error.hpp"
#include "audit/merkle.hpp"
#include "audit/record.hpp"
#include "audit/signing_key.hpp"
#include "audit/unique_function.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace flowgate::audit {

// Runs a piece of work on another thread: the daemon posts it to its serving thread.
using AuditDelivery = std::function<void(UniqueFunction<void()>)>;

enum class AuditDurability {
    full,    // synchronous=FULL: a committed row survives a power loss
    relaxed, // synchronous=NORMAL: survives a daemon crash; an OS crash or power loss may
             // lose the last commits. For test rigs and benchmarks, not for production.
};

std::string_view to_string(AuditDurability durability);

// A checkpoint the writer stored: the tree of the log's first tree_size rows, as a
// c2sp.org/tlog-checkpoint body in a signed note (audit/signed_note.hpp) when the store
// has a signing key, or the body alone (unsigned).
struct CheckpointRecord {
    std::string origin;
    std::uint64_t tree_size = 0;
    TreeHash root{};
    std::int64_t time_us = 0;
    std::string note;
    bool is_signed = false;
};

struct AuditOptions {
    AuditDurability durability = AuditDurability::full;
    // How long a write waits for another connection's lock before the batch fails.
    std::chrono::milliseconds busy_timeout{2000};
    // Upper bound on records per transaction, so one huge burst cannot hold the lock
    // (and its callers) for long.
    std::size_t max_batch = 4096;
    // Rows whose hashes open() recomputes (with the first row); verify_log() checks them
    // all.
    std::size_t tail_rows_to_verify = 64;
    // The WAL is copied into the database file by a checkpointer thread. Under a
    // steady stream of commits it would never be copied to its very end, and so never
    // start over: once it holds this many frames (pages), the writer copies the last
    // few frames the checkpointer left after a commit, and the next transaction
    // starts the WAL from its beginning again.
    std::size_t wal_restart_frames = 16384;
    // Whether open() writes the WAL out to that length first (wal_restart_frames pages
    // and their headers: 64 MiB by default), so that commits overwrite it rather than
    // make it grow: the daemon's choice; tests and tools leave it off.
    bool presize_wal = false;
    // Where the completions of submit_delivered() run (unset: on the writer thread).
    AuditDelivery deliver;
    // The key the checkpoints are signed with; none: they are stored unsigned.
    std::shared_ptr<const SigningKey> signing_key;
    // The writer stores a checkpoint of the tree in the transaction of the first batch
    // after open, of each batch that comes this long after the last checkpoint, and in
    // one transaction of its own at close when rows were added since the last (and this
    // store committed anything: one opened and closed without a write writes nothing).
    std::chrono::milliseconds checkpoint_interval{1000};
    // Called on the writer thread with each checkpoint, once its transaction committed
    // (after the journal's line for it); must not block.
    std::function<void(const CheckpointRecord&)> on_checkpoint;
};

struct AuditHealth {
    bool available = true;
    std::string last_error;      // the last write failure, kept after recovery for status
    std::uint64_t last_seq = 0;  // the last committed row
    std::int64_t changed_us = 0; // when `available` last changed (epoch microseconds)
};

struct AuditStats {
    std::uint64_t transactions = 0;    // committed batches
    std::uint64_t records = 0;         // committed rows
    std::uint64_t failed_batches = 0;  // batches whose records all got an error
    std::uint64_t policies = 0;        // policy files newly stored
    std::uint64_t wal_frames = 0;      // the WAL's length in pages after the last commit
    std::uint64_t checkpoints = 0;     // checkpoints stored
    std::uint64_t checkpoint_size = 0; // the tree size of the last one stored
    // How long committed batches took, BEGIN to COMMIT (the commit's fsync included):
    // the wait they added to their requests and to those queued behind them. A slow
    // disk, a lock held by another connection, or a starved writer shows here.
    std::uint64_t slowest_transaction_us = 0; // the longest since the store opened
    std::uint64_t transactions_over_10ms = 0;
};

// Called once, after the row's transaction committed (the value is the row's seq) or
// failed (the error): from the writer thread, or (submit_delivered) through
// AuditOptions::deliver. On the writer thread it must not block.
using AuditCompletion = UniqueFunction<void(AuditResult<std::uint64_t>)>;

// A row handed over as views (its seq, prev_hash and hash are the writer's), with what
// keeps the viewed bytes alive until the row is written: for the daemon's decisions,
// the policy snapshot (rule, source, identifiers, hash) and one buffer holding the
// request's own text, instead of a string copied and allocated per field. A zero
// time_us is stamped at submission.
struct ViewedRecord {
    AuditRowView row;
    std::shared_ptr<const void> owner;
};

class AuditStore {
public:
    // Opens an existing store (never creates one: a missing file is cannot_open, with
    // create_store_hint), checks that its schema is exactly the one create() makes
    // (check_schema(): bad_schema naming each missing, changed or unexpected table,
    // trigger or index), sets WAL and the durability, and verifies the head and the tail
    // of the chain through the chain verifier (audit/verifier.hpp): the first row is
    // seq 1 chained from 32 zero bytes, and the last tail_rows_to_verify rows are
    // recomputed and linked. Each of these errors is one the daemon must refuse to
    // start on.
    static AuditResult<std::unique_ptr<AuditStore>> open(const std::filesystem::path& path,
                                                         const AuditOptions& options = {});

    // Makes a new, empty store at PATH, then opens it as open() does. Refuses (with
    // cannot_open) when PATH, or a WAL or journal of that name, exists: a store is
    // never made over another one. `origin`: the checkpoints' origin line
    // (default_log_origin() when empty).
    static AuditResult<std::unique_ptr<AuditStore>> create(const std::filesystem::path& path,
                                                           const AuditOptions& options = {},
                                                           std::string_view origin = {});

    // Drains what was submitted, then stops the writer.
    ~AuditStore();
    AuditStore(const AuditStore&) = delete;
    AuditStore& operator=(const AuditStore&) = delete;

    // Queues the record; `done` is called once, after its transaction. Cheap: a lock, a
    // push and a notify. A record whose time_us is 0 is stamped now.
    void submit(AuditRecord record, AuditCompletion done);

    // As submit, but the completions of a committed batch's delivered records are handed
    // to AuditOptions::deliver in one call, which runs them (and frees the records) on
    // the thread that submitted them: the writer then neither calls into the daemon's
    // sessions nor frees memory another thread allocated, once per decision.
    void submit_delivered(AuditRecord record, AuditCompletion done);
    void submit_delivered(ViewedRecord record, AuditCompletion done);

    // As submit, waiting for the commit: for start, stop, load and reload events.
    AuditResult<std::uint64_t> append(AuditRecord record);

    // Stores the policy's files under its hash unless that hash is stored already;
    // waits for the commit. Load the policy only if this succeeded, so that every
    // decision can be replayed. The value: how many files were newly stored.
    AuditResult<std::size_t> store_policy(const std::string& policy_hash, const PolicyFiles& files);

    // As store_policy, calling back instead of waiting (the value: files newly stored).
    void submit_policy(std::string policy_hash, PolicyFiles files, AuditCompletion done);

    // From any thread.
    bool available() const noexcept;
    AuditHealth health() const;
    AuditStats stats() const;
    const std::filesystem::path& path() const noexcept;
    AuditDurability durability() const noexcept;

    // Drains the queue and stops the writer; later submissions fail with `closed`.
    void close();

private:
    class Writer;
    explicit AuditStore(std::unique_ptr<Writer> writer);
    std::unique_ptr<Writer> m_writer;
};

} // namespace flowgate::audit
