// The daemon's audit rows; see audit_records.hpp. A decision's row is the serving
// path's: one buffer and views, no string per field.
#include "daemon/audit_records.hpp"

#include "audit/request_text.hpp"
#include "dsl/request_json.hpp"

#include <chrono>
#include <unistd.h>

namespace flowgate::daemon {
using audit::AuditDecision;
using audit::AuditKind;
using audit::AuditRecord;
using audit::AuditRowView;
using audit::ViewedRecord;

namespace {

std::int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
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

// A request's row before its kind: the caller, the line as received (its first `limit`
// bytes, for a refusal) and the policy.
AuditRecord caller_record(const Peer& peer, std::string service, std::string_view line,
                          const std::string& policy_hash, std::size_t limit = audit::whole_line) {
    AuditRecord record;
    record.time_us = now_us();
    record.uid = peer.uid;
    record.gid = peer.gid;
    record.pid = peer.pid;
    record.service = std::move(service);
    audit::set_request(record, line, limit);
    record.policy_hash = policy_hash;
    return record;
}

// A reload's row: who asked, and the policy that serves after it.
AuditRecord reload_event(const ReloadTrigger& trigger, AuditKind kind,
                         const std::string& policy_hash, std::string detail) {
    AuditRecord record = caller_record(trigger.peer, trigger.service, trigger.request, policy_hash);
    record.kind = to_string(kind);
    record.detail = std::move(detail);
    return record;
}

} // namespace

ViewedRecord decision_record(const std::shared_ptr<const dsl::CompiledPolicy>& snapshot,
                             AuditKind kind, const dsl::Request& request,
                             const std::optional<dsl::ResolvedRequest>& resolved,
                             const dsl::Decision& decision, const Peer& peer,
                             std::string_view service, std::string_view line) {
    auto owner = std::make_shared<DecisionRow>();
    owner->snapshot = snapshot;
    DecisionRowBuilder text(owner->text);
    const dsl::CheckedPolicy& model = snapshot->model();
    ViewedRecord record;
    AuditRowView& row = record.row;
    row.kind = to_string(kind);
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
    row.direction = request.direction == dsl::Direction::receive ? "receive" : "send";
    auto service_text = text.add(service);
    auto request_line = text.begin();
    audit::StoredRequest stored = audit::append_stored_request(owner->text, line);
    text.end(request_line);
    auto request_sha256 = text.add(stored.sha256);
    auto reason = text.add(decision.reason());
    auto obligations = text.add(dsl::obligations_to_text(decision));
    auto named = [&](std::string_view given, dsl::Id found, const auto& items) {
        return found == dsl::no_id ? text.add(given) : text.borrowed(items[found].id);
    };
    auto purpose = named(request.purpose,
                         resolved ? resolved->purpose : snapshot->find_purpose(request.purpose),
                         model.purposes);
    auto activity = decision.activity != nullptr ? text.borrowed(decision.activity->id)
                                                 : text.add(request.activity.value_or(""));
    auto recipient = named(request.recipient,
                           resolved ? resolved->recipient : snapshot->find_party(request.recipient),
                           model.parties);
    auto data = text.begin();
    owner->text += '[';
    for (std::size_t i = 0; i < request.data.size(); ++i) {
        if (i > 0) {
            owner->text += ',';
        }
        const std::string& category = request.data[i];
        dsl::append_json_string(owner->text,
                                identifier_or_given(category,
                                                    resolved ? resolved->categories[i]
                                                             : snapshot->find_category(category),
                                                    model.categories));
    }
    owner->text += ']';
    text.end(data);
    auto subject = text.add(request.subject);
    // Every piece is in: the buffer no longer moves.
    row.service = text.view(service_text);
    row.request = text.view(request_line);
    row.request_encoding = stored.encoding;
    row.request_bytes = stored.bytes;
    row.request_sha256 = text.view(request_sha256);
    row.reason = text.view(reason);
    row.obligations = text.view(obligations);
    row.purpose = text.view(purpose);
    row.activity = text.view(activity);
    row.recipient = text.view(recipient);
    row.data = text.view(data);
    row.subject = text.view(subject);
    record.owner = std::move(owner);
    return record;
}

AuditRecord refusal_record(const Peer& peer, std::string service, std::string_view line,
                           const std::string& policy_hash, std::string_view code,
                           std::string_view message) {
    AuditRecord record =
        caller_record(peer, std::move(service), line, policy_hash, audit::max_stored_refused_bytes);
    record.kind = to_string(AuditKind::refused);
    record.decision = to_string(AuditDecision::deny);
    record.reason = std::string(code) + ": ";
    record.reason += message;
    return record;
}

AuditRecord admin_refused_record(const Peer& peer, std::string service, std::string_view line,
                                 const std::string& policy_hash) {
    AuditRecord record = caller_record(peer, std::move(service), line, policy_hash);
    record.kind = to_string(AuditKind::admin_refused);
    record.reason = "not an admin";
    return record;
}

ReloadTrigger signal_trigger(std::string name) {
    return ReloadTrigger{Peer{getuid(), getgid(), getpid()}, std::move(name), {}};
}

AuditRecord reload_record(const ReloadTrigger& trigger, const std::string& policy_hash,
                          const std::string& previous) {
    return reload_event(trigger, AuditKind::reload, policy_hash, "previous " + previous);
}

AuditRecord reload_failed_record(const ReloadTrigger& trigger, const std::string& policy_hash,
                                 std::string message) {
    // The diagnostics quote the policy's lines, which may hold bytes that are not text.
    return reload_event(trigger, AuditKind::reload_failed, policy_hash,
                        audit::is_text(message) ? std::move(message)
                                                : audit::printable_text(message));
}

AuditRecord event_record(AuditKind kind, const std::string& policy_hash, std::string detail) {
    AuditRecord record;
    record.kind = to_string(kind);
    record.uid = getuid();
    record.gid = getgid();
    record.pid = getpid();
    record.service = "flowgated";
    record.policy_hash = policy_hash;
    record.detail = std::move(detail);
    return record;
}

audit::PolicyFiles policy_files(const dsl::CompiledPolicy& policy) {
    audit::PolicyFiles files;
    for (const dsl::PolicyText& text : policy.texts()) {
        files.emplace(text.name, text.text);
    }
    return files;
}

} // namespace flowgate::daemon
