// Evaluator: the decision semantics of docs/policy-language.md ("Decisions") over a
// small policy written for the purpose, loaded through the real pipeline.
#include "tests/unit/dsl/evaluator_fixture.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace flowgate::dsl;
using flowgate::dsl::testing::request;

namespace {

const char* const policy_text = R"(
category checkup "健診結果" sensitivity special_care;
category guidance "保健指導" sensitivity special_care;
category status "資格情報" sensitivity ordinary;
category number "個人番号" sensitivity specific;

party society "健康保険組合" role internal;
party prevent "（株）PREVENT" role contractor;
party employer "事業主" role third_party;
party clinic_a "Aクリニック" role contractor;
party clinic_b "Bクリニック" role contractor;
class institutions "各契約健診機関" role contractor;
members institutions [clinic_a];

ground consent_ground "本人の同意";
ground outsourcing "委託";
ground mynumber_19 "番号法第19条";
obligation provision_record "第29条の提供記録を作成する";
obligation contract_reference "委託契約の参照";

purpose health "保健事業に必要な 利用目的" {
  activity internal_use "内部利用" kind internal to [society] data [checkup, guidance, status];
  activity checkups "健診の委託" kind outsource to [institutions] data [checkup];
  activity programme "生活習慣改善プログラム" kind outsource to [prevent] data [checkup, guidance, number];
  activity employer_report "事業主への提供" kind provide to [employer] data [checkup];
}

purpose premiums "保険料の徴収" {
  activity collect "保険料の受領" kind receive to [employer] data [status];
}

permit p_internal {
  purpose health; activity internal_use; to society; data checkup, guidance, status;
  basis outsourcing;
  because "内部での利用";
}
permit p_checkups {
  purpose health; activity checkups; to institutions; data checkup;
  basis outsourcing; oblige contract_reference;
  source row 3 case "k";
}
permit p_programme {
  purpose health; activity programme; to prevent; data checkup, guidance, number;
  when consent and not objection;
  basis consent_ground; oblige provision_record, contract_reference;
  source row 3 case "j";
  because "生活習慣改善プログラムの実施";
}
permit p_guidance_programme {
  purpose health; activity programme; to prevent; data guidance;
  when legal_basis in [outsourcing];
  basis outsourcing; oblige contract_reference;
}
permit p_employer {
  purpose health; activity employer_report; to employer; data checkup;
  when consent;
  basis consent_ground; oblige provision_record;
}
permit p_collect {
  purpose premiums; activity collect; to employer; data status;
}
forbid no_numbers {
  data sensitivity specific;
  kind not internal, receive;
  basis mynumber_19;
  because "特定個人情報は番号法の定める場合に限る";
}
)";

std::shared_ptr<const CompiledPolicy> test_policy() {
    static std::shared_ptr<const CompiledPolicy> policy =
        flowgate::dsl::testing::load_text("eval.policy", policy_text);
    return policy;
}

std::vector<std::string> obligation_ids(const Decision& d) {
    std::vector<std::string> ids;
    for (const Obligation* o : d.obligations) {
        ids.push_back(o->id);
    }
    return ids;
}

} // namespace

TEST_CASE("evaluator: a matching permit allows and reports rule, basis and obligations", "[dsl]") {
    auto policy = test_policy();
    Decision d = evaluate(*policy, request("health", "checkups", "institutions", {"checkup"}));
    CHECK(d.allowed);
    REQUIRE(d.rule != nullptr);
    CHECK(d.rule->id == "p_checkups");
    CHECK(d.rule->file == "eval.policy");
    CHECK(d.rule->line == 37);
    CHECK(d.rule->source_row == 3u);
    CHECK(d.rule->source_case == "k");
    REQUIRE(d.legal_basis != nullptr);
    CHECK(d.legal_basis->id == "outsourcing");
    CHECK(obligation_ids(d) == std::vector<std::string>{"contract_reference"});
    CHECK(d.reason() == "permitted by rule 'p_checkups'");
    CHECK(d.policy_hash == policy->hash());
    CHECK(d.policy_hash.substr(0, 7) == "sha256:");
}

