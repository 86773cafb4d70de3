// The auditor's tools against the real daemon's log: decisions made through the
// client, then `flowgate audit ...` run as an auditor runs it, on the file alone.
// Tampering is done with the sqlite3 command after dropping the append-only triggers,
// as anyone holding the file could.
#include "tests/integration/daemon_rig.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

using namespace flowgate::integration;
namespace json = boost::json;

namespace {

// Runs SQL with the sqlite3 command on a file; the statements go through a script.
void sqlite(const fs::path& db, const std::string& sql) {
    const fs::path script = db.parent_path() / "tamper.sql";
    {
        std::ofstream out(script);
        out << sql << "\n";
    }
    const std::string command =
        "sqlite3 " + shell_quoted(db.string()) + " < " + shell_quoted(script.string()) + " 2>&1";
    INFO(sql);
    REQUIRE(std::system(command.c_str()) == 0);
}

// A consistent copy of a live store, as an auditor or an intruder would take it.
fs::path copy_of(const Daemon& daemon, const std::string& name) {
    const fs::path copy = daemon.dir() / name;
    sqlite(daemon.db(), ".backup " + shell_quoted(copy.string()));
    return copy;
}

void drop_triggers(const fs::path& db) {
    std::string sql;
    for (const json::value& row :
         sqlite_rows(db, "SELECT name FROM sqlite_master WHERE type = 'trigger'")) {
        sql += "DROP TRIGGER \"" + std::string(row.as_object().at("name").as_string()) + "\";\n";
    }
    REQUIRE_FALSE(sql.empty());
    sqlite(db, sql);
}

std::int64_t last_seq(const fs::path& db) {
    return sqlite_rows(db, "SELECT MAX(seq) AS last FROM audit_log")[0]
        .as_object()
        .at("last")
        .as_int64();
}

json::object request_for(std::string purpose, std::string activity, std::string recipient,
                         std::vector<std::string> data, std::string subject,
                         json::object context = {}) {
    json::object request = check_request(std::move(purpose), std::move(recipient), std::move(data));
    request["activity"] = activity;
    request["subject"] = subject;
    request["context"] = std::move(context);
    return request;
}

// A running daemon with a log of known decisions.
struct Scenario {
    Daemon daemon;
    flowgate::client::Client client;
    std::vector<std::int64_t> contractor_allows;  // allowed to hu_wellness (check and explain)
    std::vector<std::int64_t> consent_provisions; // allowed to the employer on consent
    std::int64_t middle = 0;                      // a decision in the middle of the log

    Scenario() {
        REQUIRE(daemon.start());
        client = daemon.connect();
        decide(allowed_check(), "allow");
        for (const char* subject : {"p-000201", "p-000202"}) {
            contractor_allows.push_back(decide(request_for("health_services", "sports_promotion",
                                                           "hu_wellness", {"status"}, subject),
                                               "allow"));
        }
        for (const char* subject : {"p-000301", "p-000302"}) {
            consent_provisions.push_back(
                decide(request_for("health_services", "collabo_health", "employer",
                                   {"checkup_result"}, subject, {{"consent", true}}),
                       "allow"));
        }
        middle = consent_provisions.front();
        // Provisions that are not consent-based, and consent that is not enough.
        decide(request_for("health_services", "collabo_health", "employer", {"checkup_result"},
                           "p-000303"),
               "deny");
        decide(request_for("health_services", "collabo_health", "employer", {"checkup_result"},
                           "p-000304", {{"consent", true}, {"objection", true}}),
               "deny");
        decide(request_for("insurance_benefits", "subrogation_claim", "nonlife_insurers",
                           {"status"}, "p-000305", {{"legal_basis", "appi_27_1_1"}}),
               "allow");
        decide(denied_check(), "deny");
        json::object explain = request_for("health_services", "sports_promotion", "hu_wellness",
                                           {"status"}, "p-000203");
        explain["op"] = "explain";
        contractor_allows.push_back(decide(explain, "allow"));
        // Names as a clerk types them, and denies that say what would do instead: an
        // unknown name's nearest names, the context a condition needs, the recipients a
        // purpose takes. Each twice, the second from the daemon's decision cache.
        for (int twice = 0; twice < 2; ++twice) {
            decide(request_for("health_services", "生活習慣改善 プログラムの実施",
                               "（株）ＰＲＥＶＥＮＴ", {"健診結果"}, "p-000401"),
                   "allow");
            decide(request_for("health_services", "lifestyle_programme", "（株）PREVENTT",
                               {"checkup_result"}, "p-000402"),
                   "deny");
            decide(request_for("health_services", "specific_checkup_report", "state",
                               {"checkup_result"}, "p-000403"),
                   "deny");
            decide(check_request("premium_collection", "prevent", {"status"}), "deny");
        }
        // Two refused requests: not JSON, and a check without its fields.
        RawConnection raw(daemon.socket());
        REQUIRE(raw.connected());
        raw.send("this is not json\n{\"op\":\"check\"}\n");
        REQUIRE(raw.read_line());
        REQUIRE(raw.read_line());
    }

