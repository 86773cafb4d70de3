// The key flowgated signs its checkpoints with, as an admin gives it: `--signing-key`
// over `signing_key` in the configuration over systemd's credential; the key said at start
// and in `status` (the daemon's answer and `flowgate status`), or that checkpoints are
// unsigned; and a configured key that cannot be used refuses the start, naming its path,
// before anything is recorded.
#include "tests/integration/daemon_rig.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <fstream>
#include <sys/stat.h>

using namespace flowgate::integration;
namespace json = boost::json;

namespace {

std::string toml_path(const fs::path& path) {
    return json::serialize(json::value(path.string()));
}

// A key made by `flowgate audit keygen NAME -o FILE`: its verifier key (without newline).
std::string keygen(const fs::path& dir, const std::string& name, const fs::path& file) {
    const CommandResult made = run_flowgate(dir, {"audit", "keygen", name, "-o", file.string()});
    INFO(made.err);
    REQUIRE(made.status == 0);
    REQUIRE(made.out.ends_with("\n"));
    return made.out.substr(0, made.out.size() - 1);
}

json::object status_of(const Daemon& daemon) {
    auto client = daemon.connect();
    auto answer = client.request(json::object{{"op", "status"}});
    REQUIRE(answer);
    const json::value* checkpoints = answer.value->if_contains("checkpoints");
    INFO(json::serialize(*answer.value));
    REQUIRE(checkpoints != nullptr);
    REQUIRE(checkpoints->is_object());
    return checkpoints->as_object();
}

// What `flowgate status` prints for the daemon.
std::string status_text(const Daemon& daemon) {
    const CommandResult shown =
        run_flowgate(daemon.dir(), {"--socket", daemon.socket().string(), "status"});
    INFO(shown.err);
    REQUIRE(shown.status == 0);
    return shown.out;
}

// A credentials directory as systemd makes it for LoadCredential=signing_key:…, holding a
// copy of `key` (or none).
fs::path credentials_dir(const Daemon& daemon, const std::optional<fs::path>& key) {
    const fs::path dir = daemon.dir() / "credentials";
    fs::create_directory(dir);
    if (key) {
        fs::copy_file(*key, dir / "signing_key");
        fs::permissions(dir / "signing_key", fs::perms::owner_read);
    }
    return dir;
}

// Starts of `daemon` that must fail on its key: its store made first (without a key), so
// that only the key can be what refuses.
void check_refused_for_key(Daemon& daemon, const fs::path& key, const std::string& why) {
    REQUIRE(daemon.init_store() == 0);
    const std::string log_before = daemon.log();
    Launch launch;
    launch.extra_arguments = {"--signing-key", key.string()};
    CHECK(daemon.run_to_exit(launch) == 1);
    const std::string log = daemon.log().substr(log_before.size());
    CHECK_THAT(log, Catch::Contains("event=start_failed reason=signing_key path=" + key.string()) &&
                        Catch::Contains(why));
    CHECK_FALSE(fs::exists(daemon.socket()));
    CHECK(sqlite_rows(daemon.db(), "SELECT seq FROM audit_rows WHERE kind != 'init'").empty());
}

} // namespace

TEST_CASE("flowgated: --signing-key overrides signing_key and the credential, and status says "
          "which key signs",
          "[integration][signing]") {
    Daemon daemon;
    const fs::path configured = daemon.dir() / "configured.key";
    const fs::path flagged = daemon.dir() / "flagged.key";
    const fs::path credential = daemon.dir() / "credential.key";
    keygen(daemon.dir(), "configured.example/flowgate", configured);
    const std::string verifier = keygen(daemon.dir(), "flagged.example/flowgate", flagged);
    keygen(daemon.dir(), "credential.example/flowgate", credential);
    RigConfig config;
    config.keys["signing_key"] = toml_path(configured);
    daemon.write_config(config);

    Launch launch;
    launch.extra_arguments = {"--signing-key", flagged.string()};
    launch.env.emplace_back("CREDENTIALS_DIRECTORY", credentials_dir(daemon, credential).string());
    REQUIRE(daemon.start(launch));

    const json::object checkpoints = status_of(daemon);
    CHECK(checkpoints.at("signed") == true);
    CHECK(text_of(checkpoints, "key_name") == "flagged.example/flowgate");
    // The key ID is the verifier key's second part.
    CHECK(text_of(checkpoints, "key_id") == verifier.substr(verifier.find('+') + 1, 8));
    CHECK(text_of(checkpoints, "verifier_key") == verifier);
    CHECK(text_of(checkpoints, "key_file") == flagged.string());
    CHECK_THAT(daemon.log(), Catch::Contains("checkpoints signed by flagged.example/flowgate (" +
                                             verifier + ")"));
    CHECK_THAT(status_text(daemon), Catch::Contains("checkpoints:\n  signed: true\n") &&
                                        Catch::Contains("  verifier_key: " + verifier + "\n"));
}

