// Name resolution and the policy-level checks of docs/policy-language.md ("Checks").
// It works in passes (declare every name, resolve values and members, then rules,
// then conflicts) so that one run can report every error without cascades.
#include "checker.hpp"

#include "names.hpp"

#include <algorithm>
#include <array>
#include <unordered_map>
#include <utility>

namespace flowgate::dsl {

namespace {

enum class SymbolKind { category, party, party_class, ground, obligation, purpose, rule };

std::string_view kind_noun(SymbolKind kind) {
    switch (kind) {
    case SymbolKind::category:
        return "a category";
    case SymbolKind::party:
        return "a party";
    case SymbolKind::party_class:
        return "a class";
    case SymbolKind::ground:
        return "a ground";
    case SymbolKind::obligation:
        return "an obligation";
    case SymbolKind::purpose:
        return "a purpose";
    case SymbolKind::rule:
        return "a rule";
    }
    return "a name";
}

struct Symbol {
    SymbolKind kind;
    Id index;
    std::uint32_t file;
    std::uint32_t offset;
};

// Which clause of a rule; the order is the order they are resolved in.
enum ClauseSlot : std::size_t {
    slot_purpose,
    slot_activity,
    slot_to,
    slot_data,
    slot_kind,
    slot_when,
    slot_basis,
    slot_oblige,
    slot_source,
    slot_because,
    slot_count
};

constexpr std::array<std::string_view, slot_count> clause_names = {
    "purpose", "activity", "to", "data", "kind", "when", "basis", "oblige", "source", "because"};
// A clause is named in messages by the keyword that opens it.
static_assert(std::all_of(clause_names.begin(), clause_names.end(), is_keyword));

std::size_t slot_of(ast::Dimension dimension) {
    switch (dimension) {
    case ast::Dimension::purpose:
        return slot_purpose;
    case ast::Dimension::activity:
        return slot_activity;
    case ast::Dimension::recipient:
        return slot_to;
    case ast::Dimension::data:
        return slot_data;
    case ast::Dimension::kind:
        return slot_kind;
    }
    return slot_purpose;
}

std::uint32_t bit(std::uint8_t value) {
    return 1u << value;
}

void add_sorted(std::vector<Id>& ids, Id id) {
    auto it = std::lower_bound(ids.begin(), ids.end(), id);
    if (it == ids.end() || *it != id) {
        ids.insert(it, id);
    }
}

bool contains(const std::vector<Id>& sorted, Id id) {
    return std::binary_search(sorted.begin(), sorted.end(), id);
}

class Checker {
public:
    Checker(const SourceSet& sources, const std::vector<ast::File>& files, bool incomplete)
        : m_sources(sources), m_files(files), m_incomplete(incomplete) {}

    CheckResult run() {
        declare_all();
        resolve_declarations();
        check_names_fold_apart();
        resolve_rules();
        check_conflicts();
        if (!m_diagnostics.empty()) {
            sort_diagnostics(m_diagnostics);
            return std::move(m_diagnostics);
        }
        return std::move(m_policy);
    }

private:
    // --- helpers ----------------------------------------------------------

    void error(const ast::Located& at, std::string message) {
        error(at.file, at.offset, std::move(message));
    }
    void error(std::uint32_t file, std::uint32_t offset, std::string message) {
        m_diagnostics.push_back(make_diagnostic(m_sources, file, offset, std::move(message)));
    }

    std::string where(std::uint32_t file, std::uint32_t offset) const {
        const SourceFile& source = m_sources.file(file);
        return source.path() + ':' + std::to_string(source.locate(offset).line);
    }

    // Declares `name`; false (and an error) when it is taken or is a keyword.
    bool declare(const ast::Name& name, SymbolKind kind, Id index) {
        if (is_keyword(name.text)) {
            error(name, "'" + name.text + "' is a keyword and cannot be a name");
            return false;
        }
        auto [it, inserted] =
            m_symbols.try_emplace(name.text, Symbol{kind, index, name.file, name.offset});
        if (!inserted) {
            error(name, "duplicate name '" + name.text + "' (first declared at " +
                            where(it->second.file, it->second.offset) + ")");
            return false;
        }
        return true;
    }

