// A store that cannot be written turns every check into a deny with the reason
// audit_unavailable — never an allow that is not in the log — status says so, and the
// daemon recovers by itself once the store can be written again. Two ways a real
// store stops taking writes: its filesystem fills up, or another process holds the
// database's write lock (an auditor's shell left in a transaction).
#include "tests/integration/daemon_rig.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <sys/mount.h>
#include <thread>
#include <unistd.h>

using namespace flowgate::integration;
namespace json = boost::json;

namespace {

void check_audit_unavailable(const json::object& answer) {
    INFO(json::serialize(answer));
    CHECK(text_of(answer, "decision") == "deny");
    CHECK(text_of(answer, "reason") == "audit_unavailable");
    CHECK(answer.at("audit_seq").is_null());
    CHECK(text_of(answer, "policy").rfind("sha256:", 0) == 0);
}

json::object audit_status(flowgate::client::Client& client) {
    auto status = client.request(json::object{{"op", "status"}});
    REQUIRE(status);
    return *status.value;
}

// Fills the filesystem holding DIR up to its last byte.
void fill(const fs::path& file) {
    std::ofstream out(file, std::ios::binary);
    const std::string block(64 * 1024, 'x');
    while (out.write(block.data(), static_cast<std::streamsize>(block.size()))) {
        out.flush();
    }
}

// A check whose row needs more space than any the store has already allocated.
json::object big_check() {
    json::object request = allowed_check();
    request["subject"] = std::string(300 * 1024, 'p');
    return request;
}

} // namespace

TEST_CASE("flowgated: a full disk answers audit_unavailable, and space coming back heals it",
          "[integration]") {
    if (::geteuid() != 0) {
        WARN("mounting a small tmpfs needs root; the full-disk case runs only as root");
        return;
    }
    TempDir mount_dir;
    const fs::path small = mount_dir.path() / "small";
    fs::create_directory(small);
    REQUIRE(::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=4m") == 0);
    struct Unmount {
        fs::path path;
        ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
    } unmount{small};

    RigConfig config;
    config.keys["audit_db"] = json::serialize(json::value((small / "audit.db").string()));
    config.limits["max_line_bytes"] = 1024 * 1024;
    Daemon daemon(config);
    REQUIRE(daemon.start());
    auto client = daemon.connect();
    auto before = client.request(allowed_check());
    REQUIRE(before);
    CHECK(text_of(*before.value, "decision") == "allow");

    fill(small / "filler");
    for (int i = 0; i < 3; ++i) {
        auto refused = client.request(big_check());
        REQUIRE(refused);
        check_audit_unavailable(*refused.value);
    }
    json::object status = audit_status(client);
    const json::object& audit = status.at("audit").as_object();
    CHECK(audit.at("available") == false);
    CHECK_THAT(text_of(audit, "last_error"), Catch::Contains("full"));
    CHECK(status.at("counters").at("audit_unavailable") == 3);

    fs::remove(small / "filler");
    auto after = client.request(big_check());
    REQUIRE(after);
    CHECK(text_of(*after.value, "decision") == "allow");
    REQUIRE(after.value->at("audit_seq").is_int64());
    CHECK(audit_status(client).at("audit").at("available") == true);
    // The log holds exactly the two allows answered, and chains across the failure.
    json::array allows =
        sqlite_rows(small / "audit.db", "SELECT seq FROM audit_rows WHERE decision = 'allow'");
    CHECK(allows.size() == 2);
    daemon.signal(SIGTERM);
    CHECK(daemon.wait_exit() == 0);
}

TEST_CASE("flowgated: a store locked by another process answers audit_unavailable, then recovers",
          "[integration]") {
    Daemon daemon;
    REQUIRE(daemon.start());
    auto client = daemon.connect();
    REQUIRE(client.request(allowed_check()));

    // An sqlite3 shell that takes the write lock and keeps it until told to commit.
    const fs::path said = daemon.dir() / "shell.out";
    const std::string command =
        "sqlite3 '" + daemon.db().string() + "' > '" + said.string() + "' 2>&1";
    FILE* shell = ::popen(command.c_str(), "w");
    REQUIRE(shell != nullptr);
    std::fputs("BEGIN IMMEDIATE;\nSELECT 'locked';\n", shell);
    std::fflush(shell);
    bool locked = false;
    for (int i = 0; i < 200 && !locked; ++i) {
        std::ifstream in(said);
        std::string line;
        locked = std::getline(in, line) && line == "locked";
        if (!locked) {
            std::this_thread::sleep_for(20ms);
        }
    }
    REQUIRE(locked);

    client.set_timeout(10s);
    auto refused = client.request(allowed_check());
    REQUIRE(refused);
    check_audit_unavailable(*refused.value);
    json::object status = audit_status(client);
    CHECK(status.at("audit").at("available") == false);
    CHECK_THAT(text_of(status.at("audit").as_object(), "last_error"), Catch::Contains("locked"));

    std::fputs("COMMIT;\n", shell);
    CHECK(::pclose(shell) == 0);
    auto allowed = client.request(allowed_check());
    REQUIRE(allowed);
    CHECK(text_of(*allowed.value, "decision") == "allow");
    CHECK(audit_status(client).at("audit").at("available") == true);
    CHECK(audit_rows(daemon.db(), "check").size() == 2);
}
