// Checker: one case per kind of error in docs/policy-language.md ("Checks"), each
// asserting the exact file, line, column and message, plus a clean policy and a
// policy whose errors all come out in one run.
#include "dsl/checker.hpp"
#include "dsl/policy_loader.hpp"

#include <catch2/catch.hpp>

using namespace flowgate::dsl;

namespace {

// Lines 1-7 of every policy below.
const std::string vocabulary = "category checkup \"健診結果\" sensitivity special_care;\n"
                               "category number \"個人番号\" sensitivity specific;\n"
                               "party prevent \"PREVENT\" role contractor;\n"
                               "party employer \"事業主\" role third_party;\n"
                               "class institutions \"各契約健診機関\" role contractor;\n"
                               "ground consent_ground \"本人の同意\";\n"
                               "obligation record \"提供記録\";\n";

// Lines 8-10.
const std::string purpose = "purpose health \"保健事業\" {\n"
                            "  activity programme \"プログラム\" kind outsource to [prevent] "
                            "data [checkup];\n"
                            "}\n";

Diagnostics diagnostics_of(const std::string& text) {
    LoadResult loaded = load_policy(std::vector<PolicyText>{{"t.policy", text}});
    CHECK_FALSE(loaded);
    return loaded.diagnostics;
}

// Exactly one diagnostic, at line:column with this message.
void expect_one(const std::string& text, std::uint32_t line, std::uint32_t column,
                const std::string& message) {
    Diagnostics diagnostics = diagnostics_of(text);
    INFO(format(diagnostics));
    REQUIRE(diagnostics.size() == 1);
    CHECK(diagnostics[0].file == "t.policy");
    CHECK(diagnostics[0].line == line);
    CHECK(diagnostics[0].column == column);
    CHECK(diagnostics[0].message == message);
}

} // namespace

TEST_CASE("checker: a clean policy loads and resolves every name", "[dsl]") {
    std::string text = vocabulary + purpose +
                       "members institutions [prevent];\n"
                       "permit p { purpose health; activity programme; to prevent; data checkup;\n"
                       "  when consent or legal_basis in [consent_ground]; basis consent_ground;\n"
                       "  oblige record; source row 3 case \"j\"; because \"実施\"; }\n"
                       "forbid f { data sensitivity specific; kind not internal; }\n";
    LoadResult loaded = load_policy(std::vector<PolicyText>{{"t.policy", text}});
    INFO(format(loaded.diagnostics));
    REQUIRE(loaded);
    const CheckedPolicy& model = loaded.policy->model();
    REQUIRE(model.rules.size() == 2);
    const Rule& permit = model.rules[0];
    CHECK(permit.id == "p");
    CHECK(permit.line == 12);
    CHECK(model.purposes[permit.purpose.ids.at(0)].id == "health");
    CHECK(model.activities[permit.activity.ids.at(0)].id == "programme");
    CHECK(model.grounds[permit.basis].id == "consent_ground");
    CHECK(permit.source_row == 3u);
    CHECK(permit.condition.text == "consent or legal_basis in [consent_ground]");
    CHECK(model.parties[loaded.policy->find_party("institutions")].members ==
          std::vector<Id>{loaded.policy->find_party("prevent")});
    CHECK(model.rules[1].data.attributes != 0);
}

TEST_CASE("checker: unknown party is an error pointing at its use", "[dsl]") {
    expect_one(vocabulary + purpose + "permit p { to prevnt; }\n", 11, 15,
               "unknown party 'prevnt'");
}

TEST_CASE("checker: unknown names of each kind are errors", "[dsl]") {
    expect_one(vocabulary + purpose + "permit p { purpose helth; }\n", 11, 20,
               "unknown purpose 'helth'");
    expect_one(vocabulary + purpose + "permit p { data checkups; }\n", 11, 17,
               "unknown category 'checkups'");
    expect_one(vocabulary + purpose + "permit p { basis nope; }\n", 11, 18,
               "unknown ground 'nope'");
    expect_one(vocabulary + purpose + "permit p { oblige recrd; }\n", 11, 19,
               "unknown obligation 'recrd'");
    expect_one(vocabulary + purpose + "permit p { purpose health; activity progamme; }\n", 11, 37,
               "unknown activity 'progamme' in purpose 'health'");
}

