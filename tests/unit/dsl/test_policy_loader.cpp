// Which files of a policy directory are the policy: load_policy reads, and `flowgate
// policy fmt` formats, exactly the list policy_files() gives, so the two cannot disagree
// about a FIFO, a socket or a subdirectory that happens to be named *.policy.
#include "dsl/policy_loader.hpp"
#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fstream>

#include <sys/stat.h>

using namespace flowgate::dsl;
using flowgate::testing::TempDir;
namespace fs = std::filesystem;

namespace {

void write_text(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
    REQUIRE(out);
}

std::vector<std::string> names_read(const LoadResult& loaded) {
    std::vector<std::string> names;
    for (const PolicyText& text : loaded.policy->texts()) {
        names.push_back(text.name);
    }
    return names;
}

} // namespace

TEST_CASE("policy loader: load and fmt see only the regular *.policy files, in name order",
          "[dsl]") {
    TempDir scratch("flowgate-policy-files");
    const fs::path& dir = scratch.path();
    write_text(dir / "b.policy", "ground second \"B\";\n");
    write_text(dir / "a.policy", "ground first \"A\";\n");
    write_text(dir / "notes.txt", "not a policy\n");
    REQUIRE(::mkfifo((dir / "c.policy").c_str(), 0600) == 0);
    fs::create_directory(dir / "d.policy");

    // `flowgate policy fmt` formats exactly this list.
    std::optional<std::vector<fs::path>> listed = policy_files(dir);
    REQUIRE(listed);
    CHECK(*listed == std::vector<fs::path>{dir / "a.policy", dir / "b.policy"});

    // Were the FIFO read, this would wait for a writer that never comes.
    LoadResult loaded = load_policy(dir);
    INFO(format(loaded.diagnostics));
    REQUIRE(loaded);
    CHECK(names_read(loaded) ==
          std::vector<std::string>{(dir / "a.policy").string(), (dir / "b.policy").string()});
}

TEST_CASE("policy loader: a link to a file is a policy file, a link to nothing fails by name",
          "[dsl]") {
    TempDir scratch("flowgate-policy-files");
    const fs::path& dir = scratch.path();
    fs::create_directory(dir / "policies");
    write_text(dir / "shared.txt", "ground shared \"S\";\n");
    fs::create_symlink(dir / "shared.txt", dir / "policies" / "a.policy");

    SECTION("a link to a regular file is read") {
        LoadResult loaded = load_policy(dir / "policies");
        INFO(format(loaded.diagnostics));
        REQUIRE(loaded);
        CHECK(names_read(loaded) ==
              std::vector<std::string>{(dir / "policies" / "a.policy").string()});
    }
    SECTION("a link that leads nowhere is listed, and loading names it") {
        fs::create_symlink(dir / "gone.txt", dir / "policies" / "b.policy");
        CHECK(policy_files(dir / "policies") ==
              std::vector<fs::path>{dir / "policies" / "a.policy", dir / "policies" / "b.policy"});
        LoadResult loaded = load_policy(dir / "policies");
        CHECK_FALSE(loaded);
        CHECK(format(loaded.diagnostics) ==
              (dir / "policies" / "b.policy").string() +
                  ": error: cannot open this file: No such file or directory\n");
    }
}

TEST_CASE("policy loader: a directory whose *.policy entries are not files has no policy",
          "[dsl]") {
    TempDir scratch("flowgate-policy-files");
    const fs::path& dir = scratch.path();
    REQUIRE(::mkfifo((dir / "c.policy").c_str(), 0600) == 0);
    fs::create_directory(dir / "d.policy");

    CHECK(policy_files(dir) == std::vector<fs::path>());
    LoadResult loaded = load_policy(dir);
    CHECK_FALSE(loaded);
    CHECK(format(loaded.diagnostics) ==
          dir.string() + ": error: no *.policy files in this directory\n");
}

TEST_CASE("policy loader: a path that is not a directory is the one file it names", "[dsl]") {
    CHECK(policy_files("/nonexistent/flowgate.policy") ==
          std::vector<fs::path>{"/nonexistent/flowgate.policy"});
}

TEST_CASE("policy loader: a FIFO, a device or a directory named as the policy is refused by name",
          "[dsl]") {
    TempDir scratch("flowgate-policy-files");
    const fs::path& dir = scratch.path();

    SECTION("a FIFO with no writer is refused at once, not waited on") {
        REQUIRE(::mkfifo((dir / "x.policy").c_str(), 0600) == 0);
        LoadResult loaded = load_policy(dir / "x.policy");
        CHECK_FALSE(loaded);
        CHECK(format(loaded.diagnostics) ==
              (dir / "x.policy").string() +
                  ": error: this is a FIFO, not a regular file; only regular files are read "
                  "as policy files\n");
    }
    SECTION("a character device") {
        LoadResult loaded = load_policy("/dev/zero");
        CHECK_FALSE(loaded);
        CHECK_THAT(format(loaded.diagnostics),
                   Catch::StartsWith("/dev/zero: error: this is a character device"));
    }
    SECTION("a link to a FIFO, named as a file of a directory's listing") {
        REQUIRE(::mkfifo((dir / "pipe").c_str(), 0600) == 0);
        fs::create_symlink(dir / "pipe", dir / "link.policy");
        Diagnostics diagnostics;
        CHECK_FALSE(read_policy_file(dir / "link.policy", diagnostics));
        REQUIRE(diagnostics.size() == 1);
        CHECK_THAT(diagnostics[0].message, Catch::StartsWith("this is a FIFO"));
        CHECK(diagnostics[0].file == (dir / "link.policy").string());
    }
}

TEST_CASE("policy loader: a file past the size limit is refused by name", "[dsl]") {
    TempDir scratch("flowgate-policy-files");
    const fs::path& dir = scratch.path();
    write_text(dir / "a.policy", "ground first \"A\";\n");

    SECTION("a limit of the file's size is enough, one byte less is not") {
        Diagnostics diagnostics;
        CHECK(read_policy_file(dir / "a.policy", diagnostics, 18) == "ground first \"A\";\n");
        CHECK(diagnostics.empty());
        CHECK_FALSE(read_policy_file(dir / "a.policy", diagnostics, 17));
        REQUIRE(diagnostics.size() == 1);
        CHECK_THAT(diagnostics[0].message, Catch::StartsWith("this file is larger than 17 bytes"));
    }
    SECTION("the limit is on all the files together: the file that crosses it is named") {
        {
            std::ofstream out(dir / "b.policy", std::ios::binary);
            out << "# " << std::string(max_policy_bytes - 20, 'x') << "\n";
        }
        LoadResult loaded = load_policy(dir);
        CHECK_FALSE(loaded);
        REQUIRE(loaded.diagnostics.size() == 1);
        CHECK(loaded.diagnostics[0].file == (dir / "b.policy").string());
        CHECK_THAT(loaded.diagnostics[0].message, Catch::Contains("at most 16777216 bytes"));
    }
}