    // Looks `name` up as one of `accepted` kinds; reports unknown or wrong-kind names.
    std::optional<Symbol> lookup(const ast::Name& name, std::initializer_list<SymbolKind> accepted,
                                 std::string_view expected) {
        auto it = m_symbols.find(name.text);
        if (it == m_symbols.end()) {
            if (!m_incomplete) {
                error(name, "unknown " + std::string(expected) + " '" + name.text + "'");
            }
            return std::nullopt;
        }
        if (std::find(accepted.begin(), accepted.end(), it->second.kind) == accepted.end()) {
            error(name, "'" + name.text + "' is " + std::string(kind_noun(it->second.kind)) +
                            ", not " + article(expected) + std::string(expected));
            return std::nullopt;
        }
        return it->second;
    }

    static std::string article(std::string_view noun) {
        return !noun.empty() && std::string_view("aeiou").find(noun[0]) != std::string_view::npos
                   ? "an "
                   : "a ";
    }

    template <typename Enum, std::size_t N>
    Enum resolve_value(const ast::Name& name, const std::array<Spelling<Enum>, N>& spellings,
                       std::string_view what) {
        if (auto value = spelled_value(spellings, name.text)) {
            return *value;
        }
        error(name, "unknown " + std::string(what) + " '" + name.text + "'");
        return static_cast<Enum>(0);
    }

    // --- pass 1: every declared name ------------------------------------------

    void declare_all() {
        for (const ast::File& file : m_files) {
            for (const ast::Declaration& declaration : file.declarations) {
                boost::apply_visitor([this](const auto& node) { declare_one(node); }, declaration);
            }
        }
    }

    void declare_one(const ast::Category& node) {
        auto index = static_cast<Id>(m_policy.categories.size());
        m_policy.categories.push_back({node.id.text, node.label.text, Sensitivity::ordinary, {}});
        m_categories.push_back(&node);
        declare(node.id, SymbolKind::category, index);
    }
    void declare_one(const ast::Party& node) {
        auto index = static_cast<Id>(m_policy.parties.size());
        m_policy.parties.push_back({node.id.text, node.label.text, Role::internal, false, {}, {}});
        m_party_roles.push_back(&node.role);
        declare(node.id, SymbolKind::party, index);
    }
    void declare_one(const ast::PartyClass& node) {
        auto index = static_cast<Id>(m_policy.parties.size());
        m_policy.parties.push_back({node.id.text, node.label.text, Role::internal, true, {}, {}});
        m_party_roles.push_back(&node.role);
        declare(node.id, SymbolKind::party_class, index);
    }
    void declare_one(const ast::Members& node) { m_members.push_back(&node); }
    void declare_one(const ast::Alias& node) { m_aliases.push_back(&node); }
    void declare_one(const ast::Ground& node) {
        auto index = static_cast<Id>(m_policy.grounds.size());
        m_policy.grounds.push_back({node.id.text, node.label.text, {}});
        declare(node.id, SymbolKind::ground, index);
    }
    void declare_one(const ast::Obligation& node) {
        auto index = static_cast<Id>(m_policy.obligations.size());
        m_policy.obligations.push_back({node.id.text, node.label.text});
        declare(node.id, SymbolKind::obligation, index);
    }
    void declare_one(const ast::Purpose& node) {
        auto index = static_cast<Id>(m_policy.purposes.size());
        m_policy.purposes.push_back({node.id.text, node.label.text, {}, {}});
        declare(node.id, SymbolKind::purpose, index);
        std::unordered_map<std::string, const ast::Name*> seen;
        for (const ast::Activity& activity : node.activities) {
            if (is_keyword(activity.id.text)) {
                error(activity.id, "'" + activity.id.text + "' is a keyword and cannot be a name");
            }
            auto [it, inserted] = seen.try_emplace(activity.id.text, &activity.id);
            if (!inserted) {
                error(activity.id, "duplicate name '" + activity.id.text + "' (first declared at " +
                                       where(it->second->file, it->second->offset) + ")");
                continue;
            }
            auto activity_index = static_cast<Id>(m_policy.activities.size());
            m_policy.activities.push_back(
                {activity.id.text, activity.label.text, FlowKind::internal, index, {}, {}});
            m_activity_nodes.push_back(&activity);
            m_policy.purposes[index].activities.push_back(activity_index);
        }
    }
    void declare_one(const ast::Rule& node) {
        m_rule_nodes.push_back(&node);
        declare(node.id, SymbolKind::rule, static_cast<Id>(m_rule_nodes.size() - 1));
    }

