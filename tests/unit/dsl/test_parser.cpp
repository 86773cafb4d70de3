// Tests of the policy grammar: the AST it builds (names, labels, positions, conditions)
// and its syntax errors, the latter as a corpus of bad files with exact expected output.
#include "dsl/parser.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace dsl = flowgate::dsl;
namespace ast = flowgate::dsl::ast;
namespace x3 = boost::spirit::x3;

namespace {

struct Parsed {
    dsl::SourceSet sources;
    ast::File file;
    dsl::Diagnostics diagnostics;
    bool ok = false;
};

Parsed parse(std::string text, std::string path = "test.policy") {
    Parsed parsed;
    std::uint32_t index = parsed.sources.add(std::move(path), std::move(text));
    parsed.ok = dsl::parse_file(parsed.sources, index, parsed.file, parsed.diagnostics);
    return parsed;
}

template <typename Node> const Node& declaration(const Parsed& parsed, std::size_t index) {
    REQUIRE(index < parsed.file.declarations.size());
    const Node* node = boost::get<Node>(&parsed.file.declarations[index].get());
    REQUIRE(node != nullptr);
    return *node;
}

template <typename Node> const Node& clause(const ast::Rule& rule, std::size_t index) {
    REQUIRE(index < rule.clauses.size());
    const Node* node = boost::get<Node>(&rule.clauses[index].get());
    REQUIRE(node != nullptr);
    return *node;
}

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::vector<std::filesystem::path> corpus(const std::string& folder, const std::string& prefix) {
    std::vector<std::filesystem::path> paths;
    for (const auto& entry : std::filesystem::directory_iterator(std::string(FLOWGATE_SOURCE_DIR) +
                                                                 "/tests/corpus/" + folder)) {
        std::string name = entry.path().filename().string();
        if (entry.path().extension() == ".policy" && name.rfind(prefix, 0) == 0) {
            paths.push_back(entry.path());
        }
    }
    std::sort(paths.begin(), paths.end());
    return paths;
}

std::string text_at(const Parsed& parsed, std::uint32_t offset, std::size_t length) {
    return parsed.sources.file(0).text().substr(offset, length);
}

// A condition written back in fully parenthesised prefix form, to test its structure.
std::string shape(const ast::Condition& condition);

std::string shape(const ast::Term& term) {
    if (const auto* test = boost::get<ast::ContextTest>(&term.get())) {
        std::string out = test->key.text;
        if (test->in) {
            out += " in";
            for (const ast::Name& name : *test->in) {
                out += ' ' + name.text;
            }
        }
        return out;
    }
    if (const auto* negation = boost::get<x3::forward_ast<ast::Negation>>(&term.get())) {
        return "(not " + shape(negation->get().operand) + ")";
    }
    return "[" + shape(boost::get<x3::forward_ast<ast::Condition>>(term.get()).get()) + "]";
}

std::string shape(const ast::Condition& condition) {
    std::string out = condition.any_of.size() > 1 ? "(or" : "";
    for (const ast::Conjunction& conjunction : condition.any_of) {
        std::string part = conjunction.all_of.size() > 1 ? "(and" : "";
        for (const ast::Term& term : conjunction.all_of) {
            part += (part.empty() ? "" : " ") + shape(term);
        }
        part += conjunction.all_of.size() > 1 ? ")" : "";
        out += (out.empty() ? "" : " ") + part;
    }
    return out + (condition.any_of.size() > 1 ? ")" : "");
}

} // namespace

TEST_CASE("parser: simple declarations keep their names, labels and kinds", "[parser]") {
    Parsed parsed = parse(R"(category checkup_result "健診結果" sensitivity special_care;
party employer "事業主" role third_party;
class checkup_institutions "各契約健診機関" role contractor;
members checkup_institutions [clinic_a, clinic_b];
ground appi_27_5_1 "個人情報保護法第27条第5項第1号（委託）";
obligation provision_record "第29条の提供記録を作成する";
)");
    REQUIRE(parsed.diagnostics.empty());
    REQUIRE(parsed.ok);
    REQUIRE(parsed.file.declarations.size() == 6);

    const auto& category = declaration<ast::Category>(parsed, 0);
    CHECK(category.id.text == "checkup_result");
    CHECK(category.label.text == "健診結果");
    CHECK(category.sensitivity.text == "special_care");

    const auto& party = declaration<ast::Party>(parsed, 1);
    CHECK(party.id.text == "employer");
    CHECK(party.role.text == "third_party");

    const auto& party_class = declaration<ast::PartyClass>(parsed, 2);
    CHECK(party_class.label.text == "各契約健診機関");
    CHECK(party_class.role.text == "contractor");

    const auto& members = declaration<ast::Members>(parsed, 3);
    CHECK(members.party_class.text == "checkup_institutions");
    REQUIRE(members.members.size() == 2);
    CHECK(members.members[1].text == "clinic_b");

    CHECK(declaration<ast::Ground>(parsed, 4).label.text ==
          "個人情報保護法第27条第5項第1号（委託）");
    CHECK(declaration<ast::Obligation>(parsed, 5).id.text == "provision_record");
}

