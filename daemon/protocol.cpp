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

} // namespace

std::string_view daemon_version() {
    return "0.1.0";
}

Protocol::Protocol(asio::io_context& io, const Config& config, AuditStore& audit,
                   std::shared_ptr<const dsl::CompiledPolicy> policy)
    : m_io(io), m_config(config), m_audit(audit), m_policy(std::move(policy)) {}

Protocol::~Protocol() {
    m_worker.join();
}

void Protocol::refuse(const json::value& id, std::string_view code, std::string message,
                      std::string_view line, const Peer& peer, Answer answer) {
    ++m_counters.malformed;
    AuditRecord record = refusal_record(peer, service_name(m_config, peer.uid), line,
                                        m_policy->hash(), code, message);
    json::object body = error_answer(id, code, message);
    m_audit.submit_delivered(
        std::move(record),
        [body = std::move(body), answer = std::move(answer)](AuditResult<std::uint64_t>) mutable {
            // A refusal is answered whether or not its row could be written: it allows nothing.
            answer(json::serialize(body));
        });
}

void Protocol::on_oversized_line(std::string_view prefix, const Peer& peer, Answer answer) {
    ++m_counters.requests;
    spdlog::warn("event=line_too_long uid={} pid={} limit={}", peer.uid, peer.pid,
                 m_config.limits.max_line_bytes);
    refuse(nullptr, "line_too_long",
           "a request line may be at most " + std::to_string(m_config.limits.max_line_bytes) +
               " bytes; the connection is closed",
           prefix, peer, std::move(answer));
}

std::string Protocol::too_many_connections_answer() {
    return json::serialize(error_answer(nullptr, "too_many_connections",
                                        "flowgated is serving its maximum number of clients; "
                                        "try again later"));
}

void Protocol::on_line(std::string_view line, const Peer& peer, Answer answer) {
    ++m_counters.requests;
    boost::system::error_code error;
    // The request's tree lives in a reused buffer for the length of this call: nothing
    // of it may outlive it (the id is copied by assignment, into default storage).
    json::monotonic_resource scratch(m_parse_buffer.get(), parse_buffer_size);
    json::value parsed = json::parse(line, error, &scratch);
    dsl::RequestLine request = dsl::request_line_from_json(error ? nullptr : &parsed, error);
    json::value id = nullptr;
    if (request.id != nullptr) {
        id = *request.id;
    }
    if (request.refusal) {
        refuse(id, request.refusal->code, std::move(request.refusal->message), line, peer,
               std::move(answer));
        return;
    }
    switch (request.op) {
    case dsl::Operation::check:
    case dsl::Operation::explain:
        handle_check(request.fields, std::move(id), line, peer,
                     request.op == dsl::Operation::explain, std::move(answer));
        return;
    case dsl::Operation::describe: {
        json::object body{{"id", id}};
        for (auto& [key, value] : dsl::describe_to_json(*m_policy)) {
            body[key] = value;
        }
        answer(json::serialize(body));
        return;
    }
    case dsl::Operation::status:
        answer(json::serialize(status(id)));
        return;
    case dsl::Operation::reload:
        handle_reload(id, line, peer, std::move(answer));
        return;
    }
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
    dsl::Trace trace;
    dsl::Decision traced;
    const dsl::Decision* chosen = &unresolved;
    if (resolved && explain) {
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
    std::string answer_text = dsl::decision_to_text(decision, id, explain ? &trace : nullptr);
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
    reload("uid:" + std::to_string(peer.uid),
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
                                 {"wal_pages", stats.wal_frames}};
    return body;
}

void Protocol::reload(std::string trigger, std::function<void(json::object)> done) {
    m_reload_waiters.push_back(std::move(done));
    if (m_reloading) {
        return; // the reload in progress answers this caller too
    }
    m_reloading = true;
    notify(monotonic_usec_line().c_str());
    spdlog::info("event=reload_started trigger={} policy={}", trigger, m_config.policy_path);
    asio::post(m_worker, [this, trigger = std::move(trigger)] {
        dsl::LoadResult loaded = dsl::load_policy(m_config.policy_path);
        std::string stored_error;
        if (loaded) {
            auto stored = m_audit.store_policy(loaded.policy->hash(), policy_files(*loaded.policy));
            if (!stored) {
                stored_error = stored.error().message;
            }
        }
        asio::post(m_io, [this, trigger, loaded = std::move(loaded), stored_error] {
            m_reloading = false;
            json::object body;
            AuditRecord record;
            if (loaded && stored_error.empty()) {
                std::string previous = m_policy->hash();
                m_policy = loaded.policy;
                ++m_counters.reloads;
                record = reload_record(trigger, m_policy->hash(), previous);
                body = json::object{{"reloaded", true}, {"policy", m_policy->hash()}};
                spdlog::info("event=reload_ok trigger={} policy={} previous={}", trigger,
                             m_policy->hash(), previous);
            } else {
                ++m_counters.failed_reloads;
                std::string message =
                    loaded ? "the audit store cannot record the new policy: " + stored_error
                           : dsl::format(loaded.diagnostics);
                record = reload_failed_record(trigger, m_policy->hash(), message);
                body = error_answer(nullptr, "reload_failed", message);
                body["error"].as_object()["diagnostics"] = diagnostics_json(loaded.diagnostics);
                body["policy"] = m_policy->hash();
                spdlog::error("event=reload_failed trigger={} errors={} keeping={}", trigger,
                              loaded.diagnostics.size(), m_policy->hash());
                for (const dsl::Diagnostic& d : loaded.diagnostics) {
                    spdlog::error("event=policy_diagnostic at={}:{}:{} message=\"{}\"", d.file,
                                  d.line, d.column, d.message);
                }
            }
            // The reload is answered (and systemd told) once its row is committed, as a
            // decision is: whoever asked can then find it in the store.
            auto waiters = std::exchange(m_reload_waiters, {});
            m_audit.submit_delivered(
                std::move(record), [waiters = std::move(waiters), body = std::move(body)](
                                       AuditResult<std::uint64_t> result) mutable {
                    if (!result) {
                        spdlog::error("event=audit_event_lost kind=reload error=\"{}\"",
                                      result.error().message);
                    }
                    notify("READY=1");
                    for (const auto& waiter : waiters) {
                        waiter(body);
                    }
                });
        });
    });
}

} // namespace flowgate::daemon
