// The v1 protocol: dispatch, checks through the audit store, status, describe and
// reload; see protocol.hpp and docs/protocol.md.
#include "daemon/protocol.hpp"

#include "daemon/audit_records.hpp"
#include "dsl/diagnostic.hpp"
#include "dsl/evaluator.hpp"
#include "dsl/policy_loader.hpp"
#include "dsl/request_json.hpp"

#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <systemd/sd-daemon.h>

#include <mutex>
#include <pthread.h>
#include <thread>

namespace flowgate::daemon {
namespace json = boost::json;
namespace asio = boost::asio;
using audit::AuditHealth;
using audit::AuditKind;
using audit::AuditRecord;
using audit::AuditResult;
using audit::AuditStats;
using audit::AuditStore;
using audit::ViewedRecord;

namespace {

json::object error_answer(const json::value& id, std::string_view code, std::string_view message) {
    return json::object{{"id", id}, {"error", {{"code", code}, {"message", message}}}};
}

json::array diagnostics_json(const dsl::Diagnostics& diagnostics) {
    json::array out;
    for (const dsl::Diagnostic& d : diagnostics) {
        out.push_back(json::object{
            {"file", d.file}, {"line", d.line}, {"column", d.column}, {"message", d.message}});
    }
    return out;
}

void notify(const char* state) {
    // Without systemd (NOTIFY_SOCKET unset) this does nothing.
    sd_notify(0, state);
}

std::string monotonic_usec_line() {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    auto usec = static_cast<std::uint64_t>(now.tv_sec) * 1'000'000u +
                static_cast<std::uint64_t>(now.tv_nsec) / 1000u;
    return "RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec);
}

// Loads given up on that may still run before a reload is refused outright: each holds a
// thread (stuck, say, on a file system that does not answer).
constexpr unsigned max_loads_running = 4;

// The second of the steady clock it is: what a uid's refusal budget counts in.
std::int64_t steady_second() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// The process's loads on their threads; see policy_loads_running().
std::atomic<unsigned> loads_running{0};

// What answer_decision splices into a decision's answer: ,"audit_seq": and up to 20 digits.
constexpr std::size_t audit_seq_bytes = sizeof(",\"audit_seq\":") - 1 + 20;

} // namespace

// One reload's load of the policy, shared by the serving thread and the thread that runs
// it. That thread touches nothing else of the daemon: once the reload gives up on it
// (its deadline passed, or the daemon stops), it ends on its own and its result is
// dropped.
struct Protocol::LoadJob {
    ReloadTrigger trigger;
    std::string description; // who asked, for the log
    std::mutex mutex;
    bool abandoned = false; // guarded by mutex
    bool loading = true;    // the serving thread's: the load has not been handed over yet
};

std::string_view daemon_version() {
    return "0.1.0";
}

unsigned policy_loads_running() {
    return loads_running.load();
}

Protocol::Protocol(asio::io_context& io, const Config& config, AuditStore& audit,
                   std::shared_ptr<const dsl::CompiledPolicy> policy, const CheckpointKey& signing,
                   const AnchorKeeper& anchor)
    : m_io(io), m_config(config), m_audit(audit), m_signing(signing), m_anchor(anchor),
      m_policy(std::move(policy)), m_reload_deadline(io), m_refusal_summary(io) {}

Protocol::~Protocol() {
    // A load still running is not waited for: it may never end.
    if (m_reload) {
        std::lock_guard lock(m_reload->mutex);
        m_reload->abandoned = true;
    }
}

void Protocol::refuse(const json::value& id, std::string_view code, std::string message,
                      std::string_view line, const Peer& peer, Answer answer) {
    ++m_counters.malformed;
    const std::int64_t second = steady_second();
    RefusalBudget& budget = m_refusals[peer.uid];
    if (budget.second != second) {
        budget.second = second;
        budget.recorded = 0;
    }
    arm_refusal_summary();
    json::object body = error_answer(id, code, message);
    if (budget.recorded >= m_config.limits.refused_rows_per_second) {
        // Answered now; counted into the row that sums up this uid's second.
        ++budget.unrecorded;
        budget.unrecorded_bytes += line.size();
        budget.peer = peer;
        answer(json::serialize(body));
        return;
    }
    ++budget.recorded;
    AuditRecord record = refusal_record(peer, service_name(m_config, peer.uid), line,
                                        m_policy->hash(), code, message);
    m_audit.submit_delivered(
        std::move(record),
        [body = std::move(body), answer = std::move(answer)](AuditResult<std::uint64_t>) mutable {
            // A refusal is answered whether or not its row could be written: it allows nothing.
            answer(json::serialize(body));
        });
}

void Protocol::arm_refusal_summary() {
    if (m_refusal_summary_armed) {
        return;
    }
    m_refusal_summary_armed = true;
    m_refusal_summary.expires_after(std::chrono::seconds(1));
    m_refusal_summary.async_wait([this](const boost::system::error_code& error) {
        m_refusal_summary_armed = false;
        if (!error) {
            record_unrecorded_refusals();
        }
    });
}

void Protocol::record_unrecorded_refusals() {
    const std::int64_t second = steady_second();
    for (auto it = m_refusals.begin(); it != m_refusals.end();) {
        RefusalBudget& budget = it->second;
        if (budget.unrecorded > 0) {
            const std::string message =
                std::to_string(budget.unrecorded) + " more lines (" +
                std::to_string(budget.unrecorded_bytes) +
                " bytes) from this uid could not be understood within one second; past "
                "refused_rows_per_second (" +
                std::to_string(m_config.limits.refused_rows_per_second) +
                ") they were answered but not recorded one by one";
            if (auto suppressed = m_refusal_log.admit()) {
                spdlog::warn("event=refusals_summed uid={} lines={} bytes={} suppressed={}",
                             budget.peer.uid, budget.unrecorded, budget.unrecorded_bytes,
                             *suppressed);
            }
            m_audit.submit_delivered(
                refusal_record(budget.peer, service_name(m_config, budget.peer.uid), {},
                               m_policy->hash(), "refusals_not_recorded", message),
                [](AuditResult<std::uint64_t> result) {
                    if (!result) {
                        spdlog::error("event=audit_event_lost kind=refused error=\"{}\"",
                                      result.error().message);
                    }
                });
            budget.unrecorded = 0;
            budget.unrecorded_bytes = 0;
        }
        it = budget.second < second ? m_refusals.erase(it) : std::next(it);
    }
    if (!m_refusals.empty()) {
        arm_refusal_summary();
    }
}

void Protocol::on_oversized_line(std::string_view received, const Peer& peer, Answer answer) {
    ++m_counters.requests;
    if (auto suppressed = m_refusal_log.admit()) {
        spdlog::warn("event=line_too_long uid={} pid={} limit={} suppressed={}", peer.uid, peer.pid,
                     m_config.limits.max_line_bytes, *suppressed);
    }
    // The row keeps the first bytes, and the length and SHA-256 of all that was received.
    refuse(nullptr, "line_too_long",
           "a request line may be at most " + std::to_string(m_config.limits.max_line_bytes) +
               " bytes; the connection is closed",
           received, peer, std::move(answer));
}

void Protocol::on_late_line(std::string_view received, const Peer& peer, Answer answer) {
    ++m_counters.requests;
    refuse(nullptr, "line_timeout",
           "a request line must be complete within " +
               std::to_string(m_config.limits.line_timeout.count()) +
               " ms of its first byte; the connection is closed",
           received, peer, std::move(answer));
}

void Protocol::on_too_many_refused(std::size_t refused, const Peer& peer, Answer answer) {
    if (auto suppressed = m_refusal_log.admit()) {
        spdlog::warn("event=too_many_refused uid={} pid={} refused={} action=disconnect "
                     "suppressed={}",
                     peer.uid, peer.pid, refused, *suppressed);
    }
    refuse(nullptr, "too_many_refused",
           std::to_string(refused) +
               " lines on this connection could not be understood (max_refused_lines); the "
               "connection is closed",
           {}, peer, std::move(answer));
}

std::string Protocol::too_many_connections_answer(const Peer* per_uid) {
    if (per_uid != nullptr) {
        return json::serialize(error_answer(
            nullptr, "too_many_connections",
            "this caller (uid " + std::to_string(per_uid->uid) + ") holds its maximum of " +
                std::to_string(m_config.limits.max_connections_per_uid) +
                " connections (max_connections_per_uid); close one or try again later"));
    }
    return json::serialize(error_answer(nullptr, "too_many_connections",
                                        "flowgated is serving its maximum number of clients; "
                                        "try again later"));
}

bool Protocol::on_line(std::string_view line, const Peer& peer, Answer answer) {
    ++m_counters.requests;
    boost::system::error_code error;
    // The request's tree lives in a reused buffer for the length of this call: nothing
    // of it may outlive it (the id is copied by assignment, into default storage).
    json::monotonic_resource scratch(m_parse_buffer.get(), parse_buffer_size);
    json::value parsed = json::parse(line, error, &scratch);
    dsl::RequestLine request = dsl::request_line_from_json(
        error ? nullptr : &parsed, error, dsl::RequestLimits{m_config.limits.max_categories});
    json::value id = nullptr;
    if (request.id != nullptr) {
        id = *request.id;
    }
    if (request.refusal) {
        refuse(id, request.refusal->code, std::move(request.refusal->message), line, peer,
               std::move(answer));
        return true;
    }
    switch (request.op) {
    case dsl::Operation::check:
    case dsl::Operation::explain:
        handle_check(request.fields, std::move(id), line, peer,
                     request.op == dsl::Operation::explain, std::move(answer));
        return false;
    case dsl::Operation::describe: {
        json::object body{{"id", id}};
        for (auto& [key, value] : dsl::describe_to_json(*m_policy)) {
            body[key] = value;
        }
        answer(json::serialize(body));
        return false;
    }
    case dsl::Operation::status:
        answer(json::serialize(status(id)));
        return false;
    case dsl::Operation::reload:
        handle_reload(id, line, peer, std::move(answer));
        return false;
    }
    return false;
}

void Protocol::handle_check(const dsl::Request& request, json::value id, std::string_view line,
                            const Peer& peer, bool explain, Answer answer) {
    // The snapshot this request is decided on, even if a reload swaps it meanwhile.
    std::shared_ptr<const dsl::CompiledPolicy> snapshot = m_policy;
    // Names resolved once, for the decision and for the row's identifiers. A request
    // with an unknown name is denied by the resolution itself.
    dsl::Decision unresolved;
    const std::optional<dsl::ResolvedRequest> resolved =
        dsl::resolve(*snapshot, request, unresolved);
    // An explain's answer, audit_seq included, stays within max_answer_bytes: its trace
    // records no more steps than could fit, and is cut to what does.
    const std::size_t answer_budget = m_config.limits.max_answer_bytes - audit_seq_bytes;
    dsl::Trace trace;
    dsl::Decision traced;
    const dsl::Decision* chosen = &unresolved;
    if (resolved && explain) {
        trace.max_steps = dsl::trace_steps_within(answer_budget);
        traced = dsl::decide(*snapshot, *resolved, &trace);
        chosen = &traced;
    } else if (resolved) {
        chosen = &m_decisions.decide(snapshot, *resolved);
    }
    const dsl::Decision& decision = *chosen;

    ViewedRecord record =
        decision_record(snapshot, explain ? AuditKind::explain : AuditKind::check, request,
                        resolved, decision, peer, service_name(m_config, peer.uid), line);
    bool allowed = decision.allowed;
    // Serialized here, on the serving thread, so that the audit writer only splices the
    // row's seq in: the writer's time is the daemon's throughput.
    std::string answer_text =
        dsl::decision_to_text(decision, id, explain ? &trace : nullptr, answer_budget);
    answer_text.reserve(answer_text.size() + 32); // room for the audit_seq

    m_audit.submit_delivered(
        std::move(record), [this, allowed, id = std::move(id), answer_text = std::move(answer_text),
                            snapshot = std::move(snapshot), answer = std::move(answer)](
                               AuditResult<std::uint64_t> committed) mutable {
            answer_decision(committed, allowed, id, std::move(answer_text), *snapshot, answer);
        });
}

void Protocol::answer_decision(const AuditResult<std::uint64_t>& committed, bool allowed,
                               const json::value& id, std::string answer_text,
                               const dsl::CompiledPolicy& snapshot, const Answer& answer) {
    if (committed) {
        ++(allowed ? m_counters.allowed : m_counters.denied);
        answer_text.pop_back(); // the object's closing brace
        answer_text += ",\"audit_seq\":";
        answer_text += std::to_string(committed.value());
        answer_text += '}';
        answer(std::move(answer_text));
        return;
    }
    // Never an allow that is not in the log.
    json::object denied{{"id", id},
                        {"decision", "deny"},
                        {"reason", audit::audit_unavailable_reason},
                        {"rule", nullptr},
                        {"legal_basis", nullptr},
                        {"obligations", json::array()},
                        {"policy", snapshot.hash()},
                        {"audit_seq", nullptr}};
    ++m_counters.denied;
    ++m_counters.audit_unavailable;
    answer(json::serialize(denied));
}

void Protocol::handle_reload(const json::value& id, std::string_view line, const Peer& peer,
                             Answer answer) {
    if (!is_admin(m_config, peer.uid)) {
        spdlog::warn("event=reload_refused uid={} pid={} service={}", peer.uid, peer.pid,
                     service_name(m_config, peer.uid));
        AuditRecord record =
            admin_refused_record(peer, service_name(m_config, peer.uid), line, m_policy->hash());
        json::object body =
            error_answer(id, "forbidden", "reload is for admins; this caller is not one");
        m_audit.submit_delivered(std::move(record),
                                 [body = std::move(body),
                                  answer = std::move(answer)](AuditResult<std::uint64_t>) mutable {
                                     answer(json::serialize(body));
                                 });
        return;
    }
    start_reload(ReloadTrigger{peer, service_name(m_config, peer.uid), std::string(line)},
                 "uid:" + std::to_string(peer.uid),
                 [id, answer = std::move(answer)](json::object body) mutable {
                     body["id"] = id;
                     answer(json::serialize(body));
                 });
}

json::object Protocol::status(const json::value& id) const {
    AuditHealth health = m_audit.health();
    AuditStats stats = m_audit.stats();
    auto uptime = std::chrono::duration_cast<std::chrono::seconds>(
        std::chrono::steady_clock::now() - m_started);
    auto loaded =
        std::chrono::duration_cast<std::chrono::seconds>(m_policy->loaded_at().time_since_epoch());
    json::object body{{"id", id},
                      {"version", daemon_version()},
                      {"policy", m_policy->hash()},
                      {"policy_loaded_at", loaded.count()},
                      {"uptime_s", uptime.count()}};
    body["counters"] = json::object{{"requests", m_counters.requests},
                                    {"allowed", m_counters.allowed},
                                    {"denied", m_counters.denied},
                                    {"malformed", m_counters.malformed},
                                    {"audit_unavailable", m_counters.audit_unavailable},
                                    {"reloads", m_counters.reloads},
                                    {"failed_reloads", m_counters.failed_reloads},
                                    {"connections", m_server ? m_server->connections() : 0},
                                    {"refused_connections", m_server ? m_server->refused() : 0}};
    body["audit"] = json::object{{"available", health.available},
                                 {"last_error", health.last_error},
                                 {"last_seq", health.last_seq},
                                 {"path", m_audit.path().string()},
                                 {"durability", to_string(m_audit.durability())},
                                 {"transactions", stats.transactions},
                                 {"records", stats.records},
                                 {"wal_pages", stats.wal_frames},
                                 {"slowest_transaction_us", stats.slowest_transaction_us},
                                 {"transactions_over_10ms", stats.transactions_over_10ms}};
    json::object checkpoints = checkpoint_key_status(m_signing);
    checkpoints["stored"] = stats.checkpoints;
    checkpoints["last_size"] = stats.checkpoint_size;
    for (auto& [key, value] : m_anchor.status()) {
        checkpoints[key] = value;
    }
    body["checkpoints"] = std::move(checkpoints);
    return body;
}

void Protocol::reload(std::string trigger, std::function<void(json::object)> done) {
    std::string description = trigger;
    start_reload(signal_trigger(std::move(trigger)), std::move(description), std::move(done));
}

void Protocol::start_reload(ReloadTrigger trigger, std::string description,
                            std::function<void(json::object)> done) {
    m_reload_waiters.push_back(std::move(done));
    if (m_reload) {
        return; // the reload in progress answers this caller too
    }
    auto job = std::make_shared<LoadJob>();
    job->trigger = std::move(trigger);
    job->description = std::move(description);
    m_reload = job;
    notify(monotonic_usec_line().c_str());
    spdlog::info("event=reload_started trigger={} policy={}", job->description,
                 m_config.policy_path);
    if (loads_running >= max_loads_running) {
        fail_reload(*job, {},
                    std::to_string(loads_running.load()) +
                        " earlier loads of the policy have not ended (a file system that does "
                        "not answer?); no new one is started until one does");
        return;
    }
    ++loads_running;
    try {
        std::thread([job, path = m_config.policy_path, io = &m_io, this] {
            pthread_setname_np(pthread_self(), "policy-load");
            {
                dsl::LoadResult loaded = dsl::load_policy(path);
                std::lock_guard lock(job->mutex);
                if (!job->abandoned) {
                    asio::post(*io, [this, job, loaded = std::move(loaded)]() mutable {
                        on_loaded(job, std::move(loaded));
                    });
                }
            } // what it loaded is freed before it counts as ended
            --loads_running;
        }).detach();
    } catch (const std::system_error& error) {
        --loads_running;
        fail_reload(*job, {},
                    std::string("cannot start a thread to load the policy: ") + error.what());
        return;
    }
    m_reload_deadline.expires_after(m_config.limits.reload_timeout);
    m_reload_deadline.async_wait([this, job](const boost::system::error_code& error) {
        if (!error) {
            on_reload_deadline(job);
        }
    });
}

void Protocol::on_reload_deadline(const std::shared_ptr<LoadJob>& job) {
    if (m_reload != job || !job->loading) {
        return; // loaded just in time: its completion was already on its way
    }
    job->loading = false;
    {
        std::lock_guard lock(job->mutex);
        job->abandoned = true;
    }
    dsl::Diagnostic late;
    late.file = m_config.policy_path;
    late.message = "the policy did not load within reload_timeout_ms (" +
                   std::to_string(m_config.limits.reload_timeout.count()) +
                   " ms); the load is abandoned and the old policy keeps serving";
    fail_reload(*job, {late}, dsl::format(late));
}

void Protocol::on_loaded(const std::shared_ptr<LoadJob>& job, dsl::LoadResult loaded) {
    if (m_reload != job || !job->loading) {
        return; // past its deadline: the reload has failed already
    }
    job->loading = false;
    m_reload_deadline.cancel();
    if (!loaded) {
        fail_reload(*job, loaded.diagnostics, dsl::format(loaded.diagnostics));
        return;
    }
    // The texts are stored before the row that names their hash, as at start.
    std::shared_ptr<const dsl::CompiledPolicy> policy = loaded.policy;
    m_audit.submit_policy(policy->hash(), policy_files(*policy),
                          [this, job, policy](AuditResult<std::uint64_t> stored) mutable {
                              // On the writer thread: the rest is the serving thread's.
                              asio::post(m_io, [this, job, policy = std::move(policy),
                                                stored = std::move(stored)]() mutable {
                                  record_reload(job, std::move(policy), stored);
                              });
                          });
}

void Protocol::record_reload(const std::shared_ptr<LoadJob>& job,
                             std::shared_ptr<const dsl::CompiledPolicy> policy,
                             const AuditResult<std::uint64_t>& stored) {
    if (!stored) {
        fail_reload(*job, {},
                    "the audit store cannot record the new policy: " + stored.error().message);
        return;
    }
    // The new policy serves only once the row that names it is committed: no decision is
    // taken under a policy the log does not show loaded.
    std::string previous = m_policy->hash();
    AuditRecord record = reload_record(job->trigger, policy->hash(), previous);
    m_audit.submit_delivered(
        std::move(record), [this, job, policy = std::move(policy), previous = std::move(previous)](
                               AuditResult<std::uint64_t> committed) mutable {
            if (!committed) {
                ++m_counters.failed_reloads;
                std::string message =
                    "the audit store cannot record the reload: " + committed.error().message;
                spdlog::error("event=reload_failed trigger={} error=\"{}\" keeping={}",
                              job->description, message, m_policy->hash());
                json::object body = error_answer(nullptr, "reload_failed", message);
                body["error"].as_object()["diagnostics"] = json::array();
                body["policy"] = m_policy->hash();
                finish_reload(body);
                return;
            }
            m_policy = std::move(policy);
            ++m_counters.reloads;
            spdlog::info("event=reload_ok trigger={} policy={} previous={}", job->description,
                         m_policy->hash(), previous);
            finish_reload(json::object{{"reloaded", true}, {"policy", m_policy->hash()}});
        });
}

void Protocol::fail_reload(const LoadJob& job, const dsl::Diagnostics& diagnostics,
                           const std::string& message) {
    ++m_counters.failed_reloads;
    json::object body = error_answer(nullptr, "reload_failed", message);
    body["error"].as_object()["diagnostics"] = diagnostics_json(diagnostics);
    body["policy"] = m_policy->hash();
    spdlog::error("event=reload_failed trigger={} errors={} keeping={}", job.description,
                  std::max<std::size_t>(diagnostics.size(), 1), m_policy->hash());
    for (const dsl::Diagnostic& d : diagnostics) {
        spdlog::error("event=policy_diagnostic at={}:{}:{} message=\"{}\"", d.file, d.line,
                      d.column, d.message);
    }
    if (diagnostics.empty()) {
        spdlog::error("event=reload_error message=\"{}\"", message);
    }
    // Answered once its row is committed, as a decision is: whoever asked can then find
    // it in the store.
    m_audit.submit_delivered(reload_failed_record(job.trigger, m_policy->hash(), message),
                             [this, body = std::move(body)](AuditResult<std::uint64_t> result) {
                                 if (!result) {
                                     spdlog::error("event=audit_event_lost kind=reload_failed "
                                                   "error=\"{}\"",
                                                   result.error().message);
                                 }
                                 finish_reload(body);
                             });
}

void Protocol::finish_reload(const json::object& body) {
    m_reload = nullptr;
    notify("READY=1");
    auto waiters = std::exchange(m_reload_waiters, {});
    for (const auto& waiter : waiters) {
        waiter(body);
    }
}

} // namespace flowgate::daemon
