// The signing keys, signed notes and checkpoint bodies an auditor checks the log with:
// the key texts and key IDs as the C2SP specifications and Go's sumdb/note define them
// (checked against their published vectors), every malformed text refused with its own
// error, notes that verify and every alteration of them refused, and a second reader
// written in Python (tests/unit/audit/note_check.py) that accepts what flowgate signs.
#include "audit/request_text.hpp"
#include "audit/signed_note.hpp"
#include "audit/signing_key.hpp"
#include "audit/tree_checkpoint.hpp"
#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <sys/wait.h>

using namespace flowgate::audit;

namespace {

// Published vectors, copied as they are printed:
// - golang.org/x/mod, sumdb/note/note_test.go (TestNewVerifier, TestSign, TestOpen,
//   TestVerifierList): the PeterNeumann key pair and note, EnochRoot's verifier key and
//   signature on the same text, and two verifier keys mangled with adjusted key IDs.
// - golang.org/x/mod, sumdb/client_test.go: testVerifierKey and testSignerKey, and the
//   signed tree note of size 6 in TestClientFork's sample output.
// - c2sp.org/signed-note, "Verifier keys", "Example": example.com/foo and its note.
constexpr std::string_view peter_private =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
constexpr std::string_view peter_verifier =
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
constexpr std::string_view enoch_verifier =
    "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
constexpr std::string_view neumann_text =
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n";
constexpr std::string_view peter_signature =
    "— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
    "\n";
constexpr std::string_view enoch_signature =
    "— EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ="
    "\n";
constexpr std::string_view sumdb_verifier =
    "localhost.localdev/sumdb+00000c67+AcTrnkbUA+TU4heY3hkjiSES/DSQniBqIeQ/YppAUtK6";
constexpr std::string_view sumdb_private =
    "PRIVATE+KEY+localhost.localdev/sumdb+00000c67+AXu6+oaVaOYuQOFrf1V59JK1owcFlJcHwwXHDfDGxSPk";
constexpr std::string_view sumdb_tree_note =
    "go.sum database tree\n"
    "6\n"
    "wc4SkQt52o5W2nQ8To2ARs+mWuUJjss+sdleoiqxMmM=\n"
    "\n"
    "— localhost.localdev/sumdb "
    "AAAMZ6oRNswlEZ6ZZhxrCvgl1MBy+nusq4JU+TG6Fe2NihWLqOzb+y2c2kzRLoCr4tvw9o36ucQEnhc20e4nA4Qc/wc="
    "\n";
constexpr std::string_view c2sp_verifier =
    "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
constexpr std::string_view c2sp_note =
    "This is an example message.\n"
    "\n"
    "— example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM="
    "\n";

VerifierKey verifier(std::string_view text) {
    auto key = parse_verifier_key(text);
    INFO(text);
    REQUIRE(key);
    return key.value();
}

SigningKey signer(std::string_view text) {
    auto key = parse_private_key(text);
    REQUIRE(key);
    return key.value();
}

SigningKey generated(std::string_view name) {
    auto key = generate_signing_key(name);
    REQUIRE(key);
    return key.value();
}

std::string signed_note(std::string_view text, const std::vector<SigningKey>& keys) {
    auto note = sign_note(text, keys);
    REQUIRE(note);
    return note.value();
}

// The error open_note() gives, which must be one.
SigningError open_error(std::string_view note, const std::vector<VerifierKey>& known) {
    auto opened = open_note(note, known);
    REQUIRE_FALSE(opened);
    return opened.error();
}

template <class Result> SigningError error_of(const Result& result) {
    REQUIRE_FALSE(result);
    return result.error();
}

std::string replaced(std::string text, std::string_view from, std::string_view to) {
    const std::size_t at = text.find(from);
    REQUIRE(at != std::string::npos);
    return text.replace(at, from.size(), to);
}

std::string hex_of(const std::array<std::uint8_t, 32>& bytes) {
    std::string out;
    for (std::uint8_t byte : bytes) {
        out += "0123456789abcdef"[byte >> 4U];
        out += "0123456789abcdef"[byte & 0xFU];
    }
    return out;
}

TreeCheckpoint sample_checkpoint() {
    TreeCheckpoint checkpoint;
    checkpoint.origin = "flowgate.example/kenpo-host-1";
    checkpoint.size = 20852163;
    for (std::size_t i = 0; i < checkpoint.root.size(); ++i) {
        checkpoint.root[i] = static_cast<std::uint8_t>(i * 7 + 3);
    }
    return checkpoint;
}

std::string checkpoint_body(const TreeCheckpoint& checkpoint) {
    auto body = format_tree_checkpoint(checkpoint);
    REQUIRE(body);
    return body.value();
}

} // namespace

