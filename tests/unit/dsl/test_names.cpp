// Name folding (NFKC and white space removed, by ICU), the edit distance suggestions are
// ranked by, and the declared names that fold alike.
#include "dsl/names.hpp"
#include "dsl/parser.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace flowgate::dsl;

TEST_CASE("names: the ways a Japanese office writes a name fold to one", "[dsl][names]") {
    SECTION("full-width parentheses") {
        CHECK(fold_name("（株）PREVENT") == "(株)PREVENT");
    }
    SECTION("full-width letters and parentheses") {
        CHECK(fold_name("（株）ＰＲＥＶＥＮＴ") == "(株)PREVENT");
    }
    SECTION("the one character ㈱") {
        CHECK(fold_name("㈱PREVENT") == "(株)PREVENT");
    }
    SECTION("（財） for (財)") {
        CHECK(fold_name("（財）日本生産性本部") == "(財)日本生産性本部");
        CHECK(fold_name("㈶日本生産性本部") == "(財)日本生産性本部");
    }
    SECTION("half-width katakana, voiced marks included") {
        CHECK(fold_name("ｹﾝｼﾝｾﾝﾀｰ") == "ケンシンセンター");
        CHECK(fold_name("ﾍﾞﾈﾌｨｯﾄ･ﾜﾝ") == "ベネフィット・ワン");
    }
    SECTION("full-width digits in an article number") {
        CHECK(fold_name("第２７条第１項第１号") == "第27条第1項第1号");
    }
    SECTION("white space inside and around, ASCII, ideographic and no-break") {
        CHECK(fold_name(" 保健事業に　必要な\t利用目的\n") == "保健事業に必要な利用目的");
        CHECK(fold_name("(株)\u00A0PREVENT\u2003") == "(株)PREVENT");
        CHECK(fold_name(" health_services ") == "health_services");
    }
    SECTION("what needs no folding is left alone") {
        CHECK(fold_name("健診結果") == "健診結果");
        CHECK(fold_name("checkup_result") == "checkup_result");
        CHECK(fold_name("") == "");
    }
    SECTION("case is kept: identifiers are case-sensitive") {
        CHECK(fold_name("ＰＲＥＶＥＮＴ") != fold_name("prevent"));
    }
}

TEST_CASE("names: the ASCII fast path folds as ICU does", "[dsl][names]") {
    // Each ASCII character after a non-ASCII one (which sends the name to ICU) folds as
    // it does alone (which does not).
    for (int c = 1; c < 0x80; ++c) {
        std::string alone(1, static_cast<char>(c));
        INFO("character " << c);
        CHECK(fold_name("株" + alone) == "株" + fold_name(alone));
        CHECK(folds_to_itself(alone) == (fold_name(alone) == alone));
    }
    CHECK(folds_to_itself("status_management"));
    CHECK_FALSE(folds_to_itself("status management"));
    CHECK_FALSE(folds_to_itself("健診結果"));
}

TEST_CASE("names: edit distance counts characters, not bytes", "[dsl][names]") {
    CHECK(edit_distance("事業者", "事業主") == 1);
    CHECK(edit_distance("prevent", "prevnt") == 1);
    CHECK(edit_distance("", "健診") == 2);
    CHECK(edit_distance("kitten", "sitting") == 3);
    SECTION("a suggestion needs at most half the characters changed") {
        CHECK(name_distance("事業者", "事業主") == 1u);
        CHECK(name_distance("foo", "society") == std::nullopt);
        CHECK(name_distance("prevent", "prevent") == std::nullopt); // not unknown
        CHECK(name_distance(std::string(max_suggestion_length + 1, 'a'), "a") == std::nullopt);
    }
}

namespace {

std::vector<ast::File> parse(const std::string& text) {
    SourceSet sources;
    sources.add("n.policy", text);
    std::vector<ast::File> files(1);
    Diagnostics diagnostics;
    REQUIRE(parse_file(sources, 0, files[0], diagnostics));
    return files;
}

} // namespace

