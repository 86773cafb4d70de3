// Verify, replay and provision records over an audit store; see audit_tools.hpp and
// docs/audit-store.md. The passes stream rows from one read snapshot and keep the
// per-row work free of allocation where it counts (hashing, JSON parsing), because
// a society's log reaches millions of decisions.
#include "cli/audit_tools.hpp"

#include "audit/request_text.hpp"
#include "dsl/evaluator.hpp"
#include "dsl/policy_loader.hpp"
#include "dsl/request_json.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <iostream>
#include <iterator>
#include <thread>
#include <unistd.h>
#include <unordered_map>

namespace flowgate::cli {

namespace json = boost::json;
namespace outcome = boost::outcome_v2;
using audit::AuditErrc;
using audit::AuditError;
using audit::AuditResult;
using audit::AuditRowView;

Progress::Progress(std::string label, std::uint64_t total, bool enabled)
    : m_label(std::move(label)), m_total(total), m_enabled(enabled) {}

Progress::Progress(std::string label, std::uint64_t total)
    : Progress(std::move(label), total, ::isatty(STDERR_FILENO) == 1) {}

Progress::~Progress() {
    if (m_printed) {
        print();
        std::fputc('\n', stderr);
    }
}

void Progress::print() {
    std::fprintf(stderr, "\r%s: %llu/%llu rows", m_label.c_str(),
                 static_cast<unsigned long long>(m_rows), static_cast<unsigned long long>(m_total));
    std::fflush(stderr);
    m_printed = true;
}

const StoredPolicy& PolicyCache::get(std::string_view hash) {
    if (m_last != nullptr && hash == m_last_hash) {
        return *m_last;
    }
    auto found = m_policies.find(std::string(hash));
    if (found == m_policies.end()) {
        found = m_policies.emplace(std::string(hash), load(std::string(hash))).first;
    }
    m_last = &found->second;
    m_last_hash = found->first;
    return *m_last;
}

StoredPolicy PolicyCache::load(const std::string& hash) {
    StoredPolicy stored;
    auto files = m_files(hash);
    if (!files) {
        stored.error = files.error().message;
        return stored;
    }
    if (files.value().empty()) {
        stored.error = "no policy texts are stored under " + hash;
        return stored;
    }
    std::vector<dsl::PolicyText> texts;
    for (const auto& [name, text] : files.value()) {
        texts.push_back({name, text});
    }
    if (dsl::policy_hash(texts) != hash) {
        stored.error = "the texts stored under " + hash + " do not hash to it";
        return stored;
    }
    dsl::LoadResult loaded = dsl::load_policy(std::move(texts));
    if (!loaded) {
        stored.error =
            "the policy stored under " + hash + " does not load: " +
            (loaded.diagnostics.empty() ? std::string() : loaded.diagnostics.front().message);
        return stored;
    }
    stored.policy = loaded.policy;
    for (const dsl::Rule& rule : stored.policy->model().rules) {
        stored.rules.emplace(rule.id, &rule);
    }
    return stored;
}

// Parses request lines into a reused arena: after the first rows, parsing allocates
// nothing.
class RequestParser {
public:
    RequestParser() : m_resource(m_initial, sizeof m_initial), m_parser(json::storage_ptr()) {}

    // Null when the line is not JSON. The value lives until the next call.
    const json::value* parse(std::string_view line) {
        m_value = json::value();
        m_resource.release();
        m_parser.reset(json::storage_ptr(&m_resource));
        boost::system::error_code error;
        m_parser.write(line.data(), line.size(), error);
        if (error) {
            return nullptr;
        }
        m_value = m_parser.release();
        return &m_value;
    }

    // The request a recorded check or explain line asks about, or why it is not one. It
    // was decided when it was recorded: today's limits on a request do not refuse it.
    dsl::RequestParse request(std::string_view line) {
        const json::value* parsed = parse(line);
        if (parsed == nullptr) {
            return dsl::RequestError{"bad_json", "not JSON"};
        }
        return dsl::request_from_json(*parsed, dsl::no_request_limits);
    }

private:
    alignas(std::max_align_t) unsigned char m_initial[16384];
    json::monotonic_resource m_resource;
    json::parser m_parser;
    json::value m_value;
};

namespace {

bool is_decision(std::string_view kind) {
    return kind == "check" || kind == "explain";
}

// The code flowgated refuses the line with (null: not JSON), or "" if it would serve it now.
std::string refusal_code(const json::value* parsed) {
    dsl::RequestLine line = dsl::request_line_from_json(parsed);
    return line.refusal ? std::move(line.refusal->code) : std::string();
}

// Why a row's request column cannot be read back as the line received.
std::string undecodable(const AuditRowView& row) {
    return "the recorded request is not in an encoding flowgate writes (request_encoding '" +
           std::string(row.request_encoding) + "')";
}

ReplayDifference difference_for(const AuditRowView& row) {
    ReplayDifference difference;
    difference.seq = row.seq;
    difference.time_us = row.time_us;
    difference.kind = std::string(row.kind);
    difference.purpose = std::string(row.purpose);
    difference.recipient = std::string(row.recipient);
    difference.subject = std::string(row.subject);
    difference.data = std::string(row.data);
    difference.recorded_decision = std::string(row.decision);
    difference.recorded_rule = std::string(row.rule);
    return difference;
}

} // namespace

// Replays the rows of one part of the log with its own parser and policy cache.
class Replayer {
public:
    Replayer(PolicyFilesSource files, const ReplayOptions& options)
        : m_cache(std::move(files)), m_candidate(options.candidate.get()) {}

