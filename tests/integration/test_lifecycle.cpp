// flowgated's life as systemd sees it: configuration and the flags that override it,
// the socket's mode and group, READY/STOPPING through the notify socket, a listening
// socket handed over by a .socket unit, and SIGTERM with requests in flight (answered,
// committed, exit 0).
#include "tests/integration/daemon_rig.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <grp.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

using namespace flowgate::integration;
namespace json = boost::json;

TEST_CASE("flowgated: --socket, --policy and --audit-db override the configuration file",
          "[integration]") {
    RigConfig config;
    config.keys["socket"] = "\"/nonexistent/flowgated.sock\"";
    config.keys["policy"] = "\"/nonexistent/policy\"";
    config.keys["audit_db"] = "\"/nonexistent/audit.db\"";
    Daemon daemon(config);
    Launch launch;
    launch.extra_arguments = {"--socket",   daemon.socket().string(),
                              "--policy",   daemon.policy_dir().string(),
                              "--audit-db", daemon.db().string()};
    REQUIRE(daemon.start(launch));
    auto client = daemon.connect();
    auto answer = client.request(allowed_check());
    REQUIRE(answer);
    CHECK(text_of(*answer.value, "decision") == "allow");
    CHECK(audit_rows(daemon.db(), "check").size() == 1);
}

TEST_CASE("flowgated: the socket's mode and group come from the configuration", "[integration]") {
    const ::group* entry = ::getgrnam("daemon");
    if (entry == nullptr || ::getuid() != 0) {
        WARN("needs root and the 'daemon' group; checking the mode only");
    }
    RigConfig config;
    config.keys["socket_mode"] = "\"0660\"";
    if (entry != nullptr && ::getuid() == 0) {
        config.keys["socket_group"] = "\"daemon\"";
    }
    Daemon daemon(config);
    REQUIRE(daemon.start());
    struct stat info {};
    REQUIRE(::stat(daemon.socket().c_str(), &info) == 0);
    CHECK(S_ISSOCK(info.st_mode));
    CHECK((info.st_mode & 07777) == 0660);
    if (entry != nullptr && ::getuid() == 0) {
        CHECK(info.st_gid == entry->gr_gid);
    }
}

TEST_CASE("flowgated: a bad configuration or policy stops start-up with a precise message",
          "[integration]") {
    SECTION("a TOML error names the file, line and column") {
        Daemon daemon;
        {
            std::ofstream out(daemon.config_file(), std::ios::app);
            out << "[limits\n";
        }
        CHECK(daemon.run_to_exit() == 1);
        CHECK_THAT(daemon.log(), Catch::Contains(daemon.config_file().string() + ":"));
    }
    SECTION("a limit of the wrong type") {
        RigConfig config;
        config.limits["idle_timeout_ms"] = -5;
        Daemon daemon(config);
        CHECK(daemon.run_to_exit() == 1);
        CHECK_THAT(daemon.log(),
                   Catch::Contains("idle_timeout_ms") && Catch::Contains("must be between 1 and"));
    }
    SECTION("a policy that does not check") {
        Daemon daemon;
        {
            std::ofstream out(daemon.policy_dir() / "zz-broken.policy");
            out << "permit nothing;\n";
        }
        CHECK(daemon.run_to_exit() == 1);
        CHECK_THAT(daemon.log(), Catch::Contains("zz-broken.policy:1:"));
        CHECK_FALSE(fs::exists(daemon.socket()));
    }
}

TEST_CASE("flowgated: a store whose chain's tail was altered is refused at start-up",
          "[integration]") {
    Daemon daemon;
    REQUIRE(daemon.start());
    {
        auto client = daemon.connect();
        auto answer = client.request(allowed_check());
        REQUIRE(answer);
        REQUIRE(text_of(*answer.value, "decision") == "allow");
    }
    daemon.signal(SIGTERM);
    REQUIRE(daemon.wait_exit() == 0);

    // Someone with the file drops the guard, turns the logged allow into a deny, and puts
    // the guard back as it was, so that only the chain shows the change.
    json::array guard = sqlite_rows(
        daemon.db(), "SELECT sql FROM sqlite_schema WHERE name = 'audit_log_no_update'");
    REQUIRE(guard.size() == 1);
    const fs::path script = daemon.dir() / "tamper.sql";
    {
        std::ofstream out(script);
        out << "DROP TRIGGER audit_log_no_update;\n"
               "UPDATE audit_log SET subject = 'p-tampered' WHERE seq = (SELECT MAX(seq) FROM "
               "audit_rows WHERE kind = 'check');\n"
            << guard[0].at("sql").as_string().c_str() << ";\n";
    }
    CommandResult tampered =
        run_command(daemon.dir(), "sqlite3 -bail " + shell_quoted(daemon.db().string()) + " " +
                                      shell_quoted(".read " + script.string()));
    INFO(tampered.err);
    REQUIRE(tampered.status == 0);

    CHECK(daemon.run_to_exit() == 1);
    CHECK_THAT(daemon.log(), Catch::Contains("start_failed") && Catch::Contains("audit_store") &&
                                 Catch::Contains("seq"));
    CHECK_THAT(daemon.log(), !Catch::Contains("missing trigger"));
    CHECK_FALSE(fs::exists(daemon.socket()));
}