    // --- pass 2: values, members, activities ---------------------------------

    void resolve_declarations() {
        for (std::size_t i = 0; i < m_categories.size(); ++i) {
            m_policy.categories[i].sensitivity =
                resolve_value(m_categories[i]->sensitivity, sensitivity_spellings, "sensitivity");
        }
        for (std::size_t i = 0; i < m_party_roles.size(); ++i) {
            m_policy.parties[i].role = resolve_value(*m_party_roles[i], role_spellings, "role");
        }
        for (const ast::Members* node : m_members) {
            auto owner = lookup(node->party_class, {SymbolKind::party_class}, "class");
            for (const ast::Name& member : node->members) {
                auto party = lookup(member, {SymbolKind::party}, "party");
                if (owner && party) {
                    add_sorted(m_policy.parties[owner->index].members, party->index);
                }
            }
        }
        for (const ast::Alias* node : m_aliases) {
            resolve_alias(*node);
        }
        for (std::size_t i = 0; i < m_activity_nodes.size(); ++i) {
            const ast::Activity& node = *m_activity_nodes[i];
            Activity& activity = m_policy.activities[i];
            activity.kind = resolve_value(node.kind, flow_kind_spellings, "kind");
            for (const ast::Name& name : node.recipients) {
                if (auto party =
                        lookup(name, {SymbolKind::party, SymbolKind::party_class}, "party")) {
                    activity.recipients.push_back(party->index);
                }
            }
            for (const ast::Name& name : node.data) {
                if (auto category = lookup(name, {SymbolKind::category}, "category")) {
                    activity.categories.push_back(category->index);
                }
            }
        }
    }

    void resolve_alias(const ast::Alias& node) {
        auto target = lookup(node.target,
                             {SymbolKind::purpose, SymbolKind::party, SymbolKind::party_class,
                              SymbolKind::category, SymbolKind::ground},
                             "purpose, party, class, category or ground");
        if (!target) {
            return;
        }
        if (fold_name(node.label.text).empty()) {
            error(node.label, "an alias must name something: this label is empty once its white "
                              "space is removed");
            return;
        }
        const std::string& label = node.label.text;
        switch (target->kind) {
        case SymbolKind::purpose:
            m_policy.purposes[target->index].aliases.push_back(label);
            break;
        case SymbolKind::party:
        case SymbolKind::party_class:
            m_policy.parties[target->index].aliases.push_back(label);
            break;
        case SymbolKind::category:
            m_policy.categories[target->index].aliases.push_back(label);
            break;
        case SymbolKind::ground:
            m_policy.grounds[target->index].aliases.push_back(label);
            break;
        default:
            break;
        }
    }

    // Requests name things by their folded names (names.hpp), so two things' names may
    // not fold alike: one error at the later, naming the earlier and where it stands.
    void check_names_fold_apart() {
        for (const NameCollision& collision : names_that_fold_alike(declared_names(m_files))) {
            error(collision.second.file, collision.second.offset,
                  describe(collision.second) + " folds to the same name as " +
                      describe(collision.first) + " (declared at " +
                      where(collision.first.file, collision.first.offset) + "): both are '" +
                      collision.folded + "' once folded (NFKC, white space removed)");
        }
    }

