// Counting and printing which rules decided something; see rule_coverage.hpp.
#include "cli/rule_coverage.hpp"

#include <boost/json.hpp>

namespace flowgate::cli {

namespace json = boost::json;

void RuleCoverage::add_rules(const dsl::CompiledPolicy& policy) {
    for (const dsl::Rule& rule : policy.model().rules) {
        if (m_index.contains(rule.id)) {
            continue;
        }
        m_index.emplace(rule.id, m_rules.size());
        m_rules.push_back(RuleUse{rule.id,
                                  rule.effect == dsl::ast::Effect::permit ? "permit" : "forbid",
                                  policy.rule_source(rule)});
    }
}

void RuleCoverage::count(std::string_view rule, bool allowed) {
    ++m_decisions;
    if (rule.empty()) {
        ++m_without_rule;
        return;
    }
    auto [found, added] = m_index.emplace(std::string(rule), m_rules.size());
    if (added) {
        m_rules.push_back(RuleUse{std::string(rule), "rule", "(in no policy listed)"});
    }
    RuleUse& use = m_rules[found->second];
    ++(allowed ? use.allows : use.denies);
}

void print_coverage(std::ostream& out, const RuleCoverage& coverage, std::string_view unit) {
    std::size_t exercised = 0;
    for (const RuleUse& use : coverage.rules()) {
        exercised += use.allows + use.denies > 0 ? 1 : 0;
    }
    out << "coverage: " << exercised << " of " << coverage.rules().size() << " rules decided "
        << coverage.decisions() << " " << unit << (coverage.decisions() == 1 ? "" : "s");
    if (coverage.without_rule() > 0) {
        out << " (" << coverage.without_rule() << " denied with no rule applying)";
    }
    out << "\n";
    if (exercised > 0) {
        out << "exercised:\n";
        for (const RuleUse& use : coverage.rules()) {
            if (use.allows + use.denies > 0) {
                out << "  " << use.effect << " " << use.id << ": " << use.allows << " allow, "
                    << use.denies << " deny  " << use.source << "\n";
            }
        }
    }
    if (exercised < coverage.rules().size()) {
        out << "never decided:\n";
        for (const RuleUse& use : coverage.rules()) {
            if (use.allows + use.denies == 0) {
                out << "  " << use.effect << " " << use.id << "  " << use.source << "\n";
            }
        }
    }
}

json::object coverage_to_json(const RuleCoverage& coverage) {
    json::array rules;
    json::array never;
    std::size_t exercised = 0;
    for (const RuleUse& use : coverage.rules()) {
        rules.push_back(json::object{{"id", use.id},
                                     {"effect", use.effect},
                                     {"source", use.source},
                                     {"allows", use.allows},
                                     {"denies", use.denies}});
        if (use.allows + use.denies == 0) {
            never.emplace_back(use.id);
        } else {
            ++exercised;
        }
    }
    return json::object{{"decisions", coverage.decisions()},
                        {"without_rule", coverage.without_rule()},
                        {"exercised", exercised},
                        {"rules", std::move(rules)},
                        {"never_decided", std::move(never)}};
}

} // namespace flowgate::cli
