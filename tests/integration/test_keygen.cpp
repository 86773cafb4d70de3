// `flowgate audit keygen` and `verifier-key` as an admin runs them: the real binary makes
// a private key file only it can read and prints a verifier key that another program
// (Python's cryptography, from the file's seed) derives too; an existing file is never
// replaced, a bad name makes no file.
#include "tests/integration/daemon_rig.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <sys/stat.h>

using namespace flowgate::integration;

namespace {

const std::string key_name = "host-1.kenpo.example/flowgate";

// Debian's interpreter has python3-cryptography; another python3 first on PATH may not.
std::string python() {
    return fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
}

// The verifier key Python's cryptography derives from a private key file's seed, with
// the key ID recomputed from the name and public key.
constexpr const char* derive_verifier_key = R"(
import base64, hashlib, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
text = open(sys.argv[1]).read()
assert text.endswith("\n") and text.count("\n") == 1, "one line"
private, key, name, key_id, material = text[:-1].split("+", 4)
assert (private, key) == ("PRIVATE", "KEY")
seed = base64.b64decode(material, validate=True)
assert len(seed) == 33 and seed[0] == 1, "0x01 and a 32-byte seed"
public = Ed25519PrivateKey.from_private_bytes(seed[1:]).public_key()
encoded = b"\x01" + public.public_bytes(Encoding.Raw, PublicFormat.Raw)
computed = hashlib.sha256(name.encode() + b"\n" + encoded).digest()[:4].hex()
assert computed == key_id, "key ID"
print(name + "+" + computed + "+" + base64.b64encode(encoded).decode())
)";

unsigned mode_of(const fs::path& path) {
    struct stat status {};
    REQUIRE(::stat(path.c_str(), &status) == 0);
    return status.st_mode & 07777U;
}

} // namespace

TEST_CASE("audit keygen: a new key file of mode 0600 and its verifier key on stdout", "[keygen]") {
    TempDir dir;
    const fs::path key_file = dir.path() / "signing.key";
    // Whatever the umask, the file is the owner's alone.
    const CommandResult made = run_command(
        dir.path(), "(umask 000; exec " + shell_quoted(FLOWGATE_PATH) + " audit keygen " +
                        shell_quoted(key_name) + " -o " + shell_quoted(key_file.string()) + ")");
    INFO(made.err);
    REQUIRE(made.status == 0);
    CHECK(mode_of(key_file) == 0600U);

    const std::regex verifier_form(R"(host-1\.kenpo\.example/flowgate\+[0-9a-f]{8}\+)"
                                   R"([A-Za-z0-9+/]{44}\n)");
    CHECK(std::regex_match(made.out, verifier_form));
    const std::string key_id = made.out.substr(key_name.size() + 1, 8);
    const std::string text = read_text(key_file);
    CHECK(text.starts_with("PRIVATE+KEY+" + key_name + "+" + key_id + "+"));
    CHECK(text.find(made.out.substr(key_name.size() + 10)) == std::string::npos);

    SECTION("verifier-key prints the same verifier key from the file") {
        const CommandResult shown =
            run_flowgate(dir.path(), {"audit", "verifier-key", key_file.string()});
        CHECK(shown.status == 0);
        CHECK(shown.out == made.out);
        CHECK(shown.err.empty());
    }
    SECTION("another implementation derives the same verifier key from the file's seed") {
        INFO("python3 with the cryptography module is needed (scripts/install-deps.sh "
             "installs python3-cryptography)");
        const fs::path script = dir.path() / "derive.py";
        {
            std::ofstream out(script);
            out << derive_verifier_key;
        }
        const CommandResult derived =
            run_command(dir.path(), python() + " " + shell_quoted(script.string()) + " " +
                                        shell_quoted(key_file.string()));
        INFO(derived.err);
        REQUIRE(derived.status == 0);
        CHECK(derived.out == made.out);
    }
    SECTION("a second key of the same name is another key") {
        const fs::path second = dir.path() / "second.key";
        const CommandResult again =
            run_flowgate(dir.path(), {"audit", "keygen", key_name, "-o", second.string()});
        REQUIRE(again.status == 0);
        CHECK(again.out != made.out);
    }
}

