// The one diagnostic type of flowgate and its one printer. The checker, the parser,
// the CLI, the daemon's logs and its reload answers all carry diagnostics as this
// value and print them the same way:
//
//   policies/kenpo.policy:12:7: error: unknown party 'prevnt'
//     to prevnt;
//        ^
#pragma once

#include "source.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace flowgate::dsl {

enum class Severity { error, warning, note };

struct Diagnostic {
    Severity severity = Severity::error;
    std::string file;
    std::uint32_t line = 0;   // 0: no position (a file that cannot be read, say)
    std::uint32_t column = 0; // in characters
    std::string message;
    std::string source_line; // the line's text, without its line end
};

using Diagnostics = std::vector<Diagnostic>;

// A diagnostic at a byte offset of one of the set's files.
Diagnostic make_diagnostic(const SourceSet& sources, std::uint32_t file, std::uint32_t offset,
                           std::string message, Severity severity = Severity::error);

// "file:line:col: error: message", then the source line and a caret under the column
// (padded by display width: wide CJK characters take two cells, tabs are kept).
std::string format(const Diagnostic& diagnostic);
std::string format(const Diagnostics& diagnostics);

// Diagnostics sorted by file order, line and column, as the printer wants them.
void sort_diagnostics(Diagnostics& diagnostics);

} // namespace flowgate::dsl
