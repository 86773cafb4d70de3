// The checker turns parsed policy files into one resolved model: every name bound to a
// dense integer id, every value (sensitivity, role, kind) to an enum, every rule's
// clauses to matchers the compiler can index. It reports every error of a policy in
// one run, so an admin fixes a bad policy in one pass instead of one error at a time.
#pragma once

#include "ast.hpp"
#include "diagnostic.hpp"
#include "source.hpp"
#include "vocabulary.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace flowgate::dsl {

using Id = std::uint32_t;
inline constexpr Id no_id = 0xFFFFFFFFu;

// `aliases` are the labels `alias` declarations add, in declaration order; a request
// may give any of them in place of the label.
struct Category {
    std::string id;
    std::string label;
    Sensitivity sensitivity = Sensitivity::ordinary;
    std::vector<std::string> aliases;
};

// A party or a class of parties; a class lists its members (party ids).
struct Party {
    std::string id;
    std::string label;
    Role role = Role::internal;
    bool is_class = false;
    std::vector<Id> members;
    std::vector<std::string> aliases;
};

struct Ground {
    std::string id;
    std::string label;
    std::vector<std::string> aliases;
};

struct Obligation {
    std::string id;
    std::string label;
};

// Activity ids are dense over the whole policy; `purpose` says whose activity it is.
struct Activity {
    std::string id;
    std::string label;
    FlowKind kind = FlowKind::internal;
    Id purpose = no_id;
    std::vector<Id> recipients; // parties or classes, as written
    std::vector<Id> categories;
};

struct Purpose {
    std::string id;
    std::string label;
    std::vector<Id> activities; // in declaration order
    std::vector<std::string> aliases;
};

// One match clause, resolved. A request value matches when it is one of `ids` or its
// attribute (role, sensitivity or kind, as a bit) is in `attributes` — inverted when
// `negated`. An absent clause matches everything. `no_id` (a request without an
// activity) is never among `ids`, so it matches only absent or negated clauses.
struct Matcher {
    bool present = false;
    bool negated = false;
    std::vector<Id> ids; // sorted; for recipients, classes are expanded to their members
    std::uint32_t attributes = 0;

    bool matches(Id value, std::uint32_t attribute_bit) const;
};

// A condition on the request's context as a small expression tree stored flat;
// `nodes.back()` is the root, and an empty condition is always true.
struct ConditionNode {
    enum class Op : std::uint8_t {
        consent,
        objection,
        legal_basis,
        legal_basis_in,
        negate,
        all,
        any
    };
    Op op = Op::consent;
    std::vector<std::uint32_t> operands; // node indices, for negate/all/any
    std::vector<Id> grounds;             // for legal_basis_in
};

struct Condition {
    std::vector<ConditionNode> nodes;
    std::string text; // as a reader would write it, for "requires ..." reasons
};

struct Rule {
    Id index = 0; // declaration order over the whole policy
    ast::Effect effect = ast::Effect::permit;
    std::string id;
    std::string file;
    std::uint32_t line = 0;
    Matcher purpose;
    Matcher activity;
    Matcher recipient;
    Matcher data;
    Matcher kind;
    Condition condition;
    Id basis = no_id;
    std::vector<Id> obligations;
    std::optional<std::uint32_t> source_row;
    std::string source_case;
    std::string because;
    // What a decision by this rule says: `because`, or "permitted/forbidden by rule 'id'".
    std::string reason;
};

struct CheckedPolicy {
    std::vector<Category> categories;
    std::vector<Party> parties;
    std::vector<Ground> grounds;
    std::vector<Obligation> obligations;
    std::vector<Purpose> purposes;
    std::vector<Activity> activities;
    std::vector<Rule> rules; // in declaration order
};

// Either the resolved model or every diagnostic, sorted; never both.
using CheckResult = std::variant<CheckedPolicy, Diagnostics>;

// `files[i]` is the parse of `sources.file(i)`. With `declarations_may_be_missing` (the
// files had syntax errors, so some declarations were dropped), unknown names are not
// reported, since they may be declared in what was dropped; every other error is, so
// one run shows the syntax and the semantic errors together.
CheckResult check(const SourceSet& sources, const std::vector<ast::File>& files,
                  bool declarations_may_be_missing = false);

} // namespace flowgate::dsl