TEST_CASE("signing keys: the key ID is the first 4 bytes of SHA-256(name, newline, 0x01, key)",
          "[audit][signing]") {
    for (std::string_view text : {peter_verifier, enoch_verifier, sumdb_verifier, c2sp_verifier}) {
        const VerifierKey key = verifier(text);
        CHECK(ed25519_key_id(key.name, key.public_key) == key.id);
    }
    CHECK(verifier(peter_verifier).id == 0xc74f20a3U);
    CHECK(verifier(sumdb_verifier).id == 0x00000c67U);
    CHECK(key_id_hex(0x00000c67U) == "00000c67");
    CHECK(verifier(c2sp_verifier).name == "example.com/foo");
}

TEST_CASE("signing keys: a private key text gives back its verifier key and its own text",
          "[audit][signing]") {
    for (auto [private_text, verifier_text] :
         {std::pair{peter_private, peter_verifier}, std::pair{sumdb_private, sumdb_verifier}}) {
        const SigningKey key = signer(private_text);
        CHECK(format_verifier_key(key.verifier()) == verifier_text);
        CHECK(key.verifier() == verifier(verifier_text));
        CHECK(key.private_key_text() == private_text);
    }
    SECTION("a key file's final newline is not part of the key") {
        CHECK(signer(std::string(peter_private) + "\n").id() == 0xc74f20a3U);
        CHECK(verifier(std::string(peter_verifier) + "\n").id == 0xc74f20a3U);
    }
}

TEST_CASE("signing keys: a generated key's texts parse back to the same key", "[audit][signing]") {
    const SigningKey key = generated("flowgate.example/kenpo-host-1");
    CHECK(key.name() == "flowgate.example/kenpo-host-1");
    CHECK(key.id() == ed25519_key_id(key.name(), key.public_key()));
    const SigningKey again = signer(key.private_key_text());
    CHECK(again.verifier() == key.verifier());
    CHECK(again.private_key_text() == key.private_key_text());
    CHECK(verifier(format_verifier_key(key.verifier())) == key.verifier());
    CHECK(key.private_key_text().starts_with("PRIVATE+KEY+flowgate.example/kenpo-host-1+" +
                                             key_id_hex(key.id()) + "+"));
    SECTION("two keys of one name are two keys") {
        const SigningKey other = generated("flowgate.example/kenpo-host-1");
        CHECK(other.public_key() != key.public_key());
        CHECK(other.private_key_text() != key.private_key_text());
    }
    SECTION("a name in Japanese is a name") {
        CHECK(generated("健保組合/監査ログ").verifier().name == "健保組合/監査ログ");
    }
}

TEST_CASE("signing keys: a key name is non-empty UTF-8 without '+', white space or control "
          "characters",
          "[audit][signing]") {
    for (std::string_view good :
         {"example.com/log42", "PeterNeumann", "健保組合/監査ログ", "a-b_c.d"}) {
        INFO(good);
        CHECK_FALSE(key_name_error(good));
    }
    for (std::string_view bad :
         {"", "a+b", "a b", "a\tb", "a\nb", "a\u3000b", "a\u00a0b", "a\u2028b", "a\x01b", "a\x1f",
          "\xff", "overlong \xc0\xaf", "cut \xe3\x81"}) {
        INFO(bad);
        auto error = key_name_error(bad);
        REQUIRE(error);
        CHECK(error->code == SigningErrc::bad_key_name);
        CHECK_FALSE(generate_signing_key(bad));
    }
    CHECK(key_name_error("a b")->message == "key name 'a b' holds white space");
    CHECK(key_name_error("a+b")->message == "key name 'a+b' holds a '+'");
    CHECK(key_name_error("")->message == "a key name cannot be empty");
}

