// The v1 wire protocol on top of the engine and the audit store: one JSON object per
// line in, one per line out. Checks and explains are evaluated on the policy snapshot
// current when they arrive, written to the audit store, and answered only once their
// row is committed; a store that cannot be written turns every check into a deny with
// reason `audit_unavailable`. Reloads are read, parsed, checked and compiled on a
// thread of their own within a deadline, and swapped in on the serving thread once
// their row is committed.
#pragma once

#include "audit/store.hpp"
#include "daemon/anchor.hpp"
#include "daemon/audit_records.hpp"
#include "daemon/checkpoint_key.hpp"
#include "daemon/config.hpp"
#include "daemon/log_throttle.hpp"
#include "daemon/server.hpp"
#include "dsl/compiler.hpp"
#include "dsl/evaluator.hpp"
#include "dsl/policy_loader.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace flowgate::daemon {

// The serving thread owns these. Outcomes are counted as each decision's row commits,
// before it is answered, so a status asked after an answer already counts it.
struct Counters {
    std::uint64_t requests = 0;
    std::uint64_t allowed = 0;
    std::uint64_t denied = 0;
    std::uint64_t malformed = 0;
    std::uint64_t audit_unavailable = 0;
    std::uint64_t reloads = 0;
    std::uint64_t failed_reloads = 0;
};

class Protocol : public LineHandler {
public:
    // `signing` (the key checkpoints are signed with, or none) and `anchor` are what
    // status reports of the checkpoints.
    Protocol(boost::asio::io_context& io, const Config& config, audit::AuditStore& audit,
             std::shared_ptr<const dsl::CompiledPolicy> policy, const CheckpointKey& signing,
             const AnchorKeeper& anchor);
    ~Protocol() override;

    bool on_line(std::string_view line, const Peer& peer, Answer answer) override;
    void on_oversized_line(std::string_view received, const Peer& peer, Answer answer) override;
    void on_late_line(std::string_view received, const Peer& peer, Answer answer) override;
    void on_too_many_refused(std::size_t refused, const Peer& peer, Answer answer) override;
    std::string too_many_connections_answer(const Peer* per_uid) override;

    // Re-reads the policy off the serving thread; `done` gets the answer body (the new
    // hash, or an error with the diagnostics) on the serving thread. `trigger` ("signal")
    // names who asked, in the log and as the row's service; the row carries the daemon's
    // own credentials. The new policy serves once its `reload` row is committed; a load
    // that does not finish within reload_timeout_ms fails the reload, and is left to end
    // on its own thread with its result ignored. A reload asked while one is in progress
    // is answered by that one.
    void reload(std::string trigger, std::function<void(boost::json::object)> done);

    void set_server(const Server* server) { m_server = server; }
    const std::shared_ptr<const dsl::CompiledPolicy>& policy() const { return m_policy; }

private:
    // A check or explain: resolved, decided, its row submitted, answered once committed.
    void handle_check(const dsl::Request& request, boost::json::value id, std::string_view line,
                      const Peer& peer, bool explain, Answer answer);
    // The answer to a decision whose row committed (with its audit_seq) or did not (a deny).
    void answer_decision(const audit::AuditResult<std::uint64_t>& committed, bool allowed,
                         const boost::json::value& id, std::string answer_text,
                         const dsl::CompiledPolicy& snapshot, const Answer& answer);
    // A reload asked over the socket: an admin's is done, anyone else's refused and recorded.
    void handle_reload(const boost::json::value& id, std::string_view line, const Peer& peer,
                       Answer answer);
    // The steps of a reload, on the serving thread: the load started with its deadline;
    // loaded (or past the deadline); the new texts stored, then its row submitted, then
    // (committed) swapped in; or a failure recorded; and every waiter answered.
    struct LoadJob;
    void start_reload(ReloadTrigger trigger, std::string description,
                      std::function<void(boost::json::object)> done);
    void on_loaded(const std::shared_ptr<LoadJob>& job, dsl::LoadResult loaded);
    void on_reload_deadline(const std::shared_ptr<LoadJob>& job);
    void record_reload(const std::shared_ptr<LoadJob>& job,
                       std::shared_ptr<const dsl::CompiledPolicy> policy,
                       const audit::AuditResult<std::uint64_t>& stored);
    void fail_reload(const LoadJob& job, const dsl::Diagnostics& diagnostics,
                     const std::string& message);
    void finish_reload(const boost::json::object& body);
    // Answers a line that could not be understood with `code` and records it: a row of
    // its own, or, past refused_rows_per_second for the caller's uid, a count in the one
    // row that sums up that uid's second (see RefusalBudget).
    void refuse(const boost::json::value& id, std::string_view code, std::string message,
                std::string_view line, const Peer& peer, Answer answer);
    void arm_refusal_summary();
    // Writes the row summing up each uid's refusals past the limit, and forgets the
    // uids whose second is over.
    void record_unrecorded_refusals();
    boost::json::object status(const boost::json::value& id) const;

    boost::asio::io_context& m_io;
    const Config& m_config;
    audit::AuditStore& m_audit;
    const CheckpointKey& m_signing;
    const AnchorKeeper& m_anchor;
    std::shared_ptr<const dsl::CompiledPolicy> m_policy;
    const Server* m_server = nullptr;
    static constexpr std::size_t parse_buffer_size = 16 * 1024;
    std::unique_ptr<unsigned char[]> m_parse_buffer =
        std::make_unique<unsigned char[]>(parse_buffer_size);
    std::shared_ptr<LoadJob> m_reload; // the reload in progress, or null
    std::vector<std::function<void(boost::json::object)>> m_reload_waiters;
    boost::asio::steady_timer m_reload_deadline;
    std::chrono::steady_clock::time_point m_started = std::chrono::steady_clock::now();
    Counters m_counters;
    // Refusals recorded this second for one uid, and those past the limit, which one row
    // sums up when the second is over: a client sending junk as fast as it can grows the
    // store by a bounded number of rows a second, not by the bytes it sends.
    struct RefusalBudget {
        std::int64_t second = 0; // of the steady clock
        std::size_t recorded = 0;
        std::uint64_t unrecorded = 0;
        std::uint64_t unrecorded_bytes = 0;
        Peer peer; // the last refused caller of that uid
    };
    std::unordered_map<uid_t, RefusalBudget> m_refusals;
    boost::asio::steady_timer m_refusal_summary;
    bool m_refusal_summary_armed = false;
    LogThrottle m_refusal_log;
    dsl::DecisionCache m_decisions; // checks of the current policy, by resolved request
};

// The version flowgated reports.
std::string_view daemon_version();

// Loads of the policy still running on their threads, those a reload gave up on
// included. A process that exits while one runs must not run its static destructors
// (OpenSSL's among them) under it.
unsigned policy_loads_running();

} // namespace flowgate::daemon
