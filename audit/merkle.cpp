// The RFC 9162 §2.1 Merkle tree: hashing, the frontier, proofs composed from perfect
// subtrees, and the RFC's verification algorithms; see merkle.hpp for the contract and
// the storage design.
#include "audit/merkle.hpp"

#include "audit/sha256_context.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <stdexcept>

namespace flowgate::audit {

struct TreeHasher::Context : Sha256Context {
    // SHA-256(first ‖ second). A failure means libcrypto itself is broken: as for the
    // chain, the one exception of this library.
    TreeHash digest(const void* first, std::size_t first_size, const void* second,
                    std::size_t second_size) {
        TreeHash out{};
        unsigned int size = 0;
        if (context == nullptr || sha256 == nullptr ||
            EVP_DigestInit_ex2(context, sha256, nullptr) != 1 ||
            EVP_DigestUpdate(context, first, first_size) != 1 ||
            EVP_DigestUpdate(context, second, second_size) != 1 ||
            EVP_DigestFinal_ex(context, out.data(), &size) != 1 || size != out.size()) {
            throw std::runtime_error("SHA-256 failed in libcrypto");
        }
        return out;
    }
};

TreeHasher::TreeHasher() : m_context(std::make_unique<Context>()) {}
TreeHasher::~TreeHasher() = default;

TreeHash TreeHasher::leaf(std::string_view leaf_input) {
    constexpr unsigned char prefix = 0x00;
    return m_context->digest(&prefix, 1, leaf_input.data(), leaf_input.size());
}

TreeHash TreeHasher::node(const TreeHash& left, const TreeHash& right) {
    // One 65-byte update: the prefix and both children in one block of input.
    unsigned char input[1 + 2 * sizeof(TreeHash)];
    input[0] = 0x01;
    std::memcpy(input + 1, left.data(), left.size());
    std::memcpy(input + 1 + left.size(), right.data(), right.size());
    return m_context->digest(input, sizeof input, nullptr, 0);
}

TreeHash TreeHasher::empty() {
    return m_context->digest(nullptr, 0, nullptr, 0);
}

namespace {

TreeHasher& thread_hasher() {
    thread_local TreeHasher hasher;
    return hasher;
}

// A half-open range of leaves [begin, end) whose MTH a proof needs. Every range the
// RFC's recursions reach starts at a multiple of the power of two at or above its
// length, so its binary digits name aligned perfect subtrees.
struct LeafRange {
    std::uint64_t begin = 0;
    std::uint64_t end = 0;
};

// The largest power of two below n, for n >= 2 (the RFC's k).
std::uint64_t split_point(std::uint64_t n) {
    return std::bit_floor(n - 1);
}

void append_range_nodes(const LeafRange& range, std::vector<NodeId>& out) {
    std::uint64_t at = range.begin;
    const std::uint64_t count = range.end - range.begin;
    for (unsigned level = 64; level-- > 0;) {
        if (((count >> level) & 1U) != 0) {
            out.push_back(NodeId{level, at >> level});
            at += std::uint64_t{1} << level;
        }
    }
}

// node(P1, node(P2, … node(Pj-1, Pj))) of the pieces, left to right.
TreeHash fold_pieces(std::span<const TreeHash> pieces, TreeHasher& hasher) {
    TreeHash root = pieces.back();
    for (std::size_t i = pieces.size() - 1; i-- > 0;) {
        root = hasher.node(pieces[i], root);
    }
    return root;
}

// Adds a leaf to the roots of a tree of `size` leaves (roots[level] held iff bit
// `level` of size), calling completed(NodeId, hash) for each subtree it completes,
// lowest first.
template <class Completed>
void push_leaf(std::array<TreeHash, 64>& roots, std::uint64_t size, const TreeHash& leaf,
               TreeHasher& hasher, Completed&& completed) {
    TreeHash carry = leaf;
    unsigned level = 0;
    completed(NodeId{0, size}, carry);
    while (((size >> level) & 1U) != 0) {
        carry = hasher.node(roots[level], carry);
        ++level;
        completed(NodeId{level, size >> level}, carry);
    }
    roots[level] = carry;
}

// MTH of a tree of `size` > 0 leaves from its frontier's roots.
TreeHash fold_roots(const std::array<TreeHash, 64>& roots, std::uint64_t size, TreeHasher& hasher) {
    TreeHash root{};
    bool started = false;
    for (unsigned level = 0; level < 64; ++level) {
        if (((size >> level) & 1U) == 0) {
            continue;
        }
        root = started ? hasher.node(roots[level], root) : roots[level];
        started = true;
    }
    return root;
}

// The MTH of each range, from one batch of the source's perfect subtrees.
MerkleResult<std::vector<TreeHash>> hash_ranges(std::span<const LeafRange> ranges,
                                                NodeSource& source) {
    std::vector<NodeId> ids;
    std::vector<std::size_t> starts;
    starts.reserve(ranges.size() + 1);
    for (const LeafRange& range : ranges) {
        starts.push_back(ids.size());
        append_range_nodes(range, ids);
    }
    starts.push_back(ids.size());
    std::vector<TreeHash> hashes(ids.size());
    if (!ids.empty()) {
        auto answered = source.hashes(ids, hashes);
        if (!answered) {
            return answered.error();
        }
    }
    TreeHasher& hasher = thread_hasher();
    std::vector<TreeHash> out;
    out.reserve(ranges.size());
    for (std::size_t i = 0; i < ranges.size(); ++i) {
        out.push_back(fold_pieces(
            std::span<const TreeHash>(hashes).subspan(starts[i], starts[i + 1] - starts[i]),
            hasher));
    }
    return out;
}

MerkleError bad_arguments(std::string message) {
    return MerkleError{MerkleErrc::bad_arguments, std::move(message)};
}

} // namespace

TreeHash leaf_hash(std::string_view leaf_input) {
    return thread_hasher().leaf(leaf_input);
}

ChainHash row_hash(const ChainHash& prev, std::string_view canonical, int version) {
    if (!chain_links_leaves(version)) {
        return chain_hash(prev, canonical);
    }
    return chain_hash(prev, hash_bytes(leaf_hash(canonical)));
}

TreeHash node_hash(const TreeHash& left, const TreeHash& right) {
    return thread_hasher().node(left, right);
}

TreeHash empty_tree_root() {
    static const TreeHash empty = TreeHasher().empty();
    return empty;
}

TreeHash tree_root(std::span<const TreeHash> leaf_hashes) {
    if (leaf_hashes.empty()) {
        return empty_tree_root();
    }
    TreeHasher& hasher = thread_hasher();
    std::array<TreeHash, 64> roots{};
    std::uint64_t size = 0;
    for (const TreeHash& leaf : leaf_hashes) {
        push_leaf(roots, size, leaf, hasher, [](const NodeId&, const TreeHash&) {});
        ++size;
    }
    return fold_roots(roots, size, hasher);
}

std::vector<NodeId> frontier_nodes(std::uint64_t size) {
    std::vector<NodeId> out;
    append_range_nodes(LeafRange{0, size}, out);
    return out;
}

MemoryNodeSource::MemoryNodeSource(std::vector<TreeHash> leaf_hashes, unsigned stored_from_level)
    : m_leaves(std::move(leaf_hashes)), m_stored_from_level(std::min(stored_from_level, 64U)) {
    if (m_stored_from_level >= 64) {
        return;
    }
    m_stored.resize(64 - m_stored_from_level);
    TreeFrontier frontier;
    for (const TreeHash& leaf : m_leaves) {
        for (const TreeNode& node : frontier.append(leaf)) {
            if (node.id.level >= m_stored_from_level) {
                m_stored[node.id.level - m_stored_from_level].push_back(node.hash);
            }
        }
    }
}

MerkleResult<void> MemoryNodeSource::hashes(std::span<const NodeId> ids, std::span<TreeHash> out) {
    if (ids.size() != out.size()) {
        return bad_arguments("asked for " + std::to_string(ids.size()) + " nodes into " +
                             std::to_string(out.size()) + " places");
    }
    const std::uint64_t size = m_leaves.size();
    for (std::size_t i = 0; i < ids.size(); ++i) {
        const NodeId& id = ids[i];
        if (id.level >= 64 || id.index >= (size >> id.level)) {
            return MerkleError{
                MerkleErrc::source_failed,
                "node (level " + std::to_string(id.level) + ", index " + std::to_string(id.index) +
                    ") is not a complete subtree of a tree of " + std::to_string(size) + " leaves"};
        }
        if (id.level >= m_stored_from_level) {
            out[i] = m_stored[id.level - m_stored_from_level][id.index];
            ++m_reads.stored_nodes;
        } else {
            out[i] = tree_root(
                std::span<const TreeHash>(m_leaves).subspan(id.first_leaf(), id.leaf_count()));
            m_reads.leaves += id.leaf_count();
        }
    }
    return boost::outcome_v2::success();
}

MerkleResult<TreeFrontier> TreeFrontier::resume(std::uint64_t size,
                                                std::span<const TreeHash> roots) {
    const std::vector<NodeId> ids = frontier_nodes(size);
    if (roots.size() != ids.size()) {
        return bad_arguments("a tree of " + std::to_string(size) + " leaves is made of " +
                             std::to_string(ids.size()) + " perfect subtrees, not " +
                             std::to_string(roots.size()));
    }
    TreeFrontier frontier;
    frontier.m_size = size;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        frontier.m_roots[ids[i].level] = roots[i];
    }
    return frontier;
}

