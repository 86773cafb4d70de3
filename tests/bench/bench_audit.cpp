// The auditor's tools on a log of one million decisions: how many rows per second
// `flowgate audit verify` and `flowgate audit replay` get through (the target is
// 500,000 a second each). The log is written by the real AuditStore in relaxed
// durability from the bundled policy's own test requests (allowed and denied, with a
// subject per row), so its rows look like the daemon's; only verify and replay are
// timed. Run a Release build: bench_audit [rows] [db-path]
#include "audit/store.hpp"
#include "audit/verifier.hpp"
#include "cli/audit_tools.hpp"
#include "dsl/evaluator.hpp"
#include "dsl/policy_loader.hpp"
#include "dsl/request_json.hpp"

#include <boost/json.hpp>

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
               const std::vector<Template>& templates, std::size_t rows) {
    audit::AuditOptions options;
    options.durability = audit::AuditDurability::relaxed;
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
    if (!fs::exists(db)) {
        auto templates = templates_for(*loaded.policy, policies / "tests");
        std::printf("writing %zu decisions (%zu distinct requests) to %s\n", rows, templates.size(),
                    db.c_str());
        const auto start = std::chrono::steady_clock::now();
        if (templates.empty() || !write_log(db, *loaded.policy, templates, rows)) {
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
    auto start = std::chrono::steady_clock::now();
    double cpu_start = cpu_seconds();
    auto verified = audit::verify_log(*reader.value());
    double elapsed = seconds_since(start);
    double cpu = cpu_seconds() - cpu_start;
    if (!verified || verified.value().fault) {
        std::fprintf(stderr, "verify failed\n");
        return 1;
    }
    const auto verified_rows = verified.value().rows;
    std::printf("verify: %llu rows in %.3f s: %.0f rows/s (%.3f s of processor time)\n",
                static_cast<unsigned long long>(verified_rows), elapsed,
                static_cast<double>(verified_rows) / elapsed, cpu);

    start = std::chrono::steady_clock::now();
    cpu_start = cpu_seconds();
    auto replayed = cli::replay_log(*reader.value(), cli::ReplayOptions{});
    elapsed = seconds_since(start);
    cpu = cpu_seconds() - cpu_start;
    if (!replayed || !replayed.value().differences.empty()) {
        std::fprintf(stderr, "replay failed or did not reproduce\n");
        return 1;
    }
    const auto decisions = replayed.value().decisions;
    std::printf("replay: %llu decisions in %.3f s: %.0f decisions/s (%.3f s of processor time)\n",
                static_cast<unsigned long long>(decisions), elapsed,
                static_cast<double>(decisions) / elapsed, cpu);
    return 0;
}
