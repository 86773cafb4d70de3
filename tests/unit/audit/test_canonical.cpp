// The canonical bytes of a row and the chain's hash over them, exactly as
// docs/audit-store.md specifies them for programs in other languages.
#include "audit/canonical.hpp"

#include <catch2/catch.hpp>

using namespace flowgate::audit;

TEST_CASE("audit chain: canonical bytes are length-prefixed fields in the documented order, "
          "per schema version",
          "[audit]") {
    AuditRecord record;
    record.time_us = 1700000000123456;
    record.kind = to_string(AuditKind::reload_failed);
    record.uid = 0;
    record.gid = -1;
    record.pid = 77;
    record.service = "admin";
    record.detail = "kenpo.policy:3:1: error: x";
    record.obligations = "[]";

    auto field = [](std::string_view bytes) {
        std::string out(8, '\0');
        for (int i = 0; i < 8; ++i) {
            out[static_cast<std::size_t>(7 - i)] =
                static_cast<char>((bytes.size() >> (8 * i)) & 0xffU);
        }
        return out + std::string(bytes);
    };
    record.request = "{\"op\":\"reload\"}";
    record.request_bytes = 15;
    record.seq = 12;

    SECTION("version 2: 25 fields, the request's encoding, length and digest after it") {
        record.request_encoding = "base64";
        record.request_sha256 = std::string(64, 'a');
        const std::string expected =
            field("12") + field("1700000000123456") + field("reload_failed") + field("0") +
            field("-1") + field("77") + field("admin") + field(R"({"op":"reload"})") +
            field("base64") + field("15") + field(std::string(64, 'a')) + field("") + field("") +
            field("") + field("") + field("") + field("[]") + field("") + field("") + field("") +
            field("") + field("") + field("") + field("") + field("kenpo.policy:3:1: error: x");
        CHECK(canonical_row_bytes(view_of(record), 2) == expected);
    }
    SECTION("version 1: the 22 fields that version has, whatever the others hold") {
        record.request_encoding = "base64";
        const std::string expected =
            field("12") + field("1700000000123456") + field("reload_failed") + field("0") +
            field("-1") + field("77") + field("admin") + field(R"({"op":"reload"})") + field("") +
            field("") + field("") + field("") + field("") + field("[]") + field("") + field("") +
            field("") + field("") + field("") + field("") + field("") +
            field("kenpo.policy:3:1: error: x");
        CHECK(canonical_row_bytes(view_of(record), 1) == expected);
    }
    SECTION("the hash covers the previous hash, so the same row after another differs") {
        const auto canonical = canonical_row_bytes(view_of(record), 2);
        ChainHash other{};
        other[0] = 1;
        CHECK(chain_hash(genesis_hash, canonical) != chain_hash(other, canonical));
        CHECK(hash_from_hex(to_hex(chain_hash(other, canonical))) == chain_hash(other, canonical));
        CHECK_FALSE(hash_from_hex("00"));
        CHECK_FALSE(hash_from_hex(std::string(64, 'G')));
    }
}

TEST_CASE("audit chain: canonical bytes read back give the row they were made of, and "
          "anything else is refused",
          "[audit]") {
    AuditRecord record;
    record.seq = 42;
    record.time_us = -5;
    record.uid = 1000;
    record.pid = -1;
    record.service = "claims";
    record.request = std::string("a\0b\n", 4);
    record.request_encoding = "base64";
    record.request_bytes = 123;
    record.decision = "allow";
    record.recipient = "prevent";
    record.subject = "person-7";
    record.detail = "最後";
    for (const int version : {1, 2, 3}) {
        const std::string bytes = canonical_row_bytes(view_of(record), version);
        const auto row = parse_canonical_row(bytes, version);
        REQUIRE(row);
        CHECK(canonical_row_bytes(*row, version) == bytes);
        CHECK(row->seq == 42);
        CHECK(row->time_us == -5);
        CHECK(row->request == record.request);
        CHECK(row->detail == "最後");
        CHECK(row->prev_hash.empty());
        CHECK(row->request_bytes == (version >= 2 ? 123 : 0));
        SECTION("one byte short, one byte over, or read as another version") {
            CHECK_FALSE(
                parse_canonical_row(std::string_view(bytes).substr(0, bytes.size() - 1), version));
            CHECK_FALSE(parse_canonical_row(bytes + "x", version));
            CHECK_FALSE(parse_canonical_row(bytes, version == 1 ? 2 : 1));
        }
    }
    SECTION("an integer field that is not decimal") {
        std::string bytes = canonical_row_bytes(view_of(record), 3);
        bytes[8] = 'x'; // the first digit of seq
        CHECK_FALSE(parse_canonical_row(bytes, 3));
    }
}