TEST_CASE("signing keys: each kind of malformed key text is refused with its own error",
          "[audit][signing]") {
    struct Case {
        std::string text;
        SigningErrc code;
        std::string says;
    };
    const std::vector<Case> verifier_cases = {
        // The two of sumdb/note's TestNewVerifier, their key IDs adjusted to the key. The
        // first, "BADKEY==", sets bits past its last byte: Go's decoder takes it (to refuse
        // the key's length), this one refuses any base64 that is not the canonical form.
        {"PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
         SigningErrc::bad_base64, "the key is not base64"},
        {"PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
         SigningErrc::unknown_algorithm, "algorithm byte 0x65 is not Ed25519's (0x01)"},
        {"PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWAAAA",
         SigningErrc::wrong_key_length, "an Ed25519 key is 32 bytes, this one is 35"},
        {"PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
         SigningErrc::key_id_mismatch,
         "key ID c74f20a4 is not the one of the name 'PeterNeumann' and this key (c74f20a3)"},
        {"PeterNeuman+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
         SigningErrc::key_id_mismatch, "is not the one of the name 'PeterNeuman'"},
        {"PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
         SigningErrc::malformed_key, "key ID 'C74F20A3' is not 8 lowercase hex digits"},
        {"PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
         SigningErrc::malformed_key, "is not 8 lowercase hex digits"},
        {"PeterNeumann+c74f20a3", SigningErrc::malformed_key, "is not <name>+<key ID>+<key>"},
        {"PeterNeumann", SigningErrc::malformed_key, "is not <name>+<key ID>+<key>"},
        {"Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
         SigningErrc::bad_key_name, "holds white space"},
        {"+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", SigningErrc::bad_key_name,
         "cannot be empty"},
        {"PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",
         SigningErrc::bad_base64, "the key is not base64"},
        {"PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW\n\n",
         SigningErrc::bad_base64, "the key is not base64"},
        {"PeterNeumann+c74f20a3+", SigningErrc::unknown_algorithm, "algorithm byte none"},
        {std::string(peter_private), SigningErrc::malformed_key, "this is a private key"},
    };
    for (const Case& c : verifier_cases) {
        INFO(c.text);
        const SigningError error = error_of(parse_verifier_key(c.text));
        CHECK(error.code == c.code);
        CHECK_THAT(error.message, Catch::Contains(c.says));
        CHECK_THAT(error.message, Catch::StartsWith("verifier key"));
    }

    const std::vector<Case> private_cases = {
        {std::string(peter_verifier), SigningErrc::not_a_private_key,
         "does not start with PRIVATE+KEY+"},
        {"PRIVATE+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
         SigningErrc::not_a_private_key, "does not start with PRIVATE+KEY+"},
        {"PRIVATE+KEY+Peter\tNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
         SigningErrc::bad_key_name, "private key: key name 'Peter\\x09Neumann' holds white"},
        {"PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
         SigningErrc::key_id_mismatch, "key ID c74f20a4 is not the one"},
        {"PRIVATE+KEY+EnochRoot+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
         SigningErrc::key_id_mismatch, "the name 'EnochRoot'"},
        {"PRIVATE+KEY+PeterNeumann+c74f20a3+AoEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
         SigningErrc::unknown_algorithm, "algorithm byte 0x02"},
        {"PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXH",
         SigningErrc::wrong_key_length, "this one is 29"},
        {"PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDF=",
         SigningErrc::bad_base64, "not base64"},
    };
    for (const Case& c : private_cases) {
        INFO(c.text);
        const SigningError error = error_of(parse_private_key(c.text));
        CHECK(error.code == c.code);
        CHECK_THAT(error.message, Catch::Contains(c.says));
        CHECK_THAT(error.message, Catch::StartsWith("private key"));
        // The secret is never quoted back.
        CHECK_THAT(error.message, !Catch::Contains("AYEKFALV"));
    }

    SECTION("every part of a verifier key, and every byte changed, is refused (as Go's test)") {
        const std::string text(peter_verifier);
        for (std::size_t i = 0; i < text.size(); ++i) {
            for (std::size_t j = i + 1; j <= text.size(); ++j) {
                if (i != 0 || j != text.size()) {
                    INFO(text.substr(i, j - i));
                    CHECK_FALSE(parse_verifier_key(text.substr(i, j - i)));
                }
            }
            std::string changed = text;
            ++changed[i];
            INFO(changed);
            CHECK_FALSE(parse_verifier_key(changed));
        }
    }
    SECTION("every byte of a private key changed is refused") {
        const std::string text(peter_private);
        for (std::size_t i = 0; i < text.size(); ++i) {
            std::string changed = text;
            ++changed[i];
            INFO(changed);
            CHECK_FALSE(parse_private_key(changed));
        }
    }
}

TEST_CASE("signed notes: Go's published note is what sign_note makes of its text and key",
          "[audit][signing]") {
    const std::string expected = std::string(neumann_text) + "\n" + std::string(peter_signature);
    auto note = sign_note(neumann_text, signer(peter_private));
    REQUIRE(note);
    CHECK(note.value() == expected);

    SECTION("and the C2SP specification's example note opens with its verifier key") {
        auto opened = open_note(c2sp_note, std::vector{verifier(c2sp_verifier)});
        REQUIRE(opened);
        CHECK(opened.value().text == "This is an example message.\n");
        REQUIRE(opened.value().verified.size() == 1);
        CHECK(opened.value().verified[0].name == "example.com/foo");
    }
}

TEST_CASE("signed notes: a note opens to its text, with the known keys that signed it",
          "[audit][signing]") {
    const SigningKey key = generated("flowgate.example/log");
    const std::string text = "line one\n\nline three after an empty line\n";
    const std::string note = signed_note(text, {key});
    CHECK(note.starts_with(text + "\n— flowgate.example/log "));
    CHECK(note.ends_with("\n"));
    auto opened = open_note(note, std::vector{key.verifier()});
    REQUIRE(opened);
    CHECK(opened.value().text == text);
    CHECK(opened.value().verified == std::vector{key.verifier()});
    CHECK(opened.value().unknown.empty());

    SECTION("a text whose own last line is empty keeps it") {
        const std::string blank_last = "a\n\n";
        auto reopened = open_note(signed_note(blank_last, {key}), std::vector{key.verifier()});
        REQUIRE(reopened);
        CHECK(reopened.value().text == blank_last);
    }
    SECTION("a signature line repeated counts once") {
        const std::string line = note.substr(text.size() + 1);
        auto twice = open_note(note + line, std::vector{key.verifier()});
        REQUIRE(twice);
        CHECK(twice.value().verified.size() == 1);
    }
}

