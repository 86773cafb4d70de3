// Which rules decided something and which never did: of the policy's own test cases
// (`flowgate policy test --coverage`) or of the decisions an audit store recorded in a
// period (`flowgate audit coverage`). A rule is exercised when it is a decision's
// deciding rule: the permit of an allow, the forbid or the unmet permit of a deny.
#pragma once

#include "dsl/compiler.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace flowgate::cli {

struct RuleUse {
    std::string id;
    std::string effect; // permit or forbid
    std::string source; // "policies/kenpo.policy:118 (table row 3, case j)"
    std::uint64_t allows = 0;
    std::uint64_t denies = 0;
};

class RuleCoverage {
public:
    // Lists `policy`'s rules, in its order, that are not listed yet (a later policy's
    // rules after an earlier one's: a store's period may span several policies).
    void add_rules(const dsl::CompiledPolicy& policy);
    // One decision, by its deciding rule's identifier ("" none); a rule no listed policy
    // has is listed after the others.
    void count(std::string_view rule, bool allowed);

    const std::vector<RuleUse>& rules() const { return m_rules; }
    std::uint64_t decisions() const { return m_decisions; }
    std::uint64_t without_rule() const { return m_without_rule; }

private:
    std::vector<RuleUse> m_rules;
    std::unordered_map<std::string, std::size_t> m_index;
    std::uint64_t m_decisions = 0;
    std::uint64_t m_without_rule = 0;
};

// "coverage: 40 of 54 rules decided a test case", the rules that did (with counts), then
// those that never did, each with where it stands. `unit` names what was counted.
void print_coverage(std::ostream& out, const RuleCoverage& coverage, std::string_view unit);

// {"decisions","without_rule","rules":[{"id","effect","source","allows","denies"}],
// "exercised","never_decided":[ids]}.
boost::json::object coverage_to_json(const RuleCoverage& coverage);

} // namespace flowgate::cli
