// Comparing two policies over their joint request space; see policy_diff.hpp. The walk
// decides one request per class under each policy; only classes whose two decisions
// differ cost more than a comparison of identifiers.
#include "policy_diff.hpp"

#include "names.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <bit>
#include <iterator>
#include <map>
#include <tuple>

namespace flowgate::dsl {

namespace json = boost::json;

std::string_view to_string(Significance significance) {
    switch (significance) {
    case Significance::sensitive_to_third_party:
        return "sensitive_to_third_party";
    case Significance::sensitive_allowed:
        return "sensitive_allowed";
    case Significance::allowed:
        return "allowed";
    case Significance::denied:
        return "denied";
    case Significance::allow_changed:
        return "allow_changed";
    case Significance::deny_changed:
        return "deny_changed";
    }
    return "";
}

bool DiffOutcome::same_as(const DiffOutcome& other) const {
    return allowed == other.allowed && rule == other.rule && legal_basis == other.legal_basis &&
           obligations == other.obligations;
}

std::uint64_t ContextSet::size() const {
    return static_cast<std::uint64_t>(std::popcount(consent)) *
           static_cast<unsigned>(std::popcount(objection)) * grounds.size();
}

namespace {

std::string_view rule_id(const Decision& decision) {
    return decision.rule == nullptr ? std::string_view() : std::string_view(decision.rule->id);
}

std::string_view basis_id(const Decision& decision) {
    return decision.legal_basis == nullptr ? std::string_view()
                                           : std::string_view(decision.legal_basis->id);
}

// The obligations' identifiers, sorted: their order carries no meaning.
boost::container::small_vector<std::string_view, 8> obligation_ids(const Decision& decision) {
    boost::container::small_vector<std::string_view, 8> ids;
    for (const Obligation* obligation : decision.obligations) {
        ids.push_back(obligation->id);
    }
    std::sort(ids.begin(), ids.end());
    return ids;
}

// Decision, deciding rule, legal basis and obligations: what the diff compares.
bool same_decision(const Decision& a, const Decision& b) {
    return a.allowed == b.allowed && rule_id(a) == rule_id(b) && basis_id(a) == basis_id(b) &&
           obligation_ids(a) == obligation_ids(b);
}

DiffOutcome outcome_of(const CompiledPolicy& policy, const Decision& decision) {
    DiffOutcome out;
    out.allowed = decision.allowed;
    if (decision.rule != nullptr) {
        out.rule = decision.rule->id;
        out.rule_source = policy.rule_source(*decision.rule);
    }
    if (!basis_id(decision).empty()) {
        out.legal_basis = Named{decision.legal_basis->id, decision.legal_basis->label};
    }
    for (const Obligation* obligation : decision.obligations) {
        out.obligations.push_back(Named{obligation->id, obligation->label});
    }
    std::sort(out.obligations.begin(), out.obligations.end(),
              [](const Named& a, const Named& b) { return a.id < b.id; });
    out.reason = std::string(decision.reason());
    return out;
}

std::string outcome_key(const DiffOutcome& outcome) {
    std::string key = outcome.allowed ? "allow|" : "deny|";
    key += outcome.rule + "|";
    key += outcome.legal_basis ? outcome.legal_basis->id : "";
    for (const Named& obligation : outcome.obligations) {
        key += "|" + obligation.id;
    }
    return key;
}

bool sensitive(Sensitivity sensitivity) {
    return sensitivity == Sensitivity::special_care || sensitivity == Sensitivity::specific;
}

template <typename T> const T* item(const std::vector<T>& items, Id id) {
    return id == no_id ? nullptr : &items[id];
}

// Names looked up in the new policy first, then in the old.
class Vocabulary {
public:
    Vocabulary(const CompiledPolicy& before, const CompiledPolicy& after)
        : m_before(before), m_after(after) {}

    // What `find` finds in the new policy, else in the old (null: in neither).
    template <typename Find> auto first(Find find) const {
        auto found = find(m_after);
        return found != nullptr ? found : find(m_before);
    }

