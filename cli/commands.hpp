// The `flowgate` command line: each group of subcommands registers itself on the
// CLI11 app and sets the exit status through the shared ExitStatus.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

namespace flowgate::dsl {
class CompiledPolicy;
}

namespace flowgate::cli {

// Exit statuses a shell script can gate a transfer on.
enum ExitStatus : int {
    exit_allow = 0, // also: success of commands that decide nothing
    exit_deny = 1,  // a deny, a failed check, a failed verification
    exit_error = 2, // usage errors, an unreachable daemon, unreadable files
};

struct Outcome {
    int status = exit_allow;
};

void register_policy_commands(CLI::App& app, Outcome& outcome);
// diff and lint, under `policy`.
void register_policy_review_commands(CLI::App& policy, Outcome& outcome);

// Loads a policy file or directory, printing its diagnostics on stderr; null when it
// has errors.
std::shared_ptr<const dsl::CompiledPolicy> load_policy_or_report(const std::string& path);
void register_daemon_commands(CLI::App& app, Outcome& outcome);
void register_audit_commands(CLI::App& app, Outcome& outcome);
// keygen and verifier-key, under `audit`.
void register_key_commands(CLI::App& audit, Outcome& outcome);
// prove, consistency and verify-proof, under `audit`.
void register_proof_commands(CLI::App& audit, Outcome& outcome);

// The commands of the central store (libpq's) run in a second program, flowgate-central
// beside flowgate, which is flowgate with them (cli/central_commands.cpp): libpq and what
// it loads (Kerberos, LDAP, TLS) would otherwise triple every flowgate command's start,
// which `audit prove` and `verify-proof` pay per call. In flowgate, both below hand the
// command line as it was given to flowgate-central (cli/central_exec.cpp).
//
// ship, under `audit`.
inline constexpr const char* ship_description =
    "Copy the store's log, its tree and its signed checkpoints into PostgreSQL under its "
    "origin, from where the central copy ends (exit 1 on a gap, a row that differs or a "
    "checkpoint that does not verify)";
void register_ship_commands(CLI::App& audit, Outcome& outcome);
// `audit verify --from URI --origin NAME`: one host's log in the central store (its
// verifier key, or a file holding it, optional). The exit status of verify.
int run_central_verify(const std::string& uri, const std::string& origin,
                       const std::string& key_argument);

struct ProvisionRecord;
struct RecordFilter;
// The provision records as `audit records` and `audit export` print them ("text", "csv"
// or "jsonl"); with_origin names each one's host (a column, a field, a word per line).
void print_records(const std::vector<ProvisionRecord>& records, const std::string& format,
                   bool with_origin);
// `audit records|export --from URI [--origin NAME]`: the provision records of one host's
// log in the central store, or of every host's (origin empty), each naming its host.
int run_central_records(const std::string& uri, const std::string& origin,
                        const RecordFilter& filter, const std::string& format);

struct ReplayOptions;
struct ReplayReport;
// Reads the candidate policy of `audit replay --policy` into options (nothing when the
// path is empty); false, with its diagnostics on stderr, when it does not load.
bool load_candidate(const std::string& candidate_path, ReplayOptions& options);
// Prints what `audit replay` found; its exit status (1 when anything differs).
int print_replay(const ReplayReport& report, const ReplayOptions& options, bool as_json);
// `audit replay --from URI [--origin NAME] [--policy CANDIDATE]`: the replay of one
// host's log in the central store, or of every host's, each difference naming its host.
int run_central_replay(const std::string& uri, const std::string& origin,
                       const std::string& candidate_path, bool as_json);

struct AuditReportOptions;
// `audit report --from URI [--origin NAME] [--key VKEY]...`: the page of every host's log
// in the central store, or of one host's; each host verified against the key given that
// signed its checkpoints.
int run_central_report(const std::string& uri, const std::string& origin,
                       const std::vector<std::string>& key_arguments,
                       const AuditReportOptions& options, const std::string& output);

int run(int argc, char** argv);

} // namespace flowgate::cli
