// policy lint: each kind of finding on a policy built to have it, at the line of the
// declaration concerned; a policy without such defects has none; the bundled policy's
// findings are the two categories it declares for requests that name them and that no
// activity lists.
#include "dsl/policy_lint.hpp"
#include "dsl/policy_loader.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace flowgate::dsl;

namespace {

// Line N of this text is line N of the file.
const std::string defects = R"(category checkup "健診結果" sensitivity special_care;
category status "資格情報" sensitivity ordinary;
category unused_category "未使用" sensitivity ordinary;

party society "健康保険組合" role internal;
party prevent "（株）PREVENT" role contractor;
party employer "事業主" role third_party;
party idle "取引のない会社" role contractor;
party clinic_a "Aクリニック" role contractor;
party clinic_b "Bクリニック" role contractor;
class empty_class "空の区分" role contractor;

ground outsourcing "委託";
ground idle_ground "使わない根拠";
obligation record "提供記録";
obligation idle_obligation "使わない義務";

purpose health "保健事業" {
  activity internal_use "内部利用" kind internal to [society] data [checkup, status];
  activity programme "プログラム" kind outsource to [prevent, clinic_a, clinic_b, empty_class] data [checkup];
  activity report "事業主への報告" kind provide to [employer] data [checkup];
}

permit p_internal { purpose health; activity internal_use; to society; data checkup, status; basis outsourcing; }
permit p_programme { purpose health; activity programme; to prevent, clinic_a, clinic_b; data checkup; oblige record; }
permit p_impossible { purpose health; activity programme; to prevent; data checkup; when consent and not consent; }
permit p_forbidden { purpose health; activity internal_use; to society; data checkup; when objection; }
forbid against_objection { data sensitivity special_care; when objection; }
)";

std::vector<LintFinding> lint_text(const std::string& text) {
    LoadResult loaded = load_policy(std::vector<PolicyText>{{"lint.policy", text}});
    INFO(format(loaded.diagnostics));
    REQUIRE(loaded);
    return lint_policy(*loaded.policy);
}

// The findings of one kind, as "line:column message".
std::vector<std::string> of_kind(const std::vector<LintFinding>& findings, LintKind kind) {
    std::vector<std::string> out;
    for (const LintFinding& finding : findings) {
        if (finding.kind == kind) {
            CHECK(finding.diagnostic.file == "lint.policy");
            CHECK(finding.diagnostic.severity == Severity::warning);
            out.push_back(std::to_string(finding.diagnostic.line) + ":" +
                          std::to_string(finding.diagnostic.column) + " " +
                          finding.diagnostic.message);
        }
    }
    return out;
}

} // namespace

TEST_CASE("policy lint: each finding at its declaration", "[dsl][lint]") {
    std::vector<LintFinding> findings = lint_text(defects);
    SECTION("a permit whose condition holds in no context") {
        CHECK_THAT(of_kind(findings, LintKind::permit_never_allows),
                   Catch::VectorContains(std::string(
                       "26:8 permit 'p_impossible' never allows a request: its condition holds "
                       "in no context")));
    }
    SECTION("a permit every request of which a forbid or an earlier permit decides") {
        CHECK_THAT(of_kind(findings, LintKind::permit_never_allows),
                   Catch::VectorContains(std::string(
                       "27:8 permit 'p_forbidden' never allows a request: every request it "
                       "matches is forbidden or allowed by an earlier permit")));
        CHECK(of_kind(findings, LintKind::permit_never_allows).size() == 2);
    }
    SECTION("an activity no permit serves") {
        CHECK(of_kind(findings, LintKind::activity_unserved) ==
              std::vector<std::string>{
                  "21:12 no permit serves activity 'report' of purpose 'health'"});
    }
    SECTION("a party, a category, a ground and an obligation never used") {
        CHECK(of_kind(findings, LintKind::party_unused) ==
              std::vector<std::string>{"8:7 party 'idle' is named by no activity, rule or class"});
        CHECK(of_kind(findings, LintKind::category_unused) ==
              std::vector<std::string>{
                  "3:10 category 'unused_category' is named by no activity or rule"});
        CHECK(of_kind(findings, LintKind::ground_unused) ==
              std::vector<std::string>{
                  "14:8 ground 'idle_ground' is no rule's basis and no condition names it"});
        CHECK(of_kind(findings, LintKind::obligation_unused) ==
              std::vector<std::string>{"16:12 obligation 'idle_obligation' is obliged by no rule"});
    }
    SECTION("a class without members") {
        CHECK(of_kind(findings, LintKind::class_without_members) ==
              std::vector<std::string>{"11:7 class 'empty_class' has no members (a `members "
                                       "empty_class [...]` declaration names them)"});
    }
    SECTION("in file, line and column order") {
        CHECK(std::is_sorted(findings.begin(), findings.end(),
                             [](const LintFinding& a, const LintFinding& b) {
                                 return std::pair(a.diagnostic.line, a.diagnostic.column) <
                                        std::pair(b.diagnostic.line, b.diagnostic.column);
                             }));
        CHECK(findings.size() == 8);
    }
}

