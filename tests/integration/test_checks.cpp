// Checks through the socket as services make them: allow and deny, each answered only
// with the seq of its committed row, the rows as an auditor reads them with sqlite3,
// and many pipelining clients at once, each answered in its own order.
#include "tests/integration/daemon_rig.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <thread>
#include <unistd.h>

using namespace flowgate::integration;
namespace json = boost::json;

TEST_CASE("flowgated: an allowed and a denied check are answered after their rows are committed",
          "[integration]") {
    RigConfig config;
    config.services.push_back({::getuid(), "kenshin", false});
    Daemon daemon(config);
    REQUIRE(daemon.start());
    auto client = daemon.connect();

    json::object allow_request = allowed_check();
    allow_request["id"] = "a-1";
    auto allowed = client.request(allow_request);
    REQUIRE(allowed);
    const json::object& allow = *allowed.value;
    CHECK(allow.at("id") == "a-1");
    CHECK(text_of(allow, "decision") == "allow");
    CHECK(allow.at("rule").as_object().at("id") == "r3_j");
    CHECK(text_of(allow, "policy").rfind("sha256:", 0) == 0);
    REQUIRE(allow.at("audit_seq").is_int64());

    auto denied = client.request(denied_check());
    REQUIRE(denied);
    const json::object& deny = *denied.value;
    CHECK(text_of(deny, "decision") == "deny");
    CHECK_FALSE(text_of(deny, "reason").empty());
    REQUIRE(deny.at("audit_seq").is_int64());
    CHECK(deny.at("audit_seq").as_int64() > allow.at("audit_seq").as_int64());

    // The rows, read by another process while the daemon still runs.
    json::object allow_row = audit_row(daemon.db(), allow.at("audit_seq").as_int64());
    CHECK(allow_row.at("kind") == "check");
    CHECK(allow_row.at("decision") == "allow");
    CHECK(allow_row.at("rule") == "r3_j");
    CHECK(allow_row.at("policy_hash") == allow.at("policy"));
    CHECK(allow_row.at("uid") == static_cast<std::int64_t>(::getuid()));
    CHECK(allow_row.at("pid") == static_cast<std::int64_t>(::getpid()));
    CHECK(allow_row.at("service") == "kenshin");
    CHECK(allow_row.at("purpose") == "health_services");
    CHECK(allow_row.at("recipient") == "prevent");
    CHECK(allow_row.at("subject") == "p-000123");
    CHECK(text_of(allow_row, "request").find("\"a-1\"") != std::string::npos);
    CHECK_THAT(text_of(allow_row, "rule_source"), Catch::Contains("table row 3, case j"));

    json::object deny_row = audit_row(daemon.db(), deny.at("audit_seq").as_int64());
    CHECK(deny_row.at("decision") == "deny");
    CHECK(deny_row.at("reason") == deny.at("reason"));

    // Every row chains to the one before it.
    json::array chain = sqlite_rows(
        daemon.db(), "SELECT a.seq FROM audit_rows a JOIN audit_rows b ON b.seq = a.seq - 1 "
                     "WHERE a.prev_hash != b.hash");
    CHECK(chain.empty());
}