    // --- pass 3: rules ---------------------------------------------------------

    struct ClauseRefs {
        std::array<const ast::Located*, slot_count> first{};
        const ast::MatchClause* match[slot_kind + 1]{};
        const ast::WhenClause* when = nullptr;
        const ast::BasisClause* basis = nullptr;
        const ast::ObligeClause* oblige = nullptr;
        const ast::Source* source = nullptr;
        const ast::BecauseClause* because = nullptr;
    };

    // Records `node` in `slot`; reports a clause given twice.
    template <typename Node> bool take(ClauseRefs& refs, std::size_t slot, const Node& node) {
        if (refs.first[slot] != nullptr) {
            error(node, "clause '" + std::string(clause_names[slot]) + "' given twice (first at " +
                            where(refs.first[slot]->file, refs.first[slot]->offset) + ")");
            return false;
        }
        refs.first[slot] = &node;
        return true;
    }

    void resolve_rules() {
        for (const ast::Rule* node : m_rule_nodes) {
            resolve_rule(*node);
        }
    }

    void resolve_rule(const ast::Rule& node) {
        Rule rule;
        rule.index = static_cast<Id>(m_policy.rules.size());
        rule.effect = node.effect;
        rule.id = node.id.text;
        rule.file = m_sources.file(node.id.file).path();
        rule.line = m_sources.file(node.id.file).locate(node.id.offset).line;

        ClauseRefs refs;
        for (const ast::Clause& clause : node.clauses) {
            boost::apply_visitor(
                [&](const auto& item) {
                    using T = std::decay_t<decltype(item)>;
                    if constexpr (std::is_same_v<T, ast::MatchClause>) {
                        std::size_t slot = slot_of(item.dimension);
                        if (take(refs, slot, item)) {
                            refs.match[slot] = &item;
                        }
                    } else if constexpr (std::is_same_v<T, ast::WhenClause>) {
                        if (take(refs, slot_when, item)) {
                            refs.when = &item;
                        }
                    } else if constexpr (std::is_same_v<T, ast::BasisClause>) {
                        if (take(refs, slot_basis, item)) {
                            refs.basis = &item;
                        }
                    } else if constexpr (std::is_same_v<T, ast::ObligeClause>) {
                        if (take(refs, slot_oblige, item)) {
                            refs.oblige = &item;
                        }
                    } else if constexpr (std::is_same_v<T, ast::Source>) {
                        if (take(refs, slot_source, item)) {
                            refs.source = &item;
                        }
                    } else {
                        if (take(refs, slot_because, item)) {
                            refs.because = &item;
                        }
                    }
                },
                clause);
        }

        Id single_purpose = no_id;
        if (const ast::MatchClause* clause = refs.match[slot_purpose]) {
            rule.purpose = resolve_ids(*clause, SymbolKind::purpose, "purpose");
            if (!clause->negated && clause->items.size() == 1 && rule.purpose.ids.size() == 1) {
                single_purpose = rule.purpose.ids.front();
            }
        }
        if (const ast::MatchClause* clause = refs.match[slot_activity]) {
            rule.activity = resolve_activities(*clause, refs.match[slot_purpose], single_purpose);
        }
        if (const ast::MatchClause* clause = refs.match[slot_to]) {
            rule.recipient = resolve_recipients(*clause);
        }
        if (const ast::MatchClause* clause = refs.match[slot_data]) {
            rule.data = resolve_data(*clause);
        }
        if (const ast::MatchClause* clause = refs.match[slot_kind]) {
            rule.kind = resolve_kinds(*clause);
        }
        if (rule.effect == ast::Effect::permit && refs.match[slot_activity] != nullptr &&
            !rule.activity.negated && !rule.activity.ids.empty()) {
            check_within_activities(rule, refs);
        }
        if (refs.when != nullptr) {
            rule.condition.text = compile_condition(refs.when->condition, rule.condition);
        }
        if (refs.basis != nullptr) {
            if (auto ground = lookup(refs.basis->ground, {SymbolKind::ground}, "ground")) {
                rule.basis = ground->index;
            }
        }
        if (refs.oblige != nullptr) {
            for (const ast::Name& name : refs.oblige->obligations) {
                if (auto obligation = lookup(name, {SymbolKind::obligation}, "obligation")) {
                    if (std::find(rule.obligations.begin(), rule.obligations.end(),
                                  obligation->index) == rule.obligations.end()) {
                        rule.obligations.push_back(obligation->index);
                    }
                }
            }
        }
        if (refs.source != nullptr) {
            rule.source_row = refs.source->row;
            rule.source_case = refs.source->case_label.text;
        }
        if (refs.because != nullptr) {
            rule.because = refs.because->text.text;
        }
        rule.reason = !rule.because.empty()                ? rule.because
                      : rule.effect == ast::Effect::permit ? "permitted by rule '" + rule.id + "'"
                                                           : "forbidden by rule '" + rule.id + "'";
        m_policy.rules.push_back(std::move(rule));
    }

