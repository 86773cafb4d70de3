// Walking the request space of several policies at once; see request_space.hpp and
// docs/policy-diff.md. Per (purpose, activity or none) it finds the rules that could
// match a request of it in any of the policies (their purpose and activity clauses
// match). A request's recipient then matters only if one of those rules names it, and
// otherwise only through its role in each policy; the same holds for a category and its
// sensitivity, for consent and objection (they matter only if a condition of those rules
// tests them) and for a ground (through the `legal_basis in [...]` lists that hold it).
// Requests alike in all of that form one class, and one of them is decided per policy.
#include "request_space.hpp"

#include <algorithm>
#include <bit>
#include <map>
#include <string>
#include <unordered_map>

namespace flowgate::dsl {

std::uint64_t RequestClass::size() const {
    return static_cast<std::uint64_t>(recipients.size()) * categories.size() *
           static_cast<unsigned>(std::popcount(consent)) *
           static_cast<unsigned>(std::popcount(objection)) * grounds.size();
}

namespace {

constexpr std::uint8_t unknown_attribute = 0xFF;

// The union of one kind of name over the policies, by identifier, in first-seen order:
// `in[k][u]` is name u's id in policy k (no_id when k does not declare it), `from[k][id]`
// the union index of policy k's id.
struct NameUnion {
    std::vector<std::string_view> ids;
    std::vector<std::vector<Id>> in;
    std::vector<std::vector<std::uint32_t>> from;

    template <typename Items>
    NameUnion(std::span<const CompiledPolicy* const> policies, Items items)
        : in(policies.size()), from(policies.size()) {
        std::unordered_map<std::string_view, std::uint32_t> index;
        for (std::size_t k = 0; k < policies.size(); ++k) {
            const auto& list = items(policies[k]->model());
            for (Id id = 0; id < list.size(); ++id) {
                auto [it, added] =
                    index.emplace(list[id].id, static_cast<std::uint32_t>(ids.size()));
                if (added) {
                    ids.push_back(list[id].id);
                }
                from[k].push_back(it->second);
            }
        }
        for (std::size_t k = 0; k < policies.size(); ++k) {
            in[k].assign(ids.size(), no_id);
            for (Id id = 0; id < from[k].size(); ++id) {
                in[k][from[k][id]] = id;
            }
        }
    }
};

// The `legal_basis in [...]` lists of the relevant rules, and whether consent and
// objection are tested at all.
struct ContextTests {
    bool consent = false;
    bool objection = false;
    std::vector<std::pair<std::size_t, const std::vector<Id>*>> ground_lists; // (policy, list)
};

class SpaceWalk {
public:
    SpaceWalk(std::span<const CompiledPolicy* const> policies, const RequestClassVisitor& visit)
        : m_policies(policies), m_visit(visit),
          m_purposes(
              policies, [](const CheckedPolicy& m) -> const auto& { return m.purposes; }),
          m_parties(
              policies, [](const CheckedPolicy& m) -> const auto& { return m.parties; }),
          m_categories(
              policies, [](const CheckedPolicy& m) -> const auto& { return m.categories; }),
          m_grounds(
              policies, [](const CheckedPolicy& m) -> const auto& { return m.grounds; }),
          m_decisions(policies.size()) {
        // Each policy's rules by the purposes their purpose clause matches.
        m_rules_by_purpose.resize(policies.size());
        for (std::size_t k = 0; k < policies.size(); ++k) {
            const CheckedPolicy& model = policies[k]->model();
            m_rules_by_purpose[k].resize(model.purposes.size());
            for (const Rule& rule : model.rules) {
                for (Id p = 0; p < model.purposes.size(); ++p) {
                    if (rule.purpose.matches(p, 0)) {
                        m_rules_by_purpose[k][p].push_back(&rule);
                    }
                }
            }
        }
    }

    RequestSpace run() {
        for (std::uint32_t p = 0; p < m_purposes.ids.size(); ++p) {
            walk_purpose(p);
        }
        return m_space;
    }

private:
    void walk_purpose(std::uint32_t purpose) {
        // The activities of the purpose in any policy, by identifier.
        std::vector<std::string_view> activities;
        for (std::size_t k = 0; k < m_policies.size(); ++k) {
            Id p = m_purposes.in[k][purpose];
            if (p == no_id) {
                continue;
            }
            const CheckedPolicy& model = m_policies[k]->model();
            for (Id a : model.purposes[p].activities) {
                if (std::find(activities.begin(), activities.end(), model.activities[a].id) ==
                    activities.end()) {
                    activities.push_back(model.activities[a].id);
                }
            }
        }
        walk_activity(purpose, std::nullopt);
        for (std::string_view activity : activities) {
            walk_activity(purpose, activity);
        }
    }

    // Policy k's id of activity `name` of its purpose `p`; no_id when it has none.
    Id activity_in(std::size_t k, Id p, std::string_view name) const {
        const CheckedPolicy& model = m_policies[k]->model();
        for (Id a : model.purposes[p].activities) {
            if (model.activities[a].id == name) {
                return a;
            }
        }
        return no_id;
    }