    std::int64_t decide(const json::object& request, const std::string& expected) {
        auto answer = client.request(request);
        REQUIRE(answer);
        INFO(json::serialize(*answer.value));
        REQUIRE(text_of(*answer.value, "decision") == expected);
        return answer.value->at("audit_seq").as_int64();
    }
};

std::vector<std::int64_t> seqs_of(const json::array& items) {
    std::vector<std::int64_t> out;
    for (const json::value& item : items) {
        out.push_back(item.as_object().at("seq").as_int64());
    }
    return out;
}

std::vector<json::object> jsonl(const std::string& text) {
    std::vector<json::object> out;
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        if (!line.empty()) {
            out.push_back(json::parse(line).as_object());
        }
    }
    return out;
}

} // namespace

TEST_CASE("audit verify: an intact log verifies while the daemon writes it, quietly in a pipe",
          "[integration][audit]") {
    Scenario s;
    CommandResult verified =
        run_flowgate(s.daemon.dir(), {"audit", "verify", s.daemon.db().string()});
    INFO(verified.out << verified.err);
    CHECK(verified.status == 0);
    CHECK_THAT(verified.out, Catch::Contains("ok"));
    CHECK(verified.err.empty()); // no progress lines when stderr is not a terminal

    CommandResult checkpoint =
        run_flowgate(s.daemon.dir(), {"audit", "checkpoint", s.daemon.db().string()});
    CHECK(checkpoint.status == 0);
    const json::object last_row = audit_row(s.daemon.db(), last_seq(s.daemon.db()));
    CHECK(checkpoint.out == "seq " + std::to_string(last_seq(s.daemon.db())) + " hash " +
                                text_of(last_row, "hash") + "\n");

    // The daemon still serves and writes after the reads.
    s.decide(allowed_check(), "allow");
}

TEST_CASE("audit verify: each kind of tampering is caught at the first bad seq",
          "[integration][audit]") {
    Scenario s;
    const std::int64_t k = s.middle;
    const fs::path db = copy_of(s.daemon, "tampered.db");
    const std::string seq = std::to_string(k);
    const std::string next = std::to_string(k + 1);

    SECTION("a changed row") {
        drop_triggers(db);
        sqlite(db, "UPDATE audit_log SET subject = 'p-999999' WHERE seq = " + seq + ";");
    }
    SECTION("a deleted row") {
        drop_triggers(db);
        sqlite(db, "DELETE FROM audit_log WHERE seq = " + seq + ";");
    }
    SECTION("two rows reordered") {
        drop_triggers(db);
        sqlite(db, "UPDATE audit_log SET seq = -1 WHERE seq = " + seq +
                       ";\nUPDATE audit_log SET seq = " + seq + " WHERE seq = " + next +
                       ";\nUPDATE audit_log SET seq = " + next + " WHERE seq = -1;");
    }
    SECTION("an inserted row") {
        drop_triggers(db);
        sqlite(db, "UPDATE audit_log SET seq = seq + 1000000 WHERE seq >= " + seq +
                       ";\nUPDATE audit_log SET seq = seq - 999999 WHERE seq >= 1000000;\n"
                       "CREATE TEMP TABLE forged AS SELECT * FROM audit_log WHERE seq = " +
                       next + ";\nUPDATE forged SET seq = " + seq +
                       ", subject = 'p-999999';\nINSERT INTO audit_log SELECT * FROM forged;");
    }

    CommandResult verified = run_flowgate(s.daemon.dir(), {"audit", "verify", db.string()});
    INFO(verified.out << verified.err);
    CHECK(verified.status == 1);
    CHECK_THAT(verified.out, Catch::Contains("FAILED at seq " + seq + ":"));
    // The live log itself is untouched.
    CHECK(run_flowgate(s.daemon.dir(), {"audit", "verify", s.daemon.db().string()}).status == 0);
}