    Named purpose(std::string_view id) const {
        const Purpose* found = first(
            [&](const CompiledPolicy& p) { return item(p.model().purposes, p.find_purpose(id)); });
        return {std::string(id), found == nullptr ? "" : found->label};
    }
    const Activity* activity(std::string_view purpose, std::string_view id) const {
        return first([&](const CompiledPolicy& p) {
            Id in = p.find_purpose(purpose);
            return item(p.model().activities, in == no_id ? no_id : p.find_activity(in, id));
        });
    }
    const Party* party(std::string_view id) const {
        return first(
            [&](const CompiledPolicy& p) { return item(p.model().parties, p.find_party(id)); });
    }
    const Category* category(std::string_view id) const {
        return first([&](const CompiledPolicy& p) {
            return item(p.model().categories, p.find_category(id));
        });
    }

    // Declaration order: the new policy's, then the old policy's names it lacks.
    std::size_t party_order(std::string_view id) const {
        Id p = m_after.find_party(id);
        return p != no_id ? p : m_after.model().parties.size() + m_before.find_party(id);
    }
    std::size_t category_order(std::string_view id) const {
        Id c = m_after.find_category(id);
        return c != no_id ? c : m_after.model().categories.size() + m_before.find_category(id);
    }

private:
    const CompiledPolicy& m_before;
    const CompiledPolicy& m_after;
};

Significance significance_of(const DiffOutcome& before, const DiffOutcome& after,
                             const Decision& decided, const Party* recipient,
                             const Category* category) {
    if (!before.allowed && after.allowed) {
        bool care = category != nullptr && sensitive(category->sensitivity);
        bool third_party =
            (recipient != nullptr && recipient->role == Role::third_party) ||
            (decided.activity != nullptr && decided.activity->kind == FlowKind::provide);
        if (care && third_party) {
            return Significance::sensitive_to_third_party;
        }
        return care ? Significance::sensitive_allowed : Significance::allowed;
    }
    if (before.allowed && !after.allowed) {
        return Significance::denied;
    }
    return after.allowed ? Significance::allow_changed : Significance::deny_changed;
}

// Merges a flow's contexts into few products: the grounds of equal consent and
// objection values, then consent values, then objection values of otherwise equal sets.
void merge_contexts(std::vector<ContextSet>& contexts) {
    auto merge = [&contexts](auto same, auto join) {
        std::vector<ContextSet> merged;
        for (ContextSet& set : contexts) {
            auto found = std::find_if(merged.begin(), merged.end(),
                                      [&](const ContextSet& m) { return same(m, set); });
            if (found == merged.end()) {
                merged.push_back(std::move(set));
            } else {
                join(*found, set);
            }
        }
        contexts = std::move(merged);
    };
    merge([](const ContextSet& a,
             const ContextSet& b) { return a.consent == b.consent && a.objection == b.objection; },
          [](ContextSet& into, const ContextSet& from) {
              into.grounds.insert(into.grounds.end(), from.grounds.begin(), from.grounds.end());
          });
    for (ContextSet& set : contexts) {
        std::sort(set.grounds.begin(), set.grounds.end());
    }
    merge([](const ContextSet& a,
             const ContextSet& b) { return a.objection == b.objection && a.grounds == b.grounds; },
          [](ContextSet& into, const ContextSet& from) { into.consent |= from.consent; });
    merge([](const ContextSet& a,
             const ContextSet& b) { return a.consent == b.consent && a.grounds == b.grounds; },
          [](ContextSet& into, const ContextSet& from) { into.objection |= from.objection; });
}

// A purpose's activities of one direction, in the order a request naming none tries them.
std::vector<std::string> tried_order(const CompiledPolicy& policy, Id purpose,
                                     Direction direction) {
    std::vector<std::string> order;
    const CheckedPolicy& model = policy.model();
    for (Id a : model.purposes[purpose].activities) {
        if ((model.activities[a].kind == FlowKind::receive) == (direction == Direction::receive)) {
            order.push_back(model.activities[a].id);
        }
    }
    return order;
}

std::vector<OrderChange> order_changes(const CompiledPolicy& before, const CompiledPolicy& after,
                                       const Vocabulary& names) {
    std::vector<OrderChange> changes;
    for (Id p = 0; p < before.model().purposes.size(); ++p) {
        const Purpose& purpose = before.model().purposes[p];
        Id q = after.find_purpose(purpose.id);
        if (q == no_id || after.model().purposes[q].id != purpose.id) {
            continue; // a purpose only one policy has: all its requests are compared
        }
        for (Direction direction : {Direction::send, Direction::receive}) {
            std::vector<std::string> old_order = tried_order(before, p, direction);
            std::vector<std::string> new_order = tried_order(after, q, direction);
            if (old_order != new_order) {
                changes.push_back(OrderChange{names.purpose(purpose.id), direction,
                                              std::move(old_order), std::move(new_order)});
            }
        }
    }
    return changes;
}

// A label that only folds alike (full-width for half-width, white space) is one a request
// by the old label still resolves with: not a change.
template <typename Items>
void relabelled(std::string_view kind, const Items& before, const Items& after,
                std::vector<LabelChange>& out, std::string_view prefix = {}) {
    for (const auto& old_item : before) {
        for (const auto& new_item : after) {
            if (old_item.id == new_item.id &&
                fold_name(old_item.label) != fold_name(new_item.label)) {
                out.push_back(LabelChange{std::string(kind), std::string(prefix) + old_item.id,
                                          old_item.label, new_item.label});
            }
        }
    }
}

std::vector<LabelChange> label_changes(const CheckedPolicy& before, const CheckedPolicy& after) {
    std::vector<LabelChange> changes;
    relabelled("purpose", before.purposes, after.purposes, changes);
    for (const Purpose& old_purpose : before.purposes) {
        for (const Purpose& new_purpose : after.purposes) {
            if (old_purpose.id != new_purpose.id) {
                continue;
            }
            std::vector<Activity> old_activities;
            std::vector<Activity> new_activities;
            for (Id a : old_purpose.activities) {
                old_activities.push_back(before.activities[a]);
            }
            for (Id a : new_purpose.activities) {
                new_activities.push_back(after.activities[a]);
            }
            relabelled("activity", old_activities, new_activities, changes, old_purpose.id + "/");
        }
    }
    relabelled("party", before.parties, after.parties, changes);
    relabelled("category", before.categories, after.categories, changes);
    relabelled("ground", before.grounds, after.grounds, changes);
    return changes;
}

json::value named_json(const Named& named) {
    return json::object{{"id", named.id}, {"label", named.label}};
}

json::object outcome_json(const DiffOutcome& outcome) {
    json::array obligations;
    for (const Named& obligation : outcome.obligations) {
        obligations.push_back(named_json(obligation));
    }
    return json::object{
        {"decision", outcome.allowed ? "allow" : "deny"},
        {"rule", outcome.rule.empty() ? json::value(nullptr) : json::value(outcome.rule)},
        {"rule_source", outcome.rule_source},
        {"legal_basis",
         outcome.legal_basis ? named_json(*outcome.legal_basis) : json::value(nullptr)},
        {"obligations", std::move(obligations)},
        {"reason", outcome.reason},
    };
}

json::array values_json(std::uint8_t values) {
    json::array out;
    if ((values & context_false) != 0) {
        out.emplace_back(false);
    }
    if ((values & context_true) != 0) {
        out.emplace_back(true);
    }
    return out;
}

std::string_view direction_word(Direction direction) {
    return direction == Direction::receive ? "receive" : "send";
}

} // namespace

std::string context_text(const ContextSet& contexts,
                         const std::vector<std::string>& ground_choices) {
    std::string text;
    auto add = [&text](std::string_view part) {
        text += (text.empty() ? "" : ", ") + std::string(part);
    };
    auto listed = [](const std::vector<std::string>& grounds, std::string_view last) {
        std::string out;
        for (std::size_t i = 0; i < grounds.size(); ++i) {
            if (i != 0) {
                out += i + 1 == grounds.size() ? std::string(last) : ", ";
            }
            out += grounds[i].empty() ? "none" : grounds[i];
        }
        return out;
    };
    if (contexts.consent != context_any) {
        add(contexts.consent == context_true ? "consent" : "no consent");
    }
    if (contexts.objection != context_any) {
        add(contexts.objection == context_true ? "objection" : "no objection");
    }
    if (contexts.grounds.size() < ground_choices.size()) {
        std::vector<std::string> others;
        std::set_difference(ground_choices.begin(), ground_choices.end(), contexts.grounds.begin(),
                            contexts.grounds.end(), std::back_inserter(others));
        add(others.size() < contexts.grounds.size()
                ? "legal_basis other than " + listed(others, " and ")
                : "legal_basis " + listed(contexts.grounds, " or "));
    }
    return text.empty() ? "any context" : text;
}

PolicyDiff diff_policies(const CompiledPolicy& before, const CompiledPolicy& after) {
    PolicyDiff diff;
    diff.before_hash = before.hash();
    diff.after_hash = after.hash();
    Vocabulary names(before, after);

    struct GroupKey {
        Significance significance;
        std::string purpose, activity;
        bool named_activity;
        Direction direction;
        std::string before, after;
        auto tie() const {
            return std::tie(significance, purpose, activity, named_activity, direction, before,
                            after);
        }
        bool operator<(const GroupKey& other) const { return tie() < other.tie(); }
    };
    std::map<GroupKey, std::size_t> group_index;
    std::vector<std::map<std::pair<std::string, std::string>, ChangedFlow>> flows;

    const CompiledPolicy* pair[] = {&before, &after};
    diff.space = walk_request_space(pair, [&](const RequestClass& request,
                                              std::span<const Decision> decisions) {
        if (same_decision(decisions[0], decisions[1])) {
            return;
        }
        DiffOutcome old_outcome = outcome_of(before, decisions[0]);
        DiffOutcome new_outcome = outcome_of(after, decisions[1]);
        ContextSet contexts{request.consent, request.objection, {}};
        for (std::string_view ground : request.grounds) {
            contexts.grounds.emplace_back(ground);
        }
        for (std::string_view recipient_id : request.recipients) {
            const Party* recipient = names.party(recipient_id);
            for (std::string_view category_id : request.categories) {
                const Category* category = names.category(category_id);
                GroupKey key{
                    significance_of(old_outcome, new_outcome, decisions[1], recipient, category),
                    std::string(request.purpose),
                    std::string(request.activity.value_or("")),
                    request.activity.has_value(),
                    request.direction,
                    outcome_key(old_outcome),
                    outcome_key(new_outcome)};
                auto [it, added] = group_index.emplace(key, diff.groups.size());
                if (added) {
                    ChangeGroup group;
                    group.significance = key.significance;
                    group.purpose = names.purpose(request.purpose);
                    if (request.activity) {
                        const Activity* activity =
                            names.activity(request.purpose, *request.activity);
                        group.activity = Named{std::string(*request.activity),
                                               activity == nullptr ? "" : activity->label};
                    }
                    group.direction = request.direction;
                    group.before = old_outcome;
                    group.after = new_outcome;
                    diff.groups.push_back(std::move(group));
                    flows.emplace_back();
                }
                auto& flow =
                    flows[it->second][{std::string(recipient_id), std::string(category_id)}];
                if (flow.contexts.empty()) {
                    flow.recipient = Named{std::string(recipient_id),
                                           recipient == nullptr ? "" : recipient->label};
                    flow.category =
                        Named{std::string(category_id), category == nullptr ? "" : category->label};
                    flow.sensitivity =
                        category == nullptr ? "" : std::string(to_string(category->sensitivity));
                }
                flow.contexts.push_back(contexts);
                flow.requests += contexts.size();
                diff.groups[it->second].requests += contexts.size();
                diff.changed_requests += contexts.size();
            }
        }
    });
    diff.ground_choices.emplace_back();
    for (const CompiledPolicy* policy : pair) {
        for (const Ground& ground : policy->model().grounds) {
            diff.ground_choices.push_back(ground.id);
        }
    }
    std::sort(diff.ground_choices.begin(), diff.ground_choices.end());
    diff.ground_choices.erase(std::unique(diff.ground_choices.begin(), diff.ground_choices.end()),
                              diff.ground_choices.end());

    for (std::size_t g = 0; g < diff.groups.size(); ++g) {
        for (auto& [key, flow] : flows[g]) {
            merge_contexts(flow.contexts);
            diff.groups[g].flows.push_back(std::move(flow));
        }
        std::sort(diff.groups[g].flows.begin(), diff.groups[g].flows.end(),
                  [&](const ChangedFlow& a, const ChangedFlow& b) {
                      return std::pair(names.party_order(a.recipient.id),
                                       names.category_order(a.category.id)) <
                             std::pair(names.party_order(b.recipient.id),
                                       names.category_order(b.category.id));
                  });
    }
    // Most significant first; within a significance, in the walk's order (purpose,
    // activity, direction), which is the order the groups were found in.
    std::stable_sort(
        diff.groups.begin(), diff.groups.end(),
        [](const ChangeGroup& a, const ChangeGroup& b) { return a.significance < b.significance; });
    diff.order_changes = order_changes(before, after, names);
    diff.label_changes = label_changes(before.model(), after.model());
    return diff;
}

json::object diff_to_json(const PolicyDiff& diff) {
    json::array groups;
    for (const ChangeGroup& group : diff.groups) {
        json::array flows;
        for (const ChangedFlow& flow : group.flows) {
            json::array contexts;
            for (const ContextSet& set : flow.contexts) {
                json::array grounds;
                for (const std::string& ground : set.grounds) {
                    grounds.push_back(ground.empty() ? json::value(nullptr) : json::value(ground));
                }
                contexts.push_back(json::object{{"consent", values_json(set.consent)},
                                                {"objection", values_json(set.objection)},
                                                {"legal_basis", std::move(grounds)},
                                                {"requests", set.size()}});
            }
            flows.push_back(json::object{{"recipient", named_json(flow.recipient)},
                                         {"category", named_json(flow.category)},
                                         {"sensitivity", flow.sensitivity},
                                         {"requests", flow.requests},
                                         {"contexts", std::move(contexts)}});
        }
        groups.push_back(json::object{
            {"significance", to_string(group.significance)},
            {"purpose", named_json(group.purpose)},
            {"activity", group.activity ? named_json(*group.activity) : json::value(nullptr)},
            {"direction", direction_word(group.direction)},
            {"requests", group.requests},
            {"before", outcome_json(group.before)},
            {"after", outcome_json(group.after)},
            {"flows", std::move(flows)},
        });
    }
    json::array orders;
    for (const OrderChange& change : diff.order_changes) {
        json::array before(change.before.begin(), change.before.end());
        json::array after(change.after.begin(), change.after.end());
        orders.push_back(json::object{{"purpose", named_json(change.purpose)},
                                      {"direction", direction_word(change.direction)},
                                      {"before", std::move(before)},
                                      {"after", std::move(after)}});
    }
    json::array labels;
    for (const LabelChange& change : diff.label_changes) {
        labels.push_back(json::object{{"kind", change.kind},
                                      {"id", change.id},
                                      {"before", change.before},
                                      {"after", change.after}});
    }
    return json::object{{"before", diff.before_hash},
                        {"after", diff.after_hash},
                        {"requests", diff.space.requests},
                        {"classes", diff.space.classes},
                        {"changed_requests", diff.changed_requests},
                        {"groups", std::move(groups)},
                        {"order_changes", std::move(orders)},
                        {"label_changes", std::move(labels)}};
}

} // namespace flowgate::dsl