TEST_CASE("parser: nodes carry the file index and the byte offset of their first character",
          "[parser]") {
    dsl::SourceSet sources;
    sources.add("first.policy", "");
    std::uint32_t index = sources.add("second.policy", "# header\n\n  category  c_1 \"健診\"\n"
                                                       "  sensitivity ordinary;\n");
    ast::File file;
    dsl::Diagnostics diagnostics;
    REQUIRE(dsl::parse_file(sources, index, file, diagnostics));
    const auto& category = boost::get<ast::Category>(file.declarations.at(0).get());
    const std::string& text = sources.file(index).text();
    CHECK(category.file == 1);
    CHECK(category.offset == text.find("category"));
    CHECK(category.id.file == 1);
    CHECK(category.id.offset == text.find("c_1"));
    CHECK(category.label.offset == text.find('"'));
    CHECK(category.sensitivity.offset == text.find("ordinary"));
}

TEST_CASE("parser: purposes hold their activities in order", "[parser]") {
    Parsed parsed = parse(R"(purpose health_services "保健事業" {
  activity checkup_outsourcing "健診の委託"
    kind outsource to [checkup_institutions, tohshinkyo] data [checkup_result, health_guidance];
  activity notice "通知" kind notify to [member] data [checkup_result];
}
purpose empty "空" {}
)");
    REQUIRE(parsed.diagnostics.empty());
    const auto& purpose = declaration<ast::Purpose>(parsed, 0);
    CHECK(purpose.id.text == "health_services");
    REQUIRE(purpose.activities.size() == 2);
    const ast::Activity& first = purpose.activities[0];
    CHECK(first.id.text == "checkup_outsourcing");
    CHECK(first.label.text == "健診の委託");
    CHECK(first.kind.text == "outsource");
    REQUIRE(first.recipients.size() == 2);
    CHECK(first.recipients[1].text == "tohshinkyo");
    REQUIRE(first.data.size() == 2);
    CHECK(first.data[0].text == "checkup_result");
    CHECK(text_at(parsed, first.offset, 8) == "activity");
    CHECK(text_at(parsed, first.data[1].offset, 15) == "health_guidance");
    CHECK(purpose.activities[1].kind.text == "notify");
    CHECK(declaration<ast::Purpose>(parsed, 1).activities.empty());
}

