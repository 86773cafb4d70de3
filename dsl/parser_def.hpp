// The policy grammar (docs/policy-language.md) in Boost.Spirit X3. It is kept apart from
// parser.hpp so that only parser.cpp pays for X3's compile time; nothing else may include
// this file. Rule names are part of the user interface: an expectation failure prints
// "expected <rule name>", so each rule is named the way a policy author thinks of it.
#pragma once

#include "ast.hpp"
#include "vocabulary.hpp"

#include <boost/fusion/include/adapt_struct.hpp>
#include <boost/spirit/home/x3.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

BOOST_FUSION_ADAPT_STRUCT(flowgate::dsl::ast::Category, id, label, sensitivity)
BOOST_FUSION_ADAPT_STRUCT(flowgate::dsl::ast::Party, id, label, role)
BOOST_FUSION_ADAPT_STRUCT(flowgate::dsl::ast::PartyClass, id, label, role)
BOOST_FUSION_ADAPT_STRUCT(flowgate::dsl::ast::Members, party_class, members)
BOOST_FUSION_ADAPT_STRUCT(flowgate::dsl::ast::Ground, id, label)
BOOST_FUSION_ADAPT_STRUCT(flowgate::dsl::ast::Obligation, id, label)
BOOST_FUSION_ADAPT_STRUCT(flowgate::dsl::ast::Alias, target, label)
BOOST_FUSION_ADAPT_STRUCT(flowgate::dsl::ast::Activity, id, label, kind, recipients, data)
BOOST_FUSION_ADAPT_STRUCT(flowgate::dsl::ast::Purpose, id, label, activities)
BOOST_FUSION_ADAPT_STRUCT(flowgate::dsl::ast::Selector, qualifier, name)
BOOST_FUSION_ADAPT_STRUCT(flowgate::dsl::ast::MatchClause, dimension, negated, items)
BOOST_FUSION_ADAPT_STRUCT(flowgate::dsl::ast::ContextTest, key, in)
BOOST_FUSION_ADAPT_STRUCT(flowgate::dsl::ast::Source, row, case_label)
BOOST_FUSION_ADAPT_STRUCT(flowgate::dsl::ast::Rule, effect, id, clauses)

namespace flowgate::dsl::parser {

namespace x3 = boost::spirit::x3;

using Iterator = const char*;

// What the annotation handler needs to turn an iterator into a position; injected into
// the parse with x3::with<position_tag>.
struct position_tag;
struct PositionInfo {
    Iterator begin;
    std::uint32_t file = 0;
};

// Every rule ID derives from this, so every ast::Located node learns where it starts
// (after white space and comments, which X3 skips before calling on_success).
struct annotate_position {
    template <typename Attribute, typename Context>
    void on_success(Iterator const& first, Iterator const& /*last*/, Attribute& node,
                    Context const& context) const {
        if constexpr (std::is_base_of_v<ast::Located, Attribute>) {
            const PositionInfo& where = x3::get<position_tag>(context);
            node.file = where.file;
            node.offset = static_cast<std::uint32_t>(first - where.begin);
        }
    }
};

inline bool is_identifier_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// A keyword matches only as a whole word: `partyx` is an identifier, not `party` + `x`.
struct keyword_parser : x3::parser<keyword_parser> {
    using attribute_type = x3::unused_type;
    static bool const has_attribute = false;

    constexpr explicit keyword_parser(std::string_view keyword) : word(keyword) {}

    template <typename Context, typename RContext, typename Attribute>
    bool parse(Iterator& first, Iterator const& last, Context const& context, RContext&,
               Attribute&) const {
        x3::skip_over(first, last, context);
        Iterator it = first;
        for (char c : word) {
            if (it == last || *it != c) {
                return false;
            }
            ++it;
        }
        if (it != last && is_identifier_char(*it)) {
            return false;
        }
        first = it;
        return true;
    }

    std::string_view word;
};

// A reserved word as a parser. Only a word of vocabulary.hpp's lists compiles, so the
// grammar cannot give meaning to a word that an identifier may still be.
consteval keyword_parser kw(std::string_view word) {
    if (!is_keyword(word)) {
        throw "kw() takes only a reserved word of vocabulary.hpp";
    }
    return keyword_parser(word);
}

} // namespace flowgate::dsl::parser

