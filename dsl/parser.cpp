// Runs the grammar of parser_def.hpp over one policy file, one declaration at a time, so
// that a syntax error costs only the declaration it is in: the error is reported, the
// parser resynchronises, and the rest of the file is still checked. This is the only
// translation unit that includes X3's parsers.
#include "parser.hpp"

#include "parser_def.hpp"

#include <cstdio>
#include <optional>
#include <string_view>

namespace flowgate::dsl {
namespace {

namespace x3 = boost::spirit::x3;
using parser::Iterator;

// Offset of the first character at or after `offset` that is not white space or comment.
std::size_t skip_blank(std::string_view text, std::size_t offset) {
    Iterator it = text.data() + offset;
    Iterator const end = text.data() + text.size();
    x3::parse(it, end, *parser::skipper);
    return static_cast<std::size_t>(it - text.data());
}

bool starts_declaration_keyword(std::string_view rest) {
    for (std::string_view keyword : declaration_keywords) {
        if (rest.substr(0, keyword.size()) == keyword &&
            (rest.size() == keyword.size() || !parser::is_identifier_char(rest[keyword.size()]))) {
            return true;
        }
    }
    return false;
}

bool starts_line_with_declaration(std::string_view text, std::size_t offset) {
    return (offset == 0 || text[offset - 1] == '\n') &&
           starts_declaration_keyword(text.substr(offset));
}

// Where to resume after a syntax error at `error` in the declaration that starts at
// `start`: just after the `;` or `}` that ends the declaration (at brace depth 0), or at a
// line that begins, unindented, with a declaration keyword (which is how a missing `}`
// or `;` is survived). Labels and comments are skipped so that their `;` and `}` do not
// count. The result is always past `start`, so the caller cannot loop.
std::size_t resume_point(std::string_view text, std::size_t start, std::size_t error) {
    int depth = 0;
    for (std::size_t i = start; i < text.size(); ++i) {
        if (i >= error && i > start && starts_line_with_declaration(text, i)) {
            return i;
        }
        char c = text[i];
        if (c == '"') {
            for (++i; i < text.size() && text[i] != '"' && text[i] != '\n'; ++i) {
                if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] != '\n') {
                    ++i;
                }
            }
            if (i < text.size() && text[i] == '\n') {
                --i; // let the next round see the line start
            }
        } else if (c == '#' || (c == '/' && i + 1 < text.size() && text[i + 1] == '/')) {
            while (i + 1 < text.size() && text[i + 1] != '\n') {
                ++i;
            }
        } else if (c == '{') {
            ++depth;
        } else if (c == '}' && i == error) {
            // A `}` the parser refused is a stray one (often a typo for `]`), not the
            // end of the block.
        } else if (c == '}') {
            if (i >= error && depth <= 1) {
                return i + 1;
            }
            depth = depth > 0 ? depth - 1 : 0;
        } else if (c == ';' && i >= error && depth == 0) {
            return i + 1;
        }
    }
    return text.size();
}

// Where to resume after text that does not start a declaration at all: the next
// declaration keyword that stands as a whole word outside labels and comments.
std::size_t next_declaration_start(std::string_view text, std::size_t start) {
    for (std::size_t i = start + 1; i < text.size(); ++i) {
        char c = text[i];
        if (c == '"') {
            while (i + 1 < text.size() && text[i + 1] != '"' && text[i + 1] != '\n') {
                i += text[i + 1] == '\\' ? 2 : 1;
            }
            ++i;
        } else if (c == '#' || (c == '/' && i + 1 < text.size() && text[i + 1] == '/')) {
            while (i + 1 < text.size() && text[i + 1] != '\n') {
                ++i;
            }
        } else if (!parser::is_identifier_char(text[i - 1]) &&
                   starts_declaration_keyword(text.substr(i))) {
            return i;
        }
    }
    return text.size();
}