TEST_CASE("signed notes: two keys' signatures on one note both verify, and an unknown signer is "
          "ignored",
          "[audit][signing]") {
    SECTION("Go's published pair: PeterNeumann and EnochRoot on the same text") {
        const std::string note = std::string(neumann_text) + "\n" + std::string(peter_signature) +
                                 std::string(enoch_signature);
        const VerifierKey peter = verifier(peter_verifier);
        const VerifierKey enoch = verifier(enoch_verifier);
        auto both = open_note(note, std::vector{peter, enoch});
        REQUIRE(both);
        CHECK(both.value().text == neumann_text);
        CHECK(both.value().verified == std::vector{peter, enoch});
        CHECK(both.value().unknown.empty());

        auto only_peter = open_note(note, std::vector{peter});
        REQUIRE(only_peter);
        CHECK(only_peter.value().verified == std::vector{peter});
        CHECK(only_peter.value().unknown == std::vector{NoteSignature{"EnochRoot", 0xaf0cfe78U}});
    }
    SECTION("two generated keys, in the order they signed") {
        const std::vector keys{generated("host-1.example/log"), generated("witness.example")};
        const std::string note = signed_note("body\n", keys);
        auto both = open_note(note, std::vector{keys[1].verifier(), keys[0].verifier()});
        REQUIRE(both);
        CHECK(both.value().verified == std::vector{keys[0].verifier(), keys[1].verifier()});
        auto one = open_note(note, std::vector{keys[1].verifier()});
        REQUIRE(one);
        CHECK(one.value().verified == std::vector{keys[1].verifier()});
        REQUIRE(one.value().unknown.size() == 1);
        CHECK(one.value().unknown[0].name == "host-1.example/log");
    }
    SECTION("sixteen signers, the fewest the specification requires be read") {
        std::vector<SigningKey> keys;
        std::vector<VerifierKey> known;
        for (int i = 0; i < 16; ++i) {
            keys.push_back(generated("signer-" + std::to_string(i)));
            known.push_back(keys.back().verifier());
        }
        auto opened = open_note(signed_note("sixteen\n", keys), known);
        REQUIRE(opened);
        CHECK(opened.value().verified.size() == 16);
    }
}

TEST_CASE("signed notes: an altered text, an altered signature or another key is refused",
          "[audit][signing]") {
    const SigningKey key = generated("flowgate.example/log");
    const std::vector known{key.verifier()};
    const std::string text = checkpoint_body(sample_checkpoint());
    const std::string note = signed_note(text, {key});
    REQUIRE(open_note(note, known));

    SECTION("a flipped bit anywhere in the text") {
        for (std::size_t i = 0; i < text.size(); ++i) {
            for (unsigned bit = 0; bit < 8; ++bit) {
                std::string altered = note;
                altered[i] = static_cast<char>(altered[i] ^ (1U << bit));
                INFO("byte " << i << " bit " << bit);
                CHECK_FALSE(open_note(altered, known));
            }
        }
        const SigningError error = open_error(replaced(note, "20852163", "20852164"), known);
        CHECK(error.code == SigningErrc::invalid_signature);
        CHECK(error.message == "the signature by flowgate.example/log+" + key_id_hex(key.id()) +
                                   " does not verify: the note was altered, or not signed by "
                                   "that key");
    }
    SECTION("a flipped bit in the signature, or in the key ID before it") {
        const std::size_t at = note.rfind(' ') + 1;
        const std::string encoded = note.substr(at, note.size() - at - 1);
        const std::string raw = base64_decode(encoded).value();
        REQUIRE(raw.size() == 68);
        for (std::size_t i = 0; i < raw.size(); ++i) {
            std::string flipped = raw;
            flipped[i] = static_cast<char>(flipped[i] ^ 0x10);
            const SigningError error =
                open_error(note.substr(0, at) + base64_encode(flipped) + "\n", known);
            INFO("byte " << i);
            CHECK(error.code ==
                  (i < 4 ? SigningErrc::no_known_signature : SigningErrc::invalid_signature));
        }
        SECTION("a signature of the wrong length by a known key does not verify") {
            const SigningError error =
                open_error(note.substr(0, at) + base64_encode(raw.substr(0, 67)) + "\n", known);
            CHECK(error.code == SigningErrc::invalid_signature);
        }
    }
    SECTION("a different key of the same name is another key") {
        const SigningKey other = generated("flowgate.example/log");
        const SigningError error = open_error(signed_note(text, {other}), known);
        CHECK(error.code == SigningErrc::no_known_signature);
        CHECK(error.message == "the note is signed by none of the keys given (only by "
                               "flowgate.example/log+" +
                                   key_id_hex(other.id()) + ")");
    }
    SECTION("a key given with the signer's name and key ID but another public key") {
        VerifierKey impostor = generated("flowgate.example/log").verifier();
        impostor.id = key.id();
        CHECK(open_error(note, {impostor}).code == SigningErrc::invalid_signature);
    }
    SECTION("a known key's bad signature refuses the note even beside a good one") {
        const SigningKey second = generated("witness.example");
        const std::string two = signed_note(text, {second, key});
        const std::string bad = replaced(two, "20852163", "20852164");
        CHECK(open_error(bad, {second.verifier(), key.verifier()}).code ==
              SigningErrc::invalid_signature);
        SECTION("and so does a second, bad signature by the key whose first one verified") {
            std::string forged;
            for (unsigned shift : {24U, 16U, 8U, 0U}) {
                forged += static_cast<char>(key.id() >> shift & 0xFFU);
            }
            forged += std::string(64, '\0');
            const std::string good_then_bad =
                note + "— flowgate.example/log " + base64_encode(forged) + "\n";
            CHECK(open_error(good_then_bad, known).code == SigningErrc::invalid_signature);
        }
    }
    SECTION("no key given verifies nothing") {
        CHECK(open_error(note, {}).code == SigningErrc::no_known_signature);
    }
    SECTION("two keys given under one name and key ID") {
        VerifierKey twin = key.verifier();
        twin.public_key[0] ^= 1U;
        const SigningError error = open_error(note, {key.verifier(), twin});
        CHECK(error.code == SigningErrc::duplicate_key);
    }
}

