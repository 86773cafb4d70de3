// Writing and reading a checkpoint's body; see tree_checkpoint.hpp.
#include "audit/tree_checkpoint.hpp"

#include "audit/request_text.hpp"
#include "audit/signed_note.hpp"

#include <charconv>
#include <limits>
#include <optional>

namespace flowgate::audit {

namespace {

SigningError checkpoint_error(std::string why) {
    return {SigningErrc::bad_checkpoint, "checkpoint: " + std::move(why)};
}

// Why `line` cannot be a line of a checkpoint, or "".
std::string line_fault(std::string_view line) {
    if (line.empty()) {
        return "is empty";
    }
    if (line.find('\n') != std::string_view::npos || !is_note_text(line)) {
        return "is not one line of UTF-8 text without control characters";
    }
    return {};
}

} // namespace

SigningResult<std::string> format_tree_checkpoint(const TreeCheckpoint& checkpoint) {
    if (std::string fault = line_fault(checkpoint.origin); !fault.empty()) {
        return checkpoint_error("the origin " + fault);
    }
    std::string body =
        checkpoint.origin + "\n" + std::to_string(checkpoint.size) + "\n" +
        base64_encode(std::string_view(reinterpret_cast<const char*>(checkpoint.root.data()),
                                       checkpoint.root.size())) +
        "\n";
    for (std::size_t i = 0; i < checkpoint.extensions.size(); ++i) {
        if (std::string fault = line_fault(checkpoint.extensions[i]); !fault.empty()) {
            return checkpoint_error("extension line " + std::to_string(i + 1) + " " + fault);
        }
        body += checkpoint.extensions[i];
        body += '\n';
    }
    return body;
}

SigningResult<TreeCheckpoint> parse_tree_checkpoint(std::string_view body) {
    if (!is_note_text(body)) {
        return checkpoint_error("not UTF-8 text without control characters but newline");
    }
    if (!body.empty() && !body.ends_with('\n')) {
        return checkpoint_error("its last line does not end in a newline");
    }
    std::vector<std::string_view> lines;
    for (std::string_view rest = body; !rest.empty();) {
        const std::size_t end = rest.find('\n');
        lines.push_back(rest.substr(0, end));
        rest.remove_prefix(end + 1);
    }
    if (lines.size() < 3) {
        return checkpoint_error("it has " + std::to_string(lines.size()) +
                                " lines, not the three of an origin, a tree size and a root hash");
    }
    TreeCheckpoint checkpoint;
    if (lines[0].empty()) {
        return checkpoint_error("the origin (line 1) is empty");
    }
    checkpoint.origin = std::string(lines[0]);

    const std::string_view size = lines[1];
    const std::string quoted_size = "the tree size '" + printable_text(size) + "' (line 2)";
    if (size.empty()) {
        return checkpoint_error("the tree size (line 2) is empty");
    }
    if (size.find_first_not_of("0123456789") != std::string_view::npos) {
        return checkpoint_error(quoted_size + " is not a decimal number");
    }
    if (size.size() > 1 && size[0] == '0') {
        return checkpoint_error(quoted_size + " has a leading zero");
    }
    const auto [end, failure] =
        std::from_chars(size.data(), size.data() + size.size(), checkpoint.size);
    if (failure != std::errc{} || end != size.data() + size.size()) {
        return checkpoint_error(quoted_size + " does not fit in 64 bits");
    }

    auto root = base64_decode(lines[2]);
    if (!root) {
        return checkpoint_error("the root hash (line 3) is not base64 (RFC 4648, padded)");
    }
    if (root->size() != checkpoint.root.size()) {
        return checkpoint_error("the root hash (line 3) is " + std::to_string(root->size()) +
                                " bytes, not the 32 of a SHA-256 hash");
    }
    std::copy(root->begin(), root->end(), checkpoint.root.begin());

    for (std::size_t i = 3; i < lines.size(); ++i) {
        if (lines[i].empty()) {
            return checkpoint_error("line " + std::to_string(i + 1) +
                                    ", an extension line, is empty");
        }
        checkpoint.extensions.emplace_back(lines[i]);
    }
    return checkpoint;
}

std::string note_on_one_line(std::string_view note) {
    std::string out;
    out.reserve(note.size() + 8);
    for (const char c : note) {
        if (c == '\n') {
            out += "\\n";
        } else if (c == '\\') {
            out += "\\\\";
        } else {
            out += c;
        }
    }
    return out;
}

namespace {

constexpr std::string_view journal_note = "note=\"";
constexpr std::string_view signature_start = "\xE2\x80\x94 "; // U+2014 EM DASH, a space

std::vector<std::string_view> lines_of(std::string_view text) {
    std::vector<std::string_view> lines;
    while (!text.empty()) {
        const std::size_t end = text.find('\n');
        std::string_view line = text.substr(0, end);
        if (line.ends_with('\r')) {
            line.remove_suffix(1);
        }
        lines.push_back(line);
        text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    }
    return lines;
}

// The note a journal line ends with, its \n and \\ written back.
std::optional<std::string> journal_line_note(std::string_view line) {
    const std::size_t at = line.rfind(journal_note);
    while (!line.empty() && line.back() == ' ') {
        line.remove_suffix(1);
    }
    if (at == std::string_view::npos || !line.ends_with('"') ||
        line.size() < at + journal_note.size() + 1) {
        return std::nullopt;
    }
    const std::string_view escaped =
        line.substr(at + journal_note.size(), line.size() - 1 - at - journal_note.size());
    std::string note;
    for (std::size_t i = 0; i < escaped.size(); ++i) {
        if (escaped[i] == '\\' && i + 1 < escaped.size() &&
            (escaped[i + 1] == 'n' || escaped[i + 1] == '\\')) {
            note += escaped[++i] == 'n' ? '\n' : '\\';
        } else {
            note += escaped[i];
        }
    }
    return note;
}

} // namespace

std::vector<std::string> checkpoint_notes(std::string_view text) {
    const std::vector<std::string_view> lines = lines_of(text);
    std::vector<std::string> notes;
    if (text.find(journal_note) != std::string_view::npos) {
        for (std::string_view line : lines) {
            if (auto note = journal_line_note(line)) {
                notes.push_back(std::move(*note));
            }
        }
        return notes;
    }
    for (std::size_t i = 0; i < lines.size();) {
        if (lines[i].empty()) {
            ++i;
            continue;
        }
        std::string note;
        for (; i < lines.size() && !lines[i].empty(); ++i) {
            note.append(lines[i]).push_back('\n');
        }
        if (i + 1 < lines.size() && lines[i + 1].starts_with(signature_start)) {
            note.push_back('\n');
            for (++i; i < lines.size() && lines[i].starts_with(signature_start); ++i) {
                note.append(lines[i]).push_back('\n');
            }
        }
        notes.push_back(std::move(note));
    }
    return notes;
}

} // namespace flowgate::audit