    void walk_activity(std::uint32_t purpose, std::optional<std::string_view> activity) {
        // The rules that could match a request of (purpose, activity) in each policy.
        std::vector<std::vector<const Rule*>> relevant(m_policies.size());
        m_purpose_ids.assign(m_policies.size(), no_id);
        m_activity_ids.assign(m_policies.size(), no_id);
        for (std::size_t k = 0; k < m_policies.size(); ++k) {
            Id p = m_purposes.in[k][purpose];
            m_purpose_ids[k] = p;
            if (p == no_id) {
                continue;
            }
            const CheckedPolicy& model = m_policies[k]->model();
            std::vector<Id> tried; // the activity values a decision may try
            if (activity) {
                m_activity_ids[k] = activity_in(k, p, *activity);
                if (m_activity_ids[k] == no_id) {
                    continue; // an unknown activity: the policy denies the whole class
                }
                tried.push_back(m_activity_ids[k]);
            } else {
                tried = model.purposes[p].activities;
                tried.push_back(no_id);
            }
            for (const Rule* rule : m_rules_by_purpose[k][p]) {
                if (std::any_of(tried.begin(), tried.end(),
                                [&](Id a) { return rule->activity.matches(a, 0); })) {
                    relevant[k].push_back(rule);
                }
            }
        }

        auto recipients = partition(
            m_parties, relevant, [](const Rule& rule) -> const Matcher& { return rule.recipient; },
            [](const CheckedPolicy& model, Id party) {
                return static_cast<std::uint8_t>(model.parties[party].role);
            });
        auto categories = partition(
            m_categories, relevant, [](const Rule& rule) -> const Matcher& { return rule.data; },
            [](const CheckedPolicy& model, Id category) {
                return static_cast<std::uint8_t>(model.categories[category].sensitivity);
            });
        ContextTests tests = context_tests(relevant);
        std::vector<std::vector<std::uint32_t>> grounds = ground_classes(tests);

        RequestClass& out = m_class;
        out.purpose = m_purposes.ids[purpose];
        out.activity = activity;
        std::vector<std::uint8_t> consent_values =
            tests.consent ? std::vector<std::uint8_t>{context_false, context_true}
                          : std::vector<std::uint8_t>{context_any};
        std::vector<std::uint8_t> objection_values =
            tests.objection ? std::vector<std::uint8_t>{context_false, context_true}
                            : std::vector<std::uint8_t>{context_any};
        for (Direction direction : {Direction::send, Direction::receive}) {
            out.direction = direction;
            for (const auto& recipient_class : recipients) {
                names_of(m_parties, recipient_class, out.recipients);
                for (const auto& category_class : categories) {
                    names_of(m_categories, category_class, out.categories);
                    for (std::uint8_t consent : consent_values) {
                        out.consent = consent;
                        for (std::uint8_t objection : objection_values) {
                            out.objection = objection;
                            for (const auto& ground_class : grounds) {
                                ground_names(ground_class, out.grounds);
                                decide_class(recipient_class.front(), category_class.front(),
                                             ground_class.front());
                            }
                        }
                    }
                }
            }
        }
    }

    // Classes of union indices of `names`: each name that a relevant rule's `matcher`
    // lists is a class of its own; the others are grouped by their attribute (role or
    // sensitivity) in each policy, unknown being an attribute of its own.
    template <typename MatcherOf, typename AttributeOf>
    std::vector<std::vector<std::uint32_t>>
    partition(const NameUnion& names, const std::vector<std::vector<const Rule*>>& relevant,
              MatcherOf matcher_of, AttributeOf attribute_of) const {
        std::vector<bool> named(names.ids.size(), false);
        for (std::size_t k = 0; k < relevant.size(); ++k) {
            for (const Rule* rule : relevant[k]) {
                for (Id id : matcher_of(*rule).ids) {
                    named[names.from[k][id]] = true;
                }
            }
        }
        std::vector<std::vector<std::uint32_t>> classes;
        std::map<std::string, std::size_t> by_attributes;
        for (std::uint32_t u = 0; u < names.ids.size(); ++u) {
            if (named[u]) {
                classes.push_back({u});
                continue;
            }
            std::string key;
            for (std::size_t k = 0; k < m_policies.size(); ++k) {
                Id id = names.in[k][u];
                key += static_cast<char>(id == no_id ? unknown_attribute
                                                     : attribute_of(m_policies[k]->model(), id));
            }
            auto [it, added] = by_attributes.emplace(key, classes.size());
            if (added) {
                classes.emplace_back();
            }
            classes[it->second].push_back(u);
        }
        return classes;
    }

