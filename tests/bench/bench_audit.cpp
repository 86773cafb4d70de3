// The auditor's tools on a log of one million decisions: how many rows per second
// `flowgate audit verify` (the chain, the tree and every signed checkpoint: the target
// is 700,000 a second) and `flowgate audit replay` get through, and how long `flowgate
// audit prove` and `flowgate audit verify-proof` take for one row (the target: under
// 10 ms each), timed both as library calls and as the real command, process start
// included. The log is written by the real AuditStore in relaxed durability, signing
// its checkpoints with a key made for it (kept beside it as <db-path>.key), from the
// bundled policy's own test requests (allowed and denied, with a subject per row), so
// its rows look like the daemon's; writing it is not timed. Verify runs twice: in a part
// per hardware thread, as the command does, and on one thread (its speed per core).
// `flowgate audit report` (verify with the key, the period's pass, the page) is timed last,
// as library calls and as the real command (the target: under 10 s for a million rows).
// Run a Release build: bench_audit [rows] [db-path]
#include "audit/proof_document.hpp"
#include "audit/signed_note.hpp"
#include "audit/store.hpp"
#include "audit/verifier.hpp"
#include "cli/audit_report.hpp"
#include "cli/audit_tools.hpp"
#include "cli/proof_commands.hpp"
#include "dsl/evaluator.hpp"
#include "dsl/policy_loader.hpp"
#include "dsl/request_json.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace flowgate;

