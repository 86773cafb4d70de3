// Offset to line and column for policy text; see source.hpp.
#include "source.hpp"

#include <algorithm>

namespace flowgate::dsl {

SourceFile::SourceFile(std::string path, std::string text)
    : m_path(std::move(path)), m_text(std::move(text)) {
    m_line_starts.push_back(0);
    for (std::uint32_t i = 0; i < m_text.size(); ++i) {
        if (m_text[i] == '\n') {
            m_line_starts.push_back(i + 1);
        }
    }
}

LineColumn SourceFile::locate(std::uint32_t offset) const {
    offset = std::min<std::uint32_t>(offset, static_cast<std::uint32_t>(m_text.size()));
    auto it = std::upper_bound(m_line_starts.begin(), m_line_starts.end(), offset);
    auto line = static_cast<std::uint32_t>(it - m_line_starts.begin());
    std::uint32_t column = 1;
    for (std::uint32_t i = m_line_starts[line - 1]; i < offset; ++i) {
        // Count code points: skip UTF-8 continuation bytes.
        if ((static_cast<unsigned char>(m_text[i]) & 0xC0) != 0x80) {
            ++column;
        }
    }
    return {line, column};
}

std::string_view SourceFile::line_text(std::uint32_t line) const {
    if (line == 0 || line > m_line_starts.size()) {
        return {};
    }
    std::string_view text(m_text);
    std::uint32_t begin = m_line_starts[line - 1];
    std::uint32_t end =
        line < m_line_starts.size() ? m_line_starts[line] : static_cast<std::uint32_t>(text.size());
    std::string_view result = text.substr(begin, end - begin);
    while (!result.empty() && (result.back() == '\n' || result.back() == '\r')) {
        result.remove_suffix(1);
    }
    return result;
}

std::uint32_t SourceSet::add(std::string path, std::string text) {
    m_files.emplace_back(std::move(path), std::move(text));
    return static_cast<std::uint32_t>(m_files.size() - 1);
}

} // namespace flowgate::dsl