MerkleResult<TreeFrontier> TreeFrontier::from_source(std::uint64_t size, NodeSource& source) {
    const std::vector<NodeId> ids = frontier_nodes(size);
    std::vector<TreeHash> roots(ids.size());
    if (!ids.empty()) {
        auto answered = source.hashes(ids, roots);
        if (!answered) {
            return answered.error();
        }
    }
    return resume(size, roots);
}

std::span<const TreeNode> TreeFrontier::append(const TreeHash& leaf_hash) {
    if (m_size == UINT64_MAX) {
        throw std::length_error("a Merkle tree holds at most 2^64 - 1 leaves");
    }
    std::size_t count = 0;
    push_leaf(m_roots, m_size, leaf_hash, thread_hasher(),
              [this, &count](const NodeId& id, const TreeHash& hash) {
                  m_completed[count++] = TreeNode{id, hash};
              });
    ++m_size;
    return {m_completed.data(), count};
}

TreeHash TreeFrontier::root() const {
    if (m_size == 0) {
        return empty_tree_root();
    }
    return fold_roots(m_roots, m_size, thread_hasher());
}

std::vector<TreeNode> TreeFrontier::nodes() const {
    std::vector<TreeNode> out;
    for (const NodeId& id : frontier_nodes(m_size)) {
        out.push_back(TreeNode{id, m_roots[id.level]});
    }
    return out;
}