namespace boost::spirit::x3 {
// Keywords name themselves in "expected ..." messages, quoted like literal characters.
template <> struct get_info<flowgate::dsl::parser::keyword_parser> {
    using result_type = std::string;
    std::string operator()(const flowgate::dsl::parser::keyword_parser& parser) const {
        return '\'' + std::string(parser.word) + '\'';
    }
};
// A parser with a semantic action is named after the parser it acts on, so that
// `'when' > condition[...]` still says "expected condition".
template <typename Subject, typename Action> struct get_info<action<Subject, Action>> {
    using result_type = std::string;
    std::string operator()(const action<Subject, Action>& parser) const {
        return what(parser.subject);
    }
};
} // namespace boost::spirit::x3

namespace flowgate::dsl::parser {

// White space (CR included, for CRLF files) and `#` or `//` comments to the end of the line.
inline auto const skipper =
    x3::char_(" \t\r\n\f\v") | ((x3::lit('#') | x3::lit("//")) >> *(x3::char_ - '\n'));

// Assigns the attribute of the parser it is attached to to one member of the rule's node;
// used for nodes with a single member, where X3's fusion adaptation is unreliable.
template <typename Node, typename Member> auto set_member(Member Node::*member) {
    return [member](auto& context) {
        x3::_val(context).*member = std::move(x3::_attr(context));
    };
}

// --- rule IDs ---------------------------------------------------------------------------

struct identifier_class : annotate_position {};
struct label_class : annotate_position {};
struct label_text_class : annotate_position {};
struct label_end_class : annotate_position {};
struct escape_class : annotate_position {};
struct escaped_char_class : annotate_position {};
struct name_list_class : annotate_position {};
struct row_number_class : annotate_position {};
struct category_class : annotate_position {};
struct party_class : annotate_position {};
struct party_class_class : annotate_position {};
struct members_class : annotate_position {};
struct ground_class : annotate_position {};
struct obligation_class : annotate_position {};
struct alias_class : annotate_position {};
struct activity_class : annotate_position {};
struct activity_or_close_class : annotate_position {};
struct purpose_class : annotate_position {};
struct effect_class : annotate_position {};
struct dimension_class : annotate_position {};
struct qualifier_class : annotate_position {};
struct selector_class : annotate_position {};
struct selector_list_class : annotate_position {};
struct match_clause_class : annotate_position {};
struct context_test_class : annotate_position {};
struct negation_class : annotate_position {};
struct parenthesized_class : annotate_position {};
struct term_class : annotate_position {};
struct conjunction_class : annotate_position {};
struct conjunction_list_class : annotate_position {};
struct term_list_class : annotate_position {};
struct condition_class : annotate_position {};
struct when_clause_class : annotate_position {};
struct basis_clause_class : annotate_position {};
struct oblige_clause_class : annotate_position {};
struct source_clause_class : annotate_position {};
struct because_clause_class : annotate_position {};
struct clause_class : annotate_position {};
struct clause_or_close_class : annotate_position {};
struct rule_class : annotate_position {};
struct declaration_class : annotate_position {};

// Rules whose definition ends in a semantic action get no attribute to annotate (X3
// passes them `unused`), so each is wrapped by a plain rule that does the annotating.
struct identifier_body_class;
struct label_body_class;
struct negation_body_class;
struct conjunction_body_class;
struct condition_body_class;
struct when_clause_body_class;
struct basis_clause_body_class;
struct oblige_clause_body_class;
struct because_clause_body_class;

// --- rules ------------------------------------------------------------------------------

// The names of the two label rules that fail inside a label; parser.cpp words their
// errors differently and does not skip white space before pointing at them.
inline constexpr const char* label_end_name = "'\"' to end the label";
inline constexpr const char* escaped_char_name = "'\"' or '\\' after '\\' in a label";

x3::rule<identifier_class, ast::Name> const identifier = "identifier";
x3::rule<label_class, ast::Label> const label = "label";
x3::rule<label_text_class, std::string> const label_text = "label";
x3::rule<label_end_class> const label_end = label_end_name;
x3::rule<escape_class, char> const escape = "escape";
x3::rule<escaped_char_class, char> const escaped_char = escaped_char_name;
x3::rule<name_list_class, std::vector<ast::Name>> const name_list = "identifier";
x3::rule<row_number_class, std::uint32_t> const row_number = "row number";

x3::rule<category_class, ast::Category> const category = "category declaration";
x3::rule<party_class, ast::Party> const party = "party declaration";
x3::rule<party_class_class, ast::PartyClass> const party_class = "class declaration";
x3::rule<members_class, ast::Members> const members = "members declaration";
x3::rule<ground_class, ast::Ground> const ground = "ground declaration";
x3::rule<obligation_class, ast::Obligation> const obligation = "obligation declaration";
x3::rule<alias_class, ast::Alias> const alias = "alias declaration";
x3::rule<activity_class, ast::Activity> const activity = "activity";
x3::rule<activity_or_close_class> const activity_or_close = "activity or '}'";
x3::rule<purpose_class, ast::Purpose> const purpose = "purpose declaration";

x3::rule<effect_class, ast::Effect> const effect = "'permit' or 'forbid'";
x3::rule<dimension_class, ast::Dimension> const dimension = "match clause";
x3::rule<qualifier_class, std::string> const qualifier = "selector";
x3::rule<selector_class, ast::Selector> const selector = "selector";
x3::rule<selector_list_class, std::vector<ast::Selector>> const selector_list = "selector";
x3::rule<match_clause_class, ast::MatchClause> const match_clause = "match clause";
x3::rule<context_test_class, ast::ContextTest> const context_test = "condition";
x3::rule<negation_class, ast::Negation> const negation = "negation";
x3::rule<parenthesized_class, ast::Condition> const parenthesized = "parenthesized condition";
x3::rule<term_class, ast::Term> const term = "condition";
x3::rule<term_list_class, std::vector<ast::Term>> const term_list = "condition";
x3::rule<conjunction_class, ast::Conjunction> const conjunction = "condition";
x3::rule<conjunction_list_class, std::vector<ast::Conjunction>> const conjunction_list =
    "condition";
x3::rule<condition_class, ast::Condition> const condition = "condition";
x3::rule<when_clause_class, ast::WhenClause> const when_clause = "when clause";
x3::rule<basis_clause_class, ast::BasisClause> const basis_clause = "basis clause";
x3::rule<oblige_clause_class, ast::ObligeClause> const oblige_clause = "oblige clause";
x3::rule<source_clause_class, ast::Source> const source_clause = "source clause";
x3::rule<because_clause_class, ast::BecauseClause> const because_clause = "because clause";
x3::rule<clause_class, ast::Clause> const clause = "clause";
x3::rule<clause_or_close_class> const clause_or_close = "clause or '}'";
x3::rule<rule_class, ast::Rule> const rule = "rule";
x3::rule<declaration_class, ast::Declaration> const declaration = "declaration";
x3::rule<identifier_body_class, ast::Name> const identifier_body = "identifier";
x3::rule<label_body_class, ast::Label> const label_body = "label";
x3::rule<negation_body_class, ast::Negation> const negation_body = "negation";
x3::rule<conjunction_body_class, ast::Conjunction> const conjunction_body = "condition";
x3::rule<condition_body_class, ast::Condition> const condition_body = "condition";
x3::rule<when_clause_body_class, ast::WhenClause> const when_clause_body = "when clause";
x3::rule<basis_clause_body_class, ast::BasisClause> const basis_clause_body = "basis clause";
x3::rule<oblige_clause_body_class, ast::ObligeClause> const oblige_clause_body = "oblige clause";
x3::rule<because_clause_body_class, ast::BecauseClause> const because_clause_body =
    "because clause";

// --- lexical ----------------------------------------------------------------------------

inline auto const set_identifier = [](auto& context) {
    auto const& range = x3::_attr(context);
    std::string text(range.begin(), range.end());
    if (is_keyword(text)) {
        x3::_pass(context) = false; // keywords are reserved
        return;
    }
    x3::_val(context).text = std::move(text);
};

auto const identifier_body_def =
    x3::raw[x3::lexeme[x3::char_("A-Za-z_") >> *x3::char_("A-Za-z0-9_")]][set_identifier];

auto const label_body_def = label_text[set_member(&ast::Label::text)];
auto const label_text_def =
    x3::lexeme[x3::lit('"') > *(escape | ~x3::char_("\"\\\r\n")) > label_end];
auto const label_end_def = x3::lit('"');
auto const escape_def = x3::lit('\\') > escaped_char;
auto const escaped_char_def = x3::char_("\"\\");

auto const name_list_def = identifier > *(x3::lit(',') > identifier);
auto const row_number_def = x3::uint32;

// --- declarations -----------------------------------------------------------------------

auto const category_def = kw("category") > identifier > label > kw("sensitivity") > identifier >
                          ';';
auto const party_def = kw("party") > identifier > label > kw("role") > identifier > ';';
auto const party_class_def = kw("class") > identifier > label > kw("role") > identifier > ';';
auto const members_def = kw("members") > identifier > '[' > name_list > ']' > ';';
auto const ground_def = kw("ground") > identifier > label > ';';
auto const obligation_def = kw("obligation") > identifier > label > ';';
auto const alias_def = kw("alias") > identifier > label > ';';

auto const activity_def = kw("activity") > identifier > label > kw("kind") > identifier > kw("to") >
                          '[' > name_list > ']' > kw("data") > '[' > name_list > ']' > ';';
auto const activity_or_close_def = x3::lit('}');
auto const purpose_def = kw("purpose") > identifier > label > '{' > *activity > activity_or_close;

// --- rules and their clauses ------------------------------------------------------------

auto const effect_def = (kw("permit") >> x3::attr(ast::Effect::permit)) |
                        (kw("forbid") >> x3::attr(ast::Effect::forbid));

auto const dimension_def = (kw("purpose") >> x3::attr(ast::Dimension::purpose)) |
                           (kw("activity") >> x3::attr(ast::Dimension::activity)) |
                           (kw("to") >> x3::attr(ast::Dimension::recipient)) |
                           (kw("data") >> x3::attr(ast::Dimension::data)) |
                           (kw("kind") >> x3::attr(ast::Dimension::kind));
auto const qualifier_def = (kw("role") >> x3::attr(std::string("role"))) |
                           (kw("sensitivity") >> x3::attr(std::string("sensitivity"))) |
                           x3::attr(std::string());
auto const selector_def = qualifier > identifier;
auto const selector_list_def = selector > *(x3::lit(',') > selector);
auto const match_clause_def = dimension > x3::matches[kw("not")] > selector_list > ';';

auto const context_test_def = identifier >> -(kw("in") > '[' > name_list > ']');
auto const negation_body_def = kw("not") > term[set_member(&ast::Negation::operand)];
auto const parenthesized_def = x3::lit('(') > condition > ')';
auto const term_def = negation | parenthesized | context_test;
auto const term_list_def = term > *(kw("and") > term);
auto const conjunction_body_def = term_list[set_member(&ast::Conjunction::all_of)];
auto const conjunction_list_def = conjunction > *(kw("or") > conjunction);
auto const condition_body_def = conjunction_list[set_member(&ast::Condition::any_of)];

auto const when_clause_body_def =
    kw("when") > condition[set_member(&ast::WhenClause::condition)] > ';';
auto const basis_clause_body_def =
    kw("basis") > identifier[set_member(&ast::BasisClause::ground)] > ';';
auto const oblige_clause_body_def =
    kw("oblige") > name_list[set_member(&ast::ObligeClause::obligations)] > ';';
auto const source_clause_def = kw("source") > kw("row") > row_number > kw("case") > label > ';';
auto const because_clause_body_def =
    kw("because") > label[set_member(&ast::BecauseClause::text)] > ';';

auto const clause_def =
    match_clause | when_clause | basis_clause | oblige_clause | source_clause | because_clause;
auto const clause_or_close_def = x3::lit('}');
auto const rule_def = effect > identifier > '{' > *clause > clause_or_close;

auto const declaration_def =
    category | party | party_class | members | ground | obligation | purpose | alias | rule;

// The annotated wrappers.
auto const identifier_def = identifier_body;
auto const label_def = label_body;
auto const negation_def = negation_body;
auto const conjunction_def = conjunction_body;
auto const condition_def = condition_body;
auto const when_clause_def = when_clause_body;
auto const basis_clause_def = basis_clause_body;
auto const oblige_clause_def = oblige_clause_body;
auto const because_clause_def = because_clause_body;

BOOST_SPIRIT_DEFINE(identifier_body, label_body, negation_body, conjunction_body, condition_body,
                    when_clause_body, basis_clause_body, oblige_clause_body, because_clause_body,
                    identifier, label, label_text, label_end, escape, escaped_char, name_list,
                    row_number, category, party, party_class, members, ground, obligation, alias,
                    activity, activity_or_close, purpose, effect, dimension, qualifier, selector,
                    selector_list, match_clause, context_test, negation, parenthesized, term,
                    term_list, conjunction, conjunction_list, condition, when_clause, basis_clause,
                    oblige_clause, source_clause, because_clause, clause, clause_or_close, rule,
                    declaration)

} // namespace flowgate::dsl::parser
