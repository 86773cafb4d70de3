// A daemon serving its maximum number of clients answers a new connection with one
// too_many_connections line and closes it. Whether the client writes its request before
// or after that close, the client library and `flowgate check` must report the daemon's
// refusal — not the "Broken pipe" or reset the write ran into.
#include "tests/integration/daemon_rig.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <thread>

using namespace flowgate::integration;
using flowgate::client::CheckRequest;
using flowgate::client::Client;
using flowgate::client::ErrorKind;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

RigConfig limited_to(std::int64_t connections) {
    RigConfig config;
    config.limits["max_connections"] = connections;
    return config;
}

CheckRequest to_prevent() {
    CheckRequest question;
    question.purpose = "health_services";
    question.recipient = "prevent";
    question.data = {"checkup_result"};
    return question;
}

// Connections that fill the daemon's slots; each has been served once, so it is counted.
// A slot may still be taken for a moment by a connection just closed (the rig's own,
// which waited for the daemon to answer): a refused connection tries again.
std::vector<Client> hold(const Daemon& daemon, int connections) {
    std::vector<Client> held;
    const auto deadline = Clock::now() + 5s;
    while (static_cast<int>(held.size()) < connections && Clock::now() < deadline) {
        Client client = daemon.connect();
        if (client.status()) {
            held.push_back(std::move(client));
        } else {
            std::this_thread::sleep_for(5ms);
        }
    }
    REQUIRE(static_cast<int>(held.size()) == connections);
    return held;
}

std::int64_t refused_connections(Client& client) {
    auto status = client.status();
    REQUIRE(status);
    return status.value->at("counters").at("refused_connections").to_number<std::int64_t>();
}

// Waits until the daemon has refused (answered and closed) `count` connections since it
// started.
void wait_refused(Client& held, std::int64_t count) {
    const auto deadline = Clock::now() + 5s;
    while (refused_connections(held) < count && Clock::now() < deadline) {
        std::this_thread::sleep_for(5ms);
    }
    REQUIRE(refused_connections(held) == count);
}

void check_is_refusal(const flowgate::client::ClientError& error) {
    INFO(error.message);
    CHECK(error.kind == ErrorKind::daemon_error);
    CHECK(error.code == "too_many_connections");
    CHECK(error_code(error.answer) == "too_many_connections");
    CHECK_THAT(error.message, Catch::Contains("maximum number of clients"));
    CHECK_THAT(error.message, !Catch::Contains("Broken pipe") && !Catch::Contains("reset"));
}

} // namespace

TEST_CASE("client: a daemon at its connection limit is a too_many_connections daemon_error",
          "[integration][client]") {
    Daemon daemon(limited_to(2));
    REQUIRE(daemon.start());
    std::vector<Client> held = hold(daemon, 2);
    const std::int64_t refused_before = refused_connections(held.front());

    SECTION("a check written after the daemon has closed the connection") {
        auto connected = Client::connect(daemon.socket().string());
        REQUIRE(connected);
        wait_refused(held.front(), refused_before + 1);
        auto refused = connected.value->check(to_prevent());
        REQUIRE_FALSE(refused);
        check_is_refusal(refused.error);
    }
    SECTION("a check written at once") {
        auto connected = Client::connect(daemon.socket().string());
        REQUIRE(connected);
        auto refused = connected.value->check(to_prevent());
        REQUIRE_FALSE(refused);
        check_is_refusal(refused.error);
    }
    SECTION("the raw layer hands the refusal over as the answer") {
        auto connected = Client::connect(daemon.socket().string());
        REQUIRE(connected);
        wait_refused(held.front(), refused_before + 1);
        auto answer = connected.value->request(to_prevent().to_json());
        REQUIRE(answer);
        CHECK(error_code(*answer.value) == "too_many_connections");
    }
    SECTION("a batch left unanswered fails with the refusal, and the client is disconnected") {
        auto connected = Client::connect(daemon.socket().string());
        REQUIRE(connected);
        wait_refused(held.front(), refused_before + 1);
        auto answers = connected.value->batch(
            {to_prevent().to_json(), to_prevent().to_json(), to_prevent().to_json()});
        REQUIRE_FALSE(answers);
        check_is_refusal(answers.error);
        CHECK_THAT(answers.error.message, Catch::Contains("2 request(s) unanswered"));
        CHECK_FALSE(connected.value->connected());
    }
    // The connections held all along were not disturbed.
    for (Client& client : held) {
        CHECK(client.check(to_prevent()));
    }
}

TEST_CASE("flowgate check: a daemon at its connection limit is exit 2 with its refusal",
          "[integration][client][command]") {
    Daemon daemon(limited_to(1));
    REQUIRE(daemon.start());
    std::vector<Client> held = hold(daemon, 1);
    const std::int64_t refused_before = refused_connections(held.front());
    const std::string command = shell_quoted(FLOWGATE_PATH) + " --socket " +
                                shell_quoted(daemon.socket().string()) +
                                " check --purpose health_services --to prevent --data "
                                "checkup_result";

    // The command writes its request at once, so it races the daemon's close: either
    // order must print the daemon's message. Run it often enough to see both.
    for (int run = 0; run < 20; ++run) {
        CommandResult refused = run_command(daemon.dir(), command);
        INFO("run " << run << ": " << refused.out << refused.err);
        CHECK(refused.status == 2);
        CHECK(refused.out.empty());
        CHECK_THAT(refused.err, Catch::Contains("too_many_connections") &&
                                    Catch::Contains("maximum number of clients"));
        CHECK_THAT(refused.err, !Catch::Contains("Broken pipe"));
    }
    SECTION("with --json, the daemon's error answer on stdout") {
        CommandResult refused = run_command(daemon.dir(), command + " --json");
        INFO(refused.out << refused.err);
        CHECK(refused.status == 2);
        boost::system::error_code error;
        json::value answer = json::parse(refused.out, error);
        REQUIRE_FALSE(error);
        REQUIRE(answer.is_object());
        CHECK(error_code(answer.as_object()) == "too_many_connections");
    }
    CHECK(refused_connections(held.front()) == refused_before + 21);
}