TEST_CASE("flowgated: with no key configured, the credential systemd passes signs",
          "[integration][signing]") {
    Daemon daemon;
    const fs::path key = daemon.dir() / "signing.key";
    const std::string verifier = keygen(daemon.dir(), "host-1.kenpo.example/flowgate", key);
    Launch launch;
    launch.env.emplace_back("CREDENTIALS_DIRECTORY", credentials_dir(daemon, key).string());
    REQUIRE(daemon.start(launch));
    const json::object checkpoints = status_of(daemon);
    CHECK(checkpoints.at("signed") == true);
    CHECK(text_of(checkpoints, "verifier_key") == verifier);
    CHECK(text_of(checkpoints, "key_file") == (daemon.dir() / "credentials/signing_key").string());
}

TEST_CASE("flowgated: without a key, checkpoints are unsigned and start and status say so",
          "[integration][signing]") {
    Daemon daemon;
    Launch launch;
    // A credentials directory without the key is no key either.
    launch.env.emplace_back("CREDENTIALS_DIRECTORY",
                            credentials_dir(daemon, std::nullopt).string());
    REQUIRE(daemon.start(launch));
    const json::object checkpoints = status_of(daemon);
    CHECK(checkpoints.at("signed") == false);
    CHECK(text_of(checkpoints, "why") == "no signing_key configured");
    CHECK_FALSE(checkpoints.contains("key_name"));
    CHECK_THAT(daemon.log(),
               Catch::Contains("checkpoints are unsigned: no signing_key configured"));
    CHECK_THAT(status_text(daemon), Catch::Contains("checkpoints:\n  signed: false\n"));
}

TEST_CASE("flowgated: a configured key that cannot be used refuses the start, naming its path",
          "[integration][signing]") {
    Daemon daemon;
    const fs::path key = daemon.dir() / "signing.key";
    SECTION("a key file that is missing") {
        check_refused_for_key(daemon, key, "cannot open the key file: No such file or directory");
    }
    SECTION("a key file others may read") {
        keygen(daemon.dir(), "host-1.kenpo.example/flowgate", key);
        fs::permissions(key, fs::perms::group_read | fs::perms::others_read, fs::perm_options::add);
        check_refused_for_key(daemon, key, "the key file's mode is 0644");
    }
    SECTION("a file that is not a private key") {
        {
            std::ofstream out(key);
            out << "not a key at all\n";
        }
        fs::permissions(key, fs::perms::owner_read | fs::perms::owner_write);
        check_refused_for_key(daemon, key, "does not start with PRIVATE+KEY+");
    }
    SECTION("a FIFO where the key file should be (read, it would wait for a writer)") {
        REQUIRE(::mkfifo(key.c_str(), 0600) == 0);
        check_refused_for_key(daemon, key, "not a regular file, so not a key file");
    }
    SECTION("a directory where the key file should be") {
        fs::create_directory(key);
        check_refused_for_key(daemon, key, "not a regular file, so not a key file");
    }
    SECTION("a file far longer than a key (a key pasted into a log, say)") {
        const fs::path made = daemon.dir() / "made.key";
        keygen(daemon.dir(), "host-1.kenpo.example/flowgate", made);
        {
            std::ifstream in(made);
            std::ofstream out(key);
            out << in.rdbuf() << std::string(8192, ' ');
        }
        fs::permissions(key, fs::perms::owner_read | fs::perms::owner_write,
                        fs::perm_options::replace);
        check_refused_for_key(daemon, key, "longer than a private key file");
    }
}
