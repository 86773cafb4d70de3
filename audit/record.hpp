// One row of the audit log as the daemon hands it over: a decision (check, explain, a
// refused request) or an event (start, stop, load, reload, a refused admin command).
// Decisions and events share one table and one hash chain, so an auditor can see that
// no decision was removed and under which policy each one was taken.
#pragma once

#include <cstdint>
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
};

enum class AuditDecision {
    none,  // events carry no decision
    allow, // only ever stored for a decision whose row is committed before it is answered
    deny,
    error, // a request that could not be understood
};

std::string_view to_string(AuditKind kind);
std::string_view to_string(AuditDecision decision);
std::optional<AuditKind> parse_audit_kind(std::string_view text);
std::optional<AuditDecision> parse_audit_decision(std::string_view text);

// The fields of one row. Texts are stored as given (UTF-8); an absent value is the
// empty string, an unknown uid/gid/pid is -1. The fields copied out of the request
// (purpose … subject) are there for the auditors' queries; the request itself, as
// received, stays the reference.
struct AuditRecord {
    std::int64_t time_us = 0; // UTC, microseconds since the Unix epoch; 0: set on submission
    AuditKind kind = AuditKind::check;
    std::int64_t uid = -1; // the caller's credentials from SO_PEERCRED
    std::int64_t gid = -1;
    std::int64_t pid = -1;
    std::string service; // the service name the configuration maps the uid to
    std::string request; // the request line exactly as received (without its newline)
    AuditDecision decision = AuditDecision::none;
    std::string reason;             // e.g. "permitted", "no_matching_rule", "audit_unavailable"
    std::string rule;               // the deciding rule's id
    std::string rule_source;        // "policies/kenpo.policy:118 (table row 3, case j)"
    std::string legal_basis;        // the legal basis id the decision relied on
    std::string obligations = "[]"; // JSON array text, as answered
    std::string policy_hash;        // "sha256:…" of the policy snapshot that decided
    std::string purpose;            // copied from the parsed request, when it parsed
    std::string activity;
    std::string recipient;
    std::string direction; // "send" or "receive"
    std::string data;      // JSON array text of the data categories
    std::string subject;   // the pseudonymous reference to the data subject
    std::string detail;    // events: diagnostics, versions, the previous policy hash
};

// The reason a check is denied when its row cannot be committed.
inline constexpr std::string_view audit_unavailable_reason = "audit_unavailable";

} // namespace flowgate::audit