// Byte offsets of malformed UTF-8 sequences, at most one per line.
std::vector<std::size_t> invalid_utf8(std::string_view text) {
    std::vector<std::size_t> found;
    std::size_t last_line_start = std::string_view::npos;
    std::size_t line_start = 0;
    for (std::size_t i = 0; i < text.size();) {
        auto byte = static_cast<unsigned char>(text[i]);
        if (byte == '\n') {
            line_start = ++i;
            continue;
        }
        std::size_t length = byte < 0x80                    ? 1
                             : byte >= 0xC2 && byte <= 0xDF ? 2
                             : byte >= 0xE0 && byte <= 0xEF ? 3
                             : byte >= 0xF0 && byte <= 0xF4 ? 4
                                                            : 0;
        bool valid = length > 0 && i + length <= text.size();
        for (std::size_t k = 1; valid && k < length; ++k) {
            valid = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
        }
        if (valid && length > 2) {
            auto second = static_cast<unsigned char>(text[i + 1]);
            valid = !(byte == 0xE0 && second < 0xA0) && !(byte == 0xED && second >= 0xA0) &&
                    !(byte == 0xF0 && second < 0x90) && !(byte == 0xF4 && second >= 0x90);
        }
        if (valid) {
            i += length;
            continue;
        }
        if (line_start != last_line_start) {
            found.push_back(i);
            last_line_start = line_start;
        }
        ++i;
    }
    return found;
}

std::string hex_byte(unsigned char byte) {
    char buffer[8];
    std::snprintf(buffer, sizeof buffer, "0x%02X", static_cast<unsigned>(byte));
    return buffer;
}

} // namespace

bool parse_file(const SourceSet& sources, std::uint32_t file, ast::File& out,
                Diagnostics& diagnostics) {
    std::string_view text = sources.file(file).text();
    std::size_t const diagnostics_before = diagnostics.size();

    std::vector<std::size_t> bad_bytes = invalid_utf8(text);
    if (!bad_bytes.empty()) {
        // Not text we can trust positions in; report the bytes and stop here.
        for (std::size_t offset : bad_bytes) {
            diagnostics.push_back(make_diagnostic(
                sources, file, static_cast<std::uint32_t>(offset),
                "invalid UTF-8 byte " + hex_byte(static_cast<unsigned char>(text[offset]))));
        }
        return false;
    }

    parser::PositionInfo const position{text.data(), file};
    auto const grammar = x3::with<parser::position_tag>(position)[parser::declaration];
    Iterator const end = text.data() + text.size();

    std::optional<std::size_t> last_reported;
    auto report = [&](std::size_t offset, std::string message) {
        if (last_reported && offset <= *last_reported) {
            return; // a resynchronisation that lands on an error already reported
        }
        last_reported = offset;
        diagnostics.push_back(
            make_diagnostic(sources, file, static_cast<std::uint32_t>(offset), std::move(message)));
    };
    // An error at the end of the file points just after the last thing written rather
    // than at an empty last line.
    auto report_expected = [&](std::size_t offset, const std::string& what) {
        if (offset >= text.size()) {
            std::size_t after_content = text.size();
            while (after_content > 0 &&
                   (text[after_content - 1] == '\n' || text[after_content - 1] == '\r' ||
                    text[after_content - 1] == ' ' || text[after_content - 1] == '\t')) {
                --after_content;
            }
            report(after_content, "expected " + what + " at end of file");
        } else {
            report(offset, "expected " + what);
        }
    };

    std::size_t offset = text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;
    while (true) {
        offset = skip_blank(text, offset);
        if (offset >= text.size()) {
            break;
        }
        Iterator it = text.data() + offset;
        try {
            ast::Declaration declaration;
            if (x3::phrase_parse(it, end, grammar, parser::skipper, declaration)) {
                out.declarations.push_back(std::move(declaration));
                offset = static_cast<std::size_t>(it - text.data());
                continue;
            }
            report(offset, "expected declaration");
            offset = next_declaration_start(text, offset);
        } catch (const x3::expectation_failure<Iterator>& failure) {
            auto where = static_cast<std::size_t>(failure.where() - text.data());
            if (failure.which() == parser::label_end_name) {
                report(where, "unterminated label: expected '\"' before the end of the line");
            } else if (failure.which() == parser::escaped_char_name) {
                report(where, "expected " + failure.which());
            } else {
                std::size_t next = skip_blank(text, where);
                // A missing ';' is reported right after the token it should follow, as a
                // reader looks for it there, not at the start of the next line.
                std::size_t previous_end = where;
                while (previous_end > 0 && std::string_view(" \t\r\n").find(
                                               text[previous_end - 1]) != std::string_view::npos) {
                    --previous_end;
                }
                bool missing_terminator =
                    failure.which() == "';'" && next < text.size() &&
                    text.substr(previous_end, next - previous_end).find('\n') !=
                        std::string_view::npos;
                report_expected(missing_terminator ? previous_end : next, failure.which());
            }
            offset = resume_point(text, offset, where);
        }
    }
    return diagnostics.size() == diagnostics_before;
}

} // namespace flowgate::dsl
