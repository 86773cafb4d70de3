// The v1 protocol: dispatch, checks through the audit store, status, describe and
// reload; see protocol.hpp and DESIGN.md ("The wire protocol").
#include "daemon/protocol.hpp"

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
using audit::AuditDecision;
using audit::AuditHealth;
using audit::AuditKind;
using audit::AuditRecord;
using audit::AuditResult;
using audit::AuditRowView;
using audit::AuditStats;
using audit::AuditStore;
using audit::PolicyFiles;
using audit::ViewedRecord;

namespace {

std::int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

json::object error_answer(const json::value& id, std::string_view code, std::string_view message) {
    return json::object{{"id", id}, {"error", {{"code", code}, {"message", message}}}};
}

// The identifier a name resolved to (`items[id].id`), or the name as given when it
// did not resolve, so the auditors' columns hold identifiers wherever they can.
template <typename Items>
std::string_view identifier_or_given(std::string_view given, dsl::Id id, const Items& items) {
    return id == dsl::no_id ? given : std::string_view(items[id].id);
}

// What a decision's audit row views: the snapshot and the request's own text.
struct DecisionRow {
    std::shared_ptr<const dsl::CompiledPolicy> snapshot;
    std::string text;
};

// Appends a row's own fields to one string and hands out views once it is complete.
// A piece is either a range of that string or a view of something that outlives it.
class DecisionRowBuilder {
public:
    struct Piece {
        std::size_t offset = 0;
        std::size_t size = 0;
        std::string_view borrowed;
        bool own = true;
    };
    explicit DecisionRowBuilder(std::string& text) : m_text(text) { m_text.reserve(512); }
    Piece add(std::string_view bytes) {
        Piece piece{m_text.size(), bytes.size(), {}, true};
        m_text.append(bytes);
        return piece;
    }
    static Piece borrowed(std::string_view bytes) { return Piece{0, 0, bytes, false}; }
    Piece begin() const { return Piece{m_text.size(), 0, {}, true}; }
    void end(Piece& piece) const { piece.size = m_text.size() - piece.offset; }
    std::string_view view(const Piece& piece) const {
        return piece.own ? std::string_view(m_text).substr(piece.offset, piece.size)
                         : piece.borrowed;
    }

private:
    std::string& m_text;
};

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

AuditRecord Protocol::record_for(const Peer& peer, std::string_view line) const {
    AuditRecord record;
    record.time_us = now_us();
    record.uid = peer.uid;
    record.gid = peer.gid;
    record.pid = peer.pid;
    record.service = service_name(m_config, peer.uid);
    record.request = std::string(line);
    record.policy_hash = m_policy->hash();
    return record;
}

void Protocol::refuse(const json::value& id, std::string_view code, std::string message,
                      std::string_view line, const Peer& peer, Answer answer) {
    ++m_counters.malformed;
    AuditRecord record = record_for(peer, line);
    record.kind = to_string(AuditKind::refused);
    record.decision = to_string(AuditDecision::deny);
    record.reason = std::string(code) + ": " + message;
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
    // of it may outlive it (ids are copied by assignment, into default storage).
    json::monotonic_resource scratch(m_parse_buffer.get(), parse_buffer_size);
    json::value parsed = json::parse(line, error, &scratch);
    if (error) {
        refuse(nullptr, "bad_json", "the request is not valid JSON (UTF-8): " + error.message(),
               line, peer, std::move(answer));
        return;
    }
    if (!parsed.is_object()) {
        refuse(nullptr, "bad_request", "a request must be a JSON object", line, peer,
               std::move(answer));
        return;
    }
    const json::object& request = parsed.as_object();
    json::value id = nullptr;
    if (const json::value* given = request.if_contains("id")) {
        id = *given;
    }
    const json::value* op_value = request.if_contains("op");
    if (op_value == nullptr) {
        refuse(id, "missing_field", "the request has no \"op\"", line, peer, std::move(answer));
        return;
    }
    if (!op_value->is_string()) {
        refuse(id, "bad_field_type", "\"op\" must be a string", line, peer, std::move(answer));
        return;
    }
    std::string_view op = op_value->as_string();
    if (op == "check" || op == "explain") {
        handle_check(request, line, peer, op == "explain", std::move(answer));
    } else if (op == "describe") {
        json::object body{{"id", id}};
        for (auto& [key, value] : dsl::describe_to_json(*m_policy)) {
            body[key] = value;
        }
        answer(json::serialize(body));
    } else if (op == "status") {
        answer(json::serialize(status(id)));
    } else if (op == "reload") {
        if (!is_admin(m_config, peer.uid)) {
            spdlog::warn("event=reload_refused uid={} pid={} service={}", peer.uid, peer.pid,
                         service_name(m_config, peer.uid));
            AuditRecord record = record_for(peer, line);
            record.kind = to_string(AuditKind::admin_refused);
            record.reason = "not an admin";
            json::object body =
                error_answer(id, "forbidden", "reload is for admins; this caller is not one");
            m_audit.submit_delivered(
                std::move(record),
                [body = std::move(body), answer = std::move(answer)](
                    AuditResult<std::uint64_t>) mutable { answer(json::serialize(body)); });
            return;
        }
        reload("uid:" + std::to_string(peer.uid),
               [id, answer = std::move(answer)](json::object body) mutable {
                   body["id"] = id;
                   answer(json::serialize(body));
               });
    } else {
        refuse(id, "unknown_op",
               "unknown op '" + std::string(op) +
                   "'; expected check, explain, describe, status or reload",
               line, peer, std::move(answer));
    }
}

void Protocol::handle_check(const json::object& request, std::string_view line, const Peer& peer,
                            bool explain, Answer answer) {
    json::value id = nullptr;
    if (const json::value* given = request.if_contains("id")) {
        id = *given;
    }
    dsl::RequestParse parsed = dsl::request_from_json(request);
    if (const auto* error = std::get_if<dsl::RequestError>(&parsed)) {
        refuse(id, error->code, error->message, line, peer, std::move(answer));
        return;
    }
    const dsl::Request& checked = std::get<dsl::Request>(parsed);
    // The snapshot this request is decided on, even if a reload swaps it meanwhile.
    std::shared_ptr<const dsl::CompiledPolicy> snapshot = m_policy;
    // Names resolved once, for the decision and for the row's identifiers. A request
    // with an unknown name is denied by the resolution itself.
    dsl::Decision unresolved;
    const std::optional<dsl::ResolvedRequest> resolved =
        dsl::resolve(*snapshot, checked, unresolved);
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

    // The row: views into the snapshot where the policy holds the text, and into one
    // buffer (kept with the snapshot until the row is written) for the request's own.
    auto owner = std::make_shared<DecisionRow>();
    owner->snapshot = snapshot;
    DecisionRowBuilder text(owner->text);
    const dsl::CheckedPolicy& model = snapshot->model();
    ViewedRecord record;
    AuditRowView& row = record.row;
    row.kind = to_string(explain ? AuditKind::explain : AuditKind::check);
    row.uid = peer.uid;
    row.gid = peer.gid;
    row.pid = peer.pid;
    row.decision = to_string(decision.allowed ? AuditDecision::allow : AuditDecision::deny);
    row.policy_hash = snapshot->hash();
    if (decision.rule != nullptr) {
        row.rule = decision.rule->id;
        row.rule_source = snapshot->rule_source(*decision.rule);
    }
    if (decision.legal_basis != nullptr) {
        row.legal_basis = decision.legal_basis->id;
    }
    row.direction = checked.direction == dsl::Direction::receive ? "receive" : "send";
    auto service = text.add(service_name(m_config, peer.uid));
    auto request_line = text.add(line);
    auto reason = text.add(decision.reason());
    auto obligations = text.add(dsl::obligations_to_text(decision));
    auto named = [&](std::string_view given, dsl::Id found, const auto& items) {
        return found == dsl::no_id ? text.add(given) : text.borrowed(items[found].id);
    };
    auto purpose = named(checked.purpose,
                         resolved ? resolved->purpose : snapshot->find_purpose(checked.purpose),
                         model.purposes);
    auto activity = decision.activity != nullptr ? text.borrowed(decision.activity->id)
                                                 : text.add(checked.activity.value_or(""));
    auto recipient = named(checked.recipient,
                           resolved ? resolved->recipient : snapshot->find_party(checked.recipient),
                           model.parties);
    auto data = text.begin();
    owner->text += '[';
    for (std::size_t i = 0; i < checked.data.size(); ++i) {
        if (i > 0) {
            owner->text += ',';
        }
        const std::string& category = checked.data[i];
        dsl::append_json_string(owner->text,
                                identifier_or_given(category,
                                                    resolved ? resolved->categories[i]
                                                             : snapshot->find_category(category),
                                                    model.categories));
    }
    owner->text += ']';
    text.end(data);
    auto subject = text.add(checked.subject);
    // Every piece is in: the buffer no longer moves.
    row.service = text.view(service);
    row.request = text.view(request_line);
    row.reason = text.view(reason);
    row.obligations = text.view(obligations);
    row.purpose = text.view(purpose);
    row.activity = text.view(activity);
    row.recipient = text.view(recipient);
    row.data = text.view(data);
    row.subject = text.view(subject);
    record.owner = std::move(owner);
    bool allowed = decision.allowed;
    // Serialized here, on the serving thread, so that the audit writer only splices the
    // row's seq in: the writer's time is the daemon's throughput.
    std::string answer_text = dsl::decision_to_text(decision, id, explain ? &trace : nullptr);
    answer_text.reserve(answer_text.size() + 32); // room for the audit_seq

    m_audit.submit_delivered(
        std::move(record),
        [this, allowed, id, answer_text = std::move(answer_text), snapshot = std::move(snapshot),
         answer = std::move(answer)](AuditResult<std::uint64_t> committed) mutable {
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
                                {"policy", snapshot->hash()},
                                {"audit_seq", nullptr}};
            ++m_counters.denied;
            ++m_counters.audit_unavailable;
            answer(json::serialize(denied));
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
            PolicyFiles files;
            for (const dsl::PolicyText& text : loaded.policy->texts()) {
                files.emplace(text.name, text.text);
            }
            auto stored = m_audit.store_policy(loaded.policy->hash(), files);
            if (!stored) {
                stored_error = stored.error().message;
            }
        }
        asio::post(m_io, [this, trigger, loaded = std::move(loaded), stored_error] {
            m_reloading = false;
            json::object body;
            AuditRecord record;
            record.time_us = now_us();
            record.service = trigger;
            if (loaded && stored_error.empty()) {
                std::string previous = m_policy->hash();
                m_policy = loaded.policy;
                ++m_counters.reloads;
                record.kind = to_string(AuditKind::reload);
                record.policy_hash = m_policy->hash();
                record.detail = "previous " + previous;
                body = json::object{{"reloaded", true}, {"policy", m_policy->hash()}};
                spdlog::info("event=reload_ok trigger={} policy={} previous={}", trigger,
                             m_policy->hash(), previous);
            } else {
                ++m_counters.failed_reloads;
                std::string message =
                    loaded ? "the audit store cannot record the new policy: " + stored_error
                           : dsl::format(loaded.diagnostics);
                record.kind = to_string(AuditKind::reload_failed);
                record.policy_hash = m_policy->hash();
                record.detail = message;
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
