// The words of the policy language, each list written once: the reserved words, and the
// spelling of every sensitivity, party role and activity kind beside its enum value. The
// grammar, the checker, the table compiler and the JSON answers all read these lists, so
// a word cannot be reserved, accepted or printed in one of them and not in another. A
// list's order is the order a message naming its words uses.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace flowgate::dsl {

// --- reserved words -----------------------------------------------------------------

// The words that begin a declaration; after a syntax error the parser resumes at a line
// that starts with one.
inline constexpr std::array<std::string_view, 10> declaration_keywords = {
    "category",   "party",   "class", "members", "ground",
    "obligation", "purpose", "alias", "permit",  "forbid"};

// The other reserved words: those that stand inside a declaration or a rule.
inline constexpr std::array<std::string_view, 17> inner_keywords = {
    "activity", "sensitivity", "role", "kind",    "to",  "data", "when", "basis", "oblige",
    "source",   "row",         "case", "because", "not", "and",  "or",   "in"};

// True for the language's reserved words, which may not name anything.
constexpr bool is_keyword(std::string_view text) {
    return std::find(declaration_keywords.begin(), declaration_keywords.end(), text) !=
               declaration_keywords.end() ||
           std::find(inner_keywords.begin(), inner_keywords.end(), text) != inner_keywords.end();
}

// --- values and their spellings -------------------------------------------------------

enum class Sensitivity : std::uint8_t { ordinary, special_care, specific };
enum class Role : std::uint8_t {
    internal,
    contractor,
    joint_user,
    third_party,
    public_body,
    insurer,
    subject
};
enum class FlowKind : std::uint8_t {
    internal,
    outsource,
    joint,
    provide,
    report,
    linkage,
    notify,
    receive
};

// One enum value and the word a policy writes for it.
template <typename Enum> struct Spelling {
    Enum value;
    std::string_view word;
};

inline constexpr std::array<Spelling<Sensitivity>, 3> sensitivity_spellings = {{
    {Sensitivity::ordinary, "ordinary"},
    {Sensitivity::special_care, "special_care"},
    {Sensitivity::specific, "specific"},
}};

inline constexpr std::array<Spelling<Role>, 7> role_spellings = {{
    {Role::internal, "internal"},
    {Role::contractor, "contractor"},
    {Role::joint_user, "joint_user"},
    {Role::third_party, "third_party"},
    {Role::public_body, "public_body"},
    {Role::insurer, "insurer"},
    {Role::subject, "subject"},
}};

inline constexpr std::array<Spelling<FlowKind>, 8> flow_kind_spellings = {{
    {FlowKind::internal, "internal"},
    {FlowKind::outsource, "outsource"},
    {FlowKind::joint, "joint"},
    {FlowKind::provide, "provide"},
    {FlowKind::report, "report"},
    {FlowKind::linkage, "linkage"},
    {FlowKind::notify, "notify"},
    {FlowKind::receive, "receive"},
}};

// Each list holds its enum's values in the enum's order, so that a value's spelling is
// found by its number and the checker can take a value's number as its attribute bit.
template <typename Enum, std::size_t N>
constexpr bool in_enum_order(const std::array<Spelling<Enum>, N>& spellings) {
    for (std::size_t i = 0; i < N; ++i) {
        if (static_cast<std::size_t>(spellings[i].value) != i) {
            return false;
        }
    }
    return true;
}
static_assert(in_enum_order(sensitivity_spellings));
static_assert(in_enum_order(role_spellings));
static_assert(in_enum_order(flow_kind_spellings));

// The value `word` spells in `spellings`; nullopt when it spells none.
template <typename Enum, std::size_t N>
constexpr std::optional<Enum> spelled_value(const std::array<Spelling<Enum>, N>& spellings,
                                            std::string_view word) {
    for (const Spelling<Enum>& spelling : spellings) {
        if (spelling.word == word) {
            return spelling.value;
        }
    }
    return std::nullopt;
}

constexpr std::string_view to_string(Sensitivity value) {
    return sensitivity_spellings[static_cast<std::size_t>(value)].word;
}
constexpr std::string_view to_string(Role value) {
    return role_spellings[static_cast<std::size_t>(value)].word;
}
constexpr std::string_view to_string(FlowKind value) {
    return flow_kind_spellings[static_cast<std::size_t>(value)].word;
}

constexpr std::optional<Sensitivity> parse_sensitivity(std::string_view text) {
    return spelled_value(sensitivity_spellings, text);
}
constexpr std::optional<Role> parse_role(std::string_view text) {
    return spelled_value(role_spellings, text);
}
constexpr std::optional<FlowKind> parse_flow_kind(std::string_view text) {
    return spelled_value(flow_kind_spellings, text);
}

} // namespace flowgate::dsl