TEST_CASE("parser: rule clauses keep their kind, negation, selectors and provenance", "[parser]") {
    Parsed parsed = parse(R"(permit p3_j {
  purpose health_services;
  activity lifestyle_programme;
  to not prevent, role third_party;
  data sensitivity special_care, checkup_result;
  kind not linkage, internal;
  when consent;
  basis appi_27_1_consent;
  oblige provision_record, contract_reference;
  source row 3 case "j";
  because "生活習慣改善プログラムの実施";
}
forbid f {}
)");
    REQUIRE(parsed.diagnostics.empty());
    const auto& rule = declaration<ast::Rule>(parsed, 0);
    CHECK(rule.effect == ast::Effect::permit);
    CHECK(rule.id.text == "p3_j");
    REQUIRE(rule.clauses.size() == 10);

    const auto& purpose = clause<ast::MatchClause>(rule, 0);
    CHECK(purpose.dimension == ast::Dimension::purpose);
    CHECK_FALSE(purpose.negated);
    CHECK(purpose.items.at(0).name.text == "health_services");
    CHECK(clause<ast::MatchClause>(rule, 1).dimension == ast::Dimension::activity);

    const auto& to = clause<ast::MatchClause>(rule, 2);
    CHECK(to.dimension == ast::Dimension::recipient);
    CHECK(to.negated);
    REQUIRE(to.items.size() == 2);
    CHECK(to.items[0].qualifier.empty());
    CHECK(to.items[0].name.text == "prevent");
    CHECK(to.items[1].qualifier == "role");
    CHECK(to.items[1].name.text == "third_party");
    CHECK(text_at(parsed, to.items[1].offset, 4) == "role");
    CHECK(text_at(parsed, to.offset, 7) == "to not ");

    const auto& data = clause<ast::MatchClause>(rule, 3);
    CHECK(data.dimension == ast::Dimension::data);
    CHECK(data.items.at(0).qualifier == "sensitivity");
    CHECK(data.items.at(1).name.text == "checkup_result");

    const auto& kind = clause<ast::MatchClause>(rule, 4);
    CHECK(kind.dimension == ast::Dimension::kind);
    CHECK(kind.negated);
    CHECK(kind.items.size() == 2);

    CHECK(clause<ast::BasisClause>(rule, 6).ground.text == "appi_27_1_consent");
    const auto& oblige = clause<ast::ObligeClause>(rule, 7);
    REQUIRE(oblige.obligations.size() == 2);
    CHECK(oblige.obligations[1].text == "contract_reference");
    const auto& source = clause<ast::Source>(rule, 8);
    CHECK(source.row == 3);
    CHECK(source.case_label.text == "j");
    CHECK(text_at(parsed, source.offset, 6) == "source");
    CHECK(clause<ast::BecauseClause>(rule, 9).text.text == "生活習慣改善プログラムの実施");

    const auto& forbid = declaration<ast::Rule>(parsed, 1);
    CHECK(forbid.effect == ast::Effect::forbid);
    CHECK(forbid.clauses.empty());
}

TEST_CASE("parser: not binds tightest, then and, then or, parentheses group", "[parser]") {
    auto condition_of = [](const std::string& text) {
        Parsed parsed = parse("permit r { when " + text + "; }");
        INFO(dsl::format(parsed.diagnostics));
        REQUIRE(parsed.diagnostics.empty());
        const auto& rule = declaration<ast::Rule>(parsed, 0);
        return shape(clause<ast::WhenClause>(rule, 0).condition);
    };
    CHECK(condition_of("consent") == "consent");
    CHECK(condition_of("consent and not objection") == "(and consent (not objection))");
    CHECK(condition_of("legal_basis or consent and not not objection") ==
          "(or legal_basis (and consent (not (not objection))))");
    CHECK(condition_of("not consent or objection") == "(or (not consent) objection)");
    CHECK(condition_of("(consent or legal_basis in [g1, g2]) and not (objection or consent)") ==
          "(and [(or consent legal_basis in g1 g2)] (not [(or objection consent)]))");
}

TEST_CASE("parser: condition nodes know where they start", "[parser]") {
    Parsed parsed = parse("permit r { when consent and not (objection); }");
    REQUIRE(parsed.diagnostics.empty());
    const auto& when = clause<ast::WhenClause>(declaration<ast::Rule>(parsed, 0), 0);
    CHECK(text_at(parsed, when.offset, 4) == "when");
    CHECK(text_at(parsed, when.condition.offset, 7) == "consent");
    const ast::Conjunction& conjunction = when.condition.any_of.at(0);
    const auto& negation =
        boost::get<x3::forward_ast<ast::Negation>>(conjunction.all_of.at(1).get());
    CHECK(text_at(parsed, negation.get().offset, 3) == "not");
    const auto& inner = boost::get<x3::forward_ast<ast::Condition>>(negation.get().operand.get());
    CHECK(text_at(parsed, inner.get().offset, 10) == "(objection");
}

TEST_CASE("parser: keywords are whole words and are reserved", "[parser]") {
    SECTION("a keyword followed by identifier characters is an identifier") {
        Parsed parsed = parse("party partyx \"x\" role roles;\nground in_force \"y\";");
        INFO(dsl::format(parsed.diagnostics));
        REQUIRE(parsed.diagnostics.empty());
        CHECK(declaration<ast::Party>(parsed, 0).id.text == "partyx");
        CHECK(declaration<ast::Party>(parsed, 0).role.text == "roles");
        CHECK(declaration<ast::Ground>(parsed, 1).id.text == "in_force");
    }
    SECTION("a keyword cannot be used as a name") {
        Parsed parsed = parse("category data \"x\" sensitivity ordinary;");
        REQUIRE(parsed.diagnostics.size() == 1);
        CHECK(parsed.diagnostics[0].message == "expected identifier");
        CHECK(parsed.diagnostics[0].column == 10);
        CHECK_FALSE(parsed.ok);
    }
}

