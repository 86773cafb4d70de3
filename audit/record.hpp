// What the audit file holds: one row per decision (check, explain, a refused request) or
// event (start, stop, load, reload, a refused admin command), in one table and one hash
// chain, so that an auditor can see that no decision was removed and under which policy
// each one was taken; and the policy texts, by hash, so that each can be replayed.
//
// The row's fields are listed once, in for_each_field() below: the schema, the insert,
// the reading of a row, the canonical bytes the chain hashes and the export columns are
// all derived from that list. Adding a column is one member and one line there, marked
// with the new schema version it appears in (audit/schema.hpp): stores of the versions
// before it lack the column, and their rows' canonical bytes do not cover it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace flowgate::audit {

enum class AuditKind {
    check,         // a check request, answered allow or deny
    explain,       // an explain request, answered allow or deny with a trace
    refused,       // a request that could not be understood; a refused check is a deny
    start,         // the daemon started serving (detail: version, durability)
    stop,          // the daemon stopped serving
    load,          // a policy was loaded at start (policy_hash: the loaded policy)
    reload,        // a reload succeeded (policy_hash: the new policy, detail: the old hash)
    reload_failed, // a reload failed; the old policy keeps serving (detail: diagnostics)
    admin_refused, // an admin command from a caller that is not an admin
    init,          // flowgated --init-store began this log (detail: its origin, the version)
};

enum class AuditDecision {
    none,  // events carry no decision
    allow, // only ever stored for a decision whose row is committed before it is answered
    deny,
    error, // a request that could not be understood
};

// The names the rows store.
constexpr std::string_view to_string(AuditKind kind) {
    switch (kind) {
    case AuditKind::check:
        return "check";
    case AuditKind::explain:
        return "explain";
    case AuditKind::refused:
        return "refused";
    case AuditKind::start:
        return "start";
    case AuditKind::stop:
        return "stop";
    case AuditKind::load:
        return "load";
    case AuditKind::reload:
        return "reload";
    case AuditKind::reload_failed:
        return "reload_failed";
    case AuditKind::admin_refused:
        return "admin_refused";
    case AuditKind::init:
        return "init";
    }
    return "unknown";
}

constexpr std::string_view to_string(AuditDecision decision) {
    switch (decision) {
    case AuditDecision::none:
        return "";
    case AuditDecision::allow:
        return "allow";
    case AuditDecision::deny:
        return "deny";
    case AuditDecision::error:
        return "error";
    }
    return "unknown";
}

std::optional<AuditKind> parse_audit_kind(std::string_view text);
std::optional<AuditDecision> parse_audit_decision(std::string_view text);

// One row, its texts owned (AuditRecord) or viewed (AuditRowView). Texts are UTF-8; an
// absent value is the empty string, an unknown uid/gid/pid is -1. The fields copied out
// of the request (purpose … subject) are there for the auditors' queries; the request
// itself, as received, stays the reference: `request` holds the line, base64'd when its
// bytes are not UTF-8 text, and only its first bytes for a long refused line (see
// audit/request_text.hpp, which fills the four request fields). seq, prev_hash and hash
// are the writer's: whatever a submitted row holds there is replaced.
template <class Text> struct BasicAuditRow {
    std::uint64_t seq = 0;
    std::int64_t time_us = 0; // UTC, microseconds since the Unix epoch; 0: set on submission
    Text kind{to_string(AuditKind::check)};
    std::int64_t uid = -1; // the caller's credentials from SO_PEERCRED
    std::int64_t gid = -1;
    std::int64_t pid = -1;
    Text service;          // the service the configuration maps the uid to
    Text request;          // the request line as received, without its line end (as encoded)
    Text request_encoding; // "": request holds the bytes; "base64": their base64
    std::int64_t request_bytes = 0; // the whole line's length in bytes (0: no request)
    Text request_sha256; // "": request holds the whole line; else the whole line's hex SHA-256
    Text decision{to_string(AuditDecision::none)}; // allow, deny, error; empty for events
    Text reason;            // "permitted", "no_matching_rule", "audit_unavailable" …
    Text rule;              // the deciding rule's id
    Text rule_source;       // "policies/kenpo.policy:118 (table row 3, case j)"
    Text legal_basis;       // the legal basis id the decision relied on
    Text obligations{"[]"}; // JSON array text, as answered
    Text policy_hash;       // "sha256:…" of the policy snapshot that decided
    Text purpose;           // identifiers from the parsed request, when it parsed
    Text activity;
    Text recipient;
    Text direction; // "send" or "receive"
    Text data;      // JSON array text of the data categories
    Text subject;   // the pseudonymous reference to the data subject
    Text detail;    // events: diagnostics, versions, the previous policy hash
    Text prev_hash; // hex SHA-256 of the row before (64 zeros for row 1)
    Text hash;      // hex SHA-256(prev_hash bytes ‖ canonical bytes of this row)
};

