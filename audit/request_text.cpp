// Storing a request line as text, bounded for refusals; see request_text.hpp. UTF-8 is
// decoded with Boost.Locale's header-only utf_traits, base64 and SHA-256 are libcrypto's.
#include "audit/request_text.hpp"

#include "audit/canonical.hpp"

#include <boost/locale/utf.hpp>
#include <openssl/evp.h>

#include <stdexcept>

namespace flowgate::audit {

namespace {

using Utf8 = boost::locale::utf::utf_traits<char>;

// The code point at `at`, advancing past it; none (and `at` past one byte) when the bytes
// there are not UTF-8 text.
bool next_text_character(std::string_view bytes, std::size_t& at) {
    const char* begin = bytes.data() + at;
    const char* p = begin;
    const boost::locale::utf::code_point c = Utf8::decode(p, bytes.data() + bytes.size());
    if (c == boost::locale::utf::illegal || c == boost::locale::utf::incomplete || c == 0) {
        ++at;
        return false;
    }
    at += static_cast<std::size_t>(p - begin);
    return true;
}

// How much of the first `limit` bytes of a longer line to keep as text: cut back to the
// start of the character that the limit would split.
std::size_t text_cut(std::string_view line, std::size_t limit) {
    std::size_t cut = limit;
    while (cut > 0 && limit - cut < 3 && Utf8::is_trail(line[cut])) {
        --cut;
    }
    return cut;
}

void append_base64(std::string& out, std::string_view bytes) {
    const std::size_t at = out.size();
    out.resize(at + 4 * ((bytes.size() + 2) / 3) + 1); // and the NUL EVP_EncodeBlock writes
    const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + at),
                                        reinterpret_cast<const unsigned char*>(bytes.data()),
                                        static_cast<int>(bytes.size()));
    out.resize(at + static_cast<std::size_t>(written));
}

} // namespace

bool is_text(std::string_view bytes) {
    for (std::size_t at = 0; at < bytes.size();) {
        if (!next_text_character(bytes, at)) {
            return false;
        }
    }
    return true;
}

std::string printable_text(std::string_view bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size());
    for (std::size_t at = 0; at < bytes.size();) {
        const std::size_t start = at;
        if (next_text_character(bytes, at)) {
            out.append(bytes.substr(start, at - start));
            continue;
        }
        const auto byte = static_cast<unsigned char>(bytes[start]);
        out += "\\x";
        out += digits[byte >> 4U];
        out += digits[byte & 0xfU];
    }
    return out;
}

std::string base64_encode(std::string_view bytes) {
    std::string out;
    append_base64(out, bytes);
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) {
        return std::nullopt;
    }
    std::string out(text.size() / 4 * 3, '\0');
    // EVP_DecodeBlock skips white space and reads padding as zero bytes: what it decodes
    // counts only if encoding it again gives back exactly the text.
    const int decoded = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                        reinterpret_cast<const unsigned char*>(text.data()),
                                        static_cast<int>(text.size()));
    if (decoded < 0) {
        return std::nullopt;
    }
    std::size_t size = static_cast<std::size_t>(decoded);
    for (std::size_t i = text.size(); i > 0 && text[i - 1] == '=' && size > 0; --i) {
        --size;
    }
    out.resize(size);
    if (base64_encode(out) != text) {
        return std::nullopt;
    }
    return out;
}

std::string sha256_hex(std::string_view bytes) {
    return to_hex(sha256(bytes));
}

StoredRequest append_stored_request(std::string& out, std::string_view line, std::size_t limit) {
    StoredRequest stored;
    stored.bytes = static_cast<std::int64_t>(line.size());
    std::string_view kept = line;
    if (line.size() > limit) {
        stored.sha256 = sha256_hex(line);
        kept = line.substr(0, limit);
        const std::string_view text = line.substr(0, text_cut(line, limit));
        if (is_text(text)) {
            out.append(text);
            return stored;
        }
    } else if (is_text(line)) {
        out.append(line);
        return stored;
    }
    stored.encoding = base64_encoding;
    append_base64(out, kept);
    return stored;
}

void set_request(AuditRecord& record, std::string_view line, std::size_t limit) {
    record.request.clear();
    StoredRequest stored = append_stored_request(record.request, line, limit);
    record.request_encoding = std::string(stored.encoding);
    record.request_bytes = stored.bytes;
    record.request_sha256 = std::move(stored.sha256);
}

std::optional<std::string_view> received_line(const AuditRowView& row, std::string& buffer) {
    if (!row.request_sha256.empty()) {
        return std::nullopt;
    }
    if (row.request_encoding.empty()) {
        return row.request;
    }
    if (row.request_encoding != base64_encoding) {
        return std::nullopt;
    }
    auto decoded = base64_decode(row.request);
    if (!decoded) {
        return std::nullopt;
    }
    buffer = std::move(*decoded);
    return std::string_view(buffer);
}

AuditRowView in_current_form(const AuditRowView& row, int version, std::string& buffer) {
    if (version > 1) {
        return row;
    }
    AuditRowView out = row;
    out.request_bytes = static_cast<std::int64_t>(row.request.size());
    if (!is_text(row.request)) {
        buffer.clear();
        append_base64(buffer, row.request);
        out.request = buffer;
        out.request_encoding = base64_encoding;
    }
    return out;
}

} // namespace flowgate::audit
