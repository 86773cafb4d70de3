// Every row flowgated hands the audit store is filled here, and nowhere else: a check's
// or explain's decision, a refused line, a refused admin command, a reload, and the
// daemon's own start, load and stop events, with the policy's texts they refer to.
// What the daemon knows goes in; the audit library's types come out, so that a change
// to those types is one edit in the daemon.
#pragma once

#include "audit/record.hpp"
#include "audit/store.hpp"
#include "daemon/server.hpp"
#include "dsl/compiler.hpp"
#include "dsl/evaluator.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace flowgate::daemon {

// The row of a check or explain (`kind`) that `request` asked and `decision` answered,
// on the names `resolved` found in `snapshot` (nullopt: one of them is unknown). Names
// are recorded as the identifiers they resolved to, or as given where they did not.
// The row's fields are views: into the snapshot, where the policy holds the text, and
// into one buffer for the rest (the service, the line as received — whole, base64'd if
// it is not text: audit/request_text.hpp —, the reason, the obligations, the names as
// given, the data list); the record's owner keeps both alive until the row is written.
// Its time is stamped at submission.
audit::ViewedRecord decision_record(const std::shared_ptr<const dsl::CompiledPolicy>& snapshot,
                                    audit::AuditKind kind, const dsl::Request& request,
                                    const std::optional<dsl::ResolvedRequest>& resolved,
                                    const dsl::Decision& decision, const Peer& peer,
                                    std::string_view service, std::string_view line);

// The row of a line refused with `code` and `message` (a deny), under the policy
// `policy_hash` that was serving. A line longer than audit::max_stored_refused_bytes
// costs a bounded row: its first bytes, its length and its SHA-256. For a line too long
// to be read whole, `line` is what was received of it before the connection was closed.
audit::AuditRecord refusal_record(const Peer& peer, std::string service, std::string_view line,
                                  const std::string& policy_hash, std::string_view code,
                                  std::string_view message);

// The row of an admin command (the whole line) from a caller who is not an admin.
audit::AuditRecord admin_refused_record(const Peer& peer, std::string service,
                                        std::string_view line, const std::string& policy_hash);

// Who asked for a reload: an admin over the socket (their credentials, their service
// and the line as received) or a signal (the daemon's own credentials, the service
// "signal", no line: SIGHUP does not say who sent it).
struct ReloadTrigger {
    Peer peer;
    std::string service;
    std::string request;
};
ReloadTrigger signal_trigger(std::string name = "signal");

// The row of a reload that `trigger` asked for: it swapped in `policy_hash` for
// `previous`, or it failed with `message` (its bytes that are not text written \xNN)
// and `policy_hash` serves on.
audit::AuditRecord reload_record(const ReloadTrigger& trigger, const std::string& policy_hash,
                                 const std::string& previous);
audit::AuditRecord reload_failed_record(const ReloadTrigger& trigger,
                                        const std::string& policy_hash, std::string message);

// The row of the daemon's own start, load or stop, under its own credentials.
audit::AuditRecord event_record(audit::AuditKind kind, const std::string& policy_hash,
                                std::string detail);

// The policy's texts by file name, as the store keeps them for replay.
audit::PolicyFiles policy_files(const dsl::CompiledPolicy& policy);

} // namespace flowgate::daemon
