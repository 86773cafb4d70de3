// `flowgate policy check|fmt|eval|describe|test|compile-table`: the policy tools. They
// run the same pipeline and the same JSON functions as the daemon, so `eval` prints
// exactly what flowgated answers (less the audit sequence number).
#include "cli/commands.hpp"
#include "cli/rule_coverage.hpp"
#include "dsl/formatter.hpp"
#include "dsl/parser.hpp"
#include "dsl/policy_loader.hpp"
#include "dsl/request_json.hpp"
#include "dsl/table_compiler.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

namespace flowgate::cli {
namespace json = boost::json;
namespace fs = std::filesystem;

std::shared_ptr<const dsl::CompiledPolicy> load_policy_or_report(const std::string& path) {
    dsl::LoadResult result = dsl::load_policy(path);
    if (!result) {
        std::cerr << dsl::format(result.diagnostics);
        std::cerr << result.diagnostics.size()
                  << (result.diagnostics.size() == 1 ? " error" : " errors") << " in " << path
                  << "\n";
    }
    return result.policy;
}

namespace {

// The request's answer exactly as the daemon builds it (less "audit_seq").
json::object answer_request(const dsl::CompiledPolicy& policy, const json::value& request) {
    json::value id = nullptr;
    if (request.is_object()) {
        if (const json::value* given = request.as_object().if_contains("id")) {
            id = *given;
        }
    }
    dsl::RequestParse parsed = dsl::request_from_json(request);
    if (const auto* error = std::get_if<dsl::RequestError>(&parsed)) {
        return json::object{{"id", id},
                            {"error", {{"code", error->code}, {"message", error->message}}}};
    }
    bool explain = false;
    if (const json::value* op = request.as_object().if_contains("op")) {
        explain = op->is_string() && op->as_string() == "explain";
    }
    dsl::Trace trace;
    dsl::Decision decision =
        dsl::evaluate(policy, std::get<dsl::Request>(parsed), explain ? &trace : nullptr);
    return dsl::decision_to_json(decision, id, explain ? &trace : nullptr);
}

int run_fmt(const std::string& path, bool write, bool check_only) {
    std::optional<std::vector<fs::path>> files = dsl::policy_files(path);
    if (!files) {
        std::cerr << path << ": error: cannot read the directory\n";
        return exit_error;
    }
    int status = exit_allow;
    for (const fs::path& file : *files) {
        dsl::Diagnostics unreadable;
        auto text = dsl::read_policy_file(file, unreadable);
        if (!text) {
            std::cerr << dsl::format(unreadable);
            return exit_error;
        }
        dsl::SourceSet sources;
        std::uint32_t index = sources.add(file.string(), *text);
        dsl::ast::File ast;
        dsl::Diagnostics diagnostics;
        if (!dsl::parse_file(sources, index, ast, diagnostics)) {
            std::cerr << dsl::format(diagnostics);
            return exit_error;
        }
        std::string formatted = dsl::format_policy_file(ast, sources.file(index));
        if (check_only) {
            if (formatted != *text) {
                std::cout << file.string() << ": not in canonical form\n";
                status = exit_deny;
            }
        } else if (write) {
            if (formatted != *text) {
                std::ofstream out(file, std::ios::binary | std::ios::trunc);
                out << formatted;
                if (!out) {
                    std::cerr << file.string() << ": error: cannot write the file\n";
                    return exit_error;
                }
            }
        } else {
            std::cout << formatted;
        }
    }
    return status;
}

struct CaseResult {
    bool passed = false;
    std::string message;
    // The decision the case's request got, when it got one: for coverage.
    bool decided = false;
    bool allowed = false;
    std::string rule; // the deciding rule's identifier, "" none