    // Reports a `role`/`sensitivity` item where the clause does not take one.
    bool plain_item(const ast::Selector& item, std::string_view clause) {
        if (item.qualifier.empty()) {
            return true;
        }
        error(item,
              "'" + item.qualifier + "' is not allowed in a '" + std::string(clause) + "' clause");
        return false;
    }

    Matcher resolve_ids(const ast::MatchClause& clause, SymbolKind kind, std::string_view noun) {
        Matcher matcher{true, clause.negated, {}, 0};
        for (const ast::Selector& item : clause.items) {
            if (!plain_item(item, noun)) {
                continue;
            }
            if (auto symbol = lookup(item.name, {kind}, noun)) {
                add_sorted(matcher.ids, symbol->index);
            }
        }
        return matcher;
    }

    Matcher resolve_activities(const ast::MatchClause& clause, const ast::MatchClause* purpose,
                               Id single_purpose) {
        Matcher matcher{true, clause.negated, {}, 0};
        if (purpose == nullptr || purpose->negated || purpose->items.size() != 1) {
            error(clause, "an 'activity' clause needs a 'purpose' clause naming exactly one "
                          "purpose");
            return matcher;
        }
        if (single_purpose == no_id) {
            return matcher; // the purpose itself was already reported
        }
        const Purpose& owner = m_policy.purposes[single_purpose];
        for (const ast::Selector& item : clause.items) {
            if (!plain_item(item, "activity")) {
                continue;
            }
            auto found = std::find_if(owner.activities.begin(), owner.activities.end(), [&](Id a) {
                return m_policy.activities[a].id == item.name.text;
            });
            if (found == owner.activities.end()) {
                if (!m_incomplete) {
                    error(item.name, "unknown activity '" + item.name.text + "' in purpose '" +
                                         owner.id + "'");
                }
                continue;
            }
            add_sorted(matcher.ids, *found);
        }
        return matcher;
    }

    Matcher resolve_recipients(const ast::MatchClause& clause) {
        Matcher matcher{true, clause.negated, {}, 0};
        for (const ast::Selector& item : clause.items) {
            if (item.qualifier == "role") {
                matcher.attributes |= bit(
                    static_cast<std::uint8_t>(resolve_value(item.name, role_spellings, "role")));
            } else if (plain_item(item, "to")) {
                if (auto party =
                        lookup(item.name, {SymbolKind::party, SymbolKind::party_class}, "party")) {
                    add_sorted(matcher.ids, party->index);
                    for (Id member : m_policy.parties[party->index].members) {
                        add_sorted(matcher.ids, member);
                    }
                }
            }
        }
        return matcher;
    }

