// `flowgate policy diff|lint`: what an admin reviews before a reload. diff prints what
// dsl::diff_policies finds (every request whose decision, rule, basis or obligations
// change), lint what dsl::lint_policy finds; both exit 0 when there is nothing to say,
// 1 when there is, 2 when a policy does not load.
#include "cli/commands.hpp"
#include "dsl/policy_diff.hpp"
#include "dsl/policy_lint.hpp"
#include "dsl/policy_loader.hpp"

#include <boost/json.hpp>

#include <iostream>
#include <memory>

namespace flowgate::cli {
namespace json = boost::json;

namespace {

std::string_view heading(dsl::Significance significance) {
    switch (significance) {
    case dsl::Significance::sensitive_to_third_party:
        return "NEW ALLOW of special-care or specific data to a third party";
    case dsl::Significance::sensitive_allowed:
        return "new allow of special-care or specific data";
    case dsl::Significance::allowed:
        return "new allow";
    case dsl::Significance::denied:
        return "new deny";
    case dsl::Significance::allow_changed:
        return "still allowed, by another rule, basis or obligations";
    case dsl::Significance::deny_changed:
        return "still denied, by another rule";
    }
    return "";
}

std::string named(const dsl::Named& name) {
    return name.label.empty() ? name.id : name.id + " \"" + name.label + "\"";
}

std::string outcome_text(const dsl::DiffOutcome& outcome) {
    std::string text = outcome.allowed ? "allow" : "deny";
    if (outcome.rule.empty()) {
        text += ", no rule applies";
    } else {
        text += " by " + outcome.rule + " (" + outcome.rule_source + ")";
    }
    if (outcome.legal_basis) {
        text += ", basis " + outcome.legal_basis->id;
    }
    if (!outcome.obligations.empty()) {
        text += ", oblige";
        for (std::size_t i = 0; i < outcome.obligations.size(); ++i) {
            text += (i == 0 ? " " : ", ") + outcome.obligations[i].id;
        }
    }
    return text;
}

std::string count(std::uint64_t n, std::string_view noun) {
    return std::to_string(n) + " " + std::string(noun) + (n == 1 ? "" : "s");
}

void print_diff(const dsl::PolicyDiff& diff) {
    std::cout << "policy diff: " << count(diff.changed_requests, "request") << " of "
              << diff.space.requests << " change";
    if (diff.changed_requests == 1) {
        std::cout << "s";
    }
    std::cout << " (" << count(diff.groups.size(), "group") << "; " << diff.space.classes
              << " request classes compared)\n"
              << "  before " << diff.before_hash << "\n  after  " << diff.after_hash << "\n";
    for (const dsl::ChangeGroup& group : diff.groups) {
        std::cout << "\n"
                  << heading(group.significance) << ": " << count(group.requests, "request")
                  << "\n  purpose " << named(group.purpose) << ", "
                  << (group.activity ? "activity " + named(*group.activity)
                                     : std::string("no activity named"))
                  << ", " << (group.direction == dsl::Direction::receive ? "receive" : "send")
                  << "\n  before: " << outcome_text(group.before)
                  << "\n  after:  " << outcome_text(group.after) << "\n";
        for (const dsl::ChangedFlow& flow : group.flows) {
            std::cout << "    " << (group.direction == dsl::Direction::receive ? "from " : "to ")
                      << named(flow.recipient) << ", data " << named(flow.category);
            if (!flow.sensitivity.empty()) {
                std::cout << " (" << flow.sensitivity << ")";
            }
            std::cout << ":";
            for (std::size_t i = 0; i < flow.contexts.size(); ++i) {
                std::cout << (i == 0 ? " " : "; ")
                          << dsl::context_text(flow.contexts[i], diff.ground_choices);
            }
            std::cout << " (" << count(flow.requests, "request") << ")\n";
        }
    }
    for (const dsl::OrderChange& change : diff.order_changes) {
        auto list = [](const std::vector<std::string>& ids) {
            std::string text = "[";
            for (std::size_t i = 0; i < ids.size(); ++i) {
                text += (i == 0 ? "" : ", ") + ids[i];
            }
            return text + "]";
        };
        std::cout << "\nactivities tried in another order: purpose " << named(change.purpose)
                  << ", " << (change.direction == dsl::Direction::receive ? "receive" : "send")
                  << "\n  before " << list(change.before) << "\n  after  " << list(change.after)
                  << "\n  (a request naming no activity and several categories may be decided "
                     "differently)\n";
    }
}

void print_label_changes(const dsl::PolicyDiff& diff) {
    for (const dsl::LabelChange& change : diff.label_changes) {
        std::cout << "\nrelabelled: " << change.kind << " " << change.id << " \"" << change.before
                  << "\" -> \"" << change.after
                  << "\"\n  (a request naming the old label is denied as naming an unknown "
                  << change.kind << ")\n";
    }
}

int run_diff(const std::string& before_path, const std::string& after_path, bool as_json) {
    auto before = load_policy_or_report(before_path);
    auto after = load_policy_or_report(after_path);
    if (!before || !after) {
        return exit_error;
    }
    dsl::PolicyDiff diff = dsl::diff_policies(*before, *after);
    if (as_json) {
        std::cout << json::serialize(dsl::diff_to_json(diff)) << "\n";
    } else {
        print_diff(diff);
        print_label_changes(diff);
    }
    return diff.empty() ? exit_allow : exit_deny;
}

int run_lint(const std::string& path, bool as_json) {
    auto policy = load_policy_or_report(path);
    if (!policy) {
        return exit_error;
    }
    std::vector<dsl::LintFinding> findings = dsl::lint_policy(*policy);
    if (as_json) {
        json::array out;
        for (const dsl::LintFinding& finding : findings) {
            out.push_back(json::object{{"kind", dsl::to_string(finding.kind)},
                                       {"file", finding.diagnostic.file},
                                       {"line", finding.diagnostic.line},
                                       {"column", finding.diagnostic.column},
                                       {"message", finding.diagnostic.message}});
        }
        std::cout << json::serialize(
                         json::object{{"policy", policy->hash()}, {"findings", std::move(out)}})
                  << "\n";
    } else {
        for (const dsl::LintFinding& finding : findings) {
            std::cout << dsl::format(finding.diagnostic);
        }
        std::cout << path << ": " << count(findings.size(), "finding") << "\n";
    }
    return findings.empty() ? exit_allow : exit_deny;
}

} // namespace

void register_policy_review_commands(CLI::App& policy, Outcome& outcome) {
    struct DiffArgs {
        std::string before, after;
        bool json = false;
    };
    auto diff_args = std::make_shared<DiffArgs>();
    CLI::App* diff = policy.add_subcommand(
        "diff", "Every request whose decision, rule, legal basis or obligations differ between "
                "two policies, most significant first (exit 0: none, 1: some)");
    diff->add_option("OLD", diff_args->before, "The policy serving now (file or directory)")
        ->required();
    diff->add_option("NEW", diff_args->after, "The candidate policy (file or directory)")
        ->required();
    diff->add_flag("--json", diff_args->json, "Print one JSON object");
    diff->callback([diff_args, &outcome] {
        outcome.status = run_diff(diff_args->before, diff_args->after, diff_args->json);
    });

    struct LintArgs {
        std::string path;
        bool json = false;
    };
    auto lint_args = std::make_shared<LintArgs>();
    CLI::App* lint = policy.add_subcommand(
        "lint", "Report permits that never allow, activities no permit serves, unused names, "
                "classes without members and labels that fold alike (exit 1 on findings)");
    lint->add_option("PATH", lint_args->path, "A .policy file or a directory of them")->required();
    lint->add_flag("--json", lint_args->json, "Print one JSON object");
    lint->callback(
        [lint_args, &outcome] { outcome.status = run_lint(lint_args->path, lint_args->json); });
}

} // namespace flowgate::cli
