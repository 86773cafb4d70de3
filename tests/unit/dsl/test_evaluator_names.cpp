// The evaluator and the names of a request: every kind of name matched by its folded
// form, as a clerk types it; an unknown name denied with the nearest declared names;
// a deny that says which recipients a purpose takes and which context would allow.
#include "dsl/request_json.hpp"
#include "tests/unit/dsl/evaluator_fixture.hpp"

using namespace flowgate::dsl;
using flowgate::dsl::testing::request;

namespace {

const char* const policy_text = R"(
category status "資格情報" sensitivity ordinary;
category checkup "健診結果" sensitivity special_care;
category katakana "ケンシンデータ" sensitivity ordinary;
party society "健康保険組合" role internal;
party prevent "(株)PREVENT" role contractor;
party zaidan "(財)日本生産性本部" role contractor;
party employer "事業主" role third_party;
party state "国" role public_body;
party clinic_shinjuku "新宿健診クリニック" role contractor;
party clinic_tama "多摩健診センター" role contractor;
class institutions "各契約健診機関" role contractor;
members institutions [clinic_shinjuku, clinic_tama];
alias employer "事業者";
ground appi_27_1_1 "個人情報保護法第27条第1項第1号";
ground appi_27_5_1 "個人情報保護法第27条第5項第1号";
obligation record "記録";

purpose health "保健事業に必要な利用目的" {
  activity programme "生活習慣改善プログラムの実施" kind outsource to [prevent] data [checkup, katakana];
  activity notices "通知の作成（第２号）" kind outsource to [zaidan] data [status];
  activity checkups "健診の委託" kind outsource to [institutions] data [checkup];
  activity collabo "コラボヘルスの一環である健診結果の事業者への提供" kind provide to [employer] data [checkup];
  activity report "国への報告" kind report to [state] data [checkup];
}

permit p_programme { purpose health; activity programme; to prevent; data checkup, katakana; basis appi_27_5_1; }
permit p_notices { purpose health; activity notices; to zaidan; data status; basis appi_27_5_1; }
permit p_checkups { purpose health; activity checkups; to institutions; data checkup; basis appi_27_5_1; }
permit p_collabo {
  purpose health; activity collabo; to employer; data checkup;
  when consent and not objection; oblige record;
}
permit p_report {
  purpose health; activity report; to state; data checkup;
  when legal_basis in [appi_27_1_1]; basis appi_27_1_1;
}
)";

std::shared_ptr<const CompiledPolicy> names_policy() {
    static std::shared_ptr<const CompiledPolicy> policy =
        flowgate::dsl::testing::load_text("names.policy", policy_text);
    return policy;
}

std::vector<std::string> suggested(const Decision& d) {
    std::vector<std::string> out;
    for (const Suggestion& s : d.suggestions) {
        out.push_back(std::string(s.field) + ":" + std::string(s.id));
    }
    return out;
}

} // namespace