    Matcher resolve_data(const ast::MatchClause& clause) {
        Matcher matcher{true, clause.negated, {}, 0};
        for (const ast::Selector& item : clause.items) {
            if (item.qualifier == "sensitivity") {
                matcher.attributes |= bit(static_cast<std::uint8_t>(
                    resolve_value(item.name, sensitivity_spellings, "sensitivity")));
            } else if (plain_item(item, "data")) {
                if (auto category = lookup(item.name, {SymbolKind::category}, "category")) {
                    add_sorted(matcher.ids, category->index);
                }
            }
        }
        return matcher;
    }

    Matcher resolve_kinds(const ast::MatchClause& clause) {
        Matcher matcher{true, clause.negated, {}, 0};
        for (const ast::Selector& item : clause.items) {
            if (plain_item(item, "kind")) {
                matcher.attributes |= bit(static_cast<std::uint8_t>(
                    resolve_value(item.name, flow_kind_spellings, "kind")));
            }
        }
        return matcher;
    }

    // A permit may not name recipients or categories that its activities do not list.
    void check_within_activities(const Rule& rule, const ClauseRefs& refs) {
        std::vector<Id> recipients;
        std::vector<Id> categories;
        for (Id a : rule.activity.ids) {
            for (Id party : m_policy.activities[a].recipients) {
                add_sorted(recipients, party);
                for (Id member : m_policy.parties[party].members) {
                    add_sorted(recipients, member);
                }
            }
            for (Id category : m_policy.activities[a].categories) {
                add_sorted(categories, category);
            }
        }
        std::string activity_names;
        for (Id a : rule.activity.ids) {
            activity_names +=
                (activity_names.empty() ? "'" : ", '") + m_policy.activities[a].id + "'";
        }
        std::string_view plural = rule.activity.ids.size() > 1 ? "activities " : "activity ";
        if (const ast::MatchClause* clause = refs.match[slot_to]; clause && !clause->negated) {
            for (const ast::Selector& item : clause->items) {
                auto it = m_symbols.find(item.name.text);
                if (!item.qualifier.empty() || it == m_symbols.end() ||
                    (it->second.kind != SymbolKind::party &&
                     it->second.kind != SymbolKind::party_class)) {
                    continue;
                }
                if (!contains(recipients, it->second.index)) {
                    error(item.name, "'" + item.name.text + "' is not a recipient of " +
                                         std::string(plural) + activity_names);
                }
            }
        }
        if (const ast::MatchClause* clause = refs.match[slot_data]; clause && !clause->negated) {
            for (const ast::Selector& item : clause->items) {
                auto it = m_symbols.find(item.name.text);
                if (!item.qualifier.empty() || it == m_symbols.end() ||
                    it->second.kind != SymbolKind::category) {
                    continue;
                }
                if (!contains(categories, it->second.index)) {
                    error(item.name, "'" + item.name.text + "' is not among the data of " +
                                         std::string(plural) + activity_names);
                }
            }
        }
    }

    // --- conditions ------------------------------------------------------------

    // Appends the nodes of `condition` to `out` and returns its text.
    std::string compile_condition(const ast::Condition& condition, Condition& out) {
        std::vector<std::uint32_t> alternatives;
        std::string text;
        for (const ast::Conjunction& conjunction : condition.any_of) {
            std::vector<std::uint32_t> terms;
            std::string conjunction_text;
            for (const ast::Term& term : conjunction.all_of) {
                std::string term_text = compile_term(term, out);
                conjunction_text += (conjunction_text.empty() ? "" : " and ") + term_text;
                terms.push_back(static_cast<std::uint32_t>(out.nodes.size() - 1));
            }
            if (terms.size() != 1) {
                out.nodes.push_back({ConditionNode::Op::all, std::move(terms), {}});
            }
            alternatives.push_back(static_cast<std::uint32_t>(out.nodes.size() - 1));
            text += (text.empty() ? "" : " or ") + conjunction_text;
        }
        if (alternatives.size() != 1) {
            out.nodes.push_back({ConditionNode::Op::any, std::move(alternatives), {}});
        }
        return text;
    }