TEST_CASE("audit verify --checkpoint: a truncated tail and a log rebuilt from an old copy are "
          "caught",
          "[integration][audit]") {
    Scenario s;
    const fs::path checkpoint_file = s.daemon.dir() / "checkpoint.txt";

    SECTION("a truncated tail") {
        CommandResult checkpoint =
            run_flowgate(s.daemon.dir(), {"audit", "checkpoint", s.daemon.db().string()});
        REQUIRE(checkpoint.status == 0);
        std::ofstream(checkpoint_file) << checkpoint.out;
        const std::int64_t last = last_seq(s.daemon.db());
        const fs::path db = copy_of(s.daemon, "truncated.db");
        drop_triggers(db);
        // Cut as someone who knows the schema would: the rows, and the tree's nodes and
        // checkpoints past them.
        const std::string cut = std::to_string(last - 2);
        sqlite(db, "DELETE FROM audit_log WHERE seq > " + cut +
                       ";\nDELETE FROM audit_tree WHERE end > " + cut +
                       ";\nDELETE FROM audit_checkpoint WHERE tree_size > " + cut + ";");

        // The file alone cannot show it; the checkpoint kept elsewhere does.
        CHECK(run_flowgate(s.daemon.dir(), {"audit", "verify", db.string()}).status == 0);
        CommandResult verified =
            run_flowgate(s.daemon.dir(), {"audit", "verify", "--checkpoint",
                                          checkpoint_file.string(), db.string()});
        INFO(verified.out << verified.err);
        CHECK(verified.status == 1);
        CHECK_THAT(verified.out, Catch::Contains("FAILED at seq " + std::to_string(last - 1)));
        CHECK_THAT(verified.out, Catch::Contains("truncated"));
        // The intact log matches the same checkpoint.
        CHECK(run_flowgate(s.daemon.dir(), {"audit", "verify", "--checkpoint",
                                            checkpoint_file.string(), s.daemon.db().string()})
                  .status == 0);
    }

    SECTION("a log rebuilt from an old copy") {
        // The daemon's anchor too (first, so that it is no newer than the copy): the daemon
        // serves an old copy only with the anchor of its time.
        const fs::path anchor = s.daemon.db().string() + ".checkpoint";
        const fs::path old_anchor = s.daemon.dir() / "old.db.checkpoint";
        fs::copy_file(anchor, old_anchor);
        const fs::path old_copy = copy_of(s.daemon, "old.db");
        s.decide(allowed_check(), "allow");
        s.decide(allowed_check(), "allow");
        CommandResult checkpoint =
            run_flowgate(s.daemon.dir(), {"audit", "checkpoint", s.daemon.db().string()});
        REQUIRE(checkpoint.status == 0);
        std::ofstream(checkpoint_file) << checkpoint.out;
        const std::int64_t checkpointed = last_seq(s.daemon.db());

        // Put the old copy back and let the daemon write past the checkpoint again.
        s.daemon.signal(SIGTERM);
        REQUIRE(s.daemon.wait_exit() == 0);
        fs::remove(s.daemon.db().string() + "-wal");
        fs::remove(s.daemon.db().string() + "-shm");
        fs::copy_file(old_copy, s.daemon.db(), fs::copy_options::overwrite_existing);
        fs::copy_file(old_anchor, anchor, fs::copy_options::overwrite_existing);
        REQUIRE(s.daemon.start());
        auto client = s.daemon.connect();
        while (last_seq(s.daemon.db()) < checkpointed + 2) {
            auto answer = client.request(allowed_check());
            REQUIRE(answer);
        }

        CHECK(run_flowgate(s.daemon.dir(), {"audit", "verify", s.daemon.db().string()}).status ==
              0);
        CommandResult verified =
            run_flowgate(s.daemon.dir(), {"audit", "verify", "--checkpoint",
                                          checkpoint_file.string(), s.daemon.db().string()});
        INFO(verified.out << verified.err);
        CHECK(verified.status == 1);
        CHECK_THAT(verified.out,
                   Catch::Contains("FAILED at seq " + std::to_string(checkpointed) + ":"));
        CHECK_THAT(verified.out, Catch::Contains("checkpoint"));
    }
}