TEST_CASE("names: every identifier, label and alias is a declared name", "[dsl][names]") {
    auto files = parse(R"(
category status "資格情報" sensitivity ordinary;
party employer "事業主" role third_party;
alias employer "事業者";
alias nobody "誰か";
obligation record "記録";
alias record "提供記録";
purpose health "保健事業" {
  activity checkups "健診" kind outsource to [employer] data [status];
}
permit p { to employer; }
)");
    std::vector<DeclaredName> names = declared_names(files);
    std::vector<std::string> seen;
    for (const DeclaredName& name : names) {
        seen.push_back(describe(name));
    }
    // In declaration order; the aliases of an undeclared thing and of an obligation are
    // not names (the checker reports them).
    CHECK(seen ==
          std::vector<std::string>{
              "category 'status'", "label '資格情報' of category 'status'", "party 'employer'",
              "label '事業主' of party 'employer'", "alias '事業者' of party 'employer'",
              "obligation 'record'", "label '記録' of obligation 'record'", "purpose 'health'",
              "label '保健事業' of purpose 'health'", "activity 'checkups' of purpose 'health'",
              "label '健診' of activity 'checkups' of purpose 'health'"});
}

TEST_CASE("names: two things whose names fold alike collide, one thing's names do not",
          "[dsl][names]") {
    auto collisions = [](const std::string& text) {
        std::vector<std::string> out;
        for (const NameCollision& c : names_that_fold_alike(declared_names(parse(text)))) {
            out.push_back(describe(c.second) + " ~ " + describe(c.first) + " = " + c.folded);
        }
        return out;
    };
    SECTION("two labels, of one kind or two") {
        CHECK(collisions(R"(party a "(株)PREVENT" role contractor;
party b "（株）ＰＲＥＶＥＮＴ" role contractor;
category c "㈱PREVENT" sensitivity ordinary;)") ==
              std::vector<std::string>{
                  "label '（株）ＰＲＥＶＥＮＴ' of party 'b' ~ label '(株)PREVENT' of party 'a' "
                  "= (株)PREVENT",
                  "label '㈱PREVENT' of category 'c' ~ label '(株)PREVENT' of party 'a' = "
                  "(株)PREVENT"});
    }
    SECTION("a label and another thing's identifier") {
        CHECK(collisions(R"(category status "資格情報" sensitivity ordinary;
ground g "ｓｔａｔｕｓ";)") ==
              std::vector<std::string>{
                  "label 'ｓｔａｔｕｓ' of ground 'g' ~ category 'status' = status"});
    }
    SECTION("an alias and another thing's label") {
        CHECK(collisions(R"(party employer "事業主" role third_party;
party business "事業者" role third_party;
alias employer " 事業者 ";)") ==
              std::vector<std::string>{
                  "alias ' 事業者 ' of party 'employer' ~ label '事業者' of party 'business' = "
                  "事業者"});
    }
    SECTION("not: a label like its own identifier, an alias like its own label") {
        CHECK(collisions(R"(party prevent "ｐｒｅｖｅｎｔ" role contractor;
alias prevent "prevent ";)")
                  .empty());
    }
    SECTION("not: two identifiers (the duplicate-name rule), or labels of white space") {
        CHECK(collisions(R"(party a " " role contractor;
category a "　" sensitivity ordinary;)")
                  .empty());
    }
    SECTION("activities: within one purpose, not across two") {
        CHECK(collisions(R"(category c "c" sensitivity ordinary;
party r "r" role contractor;
purpose one "一" {
  activity a "健診の委託" kind outsource to [r] data [c];
  activity b "健診 の委託" kind outsource to [r] data [c];
}
purpose two "二" {
  activity a "健診の委託" kind outsource to [r] data [c];
})") == std::vector<std::string>{"label '健診 の委託' of activity 'b' of purpose 'one' ~ "
                                 "label '健診の委託' of activity 'a' of purpose 'one' = "
                                 "健診の委託"});
    }
}