TEST_CASE("policy lint: names that fold alike are the checker's error, so lint never sees them",
          "[dsl][lint]") {
    // Two labels, and an identifier and another thing's label: a request could not tell
    // them apart, so the policy does not load (lint exits 2 with these diagnostics).
    LoadResult loaded = load_policy(std::vector<PolicyText>{{"lint.policy", R"(
category status "資格情報" sensitivity ordinary;
category benefit "status" sensitivity ordinary;
party clinic_a "Aクリニック" role contractor;
party clinic_b "A クリニック" role contractor;
)"}});
    REQUIRE_FALSE(loaded);
    std::vector<std::string> messages;
    for (const Diagnostic& d : loaded.diagnostics) {
        messages.push_back(std::to_string(d.line) + ":" + std::to_string(d.column) + " " +
                           d.message);
    }
    CHECK(messages ==
          std::vector<std::string>{
              "3:18 label 'status' of category 'benefit' folds to the same name as category "
              "'status' (declared at lint.policy:2): both are 'status' once folded (NFKC, white "
              "space removed)",
              "5:16 label 'A クリニック' of party 'clinic_b' folds to the same name as label "
              "'Aクリニック' of party 'clinic_a' (declared at lint.policy:4): both are "
              "'Aクリニック' once folded (NFKC, white space removed)"});
}

TEST_CASE("policy lint: a policy without defects has no findings", "[dsl][lint]") {
    std::vector<LintFinding> findings = lint_text(R"(
category checkup "健診結果" sensitivity special_care;
party society "組合" role internal;
party clinic "クリニック" role contractor;
class clinics "健診機関" role contractor;
members clinics [clinic];
ground outsourcing "委託";
obligation record "記録";
purpose p "保健事業" {
  activity use "内部利用" kind internal to [society] data [checkup];
  activity checkups "健診" kind outsource to [clinics] data [checkup];
}
permit r_use { purpose p; activity use; to society; data checkup; }
permit r_checkups { purpose p; activity checkups; to clinics; data checkup; when not objection or legal_basis in [outsourcing]; basis outsourcing; oblige record; }
forbid no_objection { data sensitivity special_care; when objection and not legal_basis; }
)");
    for (const LintFinding& finding : findings) {
        UNSCOPED_INFO(format(finding.diagnostic));
    }
    CHECK(findings.empty());
}

TEST_CASE("policy lint: the bundled policy's findings are its two categories no activity lists",
          "[dsl][lint]") {
    LoadResult bundled = load_policy(std::filesystem::path(FLOWGATE_SOURCE_DIR "/policies"));
    REQUIRE(bundled);
    std::vector<LintFinding> findings = lint_policy(*bundled.policy);
    std::vector<std::string> seen;
    for (const LintFinding& finding : findings) {
        CHECK(finding.kind == LintKind::category_unused);
        seen.push_back(finding.diagnostic.message);
    }
    CHECK(seen ==
          std::vector<std::string>{"category 'tax_status' is named by no activity or rule",
                                   "category 'resident_register' is named by no activity or rule"});
}