TEST_CASE("signed notes: a note that is not of the specified form is refused, the rule named",
          "[audit][signing]") {
    const std::vector known{verifier(peter_verifier)};
    const std::string text(neumann_text);
    const std::string signature(peter_signature);
    const std::string note = text + "\n" + signature;
    REQUIRE(open_note(note, known));

    SECTION("every truncation of a note") {
        for (std::size_t size = 0; size < note.size(); ++size) {
            INFO("first " << size << " bytes");
            CHECK_FALSE(open_note(note.substr(0, size), known));
        }
        CHECK(open_error(note.substr(0, note.size() - 1), known).code ==
              SigningErrc::bad_signature_line);
        CHECK(open_error(text + "\n", known).code == SigningErrc::no_signature_lines);
        CHECK(open_error(text, known).code == SigningErrc::no_blank_line);
        CHECK(open_error("", known).code == SigningErrc::no_blank_line);
    }
    SECTION("the blank line missing") {
        const SigningError error = open_error(text + signature, known);
        CHECK(error.code == SigningErrc::no_blank_line);
        CHECK(error.message == "no blank line separates the note's text from its signature lines");
    }
    SECTION("bytes that are not UTF-8, or control characters (sumdb/note's bad messages)") {
        for (const std::string& bad :
             {"\x01" + note, "\xff" + note, replaced(note, "\n\n", "\r\n\r\n"),
              replaced(note, "problem,", "problem,\t"),
              text + std::string("\n\0", 2) + signature}) {
            const SigningError error = open_error(bad, known);
            CHECK(error.code == SigningErrc::not_note_text);
            CHECK_THAT(error.message, Catch::StartsWith("a note is UTF-8 without control"));
        }
        CHECK(open_error(replaced(note, "then", "th\xc0\xafn"), known).message ==
              "a note is UTF-8 without control characters but newline: line 2 is not");
    }
    SECTION("a line after the blank line that is not a signature line") {
        struct Case {
            std::string note;
            std::string says;
        };
        const std::vector<Case> cases = {
            {note + "Unexpected line.\n",
             "signature line 5 does not start with an em dash (U+2014) and a space"},
            {text + "\n- PeterNeumann x08go/ZJkuBS9UG\n", "does not start with an em dash"},
            {text + "\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZ"
                    "SNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
             "signature line 4 has a signature that is not base64"},
            {text + "\n— PeterNeumann\n", "is not '— <key name> <base64 signature>'"},
            {text + "\n— Peter+Neumann AAAAAAA=\n", "has a bad key name: key name "
                                                    "'Peter+Neumann' holds a '+'"},
            {text + "\n— PeterNeumann AAAAAA==\n", "too short"},
            {text + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1"
                    "FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM= \n",
             "not base64"},
            {text + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1"
                    "FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n\n",
             ""},
        };
        for (const Case& c : cases) {
            INFO(c.note);
            const SigningError error = open_error(c.note, known);
            if (c.says.empty()) {
                CHECK(error.code == SigningErrc::no_signature_lines);
            } else {
                CHECK(error.code == SigningErrc::bad_signature_line);
                CHECK_THAT(error.message, Catch::Contains(c.says));
            }
        }
    }
    SECTION("a non-canonical base64 signature (other trailing bits) is not the signature") {
        // x08g...AM= ends in 'M', whose last two bits are 0; 'N' sets them.
        CHECK(open_error(replaced(note, "nAM=", "nAN="), known).code ==
              SigningErrc::bad_signature_line);
    }
    SECTION("too many signatures, or too many bytes") {
        std::string many = text + "\n";
        for (int i = 0; i < 101; ++i) {
            many += signature;
        }
        CHECK(open_error(many, known).code == SigningErrc::too_many_signatures);
        CHECK(open_error(many, {}).code == SigningErrc::too_many_signatures);
        const std::string huge = std::string(max_note_bytes, 'a') + "\n\n" + signature;
        const SigningError error = open_error(huge, known);
        CHECK(error.code == SigningErrc::note_too_large);
        CHECK_THAT(error.message, Catch::Contains("past the limit of 1048576"));
    }
}