TEST_CASE("parser: labels unescape \\\" and \\\\ and keep # and // as text", "[parser]") {
    Parsed parsed = parse(R"(ground g "a \"quoted\" \\ back # not // comments";)");
    REQUIRE(parsed.diagnostics.empty());
    CHECK(declaration<ast::Ground>(parsed, 0).label.text ==
          R"(a "quoted" \ back # not // comments)");
}

TEST_CASE("parser: comments of both kinds and CRLF line ends are skipped", "[parser]") {
    Parsed parsed = parse("# one\r\n// two\r\nground g \"x\"; # three\r\n"
                          "obligation o // four\r\n \"y\";\r\n");
    REQUIRE(parsed.diagnostics.empty());
    CHECK(parsed.file.declarations.size() == 2);
    CHECK(declaration<ast::Obligation>(parsed, 1).label.text == "y");
}

TEST_CASE("parser: after an error the next declaration is still parsed", "[parser]") {
    Parsed parsed = parse("ground g1 \"a\"\nground g2 \"b\";\nground ;\nground g3 \"c\";\n");
    REQUIRE(parsed.diagnostics.size() == 2);
    CHECK(parsed.diagnostics[0].message == "expected ';'");
    // Right after the token the ';' should follow, not at the next line's start.
    CHECK(parsed.diagnostics[0].line == 1);
    CHECK(parsed.diagnostics[0].column == 14);
    CHECK(parsed.diagnostics[1].message == "expected identifier");
    CHECK(parsed.diagnostics[1].line == 3);
    REQUIRE(parsed.file.declarations.size() == 2);
    CHECK(declaration<ast::Ground>(parsed, 0).id.text == "g2");
    CHECK(declaration<ast::Ground>(parsed, 1).id.text == "g3");
}

TEST_CASE("parser: stray characters are reported once each and never loop", "[parser]") {
    Parsed parsed = parse("@@@ ; ground g \"a\"; }}} ground h \"b\";");
    INFO(dsl::format(parsed.diagnostics));
    REQUIRE(parsed.diagnostics.size() == 2);
    CHECK(parsed.diagnostics[0].message == "expected declaration");
    CHECK(parsed.diagnostics[0].column == 1);
    CHECK(parsed.diagnostics[1].column == 21);
    CHECK(parsed.file.declarations.size() == 2);
}

TEST_CASE("parser: bytes that are not UTF-8 are reported by position", "[parser]") {
    Parsed parsed = parse("ground g \"ok\";\nground h \"\xff\xfe\";\n");
    REQUIRE(parsed.diagnostics.size() == 1);
    CHECK(parsed.diagnostics[0].message == "invalid UTF-8 byte 0xFF");
    CHECK(parsed.diagnostics[0].line == 2);
    CHECK(parsed.diagnostics[0].column == 11);
    CHECK_FALSE(parsed.ok);
}

TEST_CASE("parser: every good corpus file parses without diagnostics", "[parser][corpus]") {
    auto paths = corpus("good", "");
    REQUIRE(paths.size() >= 3);
    for (const auto& path : paths) {
        INFO(path.filename().string());
        Parsed parsed = parse(read_file(path), path.filename().string());
        CHECK(dsl::format(parsed.diagnostics).empty());
        CHECK(parsed.ok);
    }
}

TEST_CASE("parser: every bad corpus file gives exactly its expected diagnostics",
          "[parser][corpus]") {
    auto paths = corpus("bad", "syntax-");
    REQUIRE(paths.size() >= 8);
    for (const auto& path : paths) {
        INFO(path.filename().string());
        Parsed parsed = parse(read_file(path), path.filename().string());
        auto expected_path = path;
        expected_path.replace_extension(".expected");
        REQUIRE(std::filesystem::exists(expected_path));
        CHECK(dsl::format(parsed.diagnostics) == read_file(expected_path));
        CHECK_FALSE(parsed.ok);
    }
}
