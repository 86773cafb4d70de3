// Entry point of the policy grammar. The grammar itself (Boost.Spirit X3) lives in
// parser_def.hpp and is compiled once, in parser.cpp; nothing else includes X3.
#pragma once

#include "ast.hpp"
#include "diagnostic.hpp"
#include "source.hpp"

namespace flowgate::dsl {

// Parses file `file` of `sources` into `out`, appending one diagnostic per syntax
// error. After an error it resumes at the next declaration, so one run reports every
// syntax error of the file. Returns true when the file had none.
bool parse_file(const SourceSet& sources, std::uint32_t file, ast::File& out,
                Diagnostics& diagnostics);

} // namespace flowgate::dsl