TEST_CASE("signed notes: sign_note signs only note text ending in a newline, each key once",
          "[audit][signing]") {
    const SigningKey key = generated("flowgate.example/log");
    CHECK(error_of(sign_note("no newline", key)).code == SigningErrc::not_note_text);
    CHECK(error_of(sign_note("a\tb\n", key)).message ==
          "the text of a note must be UTF-8 without control characters but newline: line 1 is "
          "not");
    CHECK(error_of(sign_note("ok\n\xff\n", key)).code == SigningErrc::not_note_text);
    CHECK(error_of(sign_note("a\n", std::vector<SigningKey>{})).code ==
          SigningErrc::no_signature_lines);
    CHECK(error_of(sign_note("a\n", std::vector{key, key})).code == SigningErrc::duplicate_key);
    CHECK(error_of(sign_note(std::string(max_note_bytes, 'a') + "\n", key)).code ==
          SigningErrc::note_too_large);
}

TEST_CASE("checkpoints: a checkpoint body round-trips, in the C2SP tlog-checkpoint layout",
          "[audit][signing]") {
    TreeCheckpoint checkpoint = sample_checkpoint();
    const std::string body = checkpoint_body(checkpoint);
    CHECK(body == "flowgate.example/kenpo-host-1\n20852163\n"
                  "AwoRGB8mLTQ7QklQV15lbHN6gYiPlp2kq7K5wMfO1dw=\n");
    auto parsed = parse_tree_checkpoint(body);
    REQUIRE(parsed);
    CHECK(parsed.value() == checkpoint);

    SECTION("with extension lines") {
        checkpoint.extensions = {"first extension", "— second"};
        auto again = parse_tree_checkpoint(checkpoint_body(checkpoint));
        REQUIRE(again);
        CHECK(again.value() == checkpoint);
    }
    SECTION("the empty tree, and the largest size") {
        checkpoint.size = 0;
        CHECK(checkpoint_body(checkpoint).starts_with("flowgate.example/kenpo-host-1\n0\n"));
        CHECK(parse_tree_checkpoint(checkpoint_body(checkpoint)).value().size == 0);
        checkpoint.size = 18446744073709551615U;
        CHECK(parse_tree_checkpoint(checkpoint_body(checkpoint)).value().size ==
              18446744073709551615U);
    }
    SECTION("signed, opened and parsed: the published sumdb tree note") {
        auto opened = open_note(sumdb_tree_note, std::vector{verifier(sumdb_verifier)});
        REQUIRE(opened);
        auto tree = parse_tree_checkpoint(opened.value().text);
        REQUIRE(tree);
        CHECK(tree.value().origin == "go.sum database tree");
        CHECK(tree.value().size == 6);
        CHECK(hex_of(tree.value().root) ==
              "c1ce12910b79da8e56da743c4e8d8046cfa65ae5098ecb3eb1d95ea22ab13263");
        CHECK(tree.value().extensions.empty());
        // Ed25519 is deterministic: the published key signs the body to the published note.
        CHECK(signed_note(checkpoint_body(tree.value()), {signer(sumdb_private)}) ==
              sumdb_tree_note);
    }
}