std::span<const TreeNode> TreeBuilder::append(const TreeHash& leaf_hash) {
    return append(TreeNode{NodeId{0, m_end}, leaf_hash});
}

std::span<const TreeNode> TreeBuilder::append(const TreeNode& node) {
    if (node.id.first_leaf() != m_end || node.id.level >= 64 ||
        m_end > UINT64_MAX - node.id.leaf_count()) {
        throw std::invalid_argument("a perfect subtree appended to a run must start at its end");
    }
    m_end += node.id.leaf_count();
    m_completed.clear();
    m_completed.push_back(node);
    m_nodes.push_back(node);
    TreeHasher& hasher = thread_hasher();
    // Siblings: two neighbours of one level, the left one at an even index.
    while (m_nodes.size() >= 2) {
        const TreeNode& right = m_nodes[m_nodes.size() - 1];
        const TreeNode& left = m_nodes[m_nodes.size() - 2];
        if (left.id.level != right.id.level || (left.id.index & 1U) != 0) {
            break;
        }
        const TreeNode parent{NodeId{left.id.level + 1, left.id.index / 2},
                              hasher.node(left.hash, right.hash)};
        m_nodes.pop_back();
        m_nodes.back() = parent;
        m_completed.push_back(parent);
    }
    return m_completed;
}

