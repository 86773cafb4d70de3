// Tests of the canonical policy layout: exact output, idempotence and round trip over the
// good corpus, and the survival of comments the AST does not hold.
#include "dsl/formatter.hpp"
#include "dsl/parser.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace dsl = flowgate::dsl;
namespace ast = flowgate::dsl::ast;
namespace x3 = boost::spirit::x3;

namespace {

std::string format(std::string text) {
    dsl::Diagnostics diagnostics;
    std::optional<std::string> formatted =
        dsl::format_policy_text("test.policy", std::move(text), diagnostics);
    INFO(dsl::format(diagnostics));
    REQUIRE(formatted);
    return *formatted;
}

ast::File parse(std::string text) {
    dsl::SourceSet sources;
    std::uint32_t index = sources.add("test.policy", std::move(text));
    ast::File file;
    dsl::Diagnostics diagnostics;
    bool ok = dsl::parse_file(sources, index, file, diagnostics);
    INFO(dsl::format(diagnostics));
    REQUIRE(ok);
    return file;
}

// Everything in an AST except positions, spelled out so that two trees compare as text.
struct Dump {
    std::string out;

    void name(const ast::Name& n) { out += " N:" + n.text; }
    void label(const ast::Label& l) { out += " L:" + l.text + "|"; }
    void names(const std::vector<ast::Name>& list) {
        out += " [";
        for (const auto& n : list) {
            name(n);
        }
        out += " ]";
    }
    void operator()(const ast::Category& d) {
        out += "\ncategory";
        name(d.id), label(d.label), name(d.sensitivity);
    }
    void operator()(const ast::Party& d) {
        out += "\nparty";
        name(d.id), label(d.label), name(d.role);
    }
    void operator()(const ast::PartyClass& d) {
        out += "\nclass";
        name(d.id), label(d.label), name(d.role);
    }
    void operator()(const ast::Members& d) {
        out += "\nmembers";
        name(d.party_class), names(d.members);
    }
    void operator()(const ast::Ground& d) {
        out += "\nground";
        name(d.id), label(d.label);
    }
    void operator()(const ast::Obligation& d) {
        out += "\nobligation";
        name(d.id), label(d.label);
    }
    void operator()(const ast::Alias& d) {
        out += "\nalias";
        name(d.target), label(d.label);
    }
    void operator()(const ast::Purpose& d) {
        out += "\npurpose";
        name(d.id), label(d.label);
        for (const ast::Activity& a : d.activities) {
            out += "\n  activity";
            name(a.id), label(a.label), name(a.kind), names(a.recipients), names(a.data);
        }
    }
    void term(const ast::Term& t) {
        if (const auto* test = boost::get<ast::ContextTest>(&t.get())) {
            out += " test";
            name(test->key);
            if (test->in) {
                names(*test->in);
            }
        } else if (const auto* n = boost::get<x3::forward_ast<ast::Negation>>(&t.get())) {
            out += " not(";
            term(n->get().operand);
            out += ")";
        } else {
            out += " group(";
            condition(boost::get<x3::forward_ast<ast::Condition>>(t.get()).get());
            out += ")";
        }
    }
    void condition(const ast::Condition& c) {
        for (const auto& conjunction : c.any_of) {
            out += " or(";
            for (const auto& t : conjunction.all_of) {
                term(t);
            }
            out += ")";
        }
    }
    void operator()(const ast::MatchClause& c) {
        out += "\n  match " + std::to_string(static_cast<int>(c.dimension)) +
               (c.negated ? " not" : "");
        for (const auto& item : c.items) {
            out += " " + item.qualifier;
            name(item.name);
        }
    }
    void operator()(const ast::WhenClause& c) {
        out += "\n  when";
        condition(c.condition);
    }
    void operator()(const ast::BasisClause& c) {
        out += "\n  basis";
        name(c.ground);
    }
    void operator()(const ast::ObligeClause& c) {
        out += "\n  oblige";
        names(c.obligations);
    }
    void operator()(const ast::Source& c) {
        out += "\n  source " + std::to_string(c.row);
        label(c.case_label);
    }
    void operator()(const ast::BecauseClause& c) {
        out += "\n  because";
        label(c.text);
    }
    void operator()(const ast::Rule& r) {
        out += r.effect == ast::Effect::permit ? "\npermit" : "\nforbid";
        name(r.id);
        for (const auto& c : r.clauses) {
            boost::apply_visitor(*this, c.get());
        }
    }
};

std::string dump(const ast::File& file) {
    Dump dumper;
    for (const auto& declaration : file.declarations) {
        boost::apply_visitor(dumper, declaration.get());
    }
    return dumper.out;
}

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::vector<std::filesystem::path> good_corpus() {
    std::vector<std::filesystem::path> paths;
    for (const auto& entry : std::filesystem::directory_iterator(std::string(FLOWGATE_SOURCE_DIR) +
                                                                 "/tests/corpus/good")) {
        if (entry.path().extension() == ".policy") {
            paths.push_back(entry.path());
        }
    }
    std::sort(paths.begin(), paths.end());
    return paths;
}

} // namespace

