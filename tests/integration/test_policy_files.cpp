// Only regular files are read as a policy: a FIFO given as the policy, a policy file
// swapped for a FIFO between two reloads, a device, or a file far past the size limit
// is an error naming the file — at start, at a reload and in the policy tools — never
// a load that waits for a writer forever or reads without end. A refused reload changes
// nothing, and the next one works.
#include "tests/integration/daemon_rig.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

using namespace flowgate::integration;
namespace json = boost::json;

namespace {

Launch with_policy(const std::string& path) {
    Launch launch;
    launch.extra_arguments = {"--policy", path};
    return launch;
}

// The bundled policy as one file, for a --policy that names a file.
void write_single_file_policy(const Daemon& daemon, const fs::path& file) {
    std::ofstream out(file, std::ios::binary);
    for (const char* name : {"base.policy", "kenpo.policy", "members.policy"}) {
        out << read_text(daemon.policy_dir() / name) << "\n";
    }
    REQUIRE(out);
}

std::string error_message(const json::object& answer) {
    return text_of(answer.at("error").as_object(), "message");
}

// `flowgate` run with ARGUMENTS, given at most 20 s (a hang fails, it does not stall).
CommandResult run_flowgate(const Daemon& daemon, const std::string& arguments) {
    return run_command(daemon.dir(), "timeout 20 " + shell_quoted(FLOWGATE_PATH) + " " + arguments);
}

} // namespace

TEST_CASE("flowgated: a FIFO given as --policy is refused at start, naming it", "[integration]") {
    Daemon daemon;
    const fs::path fifo = daemon.dir() / "fifo.policy";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    CHECK(daemon.run_to_exit(with_policy(fifo.string()), 15s) == 1);
    CHECK_THAT(daemon.log(), Catch::Contains(fifo.string() + ": error: this is a FIFO"));
}

TEST_CASE("flowgated: a device given as --policy is refused at start, naming it", "[integration]") {
    Daemon daemon;
    CHECK(daemon.run_to_exit(with_policy("/dev/zero"), 15s) == 1);
    CHECK_THAT(daemon.log(), Catch::Contains("/dev/zero: error: this is a character device"));
}

TEST_CASE("flowgated: a policy file that becomes a FIFO fails its reload, and the next one works",
          "[integration]") {
    RigConfig config = me_as_admin();
    Daemon daemon(config);
    const fs::path file = daemon.dir() / "single.policy";
    write_single_file_policy(daemon, file);
    config.keys["policy"] = json::serialize(json::value(file.string()));
    daemon.write_config(config);
    REQUIRE(daemon.start());
    auto client = daemon.connect();
    const std::string original = current_hash(client);

    // Between two reloads the file is swapped for a FIFO nobody writes to.
    const fs::path saved = daemon.dir() / "single.policy.saved";
    fs::rename(file, saved);
    REQUIRE(::mkfifo(file.c_str(), 0600) == 0);
    json::object refused = reload_answer(client);
    CHECK_THAT(error_message(refused), Catch::Contains(file.string() + ": error: this is a FIFO"));
    check_reload_failed_keeps(daemon, client, refused, original, "this is a FIFO");

    // The file back, changed: the next reload works, and so does a SIGHUP.
    fs::remove(file);
    fs::rename(saved, file);
    {
        std::ofstream out(file, std::ios::app);
        out << "\n# back again\n";
    }
    json::object reloaded = reload_answer(client);
    CHECK(reloaded.at("reloaded") == true);
    CHECK(text_of(reloaded, "policy") != original);
    daemon.signal(SIGTERM);
    CHECK(daemon.wait_exit(15s) == 0);
}

TEST_CASE("flowgated: a policy file of 100 MB fails the reload by name, and reads none of it",
          "[integration]") {
    Daemon daemon(me_as_admin());
    REQUIRE(daemon.start());
    auto client = daemon.connect();
    const std::string original = current_hash(client);

    // Sparse: 100 MB to whoever reads it, no disk for the test.
    const fs::path huge = daemon.policy_dir() / "zz-huge.policy";
    { std::ofstream out(huge); }
    fs::resize_file(huge, 100 * 1000 * 1000);
    json::object refused = reload_answer(client);
    CHECK(error_code(refused) == "reload_failed");
    CHECK_THAT(error_message(refused),
               Catch::Contains(huge.string() + ": error: this file is larger than") &&
                   Catch::Contains("at most 16777216 bytes"));
    CHECK(current_hash(client) == original);

    fs::remove(huge);
    CHECK(reload_answer(client).at("reloaded") == true);
}

TEST_CASE("flowgate policy check, fmt and test refuse a FIFO instead of waiting on it",
          "[integration]") {
    Daemon daemon; // for its directory and its copy of the policy; not started
    const fs::path fifo = daemon.dir() / "fifo.policy";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);

    SECTION("check") {
        CommandResult result = run_flowgate(daemon, "policy check " + shell_quoted(fifo.string()));
        CHECK(result.status == 1); // a policy that does not load
        CHECK_THAT(result.err, Catch::Contains(fifo.string() + ": error: this is a FIFO"));
    }
    SECTION("fmt") {
        CommandResult result = run_flowgate(daemon, "policy fmt " + shell_quoted(fifo.string()));
        CHECK(result.status == 2);
        CHECK_THAT(result.err, Catch::Contains(fifo.string() + ": error: this is a FIFO"));
    }
    SECTION("test, with a FIFO among the test files") {
        const fs::path tests = daemon.policy_dir() / "tests";
        fs::create_directory(tests);
        REQUIRE(::mkfifo((tests / "cases.jsonl").c_str(), 0600) == 0);
        CommandResult result =
            run_flowgate(daemon, "policy test " + shell_quoted(daemon.policy_dir().string()));
        CHECK(result.status == 2);
        CHECK_THAT(result.err, Catch::Contains("cases.jsonl: error: this is a FIFO"));
    }
}