    static void collect_tests(const Condition& condition, std::size_t k, ContextTests& tests) {
        for (const ConditionNode& node : condition.nodes) {
            switch (node.op) {
            case ConditionNode::Op::consent:
                tests.consent = true;
                break;
            case ConditionNode::Op::objection:
                tests.objection = true;
                break;
            case ConditionNode::Op::legal_basis_in:
                tests.ground_lists.emplace_back(k, &node.grounds);
                break;
            default:
                break;
            }
        }
    }

    static ContextTests context_tests(const std::vector<std::vector<const Rule*>>& relevant) {
        ContextTests tests;
        for (std::size_t k = 0; k < relevant.size(); ++k) {
            for (const Rule* rule : relevant[k]) {
                collect_tests(rule->condition, k, tests);
            }
        }
        return tests;
    }

    // "No ground" (no_id) alone, then the grounds grouped by whether each policy knows
    // them and by the lists that hold them.
    std::vector<std::vector<std::uint32_t>> ground_classes(const ContextTests& tests) const {
        std::vector<std::vector<std::uint32_t>> classes{{no_id}};
        std::map<std::vector<bool>, std::size_t> by_signature;
        for (std::uint32_t u = 0; u < m_grounds.ids.size(); ++u) {
            std::vector<bool> signature;
            for (std::size_t k = 0; k < m_policies.size(); ++k) {
                signature.push_back(m_grounds.in[k][u] != no_id);
            }
            for (const auto& [k, list] : tests.ground_lists) {
                Id id = m_grounds.in[k][u];
                signature.push_back(id != no_id &&
                                    std::binary_search(list->begin(), list->end(), id));
            }
            auto [it, added] = by_signature.emplace(std::move(signature), classes.size());
            if (added) {
                classes.emplace_back();
            }
            classes[it->second].push_back(u);
        }
        return classes;
    }

    static void names_of(const NameUnion& names, const std::vector<std::uint32_t>& members,
                         std::vector<std::string_view>& out) {
        out.clear();
        for (std::uint32_t u : members) {
            out.push_back(names.ids[u]);
        }
    }

    void ground_names(const std::vector<std::uint32_t>& members,
                      std::vector<std::string_view>& out) const {
        out.clear();
        for (std::uint32_t u : members) {
            out.push_back(u == no_id ? std::string_view() : m_grounds.ids[u]);
        }
    }

    // Decides the class's first request in every policy and visits the class.
    void decide_class(std::uint32_t recipient, std::uint32_t category, std::uint32_t ground) {
        const RequestClass& request = m_class;
        bool consent = (request.consent & context_true) != 0 && request.consent != context_any;
        bool objection =
            (request.objection & context_true) != 0 && request.objection != context_any;
        for (std::size_t k = 0; k < m_policies.size(); ++k) {
            const CompiledPolicy& policy = *m_policies[k];
            ResolvedRequest resolved;
            resolved.purpose = m_purpose_ids[k];
            resolved.named_activity = request.activity.has_value();
            resolved.activity = m_activity_ids[k];
            resolved.recipient = m_parties.in[k][recipient];
            Id category_id = m_categories.in[k][category];
            resolved.direction = request.direction;
            resolved.consent = consent;
            resolved.objection = objection;
            resolved.ground = ground == no_id ? no_id : m_grounds.in[k][ground];
            bool known = resolved.purpose != no_id &&
                         (!resolved.named_activity || resolved.activity != no_id) &&
                         resolved.recipient != no_id && category_id != no_id &&
                         (ground == no_id || resolved.ground != no_id);
            if (known) {
                resolved.categories.push_back(category_id);
                m_decisions[k] = decide(policy, resolved);
            } else {
                // A name this policy does not declare: evaluated by name, as a request
                // naming it would be (and denied).
                Request named;
                named.purpose = std::string(request.purpose);
                if (request.activity) {
                    named.activity = std::string(*request.activity);
                }
                named.recipient = std::string(m_parties.ids[recipient]);
                named.data = {std::string(m_categories.ids[category])};
                named.direction = request.direction;
                named.context.consent = consent;
                named.context.objection = objection;
                if (ground != no_id) {
                    named.context.legal_basis = std::string(m_grounds.ids[ground]);
                }
                m_decisions[k] = evaluate(policy, named);
            }
        }
        ++m_space.classes;
        m_space.requests += request.size();
        m_visit(request, m_decisions);
    }

    std::span<const CompiledPolicy* const> m_policies;
    const RequestClassVisitor& m_visit;
    NameUnion m_purposes;
    NameUnion m_parties;
    NameUnion m_categories;
    NameUnion m_grounds;
    std::vector<std::vector<std::vector<const Rule*>>> m_rules_by_purpose;
    std::vector<Id> m_purpose_ids;  // per policy, for the purpose being walked
    std::vector<Id> m_activity_ids; // per policy, for the activity being walked
    RequestClass m_class;
    std::vector<Decision> m_decisions;
    RequestSpace m_space;
};

} // namespace

RequestSpace walk_request_space(std::span<const CompiledPolicy* const> policies,
                                const RequestClassVisitor& visit) {
    return SpaceWalk(policies, visit).run();
}

} // namespace flowgate::dsl
