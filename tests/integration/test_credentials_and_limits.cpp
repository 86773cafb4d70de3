// What the daemon knows of its callers and of its own limits must be exactly what it
// was told: a connection whose credentials the kernel does not give is not served (it
// never becomes root); a configured number outside its range (a uid past 2^32-2, a
// timeout that would overflow a deadline, a size past its limit) stops the start with
// the key's name; and a line's limit counts the request, not the "\r" of a CRLF.
#include "tests/integration/daemon_rig.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <unistd.h>

using namespace flowgate::integration;
namespace json = boost::json;

TEST_CASE("flowgated: a connection whose peer credentials cannot be read is not served",
          "[integration]") {
    RigConfig config;
    config.services.push_back({::getuid(), "privacy-office", true});
    Daemon daemon(config);
    const fs::path flag = daemon.dir() / "peercred-fails";
    Launch launch;
    launch.env.emplace_back("LD_PRELOAD", FLOWGATE_PEERCRED_FAILS_PATH);
    launch.env.emplace_back("FLOWGATE_TEST_PEERCRED_FAILS", flag.string());
    // A sanitized daemon must still start with a library preloaded ahead of its runtime.
    const char* asan = std::getenv("ASAN_OPTIONS");
    launch.env.emplace_back("ASAN_OPTIONS",
                            std::string(asan != nullptr ? asan : "") + ":verify_asan_link_order=0");
    REQUIRE(daemon.start(launch));

    { std::ofstream(flag) << "fail\n"; }
    RawConnection refused(daemon.socket());
    REQUIRE(refused.connected());
    const std::string line = json::serialize(allowed_check()) + "\n" +
                             json::serialize(json::object{{"op", "reload"}}) + "\n";
    refused.send(line);
    // Closed without an answer: no allow, no reload, for a caller nobody can name.
    CHECK_FALSE(refused.read_line(5s));
    CHECK(refused.closed_within(5s));
    CHECK_THAT(daemon.log(), Catch::Contains("event=peer_credentials_failed"));

    fs::remove(flag);
    auto client = daemon.connect();
    auto checked = client.request(allowed_check());
    REQUIRE(checked);
    CHECK(text_of(*checked.value, "decision") == "allow");
    CHECK(audit_rows(daemon.db(), "check").size() == 1);
    CHECK(audit_rows(daemon.db(), "reload").empty());
    CHECK(audit_rows(daemon.db(), "reload_failed").empty());
}

TEST_CASE("flowgated: a configured number out of its range stops the start, naming the key",
          "[integration]") {
    struct Case {
        const char* name;
        std::string text;
        const char* key;
    };
    const std::vector<Case> cases{
        {"a uid of 2^32", "\n[[service]]\nuid = 4294967296\nname = \"claims\"\nadmin = true\n",
         "'uid'"},
        {"a negative uid", "\n[[service]]\nuid = -1\nname = \"claims\"\n", "'uid'"},
        {"a uid of 2^32-1, which is no uid", "\n[[service]]\nuid = 4294967295\nname = \"x\"\n",
         "'uid'"},
        {"a timeout of 10^19 ms", "\n[limits]\nidle_timeout_ms = 10000000000000000000\n",
         "'idle_timeout_ms'"},
        {"a timeout of 2^63-1 ms", "\n[limits]\nwrite_timeout_ms = 9223372036854775807\n",
         "'write_timeout_ms'"},
        {"a reload timeout of 2^62 ms", "\n[limits]\nreload_timeout_ms = 4611686018427387904\n",
         "'reload_timeout_ms'"},
        {"a line limit of 2^62 bytes", "\n[limits]\nmax_line_bytes = 4611686018427387904\n",
         "'max_line_bytes'"},
        {"2^40 connections", "\n[limits]\nmax_connections = 1099511627776\n", "'max_connections'"},
        {"no request in flight", "\n[limits]\nmax_requests_in_flight = 0\n",
         "'max_requests_in_flight'"},
        {"2^40 connections per uid", "\n[limits]\nmax_connections_per_uid = 1099511627776\n",
         "'max_connections_per_uid'"},
        {"2^40 answer bytes", "\n[limits]\nmax_pending_answer_bytes = 1099511627776\n",
         "'max_pending_answer_bytes'"},
        {"a line timeout of 2^62 ms", "\n[limits]\nline_timeout_ms = 4611686018427387904\n",
         "'line_timeout_ms'"},
        {"no refused line", "\n[limits]\nmax_refused_lines = 0\n", "'max_refused_lines'"},
        {"a negative row rate", "\n[limits]\nrefused_rows_per_second = -1\n",
         "'refused_rows_per_second'"},
    };
    for (const Case& c : cases) {
        SECTION(c.name) {
            Daemon daemon;
            CHECK(start_with_config_tail(daemon, c.text) == 1);
            CHECK_THAT(daemon.log(), Catch::Contains(c.key) && Catch::Contains("error"));
            CHECK_FALSE(fs::exists(daemon.socket()));
        }
    }
}

TEST_CASE("flowgated: a line of exactly max_line_bytes ending in CRLF is served", "[integration]") {
    RigConfig config;
    config.durability = "relaxed";
    config.limits["max_line_bytes"] = 4096;
    Daemon daemon(config);
    REQUIRE(daemon.start());

    // A check padded with spaces to exactly the limit, before its "\r\n".
    std::string line = json::serialize(allowed_check());
    line.insert(line.size() - 1, 4096 - line.size(), ' ');
    REQUIRE(line.size() == 4096);

    SECTION("sent whole") {
        RawConnection connection(daemon.socket());
        REQUIRE(connection.send(line + "\r\n") == line.size() + 2);
        std::optional<std::string> answer = connection.read_line();
        REQUIRE(answer);
        CHECK_THAT(*answer, Catch::Contains("\"decision\":\"allow\""));
    }
    SECTION("the \"\\n\" arriving after the rest") {
        RawConnection connection(daemon.socket());
        REQUIRE(connection.send(line + "\r") == line.size() + 1);
        CHECK_FALSE(connection.read_line(500ms)); // a line still incomplete is not refused
        REQUIRE(connection.send("\n") == 1);
        std::optional<std::string> answer = connection.read_line();
        REQUIRE(answer);
        CHECK_THAT(*answer, Catch::Contains("\"decision\":\"allow\""));
    }
    SECTION("one byte more is still too long, CRLF or not") {
        RawConnection connection(daemon.socket());
        REQUIRE(connection.send(" " + line + "\r\n") == line.size() + 3);
        std::optional<std::string> answer = connection.read_line();
        REQUIRE(answer);
        CHECK_THAT(*answer, Catch::Contains("line_too_long"));
    }
}