namespace {

// A check row as flowgated writes it, less the request line and subject.
struct Template {
    json::object request;
    audit::AuditRecord record;
};

std::vector<Template> templates_for(const dsl::CompiledPolicy& policy, const fs::path& tests) {
    std::vector<Template> out;
    for (const auto& entry : fs::directory_iterator(tests)) {
        std::ifstream in(entry.path());
        std::string line;
        while (std::getline(in, line)) {
            boost::system::error_code error;
            json::value test = json::parse(line, error);
            if (error || !test.is_object() || !test.as_object().contains("request")) {
                continue;
            }
            json::object request = test.as_object()["request"].as_object();
            request["op"] = "check";
            auto parsed = dsl::request_from_json(request);
            if (!std::holds_alternative<dsl::Request>(parsed)) {
                continue;
            }
            const dsl::Request& checked = std::get<dsl::Request>(parsed);
            dsl::Decision decision = dsl::evaluate(policy, checked);
            json::object answer = dsl::decision_to_json(decision, nullptr);
            Template t;
            t.request = request;
            audit::AuditRecord& r = t.record;
            r.kind = to_string(audit::AuditKind::check);
            r.uid = 1000;
            r.gid = 1000;
            r.pid = 4242;
            r.service = "kenshin";
            r.decision = to_string(decision.allowed ? audit::AuditDecision::allow
                                                    : audit::AuditDecision::deny);
            r.reason = std::string(decision.reason());
            if (decision.rule != nullptr) {
                r.rule = decision.rule->id;
                r.rule_source = decision.rule->file + ":" + std::to_string(decision.rule->line);
                if (decision.rule->source_row) {
                    r.rule_source += " (table row " + std::to_string(*decision.rule->source_row) +
                                     ", case " + decision.rule->source_case + ")";
                }
            }
            if (decision.legal_basis != nullptr) {
                r.legal_basis = decision.legal_basis->id;
            }
            r.obligations = json::serialize(answer["obligations"]);
            r.policy_hash = policy.hash();
            r.purpose = checked.purpose;
            r.activity = decision.activity != nullptr ? decision.activity->id
                                                      : checked.activity.value_or("");
            r.recipient = checked.recipient;
            r.direction = checked.direction == dsl::Direction::receive ? "receive" : "send";
            json::array data;
            for (const std::string& category : checked.data) {
                data.emplace_back(category);
            }
            r.data = json::serialize(data);
            out.push_back(std::move(t));
        }
    }
    return out;
}

bool write_log(const fs::path& db, const dsl::CompiledPolicy& policy,
               const std::vector<Template>& templates, std::size_t rows,
               const audit::SigningKey& key) {
    audit::AuditOptions options;
    options.durability = audit::AuditDurability::relaxed;
    options.signing_key = std::make_shared<const audit::SigningKey>(key);
    auto store = audit::AuditStore::create(db, options);
    if (!store) {
        std::fprintf(stderr, "cannot create %s: %s\n", db.c_str(), store.error().message.c_str());
        return false;
    }
    audit::PolicyFiles files;
    for (const dsl::PolicyText& text : policy.texts()) {
        files.emplace(text.name, text.text);
    }
    if (!store.value()->store_policy(policy.hash(), files)) {
        return false;
    }
    audit::AuditRecord load;
    load.kind = to_string(audit::AuditKind::load);
    load.policy_hash = policy.hash();
    if (!store.value()->append(std::move(load))) {
        return false;
    }
    std::atomic<std::size_t> committed{0};
    std::atomic<bool> failed{false};
    constexpr std::size_t chunk = 20000;
    for (std::size_t i = 0; i < rows;) {
        const std::size_t end = std::min(rows, i + chunk);
        for (; i < end; ++i) {
            const Template& t = templates[i % templates.size()];
            char subject[16];
            std::snprintf(subject, sizeof subject, "p-%06zu", i % 500000);
            json::object request = t.request;
            request["subject"] = subject;
            request["id"] = i;
            audit::AuditRecord record = t.record;
            record.request = json::serialize(request);
            record.subject = subject;
            record.time_us = 1'700'000'000'000'000 + static_cast<std::int64_t>(i) * 1000;
            store.value()->submit(std::move(record), [&](audit::AuditResult<std::uint64_t> r) {
                if (!r) {
                    failed = true;
                }
                ++committed;
            });
        }
        while (committed.load() < end) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }
    return !failed;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Processor time of the whole process: on a shared machine, the figure that does not
// depend on what else runs.
double cpu_seconds() {
    timespec now{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
    return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

// The key the log is signed with: made, and kept at `path`, with a new log; read back
// from `path` when the log is reused.
std::optional<audit::SigningKey> log_key(const fs::path& path, bool make) {
    if (make) {
        auto key = audit::generate_signing_key("bench.flowgate.example");
        if (!key) {
            return std::nullopt;
        }
        std::ofstream(path) << key.value().private_key_text() << "\n";
        return key.value();
    }
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto key = audit::parse_private_key(text);
    if (!key) {
        return std::nullopt;
    }
    return key.value();
}

// The real command, its standard output to `out`: its exit status and its wall-clock
// time in milliseconds (process start, the dynamic linker and all).
std::pair<int, double> run_command(const std::vector<std::string>& args, const fs::path& out) {
    std::vector<char*> argv;
    for (const std::string& arg : args) {
        argv.push_back(const_cast<char*>(arg.c_str()));
    }
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const auto start = std::chrono::steady_clock::now();
    pid_t pid = 0;
    int status = -1;
    if (posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) == 0) {
        waitpid(pid, &status, 0);
    }
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    posix_spawn_file_actions_destroy(&actions);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, ms};
}

// `flowgate audit prove SEQ DB` as a library call: the store opened, its latest
// checkpoint checked against its tree, the row read and its path, the document formatted.
std::optional<std::string> prove(const fs::path& db, std::uint64_t seq) {
    auto reader = audit::AuditReader::open(db);
    if (!reader) {
        return std::nullopt;
    }
    int status = 0;
    auto document = cli::inclusion_document(*reader.value(), seq, status);
    if (!document) {
        return std::nullopt;
    }
    return audit::format_proof_document(*document);
}

// `flowgate audit verify-proof` as a library call: true when the document is valid.
bool verify_proof(const std::string& text, const audit::VerifierKey& key) {
    auto document = audit::parse_proof_document(text);
    return document && audit::verify_proof_document(document.value(), key);
}

// `flowgate audit verify --key` as a library call, in parts on `threads` threads (0: one
// per hardware thread), timed: the rows checked, none when the log does not verify.
std::optional<std::uint64_t> time_verify(audit::AuditReader& reader, const audit::VerifierKey& key,
                                         unsigned threads) {
    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = cpu_seconds();
    audit::VerifyOptions options;
    options.key = key;
    options.pass.threads = threads;
    auto verified = audit::verify_log(reader, options);
    const double elapsed = seconds_since(start);
    const double cpu = cpu_seconds() - cpu_start;
    if (!verified || verified.value().fault || !verified.value().tree_checked ||
        verified.value().tree_fault) {
        return std::nullopt;
    }
    const audit::VerifyResult& result = verified.value();
    std::printf("verify (%s): %llu rows, %llu tree nodes, %llu signed checkpoints in %.3f s: "
                "%.0f rows/s (%.3f s of processor time)\n",
                threads == 0 ? "a part per hardware thread" : "one thread",
                static_cast<unsigned long long>(result.rows),
                static_cast<unsigned long long>(result.tree_nodes),
                static_cast<unsigned long long>(result.checkpoints), elapsed,
                static_cast<double>(result.rows) / elapsed, cpu);
    return result.rows;
}

struct Spread {
    double median = 0;
    double max = 0;
};

Spread spread_of(std::vector<double> ms) {
    std::sort(ms.begin(), ms.end());
    return {ms[ms.size() / 2], ms.back()};
}

// prove and verify-proof for `count` rows spread over the log, as library calls and as
// the real command: false when one fails.
bool time_proofs(const fs::path& db, std::uint64_t last_seq, const audit::VerifierKey& key,
                 std::size_t count) {
    const fs::path proof_file = db.string() + ".proof.json";
    const fs::path verdict_file = db.string() + ".verdict";
    const std::string verifier = audit::format_verifier_key(key);
    std::vector<double> prove_ms;
    std::vector<double> check_ms;
    std::vector<double> prove_command_ms;
    std::vector<double> check_command_ms;
    for (std::size_t i = 0; i < count; ++i) {
        const std::uint64_t seq = 1 + (last_seq - 1) * i / (count - 1);
        auto start = std::chrono::steady_clock::now();
        auto document = prove(db, seq);
        prove_ms.push_back(seconds_since(start) * 1000);
        if (!document) {
            std::fprintf(stderr, "prove %llu failed\n", static_cast<unsigned long long>(seq));
            return false;
        }
        start = std::chrono::steady_clock::now();
        const bool valid = verify_proof(*document, key);
        check_ms.push_back(seconds_since(start) * 1000);
        if (!valid) {
            std::fprintf(stderr, "the proof of %llu does not verify\n",
                         static_cast<unsigned long long>(seq));
            return false;
        }
        auto [proved, proved_ms] = run_command(
            {FLOWGATE_CLI_PATH, "audit", "prove", std::to_string(seq), db.string()}, proof_file);
        auto [checked, checked_ms] = run_command(
            {FLOWGATE_CLI_PATH, "audit", "verify-proof", proof_file.string(), "--key", verifier},
            verdict_file);
        if (proved != 0 || checked != 0) {
            std::fprintf(stderr, "flowgate audit prove|verify-proof %llu: exit %d, %d\n",
                         static_cast<unsigned long long>(seq), proved, checked);
            return false;
        }
        prove_command_ms.push_back(proved_ms);
        check_command_ms.push_back(checked_ms);
    }
    fs::remove(proof_file);
    fs::remove(verdict_file);
    const Spread prove_call = spread_of(prove_ms);
    const Spread check_call = spread_of(check_ms);
    const Spread prove_command = spread_of(prove_command_ms);
    const Spread check_command = spread_of(check_command_ms);
    std::printf("prove (%zu rows over the log): call median %.2f ms, max %.2f ms; command "
                "median %.2f ms, max %.2f ms\n",
                count, prove_call.median, prove_call.max, prove_command.median, prove_command.max);
    std::printf("verify-proof: call median %.2f ms, max %.2f ms; command median %.2f ms, "
                "max %.2f ms\n",
                check_call.median, check_call.max, check_command.median, check_command.max);
    return true;
}

// `flowgate audit report DB --key VKEY -o FILE` as library calls and as the real command:
// false when either fails.
bool time_report(audit::AuditReader& reader, const fs::path& db, const audit::VerifierKey& key) {
    auto start = std::chrono::steady_clock::now();
    const double cpu_start = cpu_seconds();
    cli::ReportVerification verification;
    audit::VerifyOptions options;
    options.key = key;
    auto verified = audit::verify_log(reader, options);
    if (!verified) {
        return false;
    }
    verification.result = std::move(verified).value();
    verification.key_name = key.name;
    auto period = cli::summarize_period(reader, cli::AuditReportOptions{});
    if (!period || !verification.ok()) {
        std::fprintf(stderr, "report: %s\n",
                     period ? "the log does not verify" : period.error().message.c_str());
        return false;
    }
    const std::string page = cli::audit_report_html(db.string(), verification, period.value());
    const double elapsed = seconds_since(start);
    const double cpu = cpu_seconds() - cpu_start;
    const fs::path out = db.string() + ".report.html";
    auto [status, command_ms] =
        run_command({FLOWGATE_CLI_PATH, "audit", "report", db.string(), "--key",
                     audit::format_verifier_key(key), "-o", out.string()},
                    db.string() + ".report.txt");
    if (status != 0) {
        std::fprintf(stderr, "flowgate audit report: exit %d\n", status);
        return false;
    }
    std::printf("report: %llu rows (%llu decisions, %llu provision records), a page of %zu "
                "bytes, in %.3f s (%.3f s of processor time); the command: %.3f s\n",
                static_cast<unsigned long long>(period.value().rows),
                static_cast<unsigned long long>(period.value().decisions),
                static_cast<unsigned long long>(period.value().provision_records), page.size(),
                elapsed, cpu, command_ms / 1000);
    fs::remove(out);
    fs::remove(db.string() + ".report.txt");
    // The parts read side by side add up to what one pass over the whole log finds.
    cli::AuditReportOptions one_part;
    one_part.pass.threads = 1;
    auto whole = cli::summarize_period(reader, one_part);
    if (!whole || cli::audit_report_html(db.string(), verification, whole.value()) != page) {
        std::fprintf(stderr, "report: one pass and the parts disagree\n");
        return false;
    }
    return true;
}

} // namespace

int main(int argc, char** argv) {
    const std::size_t rows = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
    const fs::path db =
        argc > 2 ? fs::path(argv[2]) : fs::temp_directory_path() / "flowgate-bench-audit.db";
    const fs::path policies = fs::path(FLOWGATE_SOURCE_DIR) / "policies";
    dsl::LoadResult loaded = dsl::load_policy(policies);
    if (!loaded) {
        std::fprintf(stderr, "the bundled policy does not load\n");
        return 2;
    }
    const fs::path key_path = db.string() + ".key";
    const bool make = !fs::exists(db);
    auto key = log_key(key_path, make);
    if (!key) {
        std::fprintf(stderr, "no signing key at %s\n", key_path.c_str());
        return 2;
    }
    if (make) {
        auto templates = templates_for(*loaded.policy, policies / "tests");
        std::printf("writing %zu decisions (%zu distinct requests) to %s\n", rows, templates.size(),
                    db.c_str());
        const auto start = std::chrono::steady_clock::now();
        if (templates.empty() || !write_log(db, *loaded.policy, templates, rows, *key)) {
            std::fprintf(stderr, "cannot write the log\n");
            return 2;
        }
        std::printf("written in %.1f s\n", seconds_since(start));
    } else {
        std::printf("reusing %s\n", db.c_str());
    }

    auto reader = audit::AuditReader::open(db);
    if (!reader) {
        std::fprintf(stderr, "%s\n", reader.error().message.c_str());
        return 2;
    }
    std::uint64_t verified_rows = 0;
    for (const unsigned threads : {0U, 1U}) {
        auto rows_checked = time_verify(*reader.value(), key->verifier(), threads);
        if (!rows_checked) {
            std::fprintf(stderr, "verify failed\n");
            return 1;
        }
        verified_rows = *rows_checked;
    }

    if (!time_proofs(db, verified_rows, key->verifier(), 21)) {
        return 1;
    }

    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = cpu_seconds();
    auto replayed = cli::replay_log(*reader.value(), cli::ReplayOptions{});
    const double elapsed = seconds_since(start);
    const double cpu = cpu_seconds() - cpu_start;
    if (!replayed || !replayed.value().differences.empty()) {
        std::fprintf(stderr, "replay failed or did not reproduce\n");
        return 1;
    }
    const auto decisions = replayed.value().decisions;
    std::printf("replay: %llu decisions in %.3f s: %.0f decisions/s (%.3f s of processor time)\n",
                static_cast<unsigned long long>(decisions), elapsed,
                static_cast<double>(decisions) / elapsed, cpu);
    return time_report(*reader.value(), db, key->verifier()) ? 0 : 1;
}
