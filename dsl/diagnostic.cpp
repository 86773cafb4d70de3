// Building and printing diagnostics; see diagnostic.hpp.
#include "diagnostic.hpp"

#include <algorithm>
#include <tuple>

namespace flowgate::dsl {
namespace {

// Decodes one UTF-8 code point at text[i], advancing i; invalid bytes count as one.
char32_t next_code_point(std::string_view text, std::size_t& i) {
    auto byte = static_cast<unsigned char>(text[i++]);
    int extra = byte >= 0xF0 ? 3 : byte >= 0xE0 ? 2 : byte >= 0xC0 ? 1 : 0;
    char32_t cp = extra == 0 ? byte : byte & (0x3F >> extra);
    for (; extra > 0 && i < text.size(); --extra) {
        auto next = static_cast<unsigned char>(text[i]);
        if ((next & 0xC0) != 0x80) {
            break;
        }
        cp = (cp << 6) | (next & 0x3F);
        ++i;
    }
    return cp;
}

// East Asian wide and full-width characters take two terminal cells.
bool is_wide(char32_t cp) {
    return (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0x303E) ||
           (cp >= 0x3041 && cp <= 0x33FF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xA000 && cp <= 0xA4CF) ||
           (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
           (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
           (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x20000 && cp <= 0x3FFFD);
}

std::string caret_padding(std::string_view line, std::uint32_t column) {
    std::string padding;
    std::size_t i = 0;
    for (std::uint32_t c = 1; c < column && i < line.size(); ++c) {
        char32_t cp = next_code_point(line, i);
        if (cp == '\t') {
            padding += '\t';
        } else {
            padding.append(is_wide(cp) ? 2 : 1, ' ');
        }
    }
    return padding;
}

} // namespace

Diagnostic make_diagnostic(const SourceSet& sources, std::uint32_t file, std::uint32_t offset,
                           std::string message, Severity severity) {
    const SourceFile& source = sources.file(file);
    LineColumn where = source.locate(offset);
    return Diagnostic{severity,     source.path(),      where.line,
                      where.column, std::move(message), std::string(source.line_text(where.line))};
}

std::string format(const Diagnostic& diagnostic) {
    std::string out = diagnostic.file;
    if (diagnostic.line > 0) {
        out += ':' + std::to_string(diagnostic.line) + ':' + std::to_string(diagnostic.column);
    }
    out += diagnostic.severity == Severity::error     ? ": error: "
           : diagnostic.severity == Severity::warning ? ": warning: "
                                                      : ": note: ";
    out += diagnostic.message;
    out += '\n';
    if (diagnostic.line > 0) {
        out += diagnostic.source_line;
        out += '\n';
        out += caret_padding(diagnostic.source_line, diagnostic.column);
        out += "^\n";
    }
    return out;
}

std::string format(const Diagnostics& diagnostics) {
    std::string out;
    for (const Diagnostic& d : diagnostics) {
        out += format(d);
    }
    return out;
}

void sort_diagnostics(Diagnostics& diagnostics) {
    std::stable_sort(
        diagnostics.begin(), diagnostics.end(), [](const Diagnostic& a, const Diagnostic& b) {
            return std::tie(a.file, a.line, a.column) < std::tie(b.file, b.line, b.column);
        });
}

} // namespace flowgate::dsl
