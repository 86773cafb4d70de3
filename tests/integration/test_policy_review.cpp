// The admin's review commands as a shell script runs them: `flowgate policy diff`,
// `policy lint` and `policy test --coverage` on policy directories written for the
// test, their exit statuses (0 nothing to report, 1 something, 2 a policy that does not
// load) and what they print.
#include "tests/integration/daemon_rig.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <fstream>

using namespace flowgate::integration;
namespace json = boost::json;

namespace {

const std::string policy_text = R"(category checkup "健診結果" sensitivity special_care;
category status "資格情報" sensitivity ordinary;
party society "健康保険組合" role internal;
party employer "事業主" role third_party;
ground consent_ground "本人の同意";
obligation provision_record "提供記録";
purpose health "保健事業" {
  activity internal_use "内部利用" kind internal to [society] data [checkup, status];
  activity employer_report "事業主への提供" kind provide to [employer] data [checkup];
}
permit p_internal { purpose health; activity internal_use; to society; data checkup, status; }
permit p_employer {
  purpose health; activity employer_report; to employer; data checkup;
  when consent;
  basis consent_ground; oblige provision_record;
  source row 3 case "e";
}
)";

struct Workspace {
    TempDir dir;

    fs::path policy(const std::string& name, const std::string& text) const {
        const fs::path path = dir.path() / name;
        fs::create_directories(path);
        std::ofstream(path / "test.policy") << text;
        return path;
    }

    CommandResult flowgate(const std::vector<std::string>& arguments) const {
        return run_flowgate(dir.path(), arguments);
    }
};

std::string without(std::string text, const std::string& part) {
    auto at = text.find(part);
    REQUIRE(at != std::string::npos);
    return text.erase(at, part.size());
}

} // namespace

TEST_CASE("policy diff: exit 0 for no change, 1 for a change, 2 for a policy that does not load",
          "[integration][policy]") {
    Workspace w;
    const fs::path old_policy = w.policy("old", policy_text);
    SECTION("a policy against a copy of itself") {
        const fs::path copy = w.policy("copy", policy_text);
        CommandResult same = w.flowgate({"policy", "diff", old_policy.string(), copy.string()});
        INFO(same.out << same.err);
        CHECK(same.status == 0);
        CHECK_THAT(same.out, Catch::StartsWith("policy diff: 0 requests of "));
    }
    SECTION("consent no longer asked of the employer's check-up results") {
        const fs::path edited = w.policy("new", without(policy_text, "  when consent;\n"));
        CommandResult changed =
            w.flowgate({"policy", "diff", old_policy.string(), edited.string()});
        INFO(changed.out << changed.err);
        CHECK(changed.status == 1);
        CHECK_THAT(changed.out,
                   Catch::Contains("\nNEW ALLOW of special-care or specific data to a third "
                                   "party: "));
        CHECK_THAT(changed.out, Catch::Contains("to employer \"事業主\", data checkup \"健診結果\" "
                                                "(special_care): no consent"));
        CHECK_THAT(changed.out, Catch::Contains("(table row 3, case e)"));

        CommandResult as_json =
            w.flowgate({"policy", "diff", "--json", old_policy.string(), edited.string()});
        CHECK(as_json.status == 1);
        const json::object out = json::parse(as_json.out).as_object();
        const json::array& groups = out.at("groups").as_array();
        REQUIRE_FALSE(groups.empty());
        CHECK(groups[0].as_object().at("significance").as_string() == "sensitive_to_third_party");
        CHECK(out.at("changed_requests").as_int64() > 0);
    }
    SECTION("a policy with an error") {
        const fs::path broken = w.policy("broken", policy_text + "permit bad { to nobody; }\n");
        CommandResult bad = w.flowgate({"policy", "diff", old_policy.string(), broken.string()});
        CHECK(bad.status == 2);
        CHECK_THAT(bad.err, Catch::Contains("unknown party 'nobody'"));
        CHECK(bad.out.empty());
    }
    SECTION("a path that is not there") {
        CommandResult missing = w.flowgate(
            {"policy", "diff", old_policy.string(), (w.dir.path() / "missing").string()});
        CHECK(missing.status == 2);
    }
}

