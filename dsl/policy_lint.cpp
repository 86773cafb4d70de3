// The findings of policy_lint.hpp. Whether a permit ever allows is asked of the whole
// request space (request_space.hpp), so "never" is exact: no purpose, activity,
// recipient, category, direction and context gets an allow from it. Positions come from
// parsing the policy's files again: the checked model keeps them for rules only.
#include "policy_lint.hpp"

#include "parser.hpp"
#include "request_space.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <unordered_set>

namespace flowgate::dsl {

std::string_view to_string(LintKind kind) {
    switch (kind) {
    case LintKind::permit_never_allows:
        return "permit_never_allows";
    case LintKind::activity_unserved:
        return "activity_unserved";
    case LintKind::party_unused:
        return "party_unused";
    case LintKind::category_unused:
        return "category_unused";
    case LintKind::ground_unused:
        return "ground_unused";
    case LintKind::obligation_unused:
        return "obligation_unused";
    case LintKind::class_without_members:
        return "class_without_members";
    }
    return "";
}

namespace {

// Where each declaration's identifier and label stand, by a key of its kind and id
// (activities: "purpose/activity").
struct Position {
    std::uint32_t file = 0;
    std::uint32_t id_offset = 0;
    std::uint32_t label_offset = 0;
};

enum class Space : std::uint8_t { category, party, ground, obligation, purpose, activity, rule };

using Positions = std::map<std::pair<Space, std::string>, Position>;

Positions declaration_positions(const SourceSet& sources) {
    Positions positions;
    for (std::uint32_t f = 0; f < sources.size(); ++f) {
        ast::File file;
        Diagnostics ignored; // the policy loaded, so its files parse
        parse_file(sources, f, file, ignored);
        auto put = [&](Space space, const std::string& key, const ast::Name& id,
                       const ast::Label* label) {
            positions.emplace(std::pair(space, key),
                              Position{f, id.offset, label == nullptr ? id.offset : label->offset});
        };
        for (const ast::Declaration& declaration : file.declarations) {
            const auto& node = declaration.get();
            if (const auto* category = boost::get<ast::Category>(&node)) {
                put(Space::category, category->id.text, category->id, &category->label);
            } else if (const auto* party = boost::get<ast::Party>(&node)) {
                put(Space::party, party->id.text, party->id, &party->label);
            } else if (const auto* party_class = boost::get<ast::PartyClass>(&node)) {
                put(Space::party, party_class->id.text, party_class->id, &party_class->label);
            } else if (const auto* ground = boost::get<ast::Ground>(&node)) {
                put(Space::ground, ground->id.text, ground->id, &ground->label);
            } else if (const auto* obligation = boost::get<ast::Obligation>(&node)) {
                put(Space::obligation, obligation->id.text, obligation->id, &obligation->label);
            } else if (const auto* purpose = boost::get<ast::Purpose>(&node)) {
                put(Space::purpose, purpose->id.text, purpose->id, &purpose->label);
                for (const ast::Activity& activity : purpose->activities) {
                    put(Space::activity, purpose->id.text + "/" + activity.id.text, activity.id,
                        &activity.label);
                }
            } else if (const auto* rule = boost::get<ast::Rule>(&node)) {
                put(Space::rule, rule->id.text, rule->id, nullptr);
            }
        }
    }
    return positions;
}

class Linter {
public:
    explicit Linter(const CompiledPolicy& policy)
        : m_policy(policy), m_model(policy.model()),
          m_positions(declaration_positions(policy.sources())) {}

    std::vector<LintFinding> run() {
        permits_never_allowing();
        activities_unserved();
        unused_names();
        classes_without_members();
        std::stable_sort(
            m_findings.begin(), m_findings.end(),
            [this](const LintFinding& a, const LintFinding& b) {
                return std::tuple(file_order(a), a.diagnostic.line, a.diagnostic.column) <
                       std::tuple(file_order(b), b.diagnostic.line, b.diagnostic.column);
            });
        return std::move(m_findings);
    }

private:
    std::size_t file_order(const LintFinding& finding) const {
        const auto& files = m_policy.sources().files();
        for (std::size_t i = 0; i < files.size(); ++i) {
            if (files[i].path() == finding.diagnostic.file) {
                return i;
            }
        }
        return files.size();
    }

    void add(LintKind kind, Space space, const std::string& key, std::string message,
             bool at_label = false) {
        auto found = m_positions.find({space, key});
        if (found == m_positions.end()) {
            m_findings.push_back({kind, Diagnostic{Severity::warning, "", 0, 0, message, {}}});
            return;
        }
        const Position& at = found->second;
        m_findings.push_back({kind, make_diagnostic(m_policy.sources(), at.file,
                                                    at_label ? at.label_offset : at.id_offset,
                                                    std::move(message), Severity::warning)});
    }

