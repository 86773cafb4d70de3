// policy diff: over small policies written for the purpose, the differences it reports
// are exactly those found by evaluating every request of the joint space one by one
// (the brute force it must equal), a one-corner change is found with its context, a
// policy and itself reformatted do not differ, and groups come most significant first.
#include "dsl/formatter.hpp"
#include "dsl/parser.hpp"
#include "dsl/policy_diff.hpp"
#include "dsl/policy_loader.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

using namespace flowgate::dsl;

namespace {

const std::string base_text = R"(
category checkup "健診結果" sensitivity special_care;
category status "資格情報" sensitivity ordinary;
category number "個人番号" sensitivity specific;

party society "健康保険組合" role internal;
party employer "事業主" role third_party;
party clinic_a "Aクリニック" role contractor;
party clinic_b "Bクリニック" role contractor;
party other "他社" role contractor;
class institutions "各契約健診機関" role contractor;
members institutions [clinic_a, clinic_b];

ground consent_ground "本人の同意";
ground outsourcing "委託";
ground by_law "法令";
obligation provision_record "提供記録";
obligation contract_reference "委託契約の参照";

purpose health "保健事業" {
  activity internal_use "内部利用" kind internal to [society] data [checkup, status];
  activity checkups "健診の委託" kind outsource to [institutions] data [checkup, status];
  activity employer_report "事業主への提供" kind provide to [employer] data [checkup];
}
purpose premiums "保険料" {
  activity collect "保険料の受領" kind receive to [employer] data [status];
}

permit p_internal { purpose health; activity internal_use; to society; data checkup, status; basis outsourcing; }
permit p_checkups {
  purpose health; activity checkups; to institutions; data checkup, status;
  when not objection or legal_basis in [by_law];
  basis outsourcing; oblige contract_reference;
  source row 3 case "k";
}
permit p_employer {
  purpose health; activity employer_report; to employer; data checkup;
  when consent;
  basis consent_ground; oblige provision_record;
  source row 3 case "e";
}
permit p_collect { purpose premiums; activity collect; to employer; data status; }
forbid no_numbers { data sensitivity specific; kind not internal; }
forbid care_objection { to role third_party; data sensitivity special_care; when objection and not legal_basis in [by_law]; }
)";

std::shared_ptr<const CompiledPolicy> load(const std::string& text) {
    LoadResult loaded = load_policy(std::vector<PolicyText>{{"test.policy", text}});
    INFO(format(loaded.diagnostics));
    REQUIRE(loaded);
    return loaded.policy;
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
    auto at = text.find(from);
    REQUIRE(at != std::string::npos);
    return text.replace(at, from.size(), to);
}

// One concrete request: purpose, activity ("" none), recipient, category, direction,
// consent, objection, ground ("" none).
using Concrete =
    std::tuple<std::string, std::string, std::string, std::string, int, bool, bool, std::string>;

template <typename Items> void add_ids(std::vector<std::string>& out, const Items& items) {
    for (const auto& item : items) {
        if (std::find(out.begin(), out.end(), item.id) == out.end()) {
            out.push_back(item.id);
        }
    }
}

std::string outcome_text(const Decision& decision) {
    std::vector<std::string> obligations;
    for (const Obligation* obligation : decision.obligations) {
        obligations.push_back(obligation->id);
    }
    std::sort(obligations.begin(), obligations.end());
    std::string text = decision.allowed ? "allow" : "deny";
    text += "|" + (decision.rule ? decision.rule->id : std::string());
    text += "|" + (decision.legal_basis ? decision.legal_basis->id : std::string());
    for (const std::string& obligation : obligations) {
        text += "|" + obligation;
    }
    return text;
}