TEST_CASE("audit replay: every decision reproduces under the policy recorded with it",
          "[integration][audit]") {
    Scenario s;
    CommandResult replayed =
        run_flowgate(s.daemon.dir(), {"audit", "replay", "--json", s.daemon.db().string()});
    INFO(replayed.out << replayed.err);
    REQUIRE(replayed.status == 0);
    const json::object report = json::parse(replayed.out).as_object();
    const auto decisions = static_cast<std::int64_t>(audit_rows(s.daemon.db(), "check").size() +
                                                     audit_rows(s.daemon.db(), "explain").size());
    const auto refused = static_cast<std::int64_t>(audit_rows(s.daemon.db(), "refused").size());
    CHECK(decisions >= 10);
    CHECK(refused == 2);
    CHECK(report.at("decisions").as_int64() == decisions);
    CHECK(report.at("refused").as_int64() == refused);
    CHECK(report.at("reproduced").as_int64() == decisions + refused);
    CHECK(report.at("not_reproduced").as_array().empty());

    SECTION("a decision changed in the file does not reproduce, and replay names it") {
        const fs::path db = copy_of(s.daemon, "changed.db");
        drop_triggers(db);
        const std::string seq = std::to_string(s.contractor_allows.front());
        // The row names its decision by the id of the text (audit_text).
        sqlite(db, "UPDATE audit_log SET decision_id = (SELECT id FROM audit_text WHERE text = "
                   "'deny') WHERE seq = " +
                       seq + ";");
        CommandResult changed =
            run_flowgate(s.daemon.dir(), {"audit", "replay", "--json", db.string()});
        INFO(changed.out << changed.err);
        CHECK(changed.status == 1);
        const json::object bad = json::parse(changed.out).as_object();
        CHECK(seqs_of(bad.at("not_reproduced").as_array()) ==
              std::vector<std::int64_t>{s.contractor_allows.front()});
    }
}

TEST_CASE("audit replay --policy: a candidate without one contractor shows exactly the "
          "decisions that flip",
          "[integration][audit]") {
    Scenario s;
    // The contract with H.U.ウェルネス ends: its table line and party line go.
    const fs::path candidate = candidate_without(s.daemon.dir(), "hu_wellness");
    REQUIRE(run_flowgate(s.daemon.dir(), {"policy", "check", candidate.string()}).status == 0);

    CommandResult replayed =
        run_flowgate(s.daemon.dir(), {"audit", "replay", "--policy", candidate.string(), "--json",
                                      s.daemon.db().string()});
    INFO(replayed.out << replayed.err);
    CHECK(replayed.status == 1);
    const json::object report = json::parse(replayed.out).as_object();
    const json::array& changed = report.at("changed").as_array();
    CHECK(seqs_of(changed) == s.contractor_allows);
    for (const json::value& item : changed) {
        const json::object& change = item.as_object();
        CHECK(change.at("recipient") == "hu_wellness");
        CHECK(change.at("recorded").as_object().at("decision") == "allow");
        CHECK(change.at("replayed").as_object().at("decision") == "deny");
    }
    const auto flips = static_cast<std::int64_t>(s.contractor_allows.size());
    CHECK(report.at("by_recipient") == json::object{{"hu_wellness", flips}});
    CHECK(report.at("by_purpose") == json::object{{"health_services", flips}});
    CHECK(report.at("by_decision") == json::object{{"allow -> deny", flips}});

    SECTION("the policy in force as the candidate changes nothing") {
        CommandResult same =
            run_flowgate(s.daemon.dir(), {"audit", "replay", "--policy",
                                          s.daemon.policy_dir().string(), s.daemon.db().string()});
        INFO(same.out << same.err);
        CHECK(same.status == 0);
        CHECK_THAT(same.out, Catch::Contains(" 0 would change"));
    }
}

