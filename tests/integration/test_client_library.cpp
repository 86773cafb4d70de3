// The client library against the real daemon, as a service uses it: the typed calls,
// reload as an admin and as anyone else, a pipelined batch, and each way a call can
// fail (a stopped daemon, a missing socket, an error answer, a lost connection) told
// apart by its kind.
#include "tests/integration/daemon_rig.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

using namespace flowgate::integration;
using flowgate::client::CheckRequest;
using flowgate::client::Client;
using flowgate::client::ErrorKind;
namespace json = boost::json;

namespace {

CheckRequest to_prevent() {
    CheckRequest question;
    question.purpose = "health_services";
    question.activity = "lifestyle_programme";
    question.recipient = "prevent";
    question.data = {"checkup_result"};
    question.subject = "p-000123";
    return question;
}

CheckRequest to_employer() {
    CheckRequest question;
    question.purpose = "health_services";
    question.recipient = "employer";
    question.data = {"checkup_result"};
    question.subject = "p-000123";
    return question;
}

RigConfig with_me(bool admin) {
    RigConfig config;
    config.services.push_back({::getuid(), "client-test", admin});
    return config;
}

// Sends SIGCONT however the test ends, so a failed check never leaves a stopped daemon.
struct ContinueOnExit {
    const Daemon& daemon;
    ~ContinueOnExit() { ::kill(daemon.pid(), SIGCONT); }
};

} // namespace

TEST_CASE("client: check answers allow and deny with the rule, obligations and committed seq",
          "[integration][client]") {
    Daemon daemon;
    REQUIRE(daemon.start());
    auto client = daemon.connect();

    auto allowed = client.check(to_prevent());
    INFO(allowed.error.message);
    REQUIRE(allowed);
    CHECK(allowed.value->allowed);
    CHECK(allowed.value->rule == "r3_j");
    CHECK(allowed.value->legal_basis == "appi_27_5_1");
    CHECK(allowed.value->obligations == std::vector<std::string>{"contract_reference"});
    CHECK(allowed.value->policy.rfind("sha256:", 0) == 0);
    REQUIRE(allowed.value->audit_seq > 0);
    CHECK(text_of(allowed.value->answer, "decision") == "allow");
    json::object row = audit_row(daemon.db(), allowed.value->audit_seq);
    CHECK(row.at("decision") == "allow");
    CHECK(row.at("rule") == "r3_j");

    auto denied = client.check(to_employer());
    REQUIRE(denied);
    CHECK_FALSE(denied.value->allowed);
    CHECK_FALSE(denied.value->reason.empty());
    CHECK(denied.value->audit_seq > allowed.value->audit_seq);
    CHECK(audit_row(daemon.db(), denied.value->audit_seq).at("decision") == "deny");

    SECTION("consent on record turns the employer's deny into the collaboration case") {
        CheckRequest with_consent = to_employer();
        with_consent.consent = true;
        auto consented = client.check(with_consent);
        REQUIRE(consented);
        CHECK(consented.value->allowed);
        CHECK(consented.value->rule == "r3_d");
        CHECK(consented.value->obligations == std::vector<std::string>{"provision_record"});
    }
}

TEST_CASE("client: explain carries the trace, with the deciding rule marked as matched",
          "[integration][client]") {
    Daemon daemon;
    REQUIRE(daemon.start());
    auto client = daemon.connect();
    auto explained = client.explain(to_prevent());
    REQUIRE(explained);
    CHECK(explained.value->allowed);
    const json::value* trace = explained.value->answer.if_contains("trace");
    REQUIRE(trace != nullptr);
    REQUIRE(trace->is_array());
    bool deciding_rule_matched = false;
    for (const json::value& step : trace->as_array()) {
        if (text_of(step.as_object(), "rule") == explained.value->rule &&
            step.as_object().at("matched") == true) {
            deciding_rule_matched = true;
        }
    }
    CHECK(deciding_rule_matched);
    CHECK(audit_row(daemon.db(), explained.value->audit_seq).at("kind") == "explain");
}

TEST_CASE("client: describe lists the vocabulary under the hash status reports",
          "[integration][client]") {
    Daemon daemon;
    REQUIRE(daemon.start());
    auto client = daemon.connect();
    auto described = client.describe();
    REQUIRE(described);
    auto status = client.status();
    REQUIRE(status);
    CHECK(text_of(*described.value, "policy").rfind("sha256:", 0) == 0);
    CHECK(text_of(*described.value, "policy") == text_of(*status.value, "policy"));
    bool has_health_services = false;
    for (const json::value& purpose : described.value->at("purposes").as_array()) {
        has_health_services |= purpose.as_object().at("id") == "health_services";
    }
    CHECK(has_health_services);
    CHECK_FALSE(described.value->at("parties").as_array().empty());
    CHECK_FALSE(described.value->at("categories").as_array().empty());
    CHECK(text_of(*status.value, "version") != "");
    CHECK(status.value->at("audit").at("available") == true);
}