TEST_CASE("evaluator: no permit means deny, naming the category", "[dsl]") {
    auto policy = test_policy();
    Decision d = evaluate(*policy, request("health", "employer_report", "employer", {"guidance"}));
    CHECK_FALSE(d.allowed);
    CHECK(d.rule == nullptr);
    CHECK(d.reason() ==
          "data 'guidance': no rule permits this flow to 'employer' in activity 'employer_report'");
    REQUIRE(d.failed_category != nullptr);
    CHECK(d.failed_category->id == "guidance");
}

TEST_CASE("evaluator: forbid overrides a permit whose condition holds", "[dsl]") {
    auto policy = test_policy();
    Request r = request("health", "programme", "prevent", {"number"});
    r.context.consent = true;
    Decision d = evaluate(*policy, r);
    CHECK_FALSE(d.allowed);
    REQUIRE(d.rule != nullptr);
    CHECK(d.rule->id == "no_numbers");
    CHECK(d.reason() == "data 'number': 特定個人情報は番号法の定める場合に限る");
    REQUIRE(d.legal_basis != nullptr);
    CHECK(d.legal_basis->id == "mynumber_19");
}

TEST_CASE("evaluator: conditions on consent, objection and legal basis", "[dsl]") {
    auto policy = test_policy();
    Request r = request("health", "programme", "prevent", {"checkup"});
    SECTION("without consent the closest permit's condition is the reason") {
        Decision d = evaluate(*policy, r);
        CHECK_FALSE(d.allowed);
        CHECK(d.reason() == "data 'checkup': requires consent and not objection (rule "
                            "'p_programme'); allowed with context consent: true");
    }
    SECTION("consent allows") {
        r.context.consent = true;
        Decision d = evaluate(*policy, r);
        CHECK(d.allowed);
        CHECK(d.reason() == "生活習慣改善プログラムの実施");
        CHECK(obligation_ids(d) ==
              std::vector<std::string>{"provision_record", "contract_reference"});
    }
    SECTION("an objection on file cancels consent") {
        r.context.consent = true;
        r.context.objection = true;
        CHECK_FALSE(evaluate(*policy, r).allowed);
    }
    SECTION("legal_basis in [...] matches a ground named by id or label") {
        r.data = {"guidance"};
        r.context.legal_basis = "委 託";
        Decision d = evaluate(*policy, r);
        CHECK(d.allowed);
        REQUIRE(d.rule != nullptr);
        CHECK(d.rule->id == "p_guidance_programme");
        r.context.legal_basis = "consent_ground";
        CHECK_FALSE(evaluate(*policy, r).allowed);
    }
}

TEST_CASE("evaluator: unknown names deny with a reason naming them", "[dsl]") {
    auto policy = test_policy();
    // Names too far from any declared one get no suggestion (see the suggestion tests).
    CHECK(evaluate(*policy, request("nope", {}, "prevent", {"checkup"})).reason() ==
          "unknown purpose 'nope'");
    CHECK(evaluate(*policy, request("health", {}, "foo", {"checkup"})).reason() ==
          "unknown recipient 'foo'");
    CHECK(evaluate(*policy, request("health", {}, "prevent", {"checkup", "x"})).reason() ==
          "unknown data category 'x'");
    CHECK(evaluate(*policy, request("health", "y", "prevent", {"checkup"})).reason() ==
          "unknown activity 'y' in purpose 'health'");
    Request r = request("health", {}, "prevent", {"checkup"});
    r.context.legal_basis = "made_up";
    Decision d = evaluate(*policy, r);
    CHECK_FALSE(d.allowed);
    CHECK(d.reason() == "unknown legal basis 'made_up'");
    CHECK(d.suggestions.empty());
}

TEST_CASE("evaluator: names may be labels, with white space ignored", "[dsl]") {
    auto policy = test_policy();
    Request r = request("保健事業に必要な利用目的", "健診の　委託", "Aクリニック", {" 健診結果 "});
    Decision d = evaluate(*policy, r);
    CHECK(d.allowed);
    CHECK(policy->find_purpose("保健事業に 必要な利用目的") == policy->find_purpose("health"));
    CHECK(policy->find_purpose("保健事業に必要な利用") == no_id);
}

TEST_CASE("evaluator: several categories are allowed only if each one is", "[dsl]") {
    auto policy = test_policy();
    Request r = request("health", "internal_use", "society", {"checkup", "status"});
    CHECK(evaluate(*policy, r).allowed);
    r.data = {"checkup", "number", "status"};
    Decision d = evaluate(*policy, r);
    CHECK_FALSE(d.allowed);
    REQUIRE(d.failed_category != nullptr);
    CHECK(d.failed_category->id == "number");
    CHECK(d.reason().find("data 'number'") == 0);
}