    std::string compile_term(const ast::Term& term, Condition& out) {
        return boost::apply_visitor(
            [&](const auto& item) -> std::string {
                using T = std::decay_t<decltype(item)>;
                if constexpr (std::is_same_v<T, ast::ContextTest>) {
                    return compile_test(item, out);
                } else if constexpr (std::is_same_v<T, ast::x3::forward_ast<ast::Negation>>) {
                    std::string inner = compile_term(item.get().operand, out);
                    auto operand = static_cast<std::uint32_t>(out.nodes.size() - 1);
                    out.nodes.push_back({ConditionNode::Op::negate, {operand}, {}});
                    return "not " + inner;
                } else {
                    const ast::Condition& nested = item.get();
                    std::string inner = compile_condition(nested, out);
                    return nested.any_of.size() > 1 ||
                                   (nested.any_of.size() == 1 && nested.any_of[0].all_of.size() > 1)
                               ? "(" + inner + ")"
                               : inner;
                }
            },
            term);
    }

    std::string compile_test(const ast::ContextTest& test, Condition& out) {
        const std::string& key = test.key.text;
        ConditionNode node;
        std::string text = key;
        if (key == "consent") {
            node.op = ConditionNode::Op::consent;
        } else if (key == "objection") {
            node.op = ConditionNode::Op::objection;
        } else if (key == "legal_basis") {
            node.op = test.in ? ConditionNode::Op::legal_basis_in : ConditionNode::Op::legal_basis;
        } else {
            error(test.key,
                  "unknown context key '" + key + "' (expected consent, objection or legal_basis)");
        }
        if (test.in) {
            if (key != "legal_basis") {
                error(test.key, "only 'legal_basis' takes 'in [...]'");
            }
            text += " in [";
            for (const ast::Name& name : *test.in) {
                text += (text.back() == '[' ? "" : ", ") + name.text;
                if (auto ground = lookup(name, {SymbolKind::ground}, "ground")) {
                    add_sorted(node.grounds, ground->index);
                }
            }
            text += "]";
        }
        out.nodes.push_back(std::move(node));
        return text;
    }

    // --- pass 4: permits a forbid always cancels ----------------------------------

    // The concrete values a matcher can match over one dimension's domain; `attribute`
    // gives each value's attribute bit. `with_none` adds `no_id` (no activity).
    template <typename Attribute>
    std::vector<Id> match_set(const Matcher& matcher, std::size_t domain, bool with_none,
                              Attribute attribute) const {
        std::vector<Id> out;
        for (Id value = 0; value < domain; ++value) {
            if (matcher.matches(value, attribute(value))) {
                out.push_back(value);
            }
        }
        if (with_none && matcher.matches(no_id, 0)) {
            out.push_back(no_id);
        }
        return out;
    }

    struct MatchSets {
        std::vector<Id> purpose, activity, recipient, data, kind;
    };

    MatchSets match_sets(const Rule& rule) const {
        MatchSets sets;
        auto none = [](Id) {
            return 0u;
        };
        sets.purpose = match_set(rule.purpose, m_policy.purposes.size(), false, none);
        sets.activity = match_set(rule.activity, m_policy.activities.size(), true, none);
        sets.recipient = match_set(rule.recipient, m_policy.parties.size(), false, [&](Id p) {
            return bit(static_cast<std::uint8_t>(m_policy.parties[p].role));
        });
        sets.data = match_set(rule.data, m_policy.categories.size(), false, [&](Id c) {
            return bit(static_cast<std::uint8_t>(m_policy.categories[c].sensitivity));
        });
        // Kinds are the values 0..7 with themselves as attribute, plus "no activity".
        sets.kind = match_set(rule.kind, flow_kind_spellings.size(), true,
                              [](Id k) { return bit(static_cast<std::uint8_t>(k)); });
        return sets;
    }

