// What one request can make flowgated compute and answer is bounded: a check or explain
// names at most max_categories categories (each once), and an explain's answer is at
// most max_answer_bytes, its trace cut and marked so. A request past a limit gets a
// clear refusal, quickly, with its row in the store; one at the limit is decided.
#include "tests/integration/daemon_rig.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <fstream>
#include <thread>

using namespace flowgate::integration;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

// An explain (or check) of the bundled policy's allowed flow naming NAMES.
json::object naming(const std::vector<std::string>& names, const char* op = "explain") {
    json::object request = allowed_check();
    json::array data;
    for (const std::string& name : names) {
        data.emplace_back(name);
    }
    request["data"] = std::move(data);
    request["op"] = op;
    return request;
}

// N names of checkup_result, each spelled differently (trailing blanks, which a lookup
// ignores): N categories the flow allows, none named twice.
std::vector<std::string> spellings(std::size_t n) {
    std::vector<std::string> names;
    for (std::size_t i = 0; i < n; ++i) {
        names.push_back("checkup_result" + std::string(i, ' '));
    }
    return names;
}

std::string message_of(const json::object& answer) {
    return text_of(answer.at("error").as_object(), "message");
}

RigConfig relaxed() {
    RigConfig config;
    config.durability = "relaxed";
    return config;
}

} // namespace

TEST_CASE("flowgated: an explain naming one category 7,000 times is refused quickly, audited",
          "[integration][limits]") {
    Daemon daemon(relaxed());
    REQUIRE(daemon.start());
    RawConnection connection(daemon.socket());
    REQUIRE(connection.connected());

    json::object request = naming(std::vector<std::string>(7000, "status"));
    request["id"] = 1;
    const std::string line = json::serialize(request);
    REQUIRE(line.size() < 64 * 1024); // within the default line limit
    const auto sent = Clock::now();
    REQUIRE(connection.send(line + "\n") == line.size() + 1);
    const std::optional<std::string> answered = connection.read_line();
    const auto took = Clock::now() - sent;
    const json::object answer = parse_answer(answered);
    CHECK(answered->size() < 512);
    CHECK(took < 1s);
    CHECK(answer.at("id") == 1);
    CHECK(error_code(answer) == "too_many_categories");
    CHECK(message_of(answer) == "field 'data' names 7000 categories; at most 64 are allowed");
    CHECK_FALSE(answer.contains("decision"));

    // A category named twice is refused too, naming it.
    request = naming({"status", "checkup_result", "status"}, "check");
    request["id"] = 2;
    REQUIRE(connection.send(json::serialize(request) + "\n") > 0);
    const json::object twice = parse_answer(connection.read_line());
    CHECK(error_code(twice) == "bad_field_value");
    CHECK(message_of(twice) == "field 'data' names 'status' twice");

    const json::array refused = audit_rows(daemon.db(), "refused");
    REQUIRE(refused.size() == 2);
    CHECK(refused[0].at("decision") == "deny");
    CHECK(text_of(refused[0].as_object(), "reason") ==
          "too_many_categories: field 'data' names 7000 categories; at most 64 are allowed");
    CHECK(text_of(refused[1].as_object(), "reason") ==
          "bad_field_value: field 'data' names 'status' twice");
    CHECK(audit_rows(daemon.db(), "explain").empty());
}

TEST_CASE("flowgated: a check at the category limit is decided, one past it refused",
          "[integration][limits]") {
    SECTION("64 by default") {
        Daemon daemon(relaxed());
        REQUIRE(daemon.start());
        auto client = daemon.connect();
        auto at_limit = client.request(naming(spellings(64), "check"));
        REQUIRE(at_limit);
        CHECK(text_of(*at_limit.value, "decision") == "allow");
        REQUIRE(at_limit.value->at("audit_seq").is_int64());
        CHECK(audit_row(daemon.db(), at_limit.value->at("audit_seq").as_int64()).at("kind") ==
              "check");
        auto past = client.request(naming(spellings(65), "check"));
        REQUIRE(past);
        CHECK(error_code(*past.value) == "too_many_categories");
    }
    SECTION("as configured") {
        RigConfig config = relaxed();
        config.limits["max_categories"] = 4;
        Daemon daemon(config);
        REQUIRE(daemon.start());
        auto client = daemon.connect();
        auto at_limit = client.request(naming(spellings(4), "check"));
        REQUIRE(at_limit);
        CHECK(text_of(*at_limit.value, "decision") == "allow");
        auto past = client.request(naming(spellings(5)));
        REQUIRE(past);
        CHECK(error_code(*past.value) == "too_many_categories");
        CHECK(message_of(*past.value) == "field 'data' names 5 categories; at most 4 are allowed");
        CHECK(audit_rows(daemon.db(), "refused").size() == 1);
    }
}

