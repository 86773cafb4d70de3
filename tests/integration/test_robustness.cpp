// Clients that misbehave: every bad input gets a clear error answer (and, for a check,
// an audited deny), every abusive client a bounded cut-off, and meanwhile a
// well-behaved client is answered as quickly as ever.
#include "tests/integration/daemon_rig.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <memory>
#include <sys/socket.h>
#include <thread>

using namespace flowgate::integration;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

RigConfig small_limits() {
    RigConfig config;
    config.durability = "relaxed";
    config.limits = {{"idle_timeout_ms", 300},
                     {"write_timeout_ms", 500},
                     {"max_connections", 8},
                     {"max_pending_answers", 64},
                     {"max_line_bytes", 4096}};
    return config;
}

// How long a well-behaved client waits for one check.
std::chrono::milliseconds check_latency(const Daemon& daemon) {
    auto client = daemon.connect();
    const auto started = Clock::now();
    auto answer = client.request(allowed_check());
    REQUIRE(answer);
    CHECK(text_of(*answer.value, "decision") == "allow");
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
}

} // namespace

TEST_CASE("flowgated: each malformed request gets an error answer and a refusal row",
          "[integration]") {
    Daemon daemon(small_limits());
    REQUIRE(daemon.start());
    RawConnection connection(daemon.socket());
    REQUIRE(connection.connected());

    struct Case {
        const char* name;
        std::string line;
        const char* code;
        bool has_id;
    };
    const std::vector<Case> cases{
        {"invalid JSON", R"({"op":"check","id":1,)", "bad_json", false},
        {"invalid UTF-8", "{\"op\":\"check\",\"id\":2,\"purpose\":\"\xff\xfe\"}", "bad_json",
         false},
        {"not an object", R"(["check"])", "bad_request", false},
        {"no op", R"({"id":4,"purpose":"health_services"})", "missing_field", true},
        {"op not a string", R"({"op":1,"id":5})", "bad_field_type", true},
        {"unknown op", R"({"op":"approve","id":6})", "unknown_op", true},
        {"check without purpose",
         R"({"op":"check","id":7,"recipient":"prevent","data":["checkup_result"]})",
         "missing_field", true},
        {"check with a mistyped purpose",
         R"({"op":"check","id":8,"purpose":5,"recipient":"prevent","data":["checkup_result"]})",
         nullptr, true},
    };
    for (const Case& c : cases) {
        INFO(c.name);
        REQUIRE(connection.send(c.line + "\n") == c.line.size() + 1);
        json::object answer = parse_answer(connection.read_line());
        const std::string code = error_code(answer);
        if (c.code != nullptr) {
            CHECK(code == c.code);
        } else {
            CHECK_FALSE(code.empty());
        }
        CHECK_FALSE(text_of(answer.at("error").as_object(), "message").empty());
        CHECK_FALSE(answer.contains("decision"));
        if (c.has_id) {
            CHECK(answer.at("id").is_int64());
        } else {
            CHECK(answer.at("id").is_null());
        }
    }
    // A blank line is no request: no answer, no row; the next request is answered.
    REQUIRE(connection.send("\n{\"op\":\"status\",\"id\":9}\n") > 0);
    json::object status = parse_answer(connection.read_line());
    CHECK(status.at("id") == 9);

    json::array refused = audit_rows(daemon.db(), "refused");
    REQUIRE(refused.size() == cases.size());
    for (const json::value& row : refused) {
        CHECK(row.at("decision") == "deny");
    }
    CHECK_THAT(text_of(refused[1].as_object(), "reason"), Catch::Contains("bad_json"));
    CHECK(status.at("counters").at("malformed") == cases.size());
    CHECK(status.at("counters").at("allowed") == 0);
}

