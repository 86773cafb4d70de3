// How a request line is stored in a row and read back: text as it came, anything else
// as marked base64, a long refused line as a bounded prefix with its length and SHA-256,
// and a version-1 row given in the current form for export.
#include "audit/request_text.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace flowgate::audit;

namespace {

AuditRecord stored(std::string_view line, std::size_t limit = whole_line) {
    AuditRecord record;
    set_request(record, line, limit);
    return record;
}

} // namespace

TEST_CASE("request text: a line of UTF-8 text is stored whole, as it came", "[audit]") {
    const std::string line = R"({"op":"check","purpose":"特定健診","subject":"p-1"})";
    const AuditRecord record = stored(line);
    CHECK(record.request == line);
    CHECK(record.request_encoding.empty());
    CHECK(record.request_bytes == static_cast<std::int64_t>(line.size()));
    CHECK(record.request_sha256.empty());
    std::string buffer;
    CHECK(received_line(view_of(record), buffer) == std::string_view(line));
}

TEST_CASE("request text: a line that is not UTF-8 text is stored as its base64, marked as such",
          "[audit]") {
    for (const std::string& line :
         {std::string("{\"purpose\":\"\xff\xfe\"}"), std::string("overlong \xc0\xaf"),
          std::string("surrogate \xed\xa0\x80"), std::string("past U+10FFFF \xf4\x90\x80\x80"),
          std::string("cut short \xe3\x81"), std::string("a NUL \0 inside", 15)}) {
        INFO(line);
        CHECK_FALSE(is_text(line));
        const AuditRecord record = stored(line);
        CHECK(record.request_encoding == "base64");
        CHECK(is_text(record.request));
        CHECK(record.request == base64_encode(line));
        CHECK(record.request_bytes == static_cast<std::int64_t>(line.size()));
        CHECK(record.request_sha256.empty());
        std::string buffer;
        CHECK(received_line(view_of(record), buffer) == std::string_view(line));
    }
    SECTION("a text line that happens to be base64 stays distinct from the line it encodes") {
        const std::string bytes = "\xff\xfe";
        const AuditRecord encoded = stored(bytes);
        const AuditRecord plain = stored(encoded.request);
        CHECK(plain.request == encoded.request);
        CHECK(plain.request_encoding != encoded.request_encoding);
        std::string buffer;
        CHECK(received_line(view_of(plain), buffer) == std::string_view(encoded.request));
    }
}

TEST_CASE("request text: a line over the limit costs its first bytes, its length and its SHA-256",
          "[audit]") {
    SECTION("text is cut at the limit") {
        const std::string line(64 * 1024, 'j');
        const AuditRecord record = stored(line, max_stored_refused_bytes);
        CHECK(record.request == std::string(256, 'j'));
        CHECK(record.request_encoding.empty());
        CHECK(record.request_bytes == 65536);
        CHECK(record.request_sha256 == sha256_hex(line));
        std::string buffer;
        CHECK_FALSE(received_line(view_of(record), buffer));
    }
    SECTION("text is cut back to the start of the character the limit would split") {
        std::string line;
        for (int i = 0; i < 100; ++i) {
            line += "健"; // three bytes: the limit of 256 falls inside the 86th
        }
        const AuditRecord record = stored(line, max_stored_refused_bytes);
        CHECK(record.request.size() == 255);
        CHECK(is_text(record.request));
        CHECK(line.starts_with(record.request));
        CHECK(record.request_bytes == 300);
        CHECK(record.request_sha256 == sha256_hex(line));
    }
    SECTION("a prefix that is not text is the base64 of the first bytes up to the limit") {
        const std::string line = "\xff" + std::string(1000, 'x');
        const AuditRecord record = stored(line, max_stored_refused_bytes);
        CHECK(record.request_encoding == "base64");
        CHECK(base64_decode(record.request) == line.substr(0, 256));
        CHECK(record.request.size() == 344);
        CHECK(record.request_bytes == 1001);
        CHECK(record.request_sha256 == sha256_hex(line));
    }
    SECTION("a line of exactly the limit is stored whole") {
        const std::string line(256, 'k');
        const AuditRecord record = stored(line, max_stored_refused_bytes);
        CHECK(record.request == line);
        CHECK(record.request_sha256.empty());
    }
    SECTION("the digest is SHA-256 in lowercase hex") {
        CHECK(sha256_hex("abc") ==
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}

TEST_CASE("request text: base64 is RFC 4648's, and only what it makes decodes", "[audit]") {
    const std::vector<std::pair<std::string, std::string>> vectors{{"", ""},
                                                                   {"f", "Zg=="},
                                                                   {"fo", "Zm8="},
                                                                   {"foo", "Zm9v"},
                                                                   {"foob", "Zm9vYg=="},
                                                                   {"fooba", "Zm9vYmE="},
                                                                   {"foobar", "Zm9vYmFy"},
                                                                   {"\xff\xfe\xfd", "//79"}};
    for (const auto& [bytes, text] : vectors) {
        CHECK(base64_encode(bytes) == text);
        CHECK(base64_decode(text) == bytes);
    }
    for (const char* bad :
         {"Zg=", "Zh==", "Zm=v", "Z===", " Zm9v   ", "Zm9v\n", "Zm9v====", "Zm9-", "Zm9_"}) {
        INFO(bad);
        CHECK_FALSE(base64_decode(bad));
    }
    SECTION("a row whose encoding flowgate does not write, or whose base64 is broken, is not read "
            "back") {
        AuditRecord record = stored("\xff");
        std::string buffer;
        record.request_encoding = "hex";
        CHECK_FALSE(received_line(view_of(record), buffer));
        record.request_encoding = "base64";
        record.request = "not base64";
        CHECK_FALSE(received_line(view_of(record), buffer));
    }
}

TEST_CASE("request text: a version-1 row is given in the version-2 form, for export", "[audit]") {
    std::string buffer;
    AuditRecord row;
    row.request = "{\"purpose\":\"\xff\"}";
    const AuditRowView raw = in_current_form(view_of(row), 1, buffer);
    CHECK(raw.request_encoding == "base64");
    CHECK(base64_decode(raw.request) == row.request);
    CHECK(raw.request_bytes == static_cast<std::int64_t>(row.request.size()));

    row.request = R"({"op":"status"})";
    const AuditRowView text = in_current_form(view_of(row), 1, buffer);
    CHECK(text.request == row.request);
    CHECK(text.request_encoding.empty());
    CHECK(text.request_bytes == 15);

    row.request_bytes = 99; // a version-2 row is as stored
    CHECK(in_current_form(view_of(row), 2, buffer).request_bytes == 99);
}

TEST_CASE("request text: a text meant for reading shows its bytes that are not text as \\xNN",
          "[audit]") {
    CHECK(printable_text("kenpo.policy:3:1: 健診") == "kenpo.policy:3:1: 健診");
    CHECK(printable_text("a\xff"
                         "b\xe3\x81") == "a\\xffb\\xe3\\x81");
    CHECK(printable_text(std::string("nul \0.", 6)) == "nul \\x00.");
    CHECK(is_text(printable_text("\xc0\xaf\xed\xa0\x80")));
}
