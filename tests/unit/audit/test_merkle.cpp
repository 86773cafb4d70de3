// The Merkle tree of RFC 9162 §2.1 (audit/merkle.hpp): the published reference vectors,
// every proof of small trees and every way of altering one, the writer's frontier and
// its resumption, what a proof costs its node source, and a second implementation in
// Python (merkle_check.py, written from the RFC alone) that must agree on every hash.
#include "audit/merkle.hpp"

#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

using namespace flowgate::audit;

namespace {

std::string bytes_from_hex(std::string_view hex) {
    std::string out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
        out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
    }
    return out;
}

TreeHash hash(std::string_view hex) {
    const auto parsed = hash_from_hex(hex);
    REQUIRE(parsed);
    return *parsed;
}

std::vector<TreeHash> hashes(std::initializer_list<std::string_view> hexes) {
    std::vector<TreeHash> out;
    for (std::string_view hex : hexes) {
        out.push_back(hash(hex));
    }
    return out;
}

TreeHash flipped(TreeHash value, unsigned bit) {
    value[(bit / 8) % value.size()] ^= static_cast<std::uint8_t>(1U << (bit % 8));
    return value;
}

// The leaf inputs of the reference tree (certificate-transparency's, as RFC 9162's
// implementations test with them), then inputs of this test's own for larger trees.
std::vector<std::string> leaf_inputs(std::size_t count) {
    std::vector<std::string> out = {
        "",
        bytes_from_hex("00"),
        bytes_from_hex("10"),
        bytes_from_hex("2021"),
        bytes_from_hex("3031"),
        bytes_from_hex("40414243"),
        bytes_from_hex("5051525354555657"),
        bytes_from_hex("606162636465666768696a6b6c6d6e6f"),
    };
    for (std::size_t i = out.size(); i < count; ++i) {
        out.push_back("row " + std::to_string(i) + std::string(i % 7, static_cast<char>(i)));
    }
    out.resize(count);
    return out;
}

std::vector<TreeHash> leaf_hashes(std::size_t count) {
    std::vector<TreeHash> out;
    for (const std::string& input : leaf_inputs(count)) {
        out.push_back(leaf_hash(input));
    }
    return out;
}

std::vector<TreeHash> first(const std::vector<TreeHash>& leaves, std::size_t count) {
    return {leaves.begin(), leaves.begin() + static_cast<std::ptrdiff_t>(count)};
}

// The root of every tree of 0 .. leaves.size() leaves.
std::vector<TreeHash> roots_of(const std::vector<TreeHash>& leaves) {
    std::vector<TreeHash> out;
    for (std::size_t n = 0; n <= leaves.size(); ++n) {
        out.push_back(tree_root(std::span<const TreeHash>(leaves).first(n)));
    }
    return out;
}

std::vector<TreeHash> inclusion(std::uint64_t leaf, std::uint64_t size, NodeSource& source) {
    auto proof = inclusion_proof(leaf, size, source);
    REQUIRE(proof);
    return proof.value();
}

std::vector<TreeHash> consistency(std::uint64_t old_size, std::uint64_t new_size,
                                  NodeSource& source) {
    auto proof = consistency_proof(old_size, new_size, source);
    REQUIRE(proof);
    return proof.value();
}

// A source that fails, as a store that cannot be read does.
class FailingSource final : public NodeSource {
public:
    MerkleResult<void> hashes(std::span<const NodeId>, std::span<TreeHash>) override {
        return MerkleError{MerkleErrc::source_failed, "disk I/O error"};
    }
};

std::string quoted(const std::string& text) {
    return "'" + text + "'";
}

struct CommandResult {
    int status = -1;
    std::string output;
};