TEST_CASE("policy lint: exit 0 on a clean policy, 1 on findings with file:line, 2 on errors",
          "[integration][policy]") {
    Workspace w;
    SECTION("clean") {
        CommandResult clean =
            w.flowgate({"policy", "lint", w.policy("clean", policy_text).string()});
        INFO(clean.out << clean.err);
        CHECK(clean.status == 0);
        CHECK_THAT(clean.out, Catch::EndsWith(": 0 findings\n"));
    }
    SECTION("an obligation declared and never obliged") {
        const fs::path unused =
            w.policy("unused", policy_text + "obligation idle \"使わない義務\";\n");
        CommandResult found = w.flowgate({"policy", "lint", unused.string()});
        INFO(found.out << found.err);
        CHECK(found.status == 1);
        CHECK_THAT(found.out,
                   Catch::Contains((unused / "test.policy").string() +
                                   ":18:12: warning: obligation 'idle' is obliged by no rule\n"));
        CommandResult as_json = w.flowgate({"policy", "lint", "--json", unused.string()});
        CHECK(as_json.status == 1);
        const json::array findings = json::parse(as_json.out).as_object().at("findings").as_array();
        REQUIRE(findings.size() == 1);
        CHECK(findings[0].as_object().at("kind").as_string() == "obligation_unused");
        CHECK(findings[0].as_object().at("line").as_int64() == 18);
    }
    SECTION("a policy with an error") {
        CommandResult bad =
            w.flowgate({"policy", "lint", w.policy("broken", policy_text + "permit {\n").string()});
        CHECK(bad.status == 2);
    }
}

TEST_CASE("policy test --coverage: the rules the cases decided, and those they did not",
          "[integration][policy]") {
    Workspace w;
    const fs::path dir = w.policy("covered", policy_text);
    fs::create_directories(dir / "tests");
    std::ofstream(dir / "tests" / "cases.jsonl")
        << R"({"name": "internal use", "request": {"purpose": "health", "activity": "internal_use", "recipient": "society", "data": ["status"]}, "expect": "allow"})"
        << "\n"
        << R"({"name": "to the employer without consent", "request": {"purpose": "health", "activity": "employer_report", "recipient": "employer", "data": ["checkup"]}, "expect": "deny"})"
        << "\n"
        << R"({"name": "no rule", "request": {"purpose": "health", "recipient": "employer", "data": ["status"]}, "expect": "deny"})"
        << "\n";
    CommandResult covered = w.flowgate({"policy", "test", "--coverage", dir.string()});
    INFO(covered.out << covered.err);
    CHECK(covered.status == 0);
    CHECK_THAT(covered.out,
               Catch::Contains("3 passed, 0 failed\ncoverage: 2 of 2 rules decided 3 test cases "
                               "(1 denied with no rule applying)\n"));
    CHECK_THAT(covered.out, Catch::Contains("permit p_internal: 1 allow, 0 deny  "));
    // The unmet permit is the rule of the deny.
    CHECK_THAT(covered.out, Catch::Contains("permit p_employer: 0 allow, 1 deny  "));

    std::ofstream(dir / "tests" / "cases.jsonl", std::ios::trunc)
        << R"({"name": "internal use", "request": {"purpose": "health", "activity": "internal_use", "recipient": "society", "data": ["status"]}, "expect": "allow"})"
        << "\n";
    CommandResult partial = w.flowgate({"policy", "test", "--coverage", dir.string()});
    CHECK(partial.status == 0);
    CHECK_THAT(partial.out, Catch::Contains("coverage: 1 of 2 rules decided 1 test case\n"));
    CHECK_THAT(partial.out,
               Catch::Contains("never decided:\n  permit p_employer  " +
                               (dir / "test.policy").string() + ":12 (table row 3, case e)\n"));
    CommandResult plain = w.flowgate({"policy", "test", dir.string()});
    CHECK(plain.out == "1 passed, 0 failed\n");
}