TEST_CASE("evaluator: a class stands for its members", "[dsl]") {
    auto policy = test_policy();
    CHECK(evaluate(*policy, request("health", "checkups", "clinic_a", {"checkup"})).allowed);
    CHECK(evaluate(*policy, request("health", "checkups", "institutions", {"checkup"})).allowed);
    CHECK_FALSE(evaluate(*policy, request("health", "checkups", "clinic_b", {"checkup"})).allowed);
}

TEST_CASE("evaluator: receive activities answer only inbound requests", "[dsl]") {
    auto policy = test_policy();
    Request r = request("premiums", "collect", "employer", {"status"});
    Decision outbound = evaluate(*policy, r);
    CHECK_FALSE(outbound.allowed);
    CHECK(outbound.reason() ==
          "activity 'collect' is an inbound flow (kind receive) and needs direction receive");
    r.direction = Direction::receive;
    CHECK(evaluate(*policy, r).allowed);
    r.activity.reset();
    CHECK(evaluate(*policy, r).allowed);
    r.direction = Direction::send;
    CHECK(evaluate(*policy, r).reason() == "purpose 'premiums' has no activity for direction send");
}

TEST_CASE("evaluator: without an activity the purpose's activities are tried in order", "[dsl]") {
    auto policy = test_policy();
    Decision d = evaluate(*policy, request("health", {}, "clinic_a", {"checkup"}));
    CHECK(d.allowed);
    REQUIRE(d.activity != nullptr);
    CHECK(d.activity->id == "checkups");
    SECTION("a deny prefers the most telling reason over the activities tried") {
        Decision denied = evaluate(*policy, request("health", {}, "prevent", {"number"}));
        CHECK_FALSE(denied.allowed);
        REQUIRE(denied.rule != nullptr);
        CHECK(denied.rule->id == "no_numbers");
    }
}

TEST_CASE("evaluator: a trace lists the rules considered and why each did or did not match",
          "[dsl]") {
    auto policy = test_policy();
    Request r = request("health", "programme", "prevent", {"checkup"});
    Trace trace;
    Decision traced = evaluate(*policy, r, &trace);
    Decision plain = evaluate(*policy, r);
    CHECK(traced.allowed == plain.allowed);
    CHECK(traced.reason() == plain.reason());
    auto step = [&](std::string_view id) {
        auto it = std::find_if(trace.steps.begin(), trace.steps.end(),
                               [&](const TraceStep& s) { return s.rule->id == id; });
        REQUIRE(it != trace.steps.end());
        return *it;
    };
    CHECK(step("p_programme").matched == false);
    CHECK(step("p_programme").why == "condition not met: consent and not objection");
    CHECK(step("p_internal").why == "'activity' does not match");
    CHECK(step("no_numbers").why == "'data' does not match");
    CHECK(step("p_programme").category == "checkup");
    CHECK(step("p_programme").activity == "programme");
    // Rules of another purpose are not part of the trace.
    CHECK(std::none_of(trace.steps.begin(), trace.steps.end(),
                       [](const TraceStep& s) { return s.rule->id == "p_collect"; }));

    r.context.consent = true;
    Trace allowed;
    Decision d = evaluate(*policy, r, &allowed);
    CHECK(d.allowed);
    CHECK(std::any_of(allowed.steps.begin(), allowed.steps.end(), [](const TraceStep& s) {
        return s.rule->id == "p_programme" && s.matched &&
               s.why == "all clauses match and consent and not objection holds";
    }));
}