CommandResult run(const std::string& command) {
    CommandResult result;
    FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
    REQUIRE(pipe != nullptr);
    char buffer[4096];
    std::size_t got = 0;
    while ((got = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) {
        result.output.append(buffer, got);
    }
    const int status = ::pclose(pipe);
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

// Debian's python3 where it is (CI's), else the one on PATH.
std::string python3() {
    return ::access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

std::string hex_list(const std::vector<TreeHash>& values) {
    std::string out = "[";
    for (std::size_t i = 0; i < values.size(); ++i) {
        out += (i == 0 ? "\"" : ", \"") + to_hex(values[i]) + "\"";
    }
    return out + "]";
}

void write_file(const std::filesystem::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
    REQUIRE(out.good());
}

} // namespace

TEST_CASE("merkle: the reference tree's roots, nodes and proofs are the published vectors",
          "[audit][merkle]") {
    // transparency-dev/merkle testonly/constants.go and proof/verify_test.go: the
    // certificate-transparency reference implementation's values for these leaves.
    const std::vector<TreeHash> leaves = leaf_hashes(8);
    const std::vector<TreeHash> roots = hashes({
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    });
    const std::vector<std::vector<TreeHash>> nodes = {
        hashes({"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
                "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"}),
        hashes({"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"}),
        hashes({"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}),
        hashes({"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"}),
    };
    MemoryNodeSource source(leaves);

    SECTION("the root of each tree of 0 to 8 leaves, by every way of computing it") {
        CHECK(empty_tree_root() == roots[0]);
        TreeFrontier frontier;
        CHECK(frontier.root() == roots[0]);
        for (std::size_t n = 0; n <= 8; ++n) {
            INFO("size " << n);
            if (n > 0) {
                frontier.append(leaves[n - 1]);
            }
            CHECK(tree_root(std::span<const TreeHash>(leaves).first(n)) == roots[n]);
            CHECK(frontier.root() == roots[n]);
            auto root = root_from_source(n, source);
            REQUIRE(root);
            CHECK(root.value() == roots[n]);
        }
    }
    SECTION("the hash of every perfect subtree") {
        for (unsigned level = 0; level < nodes.size(); ++level) {
            for (std::uint64_t index = 0; index < nodes[level].size(); ++index) {
                const NodeId id{level, index};
                TreeHash out{};
                REQUIRE(
                    source.hashes(std::span<const NodeId>(&id, 1), std::span<TreeHash>(&out, 1)));
                CHECK(out == nodes[level][index]);
            }
        }
    }
    SECTION("inclusion proofs") {
        const std::vector<std::pair<std::pair<std::uint64_t, std::uint64_t>, std::vector<TreeHash>>>
            vectors = {
                {{0, 1}, {}},
                {{0, 8}, {nodes[0][1], nodes[1][1], nodes[2][1]}},
                {{5, 8}, {nodes[0][4], nodes[1][3], nodes[2][0]}},
                {{2, 3}, {nodes[1][0]}},
                {{1, 5}, {nodes[0][0], nodes[1][1], nodes[0][4]}},
            };
        for (const auto& [at, path] : vectors) {
            const auto [leaf, size] = at;
            INFO("leaf " << leaf << " of " << size);
            CHECK(inclusion(leaf, size, source) == path);
            CHECK(verify_inclusion(leaf, size, leaves[leaf], path, roots[size]));
        }
    }
    SECTION("consistency proofs") {
        const std::vector<std::pair<std::pair<std::uint64_t, std::uint64_t>, std::vector<TreeHash>>>
            vectors = {
                {{1, 1}, {}},
                {{1, 8}, {nodes[0][1], nodes[1][1], nodes[2][1]}},
                {{6, 8}, {nodes[1][2], nodes[1][3], nodes[2][0]}},
                {{2, 5}, {nodes[1][1], nodes[0][4]}},
                {{6, 7}, {nodes[1][2], nodes[0][6], nodes[2][0]}},
            };
        for (const auto& [sizes, path] : vectors) {
            const auto [old_size, new_size] = sizes;
            INFO(old_size << " to " << new_size);
            CHECK(consistency(old_size, new_size, source) == path);
            CHECK(verify_consistency(old_size, new_size, roots[old_size], roots[new_size], path));
        }
    }
}

TEST_CASE("merkle: every leaf's inclusion proof in trees of 1 to 65 leaves verifies, and no "
          "altered one does",
          "[audit][merkle]") {
    const std::vector<TreeHash> leaves = leaf_hashes(140);
    const std::vector<TreeHash> roots = roots_of(leaves);
    for (std::uint64_t n = 1; n <= 65; ++n) {
        MemoryNodeSource source(first(leaves, n));
        for (std::uint64_t m = 0; m < n; ++m) {
            INFO("leaf " << m << " of " << n);
            const std::vector<TreeHash> path = inclusion(m, n, source);
            CHECK(path.size() <= static_cast<std::size_t>(std::bit_width(n - 1)));
            const ProofCheck check = verify_inclusion(m, n, leaves[m], path, roots[n]);
            INFO(check.reason);
            REQUIRE(check);
            CHECK(check.reason.empty());

            CHECK_FALSE(verify_inclusion(m, n, leaves[m], path, flipped(roots[n], m + 3)));
            CHECK_FALSE(verify_inclusion(m, n, flipped(leaves[m], n), path, roots[n]));
            for (std::size_t i = 0; i < path.size(); ++i) {
                std::vector<TreeHash> altered = path;
                altered[i] = flipped(altered[i], static_cast<unsigned>(i * 37 + m));
                CHECK_FALSE(verify_inclusion(m, n, leaves[m], altered, roots[n]));
            }
            for (std::uint64_t other = 0; other <= n + 1; ++other) {
                if (other != m) {
                    CHECK_FALSE(verify_inclusion(other, n, leaves[m], path, roots[n]));
                }
            }
            // Claimed for another size, with that size's root; and with this root, at the
            // sizes the reference implementation's tests probe.
            for (std::uint64_t other = 0; other <= 2 * n + 1; ++other) {
                if (other != n) {
                    CHECK_FALSE(verify_inclusion(m, other, leaves[m], path, roots[other]));
                }
            }
            CHECK_FALSE(verify_inclusion(m, 2 * n, leaves[m], path, roots[n]));
            CHECK_FALSE(verify_inclusion(m, n / 2, leaves[m], path, roots[n]));
            if (!path.empty()) {
                std::vector<TreeHash> longer = path;
                longer.push_back(roots[n]);
                CHECK(verify_inclusion(m, n, leaves[m], longer, roots[n]).reason ==
                      "the path is longer than the tree is deep");
                const std::vector<TreeHash> shorter(path.begin(), path.end() - 1);
                CHECK(verify_inclusion(m, n, leaves[m], shorter, roots[n]).reason ==
                      "the path is shorter than the tree is deep");
            }
        }
        CHECK(verify_inclusion(n, n, leaves[0], {}, roots[n]).reason ==
              "the leaf index is not below the tree size");
    }
}

TEST_CASE("merkle: consistency proofs between every pair of sizes up to 33 verify, and no "
          "altered one does",
          "[audit][merkle]") {
    const std::vector<TreeHash> leaves = leaf_hashes(70);
    const std::vector<TreeHash> roots = roots_of(leaves);
    for (std::uint64_t n = 1; n <= 33; ++n) {
        MemoryNodeSource source(first(leaves, n));
        for (std::uint64_t m = 1; m <= n; ++m) {
            INFO(m << " to " << n);
            const std::vector<TreeHash> path = consistency(m, n, source);
            const ProofCheck check = verify_consistency(m, n, roots[m], roots[n], path);
            INFO(check.reason);
            REQUIRE(check);
            if (m == n) {
                CHECK(path.empty());
            } else {
                CHECK_FALSE(path.empty());
            }

            CHECK_FALSE(verify_consistency(m, n, flipped(roots[m], m), roots[n], path));
            CHECK_FALSE(verify_consistency(m, n, roots[m], flipped(roots[n], n + 9), path));
            for (std::size_t i = 0; i < path.size(); ++i) {
                std::vector<TreeHash> altered = path;
                altered[i] = flipped(altered[i], static_cast<unsigned>(i * 29 + n));
                CHECK_FALSE(verify_consistency(m, n, roots[m], roots[n], altered));
            }
            // Claimed between other sizes, with those sizes' roots.
            for (std::uint64_t other = 0; other <= n; ++other) {
                if (other != m) {
                    CHECK_FALSE(verify_consistency(other, n, roots[other], roots[n], path));
                }
            }
            for (std::uint64_t other = m; other <= 2 * n + 1; ++other) {
                if (other != n) {
                    CHECK_FALSE(verify_consistency(m, other, roots[m], roots[other], path));
                }
            }
            // With these roots, at the sizes the reference implementation's tests probe
            // (at some others a proof of the same shape verifies: the size is bound to
            // the root by the checkpoint that signs both).
            if (m < n) {
                for (const auto& [old_size, new_size] :
                     {std::pair(m - 1, n), std::pair(m + 1, n), std::pair(m ^ 2U, n),
                      std::pair(m, 2 * n), std::pair(m, n / 2)}) {
                    CHECK_FALSE(verify_consistency(old_size, new_size, roots[m], roots[n], path));
                }
            }
        }
    }

    SECTION("a tree is its own extension by the empty path, and by no other") {
        CHECK(verify_consistency(5, 5, roots[5], roots[5], {}));
        CHECK(
            verify_consistency(5, 5, roots[5], roots[5], std::vector<TreeHash>{roots[5]}).reason ==
            "equal sizes take an empty path");
        CHECK(verify_consistency(5, 5, roots[5], roots[6], {}).reason ==
              "equal sizes with different roots");
        CHECK(verify_consistency(6, 5, roots[6], roots[5], {}).reason ==
              "the old size is above the new size");
        CHECK(verify_consistency(4, 5, roots[4], roots[5], {}).reason == "the path is empty");
    }
    SECTION("the empty tree is not an old tree a proof starts from, as RFC 9162 says") {
        MemoryNodeSource source(first(leaves, 8));
        auto proof = consistency_proof(0, 8, source);
        REQUIRE_FALSE(proof);
        CHECK(proof.error().code == MerkleErrc::bad_arguments);
        CHECK(proof.error().message.find("empty tree") != std::string::npos);
        CHECK_FALSE(verify_consistency(0, 8, empty_tree_root(), roots[8], {}));
        CHECK_FALSE(verify_consistency(0, 0, empty_tree_root(), empty_tree_root(), {}));
        CHECK_FALSE(
            verify_consistency(0, 8, empty_tree_root(), roots[8], consistency(1, 8, source)));
    }
}

TEST_CASE("merkle: a proof of a leaf or size the tree does not have is an error, and so is a "
          "source that fails",
          "[audit][merkle]") {
    MemoryNodeSource source(leaf_hashes(5));
    FailingSource failing;
    auto is_error = [](const auto& result, MerkleErrc code, std::string_view part) {
        REQUIRE_FALSE(result);
        CHECK(result.error().code == code);
        INFO(result.error().message);
        CHECK(result.error().message.find(part) != std::string::npos);
    };
    is_error(inclusion_proof(5, 5, source), MerkleErrc::bad_arguments,
             "leaf 5 is not in a tree of 5 leaves");
    is_error(inclusion_proof(0, 0, source), MerkleErrc::bad_arguments, "not in a tree of 0");
    is_error(consistency_proof(0, 5, source), MerkleErrc::bad_arguments, "empty tree");
    is_error(consistency_proof(6, 5, source), MerkleErrc::bad_arguments,
             "the old size 6 is above the new size 5");
    is_error(inclusion_proof(0, 6, source), MerkleErrc::source_failed,
             "is not a complete subtree of a tree of 5 leaves");
    is_error(root_from_source(6, source), MerkleErrc::source_failed, "not a complete subtree");

    is_error(inclusion_proof(1, 5, failing), MerkleErrc::source_failed, "disk I/O error");
    is_error(consistency_proof(2, 5, failing), MerkleErrc::source_failed, "disk I/O error");
    is_error(root_from_source(5, failing), MerkleErrc::source_failed, "disk I/O error");
    is_error(TreeFrontier::from_source(5, failing), MerkleErrc::source_failed, "disk I/O error");
    // What needs no node does not ask.
    CHECK(inclusion(0, 1, failing).empty());
    CHECK(consistency(3, 3, failing).empty());
    REQUIRE(root_from_source(0, failing));
    CHECK(root_from_source(0, failing).value() == empty_tree_root());
}

TEST_CASE("merkle: the frontier's root is the tree's at every size up to 300, and it reports "
          "each perfect subtree once, when it is completed",
          "[audit][merkle]") {
    const std::vector<TreeHash> leaves = leaf_hashes(300);
    MemoryNodeSource source(leaves);
    auto node = [&source](const NodeId& id) {
        TreeHash out{};
        REQUIRE(source.hashes(std::span<const NodeId>(&id, 1), std::span<TreeHash>(&out, 1)));
        return out;
    };
    TreeFrontier frontier;
    std::map<std::pair<unsigned, std::uint64_t>, TreeHash> reported;
    for (std::size_t i = 0; i < leaves.size(); ++i) {
        const std::uint64_t old_size = frontier.size();
        INFO("leaf " << i);
        const std::span<const TreeNode> completed = frontier.append(leaves[i]);
        REQUIRE(completed.size() == 1 + static_cast<std::size_t>(std::countr_one(old_size)));
        for (std::size_t j = 0; j < completed.size(); ++j) {
            CHECK(completed[j].id.level == j);
            CHECK(completed[j].id.index == old_size >> j);
            CHECK(completed[j].hash == node(completed[j].id));
            CHECK(reported
                      .emplace(std::pair(completed[j].id.level, completed[j].id.index),
                               completed[j].hash)
                      .second);
        }
        CHECK(frontier.size() == i + 1);
        CHECK(frontier.root() == tree_root(std::span<const TreeHash>(leaves).first(i + 1)));
        const std::vector<NodeId> ids = frontier_nodes(frontier.size());
        const std::vector<TreeNode> held = frontier.nodes();
        REQUIRE(held.size() == ids.size());
        CHECK(held.size() == static_cast<std::size_t>(std::popcount(frontier.size())));
        for (std::size_t j = 0; j < held.size(); ++j) {
            CHECK(held[j].id == ids[j]);
            CHECK(held[j].hash == node(ids[j]));
        }
    }
    // Exactly the perfect subtrees of 300 leaves, each once.
    std::size_t perfect = 0;
    for (unsigned level = 0; (std::uint64_t{1} << level) <= leaves.size(); ++level) {
        for (std::uint64_t index = 0; index < (leaves.size() >> level); ++index) {
            ++perfect;
            const auto found = reported.find(std::pair(level, index));
            REQUIRE(found != reported.end());
            CHECK(found->second == node(NodeId{level, index}));
        }
    }
    CHECK(reported.size() == perfect);
}

TEST_CASE("merkle: a frontier resumed from the stored roots of its subtrees goes on with the "
          "same roots",
          "[audit][merkle]") {
    const std::vector<TreeHash> leaves = leaf_hashes(300);
    const std::vector<TreeHash> roots = roots_of(leaves);
    MemoryNodeSource source(leaves);
    for (std::uint64_t size = 0; size <= leaves.size(); ++size) {
        INFO("resumed at " << size);
        const std::vector<NodeId> ids = frontier_nodes(size);
        std::vector<TreeHash> stored(ids.size());
        REQUIRE(source.hashes(ids, stored));
        auto resumed = TreeFrontier::resume(size, stored);
        REQUIRE(resumed);
        auto asked = TreeFrontier::from_source(size, source);
        REQUIRE(asked);
        TreeFrontier& frontier = resumed.value();
        CHECK(frontier.size() == size);
        CHECK(frontier.root() == roots[size]);
        CHECK(asked.value().root() == roots[size]);
        const std::uint64_t until = std::min<std::uint64_t>(size + 40, leaves.size());
        for (std::uint64_t next = size; next < until; ++next) {
            frontier.append(leaves[next]);
            asked.value().append(leaves[next]);
            CHECK(frontier.root() == roots[next + 1]);
            CHECK(asked.value().root() == roots[next + 1]);
        }
    }
    SECTION("from as many roots as its size has binary digits set, no more, no fewer") {
        auto few = TreeFrontier::resume(5, std::vector<TreeHash>{roots[4]});
        REQUIRE_FALSE(few);
        CHECK(few.error().code == MerkleErrc::bad_arguments);
        CHECK(few.error().message == "a tree of 5 leaves is made of 2 perfect subtrees, not 1");
        CHECK_FALSE(TreeFrontier::resume(0, std::vector<TreeHash>{roots[1]}));
        REQUIRE(TreeFrontier::resume(0, {}));
        CHECK(TreeFrontier::resume(0, {}).value().root() == empty_tree_root());
    }
}

TEST_CASE("merkle: a proof on a large tree reads O(log n) stored nodes and fewer than 2 * 2^k "
          "leaves below the stored levels",
          "[audit][merkle]") {
    constexpr unsigned k = 4;
    const std::uint64_t n = 150001;
    std::vector<TreeHash> leaves;
    leaves.reserve(n);
    TreeHasher hasher;
    for (std::uint64_t i = 0; i < n; ++i) {
        leaves.push_back(hasher.leaf("row " + std::to_string(i)));
    }
    MemoryNodeSource stored(leaves, k);
    MemoryNodeSource everything(leaves, 0); // every node kept: the reference
    auto root_of = [&everything](std::uint64_t size) {
        auto root = root_from_source(size, everything);
        REQUIRE(root);
        return root.value();
    };
    CHECK(root_of(n) == tree_root(leaves));
    auto within_budget = [&stored](std::uint64_t size) {
        const MemoryNodeSource::Reads reads = stored.reads();
        INFO("stored nodes " << reads.stored_nodes << ", leaves " << reads.leaves);
        CHECK(reads.stored_nodes <= 2 * static_cast<std::uint64_t>(std::bit_width(size)));
        CHECK(reads.leaves < 2 * (std::uint64_t{1} << k));
        stored.reset_reads();
    };

    for (const std::uint64_t size :
         {n, std::uint64_t{131072}, std::uint64_t{131073}, std::uint64_t{100000}}) {
        for (const std::uint64_t leaf :
             {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{15}, std::uint64_t{16},
              std::uint64_t{77777}, size - 17, size - 2, size - 1}) {
            INFO("leaf " << leaf << " of " << size);
            stored.reset_reads();
            const std::vector<TreeHash> path = inclusion(leaf, size, stored);
            within_budget(size);
            CHECK(path == inclusion(leaf, size, everything));
            CHECK(verify_inclusion(leaf, size, leaves[leaf], path, root_of(size)));
        }
    }
    const std::vector<std::pair<std::uint64_t, std::uint64_t>> pairs = {
        {1, n},           {16, n},     {17, n},    {24, 32},       {77777, n},
        {100000, 131073}, {131072, n}, {n - 1, n}, {99999, 100000}};
    for (const auto& [old_size, new_size] : pairs) {
        INFO(old_size << " to " << new_size);
        stored.reset_reads();
        const std::vector<TreeHash> path = consistency(old_size, new_size, stored);
        within_budget(new_size);
        CHECK(path == consistency(old_size, new_size, everything));
        CHECK(verify_consistency(old_size, new_size, root_of(old_size), root_of(new_size), path));
    }
}

namespace {

std::string hex_of(std::string_view bytes) {
    constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (const char c : bytes) {
        const auto byte = static_cast<unsigned char>(c);
        out.push_back(digits[byte >> 4U]);
        out.push_back(digits[byte & 0xfU]);
    }
    return out;
}

// What merkle_check.py reads (its docstring has the format): the leaves, the roots of
// trees of 0..300 leaves, every inclusion proof of trees of 1..65 leaves and every
// consistency proof between sizes 1 <= m <= n <= 33. `altered`: with one bit flipped
// in the second element of leaf 5's path in the tree of 13, and in the first of the
// proof from 6 to 13 leaves.
void write_check_files(const std::filesystem::path& dir, bool altered) {
    const std::vector<std::string> inputs = leaf_inputs(300);
    std::vector<TreeHash> leaves;
    std::vector<TreeHash> roots = {empty_tree_root()};
    TreeFrontier frontier;
    for (const std::string& input : inputs) {
        leaves.push_back(leaf_hash(input));
        frontier.append(leaves.back());
        roots.push_back(frontier.root());
    }
    std::string tree = "{\"leaf_inputs\": [";
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        tree += (i == 0 ? "\"" : ", \"") + hex_of(inputs[i]) + "\"";
    }
    tree += "],\n \"leaf_hashes\": " + hex_list(leaves) + ",\n \"roots\": " + hex_list(roots) +
            ",\n \"inclusion_sizes\": 65, \"consistency_sizes\": 33}\n";
    write_file(dir / "tree.json", tree);

    std::string proofs = "[";
    for (std::uint64_t n = 1; n <= 65; ++n) {
        MemoryNodeSource source(first(leaves, n));
        for (std::uint64_t m = 0; m < n; ++m) {
            std::vector<TreeHash> path = inclusion(m, n, source);
            if (altered && n == 13 && m == 5) {
                path[1] = flipped(path[1], 100);
            }
            proofs += std::string(proofs.size() == 1 ? "" : ",\n ") +
                      "{\"leaf_index\": " + std::to_string(m) +
                      ", \"tree_size\": " + std::to_string(n) + ", \"path\": " + hex_list(path) +
                      "}";
        }
    }
    write_file(dir / "inclusion.json", proofs + "]\n");

    proofs = "[";
    for (std::uint64_t n = 1; n <= 33; ++n) {
        MemoryNodeSource source(first(leaves, n));
        for (std::uint64_t m = 1; m <= n; ++m) {
            std::vector<TreeHash> path = consistency(m, n, source);
            if (altered && n == 13 && m == 6) {
                path[0] = flipped(path[0], 200);
            }
            proofs += std::string(proofs.size() == 1 ? "" : ",\n ") +
                      "{\"old_size\": " + std::to_string(m) +
                      ", \"new_size\": " + std::to_string(n) + ", \"path\": " + hex_list(path) +
                      "}";
        }
    }
    write_file(dir / "consistency.json", proofs + "]\n");
}

} // namespace

TEST_CASE("merkle: a Python implementation of RFC 9162 written apart agrees on every root and "
          "proof, and refuses altered ones",
          "[audit][merkle]") {
    const std::string python = python3();
    INFO("python3 is needed (scripts/install-deps.sh installs it): " << python);
    REQUIRE(run(python + " --version").status == 0);
    const std::string script =
        std::string(FLOWGATE_SOURCE_DIR) + "/tests/unit/audit/merkle_check.py";
    flowgate::testing::TempDir dir("flowgate-merkle");

    SECTION("the proofs as generated") {
        write_check_files(dir.path(), false);
        const CommandResult checked =
            run(python + " " + quoted(script) + " " + quoted(dir.path().string()));
        INFO(checked.output);
        CHECK(checked.status == 0);
        CHECK(checked.output == "ok: 300 leaf hashes, 301 roots, 2145 inclusion proofs, 561 "
                                "consistency proofs\n");
    }
    SECTION("a copy with a bit flipped in one inclusion and one consistency proof") {
        write_check_files(dir.path(), true);
        const CommandResult checked =
            run(python + " " + quoted(script) + " " + quoted(dir.path().string()));
        INFO(checked.output);
        CHECK(checked.status == 1);
        CHECK_THAT(
            checked.output,
            Catch::Contains("inclusion proof of leaf 5 in the tree of 13: not RFC 9162's "
                            "PATH(5, D[13])\n"
                            "inclusion proof of leaf 5 in the tree of 13: does not verify\n"));
        CHECK_THAT(checked.output,
                   Catch::Contains("consistency proof from 6 to 13 leaves: not RFC 9162's "
                                   "PROOF(6, D[13])\n"
                                   "consistency proof from 6 to 13 leaves: does not verify\n"));
        CHECK_THAT(checked.output, !Catch::Contains("ok:"));
    }
}