TEST_CASE("evaluator names: a request names each kind as a clerk types it", "[dsl][names]") {
    auto policy = names_policy();
    SECTION("parties: full-width parentheses and letters, ㈱, （財）, spaces") {
        for (const char* name :
             {"（株）PREVENT", "（株）ＰＲＥＶＥＮＴ", "㈱PREVENT", " ( 株 )　PREVENT "}) {
            INFO(name);
            Decision d = evaluate(*policy, request("health", "programme", name, {"checkup"}));
            CHECK(d.allowed);
        }
        CHECK(evaluate(*policy, request("health", "notices", "（財）日本生産性本部", {"status"}))
                  .allowed);
        CHECK(evaluate(*policy, request("health", "notices", "㈶日本生産性本部", {"status"}))
                  .allowed);
    }
    SECTION("purposes and activities by label, full-width digits in an article number") {
        CHECK(evaluate(*policy, request("保健事業に　必要な利用目的 ",
                                        "生活習慣改善 プログラムの実施", "prevent", {"checkup"}))
                  .allowed);
        CHECK(evaluate(*policy, request("health", "通知の作成(第2号)", "zaidan", {"status"}))
                  .allowed);
    }
    SECTION("categories: half-width katakana") {
        CHECK(evaluate(*policy, request("health", "programme", "prevent", {"ｹﾝｼﾝﾃﾞｰﾀ"})).allowed);
        CHECK(evaluate(*policy, request("health", "programme", "prevent", {"健診 結果"})).allowed);
    }
    SECTION("grounds: full-width digits") {
        Request r = request("health", "report", "state", {"checkup"});
        r.context.legal_basis = "個人情報保護法第２７条第１項第１号";
        Decision d = evaluate(*policy, r);
        CHECK(d.allowed);
        REQUIRE(d.legal_basis != nullptr);
        CHECK(d.legal_basis->label == "個人情報保護法第27条第1項第1号"); // as the policy writes it
    }
    SECTION("an alias: the table's word for the employer") {
        Request r = request("health", {}, "事業者", {"健診結果"});
        r.context.consent = true;
        Decision d = evaluate(*policy, r);
        CHECK(d.allowed);
        CHECK(policy->find_party("事業者") == policy->find_party("employer"));
        CHECK(policy->find_party("事業主") == policy->find_party("employer"));
    }
    SECTION("folding does not make a near name known") {
        CHECK(policy->find_party("(株)PREVENTS") == no_id);
        CHECK(policy->find_party("prevent_") == no_id);
        CHECK(policy->find_party("PREVENT") == no_id);
    }
}

TEST_CASE("evaluator names: an unknown name is denied with the nearest of its kind",
          "[dsl][names]") {
    auto policy = names_policy();
    SECTION("a recipient, nearest first") {
        Decision d =
            evaluate(*policy, request("health", "programme", "（株）PREVENTT", {"checkup"}));
        CHECK_FALSE(d.allowed);
        CHECK(suggested(d) == std::vector<std::string>{"recipient:prevent"});
        CHECK(d.reason() == "unknown recipient '（株）PREVENTT'; nearest: prevent \"(株)PREVENT\"");
    }
    SECTION("a made-up member of a class: that class's members") {
        Decision d =
            evaluate(*policy, request("health", "checkups", "新宿健診クリニック本院", {"checkup"}));
        CHECK_FALSE(d.allowed);
        CHECK(suggested(d) ==
              std::vector<std::string>{"recipient:clinic_shinjuku", "recipient:clinic_tama"});
    }
    SECTION("a purpose, an activity within its purpose, a category, a ground") {
        CHECK(suggested(evaluate(*policy, request("helth", {}, "prevent", {"checkup"}))) ==
              std::vector<std::string>{"purpose:health"});
        CHECK(suggested(evaluate(*policy, request("health", "programm", "prevent", {"checkup"}))) ==
              std::vector<std::string>{"activity:programme"});
        CHECK(suggested(
                  evaluate(*policy, request("health", {}, "prevent", {"status", "健診結杲"}))) ==
              std::vector<std::string>{"data:checkup"});
        Request r = request("health", "report", "state", {"checkup"});
        r.context.legal_basis = "appi_27_1_l";
        Decision d = evaluate(*policy, r);
        CHECK(suggested(d) == std::vector<std::string>{"context.legal_basis:appi_27_1_1",
                                                       "context.legal_basis:appi_27_5_1"});
    }
    SECTION("a name like nothing declared: no suggestion") {
        Decision d = evaluate(*policy, request("health", {}, "(有)ダミー", {"checkup"}));
        CHECK_FALSE(d.allowed);
        CHECK(d.suggestions.empty());
        CHECK(d.reason() == "unknown recipient '(有)ダミー'");
    }
    SECTION("the answer carries them, and its text is the JSON's") {
        Decision d = evaluate(*policy, request("health", "programme", "事業者様", {"checkup"}));
        boost::json::object answer = decision_to_json(d, nullptr);
        CHECK(boost::json::serialize(answer.at("suggestions")) ==
              R"([{"field":"recipient","id":"employer","label":"事業主"}])");
        CHECK(decision_to_text(d, nullptr) == boost::json::serialize(answer));
    }
}

