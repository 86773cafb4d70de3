// The syntax tree of a policy file, as the parser produces it and the checker and
// formatter read it. It holds text exactly as written (names are not resolved here);
// every node that a diagnostic may point at carries its source position.
#pragma once

#include <boost/spirit/home/x3/support/ast/position_tagged.hpp>
#include <boost/spirit/home/x3/support/ast/variant.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace flowgate::dsl::ast {

namespace x3 = boost::spirit::x3;

// Where a node starts: the file's index in its SourceSet and the byte offset in that
// file. The parser's annotation handler fills it; line and column are derived only
// when a diagnostic is printed (see source.hpp).
struct Located : x3::position_tagged {
    std::uint32_t file = 0;
    std::uint32_t offset = 0;
};

// An identifier as written, with its position.
struct Name : Located {
    std::string text;
};

// A double-quoted label, unescaped.
struct Label : Located {
    std::string text;
};

// --- declarations ---------------------------------------------------------

struct Category : Located {
    Name id;
    Label label;
    Name sensitivity; // spells a Sensitivity (vocabulary.hpp)
};

struct Party : Located {
    Name id;
    Label label;
    Name role;
};

struct PartyClass : Located {
    Name id;
    Label label;
    Name role;
};

struct Members : Located {
    Name party_class;
    std::vector<Name> members;
};

struct Ground : Located {
    Name id;
    Label label;
};

struct Obligation : Located {
    Name id;
    Label label;
};

struct Activity : Located {
    Name id;
    Label label;
    Name kind;
    std::vector<Name> recipients;
    std::vector<Name> data;
};

struct Purpose : Located {
    Name id;
    Label label;
    std::vector<Activity> activities;
};

// `alias TARGET "label";`: one more label for a declared purpose, party, class,
// category or ground — the word a table or a clerk uses for it.
struct Alias : Located {
    Name target;
    Label label;
};

// --- rules ------------------------------------------------------------------

// One item of a match clause: a plain name, or `role R` / `sensitivity S`.
struct Selector : Located {
    std::string qualifier; // "", "role" or "sensitivity"
    Name name;
};

enum class Dimension { purpose, activity, recipient, data, kind };

struct MatchClause : Located {
    Dimension dimension = Dimension::purpose;
    bool negated = false;
    std::vector<Selector> items;
};

// Conditions on the request's context. `not` binds tightest, then `and`, then `or`.
struct Condition;
struct Negation;

// `consent`, `objection`, `legal_basis`, or `legal_basis in [G, ...]`.
struct ContextTest : Located {
    Name key;
    std::optional<std::vector<Name>> in;
};

struct Term : x3::variant<ContextTest, x3::forward_ast<Negation>, x3::forward_ast<Condition>> {
    using base_type::base_type;
    using base_type::operator=;
};

struct Negation : Located {
    Term operand;
};

struct Conjunction : Located {
    std::vector<Term> all_of; // joined by `and`
};

struct Condition : Located {
    std::vector<Conjunction> any_of; // joined by `or`
};

struct Source : Located {
    std::uint32_t row = 0;
    Label case_label;
};

enum class Effect { permit, forbid };

// Clauses in the order written; the checker enforces "at most once each".
struct WhenClause : Located {
    Condition condition;
};
struct BasisClause : Located {
    Name ground;
};
struct ObligeClause : Located {
    std::vector<Name> obligations;
};
struct BecauseClause : Located {
    Label text;
};

using Clause =
    x3::variant<MatchClause, WhenClause, BasisClause, ObligeClause, Source, BecauseClause>;

struct Rule : Located {
    Effect effect = Effect::permit;
    Name id;
    std::vector<Clause> clauses;
};

using Declaration =
    x3::variant<Category, Party, PartyClass, Members, Ground, Obligation, Purpose, Alias, Rule>;

// One parsed file.
struct File {
    std::vector<Declaration> declarations;
};

} // namespace flowgate::dsl::ast
