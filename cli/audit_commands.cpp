// `flowgate audit verify|checkpoint|replay|export|records`: the auditor's tools. They
// work on the audit store file alone, read-only, while flowgated runs and without
// root; see audit_tools.hpp for what each pass checks and README.md ("For auditors").
#include "audit/proof_document.hpp"
#include "audit/request_text.hpp"
#include "audit/signed_note.hpp"
#include "audit/tree_checkpoint.hpp"
#include "cli/audit_inputs.hpp"
#include "cli/audit_report.hpp"
#include "cli/audit_tools.hpp"
#include "cli/commands.hpp"
#include "cli/policy_report.hpp"
#include "cli/proof_commands.hpp"
#include "dsl/policy_loader.hpp"

#include <boost/json.hpp>

#include <fstream>
#include <iostream>
#include <sstream>
#include <unistd.h>

namespace flowgate::cli {
namespace json = boost::json;

namespace {

bool stderr_is_terminal() {
    return ::isatty(STDERR_FILENO) == 1;
}

std::string csv_field(std::string_view text) {
    if (text.find_first_of(",\"\r\n") == std::string_view::npos) {
        return std::string(text);
    }
    std::string out = "\"";
    for (char c : text) {
        if (c == '"') {
            out += '"';
        }
        out += c;
    }
    return out + "\"";
}

template <class Fields> void csv_line(std::ostream& out, const Fields& fields) {
    bool first = true;
    for (std::string_view field : fields) {
        if (!first) {
            out << ',';
        }
        out << csv_field(field);
        first = false;
    }
    out << '\n';
}

void csv_line(std::ostream& out, std::initializer_list<std::string_view> fields) {
    csv_line<std::initializer_list<std::string_view>>(out, fields);
}

// A row's field as `audit export --all` writes it: the time in ISO 8601, integers in
// decimal (numbers in JSON), texts as stored.
std::string export_text(const audit::AuditField& field, std::int64_t value) {
    return field.role == audit::FieldRole::time ? iso_time(value) : std::to_string(value);
}
std::string export_text(const audit::AuditField& /*field*/, std::uint64_t seq) {
    return std::to_string(seq);
}
std::string export_text(const audit::AuditField& /*field*/, std::string_view text) {
    return std::string(text);
}

json::value data_json(std::string_view text) {
    boost::system::error_code error;
    json::value parsed = json::parse(text, error);
    return error ? json::value(json::string(text)) : parsed;
}

// Reads --since/--until; false (reported) when a value is not a date.
bool read_times(const std::string& since, const std::string& until,
                std::optional<std::int64_t>& since_us, std::optional<std::int64_t>& until_us) {
    for (auto [text, out] : {std::pair{&since, &since_us}, std::pair{&until, &until_us}}) {
        if (text->empty()) {
            continue;
        }
        *out = parse_time(*text);
        if (!*out) {
            std::cerr << "flowgate audit: error: '" << *text
                      << "' is not a date (2024-05-01 or 2024-05-01T09:30:00Z, UTC)\n";
            return false;
        }
    }
    return true;
}

// What --checkpoint FILE holds: the chain's line "seq <N> hash <hex>", or checkpoints of
// the tree (signed notes, or the journal's lines of them), their signatures checked when
// a key is given.
struct KeptCheckpoints {
    std::optional<audit::Checkpoint> chain;
    std::vector<audit::TreeCheckpoint> trees;
};

// The checkpoints of the file, or none (reported: exit 2 for a file that cannot be read
// or holds none, 1 for a note the key did not sign, in `status`).
std::optional<KeptCheckpoints> read_kept_checkpoints(const std::string& path,
                                                     const std::optional<audit::VerifierKey>& key,
                                                     int& status) {
    status = exit_error;
    auto text = read_input(path, audit::max_note_bytes);
    if (!text) {
        report_error(text.error().message);
        return std::nullopt;
    }
    KeptCheckpoints kept;
    if ((kept.chain = audit::parse_checkpoint(text.value()))) {
        return kept;
    }
    const std::vector<std::string> notes = audit::checkpoint_notes(text.value());
    if (notes.empty()) {
        report_error(path + " holds neither a checkpoint line 'seq <N> hash <hex>' nor signed "
                            "checkpoints");
        return std::nullopt;
    }
    for (std::size_t i = 0; i < notes.size(); ++i) {
        const std::string where = path + ": checkpoint " + std::to_string(i + 1) + ": ";
        std::string body(audit::note_text_unchecked(notes[i]));
        if (key) {
            auto opened = audit::open_note(notes[i], std::span(&*key, 1));
            if (!opened) {
                std::cout << where << "FAILED: " << opened.error().message << "\n";
                status = exit_deny;
                return std::nullopt;
            }
            body = opened.value().text;
        }
        auto checkpoint = audit::parse_tree_checkpoint(body);
        if (!checkpoint) {
            report_error(where + checkpoint.error().message);
            return std::nullopt;
        }
        kept.trees.push_back(std::move(checkpoint).value());
    }
    return kept;
}

// What verify checks given --key and --checkpoint; none (reported, the exit status in
// `status`) when either cannot be read.
std::optional<audit::VerifyOptions> read_verify_options(const std::string& checkpoint_path,
                                                        const std::string& key_argument,
                                                        int& status) {
    status = exit_error;
    audit::VerifyOptions options;
    if (!key_argument.empty()) {
        auto key = read_verifier_key(key_argument);
        if (!key) {
            report_error(key.error().message);
            return std::nullopt;
        }
        options.key = key.value();
    }
    if (!checkpoint_path.empty()) {
        auto kept = read_kept_checkpoints(checkpoint_path, options.key, status);
        if (!kept) {
            return std::nullopt;
        }
        options.checkpoint = kept->chain;
        options.kept_checkpoints = std::move(kept->trees);
    }
    return options;
}

// verify_log, its progress on stderr when that is a terminal.
audit::AuditResult<audit::VerifyResult> verify_with_progress(const OpenedLog& log,
                                                             audit::VerifyOptions options) {
    std::optional<Progress> progress;
    if (stderr_is_terminal()) {
        progress.emplace("verify", log.last_seq, true);
        options.pass.progress = [&progress](std::uint64_t rows) {
            progress->update(rows);
        };
    }
    return audit::verify_log(*log.reader, options);
}

int run_verify(const std::string& path, const std::string& checkpoint_path,
               const std::string& key_argument, bool print_tail) {
    int status = exit_error;
    auto read = read_verify_options(checkpoint_path, key_argument, status);
    if (!read) {
        return status;
    }
    const audit::VerifyOptions& options = *read;
    auto log = open_log_or_report(path);
    if (!log) {
        return exit_error;
    }
    auto verified = verify_with_progress(*log, options);
    if (!verified) {
        report_error(verified.error().message);
        return exit_error;
    }
    const audit::VerifyResult& result = verified.value();
    if (result.fault) {
        std::cout << path << ": FAILED at seq " << result.fault->seq << ": "
                  << result.fault->message << "\n";
        return exit_deny;
    }
    if (result.tree_fault) {
        std::cout << path << ": FAILED: the chain is intact, but " << *result.tree_fault << "\n";
        return exit_deny;
    }
    if (print_tail) {
        std::cout << audit::format_checkpoint(result.tail);
        return exit_allow;
    }
    std::cout << path << ": ok, " << result.rows << " rows chain from seq 1 to seq "
              << result.tail.seq << (options.checkpoint ? ", checkpoint matches" : "") << "\n";
    if (result.tree_checked) {
        std::cout << path << ": tree ok, " << result.tree_nodes << " stored nodes and "
                  << result.checkpoints << " stored checkpoints match its rows"
                  << (options.key ? ", each signed by " + options.key->name : std::string())
                  << "; root " << audit::base64_of(result.tree_root) << "\n";
    }
    if (!options.kept_checkpoints.empty()) {
        std::cout << path << ": the log holds the tree of each of the " << result.kept_checkpoints
                  << " checkpoints of " << checkpoint_path
                  << (options.key ? ", each signed by " + options.key->name
                                  : std::string(" (their signatures not checked: no --key)"))
                  << "\n";
    }
    std::cout << audit::format_checkpoint(result.tail);
    return exit_allow;
}

json::object difference_json(const ReplayDifference& d) {
    json::object out{{"seq", d.seq},
                     {"time", iso_time(d.time_us)},
                     {"kind", d.kind},
                     {"purpose", d.purpose},
                     {"recipient", d.recipient},
                     {"subject", d.subject},
                     {"data", data_json(d.data)},
                     {"recorded", {{"decision", d.recorded_decision}, {"rule", d.recorded_rule}}},
                     {"replayed",
                      {{"decision", d.replayed_decision},
                       {"rule", d.replayed_rule},
                       {"reason", d.replayed_reason}}},
                     {"what", d.what}};
    if (!d.origin.empty()) {
        out["origin"] = d.origin;
    }
    return out;
}

json::object counts_json(const std::map<std::string, std::uint64_t>& counts) {
    json::object out;
    for (const auto& [key, count] : counts) {
        out[key] = count;
    }
    return out;
}

void print_counts(const char* title, const std::map<std::string, std::uint64_t>& counts) {
    if (counts.empty()) {
        return;
    }
    std::cout << title << ":\n";
    for (const auto& [key, count] : counts) {
        std::cout << "  " << (key.empty() ? "(none)" : key) << ": " << count << "\n";
    }
}

} // namespace

bool load_candidate(const std::string& candidate_path, ReplayOptions& options) {
    if (candidate_path.empty()) {
        return true;
    }
    dsl::LoadResult loaded = dsl::load_policy(candidate_path);
    if (!loaded) {
        std::cerr << dsl::format(loaded.diagnostics);
        return false;
    }
    options.candidate = loaded.policy;
    return true;
}

int print_replay(const ReplayReport& report, const ReplayOptions& options, bool as_json) {
    const bool candidate = options.candidate != nullptr;
    if (as_json) {
        json::array differences;
        for (const ReplayDifference& d : report.differences) {
            differences.push_back(difference_json(d));
        }
        json::object out{{"mode", candidate ? "candidate" : "recorded"},
                         {"rows", report.rows},
                         {"decisions", report.decisions},
                         {"refused", report.refused},
                         {"reproduced", report.reproduced},
                         {candidate ? "changed" : "not_reproduced", std::move(differences)},
                         {"by_purpose", counts_json(report.by_purpose)},
                         {"by_recipient", counts_json(report.by_recipient)},
                         {"by_decision", counts_json(report.by_decision)}};
        if (candidate) {
            out["candidate_policy"] = options.candidate->hash();
        }
        std::cout << json::serialize(out) << "\n";
    } else {
        if (candidate) {
            std::cout << "under " << options.candidate->hash() << ": " << report.decisions
                      << " decisions replayed, " << report.differences.size() << " would change\n";
        } else {
            std::cout << report.decisions << " decisions and " << report.refused
                      << " refused requests replayed, " << report.reproduced << " reproduced, "
                      << report.differences.size() << " not reproduced\n";
        }
        print_counts("by purpose", report.by_purpose);
        print_counts("by recipient", report.by_recipient);
        print_counts("by decision", report.by_decision);
        for (const ReplayDifference& d : report.differences) {
            std::cout << (d.origin.empty() ? std::string() : "origin " + d.origin + " ") << "seq "
                      << d.seq << " " << iso_time(d.time_us) << " " << d.kind << " " << d.purpose
                      << " -> " << d.recipient << " " << d.data << " subject " << d.subject << ": "
                      << d.recorded_decision
                      << (d.recorded_rule.empty() ? "" : " (" + d.recorded_rule + ")") << " => "
                      << (d.replayed_decision.empty() ? "?" : d.replayed_decision)
                      << (d.replayed_rule.empty() ? "" : " (" + d.replayed_rule + ")") << ": "
                      << d.what << (d.replayed_reason.empty() ? "" : "; " + d.replayed_reason)
                      << "\n";
        }
    }
    return report.differences.empty() ? exit_allow : exit_deny;
}

namespace {

int run_replay(const std::string& path, const std::string& candidate_path, bool as_json,
               unsigned threads) {
    ReplayOptions options;
    options.threads = threads;
    options.show_progress = stderr_is_terminal();
    if (!load_candidate(candidate_path, options)) {
        return exit_error;
    }
    auto reader = open_or_report(path);
    if (!reader) {
        return exit_error;
    }
    auto replayed = replay_log(*reader, options);
    if (!replayed) {
        std::cerr << "flowgate audit: error: " << replayed.error().message << "\n";
        return exit_error;
    }
    return print_replay(replayed.value(), options, as_json);
}

json::object record_json(const ProvisionRecord& r, bool with_origin) {
    json::object out{{"seq", r.seq},
                     {"time", iso_time(r.time_us)},
                     {"recipient", r.recipient},
                     {"recipient_label", r.recipient_label},
                     {"recipient_role", r.recipient_role},
                     {"subject", r.subject},
                     {"data", data_json(r.data)},
                     {"consent", r.consent},
                     {"purpose", r.purpose},
                     {"activity", r.activity},
                     {"activity_kind", r.activity_kind},
                     {"legal_basis", r.legal_basis},
                     {"rule", r.rule},
                     {"service", r.service},
                     {"policy", r.policy_hash}};
    if (with_origin) {
        out["origin"] = r.origin;
    }
    return out;
}

} // namespace

void print_records(const std::vector<ProvisionRecord>& records, const std::string& format,
                   bool with_origin) {
    if (format == "jsonl") {
        for (const ProvisionRecord& r : records) {
            std::cout << json::serialize(record_json(r, with_origin)) << "\n";
        }
        return;
    }
    if (format == "csv") {
        if (with_origin) {
            std::cout << "origin,";
        }
        csv_line(std::cout, {"seq", "time", "recipient", "recipient_label", "subject", "data",
                             "consent", "purpose", "activity", "legal_basis", "rule", "service"});
        for (const ProvisionRecord& r : records) {
            if (with_origin) {
                std::cout << csv_field(r.origin) << ',';
            }
            const std::string seq = std::to_string(r.seq);
            const std::string time = iso_time(r.time_us);
            csv_line(std::cout, {seq, time, r.recipient, r.recipient_label, r.subject, r.data,
                                 r.consent ? "yes" : "no", r.purpose, r.activity, r.legal_basis,
                                 r.rule, r.service});
        }
        return;
    }
    // Per recipient, then per person, each in time order.
    std::map<std::string, std::map<std::string, std::vector<const ProvisionRecord*>>> grouped;
    for (const ProvisionRecord& r : records) {
        grouped[r.recipient][r.subject].push_back(&r);
    }
    std::cout << records.size() << " third-party provision records (APPI Art. 29)\n";
    for (const auto& [recipient, people] : grouped) {
        const ProvisionRecord& first = *people.begin()->second.front();
        std::size_t count = 0;
        for (const auto& [subject, list] : people) {
            count += list.size();
        }
        std::cout << "\nrecipient " << recipient << " " << first.recipient_label << " ("
                  << first.recipient_role << "): " << count << "\n";
        for (const auto& [subject, list] : people) {
            std::cout << "  person " << subject << ": " << list.size() << "\n";
            for (const ProvisionRecord* r : list) {
                std::cout << "    " << iso_time(r->time_us)
                          << (with_origin ? " origin " + r->origin : std::string()) << " seq "
                          << r->seq << " data " << r->data << " consent "
                          << (r->consent ? "yes" : "no") << " basis " << r->legal_basis << " rule "
                          << r->rule << " purpose " << r->purpose << " activity " << r->activity
                          << "\n";
            }
        }
    }
}

namespace {

int run_coverage(const std::string& path, const RecordFilter& period, bool as_json) {
    auto reader = open_or_report(path);
    if (!reader) {
        return exit_error;
    }
    auto coverage = rule_coverage(*reader, period.since_us, period.until_us, stderr_is_terminal());
    if (!coverage) {
        report_error(coverage.error().message);
        return exit_error;
    }
    const AuditCoverage& found = coverage.value();
    if (as_json) {
        json::object out = coverage_to_json(found.rules);
        json::array policies;
        for (const auto& [hash, decisions] : found.policies) {
            policies.push_back(json::object{{"policy", hash}, {"decisions", decisions}});
        }
        out["policies"] = std::move(policies);
        std::cout << json::serialize(out) << "\n";
        return exit_allow;
    }
    if (found.policies.empty()) {
        std::cout << "coverage: no decisions in the period\n";
        return exit_allow;
    }
    for (const auto& [hash, decisions] : found.policies) {
        std::cout << "policy " << hash << ": " << decisions
                  << (decisions == 1 ? " decision\n" : " decisions\n");
    }
    print_coverage(std::cout, found.rules, "decision");
    return exit_allow;
}

int run_records(const std::string& path, RecordFilter filter, const std::string& format) {
    auto reader = open_or_report(path);
    if (!reader) {
        return exit_error;
    }
    filter.show_progress = stderr_is_terminal();
    auto records = provision_records(*reader, filter);
    if (!records) {
        std::cerr << "flowgate audit: error: " << records.error().message << "\n";
        return exit_error;
    }
    print_records(records.value(), format, false);
    return exit_allow;
}

int run_export_all(const std::string& path, const RecordFilter& filter, const std::string& format) {
    auto log = open_log_or_report(path);
    if (!log) {
        return exit_error;
    }
    audit::AuditReader& reader = *log->reader;
    Progress progress("export", log->last_seq);
    audit::AuditRowRange range;
    range.since_us = filter.since_us;
    range.until_us = filter.until_us;
    // The columns are the field table's (audit/record.hpp), all but prev_hash, the time
    // in ISO 8601; every text UTF-8, so every CSV reader and JSON parser takes them. A
    // store of an earlier schema version is exported in the current form (a version-1
    // request that is not text base64'd, as version 2 stores it).
    const int version = reader.schema_version();
    std::string encoded;
    const bool csv = format == "csv";
    std::vector<std::string> cells;
    if (csv) {
        audit::for_each_field(
            [&cells](const audit::AuditField& field, const auto& /*value*/) {
                if (field.exported()) {
                    cells.emplace_back(field.export_name());
                }
            },
            audit::AuditRowView{});
        csv_line(std::cout, cells);
    }
    auto walked = reader.for_each_row(range, [&](const audit::AuditRowView& stored) {
        progress.row();
        const audit::AuditRowView row = audit::in_current_form(stored, version, encoded);
        if (!csv) {
            std::cout << json::serialize(audit::row_json(row)) << "\n";
            return true;
        }
        cells.clear();
        audit::for_each_field(
            [&cells](const audit::AuditField& field, const auto& value) {
                if (field.exported()) {
                    cells.push_back(export_text(field, value));
                }
            },
            row);
        csv_line(std::cout, cells);
        return true;
    });
    if (!walked) {
        std::cerr << "flowgate audit: error: " << walked.error().message << "\n";
        return exit_error;
    }
    return exit_allow;
}

struct ReportArgs {
    std::string db, since, until, checkpoint, consent_ground = "appi_27_1_consent";
    std::vector<std::string> keys; // one for a file; one per host's signer for --from
    std::string from, origin;      // the central store instead of a file
    std::string output;
    unsigned threads = 0;
};

int run_report(const ReportArgs& args) {
    AuditReportOptions options;
    if (!read_times(args.since, args.until, options.since_us, options.until_us)) {
        return exit_error;
    }
    options.consent_ground = args.consent_ground;
    options.pass.threads = args.threads;
    if (!args.from.empty()) {
        if (!args.checkpoint.empty()) {
            report_error("report --from: --checkpoint is for a file");
            return exit_error;
        }
        return run_central_report(args.from, args.origin, args.keys, options, args.output);
    }
    if (args.keys.size() > 1) {
        report_error("report: a file's log has one key; give --key once");
        return exit_error;
    }
    int status = exit_error;
    auto verify =
        read_verify_options(args.checkpoint, args.keys.empty() ? "" : args.keys.front(), status);
    if (!verify) {
        return status;
    }
    verify->pass.threads = args.threads;
    auto log = open_log_or_report(args.db);
    if (!log) {
        return exit_error;
    }
    auto verified = verify_with_progress(*log, *verify);
    if (!verified) {
        report_error(verified.error().message);
        return exit_error;
    }
    ReportVerification verification;
    verification.result = std::move(verified).value();
    if (verify->key) {
        verification.key_name = verify->key->name;
    }
    verification.chain_checkpoint = verify->checkpoint.has_value();
    if (!verify->kept_checkpoints.empty()) {
        verification.kept_from = args.checkpoint;
        verification.kept_checkpoints_given = verify->kept_checkpoints.size();
    }
    std::optional<Progress> progress;
    if (stderr_is_terminal()) {
        progress.emplace("report", log->last_seq, true);
        options.pass.progress = [&progress](std::uint64_t rows) {
            progress->update(rows);
        };
    }
    auto period = summarize_period(*log->reader, options);
    progress.reset();
    if (!period) {
        report_error(period.error().message);
        return exit_error;
    }
    if (!write_report_file(args.output, audit_report_html(args.db, verification, period.value()))) {
        return exit_error;
    }
    std::ostream& out = args.output == "-" ? std::cerr : std::cout;
    for (const std::string& sentence : verification_sentences(verification)) {
        out << args.db << ": " << sentence << "\n";
    }
    out << args.db << ": " << period_line(period.value()) << "\n";
    return verification.ok() ? exit_allow : exit_deny;
}

} // namespace

void register_audit_commands(CLI::App& app, Outcome& outcome) {
    CLI::App* audit = app.add_subcommand(
        "audit",
        "Verify, replay and export an audit store (read-only, works while flowgated runs); make "
        "the key that signs its checkpoints");
    audit->require_subcommand(1);

    auto verify_db = std::make_shared<std::string>();
    auto verify_checkpoint = std::make_shared<std::string>();
    auto verify_key = std::make_shared<std::string>();
    CLI::App* verify = audit->add_subcommand(
        "verify", "Check the whole hash chain and sequence, the tree and the stored checkpoints "
                  "(exit 1 naming the first fault)");
    auto verify_from = std::make_shared<std::string>();
    auto verify_origin = std::make_shared<std::string>();
    verify->add_option("DB", *verify_db, "The audit store file");
    verify->add_option("--from", *verify_from,
                       "Instead of a file, the central store in PostgreSQL (a libpq connection "
                       "string, postgresql://…) that `audit ship` fills");
    verify->add_option("--origin", *verify_origin,
                       "With --from: the host's log to verify (its checkpoints' origin line)");
    verify->add_option("--checkpoint", *verify_checkpoint,
                       "A file of checkpoints kept outside the store (signed notes, the "
                       "journal's lines of them, or a `flowgate audit checkpoint` line): the "
                       "log must hold each one's tree, so a truncated or rebuilt log fails");
    verify->add_option("--key", *verify_key,
                       "The log's verifier key, or a file holding it: every stored checkpoint, "
                       "and each one of --checkpoint, must be signed by it");
    verify->callback([=, &outcome] {
        if (verify_from->empty() == verify_db->empty() ||
            verify_from->empty() != verify_origin->empty()) {
            report_error("verify: give the store's file, or --from URI with --origin NAME");
            outcome.status = exit_error;
            return;
        }
        if (!verify_from->empty()) {
            if (!verify_checkpoint->empty()) {
                report_error("verify --from: --checkpoint is for a file");
                outcome.status = exit_error;
                return;
            }
            outcome.status = run_central_verify(*verify_from, *verify_origin, *verify_key);
            return;
        }
        outcome.status = run_verify(*verify_db, *verify_checkpoint, *verify_key, false);
    });

    auto checkpoint_db = std::make_shared<std::string>();
    CLI::App* checkpoint = audit->add_subcommand(
        "checkpoint", "Verify, then print the tail ('seq <N> hash <hex>') to keep elsewhere");
    checkpoint->add_option("DB", *checkpoint_db, "The audit store file")->required();
    checkpoint->callback(
        [=, &outcome] { outcome.status = run_verify(*checkpoint_db, {}, {}, true); });

    // DB, or --from URI [--origin NAME]: the file, or the central store's rows of every
    // host or of one.
    const auto add_source = [](CLI::App* command, std::string& db, std::string& from,
                               std::string& origin) {
        command->add_option("DB", db, "The audit store file");
        command->add_option("--from", from,
                            "Instead of a file, the central store in PostgreSQL (a libpq "
                            "connection string, postgresql://…) that `audit ship` fills: "
                            "every host's log, each naming its host");
        command->add_option("--origin", origin, "With --from: only this host's log");
    };
    // False, said on stderr, when the source is not one of the two.
    const auto source_given = [](const char* command, const std::string& db,
                                 const std::string& from, const std::string& origin) {
        if (from.empty() == db.empty() || (from.empty() && !origin.empty())) {
            report_error(std::string(command) +
                         ": give the store's file, or --from URI [--origin NAME]");
            return false;
        }
        return true;
    };

    auto replay_db = std::make_shared<std::string>();
    auto replay_policy = std::make_shared<std::string>();
    auto replay_json = std::make_shared<bool>(false);
    auto replay_threads = std::make_shared<unsigned>(0);
    CLI::App* replay = audit->add_subcommand(
        "replay", "Re-evaluate every decision under its recorded policy (exit 1 if any differs), "
                  "or under a candidate policy (exit 1 if any would change)");
    auto replay_from = std::make_shared<std::string>();
    auto replay_origin = std::make_shared<std::string>();
    add_source(replay, *replay_db, *replay_from, *replay_origin);
    replay->add_option("--policy", *replay_policy,
                       "A candidate policy file or directory to replay under instead");
    replay->add_flag("--json", *replay_json, "Print one JSON object");
    replay->add_option("--threads", *replay_threads, "Evaluation threads (0: one per core)");
    replay->callback([=, &outcome] {
        if (!source_given("replay", *replay_db, *replay_from, *replay_origin)) {
            outcome.status = exit_error;
            return;
        }
        if (!replay_from->empty()) {
            outcome.status =
                run_central_replay(*replay_from, *replay_origin, *replay_policy, *replay_json);
            return;
        }
        outcome.status = run_replay(*replay_db, *replay_policy, *replay_json, *replay_threads);
    });

    struct RecordArgs {
        std::string db, since, until, recipient, subject, format, consent_ground;
        bool all = false;
        bool proofs = false;
        std::string from;   // the central store instead of a file
        std::string origin; // with from: one host's log (else every host's)
    };
    auto export_args = std::make_shared<RecordArgs>();
    export_args->format = "csv";
    export_args->consent_ground = "appi_27_1_consent";
    CLI::App* exporter = audit->add_subcommand(
        "export", "Export the third-party provision records (APPI Art. 29), or with --all "
                  "every row, for a period");
    add_source(exporter, export_args->db, export_args->from, export_args->origin);
    exporter->add_option("--since", export_args->since, "From this UTC date or time (inclusive)");
    exporter->add_option("--until", export_args->until, "Up to this UTC date or time (exclusive)");
    exporter->add_option("--format", export_args->format, "csv or jsonl")
        ->check(CLI::IsMember({"csv", "jsonl"}));
    exporter->add_flag("--all", export_args->all, "Every row of the log, not only the records");
    exporter->add_option("--consent-ground", export_args->consent_ground,
                         "The ground that means consent");
    exporter->callback([export_args, source_given, &outcome] {
        RecordFilter filter;
        if (!read_times(export_args->since, export_args->until, filter.since_us, filter.until_us)) {
            outcome.status = exit_error;
            return;
        }
        filter.consent_ground = export_args->consent_ground;
        if (!source_given("export", export_args->db, export_args->from, export_args->origin)) {
            outcome.status = exit_error;
            return;
        }
        if (!export_args->from.empty()) {
            if (export_args->all) {
                report_error("export --from: --all reads a file; the central store's rows are "
                             "PostgreSQL's to select");
                outcome.status = exit_error;
                return;
            }
            outcome.status = run_central_records(export_args->from, export_args->origin, filter,
                                                 export_args->format);
            return;
        }
        outcome.status = export_args->all
                             ? run_export_all(export_args->db, filter, export_args->format)
                             : run_records(export_args->db, filter, export_args->format);
    });

    auto record_args = std::make_shared<RecordArgs>();
    record_args->format = "text";
    record_args->consent_ground = "appi_27_1_consent";
    CLI::App* records = audit->add_subcommand(
        "records", "List the third-party provision records (APPI Art. 29) per recipient and "
                   "per person");
    add_source(records, record_args->db, record_args->from, record_args->origin);
    records->add_option("--recipient", record_args->recipient,
                        "Only this recipient (identifier or label)");
    records->add_option("--subject", record_args->subject, "Only this person");
    records->add_option("--since", record_args->since, "From this UTC date or time (inclusive)");
    records->add_option("--until", record_args->until, "Up to this UTC date or time (exclusive)");
    records->add_option("--format", record_args->format, "text, csv or jsonl")
        ->check(CLI::IsMember({"text", "csv", "jsonl"}));
    records->add_option("--consent-ground", record_args->consent_ground,
                        "The ground that means consent");
    records->add_flag("--proofs", record_args->proofs,
                      "With --subject: one JSON document of the person's records, each row with "
                      "its inclusion proof against the latest signed checkpoint (check it with "
                      "verify-proof)");
    records->callback([record_args, source_given, &outcome] {
        if (record_args->proofs && record_args->subject.empty()) {
            report_error("--proofs proves one person's records: give --subject");
            outcome.status = exit_error;
            return;
        }
        RecordFilter filter;
        if (!read_times(record_args->since, record_args->until, filter.since_us, filter.until_us)) {
            outcome.status = exit_error;
            return;
        }
        if (!record_args->recipient.empty()) {
            filter.recipient = record_args->recipient;
        }
        if (!record_args->subject.empty()) {
            filter.subject = record_args->subject;
        }
        filter.consent_ground = record_args->consent_ground;
        if (!source_given("records", record_args->db, record_args->from, record_args->origin)) {
            outcome.status = exit_error;
            return;
        }
        if (!record_args->from.empty()) {
            if (record_args->proofs) {
                report_error("records --from: --proofs reads the host's file, where the tree is");
                outcome.status = exit_error;
                return;
            }
            outcome.status = run_central_records(record_args->from, record_args->origin, filter,
                                                 record_args->format);
            return;
        }
        outcome.status = record_args->proofs
                             ? run_subject_proofs(record_args->db, filter)
                             : run_records(record_args->db, filter, record_args->format);
    });

    auto coverage_args = std::make_shared<RecordArgs>();
    auto coverage_json = std::make_shared<bool>(false);
    CLI::App* coverage = audit->add_subcommand(
        "coverage", "Which rules decided the recorded checks of a period, and which decided none "
                    "(under the policies recorded with the rows)");
    coverage->add_option("DB", coverage_args->db, "The audit store file")->required();
    coverage->add_option("--since", coverage_args->since, "From this UTC date or time (inclusive)");
    coverage->add_option("--until", coverage_args->until,
                         "Up to this UTC date or time (exclusive)");
    coverage->add_flag("--json", *coverage_json, "Print one JSON object");
    coverage->callback([coverage_args, coverage_json, &outcome] {
        RecordFilter period;
        if (!read_times(coverage_args->since, coverage_args->until, period.since_us,
                        period.until_us)) {
            outcome.status = exit_error;
            return;
        }
        outcome.status = run_coverage(coverage_args->db, period, *coverage_json);
    });

    auto report_args = std::make_shared<ReportArgs>();
    CLI::App* report = audit->add_subcommand(
        "report", "Write the period at a glance as one self-contained HTML page: the "
                  "verification, the figures, charts, the policies in force and the callers "
                  "(exit 1 when the log does not verify)");
    add_source(report, report_args->db, report_args->from, report_args->origin);
    report->add_option("--since", report_args->since, "From this UTC date or time (inclusive)");
    report->add_option("--until", report_args->until, "Up to this UTC date or time (exclusive)");
    report->add_option("-o,--output", report_args->output, "The HTML file to write ('-': stdout)")
        ->required();
    report->add_option("--key", report_args->keys,
                       "The log's verifier key, or a file holding it: every stored checkpoint "
                       "must be signed by it (without it, signatures are not checked); with "
                       "--from, once per host's key");
    report->add_option("--checkpoint", report_args->checkpoint,
                       "Checkpoints kept outside the store, as verify takes them");
    report->add_option("--consent-ground", report_args->consent_ground,
                       "The ground that means consent (as records takes it)");
    report->add_option("--threads", report_args->threads,
                       "Parts read side by side (0: one per core)");
    report->callback([report_args, source_given, &outcome] {
        if (!source_given("report", report_args->db, report_args->from, report_args->origin)) {
            outcome.status = exit_error;
            return;
        }
        outcome.status = run_report(*report_args);
    });

    register_key_commands(*audit, outcome);
    register_proof_commands(*audit, outcome);
    register_ship_commands(*audit, outcome);
}

} // namespace flowgate::cli
