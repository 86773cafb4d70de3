// Names as people type them. A clerk in a Japanese office, a script and a spreadsheet
// write the same name in many ways: `（株）ＰＲＥＶＥＮＴ` with full-width letters and
// parentheses, `㈱PREVENT` with one character, half-width katakana, 第２７条 with
// full-width digits, spaces inside and around. Every name a policy declares and every
// name a request (or the table) gives is matched by its folded form: Unicode NFKC (ICU's
// normalizer, not tables of our own) with every white-space character removed. What a
// policy declares is printed as written; only matching uses the folded text.
//
// This header is also the policy tools' way to the same rule: which declared names fold
// alike (the checker refuses them), and which declared names are nearest to one that is
// unknown (the evaluator suggests them).
#pragma once

#include "ast.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flowgate::dsl {

// The text `name` is matched by: NFKC, then every Unicode White_Space character removed.
// A name of plain ASCII without white space is its own folded form and costs no call to
// ICU. Ill-formed UTF-8 folds as ICU's normalizer leaves it (a request's names are
// well-formed: the protocol reads them from JSON).
std::string fold_name(std::string_view name);

// True when `name` is plain ASCII without white space, so fold_name(name) == name: the
// identifiers requests mostly give. Cheap (one pass over the bytes, no ICU).
bool folds_to_itself(std::string_view name) noexcept;

// The code points of UTF-8 text (an ill-formed byte is one, negative, value).
std::u32string code_points(std::string_view text);

// The Levenshtein distance between two texts, in code points (one edit is one character
// inserted, removed or replaced, whatever its UTF-8 length).
std::size_t edit_distance(std::string_view a, std::string_view b);
std::size_t edit_distance(std::u32string_view a, std::u32string_view b);

// How near a folded name is to another, for suggesting declared names in place of an
// unknown one: their edit distance, or nullopt when it is more than half the longer
// one's length (they have too little in common to be a slip) or `given` is longer than
// max_suggestion_length code points (a name that long is no slip, and ranking it would
// cost too much). Distance 0 is no suggestion either: the name was not unknown.
inline constexpr std::size_t max_suggestion_length = 256;
std::optional<std::size_t> name_distance(std::string_view given, std::string_view candidate);
// The same on code points, for ranking many candidates without decoding each again.
std::optional<std::size_t> name_distance(std::u32string_view given, std::u32string_view candidate);

// --- declared names -------------------------------------------------------------------

// What a declared name names. A class is a party: requests name both as recipients.
enum class NameKind : std::uint8_t { purpose, activity, party, category, ground, obligation };

// "purpose", "activity", "party", "category", "ground", "obligation".
std::string_view to_string(NameKind kind);

// How a thing is named: its identifier, its label, or an alias (a label declared apart
// by `alias`).
enum class NameForm : std::uint8_t { identifier, label, alias };

// One name of one declared thing, located where it is written.
struct DeclaredName {
    NameKind kind = NameKind::purpose;
    std::string owner; // the identifier of the thing it names
    std::string scope; // an activity's purpose identifier; empty for other kinds
    std::string text;  // as written
    NameForm form = NameForm::identifier;
    std::uint32_t file = 0; // index in the policy's SourceSet
    std::uint32_t offset = 0;
};

// Every identifier, label and alias the parsed files declare, in declaration order
// (file by file). An alias whose target is not declared (or is not a purpose, party,
// class, category or ground) is left out: the checker reports it. Empty labels are
// left out: they name nothing.
std::vector<DeclaredName> declared_names(const std::vector<ast::File>& files);

// Two names of two different things that fold to the same text; `first` is the earlier
// declared. Two identifiers are not among them (the checker's duplicate-name rule
// covers those), nor two activities of different purposes (a request names an activity
// within its purpose).
struct NameCollision {
    DeclaredName first;
    DeclaredName second;
    std::string folded;
};

// The names of `names` that fold like an earlier one, each with the first earlier
// name it collides with, in the order of the later name. A name that folds to nothing
// (a label of white space alone) is left out.
std::vector<NameCollision> names_that_fold_alike(const std::vector<DeclaredName>& names);

// "label '（株）PREVENT' of party 'prevent'", "activity 'x' of purpose 'p'", "alias
// '事業者' of party 'employer'": a declared name as a message names it.
std::string describe(const DeclaredName& name);

} // namespace flowgate::dsl