// Every request of the joint space, each evaluated by name under both policies: the
// ones that differ, and how many there are in all.
std::pair<std::set<Concrete>, std::uint64_t> brute_force(const CompiledPolicy& a,
                                                         const CompiledPolicy& b) {
    std::vector<std::string> purposes, parties, categories, grounds;
    for (const CompiledPolicy* policy : {&a, &b}) {
        add_ids(purposes, policy->model().purposes);
        add_ids(parties, policy->model().parties);
        add_ids(categories, policy->model().categories);
        add_ids(grounds, policy->model().grounds);
    }
    grounds.insert(grounds.begin(), "");
    std::set<Concrete> differ;
    std::uint64_t total = 0;
    for (const std::string& purpose : purposes) {
        std::vector<std::string> activities{""};
        for (const CompiledPolicy* policy : {&a, &b}) {
            Id p = policy->find_purpose(purpose);
            if (p == no_id) {
                continue;
            }
            for (Id act : policy->model().purposes[p].activities) {
                const std::string& id = policy->model().activities[act].id;
                if (std::find(activities.begin(), activities.end(), id) == activities.end()) {
                    activities.push_back(id);
                }
            }
        }
        for (const std::string& activity : activities) {
            for (const std::string& party : parties) {
                for (const std::string& category : categories) {
                    for (int direction : {0, 1}) {
                        for (bool consent : {false, true}) {
                            for (bool objection : {false, true}) {
                                for (const std::string& ground : grounds) {
                                    Request request;
                                    request.purpose = purpose;
                                    if (!activity.empty()) {
                                        request.activity = activity;
                                    }
                                    request.recipient = party;
                                    request.data = {category};
                                    request.direction =
                                        direction == 0 ? Direction::send : Direction::receive;
                                    request.context.consent = consent;
                                    request.context.objection = objection;
                                    if (!ground.empty()) {
                                        request.context.legal_basis = ground;
                                    }
                                    ++total;
                                    if (outcome_text(evaluate(a, request)) !=
                                        outcome_text(evaluate(b, request))) {
                                        differ.insert({purpose, activity, party, category,
                                                       direction, consent, objection, ground});
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    return {differ, total};
}

// The concrete requests a diff's groups stand for.
std::set<Concrete> reported(const PolicyDiff& diff) {
    std::set<Concrete> out;
    for (const ChangeGroup& group : diff.groups) {
        for (const ChangedFlow& flow : group.flows) {
            for (const ContextSet& contexts : flow.contexts) {
                for (bool consent : {false, true}) {
                    if ((contexts.consent & (consent ? context_true : context_false)) == 0) {
                        continue;
                    }
                    for (bool objection : {false, true}) {
                        if ((contexts.objection & (objection ? context_true : context_false)) ==
                            0) {
                            continue;
                        }
                        for (const std::string& ground : contexts.grounds) {
                            Concrete request{group.purpose.id,
                                             group.activity ? group.activity->id : "",
                                             flow.recipient.id,
                                             flow.category.id,
                                             group.direction == Direction::send ? 0 : 1,
                                             consent,
                                             objection,
                                             ground};
                            INFO("reported twice: " << group.purpose.id << " " << flow.recipient.id
                                                    << " " << flow.category.id);
                            CHECK(out.insert(request).second);
                        }
                    }
                }
            }
        }
    }
    return out;
}

void check_against_brute_force(const CompiledPolicy& a, const CompiledPolicy& b) {
    PolicyDiff diff = diff_policies(a, b);
    auto [differ, total] = brute_force(a, b);
    CHECK(diff.space.requests == total);
    CHECK(diff.changed_requests == differ.size());
    CHECK(reported(diff) == differ);
    CHECK(diff.space.classes < total);
}

} // namespace

TEST_CASE("policy diff: one condition on one ground for one class member and one category is "
          "found, with exactly its contexts",
          "[dsl][diff]") {
    auto before = load(base_text);
    // clinic_a, a member of the class the permit names, loses check-up results to an
    // outsourcing ground when there is no consent; nothing else changes.
    auto after = load(base_text + "forbid corner { to clinic_a; data checkup; when legal_basis in "
                                  "[outsourcing] and not consent; }\n");
    PolicyDiff diff = diff_policies(*before, *after);
    REQUIRE_FALSE(diff.empty());
    CHECK(diff.order_changes.empty());
    // What was allowed and no longer is: check-up results to clinic_a under the
    // activity and with no activity named, sent with no consent, no objection (with one,
    // p_checkups did not allow it before) and the ground outsourcing. One request each.
    std::vector<const ChangeGroup*> denied;
    for (const ChangeGroup& group : diff.groups) {
        CHECK(group.after.rule == "corner");
        REQUIRE(group.flows.size() == 1);
        CHECK(group.flows[0].recipient.id == "clinic_a");
        CHECK(group.flows[0].category.id == "checkup");
        if (group.significance == Significance::denied) {
            denied.push_back(&group);
        } else {
            // Elsewhere the forbid only takes over a deny.
            CHECK(group.significance == Significance::deny_changed);
            CHECK_FALSE(group.before.allowed);
        }
    }
    REQUIRE(denied.size() == 2);
    CHECK(diff.groups[0].significance == Significance::denied);
    CHECK(diff.groups[1].significance == Significance::denied);
    for (const ChangeGroup* group : denied) {
        CHECK(group->purpose.id == "health");
        CHECK(group->direction == Direction::send);
        CHECK(group->before.allowed);
        CHECK(group->before.rule == "p_checkups");
        CHECK(group->before.rule_source == "test.policy:30 (table row 3, case k)");
        CHECK_FALSE(group->after.allowed);
        CHECK(group->flows[0].category.label == "健診結果");
        REQUIRE(group->flows[0].contexts.size() == 1);
        const ContextSet& contexts = group->flows[0].contexts[0];
        CHECK(contexts.consent == context_false);
        CHECK(contexts.objection == context_false);
        CHECK(contexts.grounds == std::vector<std::string>{"outsourcing"});
        CHECK(context_text(contexts, diff.ground_choices) ==
              "no consent, no objection, legal_basis outsourcing");
        CHECK(group->requests == 1);
    }
    CHECK(denied[0]->activity.has_value() != denied[1]->activity.has_value());
    check_against_brute_force(*before, *after);
}

TEST_CASE("policy diff: equals evaluating every request one by one, for changes of every kind",
          "[dsl][diff]") {
    auto before = load(base_text);
    SECTION("a party, a category and a ground added, a permit widened") {
        std::string text = replaced(base_text, "party other \"他社\" role contractor;",
                                    "party other \"他社\" role contractor;\nparty newco \"新社\" "
                                    "role third_party;\ncategory extra \"追加\" sensitivity "
                                    "special_care;\nground new_law \"新法\";");
        text = replaced(text, "when consent;", "when consent or legal_basis in [new_law];");
        check_against_brute_force(*before, *load(text));
    }
    SECTION("a class member removed and a forbid by role added") {
        std::string text = replaced(base_text, "members institutions [clinic_a, clinic_b];",
                                    "members institutions [clinic_b];");
        text += "forbid contractors_no_care { to role contractor; data sensitivity special_care; "
                "when not consent; }\n";
        check_against_brute_force(*before, *load(text));
    }
    SECTION("an activity and a purpose removed, obligations changed") {
        std::string text = replaced(
            base_text,
            "  activity employer_report \"事業主への提供\" kind provide to [employer] data "
            "[checkup];\n",
            "");
        text = replaced(text,
                        "permit p_employer {\n  purpose health; activity employer_report; to "
                        "employer; data checkup;\n  when consent;\n  basis consent_ground; oblige "
                        "provision_record;\n  source row 3 case \"e\";\n}\n",
                        "");
        text = replaced(text, "oblige contract_reference;", "oblige provision_record;");
        text = replaced(text,
                        "purpose premiums \"保険料\" {\n  activity collect \"保険料の受領\" "
                        "kind receive to [employer] data [status];\n}\n",
                        "");
        text = replaced(text,
                        "permit p_collect { purpose premiums; activity collect; to "
                        "employer; data status; }\n",
                        "");
        check_against_brute_force(*before, *load(text));
    }
    SECTION("the policy against itself") {
        check_against_brute_force(*before, *before);
    }
}

TEST_CASE("policy diff: a policy and itself reformatted do not differ", "[dsl][diff]") {
    SECTION("a hand-written policy, formatted into canonical form") {
        SourceSet sources;
        std::uint32_t file = sources.add("test.policy", base_text);
        ast::File parsed;
        Diagnostics diagnostics;
        REQUIRE(parse_file(sources, file, parsed, diagnostics));
        std::string formatted = format_policy_file(parsed, sources.file(file));
        REQUIRE(formatted != base_text); // the test means something only if it moved text
        PolicyDiff diff = diff_policies(*load(base_text), *load(formatted));
        CHECK(diff.empty());
        CHECK(diff.changed_requests == 0);
        CHECK(diff.space.requests > 0);
    }
    SECTION("the bundled policy, its three files as one") {
        LoadResult bundled = load_policy(std::filesystem::path(FLOWGATE_SOURCE_DIR "/policies"));
        REQUIRE(bundled);
        std::string joined;
        for (const PolicyText& text : bundled.policy->texts()) {
            joined += text.text + "\n";
        }
        PolicyDiff diff = diff_policies(*bundled.policy, *load(joined));
        CHECK(diff.before_hash != diff.after_hash);
        CHECK(diff.empty());
    }
}

TEST_CASE("policy diff: groups come most significant first, a new allow of special-care data "
          "to a third party at the top",
          "[dsl][diff]") {
    auto before = load(base_text);
    std::string text = base_text;
    text = replaced(text, "when consent;", ""); // p_employer
    text = replaced(text,
                    "permit p_collect { purpose premiums; activity collect; to employer; "
                    "data status; }\n",
                    "");                                                             // a new deny
    text = replaced(text, "oblige contract_reference;", "oblige provision_record;"); // p_checkups
    PolicyDiff diff = diff_policies(*before, *load(text));
    REQUIRE(diff.groups.size() >= 3);
    CHECK(diff.groups.front().significance == Significance::sensitive_to_third_party);
    CHECK(diff.groups.front().flows.front().recipient.id == "employer");
    CHECK(diff.groups.front().after.rule == "p_employer");
    CHECK(diff.groups.front().before.rule == "p_employer"); // the unmet permit
    CHECK_FALSE(diff.groups.front().before.allowed);
    std::set<Significance> seen;
    for (std::size_t i = 0; i < diff.groups.size(); ++i) {
        seen.insert(diff.groups[i].significance);
        if (i > 0) {
            CHECK(diff.groups[i - 1].significance <= diff.groups[i].significance);
        }
    }
    CHECK(seen.count(Significance::denied) == 1);
    CHECK(seen.count(Significance::allow_changed) == 1);
    check_against_brute_force(*before, *load(text));
}

TEST_CASE("policy diff: activities tried in another order are reported", "[dsl][diff]") {
    std::string text = replaced(
        base_text,
        "  activity internal_use \"内部利用\" kind internal to [society] data [checkup, status];\n",
        "");
    text = replaced(text, "  activity employer_report",
                    "  activity internal_use \"内部利用\" kind internal to [society] data "
                    "[checkup, status];\n  activity employer_report");
    PolicyDiff diff = diff_policies(*load(base_text), *load(text));
    REQUIRE(diff.order_changes.size() == 1);
    CHECK(diff.order_changes[0].purpose.id == "health");
    CHECK(diff.order_changes[0].before ==
          std::vector<std::string>{"internal_use", "checkups", "employer_report"});
    CHECK(diff.order_changes[0].after ==
          std::vector<std::string>{"checkups", "internal_use", "employer_report"});
    CHECK_FALSE(diff.empty());
}

TEST_CASE("policy diff: the JSON names each group in the table's terms, with counts that add up",
          "[dsl][diff]") {
    auto before = load(base_text);
    auto after = load(replaced(base_text, "when consent;", ""));
    PolicyDiff diff = diff_policies(*before, *after);
    boost::json::object out = diff_to_json(diff);
    CHECK(out.at("before").as_string() == before->hash());
    CHECK(out.at("after").as_string() == after->hash());
    CHECK(out.at("requests").as_uint64() == diff.space.requests);
    CHECK(out.at("classes").as_uint64() == diff.space.classes);
    const auto& groups = out.at("groups").as_array();
    REQUIRE(groups.size() == diff.groups.size());
    std::uint64_t sum = 0;
    for (const auto& value : groups) {
        const auto& group = value.as_object();
        CHECK(group.at("significance").is_string());
        CHECK(group.at("purpose").as_object().at("label").as_string() == "保健事業");
        CHECK(group.at("direction").as_string() == "send");
        const auto& after_outcome = group.at("after").as_object();
        CHECK(after_outcome.at("decision").as_string() == "allow");
        CHECK(after_outcome.at("rule").as_string() == "p_employer");
        CHECK(after_outcome.at("rule_source").as_string() ==
              "test.policy:36 (table row 3, case e)");
        CHECK(after_outcome.at("legal_basis").as_object().at("id").as_string() == "consent_ground");
        CHECK(after_outcome.at("obligations").as_array().at(0).as_object().at("id").as_string() ==
              "provision_record");
        CHECK(group.at("before").as_object().at("decision").as_string() == "deny");
        std::uint64_t in_group = 0;
        for (const auto& flow_value : group.at("flows").as_array()) {
            const auto& flow = flow_value.as_object();
            CHECK(flow.at("recipient").as_object().at("id").as_string() == "employer");
            CHECK(flow.at("category").as_object().at("label").as_string() == "健診結果");
            CHECK(flow.at("sensitivity").as_string() == "special_care");
            for (const auto& context_value : flow.at("contexts").as_array()) {
                const auto& context = context_value.as_object();
                CHECK(context.at("consent").as_array() == boost::json::array{false});
                CHECK(context.at("legal_basis").is_array());
                in_group += context.at("requests").as_uint64();
            }
            CHECK(flow.at("requests").as_uint64() > 0);
        }
        CHECK(in_group == group.at("requests").as_uint64());
        sum += in_group;
    }
    CHECK(sum == out.at("changed_requests").as_uint64());
    CHECK(sum == diff.changed_requests);
    CHECK(out.at("order_changes").as_array().empty());
}

TEST_CASE("policy diff: a label changed under the same identifier is reported", "[dsl][diff]") {
    std::string text =
        replaced(base_text, "party clinic_a \"Aクリニック\"", "party clinic_a \"Aクリニック新宿\"");
    text = replaced(text, "activity checkups \"健診の委託\"", "activity checkups \"健診委託\"");
    PolicyDiff diff = diff_policies(*load(base_text), *load(text));
    CHECK(diff.groups.empty());
    REQUIRE(diff.label_changes.size() == 2);
    CHECK(diff.label_changes[0].kind == "activity");
    CHECK(diff.label_changes[0].id == "health/checkups");
    CHECK(diff.label_changes[0].before == "健診の委託");
    CHECK(diff.label_changes[0].after == "健診委託");
    CHECK(diff.label_changes[1].kind == "party");
    CHECK(diff.label_changes[1].id == "clinic_a");
    CHECK_FALSE(diff.empty());
    CHECK(diff_to_json(diff).at("label_changes").as_array().size() == 2);

    SECTION("but not one that folds as the old one does: requests by it still resolve") {
        const std::string widened = replaced(base_text, "party clinic_a \"Aクリニック\"",
                                             "party clinic_a \" Ａ クリニック\"");
        PolicyDiff same = diff_policies(*load(base_text), *load(widened));
        CHECK(same.label_changes.empty());
        CHECK(same.empty());
    }
}