TEST_CASE("flowgated: a line over the limit is refused and its connection closed",
          "[integration]") {
    SECTION("the configured limit") {
        Daemon daemon(small_limits());
        REQUIRE(daemon.start());
        RawConnection connection(daemon.socket());
        std::string line = R"({"op":"check","id":1,"subject":")" + std::string(5000, 'x') + "\"}";
        connection.send(line + "\n");
        json::object answer = parse_answer(connection.read_line());
        CHECK(error_code(answer) == "line_too_long");
        CHECK_THAT(text_of(answer.at("error").as_object(), "message"), Catch::Contains("4096"));
        CHECK(connection.closed_within(2s));
        CHECK(audit_rows(daemon.db(), "refused").size() == 1);
        CHECK(check_latency(daemon) < 500ms);
    }
    SECTION("64 KiB by default, and a line just under it is served") {
        Daemon daemon;
        REQUIRE(daemon.start());
        RawConnection connection(daemon.socket());
        json::object request = allowed_check();
        request["id"] = 1;
        std::string fits = json::serialize(request);
        const std::size_t subject = text_of(request, "subject").size();
        request["subject"] = std::string(64 * 1024 - fits.size() + subject, 's');
        fits = json::serialize(request);
        REQUIRE(fits.size() == 64 * 1024); // exactly the limit, then the newline
        connection.send(fits + "\n");
        CHECK(text_of(parse_answer(connection.read_line()), "decision") == "allow");

        std::string too_long =
            R"({"op":"check","id":2,"subject":")" + std::string(70 * 1024, 'y') + "\"}\n";
        connection.send(too_long);
        CHECK(error_code(parse_answer(connection.read_line())) == "line_too_long");
        CHECK(connection.closed_within(2s));
    }
}

TEST_CASE("flowgated: an idle client is cut off after the idle timeout", "[integration]") {
    Daemon daemon(small_limits());
    REQUIRE(daemon.start());
    RawConnection idle(daemon.socket());
    const auto started = Clock::now();
    REQUIRE(idle.closed_within(3s));
    const auto waited = Clock::now() - started;
    CHECK(waited >= 250ms);
    CHECK(waited < 2s);

    // A client that keeps talking is not idle, however long it stays.
    auto busy = daemon.connect();
    for (int i = 0; i < 6; ++i) {
        std::this_thread::sleep_for(150ms);
        auto answer = busy.request(json::object{{"op", "status"}});
        REQUIRE(answer);
    }
    CHECK_THAT(daemon.log(), Catch::Contains("event=client_idle"));
}

TEST_CASE("flowgated: a client that never reads its answers is cut off without slowing others",
          "[integration]") {
    Daemon daemon(small_limits());
    REQUIRE(daemon.start());
    RawConnection greedy(daemon.socket());
    // Shrink the socket buffers so that the unread answers fill them quickly.
    int small = 4096;
    ::setsockopt(greedy.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    std::string request = json::serialize(allowed_check()) + "\n";
    std::string flood;
    for (int i = 0; i < 4000; ++i) {
        flood += request;
    }
    std::thread sender([&] { greedy.send(flood, 3s); });

    std::this_thread::sleep_for(100ms);
    for (int i = 0; i < 5; ++i) {
        CHECK(check_latency(daemon) < 300ms);
    }
    sender.join();
    // The daemon gave up on it: its connection ends within the write timeout (plus slack).
    CHECK(greedy.closed_within(3s));
    CHECK_THAT(daemon.log(), Catch::Contains("event=client_not_reading"));
    CHECK(check_latency(daemon) < 300ms);
}

TEST_CASE("flowgated: a flood of connections is refused beyond the limit and served again after",
          "[integration]") {
    Daemon daemon(small_limits());
    REQUIRE(daemon.start());
    std::vector<std::unique_ptr<RawConnection>> held;
    for (int i = 0; i < 8; ++i) {
        held.push_back(std::make_unique<RawConnection>(daemon.socket()));
        REQUIRE(held.back()->connected());
        // Each one is accepted and served (keeps it from going idle in between, too).
        held.back()->send("{\"op\":\"status\"}\n");
        REQUIRE(held.back()->read_line());
    }
    std::vector<std::unique_ptr<RawConnection>> flood;
    for (int i = 0; i < 20; ++i) {
        flood.push_back(std::make_unique<RawConnection>(daemon.socket()));
    }
    for (auto& refused : flood) {
        json::object answer = parse_answer(refused->read_line(2s));
        CHECK(error_code(answer) == "too_many_connections");
        CHECK(refused->closed_within(1s));
    }
    held.front()->send("{\"op\":\"status\",\"id\":1}\n");
    json::object status = parse_answer(held.front()->read_line());
    CHECK(status.at("counters").at("refused_connections") == 20);
    CHECK(status.at("counters").at("connections") == 8);

    held.clear();
    // The slots come back: a new client is served.
    const auto deadline = Clock::now() + 2s;
    bool served = false;
    while (!served && Clock::now() < deadline) {
        RawConnection again(daemon.socket());
        again.send(json::serialize(allowed_check()) + "\n");
        auto line = again.read_line(1s);
        served = line && line->find("\"allow\"") != std::string::npos;
        if (!served) {
            std::this_thread::sleep_for(20ms);
        }
    }
    CHECK(served);
}
