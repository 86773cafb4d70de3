// The auditor's work on an audit store file that needs the policy engine, apart from
// the command line so that the benchmark and the tests call exactly what `flowgate
// audit ...` runs: replaying every decision under the policy recorded with it or under
// a candidate, and listing the third-party provision records of APPI Art. 29. (The
// chain's verification needs no policy: audit/verifier.hpp.) Everything reads the file
// through audit::AuditReader: read-only, streaming, one snapshot per reader.
#pragma once

#include "audit/reader.hpp"
#include "audit/row_json.hpp"
#include "audit/verifier.hpp"
#include "cli/rule_coverage.hpp"
#include "dsl/compiler.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace flowgate::cli {

// Rows counted on stderr while a pass runs ("verify: 400000/1000000 rows"), only when
// stderr is a terminal, so that pipes and logs stay clean.
class Progress {
public:
    Progress(std::string label, std::uint64_t total, bool enabled);
    // Enabled when stderr is a terminal.
    Progress(std::string label, std::uint64_t total);
    ~Progress();
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;

    void row() {
        if (++m_rows % m_every == 0 && m_enabled) {
            print();
        }
    }
    // Sets the count (from a pass that counts in steps), printing at each 100,000.
    void update(std::uint64_t rows) {
        const bool crossed = rows / m_every != m_rows / m_every;
        m_rows = rows;
        if (crossed && m_enabled) {
            print();
        }
    }
    std::uint64_t rows() const { return m_rows; }

private:
    void print();
    std::string m_label;
    std::uint64_t m_total = 0;
    std::uint64_t m_rows = 0;
    std::uint64_t m_every = 100'000;
    bool m_enabled = false;
    bool m_printed = false;
};

// A policy stored in the log, compiled once per hash for a whole pass.
struct StoredPolicy {
    std::shared_ptr<const dsl::CompiledPolicy> policy; // null: `error` says why
    std::string error;
    std::unordered_map<std::string_view, const dsl::Rule*> rules; // by id
};

// The policy texts stored under a hash, wherever the log is kept (the file's reader, the
// central store).
using PolicyFilesSource =
    std::function<audit::AuditResult<audit::PolicyFiles>(const std::string& policy_hash)>;

// The policy texts of a file's log, read through its reader.
inline PolicyFilesSource policy_files_of(audit::AuditReader& reader) {
    return [&reader](const std::string& hash) {
        return reader.policy_files(hash);
    };
}

// The policies stored in one log, each read, checked against its hash and compiled the
// first time a row names it. The row's own hash is the key: rows come in runs under one
// policy, so the last one is kept at hand.
class PolicyCache {
public:
    explicit PolicyCache(audit::AuditReader& reader) : m_files(policy_files_of(reader)) {}
    explicit PolicyCache(PolicyFilesSource files) : m_files(std::move(files)) {}
    const StoredPolicy& get(std::string_view hash);

private:
    StoredPolicy load(const std::string& hash);
    PolicyFilesSource m_files;
    std::map<std::string, StoredPolicy> m_policies;
    const StoredPolicy* m_last = nullptr;
    std::string_view m_last_hash;
};

class RequestParser;

// One decision whose replay differs from its row.
struct ReplayDifference {
    std::string origin; // the host's log, when read from the central store
    std::uint64_t seq = 0;
    std::int64_t time_us = 0;
    std::string kind; // check, explain or refused
    std::string purpose;
    std::string recipient;
    std::string subject;
    std::string data; // JSON array text
    std::string recorded_decision;
    std::string recorded_rule;
    std::string replayed_decision; // "" when the replay could not decide (see `what`)
    std::string replayed_rule;
    std::string replayed_reason;
    std::string what; // which fields differ, or why the row could not be replayed
};

struct ReplayOptions {
    // Null: each decision under the policy recorded with it. Otherwise under this one.
    std::shared_ptr<const dsl::CompiledPolicy> candidate;
    // Parts of the log replayed side by side, each through its own read-only
    // connection (audit/parts.hpp).
    unsigned threads = 0;
    std::uint64_t split_from_rows = 100'000;
    bool show_progress = false;
};

struct ReplayReport {
    std::uint64_t rows = 0;      // every row read, events included
    std::uint64_t decisions = 0; // check and explain rows replayed
    std::uint64_t refused = 0;   // refused rows re-read
    std::uint64_t reproduced = 0;
    std::vector<ReplayDifference> differences; // in seq order
    // Differences counted by the row's purpose, its recipient, and "recorded -> replayed".
    std::map<std::string, std::uint64_t> by_purpose;
    std::map<std::string, std::uint64_t> by_recipient;
    std::map<std::string, std::uint64_t> by_decision;
};

