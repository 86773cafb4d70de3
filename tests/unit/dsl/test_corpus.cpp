// The policy corpora through the whole load pipeline: every tests/corpus/bad file
// (syntax and check errors alike) gives exactly its .expected diagnostics, and every
// tests/corpus/good file and the bundled policies/ load clean. Files are loaded under
// their bare names so the .expected files do not depend on where the tree lives.
#include "dsl/policy_loader.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace flowgate::dsl;
namespace fs = std::filesystem;

namespace {

const fs::path corpus_dir = fs::path(FLOWGATE_SOURCE_DIR) / "tests" / "corpus";

std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return std::move(text).str();
}

std::vector<fs::path> policies_in(const fs::path& directory) {
    std::vector<fs::path> paths;
    for (const auto& entry : fs::directory_iterator(directory)) {
        if (entry.path().extension() == ".policy") {
            paths.push_back(entry.path());
        }
    }
    std::sort(paths.begin(), paths.end());
    return paths;
}

LoadResult load_bare(const fs::path& path) {
    return load_policy(std::vector<PolicyText>{{path.filename().string(), read_text(path)}});
}

} // namespace

TEST_CASE("corpus: every bad policy gives exactly its expected diagnostics", "[dsl][corpus]") {
    auto paths = policies_in(corpus_dir / "bad");
    auto checks = std::count_if(paths.begin(), paths.end(), [](const fs::path& p) {
        return p.filename().string().rfind("check-", 0) == 0;
    });
    REQUIRE(checks >= 6);
    for (const fs::path& path : paths) {
        INFO(path.filename().string());
        fs::path expected = path;
        expected.replace_extension(".expected");
        REQUIRE(fs::exists(expected));
        LoadResult loaded = load_bare(path);
        CHECK_FALSE(loaded);
        CHECK(format(loaded.diagnostics) == read_text(expected));
    }
}

TEST_CASE("corpus: every good policy loads clean", "[dsl][corpus]") {
    auto paths = policies_in(corpus_dir / "good");
    REQUIRE_FALSE(paths.empty());
    for (const fs::path& path : paths) {
        INFO(path.filename().string());
        LoadResult loaded = load_bare(path);
        CHECK(format(loaded.diagnostics).empty());
        CHECK(loaded);
    }
}

TEST_CASE("corpus: the bundled policy directory loads clean with a stable hash", "[dsl][corpus]") {
    fs::path directory = fs::path(FLOWGATE_SOURCE_DIR) / "policies";
    LoadResult loaded = load_policy(directory);
    INFO(format(loaded.diagnostics));
    REQUIRE(loaded);
    CHECK(loaded.policy->sources().file(0).path() == (directory / "base.policy").string());
    // The same texts under other display names hash the same: only bare names count.
    std::vector<PolicyText> texts = loaded.policy->texts();
    for (PolicyText& text : texts) {
        text.name = fs::path(text.name).filename().string();
    }
    CHECK(policy_hash(texts) == loaded.policy->hash());
    texts.back().text += "\n";
    CHECK(policy_hash(texts) != loaded.policy->hash());
}

TEST_CASE("corpus: a missing path is one diagnostic, not an exception", "[dsl][corpus]") {
    LoadResult loaded = load_policy(fs::path("/nonexistent/flowgate.policy"));
    CHECK_FALSE(loaded);
    CHECK(format(loaded.diagnostics) ==
          "/nonexistent/flowgate.policy: error: no such file or directory\n");
}