TEST_CASE("client: reload answers the new hash for an admin and is refused for anyone else",
          "[integration][client]") {
    SECTION("an admin gets the new hash, which then decides") {
        Daemon daemon(with_me(true));
        REQUIRE(daemon.start());
        auto client = daemon.connect();
        auto before = client.status();
        REQUIRE(before);
        std::ofstream(daemon.policy_dir() / "members.policy", std::ios::app)
            << "\n# reloaded by the client test\n";
        auto reloaded = client.reload();
        INFO(reloaded.error.message);
        REQUIRE(reloaded);
        CHECK(reloaded.value->rfind("sha256:", 0) == 0);
        CHECK(*reloaded.value != text_of(*before.value, "policy"));
        auto checked = client.check(to_prevent());
        REQUIRE(checked);
        CHECK(checked.value->policy == *reloaded.value);
    }
    SECTION("a bad policy is a reload_failed error carrying the diagnostics") {
        Daemon daemon(with_me(true));
        REQUIRE(daemon.start());
        auto client = daemon.connect();
        std::ofstream(daemon.policy_dir() / "zz-broken.policy")
            << "# broken on purpose\ncategory oops \"x\" sensitivity;\n";
        auto refused = client.reload();
        REQUIRE_FALSE(refused);
        CHECK(refused.error.kind == ErrorKind::daemon_error);
        CHECK(refused.error.code == "reload_failed");
        CHECK_THAT(refused.error.message, Catch::Contains("zz-broken.policy:2:"));
        const json::value& diagnostics = refused.error.answer.at("error").at("diagnostics");
        CHECK_FALSE(diagnostics.as_array().empty());
        CHECK(client.check(to_prevent())); // the old policy still serves
    }
    SECTION("a caller who is not an admin is refused with forbidden, and may go on asking") {
        Daemon daemon(with_me(false));
        REQUIRE(daemon.start());
        auto client = daemon.connect();
        auto refused = client.reload();
        REQUIRE_FALSE(refused);
        CHECK(refused.error.kind == ErrorKind::daemon_error);
        CHECK(refused.error.code == "forbidden");
        CHECK(client.connected());
        auto checked = client.check(to_prevent());
        REQUIRE(checked);
        CHECK(checked.value->allowed);
    }
}

TEST_CASE("client: a batch is sent whole and answered in request order", "[integration][client]") {
    Daemon daemon;
    REQUIRE(daemon.start());
    auto client = daemon.connect();
    constexpr int count = 500;
    std::vector<json::object> requests;
    for (int i = 0; i < count; ++i) {
        json::object request = (i % 3 == 0 ? to_employer() : to_prevent()).to_json("check");
        if (i % 2 == 0) {
            request["id"] = "q-" + std::to_string(i); // the rest get the client's own ids
        }
        requests.push_back(std::move(request));
    }
    // A request the daemon cannot understand is answered in its place, not as a failure.
    requests[250] = json::object{{"op", "no-such-op"}, {"id", "odd-one"}};

    auto answers = client.batch(requests);
    INFO(answers.error.message);
    REQUIRE(answers);
    REQUIRE(answers.value->size() == count);
    std::int64_t last_seq = 0;
    for (int i = 0; i < count; ++i) {
        const json::object& answer = answers.value->at(static_cast<std::size_t>(i));
        INFO("answer " << i << ": " << json::serialize(answer));
        if (i == 250) {
            CHECK(answer.at("id") == "odd-one");
            CHECK(error_code(answer) == "unknown_op");
            continue;
        }
        if (i % 2 == 0) {
            CHECK(text_of(answer, "id") == "q-" + std::to_string(i));
        }
        CHECK(text_of(answer, "decision") == (i % 3 == 0 ? "deny" : "allow"));
        const std::int64_t seq = answer.at("audit_seq").as_int64();
        CHECK(seq > last_seq);
        last_seq = seq;
    }
}

TEST_CASE("client: a stopped daemon is a timeout, after which the client says it is disconnected",
          "[integration][client]") {
    Daemon daemon;
    REQUIRE(daemon.start());
    auto connected = Client::connect(daemon.socket().string(), 300ms);
    REQUIRE(connected);
    Client& client = *connected.value;
    REQUIRE(client.check(to_prevent()));
    {
        daemon.signal(SIGSTOP);
        ContinueOnExit resume{daemon};
        const auto started = std::chrono::steady_clock::now();
        auto stalled = client.check(to_prevent());
        const auto waited = std::chrono::steady_clock::now() - started;
        REQUIRE_FALSE(stalled);
        CHECK(stalled.error.kind == ErrorKind::timeout);
        CHECK_THAT(stalled.error.message, Catch::Contains("300 ms"));
        CHECK(waited >= 300ms);
        CHECK(waited < 3s);
        CHECK_FALSE(client.connected());
    }
    // Resumed, the daemon answers the stalled request on a connection the client has
    // closed; the client must not hand that answer to the next question.
    auto after = client.check(to_prevent());
    REQUIRE_FALSE(after);
    CHECK(after.error.kind == ErrorKind::disconnected);
    CHECK_THAT(after.error.message, Catch::Contains("connect again"));
    CHECK_THAT(after.error.message, Catch::Contains("did not answer"));

    auto again = Client::connect(daemon.socket().string(), 5s);
    REQUIRE(again);
    auto answered = again.value->check(to_prevent());
    REQUIRE(answered);
    CHECK(answered.value->allowed);
}

