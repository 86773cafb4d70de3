// A reload is bounded in time: one whose load does not finish within reload_timeout_ms
// fails with a diagnostic (answered, and audited as reload_failed) while the old policy
// keeps serving; the load left running cannot swap its policy in later, cannot hold up
// the next reload, and cannot hold up SIGTERM. The slow load here is a large policy,
// well within the size limit, that takes seconds to check and compile against a
// deadline of one second.
#include "tests/integration/daemon_rig.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <thread>
#include <unistd.h>

using namespace flowgate::integration;
namespace json = boost::json;

namespace {

RigConfig admin_with_deadline() {
    RigConfig config = me_as_admin();
    config.durability = "relaxed";
    config.limits["reload_timeout_ms"] = 1000;
    return config;
}

// A valid policy file of some 12 MB: 250,000 contractors, all members of the class the
// table's rules name, so each rule is compiled for each of them. It takes several
// seconds to load on any machine these tests run on.
void write_slow_policy(const fs::path& file) {
    constexpr int parties = 250'000;
    std::ofstream out(file, std::ios::binary);
    for (int i = 0; i < parties; ++i) {
        out << "party bulk_" << i << " \"bulk " << i << "\" role contractor;\n";
    }
    out << "members checkup_institutions [";
    for (int i = 0; i < parties; ++i) {
        out << (i == 0 ? "" : ", ") << "bulk_" << i;
    }
    out << "];\n";
    REQUIRE(out);
}

} // namespace

TEST_CASE("flowgated: a reload past reload_timeout_ms fails, the old policy serves, the next "
          "reload works",
          "[integration]") {
    Daemon daemon(admin_with_deadline());
    REQUIRE(daemon.start());
    const fs::path slow = daemon.policy_dir() / "zz-slow.policy";
    write_slow_policy(slow);
    auto client = daemon.connect();
    const std::string original = current_hash(client);

    json::object refused = reload_answer(client);
    CHECK_THAT(text_of(refused.at("error").as_object(), "message"),
               Catch::Contains("did not load within reload_timeout_ms (1000 ms)"));
    check_reload_failed_keeps(daemon, client, refused, original, "reload_timeout_ms");
    CHECK(audit_rows(daemon.db(), "reload_failed")[0].at("uid") ==
          static_cast<std::int64_t>(::getuid()));

    // The abandoned load ends on its own, later: its policy must never serve.
    fs::remove(slow);
    {
        std::ofstream out(daemon.policy_dir() / "members.policy", std::ios::app);
        out << "\n# after the slow one\n";
    }
    json::object reloaded = reload_answer(client);
    INFO(json::serialize(reloaded));
    REQUIRE(reloaded.at("reloaded") == true);
    const std::string fresh = text_of(reloaded, "policy");
    CHECK(fresh != original);
    std::this_thread::sleep_for(10s); // long enough for the abandoned load to have ended
    CHECK(current_hash(client) == fresh);
    auto checked = client.request(allowed_check());
    REQUIRE(checked);
    CHECK(text_of(*checked.value, "policy") == fresh);
    CHECK(audit_rows(daemon.db(), "reload").size() == 1);
}

TEST_CASE("flowgated: SIGTERM during a slow reload stops the daemon, the reload answered",
          "[integration]") {
    Daemon daemon(admin_with_deadline());
    REQUIRE(daemon.start());
    write_slow_policy(daemon.policy_dir() / "zz-slow.policy");
    auto client = daemon.connect();
    const std::string original = current_hash(client);

    SECTION("a reload asked over the socket, then SIGTERM") {
        RawConnection asking(daemon.socket());
        REQUIRE(asking.connected());
        std::string line = "{\"op\":\"reload\",\"id\":1}\n";
        REQUIRE(asking.send(line) == line.size());
        std::this_thread::sleep_for(200ms); // the load has started
        daemon.signal(SIGTERM);
        std::optional<std::string> answer = asking.read_line(30s);
        REQUIRE(answer);
        CHECK_THAT(*answer, Catch::Contains("reload_failed"));
        CHECK(daemon.wait_exit(30s) == 0);
    }
    SECTION("SIGHUP, then SIGTERM") {
        daemon.signal(SIGHUP);
        std::this_thread::sleep_for(200ms);
        daemon.signal(SIGTERM);
        CHECK(daemon.wait_exit(30s) == 0);
    }
    // The stop is recorded under the policy that served: the slow one never did.
    json::array stops = audit_rows(daemon.db(), "stop");
    REQUIRE(stops.size() == 1);
    CHECK(text_of(stops[0].as_object(), "policy_hash") == original);
    CHECK(audit_rows(daemon.db(), "reload").empty());
}