TEST_CASE("flowgated: an explain past max_answer_bytes answers the trace that fits, marked "
          "truncated",
          "[integration][limits]") {
    const json::object request = naming(spellings(64));

    SECTION("under the default limit the whole trace comes") {
        Daemon daemon(relaxed());
        REQUIRE(daemon.start());
        auto client = daemon.connect();
        auto answer = client.request(request);
        REQUIRE(answer);
        CHECK(text_of(*answer.value, "decision") == "allow");
        CHECK(answer.value->at("trace").as_array().size() > 1000);
        CHECK_FALSE(answer.value->contains("trace_truncated"));
    }
    SECTION("under a small limit the trace is cut, the decision whole") {
        RigConfig config = relaxed();
        config.limits["max_answer_bytes"] = 4096;
        Daemon daemon(config);
        REQUIRE(daemon.start());
        RawConnection connection(daemon.socket());
        REQUIRE(connection.send(json::serialize(request) + "\n") > 0);
        const std::optional<std::string> line = connection.read_line();
        const json::object answer = parse_answer(line);
        CHECK(line->size() <= 4096);
        CHECK(text_of(answer, "decision") == "allow");
        CHECK_FALSE(text_of(answer, "reason").empty());
        CHECK(answer.at("rule").is_object());
        CHECK(answer.at("trace_truncated") == true);
        const std::size_t carried = answer.at("trace").as_array().size();
        CHECK(carried > 0);
        CHECK(answer.at("trace_steps_omitted").as_int64() > 1000);
        // Audited as any explain, under the seq it answers.
        REQUIRE(answer.at("audit_seq").is_int64());
        const json::object row = audit_row(daemon.db(), answer.at("audit_seq").as_int64());
        CHECK(row.at("kind") == "explain");
        CHECK(row.at("decision") == "allow");

        // The command says the trace was cut, and how much is missing.
        const CommandResult explained = run_command(
            daemon.dir(), shell_quoted(FLOWGATE_PATH) + " --socket " +
                              shell_quoted(daemon.socket().string()) + " explain --request " +
                              shell_quoted(json::serialize(request)));
        INFO(explained.out << explained.err);
        CHECK(explained.status == 0);
        CHECK_THAT(explained.out, Catch::StartsWith("allow: "));
        CHECK_THAT(explained.out,
                   Catch::Contains("    (trace truncated: " +
                                   std::to_string(answer.at("trace_steps_omitted").as_int64()) +
                                   " more steps not shown"));
    }
}

TEST_CASE("flowgated: explains at the limits do not hold up another client's check",
          "[integration][limits]") {
    Daemon daemon(relaxed());
    REQUIRE(daemon.start());
    // Four clients each pipelining refused and full-trace explains, none reading them.
    std::vector<std::unique_ptr<RawConnection>> heavy;
    const std::string refused =
        json::serialize(naming(std::vector<std::string>(7000, "status"))) + "\n";
    const std::string traced = json::serialize(naming(spellings(64))) + "\n";
    for (int i = 0; i < 4; ++i) {
        heavy.push_back(std::make_unique<RawConnection>(daemon.socket()));
        REQUIRE(heavy.back()->connected());
        heavy.back()->send(refused + traced + refused + traced, 2s);
    }
    auto client = daemon.connect();
    const auto started = Clock::now();
    auto answer = client.request(allowed_check());
    const auto took = Clock::now() - started;
    REQUIRE(answer);
    CHECK(text_of(*answer.value, "decision") == "allow");
    CHECK(took < 500ms);
}

TEST_CASE("flowgated: max_categories and max_answer_bytes out of their range stop the start",
          "[integration][limits]") {
    struct Case {
        const char* name;
        const char* text;
        const char* key;
    };
    const std::vector<Case> cases{
        {"no category", "max_categories = 0", "'max_categories' must be between 1 and 65536"},
        {"2^16+1 categories", "max_categories = 65537", "'max_categories'"},
        {"answers under 4 KiB", "max_answer_bytes = 4095",
         "'max_answer_bytes' must be between 4096 and 16777216"},
        {"answers past 16 MiB", "max_answer_bytes = 16777217", "'max_answer_bytes'"},
    };
    for (const Case& c : cases) {
        SECTION(c.name) {
            Daemon daemon;
            CHECK(start_with_config_tail(daemon, std::string("[limits]\n") + c.text + "\n") == 1);
            CHECK_THAT(daemon.log(), Catch::Contains(c.key) && Catch::Contains("error"));
            CHECK_FALSE(fs::exists(daemon.socket()));
        }
    }
}
