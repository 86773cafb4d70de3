// The Merkle tree (audit/merkle.hpp) on a log of one million rows: hashing the leaves,
// the writer's frontier, the root of the whole tree from leaf hashes in memory (the
// target: well under a second), and proofs from a source that keeps the levels from
// k = 4 up, as the store is to (what each proof reads, and how long it and its check
// take). Run a Release build: bench_merkle [leaves]
#include "audit/merkle.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

using namespace flowgate::audit;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// A leaf input about as long as a check row's canonical bytes.
std::string leaf_input(std::uint64_t i) {
    std::string input(400, 'x');
    const std::string number = std::to_string(i);
    input.replace(0, number.size(), number);
    return input;
}

} // namespace

int main(int argc, char** argv) {
    const std::uint64_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000000;
    if (n < 2) {
        std::fprintf(stderr, "usage: bench_merkle [leaves >= 2]\n");
        return 2;
    }

    TreeHasher hasher;
    std::vector<TreeHash> leaves;
    leaves.reserve(n);
    auto start = std::chrono::steady_clock::now();
    for (std::uint64_t i = 0; i < n; ++i) {
        leaves.push_back(hasher.leaf(leaf_input(i)));
    }
    double took = seconds_since(start);
    std::printf("leaf hashes of %llu 400-byte inputs: %.3f s (%.0f a second)\n",
                static_cast<unsigned long long>(n), took, static_cast<double>(n) / took);

    start = std::chrono::steady_clock::now();
    TreeFrontier frontier;
    std::uint64_t completed = 0;
    for (const TreeHash& leaf : leaves) {
        completed += frontier.append(leaf).size();
    }
    const TreeHash frontier_root = frontier.root();
    took = seconds_since(start);
    std::printf("frontier: %llu appends (%llu completed subtrees reported) and the root: %.3f s "
                "(%.0f appends a second)\n",
                static_cast<unsigned long long>(n), static_cast<unsigned long long>(completed),
                took, static_cast<double>(n) / took);

    MemoryNodeSource from_leaves(leaves);
    start = std::chrono::steady_clock::now();
    auto root = root_from_source(n, from_leaves);
    took = seconds_since(start);
    if (!root || root.value() != frontier_root) {
        std::fprintf(stderr, "root_from_source disagrees with the frontier\n");
        return 1;
    }
    std::printf("root_from_source over %llu leaf hashes in memory: %.3f s\n",
                static_cast<unsigned long long>(n), took);

    constexpr unsigned k = 4;
    start = std::chrono::steady_clock::now();
    MemoryNodeSource stored(leaves, k);
    took = seconds_since(start);
    std::printf("a source keeping levels %u and up: built in %.3f s\n", k, took);

    constexpr int proofs = 10000;
    std::uint64_t state = 88172645463325252ULL; // xorshift: the same leaves every run
    auto next = [&state](std::uint64_t below) {
        state ^= state << 13U;
        state ^= state >> 7U;
        state ^= state << 17U;
        return state % below;
    };
    double generate = 0;
    double check = 0;
    for (int i = 0; i < proofs; ++i) {
        const std::uint64_t leaf = next(n);
        start = std::chrono::steady_clock::now();
        auto path = inclusion_proof(leaf, n, stored);
        generate += seconds_since(start);
        start = std::chrono::steady_clock::now();
        const bool valid =
            path && verify_inclusion(leaf, n, leaves[leaf], path.value(), frontier_root);
        check += seconds_since(start);
        if (!valid) {
            std::fprintf(stderr, "the inclusion proof of leaf %llu does not verify\n",
                         static_cast<unsigned long long>(leaf));
            return 1;
        }
    }
    MemoryNodeSource::Reads reads = stored.reads();
    std::printf("inclusion proofs: %.1f us to make (%.1f stored nodes, %.1f leaves read each), "
                "%.1f us to check\n",
                generate / proofs * 1e6, static_cast<double>(reads.stored_nodes) / proofs,
                static_cast<double>(reads.leaves) / proofs, check / proofs * 1e6);

    generate = 0;
    check = 0;
    MemoryNodeSource::Reads proof_reads;
    for (int i = 0; i < proofs; ++i) {
        const std::uint64_t old_size = 1 + next(n - 1);
        auto old_root = root_from_source(old_size, stored);
        stored.reset_reads();
        start = std::chrono::steady_clock::now();
        auto path = consistency_proof(old_size, n, stored);
        generate += seconds_since(start);
        proof_reads.stored_nodes += stored.reads().stored_nodes;
        proof_reads.leaves += stored.reads().leaves;
        start = std::chrono::steady_clock::now();
        const bool valid =
            path && old_root &&
            verify_consistency(old_size, n, old_root.value(), frontier_root, path.value());
        check += seconds_since(start);
        if (!valid) {
            std::fprintf(stderr, "the consistency proof from %llu does not verify\n",
                         static_cast<unsigned long long>(old_size));
            return 1;
        }
    }
    std::printf("consistency proofs to the whole tree: %.1f us to make (%.1f stored nodes, "
                "%.1f leaves read each), %.1f us to check\n",
                generate / proofs * 1e6, static_cast<double>(proof_reads.stored_nodes) / proofs,
                static_cast<double>(proof_reads.leaves) / proofs, check / proofs * 1e6);
    return 0;
}
