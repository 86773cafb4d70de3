// A request line as an audit row stores it, and back. The row must stay readable by every
// SQLite client and every JSON tool, so the request column always holds UTF-8 text: the
// line itself when its bytes are text, their base64 otherwise, marked in request_encoding
// (a plain escape could make one line look like another). And a client that sends junk
// must cost the store a bounded row: a refused line longer than max_stored_refused_bytes
// keeps only its first bytes, with the whole line's length and SHA-256. The daemon fills
// the request fields here, and the auditor's tools read them back here.
#pragma once

#include "audit/record.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace flowgate::audit {

// The most bytes of a refused line (one that could not be understood, or too long) a
// row stores; a longer one is cut to its first bytes.
inline constexpr std::size_t max_stored_refused_bytes = 256;
// No limit: the whole line is stored (checks, explains, reloads, refused admin commands).
inline constexpr std::size_t whole_line = std::numeric_limits<std::size_t>::max();
// The request_encoding of a request stored as the base64 of its bytes.
inline constexpr std::string_view base64_encoding = "base64";

// UTF-8 (RFC 3629: no overlong form, no surrogate, nothing past U+10FFFF) without a NUL
// byte, which SQLite's own functions and shell take for the end of a text.
bool is_text(std::string_view bytes);

// The bytes, with each byte that is not part of UTF-8 text (and each NUL) written as
// \xNN: for a text meant to be read, not to be evidence of the bytes (a diagnostic that
// quotes a policy file's line, say).
std::string printable_text(std::string_view bytes);

// RFC 4648 base64 (the standard alphabet, padded), through libcrypto.
std::string base64_encode(std::string_view bytes);
// None unless `text` is exactly what base64_encode() makes of some bytes.
std::optional<std::string> base64_decode(std::string_view text);

// Lowercase hex of the SHA-256 of the bytes, 64 digits.
std::string sha256_hex(std::string_view bytes);

// The request fields of a row other than the request column itself.
struct StoredRequest {
    std::string_view encoding; // "" or base64_encoding
    std::int64_t bytes = 0;    // the whole line's length
    std::string sha256;        // "" when the column holds the whole line
};

// Appends to `out` what the request column holds for `line` (as received, without its
// line end): the line itself when it is text, its base64 otherwise; and when the line is
// longer than `limit` bytes, only its first bytes — the first `limit` cut back to a
// character's start when those are text, the base64 of the first `limit` otherwise —
// and then its SHA-256 in the other fields.
StoredRequest append_stored_request(std::string& out, std::string_view line,
                                    std::size_t limit = whole_line);

// Fills the record's request, request_encoding, request_bytes and request_sha256 for
// `line`, as append_stored_request() does.
void set_request(AuditRecord& record, std::string_view line, std::size_t limit = whole_line);

// The line as received, when the row holds all of it: a view of the request column, or
// its base64 decoded into `buffer`. None when the row holds only the line's first bytes
// (request_sha256 is set), or an encoding flowgate does not write, or base64 that does
// not decode.
std::optional<std::string_view> received_line(const AuditRowView& row, std::string& buffer);

// The row of a store of schema `version` as the current version holds such a row: for
// version 1 (which stored the line's bytes as they came), request_bytes its length and
// a request that is not text base64'd into `buffer`. A newer row is returned as it is.
// For exports, which give every store's rows in one form; never for hashing (the chain
// covers the row as stored).
AuditRowView in_current_form(const AuditRowView& row, int version, std::string& buffer);

} // namespace flowgate::audit
