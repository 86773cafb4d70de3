// `flowgate audit report`: a period of the audit log at a glance, for the privacy officer
// and the internal auditor, as one self-contained HTML page. The log is verified first,
// with the one verifier `audit verify` uses (audit/verifier.hpp), and the verdict is
// stated at the top in words; the period's figures come from one pass over its rows
// through the streaming reader, cut into parts read side by side as verify does, and the
// Art. 29 records from the selection `audit records` makes (ProvisionSelector), so every
// figure is one the other commands give for the same period.
#pragma once

#include "audit/verifier.hpp"
#include "cli/audit_tools.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace flowgate::cli {

struct AllowDeny {
    std::uint64_t allowed = 0;
    std::uint64_t denied = 0;
};

// A load, reload, failed reload or refused admin command, or a start or stop, as its row
// has it.
struct PolicyEvent {
    std::string origin; // the host's log, in a report of the central store
    std::uint64_t seq = 0;
    std::int64_t time_us = 0;
    std::string kind;
    std::string policy_hash;
    std::int64_t uid = -1;
    std::string service;
    std::string detail; // the previous hash, the diagnostics, "not an admin", ...
};

// One caller: its uid and the service the configuration named it as.
struct CallerCounts {
    std::uint64_t allowed = 0;
    std::uint64_t denied = 0;
    std::uint64_t refused = 0;       // requests that could not be understood
    std::uint64_t admin_refused = 0; // admin commands from a caller who is not an admin
};

struct PolicyUse {
    std::uint64_t decisions = 0;
    std::int64_t first_us = 0;
    std::int64_t last_us = 0;
};

struct ProvisionsTo {
    std::string label; // the recipient as the policy names it
    std::uint64_t records = 0;
    std::set<std::string> persons;
};

// Allowed sends of special-care (要配慮) and specific (特定個人情報) data, by the
// sensitivity the policy that allowed them gives the categories; a row of both counts
// in both.
struct SensitiveSends {
    std::uint64_t special_care = 0;
    std::uint64_t specific = 0;
};

// What the rows of the period say. Decisions are check and explain rows (allowed +
// denied); refused rows are requests that could not be understood.
struct AuditPeriod {
    std::optional<std::int64_t> since_us;
    std::optional<std::int64_t> until_us;
    std::uint64_t rows = 0; // every row of the period, events included
    std::uint64_t decisions = 0;
    std::uint64_t allowed = 0;
    std::uint64_t denied = 0;
    std::uint64_t refused = 0;
    std::uint64_t audit_unavailable = 0;  // rows with that reason
    std::optional<std::int64_t> first_us; // the period's first and last row
    std::optional<std::int64_t> last_us;
    std::map<std::int64_t, AllowDeny> per_day; // UTC days since the epoch
    std::map<std::string, AllowDeny, std::less<>> by_purpose;
    std::map<std::string, AllowDeny, std::less<>> by_recipient;
    std::map<std::string, std::uint64_t, std::less<>> deny_reasons;  // denied decisions
    std::map<std::string, std::uint64_t, std::less<>> refusal_codes; // refused rows
    std::uint64_t provision_records = 0;
    std::map<std::string, ProvisionsTo> provisions;               // by recipient
    std::map<std::string, SensitiveSends, std::less<>> sensitive; // by recipient
    std::vector<PolicyEvent> events;                              // in seq order
    std::map<std::string, PolicyUse, std::less<>> policies;       // decisions by policy hash
    std::map<std::pair<std::int64_t, std::string>, CallerCounts> callers; // (uid, service)
    // Labels of the identifiers above, from the policies stored with the period's rows.
    std::map<std::string, std::string> purpose_labels;
    std::map<std::string, std::string> party_labels;
};

struct AuditReportOptions {
    std::optional<std::int64_t> since_us; // inclusive
    std::optional<std::int64_t> until_us; // exclusive
    std::string consent_ground = "appi_27_1_consent";
    audit::PassOptions pass; // parts, threads, progress
};

// One pass over the period's rows.
audit::AuditResult<AuditPeriod> summarize_period(audit::AuditReader& reader,
                                                 const AuditReportOptions& options);

// The same figures from rows read elsewhere (the central store), one at a time, under the
// policies of `files`; rows outside the period are passed over. `options.pass` does not
// apply.
class PeriodPass;
class PeriodSummary {
public:
    PeriodSummary(PolicyFilesSource files, const AuditReportOptions& options);
    PeriodSummary(const PeriodSummary&) = delete;
    PeriodSummary& operator=(const PeriodSummary&) = delete;
    ~PeriodSummary();
    audit::AuditResult<void> row(const audit::AuditRowView& row);
    // The figures, with the labels of the policies that decided them.
    AuditPeriod finish();

private:
    PolicyFilesSource m_files;
    AuditReportOptions m_options;
    std::unique_ptr<PeriodPass> m_pass;
};

// Adds `part`'s figures to `into`; its events after those already there, its labels
// where `into` has none.
void add_period(AuditPeriod& into, AuditPeriod& part);

// What was verified, and how: the verdict the report states.
struct ReportVerification {
    audit::VerifyResult result;
    std::optional<std::string> key_name;      // the --key given, if any
    bool chain_checkpoint = false;            // a kept "seq N hash H" line was given
    std::optional<std::string> kept_from;     // the --checkpoint file of tree checkpoints
    std::uint64_t kept_checkpoints_given = 0; // how many it held
    bool ok() const { return !result.fault && !result.tree_fault; }
};

// The verdict in sentences, the first one saying whether the log is intact: what the
// page says at its top and the command prints.
std::vector<std::string> verification_sentences(const ReportVerification& verification);

// The figures of the period in one line, as the command prints it.
std::string period_line(const AuditPeriod& period);

std::string audit_report_html(const std::string& store, const ReportVerification& verification,
                              const AuditPeriod& period);

// One host's log verified in the central store.
struct HostVerification {
    std::string origin;
    ReportVerification verification;
};

// The page of a report over the central store: every host's verdict, then the figures of
// all of them.
std::string audit_report_html(const std::string& store, const std::vector<HostVerification>& hosts,
                              const AuditPeriod& period);

} // namespace flowgate::cli
