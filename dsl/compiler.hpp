// The compiled decision index: the immutable form of one checked policy that the
// evaluator reads. It is built once per load, off the hot path, and shared between
// threads as std::shared_ptr<const CompiledPolicy>; evaluation is a handful of hash
// lookups whatever the number of rules.
#pragma once

#include "checker.hpp"
#include "source.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace flowgate::dsl {

// Names (identifiers, labels and aliases) to ids, matched by their folded form
// (names.hpp). Requests mostly give identifiers, or labels exactly as declared, so an
// exact lookup comes first and costs no folding; only a name written otherwise (full-width,
// with white space, …) is folded, and only a name that is not plain ASCII pays for ICU.
class NameIndex {
public:
    // The first of names that fold alike wins (the checker refuses such policies).
    void add(const std::string& name, Id value);
    Id find(std::string_view name) const;

    // Every name's folded text and its id, in the order added: what suggestions for an
    // unknown name are ranked among.
    struct Entry {
        std::u32string folded; // as code points, as suggestions compare them
        Id value = no_id;
    };
    const std::vector<Entry>& entries() const { return m_entries; }

private:
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view text) const noexcept {
            return std::hash<std::string_view>{}(text);
        }
    };
    using Map = std::unordered_map<std::string, Id, Hash, std::equal_to<>>;
    Map m_exact;
    Map m_folded;
    std::vector<Entry> m_entries;
};

// Rules are filed under (purpose, activity, recipient, category); a dimension a rule
// does not pin to concrete values is filed under `no_id` (the wildcard).
struct RuleKey {
    Id purpose = no_id;
    Id activity = no_id;
    Id recipient = no_id;
    Id category = no_id;
    bool operator==(const RuleKey&) const = default;
};
struct RuleKeyHash {
    std::size_t operator()(const RuleKey& key) const noexcept;
};

// One effect's rules: which of the 16 wildcard patterns occur, and for each key the
// rule indices filed under it, ascending.
class RuleIndex {
public:
    void add(const Rule& rule);
    void finish();

    // The patterns in use: bit 0 purpose, 1 activity, 2 recipient, 3 category set means
    // that dimension is concrete in the key.
    std::span<const std::uint8_t> patterns() const { return m_patterns; }
    std::span<const Id> find(const RuleKey& key) const;

private:
    struct Range {
        std::uint32_t begin = 0;
        std::uint32_t count = 0;
    };
    std::unordered_map<RuleKey, std::vector<Id>, RuleKeyHash> m_building;
    std::unordered_map<RuleKey, Range, RuleKeyHash> m_ranges;
    std::vector<Id> m_rules;
    std::array<bool, 16> m_used{};
    std::vector<std::uint8_t> m_patterns;
};

// One policy file's display name and text.
struct PolicyText {
    std::string name;
    std::string text;
};

class CompiledPolicy {
public:
    CompiledPolicy(CheckedPolicy model, SourceSet sources, std::string hash,
                   std::chrono::system_clock::time_point loaded_at);
    CompiledPolicy(const CompiledPolicy&) = delete;
    CompiledPolicy& operator=(const CompiledPolicy&) = delete;

    // The resolved vocabulary and rules, indexed by the ids used everywhere else.
    const CheckedPolicy& model() const { return m_model; }
    const SourceSet& sources() const { return m_sources; }
    // "sha256:<hex>" over the files' names and bytes.
    const std::string& hash() const { return m_hash; }
    std::chrono::system_clock::time_point loaded_at() const { return m_loaded_at; }
    // The policy's files as {display name, text}, in read order: what an audit store
    // keeps so that any decision can be replayed.
    std::vector<PolicyText> texts() const;

    // By identifier, label or alias, folded (names.hpp); `no_id` when unknown.
    Id find_purpose(std::string_view name) const;
    Id find_activity(Id purpose, std::string_view name) const;
    Id find_party(std::string_view name) const;
    Id find_category(std::string_view name) const;
    Id find_ground(std::string_view name) const;

    // The names each find_* looks in, for ranking suggestions.
    const NameIndex& purpose_names() const { return m_purposes; }
    const NameIndex& activity_names(Id purpose) const { return m_activities.at(purpose); }
    const NameIndex& party_names() const { return m_parties; }
    const NameIndex& category_names() const { return m_categories; }
    const NameIndex& ground_names() const { return m_grounds; }

    // The grounds the rules' conditions test (`legal_basis in [...]`; for a bare
    // `legal_basis`, the first declared when none is listed), ascending: the legal bases
    // worth trying when a deny says which context would allow.
    const std::vector<Id>& tested_grounds() const { return m_tested_grounds; }

    const RuleIndex& forbids() const { return m_forbids; }
    const RuleIndex& permits() const { return m_permits; }

    // The answer's JSON for each rule, ground and obligation, written once per load so
    // that answering a decision is a few appends (see decision_to_text).
    const std::string& rule_json(const Rule& rule) const { return m_rule_json[rule.index]; }
    // "policies/kenpo.policy:118 (table row 3, case j)": where a rule stands, as the audit
    // store records it.
    const std::string& rule_source(const Rule& rule) const { return m_rule_source[rule.index]; }
    const std::string& ground_json(const Ground& ground) const {
        return m_ground_json[static_cast<std::size_t>(&ground - m_model.grounds.data())];
    }
    const std::string& obligation_json(const Obligation& obligation) const {
        return m_obligation_json[static_cast<std::size_t>(&obligation -
                                                          m_model.obligations.data())];
    }

private:
    CheckedPolicy m_model;
    SourceSet m_sources;
    std::string m_hash;
    std::chrono::system_clock::time_point m_loaded_at;
    NameIndex m_purposes;
    std::vector<NameIndex> m_activities; // per purpose
    NameIndex m_parties;
    NameIndex m_categories;
    NameIndex m_grounds;
    std::vector<Id> m_tested_grounds;
    RuleIndex m_forbids;
    RuleIndex m_permits;
    std::vector<std::string> m_rule_json;
    std::vector<std::string> m_rule_source;
    std::vector<std::string> m_ground_json;
    std::vector<std::string> m_obligation_json;
};

std::shared_ptr<const CompiledPolicy>
compile(CheckedPolicy model, SourceSet sources, std::string hash,
        std::chrono::system_clock::time_point loaded_at = std::chrono::system_clock::now());

} // namespace flowgate::dsl
