// What a careful reviewer of a policy that checks clean would still point out: permits
// that never allow anything, activities no permit serves, names declared and never
// used, classes without members. None of these stops a policy from loading (the
// checker's errors do: names that fold alike, which a request could not tell apart, are
// one, dsl/names.hpp); each is a finding at the declaration it concerns. `flowgate
// policy lint` prints them.
#pragma once

#include "compiler.hpp"
#include "diagnostic.hpp"

#include <string_view>
#include <vector>

namespace flowgate::dsl {

enum class LintKind : std::uint8_t {
    permit_never_allows,   // no request of the request space is allowed by it
    activity_unserved,     // no permit's purpose, activity and kind clauses match it
    party_unused,          // no activity, rule or class names it
    category_unused,       // no activity or rule names it
    ground_unused,         // no rule's basis or condition names it
    obligation_unused,     // no rule obliges it
    class_without_members, // a class no `members` declaration fills
};

std::string_view to_string(LintKind kind);

struct LintFinding {
    LintKind kind = LintKind::permit_never_allows;
    Diagnostic diagnostic; // severity warning, at the declaration (or label) concerned
};

// The findings in file, line and column order.
std::vector<LintFinding> lint_policy(const CompiledPolicy& policy);

} // namespace flowgate::dsl
