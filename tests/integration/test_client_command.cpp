// `flowgate check|explain|describe|status|reload` run as a shell script runs it, against
// the real daemon: the exit statuses a script gates on, --json, FLOWGATE_SOCKET; and
// the README's client examples — the C++ program, the socat line, the gating script —
// taken from the README itself and run, so the README cannot drift (the Python package's
// examples are run by tests/python/test_install.py).
#include "tests/integration/daemon_rig.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

using namespace flowgate::integration;
namespace json = boost::json;

namespace {

// Runs a shell command line in `dir` with FLOWGATE_SOCKET as given ("" to unset it).
CommandResult run_shell(const fs::path& dir, const std::string& line,
                        const std::string& flowgate_socket = "") {
    const fs::path script = dir / "command.sh";
    {
        std::ofstream file(script);
        file << (flowgate_socket.empty()
                     ? "unset FLOWGATE_SOCKET\n"
                     : "export FLOWGATE_SOCKET=" + shell_quoted(flowgate_socket) + "\n")
             << "cd " << shell_quoted(dir.string()) << "\n"
             << line << "\n";
    }
    return run_command(dir, "bash " + shell_quoted(script.string()));
}

// `flowgate ARGS...` with the daemon named by --socket.
CommandResult run_flowgate(const Daemon& daemon, const std::vector<std::string>& arguments) {
    std::string line =
        shell_quoted(FLOWGATE_PATH) + " --socket " + shell_quoted(daemon.socket().string());
    for (const std::string& argument : arguments) {
        line += " " + shell_quoted(argument);
    }
    return run_shell(daemon.dir(), line);
}

const std::vector<std::string> allowed_args{"check",   "--purpose", "health_services", "--to",
                                            "prevent", "--data",    "checkup_result"};
const std::vector<std::string> denied_args{"check",    "--purpose", "health_services", "--to",
                                           "employer", "--data",    "checkup_result"};

std::vector<std::string> with(std::vector<std::string> arguments, const std::string& extra) {
    arguments.push_back(extra);
    return arguments;
}

json::object parse_object(const std::string& text) {
    boost::system::error_code error;
    json::value parsed = json::parse(text, error);
    INFO("parsing: " << text);
    REQUIRE_FALSE(error);
    REQUIRE(parsed.is_object());
    return parsed.as_object();
}

std::string policy_hash(const Daemon& daemon) {
    auto client = daemon.connect();
    auto status = client.status();
    REQUIRE(status);
    return text_of(*status.value, "policy");
}

// The README's "## The client library" section.
std::string readme_client_section() {
    const std::string readme = read_text(fs::path(FLOWGATE_SOURCE_DIR) / "README.md");
    const auto start = readme.find("\n## The client library\n");
    REQUIRE(start != std::string::npos);
    const auto end = readme.find("\n## ", start + 1);
    return readme.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// The fenced ```sh block of the section that contains `marker`, without the fences.
std::string readme_shell_block(const std::string& marker) {
    const std::string section = readme_client_section();
    const auto at = section.find(marker);
    REQUIRE(at != std::string::npos);
    const auto open = section.rfind("```sh\n", at);
    REQUIRE(open != std::string::npos);
    const auto close = section.find("\n```", at);
    REQUIRE(close != std::string::npos);
    return section.substr(open + 6, close + 1 - (open + 6));
}

} // namespace

TEST_CASE("flowgate check: exit 0 on allow, 1 on deny, 2 when the daemon is down",
          "[integration][client][command]") {
    Daemon daemon;
    REQUIRE(daemon.start());

    CommandResult allowed = run_flowgate(daemon, allowed_args);
    INFO(allowed.out << allowed.err);
    CHECK(allowed.status == 0);
    CHECK_THAT(allowed.out, Catch::StartsWith("allow: "));
    CHECK_THAT(allowed.out, Catch::Contains("r3_j (table row 3, case j)"));
    CHECK_THAT(allowed.out, Catch::Contains("contract_reference"));

    CommandResult denied = run_flowgate(daemon, denied_args);
    INFO(denied.out << denied.err);
    CHECK(denied.status == 1);
    CHECK_THAT(denied.out, Catch::StartsWith("deny: "));

    daemon.signal(SIGTERM);
    REQUIRE(daemon.wait_exit() == 0);
    CommandResult down = run_flowgate(daemon, allowed_args);
    CHECK(down.status == 2);
    CHECK(down.out.empty());
    CHECK_THAT(down.err, Catch::Contains("not running at " + daemon.socket().string()));
}

TEST_CASE("flowgate check --json: the answer parses and carries the decision and its audit seq",
          "[integration][client][command]") {
    Daemon daemon;
    REQUIRE(daemon.start());

    CommandResult allowed = run_flowgate(daemon, with(allowed_args, "--json"));
    INFO(allowed.out << allowed.err);
    CHECK(allowed.status == 0);
    json::object allow = parse_object(allowed.out);
    CHECK(allow.at("decision") == "allow");
    REQUIRE(allow.at("audit_seq").is_int64());
    CHECK(audit_row(daemon.db(), allow.at("audit_seq").as_int64()).at("decision") == "allow");

    CommandResult denied = run_flowgate(daemon, with(denied_args, "--json"));
    CHECK(denied.status == 1);
    json::object deny = parse_object(denied.out);
    CHECK(deny.at("decision") == "deny");
    REQUIRE(deny.at("audit_seq").is_int64());
    CHECK(deny.at("audit_seq").as_int64() > allow.at("audit_seq").as_int64());

    SECTION("a request the daemon refuses is exit 2 with its error answer") {
        CommandResult refused = run_flowgate(
            daemon, {"check", "--json", "--request", R"({"purpose":"health_services"})"});
        CHECK(refused.status == 2);
        json::object error = parse_object(refused.out);
        CHECK(error_code(error) == "missing_field");
    }
    SECTION("an unreachable daemon is exit 2 with an error object too") {
        daemon.signal(SIGKILL);
        daemon.wait_exit();
        CommandResult down = run_flowgate(daemon, with(allowed_args, "--json"));
        CHECK(down.status == 2);
        json::object error = parse_object(down.out);
        CHECK(error_code(error) == "not_running");
        CHECK_THAT(down.err, Catch::Contains(daemon.socket().string()));
    }
}

TEST_CASE("flowgate: FLOWGATE_SOCKET names the daemon unless --socket does",
          "[integration][client][command]") {
    Daemon daemon;
    REQUIRE(daemon.start());
    const std::string command = shell_quoted(FLOWGATE_PATH) +
                                " check --purpose health_services --to "
                                "prevent --data checkup_result";
    CommandResult from_env = run_shell(daemon.dir(), command, daemon.socket().string());
    INFO(from_env.out << from_env.err);
    CHECK(from_env.status == 0);
    CHECK_THAT(from_env.out, Catch::StartsWith("allow: "));

    const std::string elsewhere = (daemon.dir() / "elsewhere.sock").string();
    CommandResult wrong_env = run_shell(daemon.dir(), command, elsewhere);
    CHECK(wrong_env.status == 2);
    CHECK_THAT(wrong_env.err, Catch::Contains(elsewhere));

    CommandResult overridden = run_shell(
        daemon.dir(),
        shell_quoted(FLOWGATE_PATH) + " --socket " + shell_quoted(daemon.socket().string()) +
            " check --purpose health_services --to prevent --data checkup_result",
        elsewhere);
    CHECK(overridden.status == 0);
}

TEST_CASE("flowgate reload: exit 0 with the new hash for an admin, 1 when refused",
          "[integration][client][command]") {
    SECTION("an admin") {
        RigConfig config;
        config.services.push_back({::getuid(), "operator", true});
        Daemon daemon(config);
        REQUIRE(daemon.start());
        const std::string before = policy_hash(daemon);
        std::ofstream(daemon.policy_dir() / "members.policy", std::ios::app)
            << "\n# reloaded by flowgate reload\n";
        CommandResult reloaded = run_flowgate(daemon, {"reload"});
        INFO(reloaded.out << reloaded.err);
        CHECK(reloaded.status == 0);
        const std::string after = policy_hash(daemon);
        CHECK(after != before);
        CHECK(reloaded.out == "reloaded: policy " + after + "\n");

        std::ofstream(daemon.policy_dir() / "zz-broken.policy")
            << "# broken on purpose\ncategory oops \"x\" sensitivity;\n";
        CommandResult failed = run_flowgate(daemon, {"reload"});
        CHECK(failed.status == 1);
        CHECK_THAT(failed.err, Catch::Contains("reload_failed"));
        CHECK_THAT(failed.err, Catch::Contains("zz-broken.policy:2:"));
        CHECK(policy_hash(daemon) == after);
    }
    SECTION("a caller who is not an admin") {
        RigConfig config;
        config.services.push_back({::getuid(), "claims", false});
        Daemon daemon(config);
        REQUIRE(daemon.start());
        CommandResult refused = run_flowgate(daemon, {"reload"});
        CHECK(refused.status == 1);
        CHECK_THAT(refused.err, Catch::Contains("forbidden"));
    }
    SECTION("no daemon") {
        Daemon daemon;
        CommandResult down = run_flowgate(daemon, {"reload"});
        CHECK(down.status == 2);
    }
}

TEST_CASE("flowgate describe and status: human output names the policy hash",
          "[integration][client][command]") {
    Daemon daemon;
    REQUIRE(daemon.start());
    const std::string hash = policy_hash(daemon);
    REQUIRE(hash.rfind("sha256:", 0) == 0);

    CommandResult described = run_flowgate(daemon, {"describe"});
    INFO(described.out << described.err);
    CHECK(described.status == 0);
    CHECK_THAT(described.out, Catch::StartsWith("policy " + hash + "\n"));
    CHECK_THAT(described.out, Catch::Contains("purpose health_services"));
    CHECK_THAT(described.out, Catch::Contains("lifestyle_programme"));

    CommandResult status = run_flowgate(daemon, {"status"});
    INFO(status.out << status.err);
    CHECK(status.status == 0);
    CHECK_THAT(status.out, Catch::Contains("policy: " + hash + "\n"));
    CHECK_THAT(status.out, Catch::Contains("version: "));
    CHECK_THAT(status.out, Catch::Contains("policy_loaded_at: 20"));
    CHECK_THAT(status.out, Catch::Contains(" UTC\n"));

    CommandResult status_json = run_flowgate(daemon, {"status", "--json"});
    CHECK(status_json.status == 0);
    CHECK(text_of(parse_object(status_json.out), "policy") == hash);
}

TEST_CASE("flowgate explain: the trace marks the deciding rule", "[integration][client][command]") {
    Daemon daemon;
    REQUIRE(daemon.start());
    CommandResult explained =
        run_flowgate(daemon, {"explain", "--purpose", "health_services", "--to", "employer",
                              "--data", "checkup_result", "--consent"});
    INFO(explained.out << explained.err);
    CHECK(explained.status == 0);
    CHECK_THAT(explained.out, Catch::Contains("  trace:\n"));
    CHECK_THAT(explained.out, Catch::Contains("+ permit r3_d at "));
    // Grouped by the activity tried; the one that decided is marked, and holds r3_d.
    const std::size_t decided = explained.out.find("    activity collabo_health (decided):\n");
    REQUIRE(decided != std::string::npos);
    CHECK(explained.out.find("    activity checkups_and_guidance:\n") < decided);
    CHECK(explained.out.find("+ permit r3_d at ", decided) != std::string::npos);
    CHECK(explained.out.find("(decided)") == explained.out.rfind("(decided)"));
}

TEST_CASE("flowgate check: a deny prints what would do instead", "[integration][client][command]") {
    Daemon daemon;
    REQUIRE(daemon.start());
    CommandResult unknown = run_flowgate(daemon, {"check", "--purpose", "health_services", "--to",
                                                  "㈱PREVENTT", "--data", "checkup_result"});
    INFO(unknown.out << unknown.err);
    CHECK(unknown.status == 1);
    CHECK_THAT(unknown.out, Catch::Contains("  suggestions: recipient: prevent ((株)PREVENT)"));
    CommandResult unmet = run_flowgate(daemon, {"check", "--purpose", "health_services",
                                                "--activity", "specific_checkup_report", "--to",
                                                "state", "--data", "checkup_result"});
    INFO(unmet.out << unmet.err);
    CHECK(unmet.status == 1);
    CHECK_THAT(unmet.out, Catch::Contains("  allowed with context: legal_basis: appi_27_1_1\n"));
    CommandResult wide = run_flowgate(daemon, {"check", "--purpose", "health_services", "--to",
                                               "（株）ＰＲＥＶＥＮＴ", "--data", "健診結果"});
    INFO(wide.out << wide.err);
    CHECK(wide.status == 0);
}

TEST_CASE("flowgate --timeout-ms: a stopped daemon is exit 2 once the wait is over",
          "[integration][client][command]") {
    Daemon daemon;
    REQUIRE(daemon.start());
    daemon.signal(SIGSTOP);
    CommandResult stalled =
        run_flowgate(daemon, {"--timeout-ms", "200", "check", "--purpose", "health_services",
                              "--to", "prevent", "--data", "checkup_result"});
    daemon.signal(SIGCONT);
    CHECK(stalled.status == 2);
    CHECK_THAT(stalled.err, Catch::Contains("did not answer within 200 ms"));
}

TEST_CASE("README: the client library's C++ example is the example program, which prints allow",
          "[integration][client][readme]") {
    const std::string source =
        read_text(fs::path(FLOWGATE_SOURCE_DIR) / "client/examples/check_transfer.cpp");
    REQUIRE_FALSE(source.empty());
    CHECK_THAT(readme_client_section(), Catch::Contains("```cpp\n" + source + "```\n"));

    Daemon daemon;
    REQUIRE(daemon.start());
    CommandResult ran = run_shell(daemon.dir(), shell_quoted(FLOWGATE_CLIENT_EXAMPLE_PATH) + " " +
                                                    shell_quoted(daemon.socket().string()));
    INFO(ran.out << ran.err);
    CHECK(ran.status == 0);
    CHECK_THAT(ran.out, Catch::StartsWith("allow by r3_j (audit seq "));
    CHECK_THAT(ran.out, Catch::Contains("obligation: contract_reference"));

    SECTION("with the socket from FLOWGATE_SOCKET") {
        CommandResult from_env = run_shell(daemon.dir(), shell_quoted(FLOWGATE_CLIENT_EXAMPLE_PATH),
                                           daemon.socket().string());
        CHECK(from_env.status == 0);
    }
    SECTION("and exit 2 when the daemon is down") {
        daemon.signal(SIGKILL);
        daemon.wait_exit();
        CommandResult down =
            run_shell(daemon.dir(), shell_quoted(FLOWGATE_CLIENT_EXAMPLE_PATH) + " " +
                                        shell_quoted(daemon.socket().string()));
        CHECK(down.status == 2);
        CHECK_THAT(down.err, Catch::Contains("not running"));
    }
}

TEST_CASE("README: the socat one-liner gets the allow answer", "[integration][client][readme]") {
    const std::string line = readme_shell_block("| socat - ");
    Daemon daemon;
    REQUIRE(daemon.start());
    CommandResult ran = run_shell(daemon.dir(), line, daemon.socket().string());
    INFO(line << ran.out << ran.err);
    CHECK(ran.status == 0);
    json::object answer = parse_object(ran.out);
    CHECK(answer.at("id") == 1);
    CHECK(answer.at("decision") == "allow");
    CHECK(answer.at("rule").at("id") == "r3_j");
    REQUIRE(answer.at("audit_seq").is_int64());
}

TEST_CASE("README: the gating script sends on allow and holds back when the daemon is down",
          "[integration][client][readme]") {
    const std::string block = readme_shell_block("if flowgate check");
    Daemon daemon;
    REQUIRE(daemon.start());
    // The script's `flowgate` and transfer command, as a site would have them.
    const std::string prelude =
        "PATH=" + shell_quoted(fs::path(FLOWGATE_PATH).parent_path().string()) +
        ":$PATH\nsend_to_prevent() { echo \"sent $1\"; }\n";

    CommandResult allowed = run_shell(daemon.dir(), prelude + block, daemon.socket().string());
    INFO(block << allowed.out << allowed.err);
    CHECK(allowed.out == "sent results.csv\n");
    json::object decision = parse_object(read_text(daemon.dir() / "decision.json"));
    CHECK(decision.at("decision") == "allow");
    CHECK(decision.at("audit_seq").is_int64());

    daemon.signal(SIGKILL);
    daemon.wait_exit();
    CommandResult down = run_shell(daemon.dir(), prelude + block, daemon.socket().string());
    CHECK(down.out.empty());
    CHECK_THAT(down.err, Catch::Contains("not sent (exit 2)"));
    CHECK_THAT(down.err, Catch::Contains("not_running"));
}
