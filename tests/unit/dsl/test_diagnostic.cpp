// Diagnostics: positions in characters and carets that line up under Japanese text.
#include "dsl/diagnostic.hpp"

#include <catch2/catch.hpp>

using namespace flowgate::dsl;

TEST_CASE("diagnostic: column counts characters, not bytes, on a Japanese line", "[dsl]") {
    SourceSet sources;
    std::string text = "category c \"健診結果\" sensitivity bogus;\n";
    auto file = sources.add("p.policy", text);
    auto offset = static_cast<std::uint32_t>(text.find("bogus"));
    Diagnostic d = make_diagnostic(sources, file, offset, "unknown sensitivity 'bogus'");
    CHECK(d.line == 1);
    CHECK(d.column == 31);
    CHECK(format(d) == "p.policy:1:31: error: unknown sensitivity 'bogus'\n"
                       "category c \"健診結果\" sensitivity bogus;\n"
                       "                                  ^\n");
}

TEST_CASE("diagnostic: CRLF line ends do not shift lines or columns", "[dsl]") {
    SourceSet sources;
    std::string text = "# first\r\nparty x \"X\" role nobody;\r\n";
    auto file = sources.add("p.policy", text);
    auto offset = static_cast<std::uint32_t>(text.find("nobody"));
    Diagnostic d = make_diagnostic(sources, file, offset, "unknown role 'nobody'");
    CHECK(d.line == 2);
    CHECK(d.column == 18);
    CHECK(d.source_line == "party x \"X\" role nobody;");
}