TEST_CASE("checker: a duplicate name points at the second and names the first", "[dsl]") {
    expect_one(vocabulary + "party checkup \"X\" role internal;\n", 8, 7,
               "duplicate name 'checkup' (first declared at t.policy:1)");
    expect_one(vocabulary + "purpose p \"P\" {\n"
                            "  activity a \"A\" kind internal to [prevent] data [checkup];\n"
                            "  activity a \"B\" kind internal to [prevent] data [checkup];\n}\n",
               10, 12, "duplicate name 'a' (first declared at t.policy:9)");
}

TEST_CASE("checker: a name of the wrong kind is an error", "[dsl]") {
    expect_one(vocabulary + purpose + "permit p { to checkup; }\n", 11, 15,
               "'checkup' is a category, not a party");
    expect_one(vocabulary + purpose + "permit p { data prevent; }\n", 11, 17,
               "'prevent' is a party, not a category");
    expect_one(vocabulary + purpose + "permit p { basis record; }\n", 11, 18,
               "'record' is an obligation, not a ground");
}

TEST_CASE("checker: bad sensitivity, role and kind values are errors", "[dsl]") {
    expect_one("category c \"C\" sensitivity secret;\n", 1, 28, "unknown sensitivity 'secret'");
    expect_one("party x \"X\" role nobody;\n", 1, 18, "unknown role 'nobody'");
    expect_one(vocabulary + "purpose p \"P\" {\n"
                            "  activity a \"A\" kind sell to [prevent] data [checkup];\n}\n",
               9, 23, "unknown kind 'sell'");
    expect_one(vocabulary + purpose + "permit p { to role boss; }\n", 11, 20,
               "unknown role 'boss'");
    expect_one(vocabulary + purpose + "permit p { kind not selling; }\n", 11, 21,
               "unknown kind 'selling'");
}

TEST_CASE("checker: activity recipients must be parties and data categories", "[dsl]") {
    Diagnostics both = diagnostics_of(
        vocabulary + "purpose p \"P\" {\n"
                     "  activity a \"A\" kind internal to [checkup] data [prevent];\n}\n");
    REQUIRE(both.size() == 2);
    CHECK(both[0].message == "'checkup' is a category, not a party");
    CHECK(both[0].line == 9);
    CHECK(both[0].column == 36);
    CHECK(both[1].message == "'prevent' is a party, not a category");
    CHECK(both[1].column == 51);
}

TEST_CASE("checker: class members must be parties, added to a class", "[dsl]") {
    expect_one(vocabulary + "members institutions [checkup];\n", 8, 23,
               "'checkup' is a category, not a party");
    expect_one(vocabulary + "members institutions [institutions];\n", 8, 23,
               "'institutions' is a class, not a party");
    expect_one(vocabulary + "members prevent [employer];\n", 8, 9,
               "'prevent' is a party, not a class");
}

TEST_CASE("checker: a clause given twice is an error at the second", "[dsl]") {
    expect_one(vocabulary + purpose + "permit p { data checkup; data number; }\n", 11, 26,
               "clause 'data' given twice (first at t.policy:11)");
}

TEST_CASE("checker: an activity clause needs exactly one purpose", "[dsl]") {
    expect_one(vocabulary + purpose + "permit p { activity programme; }\n", 11, 12,
               "an 'activity' clause needs a 'purpose' clause naming exactly one purpose");
    expect_one(vocabulary + purpose + "permit p { purpose not health; activity programme; }\n", 11,
               32, "an 'activity' clause needs a 'purpose' clause naming exactly one purpose");
}

