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
#include "audit/record.hpp"

#include <boost/outcome/basic_result.hpp>
#include <boost/outcome/policy/terminate.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace flowgate::audit {

enum class AuditErrc {
    unavailable,  // the store cannot be written now (disk full, I/O error, locked, read-only)
    broken_chain, // the rows do not chain: altered, removed or inserted out of sequence
    bad_schema,   // the file is not a flowgate audit store of this version
    cannot_open,  // the file cannot be opened or created
    closed,       // the store was closed before the record was submitted
};

struct AuditError {
    AuditErrc code = AuditErrc::unavailable;
    std::string message; // for operators: the SQLite message, or the row that fails
};

template <class T>
using AuditResult =
    boost::outcome_v2::basic_result<T, AuditError, boost::outcome_v2::policy::terminate>;

// A move-only callable, so that Asio completion handlers can be passed as they are.
template <class Signature> class UniqueFunction;

template <class R, class... Args> class UniqueFunction<R(Args...)> {
public:
    UniqueFunction() = default;
    template <class F>
    requires(!std::is_same_v<std::decay_t<F>, UniqueFunction> &&
             std::is_invocable_r_v<R, std::decay_t<F>&, Args...>)
        UniqueFunction(F&& function) // NOLINT(google-explicit-constructor): a callable is one
        : m_impl(std::make_unique<Impl<std::decay_t<F>>>(std::forward<F>(function))) {}

    R operator()(Args... args) { return m_impl->call(std::forward<Args>(args)...); }
    explicit operator bool() const noexcept { return m_impl != nullptr; }

private:
    struct Base {
        virtual ~Base() = default;
        virtual R call(Args... args) = 0;
    };
    template <class F> struct Impl final : Base {
        explicit Impl(F&& function) : m_function(std::move(function)) {}
        explicit Impl(const F& function) : m_function(function) {}
        R call(Args... args) override { return m_function(std::forward<Args>(args)...); }
        F m_function;
    };
    std::unique_ptr<Base> m_impl;
};

// Runs a piece of work on another thread: the daemon posts it to its serving thread.
using AuditDelivery = std::function<void(UniqueFunction<void()>)>;

enum class AuditDurability {
    full,    // synchronous=FULL: a committed row survives a power loss
    relaxed, // synchronous=NORMAL: survives a daemon crash; an OS crash or power loss may
             // lose the last commits. For test rigs and benchmarks, not for production.
};

std::string_view to_string(AuditDurability durability);

struct AuditOptions {
    AuditDurability durability = AuditDurability::full;
    // How long a write waits for another connection's lock before the batch fails.
    std::chrono::milliseconds busy_timeout{2000};
    // Upper bound on records per transaction, so one huge burst cannot hold the lock
    // (and its callers) for long.
    std::size_t max_batch = 4096;
    // Rows whose hashes open() recomputes; verify_audit_file() checks them all.
    std::size_t tail_rows_to_verify = 64;
    // The WAL is copied into the database file by a checkpointer thread. Under a
    // steady stream of commits it would never be copied to its very end, and so never
    // start over: once it holds this many frames (pages), the writer copies the last
    // few frames the checkpointer left after a commit, and the next transaction
    // starts the WAL from its beginning again.
    std::size_t wal_restart_frames = 16384;
    // Where the completions of submit_delivered() run (unset: on the writer thread).
    AuditDelivery deliver;
};

struct AuditHealth {
    bool available = true;
    std::string last_error;      // the last write failure, kept after recovery for status
    std::uint64_t last_seq = 0;  // the last committed row
    std::int64_t changed_us = 0; // when `available` last changed (epoch microseconds)
};

struct AuditStats {
    std::uint64_t transactions = 0;   // committed batches
    std::uint64_t records = 0;        // committed rows
    std::uint64_t failed_batches = 0; // batches whose records all got an error
    std::uint64_t policies = 0;       // policy files newly stored
    std::uint64_t wal_frames = 0;     // the WAL's length in pages after the last commit
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

// Policy file name → text, as read at load time.
using PolicyFiles = std::map<std::string, std::string>;

class AuditStore {
public:
    // Opens or creates the store, sets WAL and the durability, and verifies the tail of
    // the chain (the last tail_rows_to_verify rows recomputed, seqs contiguous, the
    // first row's seq 1). A broken tail is an error the daemon must refuse to start on.
    static AuditResult<std::unique_ptr<AuditStore>> open(const std::filesystem::path& path,
                                                         const AuditOptions& options = {});

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

// A row as read back from the file.
struct AuditRow {
    std::uint64_t seq = 0;
    AuditRecord record;
    std::string prev_hash; // hex
    std::string hash;      // hex
};

struct AuditVerifyReport {
    std::uint64_t rows_checked = 0;
    std::uint64_t first_seq = 0;
    std::uint64_t last_seq = 0;
    std::string last_hash; // hex; record it outside the file as a checkpoint
};

// Read-only access for the auditor tools and the tests; never takes the write lock.
// Returns rows with from_seq <= seq, in seq order, at most `limit`.
AuditResult<std::vector<AuditRow>> read_audit_rows(const std::filesystem::path& path,
                                                   std::uint64_t from_seq = 1,
                                                   std::size_t limit = SIZE_MAX);

// The policy files stored under the hash (empty if none).
AuditResult<PolicyFiles> read_policy_files(const std::filesystem::path& path,
                                           const std::string& policy_hash);

// Recomputes the whole chain: every row's hash, every link, seqs from 1 without a gap.
// Removing rows at the end is not visible in the chain alone; compare last_seq and
// last_hash with a checkpoint kept elsewhere.
AuditResult<AuditVerifyReport> verify_audit_file(const std::filesystem::path& path);

} // namespace flowgate::audit
