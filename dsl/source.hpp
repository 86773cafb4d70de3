// The text of the policy files a policy was read from. Diagnostics and rule locations
// refer to a file by its index here and to a position by byte offset; this is the one
// place that turns an offset into a line and a column (in characters, so Japanese text
// and CRLF line ends do not shift it).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace flowgate::dsl {

struct LineColumn {
    std::uint32_t line = 1;   // 1-based
    std::uint32_t column = 1; // 1-based, in Unicode code points
};

class SourceFile {
public:
    SourceFile(std::string path, std::string text);

    const std::string& path() const { return m_path; }
    const std::string& text() const { return m_text; }

    LineColumn locate(std::uint32_t offset) const;
    // The line's text without its line end ("\n" or "\r\n").
    std::string_view line_text(std::uint32_t line) const;

private:
    std::string m_path;
    std::string m_text;
    std::vector<std::uint32_t> m_line_starts;
};

// The files of one policy, in the order they were read.
class SourceSet {
public:
    std::uint32_t add(std::string path, std::string text);
    const SourceFile& file(std::uint32_t index) const { return m_files.at(index); }
    std::size_t size() const { return m_files.size(); }
    const std::vector<SourceFile>& files() const { return m_files; }

private:
    std::vector<SourceFile> m_files;
};

} // namespace flowgate::dsl