TEST_CASE("audit records: exactly the consent-based third-party provisions, per recipient and "
          "per person",
          "[integration][audit]") {
    Scenario s;
    const std::string db = s.daemon.db().string();
    CommandResult all = run_flowgate(s.daemon.dir(), {"audit", "records", "--format", "jsonl", db});
    INFO(all.out << all.err);
    REQUIRE(all.status == 0);
    std::vector<json::object> records = jsonl(all.out);
    std::vector<std::int64_t> seqs;
    for (const json::object& record : records) {
        seqs.push_back(record.at("seq").as_int64());
        CHECK(record.at("recipient") == "employer");
        CHECK(record.at("consent") == true);
        CHECK(record.at("data") == json::array{"checkup_result"});
        CHECK(record.at("legal_basis") == "appi_27_1_consent");
        CHECK(text_of(record, "time").size() == 27);
    }
    CHECK(seqs == s.consent_provisions);

    SECTION("per person") {
        CommandResult one = run_flowgate(
            s.daemon.dir(), {"audit", "records", "--subject", "p-000302", "--format", "jsonl", db});
        REQUIRE(one.status == 0);
        std::vector<json::object> person = jsonl(one.out);
        REQUIRE(person.size() == 1);
        CHECK(person[0].at("seq").as_int64() == s.consent_provisions.back());
    }
    SECTION("per recipient, named by its label or by another identifier") {
        CommandResult employer = run_flowgate(
            s.daemon.dir(), {"audit", "records", "--recipient", "事業主", "--format", "jsonl", db});
        REQUIRE(employer.status == 0);
        CHECK(jsonl(employer.out).size() == s.consent_provisions.size());
        CommandResult insurers =
            run_flowgate(s.daemon.dir(), {"audit", "records", "--recipient", "nonlife_insurers",
                                          "--format", "jsonl", db});
        REQUIRE(insurers.status == 0);
        CHECK(jsonl(insurers.out).empty());
        CommandResult text = run_flowgate(s.daemon.dir(), {"audit", "records", db});
        REQUIRE(text.status == 0);
        CHECK_THAT(text.out, Catch::Contains("recipient employer 事業主"));
        CHECK_THAT(text.out, Catch::Contains("person p-000301"));
    }
    SECTION("export for a period, as CSV") {
        CommandResult csv = run_flowgate(
            s.daemon.dir(), {"audit", "export", "--since", "2000-01-01", "--format", "csv", db});
        REQUIRE(csv.status == 0);
        CHECK(std::count(csv.out.begin(), csv.out.end(), '\n') ==
              static_cast<std::ptrdiff_t>(1 + s.consent_provisions.size()));
        CommandResult future = run_flowgate(
            s.daemon.dir(), {"audit", "export", "--since", "2999-01-01", "--format", "jsonl", db});
        REQUIRE(future.status == 0);
        CHECK(future.out.empty());
        CommandResult rows =
            run_flowgate(s.daemon.dir(), {"audit", "export", "--all", "--format", "jsonl", db});
        REQUIRE(rows.status == 0);
        CHECK(static_cast<std::int64_t>(jsonl(rows.out).size()) == last_seq(s.daemon.db()));
    }
}

TEST_CASE("audit commands: an unprivileged auditor with read access alone verifies, replays and "
          "lists records of a live store",
          "[integration][audit]") {
    Scenario s;
    // What an auditor is given: read permission on the store's files and its folder,
    // nothing else. The command is copied next to them so that no build folder's
    // permissions stand in the way.
    const fs::path dir = s.daemon.dir();
    fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec);
    const fs::perms readable = fs::perms::owner_read | fs::perms::owner_write |
                               fs::perms::group_read | fs::perms::others_read;
    for (const char* suffix : {"", "-wal", "-shm"}) {
        const fs::path file = s.daemon.db().string() + suffix;
        REQUIRE(fs::exists(file));
        fs::permissions(file, readable);
    }
    const fs::path command = dir / "flowgate-copy";
    fs::copy_file(FLOWGATE_PATH, command);
    fs::permissions(command, fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_read |
                                 fs::perms::others_exec);
    const std::string as_auditor =
        ::getuid() == 0 ? "setpriv --reuid=65534 --regid=65534 --clear-groups " : "";
    const std::string db = shell_quoted(s.daemon.db().string());
    for (const std::string& arguments :
         {"audit verify " + db, "audit replay " + db, "audit records " + db}) {
        CommandResult result =
            run_command(dir, as_auditor + shell_quoted(command.string()) + " " + arguments);
        INFO(arguments << "\n" << result.out << result.err);
        CHECK(result.status == 0);
    }
    // The reads changed nothing the daemon relies on: it still decides and commits.
    s.decide(allowed_check(), "allow");
}