    static CaseResult failure(std::string why) {
        CaseResult result;
        result.message = std::move(why);
        return result;
    }
};

CaseResult run_case(const dsl::CompiledPolicy& policy, const json::object& test) {
    const json::value* request = test.if_contains("request");
    const json::value* expect = test.if_contains("expect");
    if (request == nullptr || !request->is_object() || expect == nullptr || !expect->is_string()) {
        return CaseResult::failure(
            "a case needs \"request\" (an object) and \"expect\" (\"allow\" or "
            "\"deny\")");
    }
    json::object answer = answer_request(policy, *request);
    if (answer.contains("error")) {
        return CaseResult::failure("the request is malformed: " + json::serialize(answer["error"]));
    }
    std::string decision(answer["decision"].as_string());
    std::string reason(answer["reason"].as_string());
    const json::value& got = answer["rule"];
    CaseResult result;
    result.decided = true;
    result.allowed = decision == "allow";
    result.rule = got.is_object() && got.as_object().contains("id")
                      ? std::string(got.as_object().at("id").as_string())
                      : std::string();
    auto failed = [&result](std::string message) {
        result.message = std::move(message);
        return result;
    };
    if (decision != expect->as_string()) {
        return failed("expected " + std::string(expect->as_string()) + ", got " + decision + ": " +
                      reason);
    }
    if (const json::value* rule = test.if_contains("rule"); rule != nullptr && rule->is_string()) {
        std::string got_id = result.rule.empty() ? std::string("(none)") : result.rule;
        if (got_id != rule->as_string()) {
            return failed("expected rule " + std::string(rule->as_string()) + ", got " + got_id);
        }
    }
    if (const json::value* part = test.if_contains("reason_contains");
        part != nullptr && part->is_string()) {
        if (reason.find(part->as_string()) == std::string::npos) {
            return failed("reason \"" + reason + "\" does not contain \"" +
                          std::string(part->as_string()) + "\"");
        }
    }
    result.passed = true;
    return result;
}

int run_policy_tests(const std::string& path, bool verbose, bool coverage) {
    auto policy = load_policy_or_report(path);
    if (!policy) {
        return exit_error;
    }
    fs::path tests_dir = fs::path(path) / "tests";
    std::vector<fs::path> files;
    if (fs::is_directory(tests_dir)) {
        for (const fs::directory_entry& entry : fs::directory_iterator(tests_dir)) {
            if (entry.path().extension() == ".jsonl") {
                files.push_back(entry.path());
            }
        }
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) {
        std::cerr << tests_dir.string() << ": error: no *.jsonl test files\n";
        return exit_error;
    }
    std::size_t passed = 0;
    std::size_t failed = 0;
    RuleCoverage exercised;
    exercised.add_rules(*policy);
    for (const fs::path& file : files) {
        // Read as a policy file is: a FIFO or a device named *.jsonl is an error, not a hang.
        dsl::Diagnostics unreadable;
        std::optional<std::string> text = dsl::read_policy_file(file, unreadable);
        if (!text) {
            std::cerr << dsl::format(unreadable);
            return exit_error;
        }
        std::istringstream in(*text);
        std::string line;
        for (std::uint32_t line_number = 1; std::getline(in, line); ++line_number) {
            if (line.find_first_not_of(" \t\r") == std::string::npos) {
                continue;
            }
            boost::system::error_code error;
            json::value test = json::parse(line, error);
            std::string where = file.string() + ":" + std::to_string(line_number);
            if (error || !test.is_object()) {
                std::cout << where << ": error: not a JSON object\n";
                ++failed;
                continue;
            }
            std::string name = test.as_object().contains("name")
                                   ? std::string(test.as_object().at("name").as_string())
                                   : "(unnamed)";
            CaseResult result = run_case(*policy, test.as_object());
            if (result.decided) {
                exercised.count(result.rule, result.allowed);
            }
            if (result.passed) {
                ++passed;
                if (verbose) {
                    std::cout << where << ": ok: " << name << "\n";
                }
            } else {
                ++failed;
                std::cout << where << ": FAILED: " << name << ": " << result.message << "\n";
            }
        }
    }
    std::cout << passed << " passed, " << failed << " failed\n";
    if (coverage) {
        print_coverage(std::cout, exercised, "test case");
    }
    return failed == 0 ? exit_allow : exit_deny;
}

} // namespace

void register_policy_commands(CLI::App& app, Outcome& outcome) {
    CLI::App* policy = app.add_subcommand("policy", "Check, format, evaluate and test policies");
    policy->require_subcommand(1);

    auto path = std::make_shared<std::string>();
    CLI::App* check =
        policy->add_subcommand("check", "Check a policy file or directory (exit 0 when clean)");
    check->add_option("PATH", *path, "A .policy file or a directory of them")->required();
    check->callback([path, &outcome] {
        auto loaded = load_policy_or_report(*path);
        if (!loaded) {
            outcome.status = exit_deny;
            return;
        }
        std::cout << *path << ": ok, " << loaded->model().rules.size() << " rules, "
                  << loaded->hash() << "\n";
    });

    auto fmt_path = std::make_shared<std::string>();
    auto fmt_write = std::make_shared<bool>(false);
    auto fmt_check = std::make_shared<bool>(false);
    CLI::App* fmt = policy->add_subcommand("fmt", "Print a policy in canonical form");
    fmt->add_option("PATH", *fmt_path, "A .policy file or a directory of them")->required();
    fmt->add_flag("-w,--write", *fmt_write, "Rewrite the files in place");
    fmt->add_flag("--check", *fmt_check,
                  "Only report files that are not in canonical form (exit 1)");
    fmt->callback([=, &outcome] { outcome.status = run_fmt(*fmt_path, *fmt_write, *fmt_check); });

    auto eval_policy = std::make_shared<std::string>();
    auto eval_request = std::make_shared<std::string>();
    CLI::App* eval =
        policy->add_subcommand("eval", "Evaluate one request as the daemon would answer it");
    eval->add_option("--policy", *eval_policy, "The policy file or directory")->required();
    eval->add_option("REQUEST", *eval_request, "The request as JSON (op check or explain)")
        ->required();
    eval->callback([=, &outcome] {
        auto loaded = load_policy_or_report(*eval_policy);
        if (!loaded) {
            outcome.status = exit_error;
            return;
        }
        boost::system::error_code error;
        json::value request = json::parse(*eval_request, error);
        if (error) {
            std::cout << json::serialize(
                             json::object{{"id", nullptr},
                                          {"error",
                                           {{"code", "bad_json"},
                                            {"message", "the request is not valid JSON"}}}})
                      << "\n";
            outcome.status = exit_error;
            return;
        }
        json::object answer = answer_request(*loaded, request);
        std::cout << json::serialize(answer) << "\n";
        if (answer.contains("error")) {
            outcome.status = exit_error;
        } else {
            outcome.status = answer["decision"] == "allow" ? exit_allow : exit_deny;
        }
    });

    auto describe_policy = std::make_shared<std::string>();
    CLI::App* describe = policy->add_subcommand(
        "describe", "Print the policy's vocabulary as the daemon's describe");
    describe->add_option("--policy", *describe_policy, "The policy file or directory")->required();
    describe->callback([=, &outcome] {
        auto loaded = load_policy_or_report(*describe_policy);
        if (!loaded) {
            outcome.status = exit_error;
            return;
        }
        std::cout << json::serialize(dsl::describe_to_json(*loaded)) << "\n";
    });

    auto test_path = std::make_shared<std::string>();
    auto test_verbose = std::make_shared<bool>(false);
    auto test_coverage = std::make_shared<bool>(false);
    CLI::App* test =
        policy->add_subcommand("test", "Run the policy's test cases (PATH/tests/*.jsonl)");
    test->add_option("PATH", *test_path, "The policy directory")->required();
    test->add_flag("-v,--verbose", *test_verbose, "List every case");
    test->add_flag("--coverage", *test_coverage,
                   "Then list the rules that decided a case and those that decided none");
    test->callback([=, &outcome] {
        outcome.status = run_policy_tests(*test_path, *test_verbose, *test_coverage);
    });

    register_policy_review_commands(*policy, outcome);

    auto table_path = std::make_shared<std::string>();
    CLI::App* compile = policy->add_subcommand("compile-table",
                                               "Write the policy text of a structured table (CSV)");
    compile->add_option("TABLE", *table_path, "The table, e.g. policies/kenpo-table.csv")
        ->required();
    compile->callback([=, &outcome] {
        dsl::TableCompileResult result = dsl::compile_table_file(*table_path);
        if (!result.diagnostics.empty()) {
            std::cerr << dsl::format(result.diagnostics);
        }
        if (result.policy_text.empty()) {
            outcome.status = exit_error;
            return;
        }
        std::cout << result.policy_text;
    });
}

} // namespace flowgate::cli