    ReplayReport& report() { return m_report; }

    void row(const AuditRowView& row) {
        ++m_report.rows;
        if (row.kind == "refused") {
            if (m_candidate == nullptr) {
                refused(row);
            }
            return; // under a candidate: refusals do not depend on the policy
        }
        if (is_decision(row.kind)) {
            decision(row);
        }
    }

private:
    void note(ReplayDifference difference) {
        ++m_report.by_purpose[difference.purpose];
        ++m_report.by_recipient[difference.recipient];
        ++m_report
              .by_decision[difference.recorded_decision + " -> " +
                           (difference.replayed_decision.empty() ? "(not replayed)"
                                                                 : difference.replayed_decision)];
        m_report.differences.push_back(std::move(difference));
    }

    void refused(const AuditRowView& row) {
        ++m_report.refused;
        const std::string_view reason = row.reason;
        if (reason.starts_with("line_too_long") || !row.request_sha256.empty()) {
            // Refused for its length, or a long line of which the row keeps only the first
            // bytes (with the whole line's length and SHA-256): that prefix is all there is.
            ++m_report.reproduced;
            return;
        }
        const std::optional<std::string_view> line = audit::received_line(row, m_line);
        if (!line) {
            ReplayDifference difference = difference_for(row);
            difference.what = undecodable(row);
            note(std::move(difference));
            return;
        }
        const std::string code = refusal_code(m_parser.parse(*line));
        if (code == reason.substr(0, reason.find(':'))) {
            ++m_report.reproduced;
            return;
        }
        ReplayDifference difference = difference_for(row);
        difference.replayed_decision = code.empty() ? "decided" : "refused";
        difference.replayed_reason = code;
        difference.what = code.empty() ? "the refused request is understood now"
                                       : "refused for another reason (" + code + ")";
        note(std::move(difference));
    }

    void decision(const AuditRowView& row) {
        ++m_report.decisions;
        const dsl::CompiledPolicy* policy = m_candidate;
        if (policy == nullptr) {
            const StoredPolicy& stored = m_cache.get(row.policy_hash);
            if (!stored.policy) {
                ReplayDifference difference = difference_for(row);
                difference.what = stored.error;
                note(std::move(difference));
                return;
            }
            policy = stored.policy.get();
        }
        const std::optional<std::string_view> line = audit::received_line(row, m_line);
        if (!line) {
            ReplayDifference difference = difference_for(row);
            difference.what = row.request_sha256.empty()
                                  ? undecodable(row)
                                  : "only the first bytes of the recorded request are stored";
            note(std::move(difference));
            return;
        }
        dsl::RequestParse request = m_parser.request(*line);
        if (const auto* error = std::get_if<dsl::RequestError>(&request)) {
            ReplayDifference difference = difference_for(row);
            difference.what = "the recorded request does not parse: " + error->message;
            note(std::move(difference));
            return;
        }
        const dsl::Decision decision = dsl::evaluate(*policy, std::get<dsl::Request>(request));
        const std::string_view decided = decision.allowed ? "allow" : "deny";
        const std::string_view rule =
            decision.rule != nullptr ? std::string_view(decision.rule->id) : std::string_view();
        std::string what;
        if (decided != row.decision) {
            what += " decision";
        }
        if (rule != row.rule) {
            what += " rule";
        }
        if (m_candidate == nullptr) {
            if (decision.reason() != row.reason) {
                what += " reason";
            }
            const std::string_view basis = decision.legal_basis != nullptr
                                               ? std::string_view(decision.legal_basis->id)
                                               : std::string_view();
            if (basis != row.legal_basis) {
                what += " legal_basis";
            }
            if (dsl::obligations_to_text(decision) != row.obligations) {
                what += " obligations";
            }
            const std::string_view source =
                decision.rule != nullptr ? std::string_view(policy->rule_source(*decision.rule))
                                         : std::string_view();
            if (source != row.rule_source) {
                what += " rule_source";
            }
        }
        if (what.empty()) {
            ++m_report.reproduced;
            return;
        }
        ReplayDifference difference = difference_for(row);
        difference.replayed_decision = std::string(decided);
        difference.replayed_rule = std::string(rule);
        difference.replayed_reason = std::string(decision.reason());
        difference.what = "differs in" + what;
        note(std::move(difference));
    }