    // A permit's sets narrowed by what a request can combine: an activity belongs to
    // one purpose (no activity only for a purpose without any), and fixes the kind.
    MatchSets permit_sets(const Rule& rule) const {
        MatchSets sets = match_sets(rule);
        std::vector<Id> activities;
        for (Id p : sets.purpose) {
            const Purpose& purpose = m_policy.purposes[p];
            for (Id a : purpose.activities) {
                if (contains(sets.activity, a)) {
                    add_sorted(activities, a);
                }
            }
            if (purpose.activities.empty() && contains(sets.activity, no_id)) {
                add_sorted(activities, no_id);
            }
        }
        std::vector<Id> kinds;
        for (Id a : activities) {
            Id kind = a == no_id ? no_id : static_cast<Id>(m_policy.activities[a].kind);
            if (contains(sets.kind, kind)) {
                add_sorted(kinds, kind);
            }
        }
        sets.activity = std::move(activities);
        sets.kind = std::move(kinds);
        return sets;
    }

    static bool subset(const std::vector<Id>& a, const std::vector<Id>& b) {
        return std::includes(b.begin(), b.end(), a.begin(), a.end());
    }

    void check_conflicts() {
        if (!m_diagnostics.empty()) {
            return; // the model is incomplete; any finding could be a false positive
        }
        std::vector<std::pair<const Rule*, MatchSets>> forbids;
        for (const Rule& rule : m_policy.rules) {
            if (rule.effect == ast::Effect::forbid && rule.condition.nodes.empty()) {
                forbids.emplace_back(&rule, match_sets(rule));
            }
        }
        if (forbids.empty()) {
            return;
        }
        for (std::size_t i = 0; i < m_policy.rules.size(); ++i) {
            const Rule& rule = m_policy.rules[i];
            if (rule.effect != ast::Effect::permit) {
                continue;
            }
            MatchSets sets = permit_sets(rule);
            for (const auto& [forbid, forbid_sets] : forbids) {
                if (subset(sets.purpose, forbid_sets.purpose) &&
                    subset(sets.activity, forbid_sets.activity) &&
                    subset(sets.recipient, forbid_sets.recipient) &&
                    subset(sets.data, forbid_sets.data) && subset(sets.kind, forbid_sets.kind)) {
                    const ast::Rule& node = *m_rule_nodes[i];
                    error(node.id, "permit '" + rule.id + "' is always cancelled by forbid '" +
                                       forbid->id + "' (" + forbid->file + ':' +
                                       std::to_string(forbid->line) + ")");
                    break;
                }
            }
        }
    }

    const SourceSet& m_sources;
    const std::vector<ast::File>& m_files;
    // Syntax errors dropped declarations: a name may be unknown only because of them.
    bool m_incomplete = false;
    CheckedPolicy m_policy;
    Diagnostics m_diagnostics;
    std::unordered_map<std::string, Symbol> m_symbols;
    std::vector<const ast::Category*> m_categories;
    std::vector<const ast::Name*> m_party_roles;
    std::vector<const ast::Members*> m_members;
    std::vector<const ast::Alias*> m_aliases;
    std::vector<const ast::Activity*> m_activity_nodes;
    std::vector<const ast::Rule*> m_rule_nodes;
};

} // namespace

bool Matcher::matches(Id value, std::uint32_t attribute_bit) const {
    if (!present) {
        return true;
    }
    bool hit =
        (attributes & attribute_bit) != 0 || std::binary_search(ids.begin(), ids.end(), value);
    return hit != negated;
}

CheckResult check(const SourceSet& sources, const std::vector<ast::File>& files,
                  bool declarations_may_be_missing) {
    return Checker(sources, files, declarations_may_be_missing).run();
}

} // namespace flowgate::dsl
