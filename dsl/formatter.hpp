// The canonical text of a policy file (`flowgate policy fmt`). Generated and hand-written
// policies are read side by side in reviews, so there is one layout for both, and it keeps
// the authors' comments, which the AST does not hold.
#pragma once

#include "ast.hpp"
#include "diagnostic.hpp"
#include "source.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace flowgate::dsl {

// The canonical text of `file`, which was parsed from `source` (whose text supplies the
// comments). One declaration per line; purposes and rules as blocks with clauses and
// activities indented by two spaces; a blank line between blocks and between runs of
// declarations of different kinds; LF line ends and a final newline. Every comment is
// kept, on its own line, before the declaration, activity or clause it preceded (a
// comment at the end of a line moves above the thing that line holds).
//
// Formatting is idempotent, and the result parses to the same AST (positions aside).
std::string format_policy_file(const ast::File& file, const SourceFile& source);

// A label as the language writes it: in double quotes, with `"` and `\` escaped. The
// formatter and the table compiler both write labels through it.
std::string label_literal(std::string_view text);

// Parses `text` and formats it. On a syntax error returns nothing and appends the
// diagnostics; `path` names the file in them.
std::optional<std::string> format_policy_text(std::string path, std::string text,
                                              Diagnostics& diagnostics);

} // namespace flowgate::dsl