    PolicyCache m_cache;
    const dsl::CompiledPolicy* m_candidate;
    RequestParser m_parser;
    std::string m_line; // a request stored as base64, decoded
    ReplayReport m_report;
};

RowReplayer::RowReplayer(PolicyFilesSource files, const ReplayOptions& options)
    : m_replayer(std::make_unique<Replayer>(std::move(files), options)) {}

RowReplayer::~RowReplayer() = default;

void RowReplayer::row(const AuditRowView& row) {
    m_replayer->row(row);
}

ReplayReport& RowReplayer::report() {
    return m_replayer->report();
}

void add_report(ReplayReport& into, ReplayReport& part) {
    into.rows += part.rows;
    into.decisions += part.decisions;
    into.refused += part.refused;
    into.reproduced += part.reproduced;
    std::move(part.differences.begin(), part.differences.end(),
              std::back_inserter(into.differences));
    for (const auto& [key, count] : part.by_purpose) {
        into.by_purpose[key] += count;
    }
    for (const auto& [key, count] : part.by_recipient) {
        into.by_recipient[key] += count;
    }
    for (const auto& [key, count] : part.by_decision) {
        into.by_decision[key] += count;
    }
}

AuditResult<ReplayReport> replay_log(audit::AuditReader& reader, const ReplayOptions& options) {
    auto last = reader.last_seq();
    if (!last) {
        return last.error();
    }
    Progress progress("replay", last.value(), options.show_progress);
    audit::PassOptions pass;
    pass.threads = options.threads;
    pass.split_from_rows = options.split_from_rows;
    pass.progress = [&progress](std::uint64_t rows) {
        progress.update(rows);
    };
    auto parts = audit::run_parts<ReplayReport>(
        reader, last.value(), pass,
        [&options](audit::AuditReader& own, const audit::Part& part,
                   audit::RowCounter& counter) -> AuditResult<ReplayReport> {
            Replayer replayer(policy_files_of(own), options);
            auto walked = own.for_each_row(part.range, [&](const AuditRowView& row) {
                counter.row();
                replayer.row(row);
                return true;
            });
            if (!walked) {
                return walked.error();
            }
            return std::move(replayer.report());
        });
    if (!parts) {
        return parts.error();
    }
    ReplayReport report;
    for (ReplayReport& part : parts.value()) {
        add_report(report, part);
    }
    return report;
}

ProvisionSelector::ProvisionSelector(audit::AuditReader& reader, RecordFilter filter)
    : m_filter(std::move(filter)), m_cache(reader), m_parser(std::make_unique<RequestParser>()) {}

ProvisionSelector::ProvisionSelector(PolicyFilesSource files, RecordFilter filter)
    : m_filter(std::move(filter)), m_cache(std::move(files)),
      m_parser(std::make_unique<RequestParser>()) {}

ProvisionSelector::~ProvisionSelector() = default;

AuditResult<std::optional<ProvisionRecord>> ProvisionSelector::select(const AuditRowView& row) {
    if (!is_decision(row.kind) || row.decision != "allow" || row.direction != "send") {
        return std::nullopt;
    }
    if (m_filter.subject && row.subject != *m_filter.subject) {
        return std::nullopt;
    }
    const StoredPolicy& stored = m_cache.get(row.policy_hash);
    if (!stored.policy) {
        return AuditError{AuditErrc::bad_schema,
                          "seq " + std::to_string(row.seq) + ": " + stored.error};
    }
    const dsl::CompiledPolicy& policy = *stored.policy;
    const dsl::CheckedPolicy& model = policy.model();
    const dsl::Id party = policy.find_party(row.recipient);
    if (m_filter.recipient && row.recipient != *m_filter.recipient &&
        (party == dsl::no_id || policy.find_party(*m_filter.recipient) != party)) {
        return std::nullopt;
    }
    const dsl::Id purpose = policy.find_purpose(row.purpose);
    const dsl::Id activity = policy.find_activity(purpose, row.activity);
    const bool provides =
        activity != dsl::no_id && model.activities[activity].kind == dsl::FlowKind::provide;
    const bool to_third_party =
        party != dsl::no_id && model.parties[party].role == dsl::Role::third_party;
    if (!provides && !to_third_party) {
        return std::nullopt;
    }
    const auto rule = stored.rules.find(row.rule);
    if (rule == stored.rules.end()) {
        return AuditError{AuditErrc::bad_schema, "seq " + std::to_string(row.seq) + ": rule '" +
                                                     std::string(row.rule) +
                                                     "' is not in its policy"};
    }
    const std::optional<std::string_view> line = audit::received_line(row, m_decoded);
    dsl::RequestParse request =
        line ? m_parser->request(*line) : dsl::RequestError{"bad_encoding", "not decoded"};
    if (std::holds_alternative<dsl::RequestError>(request)) {
        return AuditError{AuditErrc::bad_schema, "seq " + std::to_string(row.seq) +
                                                     ": the recorded request does not parse"};
    }
    const dsl::RequestContext& context = std::get<dsl::Request>(request).context;
    const dsl::Rule& decided_by = *rule->second;
    const dsl::Id ground =
        context.legal_basis ? policy.find_ground(*context.legal_basis) : dsl::no_id;
    const bool consent_basis = decided_by.basis != dsl::no_id &&
                               model.grounds[decided_by.basis].id == m_filter.consent_ground;
    const bool needs_consent =
        dsl::condition_holds(decided_by.condition, context.consent, context.objection, ground) &&
        !dsl::condition_holds(decided_by.condition, false, context.objection, ground);
    if (!consent_basis && !needs_consent) {
        return std::nullopt;
    }
    ProvisionRecord record;
    record.seq = row.seq;
    record.time_us = row.time_us;
    record.recipient = std::string(row.recipient);
    record.recipient_label = party != dsl::no_id ? model.parties[party].label : "";
    record.recipient_role = party != dsl::no_id
                                ? std::string(dsl::to_string(model.parties[party].role))
                                : std::string();
    record.subject = std::string(row.subject);
    record.data = std::string(row.data);
    record.purpose = std::string(row.purpose);
    record.activity = std::string(row.activity);
    record.activity_kind = activity != dsl::no_id
                               ? std::string(dsl::to_string(model.activities[activity].kind))
                               : std::string();
    record.consent = context.consent;
    record.legal_basis = std::string(row.legal_basis);
    record.rule = std::string(row.rule);
    record.service = std::string(row.service);
    record.policy_hash = std::string(row.policy_hash);
    return record;
}

AuditResult<std::vector<ProvisionRecord>> provision_records(audit::AuditReader& reader,
                                                            const RecordFilter& filter) {
    auto last = reader.last_seq();
    if (!last) {
        return last.error();
    }
    Progress progress("records", last.value(), filter.show_progress);
    ProvisionSelector selector(reader, filter);
    std::vector<ProvisionRecord> records;
    std::optional<AuditError> failure;
    audit::AuditRowRange range;
    range.since_us = filter.since_us;
    range.until_us = filter.until_us;
    auto walked = reader.for_each_row(range, [&](const AuditRowView& row) {
        progress.row();
        auto selected = selector.select(row);
        if (!selected) {
            failure = selected.error();
            return false;
        }
        if (selected.value()) {
            records.push_back(std::move(*selected.value()));
        }
        return true;
    });
    if (!walked) {
        return walked.error();
    }
    if (failure) {
        return *failure;
    }
    return records;
}

AuditResult<AuditCoverage> rule_coverage(audit::AuditReader& reader,
                                         std::optional<std::int64_t> since_us,
                                         std::optional<std::int64_t> until_us, bool show_progress) {
    auto last = reader.last_seq();
    if (!last) {
        return last.error();
    }
    Progress progress("coverage", last.value(), show_progress);
    PolicyCache cache(reader);
    AuditCoverage coverage;
    std::unordered_map<std::string, std::size_t> policy_index;
    std::optional<AuditError> failure;
    audit::AuditRowRange range;
    range.since_us = since_us;
    range.until_us = until_us;
    auto walked = reader.for_each_row(range, [&](const AuditRowView& row) {
        progress.row();
        if (!is_decision(row.kind)) {
            return true;
        }
        auto [found, added] =
            policy_index.emplace(std::string(row.policy_hash), coverage.policies.size());
        if (added) {
            const StoredPolicy& stored = cache.get(row.policy_hash);
            if (!stored.policy) {
                failure = AuditError{AuditErrc::bad_schema,
                                     "seq " + std::to_string(row.seq) + ": " + stored.error};
                return false;
            }
            coverage.rules.add_rules(*stored.policy);
            coverage.policies.emplace_back(std::string(row.policy_hash), 0);
        }
        ++coverage.policies[found->second].second;
        coverage.rules.count(row.rule, row.decision == "allow");
        return true;
    });
    if (!walked) {
        return walked.error();
    }
    if (failure) {
        return *failure;
    }
    return coverage;
}

} // namespace flowgate::cli