TEST_CASE("formatter: writes every construct in the canonical layout", "[formatter]") {
    std::string input = "category  c \"健診\"   sensitivity special_care;category d \"x\" "
                        "sensitivity ordinary;\r\n"
                        "party p \"a \\\"b\\\" \\\\\" role contractor; class k \"k\" role "
                        "contractor;\n"
                        "members k [p,q];  ground g \"g\"; obligation o \"o\";\n"
                        "purpose u \"u\" { activity a \"a\" kind outsource to [k, p] data [c]; "
                        "}\n"
                        "permit r { purpose u; activity a; to not p, role third_party; data "
                        "sensitivity specific, c;\n kind not linkage; when consent and not "
                        "(objection or legal_basis in [g]); basis g; oblige o, o2; source row 12 "
                        "case \"j\"; because \"なぜ\"; }\n"
                        "forbid f {}\n";
    CHECK(format(input) == R"(category c "健診" sensitivity special_care;
category d "x" sensitivity ordinary;

party p "a \"b\" \\" role contractor;

class k "k" role contractor;

members k [p, q];

ground g "g";

obligation o "o";

purpose u "u" {
  activity a "a"
    kind outsource to [k, p] data [c];
}

permit r {
  purpose u;
  activity a;
  to not p, role third_party;
  data sensitivity specific, c;
  kind not linkage;
  when consent and not (objection or legal_basis in [g]);
  basis g;
  oblige o, o2;
  source row 12 case "j";
  because "なぜ";
}

forbid f {
}
)");
}

TEST_CASE("formatter: comments survive in place, trailing ones move above their line",
          "[formatter]") {
    std::string input = "# header\n"
                        "\n"
                        "ground g \"# and // inside a label\"; // about g\n"
                        "ground h \"h\";\n"
                        "permit r {\n"
                        "    # before purpose\n"
                        "  purpose u;   # trailing purpose\n"
                        "  // before the end\n"
                        "}  # after the block\n"
                        "# at the end\n";
    CHECK(format(input) == R"(# header

// about g
ground g "# and // inside a label";
ground h "h";

permit r {
  # before purpose
  # trailing purpose
  purpose u;
  // before the end
}

# after the block
# at the end
)");
}

TEST_CASE("formatter: a comments-only file keeps its comments and blank lines", "[formatter]") {
    CHECK(format("  # one\r\n\r\n\r\n// two   \r\n") == "# one\n\n// two\n");
    CHECK(format("") == "");
}

TEST_CASE("formatter: is idempotent on every good corpus file", "[formatter][corpus]") {
    auto paths = good_corpus();
    REQUIRE(paths.size() >= 3);
    for (const auto& path : paths) {
        INFO(path.filename().string());
        std::string once = format(read_file(path));
        CHECK(format(once) == once);
        CHECK(once.find('\r') == std::string::npos);
        REQUIRE_FALSE(once.empty());
        CHECK(once.back() == '\n');
        CHECK(once.find("\n\n\n") == std::string::npos);
    }
}

TEST_CASE("formatter: formatted corpus files parse to the same tree", "[formatter][corpus]") {
    for (const auto& path : good_corpus()) {
        INFO(path.filename().string());
        std::string original = read_file(path);
        std::string before = dump(parse(original));
        std::string after = dump(parse(format(original)));
        CHECK(after == before);
    }
}

TEST_CASE("formatter: every comment of the corpus survives formatting", "[formatter][corpus]") {
    for (const auto& path : good_corpus()) {
        INFO(path.filename().string());
        std::string original = read_file(path);
        std::string formatted = format(original);
        std::istringstream lines(original);
        std::string line;
        while (std::getline(lines, line)) {
            std::size_t hash = line.find("# ");
            std::size_t slashes = line.find("// ");
            std::size_t quote = line.find('"');
            std::size_t start = std::min(hash, slashes);
            if (start == std::string::npos || (quote != std::string::npos && quote < start)) {
                continue; // no comment, or one the check cannot tell from a label
            }
            std::string comment = line.substr(start);
            while (!comment.empty() && (comment.back() == '\r' || comment.back() == ' ')) {
                comment.pop_back();
            }
            CHECK(formatted.find(comment + "\n") != std::string::npos);
        }
    }
}

TEST_CASE("formatter: syntax errors give diagnostics instead of text", "[formatter]") {
    dsl::Diagnostics diagnostics;
    CHECK_FALSE(dsl::format_policy_text("x.policy", "ground g;", diagnostics));
    REQUIRE(diagnostics.size() == 1);
    CHECK(diagnostics[0].message == "expected label");
}