TEST_CASE("flowgated: names given by their table labels are decided like identifiers",
          "[integration]") {
    Daemon daemon;
    REQUIRE(daemon.start());
    auto client = daemon.connect();
    auto by_id = client.request(allowed_check());
    REQUIRE(by_id);
    auto described = client.request(json::object{{"op", "describe"}});
    REQUIRE(described);
    // The labels as describe reports them, so the test follows the policy's wording.
    std::string purpose_label;
    for (const json::value& purpose : described.value->at("purposes").as_array()) {
        if (purpose.as_object().at("id") == "health_services") {
            purpose_label = text_of(purpose.as_object(), "label");
        }
    }
    std::string category_label;
    for (const json::value& category : described.value->at("categories").as_array()) {
        if (category.as_object().at("id") == "checkup_result") {
            category_label = text_of(category.as_object(), "label");
        }
    }
    REQUIRE_FALSE(purpose_label.empty());
    REQUIRE_FALSE(category_label.empty());
    CHECK(described.value->at("policy") == by_id.value->at("policy"));

    auto by_label = client.request(check_request(purpose_label, "prevent", {category_label}));
    REQUIRE(by_label);
    CHECK(text_of(*by_label.value, "decision") == "allow");
    CHECK(by_label.value->at("rule") == by_id.value->at("rule"));
    json::object row = audit_row(daemon.db(), by_label.value->at("audit_seq").as_int64());
    CHECK(row.at("purpose") == "health_services");
    CHECK(row.at("data") == "[\"checkup_result\"]");
}

TEST_CASE("flowgated: explain is audited and carries the trace, status counts the decisions",
          "[integration]") {
    Daemon daemon;
    REQUIRE(daemon.start());
    auto client = daemon.connect();
    json::object request = allowed_check();
    request["op"] = "explain";
    auto explained = client.request(request);
    REQUIRE(explained);
    CHECK(text_of(*explained.value, "decision") == "allow");
    REQUIRE(explained.value->at("trace").is_array());
    CHECK_FALSE(explained.value->at("trace").as_array().empty());
    json::object row = audit_row(daemon.db(), explained.value->at("audit_seq").as_int64());
    CHECK(row.at("kind") == "explain");

    REQUIRE(client.request(denied_check()));
    auto status = client.request(json::object{{"op", "status"}});
    REQUIRE(status);
    const json::object& counters = status.value->at("counters").as_object();
    CHECK(counters.at("allowed") == 1);
    CHECK(counters.at("denied") == 1);
    CHECK(counters.at("connections") == 1);
    const json::object& audit = status.value->at("audit").as_object();
    CHECK(audit.at("available") == true);
    CHECK(audit.at("durability") == "full");
    CHECK(text_of(audit, "path") == daemon.db().string());
    // The rows so far are in the write-ahead log, a few pages of it.
    CHECK(audit.at("wal_pages").as_int64() > 0);
    CHECK(audit.at("wal_pages").as_int64() < 64);
    // How long its batches took to commit: some time, and less than the test has run.
    CHECK(audit.at("slowest_transaction_us").to_number<std::uint64_t>() > 0);
    CHECK(audit.at("slowest_transaction_us").to_number<std::uint64_t>() < 60'000'000);
    CHECK(audit.at("transactions_over_10ms").to_number<std::uint64_t>() <=
          audit.at("transactions").to_number<std::uint64_t>());
}

TEST_CASE("flowgated: many clients pipelining at once each get their answers in order",
          "[integration]") {
    Daemon daemon;
    REQUIRE(daemon.start());
    constexpr int clients = 8;
    constexpr int per_client = 300;
    std::vector<std::string> failures(clients);
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
        threads.emplace_back([&, c] {
            auto connected = flowgate::client::Client::connect(daemon.socket().string());
            if (!connected) {
                failures[c] = connected.error.message;
                return;
            }
            std::vector<json::object> requests;
            for (int i = 0; i < per_client; ++i) {
                json::object request = i % 3 == 0 ? denied_check() : allowed_check();
                request["id"] = c * 100000 + i;
                requests.push_back(std::move(request));
            }
            auto answers = connected.value->batch(requests);
            if (!answers) {
                failures[c] = answers.error.message;
                return;
            }
            for (int i = 0; i < per_client; ++i) {
                const json::object& answer = (*answers.value)[static_cast<std::size_t>(i)];
                const char* expected = i % 3 == 0 ? "deny" : "allow";
                if (answer.at("id") != c * 100000 + i || text_of(answer, "decision") != expected) {
                    failures[c] = "answer " + std::to_string(i) +
                                  " out of order or wrong: " + json::serialize(answer);
                    return;
                }
            }
        });
    }
    for (std::thread& thread : threads) {
        thread.join();
    }
    for (const std::string& failure : failures) {
        CHECK(failure.empty());
    }
    json::array counted =
        sqlite_rows(daemon.db(), "SELECT COUNT(*) AS n FROM audit_rows WHERE kind = 'check'");
    CHECK(counted[0].at("n") == clients * per_client);
}