TEST_CASE("evaluator names: a recipient no activity takes is answered with those it takes",
          "[dsl][names]") {
    auto policy = names_policy();
    SECTION("without an activity: every activity of the purpose was tried") {
        Decision d = evaluate(*policy, request("health", {}, "society", {"checkup"}));
        CHECK_FALSE(d.allowed);
        CHECK(d.activity == nullptr);
        CHECK(d.rule == nullptr);
        CHECK(d.reason().starts_with("no activity of purpose 'health' sends to 'society'; its "
                                     "activities send to: prevent \"(株)PREVENT\", zaidan"));
        CHECK(suggested(d) == std::vector<std::string>{"recipient:prevent", "recipient:zaidan",
                                                       "recipient:institutions",
                                                       "recipient:employer", "recipient:state"});
    }
    SECTION("a named activity") {
        Decision d = evaluate(*policy, request("health", "programme", "zaidan", {"checkup"}));
        CHECK(d.reason() == "activity 'programme' does not send to 'zaidan'; it sends to: prevent "
                            "\"(株)PREVENT\"");
    }
    SECTION("a recipient some activity takes: that activity's deny, not the first tried") {
        Decision d = evaluate(*policy, request("health", {}, "prevent", {"status"}));
        CHECK_FALSE(d.allowed);
        REQUIRE(d.activity != nullptr);
        CHECK(d.activity->id == "programme");
        CHECK(d.reason() == "data 'status': no rule permits this flow to 'prevent' in activity "
                            "'programme'");
        CHECK(d.suggestions.empty());
    }
}

TEST_CASE("evaluator names: a condition's deny names the context that would allow",
          "[dsl][names]") {
    auto policy = names_policy();
    SECTION("a legal ground") {
        Decision d = evaluate(*policy, request("health", "report", "state", {"checkup"}));
        CHECK_FALSE(d.allowed);
        CHECK(d.reason() == "data 'checkup': requires legal_basis in [appi_27_1_1] (rule "
                            "'p_report'); allowed with context legal_basis: appi_27_1_1");
        REQUIRE(d.satisfying_context);
        REQUIRE(d.satisfying_context->legal_basis_changed);
        CHECK(d.satisfying_context->legal_basis->id == "appi_27_1_1");
        CHECK_FALSE(d.satisfying_context->consent);
        Request fixed = request("health", "report", "state", {"checkup"});
        fixed.context.legal_basis = "appi_27_1_1";
        CHECK(evaluate(*policy, fixed).allowed);
    }
    SECTION("the fewest changes: consent alone, or consent and the objection withdrawn") {
        Request r = request("health", "collabo", "employer", {"checkup"});
        Decision d = evaluate(*policy, r);
        REQUIRE(d.satisfying_context);
        CHECK(*d.satisfying_context == ContextChange{true, std::nullopt, false, nullptr});
        r.context.objection = true;
        d = evaluate(*policy, r);
        REQUIRE(d.satisfying_context);
        CHECK(*d.satisfying_context == ContextChange{true, false, false, nullptr});
        CHECK(d.reason().ends_with("; allowed with context consent: true, objection: false"));
        CHECK(boost::json::serialize(decision_to_json(d, nullptr).at("satisfying_context")) ==
              R"({"consent":true,"objection":false})");
        CHECK(decision_to_text(d, nullptr) == boost::json::serialize(decision_to_json(d, nullptr)));
    }
    SECTION("no context allows: nothing is said") {
        Decision d = evaluate(*policy, request("health", "programme", "prevent", {"status"}));
        CHECK_FALSE(d.allowed);
        CHECK_FALSE(d.satisfying_context);
    }
}