MerkleResult<TreeHash> root_from_source(std::uint64_t size, NodeSource& source) {
    if (size == 0) {
        return empty_tree_root();
    }
    const LeafRange whole{0, size};
    auto hashed = hash_ranges(std::span<const LeafRange>(&whole, 1), source);
    if (!hashed) {
        return hashed.error();
    }
    return hashed.value().front();
}

MerkleResult<std::vector<TreeHash>> inclusion_proof(std::uint64_t leaf_index,
                                                    std::uint64_t tree_size, NodeSource& source) {
    if (leaf_index >= tree_size) {
        return bad_arguments("leaf " + std::to_string(leaf_index) + " is not in a tree of " +
                             std::to_string(tree_size) + " leaves");
    }
    // PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])   for m < k
    //               = PATH(m - k, D[k:n]) : MTH(D[0:k]) for m >= k
    // walked from the root down; the path lists the siblings from the leaf up.
    std::vector<LeafRange> siblings;
    LeafRange range{0, tree_size};
    while (range.end - range.begin > 1) {
        const std::uint64_t middle = range.begin + split_point(range.end - range.begin);
        if (leaf_index < middle) {
            siblings.push_back(LeafRange{middle, range.end});
            range.end = middle;
        } else {
            siblings.push_back(LeafRange{range.begin, middle});
            range.begin = middle;
        }
    }
    std::reverse(siblings.begin(), siblings.end());
    return hash_ranges(siblings, source);
}

MerkleResult<std::vector<TreeHash>> consistency_proof(std::uint64_t old_size,
                                                      std::uint64_t new_size, NodeSource& source) {
    if (old_size == 0) {
        return bad_arguments("no consistency proof from the empty tree: RFC 9162 proves it "
                             "from a tree of at least one leaf");
    }
    if (old_size > new_size) {
        return bad_arguments("the old size " + std::to_string(old_size) +
                             " is above the new size " + std::to_string(new_size));
    }
    // SUBPROOF(m, D[m], true) = {}; SUBPROOF(m, D[m], false) = {MTH(D[m])}
    // SUBPROOF(m, D[n], b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n])         for m <= k
    //                      = SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k]) for m > k
    std::vector<LeafRange> nodes;
    LeafRange range{0, new_size};
    bool whole_old_tree = true; // the RFC's b: the range still starts the old tree
    while (old_size != range.end) {
        const std::uint64_t middle = range.begin + split_point(range.end - range.begin);
        if (old_size <= middle) {
            nodes.push_back(LeafRange{middle, range.end});
            range.end = middle;
        } else {
            nodes.push_back(LeafRange{range.begin, middle});
            range.begin = middle;
            whole_old_tree = false;
        }
    }
    if (!whole_old_tree) {
        nodes.push_back(range);
    }
    std::reverse(nodes.begin(), nodes.end());
    return hash_ranges(nodes, source);
}