TEST_CASE("flowgated: a full-width request is allowed, and an unknown name's deny suggests the "
          "nearest, in the answer and its row",
          "[integration][names]") {
    Daemon daemon;
    REQUIRE(daemon.start());
    auto client = daemon.connect();

    // The contractor, the purpose and the category as a clerk in a Japanese office types
    // them: full-width letters and parentheses, white space inside.
    json::object wide =
        check_request("保健事業に 必要な利用目的", "（株）ＰＲＥＶＥＮＴ", {"健診　結果"});
    wide["activity"] = "生活習慣改善プログラムの実施";
    auto allowed = client.request(wide);
    REQUIRE(allowed);
    INFO(json::serialize(*allowed.value));
    CHECK(text_of(*allowed.value, "decision") == "allow");
    CHECK(allowed.value->at("rule").as_object().at("id") == "r3_j");
    CHECK(text_of(*allowed.value, "activity") == "lifestyle_programme");
    json::object allow_row = audit_row(daemon.db(), allowed.value->at("audit_seq").as_int64());
    CHECK(allow_row.at("recipient") == "prevent"); // the identifier it resolved to
    CHECK(allow_row.at("purpose") == "health_services");

    // The table's own word for the employer names it.
    json::object table_word = check_request("health_services", "事業者", {"checkup_result"});
    table_word["context"] = json::object{{"consent", true}};
    auto employer = client.request(table_word);
    REQUIRE(employer);
    CHECK(text_of(*employer.value, "decision") == "allow");
    CHECK(employer.value->at("rule").as_object().at("id") == "r3_d");

    // Twice: the second answer is the daemon's cached one, and must be the same.
    for (int twice = 0; twice < 2; ++twice) {
        auto denied =
            client.request(check_request("health_services", "（株）PREVENTT", {"checkup_result"}));
        REQUIRE(denied);
        const json::object& deny = *denied.value;
        INFO(json::serialize(deny));
        CHECK(text_of(deny, "decision") == "deny");
        REQUIRE(deny.contains("suggestions"));
        const json::array& suggestions = deny.at("suggestions").as_array();
        REQUIRE_FALSE(suggestions.empty());
        CHECK(suggestions[0] ==
              json::object{{"field", "recipient"}, {"id", "prevent"}, {"label", "(株)PREVENT"}});
        CHECK_THAT(text_of(deny, "reason"), Catch::StartsWith("unknown recipient '（株）PREVENTT'; "
                                                              "nearest: prevent \"(株)PREVENT\""));
        json::object row = audit_row(daemon.db(), deny.at("audit_seq").as_int64());
        CHECK(row.at("decision") == "deny");
        CHECK(row.at("reason") == deny.at("reason"));
        CHECK(row.at("recipient") == "（株）PREVENTT"); // as given: it resolved to nothing

        json::object unmet = check_request("health_services", "state", {"checkup_result"});
        unmet["activity"] = "specific_checkup_report";
        auto condition = client.request(unmet);
        REQUIRE(condition);
        CHECK(text_of(*condition.value, "decision") == "deny");
        CHECK(condition.value->at("satisfying_context") ==
              json::object{{"legal_basis", "appi_27_1_1"}});
        CHECK_THAT(text_of(*condition.value, "reason"),
                   Catch::EndsWith("; allowed with context legal_basis: appi_27_1_1"));
        CHECK(audit_row(daemon.db(), condition.value->at("audit_seq").as_int64()).at("reason") ==
              condition.value->at("reason"));
    }
}