    bool condition_satisfiable(const Condition& condition) const {
        for (bool consent : {false, true}) {
            for (bool objection : {false, true}) {
                if (condition_holds(condition, consent, objection, no_id)) {
                    return true;
                }
                for (Id g = 0; g < m_model.grounds.size(); ++g) {
                    if (condition_holds(condition, consent, objection, g)) {
                        return true;
                    }
                }
            }
        }
        return false;
    }

    void permits_never_allowing() {
        std::vector<bool> allows(m_model.rules.size(), false);
        const CompiledPolicy* policies[] = {&m_policy};
        walk_request_space(policies, [&](const RequestClass&, std::span<const Decision> decided) {
            if (decided[0].allowed && decided[0].rule != nullptr) {
                allows[decided[0].rule->index] = true;
            }
        });
        for (const Rule& rule : m_model.rules) {
            if (rule.effect != ast::Effect::permit || allows[rule.index]) {
                continue;
            }
            std::string why = condition_satisfiable(rule.condition)
                                  ? "every request it matches is forbidden or allowed by an "
                                    "earlier permit"
                                  : "its condition holds in no context";
            add(LintKind::permit_never_allows, Space::rule, rule.id,
                "permit '" + rule.id + "' never allows a request: " + why);
        }
    }

    void activities_unserved() {
        for (const Activity& activity : m_model.activities) {
            Id a = static_cast<Id>(&activity - m_model.activities.data());
            std::uint32_t kind_bit = 1u << static_cast<std::uint8_t>(activity.kind);
            bool served =
                std::any_of(m_model.rules.begin(), m_model.rules.end(), [&](const Rule& r) {
                    return r.effect == ast::Effect::permit &&
                           r.purpose.matches(activity.purpose, 0) && r.activity.matches(a, 0) &&
                           r.kind.matches(no_id, kind_bit);
                });
            if (!served) {
                const std::string& purpose = m_model.purposes[activity.purpose].id;
                add(LintKind::activity_unserved, Space::activity, purpose + "/" + activity.id,
                    "no permit serves activity '" + activity.id + "' of purpose '" + purpose + "'");
            }
        }
    }

    void unused_names() {
        std::vector<bool> party_used(m_model.parties.size(), false);
        std::vector<bool> category_used(m_model.categories.size(), false);
        std::vector<bool> ground_used(m_model.grounds.size(), false);
        std::vector<bool> obligation_used(m_model.obligations.size(), false);
        auto use_party = [&](Id party) {
            party_used[party] = true;
            for (Id member : m_model.parties[party].members) {
                party_used[member] = true;
            }
        };
        for (const Activity& activity : m_model.activities) {
            for (Id party : activity.recipients) {
                use_party(party);
            }
            for (Id category : activity.categories) {
                category_used[category] = true;
            }
        }
        for (const Rule& rule : m_model.rules) {
            for (Id party : rule.recipient.ids) {
                use_party(party);
            }
            for (Id category : rule.data.ids) {
                category_used[category] = true;
            }
            if (rule.basis != no_id) {
                ground_used[rule.basis] = true;
            }
            for (const ConditionNode& node : rule.condition.nodes) {
                for (Id ground : node.grounds) {
                    ground_used[ground] = true;
                }
            }
            for (Id obligation : rule.obligations) {
                obligation_used[obligation] = true;
            }
        }
        for (Id p = 0; p < m_model.parties.size(); ++p) {
            if (!party_used[p]) {
                const Party& party = m_model.parties[p];
                add(LintKind::party_unused, Space::party, party.id,
                    std::string(party.is_class ? "class '" : "party '") + party.id +
                        "' is named by no activity, rule or class");
            }
        }
        for (Id c = 0; c < m_model.categories.size(); ++c) {
            if (!category_used[c]) {
                add(LintKind::category_unused, Space::category, m_model.categories[c].id,
                    "category '" + m_model.categories[c].id + "' is named by no activity or rule");
            }
        }
        for (Id g = 0; g < m_model.grounds.size(); ++g) {
            if (!ground_used[g]) {
                add(LintKind::ground_unused, Space::ground, m_model.grounds[g].id,
                    "ground '" + m_model.grounds[g].id +
                        "' is no rule's basis and no condition names it");
            }
        }
        for (Id o = 0; o < m_model.obligations.size(); ++o) {
            if (!obligation_used[o]) {
                add(LintKind::obligation_unused, Space::obligation, m_model.obligations[o].id,
                    "obligation '" + m_model.obligations[o].id + "' is obliged by no rule");
            }
        }
    }

    void classes_without_members() {
        for (const Party& party : m_model.parties) {
            if (party.is_class && party.members.empty()) {
                add(LintKind::class_without_members, Space::party, party.id,
                    "class '" + party.id + "' has no members (a `members " + party.id +
                        " [...]` declaration names them)");
            }
        }
    }

    const CompiledPolicy& m_policy;
    const CheckedPolicy& m_model;
    Positions m_positions;
    std::vector<LintFinding> m_findings;
};

} // namespace

std::vector<LintFinding> lint_policy(const CompiledPolicy& policy) {
    return Linter(policy).run();
}

} // namespace flowgate::dsl