TEST_CASE("flowgated: READY and STOPPING go to systemd's notify socket", "[integration]") {
    Daemon daemon;
    NotifySocket notify(daemon.dir() / "notify.sock");
    Launch launch;
    launch.env.emplace_back("NOTIFY_SOCKET", notify.path().string());
    REQUIRE(daemon.start(launch));
    std::vector<std::string> states = notify.receive_until("READY=1");
    REQUIRE_FALSE(states.empty());
    CHECK_THAT(states.back(), Catch::Contains("READY=1"));

    daemon.signal(SIGTERM);
    states = notify.receive_until("STOPPING=1");
    REQUIRE_FALSE(states.empty());
    CHECK_THAT(states.back(), Catch::Contains("STOPPING=1"));
    CHECK(daemon.wait_exit() == 0);
}

TEST_CASE("flowgated: a listening socket passed by systemd is served (socket activation)",
          "[integration]") {
    Daemon daemon;
    const fs::path activated = daemon.dir() / "activated.sock";
    const int fd = listening_socket(activated);
    // A client may connect before the daemon runs: the unit's socket queues it.
    RawConnection early(activated);
    REQUIRE(early.connected());
    REQUIRE(early.send(json::serialize(allowed_check()) + "\n") > 0);

    Launch launch;
    launch.listening_fd = fd;
    daemon.launch(launch);
    ::close(fd);
    auto answer = early.read_line(10s);
    INFO(daemon.log());
    REQUIRE(answer);
    CHECK(json::parse(*answer).at("decision") == "allow");
    CHECK_FALSE(fs::exists(daemon.socket())); // the configured path was not bound

    auto client = flowgate::client::Client::connect(activated.string());
    REQUIRE(client);
    auto status = client.value->request(json::object{{"op", "status"}});
    REQUIRE(status);
    CHECK(status.value->at("counters").at("allowed") == 1);
    daemon.signal(SIGTERM);
    CHECK(daemon.wait_exit() == 0);
}

TEST_CASE("flowgated: SIGTERM stops accepting, answers what is in flight, commits and exits 0",
          "[integration]") {
    Daemon daemon;
    REQUIRE(daemon.start());
    constexpr int clients = 4;
    constexpr int per_client = 2000;
    std::vector<std::unique_ptr<RawConnection>> connections;
    std::string pipeline;
    for (int i = 0; i < per_client; ++i) {
        json::object request = allowed_check();
        request["id"] = i;
        pipeline += json::serialize(request) + "\n";
    }
    for (int c = 0; c < clients; ++c) {
        connections.push_back(std::make_unique<RawConnection>(daemon.socket()));
        REQUIRE(connections.back()->connected());
    }
    std::vector<std::thread> senders;
    for (auto& connection : connections) {
        senders.emplace_back([&connection, &pipeline] { connection->send(pipeline, 5s); });
    }
    // Wait until the daemon is answering, so requests are surely in flight.
    std::vector<std::vector<std::string>> answers(clients);
    for (int c = 0; c < clients; ++c) {
        auto first = connections[static_cast<std::size_t>(c)]->read_line();
        REQUIRE(first);
        answers[static_cast<std::size_t>(c)].push_back(*first);
    }
    daemon.signal(SIGTERM);
    for (std::thread& sender : senders) {
        sender.join();
    }
    for (int c = 0; c < clients; ++c) {
        while (auto line = connections[static_cast<std::size_t>(c)]->read_line(5s)) {
            answers[static_cast<std::size_t>(c)].push_back(*line);
        }
    }
    CHECK(daemon.wait_exit() == 0);

    std::size_t answered = 0;
    for (const auto& lines : answers) {
        for (std::size_t i = 0; i < lines.size(); ++i) {
            json::value answer = json::parse(lines[i]);
            INFO(lines[i]);
            // In order, and each one a committed allow.
            CHECK(answer.at("id") == i);
            CHECK(answer.at("decision") == "allow");
            CHECK(answer.at("audit_seq").is_int64());
        }
        answered += lines.size();
    }
    // Whatever the daemon read, it answered; whatever it answered, it committed.
    json::array counted =
        sqlite_rows(daemon.db(), "SELECT COUNT(*) AS n FROM audit_rows WHERE kind = 'check'");
    CHECK(counted[0].at("n") == answered);
    json::array last = sqlite_rows(daemon.db(), "SELECT kind FROM audit_rows ORDER BY seq DESC "
                                                "LIMIT 1");
    CHECK(last[0].at("kind") == "stop");
    // And nothing listens any more.
    CHECK_FALSE(flowgate::client::Client::connect(daemon.socket().string()));
    CHECK_THAT(daemon.log(), Catch::Contains("event=stopped"));
}