TEST_CASE("evaluator: without an activity, a forbid is applied per activity, even when it names "
          "one",
          "[dsl]") {
    // Two activities of the same kind to the same contractor: a forbid that names the
    // first must not also cancel the second, and one that names none applies to both.
    const std::string text = R"(
category checkup "健診結果" sensitivity special_care;
party prevent "PREVENT" role contractor;
purpose health "保健事業" {
  activity first "一つ目の委託" kind outsource to [prevent] data [checkup];
  activity second "二つ目の委託" kind outsource to [prevent] data [checkup];
}
permit p_first { purpose health; activity first; to prevent; data checkup; }
permit p_second { purpose health; activity second; to prevent; data checkup; }
)";
    SECTION("a forbid naming the first activity leaves the second allowed") {
        LoadResult loaded = load_policy(std::vector<PolicyText>{
            {"named.policy",
             text + "forbid f { purpose health; activity first; when not consent; }\n"}});
        INFO(format(loaded.diagnostics));
        REQUIRE(loaded);
        Decision d =
            evaluate(*loaded.policy, request("health", std::nullopt, "prevent", {"checkup"}));
        CHECK(d.allowed);
        REQUIRE(d.activity != nullptr);
        CHECK(d.activity->id == "second");
    }
    SECTION("a forbid naming no activity applies to each of them") {
        LoadResult loaded = load_policy(std::vector<PolicyText>{
            {"unnamed.policy", text + "forbid f { purpose health; when not consent; }\n"}});
        INFO(format(loaded.diagnostics));
        REQUIRE(loaded);
        Decision d =
            evaluate(*loaded.policy, request("health", std::nullopt, "prevent", {"checkup"}));
        CHECK_FALSE(d.allowed);
        REQUIRE(d.rule != nullptr);
        CHECK(d.rule->id == "f");
        Request consented = request("health", std::nullopt, "prevent", {"checkup"});
        consented.context.consent = true;
        Decision allowed = evaluate(*loaded.policy, consented);
        CHECK(allowed.allowed);
        REQUIRE(allowed.activity != nullptr);
        CHECK(allowed.activity->id == "first");
    }
}

TEST_CASE("evaluator: a trace stops recording at max_steps, counts the rest, and decides as "
          "without one",
          "[dsl][trace]") {
    auto policy = test_policy();
    // Requests over every purpose, activity (and none), recipient and a few category
    // lists, with and without consent: allows, forbids, unmet conditions, no match.
    std::vector<Request> requests;
    const std::vector<std::vector<std::string>> data_lists{
        {"checkup"}, {"guidance", "checkup"}, {"number"}, {"status"}, {"checkup", "guidance"}};
    for (const char* purpose : {"health", "premiums"}) {
        for (std::optional<std::string> activity :
             {std::optional<std::string>(), std::optional<std::string>("programme"),
              std::optional<std::string>("internal_use"), std::optional<std::string>("collect")}) {
            for (const char* recipient : {"prevent", "society", "employer", "clinic_a"}) {
                for (const auto& data : data_lists) {
                    for (bool consent : {false, true}) {
                        Request r = request(purpose, activity, recipient, data);
                        r.context.consent = consent;
                        requests.push_back(r);
                        r.direction = Direction::receive;
                        requests.push_back(r);
                    }
                }
            }
        }
    }
    std::size_t cut = 0;
    for (const Request& r : requests) {
        INFO(r.purpose << " " << r.activity.value_or("-") << " " << r.recipient << " "
                       << r.data.size() << " consent " << r.context.consent);
        const Decision plain = evaluate(*policy, r);
        Trace full;
        evaluate(*policy, r, &full);
        CHECK(full.omitted == 0);
        for (std::size_t max_steps : {std::size_t{0}, std::size_t{1}, std::size_t{3}}) {
            INFO("max_steps " << max_steps);
            Trace bounded;
            bounded.max_steps = max_steps;
            const Decision decision = evaluate(*policy, r, &bounded);
            CHECK(decision.allowed == plain.allowed);
            CHECK(decision.rule == plain.rule);
            CHECK(decision.reason() == plain.reason());
            CHECK(decision.activity == plain.activity);
            CHECK(decision.failed_category == plain.failed_category);
            CHECK(decision.obligations == plain.obligations);
            // The steps recorded are the first of the full trace; the rest are counted.
            CHECK(bounded.steps.size() == std::min(max_steps, full.steps.size()));
            CHECK(bounded.steps.size() + bounded.omitted == full.steps.size());
            for (std::size_t i = 0; i < bounded.steps.size(); ++i) {
                CHECK(bounded.steps[i].rule == full.steps[i].rule);
                CHECK(bounded.steps[i].why == full.steps[i].why);
                CHECK(bounded.steps[i].category == full.steps[i].category);
            }
            cut += bounded.omitted != 0 ? 1 : 0;
        }
    }
    CHECK(cut > 100); // the bound was reached, not only stayed under
}