TEST_CASE("client: no daemon at the path is not_running, naming the path",
          "[integration][client]") {
    TempDir dir;
    SECTION("no socket file") {
        const std::string path = (dir.path() / "missing.sock").string();
        auto connected = Client::connect(path);
        REQUIRE_FALSE(connected);
        CHECK(connected.error.kind == ErrorKind::not_running);
        CHECK_THAT(connected.error.message, Catch::Contains(path));
    }
    SECTION("a socket file nobody listens on (a daemon that died)") {
        const fs::path path = dir.path() / "stale.sock";
        int fd = listening_socket(path);
        ::close(fd);
        auto connected = Client::connect(path.string());
        REQUIRE_FALSE(connected);
        CHECK(connected.error.kind == ErrorKind::not_running);
    }
    SECTION("FLOWGATE_SOCKET is where connect_default looks") {
        const std::string path = (dir.path() / "elsewhere.sock").string();
        ::setenv("FLOWGATE_SOCKET", path.c_str(), 1);
        auto connected = Client::connect_default();
        ::unsetenv("FLOWGATE_SOCKET");
        REQUIRE_FALSE(connected);
        CHECK_THAT(connected.error.message, Catch::Contains(path));
    }
}

TEST_CASE("client: FLOWGATE_SOCKET names the daemon connect_default reaches",
          "[integration][client]") {
    Daemon daemon;
    REQUIRE(daemon.start());
    ::setenv("FLOWGATE_SOCKET", daemon.socket().c_str(), 1);
    auto connected = Client::connect_default();
    ::unsetenv("FLOWGATE_SOCKET");
    REQUIRE(connected);
    CHECK(connected.value->check(to_prevent()));
}

TEST_CASE("client: an error answer is a daemon_error with its code, a deny is not an error",
          "[integration][client]") {
    Daemon daemon;
    REQUIRE(daemon.start());
    auto client = daemon.connect();

    json::object malformed = to_prevent().to_json("check");
    malformed.erase("data");

    // The raw layer hands the error answer over as an answer ...
    auto raw = client.request(malformed);
    REQUIRE(raw);
    CHECK(error_code(*raw.value) == "missing_field");

    // ... the typed calls as an error a caller cannot mistake for a decision.
    CheckRequest no_categories = to_prevent();
    no_categories.data.clear();
    auto refused = client.check(no_categories);
    REQUIRE_FALSE(refused);
    CHECK(refused.error.kind == ErrorKind::daemon_error);
    CHECK(refused.error.code == "bad_field_value");
    CHECK(error_code(refused.error.answer) == "bad_field_value");
    CHECK_THAT(refused.error.message, Catch::Contains("at least one category"));

    // The refusal was audited as a deny, and the connection goes on serving.
    CHECK(audit_rows(daemon.db(), "refused").size() == 2);
    auto denied = client.check(to_employer());
    REQUIRE(denied);
    CHECK_FALSE(denied.value->allowed);
}

TEST_CASE("client: a client that never connected, or whose daemon went away, says so",
          "[integration][client]") {
    SECTION("never connected") {
        Client client;
        CHECK_FALSE(client.connected());
        auto answer = client.status();
        REQUIRE_FALSE(answer);
        CHECK(answer.error.kind == ErrorKind::disconnected);
        CHECK_THAT(answer.error.message, Catch::Contains("not connected"));
    }
    SECTION("the daemon is killed between two questions") {
        Daemon daemon;
        REQUIRE(daemon.start());
        auto client = daemon.connect();
        REQUIRE(client.check(to_prevent()));
        daemon.signal(SIGKILL);
        REQUIRE(daemon.wait_exit() == 128 + SIGKILL);
        auto lost = client.check(to_prevent());
        REQUIRE_FALSE(lost);
        CHECK(lost.error.kind == ErrorKind::disconnected);
        CHECK_FALSE(client.connected());
        auto later = client.status();
        REQUIRE_FALSE(later);
        CHECK(later.error.kind == ErrorKind::disconnected);
        CHECK_THAT(later.error.message, Catch::Contains("connect again"));
    }
}