TEST_CASE("audit coverage: each rule's decisions in a period, as the rows record them, and the "
          "rules that decided none",
          "[integration][audit]") {
    Scenario s;
    const std::string db = s.daemon.db().string();
    // What the rows say, counted by the sqlite3 command: decisions per rule.
    auto counted = [&](const std::string& where) {
        std::map<std::string, std::pair<std::int64_t, std::int64_t>> by_rule;
        for (const json::value& row : sqlite_rows(
                 s.daemon.db(), "SELECT rule, decision FROM audit_rows WHERE kind IN ('check', "
                                "'explain')" +
                                    where)) {
            auto& [allows, denies] = by_rule[text_of(row.as_object(), "rule")];
            ++(text_of(row.as_object(), "decision") == "allow" ? allows : denies);
        }
        return by_rule;
    };
    auto reported = [](const json::object& coverage) {
        std::map<std::string, std::pair<std::int64_t, std::int64_t>> by_rule;
        for (const json::value& value : coverage.at("rules").as_array()) {
            const json::object& rule = value.as_object();
            if (rule.at("allows").as_int64() + rule.at("denies").as_int64() > 0) {
                by_rule[text_of(rule, "id")] = {rule.at("allows").as_int64(),
                                                rule.at("denies").as_int64()};
            }
        }
        return by_rule;
    };
    const std::size_t rules = 54; // the bundled policy's, as `policy check` counts them
    CommandResult all = run_flowgate(s.daemon.dir(), {"audit", "coverage", "--json", db});
    INFO(all.out << all.err);
    REQUIRE(all.status == 0);
    const json::object coverage = json::parse(all.out).as_object();
    auto expected = counted("");
    const std::int64_t without_rule =
        expected.count("") != 0 ? expected[""].first + expected[""].second : 0;
    expected.erase("");
    CHECK(reported(coverage) == expected);
    CHECK(coverage.at("without_rule").as_int64() == without_rule);
    CHECK(coverage.at("rules").as_array().size() == rules);
    CHECK(coverage.at("never_decided").as_array().size() == rules - expected.size());
    CHECK(coverage.at("exercised").as_int64() == static_cast<std::int64_t>(expected.size()));
    REQUIRE(coverage.at("policies").as_array().size() == 1);
    CHECK(expected.at("r3_k").first == 3); // sports_promotion to hu_wellness: 2 checks, 1 explain

    SECTION("--until the middle of the log counts only the rows before it") {
        // The middle row's time to the microsecond, as --until takes it.
        const json::object middle =
            sqlite_rows(s.daemon.db(),
                        "SELECT time_us, strftime('%Y-%m-%dT%H:%M:%S', time_us / 1000000, "
                        "'unixepoch') || printf('.%06dZ', time_us % 1000000) AS t FROM audit_log "
                        "WHERE seq = " +
                            std::to_string(s.middle))[0]
                .as_object();
        CommandResult before = run_flowgate(
            s.daemon.dir(), {"audit", "coverage", "--json", "--until", text_of(middle, "t"), db});
        INFO(before.out << before.err);
        REQUIRE(before.status == 0);
        auto earlier = counted(" AND time_us < " + std::to_string(middle.at("time_us").as_int64()));
        earlier.erase("");
        REQUIRE_FALSE(earlier.empty()); // the scenario's first decisions come before it
        CHECK(earlier.size() < expected.size());
        CHECK(reported(json::parse(before.out).as_object()) == earlier);
    }
    SECTION("a period with no decisions lists every rule as never deciding") {
        CommandResult none =
            run_flowgate(s.daemon.dir(), {"audit", "coverage", "--since", "2999-01-01", db});
        INFO(none.out << none.err);
        REQUIRE(none.status == 0);
        CHECK(none.out == "coverage: no decisions in the period\n");
    }
    SECTION("the text names each exercised rule with where it stands") {
        CommandResult text = run_flowgate(s.daemon.dir(), {"audit", "coverage", db});
        REQUIRE(text.status == 0);
        CHECK_THAT(text.out, Catch::Contains("permit r3_k: 3 allow, 0 deny  "));
        CHECK_THAT(text.out, Catch::Contains("kenpo.policy:416 (table row 3, case k)\n"));
        CHECK_THAT(text.out, Catch::Contains("never decided:\n"));
    }
    SECTION("a store that is not there is an error") {
        CommandResult missing = run_flowgate(
            s.daemon.dir(), {"audit", "coverage", (s.daemon.dir() / "missing.db").string()});
        CHECK(missing.status == 2);
    }
}