ProofCheck verify_inclusion(std::uint64_t leaf_index, std::uint64_t tree_size,
                            const TreeHash& leaf_hash, std::span<const TreeHash> path,
                            const TreeHash& root) {
    auto fail = [](std::string_view reason) {
        return ProofCheck{false, reason};
    };
    // 1. leaf_index >= tree_size fails.
    if (leaf_index >= tree_size) {
        return fail("the leaf index is not below the tree size");
    }
    // 2. fn = leaf_index, sn = tree_size - 1. 3. r = hash.
    std::uint64_t fn = leaf_index;
    std::uint64_t sn = tree_size - 1;
    TreeHash r = leaf_hash;
    TreeHasher& hasher = thread_hasher();
    // 4. For each p in the path:
    for (const TreeHash& p : path) {
        // a. sn == 0 fails.
        if (sn == 0) {
            return fail("the path is longer than the tree is deep");
        }
        // b. If LSB(fn) is set or fn == sn: r = HASH(0x01 ‖ p ‖ r), then, if LSB(fn) is
        // not set, shift both right until LSB(fn) is set or fn is 0. Otherwise
        // r = HASH(0x01 ‖ r ‖ p).
        if ((fn & 1U) != 0 || fn == sn) {
            r = hasher.node(p, r);
            while ((fn & 1U) == 0 && fn != 0) {
                fn >>= 1U;
                sn >>= 1U;
            }
        } else {
            r = hasher.node(r, p);
        }
        // c. Shift both right once.
        fn >>= 1U;
        sn >>= 1U;
    }
    // 5. sn must be 0 and r the root.
    if (sn != 0) {
        return fail("the path is shorter than the tree is deep");
    }
    if (r != root) {
        return fail("the path does not lead to the root");
    }
    return ProofCheck{true, {}};
}

ProofCheck verify_consistency(std::uint64_t old_size, std::uint64_t new_size,
                              const TreeHash& old_root, const TreeHash& new_root,
                              std::span<const TreeHash> path) {
    auto fail = [](std::string_view reason) {
        return ProofCheck{false, reason};
    };
    if (old_size == 0) {
        return fail("the old size is 0: consistency is proved from a tree of one leaf or more");
    }
    if (old_size > new_size) {
        return fail("the old size is above the new size");
    }
    if (old_size == new_size) {
        if (!path.empty()) {
            return fail("equal sizes take an empty path");
        }
        if (old_root != new_root) {
            return fail("equal sizes with different roots");
        }
        return ProofCheck{true, {}};
    }
    // 1. An empty path fails.
    if (path.empty()) {
        return fail("the path is empty");
    }
    // 2. If first is an exact power of 2, first_hash is prepended to the path.
    const bool prepended = std::has_single_bit(old_size);
    const std::size_t length = path.size() + (prepended ? 1 : 0);
    auto element = [&](std::size_t i) -> const TreeHash& {
        if (prepended) {
            return i == 0 ? old_root : path[i - 1];
        }
        return path[i];
    };
    // 3. fn = first - 1, sn = second - 1.
    std::uint64_t fn = old_size - 1;
    std::uint64_t sn = new_size - 1;
    // 4. While LSB(fn) is set, shift both right.
    while ((fn & 1U) != 0) {
        fn >>= 1U;
        sn >>= 1U;
    }
    // 5. fr = sr = the path's first element.
    TreeHash fr = element(0);
    TreeHash sr = element(0);
    TreeHasher& hasher = thread_hasher();
    // 6. For each subsequent element c:
    for (std::size_t i = 1; i < length; ++i) {
        const TreeHash& c = element(i);
        // a. sn == 0 fails.
        if (sn == 0) {
            return fail("the path is longer than the trees are deep");
        }
        // b. If LSB(fn) is set or fn == sn: fr = HASH(0x01 ‖ c ‖ fr),
        // sr = HASH(0x01 ‖ c ‖ sr), then, if LSB(fn) is not set, shift both right until
        // LSB(fn) is set or fn is 0. Otherwise sr = HASH(0x01 ‖ sr ‖ c).
        if ((fn & 1U) != 0 || fn == sn) {
            fr = hasher.node(c, fr);
            sr = hasher.node(c, sr);
            while ((fn & 1U) == 0 && fn != 0) {
                fn >>= 1U;
                sn >>= 1U;
            }
        } else {
            sr = hasher.node(sr, c);
        }
        // c. Shift both right once.
        fn >>= 1U;
        sn >>= 1U;
    }
    // 7. fr must be first_hash, sr second_hash, and sn 0.
    if (fr != old_root) {
        return fail("the path does not lead to the old root");
    }
    if (sr != new_root) {
        return fail("the path does not lead to the new root");
    }
    if (sn != 0) {
        return fail("the path is shorter than the trees are deep");
    }
    return ProofCheck{true, {}};
}

} // namespace flowgate::audit
