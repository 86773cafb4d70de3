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