// Recorded mode compares decision, reason, rule, rule_source, legal basis and
// obligations; a refused row must still be refused with the same code, except a row
// that keeps only the first bytes of its line (too long, or refused and longer than
// audit::max_stored_refused_bytes), which counts as reproduced: its prefix is all there
// is. A request stored as base64 is decoded before it is parsed. Candidate mode compares
// decision and rule, the change an auditor asks about, and skips refused rows.
audit::AuditResult<ReplayReport> replay_log(audit::AuditReader& reader,
                                            const ReplayOptions& options);

// The same replay, one row at a time, for rows from elsewhere (the central store), with
// the policies from `files`. `threads` and `split_from_rows` do not apply.
class Replayer;
class RowReplayer {
public:
    RowReplayer(PolicyFilesSource files, const ReplayOptions& options);
    RowReplayer(const RowReplayer&) = delete;
    RowReplayer& operator=(const RowReplayer&) = delete;
    ~RowReplayer();
    void row(const audit::AuditRowView& row);
    ReplayReport& report();

private:
    std::unique_ptr<Replayer> m_replayer;
};

// Adds `part`'s counts and differences (after those already there) to `into`.
void add_report(ReplayReport& into, ReplayReport& part);

// A third-party provision record (APPI Art. 29) drawn from an allowed decision.
struct ProvisionRecord {
    std::string origin; // the host's log it is from, in a store of many (else empty)
    std::uint64_t seq = 0;
    std::int64_t time_us = 0;
    std::string recipient;       // the party's identifier
    std::string recipient_label; // as the policy names it
    std::string subject;         // the pseudonymous reference to the person
    std::string data;            // JSON array text of the data categories
    std::string purpose;
    std::string activity;
    std::string activity_kind; // provide, … (as the policy declares the activity)
    std::string recipient_role;
    bool consent = false; // the request's context stated consent on record
    std::string legal_basis;
    std::string rule;
    std::string service;
    std::string policy_hash;
};

struct RecordFilter {
    std::optional<std::string> recipient; // identifier or label
    std::optional<std::string> subject;
    std::optional<std::int64_t> since_us;
    std::optional<std::int64_t> until_us;
    // The ground that means "the person consented".
    std::string consent_ground = "appi_27_1_consent";
    bool show_progress = false;
};

// Which rows are third-party provision records: an allowed check or explain, sent
// (direction send), that is a third-party provision — the deciding activity's kind is
// `provide` or the recipient's role is `third_party` — and relied on consent: its rule's
// basis is the consent ground, or its condition holds with the request's context but not
// with consent taken away. Kinds and roles come from the policy stored under the row's
// hash. The one definition: `audit records`, `audit export` and `audit report` all select
// through it, so their figures agree.
class ProvisionSelector {
public:
    // Reads the policies through `reader`; `filter`'s recipient and subject apply, its
    // period is the caller's to read.
    ProvisionSelector(audit::AuditReader& reader, RecordFilter filter);
    // Reads the policies through `files` (a log kept elsewhere than in a file).
    ProvisionSelector(PolicyFilesSource files, RecordFilter filter);
    ~ProvisionSelector();
    ProvisionSelector(const ProvisionSelector&) = delete;
    ProvisionSelector& operator=(const ProvisionSelector&) = delete;

    // The record the row is, none when it is not one, or why that cannot be told (the
    // row's policy is not stored or does not load, its request does not parse).
    audit::AuditResult<std::optional<ProvisionRecord>> select(const audit::AuditRowView& row);
    // The stored policies it has read, for a pass that needs them too.
    PolicyCache& policies() { return m_cache; }

private:
    RecordFilter m_filter;
    PolicyCache m_cache;
    std::unique_ptr<RequestParser> m_parser;
    std::string m_decoded; // a request stored as base64
};

// The records of the filter's period, in seq order (ProvisionSelector).
audit::AuditResult<std::vector<ProvisionRecord>> provision_records(audit::AuditReader& reader,
                                                                   const RecordFilter& filter);

// Which rules decided the checks and explains recorded in [since, until): each
// decision counted under its recorded rule, the rules listed from the policies stored
// with those rows (in the order the period first used them).
struct AuditCoverage {
    RuleCoverage rules;
    std::vector<std::pair<std::string, std::uint64_t>> policies; // hash, decisions; in order
};
audit::AuditResult<AuditCoverage> rule_coverage(audit::AuditReader& reader,
                                                std::optional<std::int64_t> since_us,
                                                std::optional<std::int64_t> until_us,
                                                bool show_progress);

// The time texts of audit/row_json.hpp: "2024-05-01T09:30:00.123456Z" out, and dates or
// times in ("2024-05-01", "2024-05-01T09:30", ...) read as UTC.
using audit::iso_time;
using audit::parse_time;

} // namespace flowgate::cli