TEST_CASE("checkpoints: each malformed checkpoint body is refused, the line named",
          "[audit][signing]") {
    const std::string root = "AwoRGB8mLTQ7QklQV15lbHN6gYiPlp2kq7K5wMfO1dw=";
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"log\n5\n" + root, "its last line does not end in a newline"},
        {"log\n5\n", "it has 2 lines, not the three"},
        {"", "it has 0 lines"},
        {"\n5\n" + root + "\n", "the origin (line 1) is empty"},
        {"log\n\n" + root + "\n", "the tree size (line 2) is empty"},
        {"log\n05\n" + root + "\n", "the tree size '05' (line 2) has a leading zero"},
        {"log\n00\n" + root + "\n", "has a leading zero"},
        {"log\n-5\n" + root + "\n", "the tree size '-5' (line 2) is not a decimal number"},
        {"log\n+5\n" + root + "\n", "is not a decimal number"},
        {"log\n 5\n" + root + "\n", "is not a decimal number"},
        {"log\n5e3\n" + root + "\n", "is not a decimal number"},
        {"log\n0x5\n" + root + "\n", "is not a decimal number"},
        {"log\n５\n" + root + "\n", "is not a decimal number"},
        {"log\n18446744073709551616\n" + root + "\n", "does not fit in 64 bits"},
        {"log\n5\nnot base64!\n", "the root hash (line 3) is not base64"},
        {"log\n5\n" + root.substr(0, 43) + "\n", "is not base64"},
        {"log\n5\nAwoRGB8mLTQ7QklQV15lbHN6gYiPlp2kq7K5wMfO1Q==\n",
         "the root hash (line 3) is 31 bytes, not the 32 of a SHA-256 hash"},
        {"log\n5\n\n", "the root hash (line 3) is 0 bytes"},
        {"log\n5\n" + root + "\n\n", "line 4, an extension line, is empty"},
        {"log\n5\n" + root + "\next\n\n", "line 5, an extension line, is empty"},
        {"log\r\n5\r\n" + root + "\r\n", "not UTF-8 text without control characters"},
        {"log\xff\n5\n" + root + "\n", "not UTF-8 text"},
    };
    for (const auto& [body, says] : cases) {
        INFO(body);
        const SigningError error = error_of(parse_tree_checkpoint(body));
        CHECK(error.code == SigningErrc::bad_checkpoint);
        CHECK_THAT(error.message, Catch::StartsWith("checkpoint: ") && Catch::Contains(says));
    }

    SECTION("an origin or extension that is not one line cannot be written") {
        TreeCheckpoint checkpoint = sample_checkpoint();
        checkpoint.origin = "";
        CHECK(error_of(format_tree_checkpoint(checkpoint)).message ==
              "checkpoint: the origin is empty");
        checkpoint.origin = "two\nlines";
        CHECK(error_of(format_tree_checkpoint(checkpoint)).code == SigningErrc::bad_checkpoint);
        checkpoint.origin = "log";
        checkpoint.extensions = {"fine", ""};
        CHECK(error_of(format_tree_checkpoint(checkpoint)).message ==
              "checkpoint: extension line 2 is empty");
        checkpoint.extensions = {"tab\there"};
        CHECK(error_of(format_tree_checkpoint(checkpoint)).code == SigningErrc::bad_checkpoint);
    }
}

TEST_CASE("checkpoints: a file of kept checkpoints gives back each note as written, whether "
          "notes follow one another or the journal's lines hold them",
          "[audit][signing]") {
    const SigningKey key = generated("flowgate.example/kenpo-host-1");
    TreeCheckpoint first = sample_checkpoint();
    TreeCheckpoint second = sample_checkpoint();
    second.size += 5;
    const std::string one = signed_note(checkpoint_body(first), {key});
    const std::string two = signed_note(checkpoint_body(second), {key});
    const std::string body = checkpoint_body(second); // a store's unsigned checkpoint

    CHECK(checkpoint_notes(one) == std::vector{one});
    CHECK(checkpoint_notes(one + two) == std::vector{one, two});
    CHECK(checkpoint_notes("\n" + one + "\n\n" + body + "\n" + two + "\n") ==
          std::vector{one, body, two});
    const std::string journal =
        "Dec 02 07:00:00 host-1 flowgated[812]: [info] audit checkpoint: size=20852163 "
        "signed=yes note=\"" +
        note_on_one_line(one) + "\"\nDec 02 07:00:01 host-1 flowgated[812]: [info] event=stop\n" +
        "audit checkpoint: size=20852168 signed=yes note=\"" + note_on_one_line(two) + "\"\n";
    CHECK(checkpoint_notes(journal) == std::vector{one, two});
    CHECK(note_on_one_line("a\\b\nc\n") == "a\\\\b\\nc\\n");
    CHECK(checkpoint_notes("").empty());
}

namespace {

// Debian's interpreter has python3-cryptography; another python3 first on PATH may not.
std::string python() {
    return std::system("test -x /usr/bin/python3") == 0 ? "/usr/bin/python3" : "python3";
}

struct Run {
    int status = -1;
    std::string out;
};

Run run_note_check(const std::filesystem::path& dir, const std::filesystem::path& key,
                   const std::filesystem::path& note) {
    const std::filesystem::path out = dir / "note_check.out";
    const std::string command =
        python() + " '" FLOWGATE_SOURCE_DIR "/tests/unit/audit/note_check.py' '" + key.string() +
        "' '" + note.string() + "' > '" + out.string() + "' 2>&1";
    const int status = std::system(command.c_str());
    std::ifstream in(out);
    std::ostringstream text;
    text << in.rdbuf();
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text.str()};
}

