// Building the decision index from a checked policy; see compiler.hpp.
#include "compiler.hpp"

#include "names.hpp"
#include "request_json.hpp"

#include <algorithm>
#include <span>

namespace flowgate::dsl {

namespace {

// The key values a matcher pins, or nothing when it must be filed under the wildcard.
bool concrete(const Matcher& matcher) {
    return matcher.present && !matcher.negated && matcher.attributes == 0 && !matcher.ids.empty();
}

void add_names(NameIndex& index, const std::string& id, const std::string& label, Id value,
               const std::vector<std::string>& aliases = {}) {
    index.add(id, value);
    if (!label.empty()) {
        index.add(label, value);
    }
    for (const std::string& alias : aliases) {
        index.add(alias, value);
    }
}

} // namespace

void NameIndex::add(const std::string& name, Id value) {
    m_exact.emplace(name, value);
    std::string folded = fold_name(name);
    if (folded.empty()) {
        return;
    }
    m_entries.push_back({code_points(folded), value});
    m_folded.emplace(std::move(folded), value);
}

Id NameIndex::find(std::string_view name) const {
    if (auto it = m_exact.find(name); it != m_exact.end()) {
        return it->second;
    }
    // A name that folds to itself is looked up as it is: no copy, no ICU.
    auto it = folds_to_itself(name) ? m_folded.find(name) : m_folded.find(fold_name(name));
    return it == m_folded.end() ? no_id : it->second;
}

std::size_t RuleKeyHash::operator()(const RuleKey& key) const noexcept {
    std::uint64_t h = key.purpose;
    h = h * 0x9E3779B97F4A7C15ull + key.activity;
    h = h * 0x9E3779B97F4A7C15ull + key.recipient;
    h = h * 0x9E3779B97F4A7C15ull + key.category;
    return static_cast<std::size_t>(h ^ (h >> 29));
}

void RuleIndex::add(const Rule& rule) {
    // Constant data, not a static object: a load that a timed-out reload left running
    // may still be here while the process exits and runs the static destructors.
    static constexpr Id wildcard[] = {no_id};
    const Matcher* dimensions[4] = {&rule.purpose, &rule.activity, &rule.recipient, &rule.data};
    std::span<const Id> values[4];
    std::uint8_t pattern = 0;
    for (int d = 0; d < 4; ++d) {
        bool pinned = concrete(*dimensions[d]);
        values[d] =
            pinned ? std::span<const Id>(dimensions[d]->ids) : std::span<const Id>(wildcard);
        if (pinned) {
            pattern |= static_cast<std::uint8_t>(1u << d);
        }
    }
    m_used[pattern] = true;
    for (Id p : values[0]) {
        for (Id a : values[1]) {
            for (Id r : values[2]) {
                for (Id c : values[3]) {
                    m_building[RuleKey{p, a, r, c}].push_back(rule.index);
                }
            }
        }
    }
}

void RuleIndex::finish() {
    for (auto& [key, rules] : m_building) {
        auto begin = static_cast<std::uint32_t>(m_rules.size());
        m_rules.insert(m_rules.end(), rules.begin(), rules.end());
        std::sort(m_rules.begin() + begin, m_rules.end());
        m_ranges.emplace(key, Range{begin, static_cast<std::uint32_t>(rules.size())});
    }
    m_building.clear();
    for (std::uint8_t pattern = 0; pattern < 16; ++pattern) {
        if (m_used[pattern]) {
            m_patterns.push_back(pattern);
        }
    }
}

std::span<const Id> RuleIndex::find(const RuleKey& key) const {
    auto it = m_ranges.find(key);
    if (it == m_ranges.end()) {
        return {};
    }
    return std::span<const Id>(m_rules).subspan(it->second.begin, it->second.count);
}

CompiledPolicy::CompiledPolicy(CheckedPolicy model, SourceSet sources, std::string hash,
                               std::chrono::system_clock::time_point loaded_at)
    : m_model(std::move(model)), m_sources(std::move(sources)), m_hash(std::move(hash)),
      m_loaded_at(loaded_at) {
    for (Id i = 0; i < m_model.purposes.size(); ++i) {
        const Purpose& purpose = m_model.purposes[i];
        add_names(m_purposes, purpose.id, purpose.label, i, purpose.aliases);
        NameIndex& activities = m_activities.emplace_back();
        for (Id a : purpose.activities) {
            add_names(activities, m_model.activities[a].id, m_model.activities[a].label, a);
        }
    }
    for (Id i = 0; i < m_model.parties.size(); ++i) {
        add_names(m_parties, m_model.parties[i].id, m_model.parties[i].label, i,
                  m_model.parties[i].aliases);
    }
    for (Id i = 0; i < m_model.categories.size(); ++i) {
        add_names(m_categories, m_model.categories[i].id, m_model.categories[i].label, i,
                  m_model.categories[i].aliases);
    }
    for (Id i = 0; i < m_model.grounds.size(); ++i) {
        add_names(m_grounds, m_model.grounds[i].id, m_model.grounds[i].label, i,
                  m_model.grounds[i].aliases);
    }
    bool tests_any_ground = false;
    for (const Rule& rule : m_model.rules) {
        (rule.effect == ast::Effect::forbid ? m_forbids : m_permits).add(rule);
        for (const ConditionNode& node : rule.condition.nodes) {
            tests_any_ground = tests_any_ground || node.op == ConditionNode::Op::legal_basis;
            m_tested_grounds.insert(m_tested_grounds.end(), node.grounds.begin(),
                                    node.grounds.end());
        }
    }
    std::sort(m_tested_grounds.begin(), m_tested_grounds.end());
    m_tested_grounds.erase(std::unique(m_tested_grounds.begin(), m_tested_grounds.end()),
                           m_tested_grounds.end());
    if (tests_any_ground && m_tested_grounds.empty() && !m_model.grounds.empty()) {
        m_tested_grounds.push_back(0);
    }
    m_forbids.finish();
    m_permits.finish();
    for (const Rule& rule : m_model.rules) {
        m_rule_json.push_back(rule_to_json_text(rule));
        std::string source = rule.file + ":" + std::to_string(rule.line);
        if (rule.source_row) {
            source += " (table row " + std::to_string(*rule.source_row) + ", case " +
                      rule.source_case + ")";
        }
        m_rule_source.push_back(std::move(source));
    }
    for (const Ground& ground : m_model.grounds) {
        m_ground_json.push_back(id_label_json_text(ground.id, ground.label));
    }
    for (const Obligation& obligation : m_model.obligations) {
        m_obligation_json.push_back(id_label_json_text(obligation.id, obligation.label));
    }
}

std::vector<PolicyText> CompiledPolicy::texts() const {
    std::vector<PolicyText> out;
    for (const SourceFile& file : m_sources.files()) {
        out.push_back({file.path(), file.text()});
    }
    return out;
}

Id CompiledPolicy::find_purpose(std::string_view name) const {
    return m_purposes.find(name);
}

Id CompiledPolicy::find_activity(Id purpose, std::string_view name) const {
    return purpose < m_activities.size() ? m_activities[purpose].find(name) : no_id;
}

Id CompiledPolicy::find_party(std::string_view name) const {
    return m_parties.find(name);
}

Id CompiledPolicy::find_category(std::string_view name) const {
    return m_categories.find(name);
}

Id CompiledPolicy::find_ground(std::string_view name) const {
    return m_grounds.find(name);
}

std::shared_ptr<const CompiledPolicy> compile(CheckedPolicy model, SourceSet sources,
                                              std::string hash,
                                              std::chrono::system_clock::time_point loaded_at) {
    return std::make_shared<const CompiledPolicy>(std::move(model), std::move(sources),
                                                  std::move(hash), loaded_at);
}

} // namespace flowgate::dsl