using AuditRecord = BasicAuditRow<std::string>;
using AuditRowView = BasicAuditRow<std::string_view>;

// What a field is to the chain and to the auditor's export.
enum class FieldRole {
    key,       // seq: the row's place in the log
    time,      // time_us: exported as an ISO 8601 "time"
    content,   // any other field the writer fills
    prev_hash, // the link to the row before: neither hashed nor exported
    hash,      // the row's own hash: exported, not hashed
};

struct AuditField {
    std::string_view name; // the column's name
    FieldRole role = FieldRole::content;
    int since = 1;          // the schema version the column appeared in
    int interned_since = 0; // from this version, stored as an id into audit_text (0: never)
    int until = 0;          // the last version that stores the column (0: every one since)

    // A column of the stores of this schema version.
    constexpr bool in_version(int version) const {
        return since <= version && (until == 0 || version <= until);
    }
    // Stored, in the stores of this version, as `<name>_id`: the id of its text in
    // audit_text, where each text a row holds is stored once.
    constexpr bool interned(int version) const {
        return interned_since != 0 && interned_since <= version;
    }
    // In the canonical bytes that the hash of a row of this schema version covers.
    constexpr bool hashed(int version) const {
        return since <= version && role != FieldRole::prev_hash && role != FieldRole::hash;
    }
    // In `flowgate audit export --all`, under export_name().
    constexpr bool exported() const { return role != FieldRole::prev_hash; }
    constexpr std::string_view export_name() const {
        return role == FieldRole::time ? "time" : name;
    }
};

// The field table: calls visit(field, row.member...) for each field of the rows given,
// in the order of the columns and of the canonical bytes (docs/audit-store.md). The
// members come as std::uint64_t (seq), std::int64_t or Text.
template <class Visit, class... Rows> constexpr void for_each_field(Visit&& visit, Rows&&... rows) {
    visit(AuditField{"seq", FieldRole::key}, rows.seq...);
    visit(AuditField{"time_us", FieldRole::time}, rows.time_us...);
    visit(AuditField{"kind", FieldRole::content, 1, 4}, rows.kind...);
    visit(AuditField{"uid"}, rows.uid...);
    visit(AuditField{"gid"}, rows.gid...);
    visit(AuditField{"pid"}, rows.pid...);
    visit(AuditField{"service", FieldRole::content, 1, 4}, rows.service...);
    visit(AuditField{"request"}, rows.request...);
    visit(AuditField{"request_encoding", FieldRole::content, 2, 4}, rows.request_encoding...);
    visit(AuditField{"request_bytes", FieldRole::content, 2}, rows.request_bytes...);
    visit(AuditField{"request_sha256", FieldRole::content, 2}, rows.request_sha256...);
    visit(AuditField{"decision", FieldRole::content, 1, 4}, rows.decision...);
    visit(AuditField{"reason", FieldRole::content, 1, 4}, rows.reason...);
    visit(AuditField{"rule", FieldRole::content, 1, 4}, rows.rule...);
    visit(AuditField{"rule_source", FieldRole::content, 1, 4}, rows.rule_source...);
    visit(AuditField{"legal_basis", FieldRole::content, 1, 4}, rows.legal_basis...);
    visit(AuditField{"obligations", FieldRole::content, 1, 4}, rows.obligations...);
    visit(AuditField{"policy_hash", FieldRole::content, 1, 4}, rows.policy_hash...);
    visit(AuditField{"purpose", FieldRole::content, 1, 4}, rows.purpose...);
    visit(AuditField{"activity", FieldRole::content, 1, 4}, rows.activity...);
    visit(AuditField{"recipient", FieldRole::content, 1, 4}, rows.recipient...);
    visit(AuditField{"direction", FieldRole::content, 1, 4}, rows.direction...);
    visit(AuditField{"data", FieldRole::content, 1, 4}, rows.data...);
    visit(AuditField{"subject"}, rows.subject...);
    visit(AuditField{"detail"}, rows.detail...);
    visit(AuditField{"prev_hash", FieldRole::prev_hash, 1, 0, 3}, rows.prev_hash...);
    visit(AuditField{"hash", FieldRole::hash}, rows.hash...);
}

// A view of the record, valid while the record is.
AuditRowView view_of(const AuditRecord& record);
// The row's fields copied out of wherever the view points.
AuditRecord record_of(const AuditRowView& row);

// The reason a check is denied when its row cannot be committed.
inline constexpr std::string_view audit_unavailable_reason = "audit_unavailable";

// Policy file name → text, as read at load time and stored under the policy's hash.
using PolicyFiles = std::map<std::string, std::string>;

} // namespace flowgate::audit