void write_file(const std::filesystem::path& path, std::string_view text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
    REQUIRE(out.good());
}

} // namespace

TEST_CASE("signed checkpoints: an independent verifier (Python, cryptography) accepts what "
          "flowgate signs and refuses it altered",
          "[audit][signing]") {
    INFO("python3 with the cryptography module is needed (scripts/install-deps.sh installs "
         "python3-cryptography)");
    REQUIRE(std::system((python() + " -c 'import cryptography' > /dev/null 2>&1").c_str()) == 0);

    flowgate::testing::TempDir dir("flowgate-signing");
    const SigningKey key = generated("flowgate.example/kenpo-host-1");
    const SigningKey witness = generated("witness.example");
    const std::string note =
        signed_note(checkpoint_body(sample_checkpoint()), std::vector{witness, key});
    write_file(dir.path() / "vkey", format_verifier_key(key.verifier()) + "\n");
    write_file(dir.path() / "checkpoint", note);

    const Run good = run_note_check(dir.path(), dir.path() / "vkey", dir.path() / "checkpoint");
    INFO(good.out);
    CHECK(good.status == 0);
    CHECK(good.out ==
          "flowgate.example/kenpo-host-1\n20852163\n" + hex_of(sample_checkpoint().root) + "\n");

    SECTION("and so does the short checker docs/audit-store.md gives auditors") {
        std::ifstream doc(FLOWGATE_SOURCE_DIR "/docs/audit-store.md");
        std::string line;
        while (std::getline(doc, line) && line != "### Checking one without flowgate") {
        }
        while (std::getline(doc, line) && line != "```python") {
        }
        std::string script;
        while (std::getline(doc, line) && line != "```") {
            script += line + "\n";
        }
        REQUIRE_THAT(script, Catch::Contains("Ed25519PublicKey"));
        write_file(dir.path() / "doc_check.py", script);
        const std::string command = python() + " '" + (dir.path() / "doc_check.py").string() +
                                    "' '" + (dir.path() / "vkey").string() + "' '" +
                                    (dir.path() / "checkpoint").string() + "' > '" +
                                    (dir.path() / "doc.out").string() + "' 2>&1";
        CHECK(std::system(command.c_str()) == 0);
        std::ifstream in(dir.path() / "doc.out");
        std::ostringstream out;
        out << in.rdbuf();
        CHECK(out.str() == "ok: flowgate.example/kenpo-host-1, 20852163 leaves, root " +
                               hex_of(sample_checkpoint().root) + "\n");
        write_file(dir.path() / "checkpoint", replaced(note, "20852163", "20852164"));
        CHECK(std::system(command.c_str()) != 0);
    }
    SECTION("the published sumdb tree note passes it too") {
        write_file(dir.path() / "sumdb-vkey", sumdb_verifier);
        write_file(dir.path() / "sumdb-note", sumdb_tree_note);
        const Run sumdb =
            run_note_check(dir.path(), dir.path() / "sumdb-vkey", dir.path() / "sumdb-note");
        INFO(sumdb.out);
        CHECK(sumdb.status == 0);
        CHECK(sumdb.out == "go.sum database tree\n6\n"
                           "c1ce12910b79da8e56da743c4e8d8046cfa65ae5098ecb3eb1d95ea22ab13263\n");
    }
    SECTION("altered copies are refused") {
        const std::size_t last = note.rfind(' ') + 1;
        std::string other_signature = note;
        other_signature[last + 10] = other_signature[last + 10] == 'A' ? 'B' : 'A';
        for (const std::string& altered :
             {replaced(note, "20852163", "20852164"), replaced(note, "kenpo-host-1\n", "x\n"),
              other_signature, replaced(note, "\n\n", "\n")}) {
            write_file(dir.path() / "altered", altered);
            const Run refused =
                run_note_check(dir.path(), dir.path() / "vkey", dir.path() / "altered");
            INFO(altered);
            INFO(refused.out);
            CHECK(refused.status == 1);
            CHECK_THAT(refused.out, Catch::StartsWith("refused: "));
        }
        // Only the witness's key: no signature by the log's key.
        write_file(dir.path() / "witness-vkey", format_verifier_key(witness.verifier()));
        std::string no_log_key = note.substr(0, note.find("— flowgate.example"));
        write_file(dir.path() / "witness-only", no_log_key);
        const Run refused =
            run_note_check(dir.path(), dir.path() / "vkey", dir.path() / "witness-only");
        CHECK(refused.status == 1);
        CHECK_THAT(refused.out, Catch::Contains("no signature by flowgate.example/kenpo-host-1"));
    }
}