TEST_CASE("audit keygen: an existing file is never overwritten", "[keygen]") {
    TempDir dir;
    const fs::path key_file = dir.path() / "signing.key";
    const CommandResult first =
        run_flowgate(dir.path(), {"audit", "keygen", key_name, "-o", key_file.string()});
    REQUIRE(first.status == 0);
    const std::string kept = read_text(key_file);

    const CommandResult second =
        run_flowgate(dir.path(), {"audit", "keygen", key_name, "-o", key_file.string()});
    CHECK(second.status == 2);
    CHECK(second.out.empty());
    CHECK(second.err == "flowgate audit: error: " + key_file.string() +
                            ": exists; a key file is never overwritten (remove it first if the "
                            "key it holds is to be replaced)\n");
    CHECK(read_text(key_file) == kept);

    SECTION("nor is any other file, nor what a symbolic link points to") {
        const fs::path other = dir.path() / "notes.txt";
        {
            std::ofstream out(other);
            out << "keep me\n";
        }
        const fs::path link = dir.path() / "link.key";
        fs::create_symlink(other, link);
        for (const fs::path& target : {other, link}) {
            const CommandResult refused =
                run_flowgate(dir.path(), {"audit", "keygen", key_name, "-o", target.string()});
            CHECK(refused.status == 2);
            CHECK(refused.out.empty());
        }
        CHECK(read_text(other) == "keep me\n");
    }
}

TEST_CASE("audit keygen: a bad key name or an unwritable place makes no file", "[keygen]") {
    TempDir dir;
    const fs::path key_file = dir.path() / "signing.key";
    for (const auto& [name, says] : std::vector<std::pair<std::string, std::string>>{
             {"two words", "key name 'two words' holds white space"},
             {"a+b", "key name 'a+b' holds a '+'"},
             {"", "a key name cannot be empty"},
             {"全角\u3000空白", "key name '全角\u3000空白' holds white space"}}) {
        INFO(name);
        const CommandResult refused =
            run_flowgate(dir.path(), {"audit", "keygen", name, "-o", key_file.string()});
        CHECK(refused.status == 2);
        CHECK(refused.out.empty());
        CHECK(refused.err == "flowgate audit: error: " + says + "\n");
        CHECK_FALSE(fs::exists(key_file));
    }
    const fs::path nowhere = dir.path() / "missing-dir" / "signing.key";
    const CommandResult unwritable =
        run_flowgate(dir.path(), {"audit", "keygen", key_name, "-o", nowhere.string()});
    CHECK(unwritable.status == 2);
    CHECK(unwritable.out.empty());
    CHECK_THAT(unwritable.err, Catch::Contains("cannot create the key file"));
    const CommandResult no_output = run_flowgate(dir.path(), {"audit", "keygen", key_name});
    CHECK(no_output.status == 2);
    CHECK_THAT(no_output.err, Catch::Contains("--output is required"));
}

TEST_CASE("audit verifier-key: a file that is not a private key is refused", "[keygen]") {
    TempDir dir;
    const fs::path file = dir.path() / "verifier.txt";
    {
        std::ofstream out(file);
        out << "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW\n";
    }
    const CommandResult refused =
        run_flowgate(dir.path(), {"audit", "verifier-key", file.string()});
    CHECK(refused.status == 2);
    CHECK(refused.out.empty());
    CHECK(refused.err == "flowgate audit: error: " + file.string() +
                             ": private key: the text does not start with PRIVATE+KEY+\n");
    const CommandResult missing =
        run_flowgate(dir.path(), {"audit", "verifier-key", (dir.path() / "none").string()});
    CHECK(missing.status == 2);
    CHECK_THAT(missing.err, Catch::Contains("cannot open the key file"));
}
