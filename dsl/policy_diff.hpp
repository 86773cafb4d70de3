// What a policy change changes: every request of the two policies' joint request space
// (request_space.hpp) whose decision, deciding rule, legal basis or obligations differ
// between them, grouped in the table's terms and ordered by significance. Exact, not
// sampled: it is what evaluating every request under both policies gives. `flowgate
// policy diff` prints it; docs/policy-diff.md describes it.
#pragma once

#include "request_space.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace flowgate::dsl {

// Most significant first: a new allow of special-care or specific data to a third
// party (the recipient's role is third_party, or the deciding activity's kind is
// provide), then other new allows of such data, new allows of ordinary data, new
// denies, allows by another rule, basis or obligations, and denies by another rule.
enum class Significance : std::uint8_t {
    sensitive_to_third_party,
    sensitive_allowed,
    allowed,
    denied,
    allow_changed,
    deny_changed,
};

std::string_view to_string(Significance significance);

// An identifier and the label its policy gives it ("" when neither policy declares it).
struct Named {
    std::string id;
    std::string label;
    bool operator==(const Named&) const = default;
};

// What one policy decides for a class of requests. Two outcomes are the same when
// their decision, rule, legal basis and obligations are.
struct DiffOutcome {
    bool allowed = false;
    std::string rule;        // the deciding rule (a deny's forbid or unmet permit), or ""
    std::string rule_source; // "policies/kenpo.policy:118 (table row 3, case j)"
    std::optional<Named> legal_basis;
    std::vector<Named> obligations; // by identifier
    std::string reason;             // as the decision words it for one of the requests

    bool same_as(const DiffOutcome& other) const;
};

// Contexts of requests, as a product: consent and objection values (context_* bits)
// and legal grounds (an empty identifier: none named).
struct ContextSet {
    std::uint8_t consent = context_any;
    std::uint8_t objection = context_any;
    std::vector<std::string> grounds;
    std::uint64_t size() const;
};

// One recipient and category whose requests change, in the contexts listed.
struct ChangedFlow {
    Named recipient;
    Named category;
    std::string sensitivity; // in the new policy, else the old
    std::vector<ContextSet> contexts;
    std::uint64_t requests = 0;
};

// The requests of one purpose, activity and direction that go from one outcome to
// another, with the same significance.
struct ChangeGroup {
    Significance significance = Significance::deny_changed;
    Named purpose;
    std::optional<Named> activity; // none: requests that name no activity
    Direction direction = Direction::send;
    DiffOutcome before;
    DiffOutcome after;
    std::vector<ChangedFlow> flows; // by recipient, then category
    std::uint64_t requests = 0;
};

// A purpose whose activities of one direction are tried in another order: a request
// naming no activity and several categories may then be decided differently even where
// no single-category request is (docs/policy-diff.md).
struct OrderChange {
    Named purpose;
    Direction direction = Direction::send;
    std::vector<std::string> before;
    std::vector<std::string> after;
};

// A name both policies declare under one identifier but label differently: a request
// naming the old label no longer resolves (it is denied as unknown), one naming the new
// label did not before. The walk names everything by identifier, so these are listed
// apart. `kind` is purpose, activity ("purpose/activity" as `id`), party, category or
// ground.
struct LabelChange {
    std::string kind;
    std::string id;
    std::string before;
    std::string after;
};

struct PolicyDiff {
    std::string before_hash;
    std::string after_hash;
    RequestSpace space; // the joint space walked
    // The values legal_basis takes in it, sorted: "" (none named), then each ground.
    std::vector<std::string> ground_choices;
    std::uint64_t changed_requests = 0; // the sum over the groups
    std::vector<ChangeGroup> groups;    // most significant first
    std::vector<OrderChange> order_changes;
    std::vector<LabelChange> label_changes;

    bool empty() const { return groups.empty() && order_changes.empty() && label_changes.empty(); }
};

PolicyDiff diff_policies(const CompiledPolicy& before, const CompiledPolicy& after);

// {"before","after","requests","classes","changed_requests","groups":[...],
// "order_changes":[...],"label_changes":[...]}; docs/policy-diff.md shows it.
boost::json::object diff_to_json(const PolicyDiff& diff);

// A context set as an admin reads it: "consent, no objection, legal_basis appi_18 or
// none" (or "legal_basis other than appi_27_1_1", when that is shorter); "any context"
// when it is every one. `ground_choices`: PolicyDiff::ground_choices.
std::string context_text(const ContextSet& contexts,
                         const std::vector<std::string>& ground_choices);

} // namespace flowgate::dsl