TEST_CASE("checker: a permit may not go beyond its activity's recipients and data", "[dsl]") {
    expect_one(vocabulary + purpose +
                   "permit p { purpose health; activity programme; to employer; }\n",
               11, 51, "'employer' is not a recipient of activity 'programme'");
    expect_one(vocabulary + purpose +
                   "permit p { purpose health; activity programme; data number; }\n",
               11, 53, "'number' is not among the data of activity 'programme'");
}

TEST_CASE("checker: context keys are consent, objection and legal_basis", "[dsl]") {
    expect_one(vocabulary + purpose + "permit p { when consent and approval; }\n", 11, 29,
               "unknown context key 'approval' (expected consent, objection or legal_basis)");
    expect_one(vocabulary + purpose +
                   "permit p { when legal_basis in [consent_ground, record]; }\n",
               11, 49, "'record' is an obligation, not a ground");
}

TEST_CASE("checker: a permit that a forbid always cancels is an error", "[dsl]") {
    std::string rules =
        "permit p { purpose health; activity programme; to prevent; data number; }\n";
    SECTION("the forbid covers every request the permit matches") {
        std::string text = vocabulary +
                           "purpose health \"保健事業\" {\n"
                           "  activity programme \"P\" kind outsource to [prevent] data "
                           "[checkup, number];\n}\n" +
                           rules + "forbid f { data sensitivity specific; kind not internal; }\n";
        expect_one(text, 11, 8, "permit 'p' is always cancelled by forbid 'f' (t.policy:12)");
    }
    SECTION("a forbid with a condition, or one that leaves a case, is no conflict") {
        for (const char* forbid : {"forbid f { data sensitivity specific; when objection; }\n",
                                   "forbid f { data sensitivity specific; kind not outsource; }\n",
                                   "forbid f { data number; to employer; }\n"}) {
            std::string text = vocabulary +
                               "purpose health \"保健事業\" {\n"
                               "  activity programme \"P\" kind outsource to [prevent] data "
                               "[checkup, number];\n}\n" +
                               rules + forbid;
            LoadResult loaded = load_policy(std::vector<PolicyText>{{"t.policy", text}});
            INFO(forbid << format(loaded.diagnostics));
            CHECK(loaded);
        }
    }
}

TEST_CASE("checker: all errors are reported in one run, sorted", "[dsl]") {
    std::string text = vocabulary + purpose +
                       "permit p { to prevnt; data prevent; }\n"  // 11
                       "party checkup \"X\" role boss;\n"         // 12
                       "permit q { when consnt; basis nope; }\n"; // 13
    Diagnostics diagnostics = diagnostics_of(text);
    CHECK(format(diagnostics) == "t.policy:11:15: error: unknown party 'prevnt'\n"
                                 "permit p { to prevnt; data prevent; }\n"
                                 "              ^\n"
                                 "t.policy:11:28: error: 'prevent' is a party, not a category\n"
                                 "permit p { to prevnt; data prevent; }\n"
                                 "                           ^\n"
                                 "t.policy:12:7: error: duplicate name 'checkup' (first declared "
                                 "at t.policy:1)\n"
                                 "party checkup \"X\" role boss;\n"
                                 "      ^\n"
                                 "t.policy:12:24: error: unknown role 'boss'\n"
                                 "party checkup \"X\" role boss;\n"
                                 "                       ^\n"
                                 "t.policy:13:17: error: unknown context key 'consnt' (expected "
                                 "consent, objection or legal_basis)\n"
                                 "permit q { when consnt; basis nope; }\n"
                                 "                ^\n"
                                 "t.policy:13:31: error: unknown ground 'nope'\n"
                                 "permit q { when consnt; basis nope; }\n"
                                 "                              ^\n");
}

TEST_CASE("checker: keywords are not values either side of the parser", "[dsl]") {
    CHECK(is_keyword("data"));
    CHECK(is_keyword("because"));
    CHECK_FALSE(is_keyword("special_care"));
    CHECK_FALSE(is_keyword(""));
}
