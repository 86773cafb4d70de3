// The RFC 9162 (Certificate Transparency 2.0) §2.1 Merkle tree over the audit log: the
// hashes, the writer's frontier, inclusion and consistency proofs and their checks. The
// chain shows that no row before the last was changed; the tree adds what the chain
// cannot give: a proof that one row is in the log, and that a log is an extension of an
// older one, each in O(log n) hashes that anyone can check with a checkpoint alone.
// This header is the pure tree; where its nodes are kept is the store's business, and
// it reaches them through NodeSource.
//
// The tree of a store: one leaf per audit row, in seq order (leaf index = seq - 1); the
// leaf input is the row's canonical bytes for the store's schema version
// (canonical_row_bytes in audit/canonical.hpp).
//
//   leaf hash   = SHA-256(0x00 ‖ leaf input)
//   node hash   = SHA-256(0x01 ‖ left ‖ right)
//   MTH({})     = SHA-256()   (the empty tree)
//   MTH(D[n])   = MTH(D[0:k]) and MTH(D[k:n]) hashed as a node, k the largest power of
//                 two below n (RFC 9162 §2.1.1)
//
// A perfect subtree is named by (level, index): the 2^level leaves
// [index·2^level, (index+1)·2^level), level 0 being the leaves. Any tree, and any range
// a proof needs (the right edge of a tree whose size is not a power of two is not a
// perfect subtree), is hashed from the perfect subtrees its size's binary digits name,
// largest (leftmost) first: MTH = node(P1, node(P2, … node(Pj-1, Pj))).
//
// Storage, as a store of schema version 3 keeps the tree (audit/tree_store.hpp):
// - The writer keeps a TreeFrontier, appends each row's leaf hash as the row is written,
//   and persists from what append() reports the complete subtrees whose level is at
//   least k (a table keyed by the size at which each completed and its level, so that
//   inserts land at its right edge); a node is complete once and never changes,
//   so the table is append-only like the log. With k = 4 it holds about n/8 nodes:
//   125,000 for a million rows. (Keeping only the levels that are multiples of k
//   halves that, and makes a node at level qk + r cost 2^r stored nodes: still
//   O(log n) per proof, with a larger constant.)
// - Below level k the store computes a node from its leaves: the leaf hashes of its
//   rows, hashed by tree_root(). A node at level L < k covers 2^L rows.
// - Every proof asks its NodeSource once, for one batch of perfect subtrees: the
//   siblings along one leaf's path (or along the old size's boundary), at most one per
//   level, and the pieces of at most one right edge. So a proof on a million-row log
//   asks for at most about 2·log2(n) = 40 nodes; those at level k or above are stored
//   rows, and those below k lie in two blocks of 2^k leaves: the one holding the leaf
//   (for a consistency proof, leaf old_size - 1) and the tree's last, partial one. A
//   source that reads each such block's rows once reads fewer than 2·2^k rows.
// - A writer that restarts resumes its frontier from the perfect subtrees of the
//   store's size (frontier_nodes(), at most 64): TreeFrontier::from_source().
#pragma once

#include "audit/canonical.hpp"

#include <boost/outcome/basic_result.hpp>
#include <boost/outcome/policy/terminate.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace flowgate::audit {

using TreeHash = ChainHash;

// SHA-256 of the tree's leaf and node inputs with one reusable digest context: hashing a
// million leaves costs no allocation and no lookup per hash. Not shareable between
// threads; the free functions below use one of the calling thread's.
class TreeHasher {
public:
    TreeHasher();
    ~TreeHasher();
    TreeHasher(const TreeHasher&) = delete;
    TreeHasher& operator=(const TreeHasher&) = delete;
    TreeHash leaf(std::string_view leaf_input);
    TreeHash node(const TreeHash& left, const TreeHash& right);
    TreeHash empty();

private:
    struct Context;
    std::unique_ptr<Context> m_context;
};

TreeHash leaf_hash(std::string_view leaf_input);

// The bytes of a hash, as a chain hasher takes them.
inline std::string_view hash_bytes(const TreeHash& hash) {
    return {reinterpret_cast<const char*>(hash.data()), hash.size()};
}

// A row's hash in the chain, from the previous row's and the row's canonical bytes, as
// a store of `version` defines it: SHA-256(prev ‖ canonical) in versions 1 and 2,
// SHA-256(prev ‖ leaf hash) from version 3, so that the chain and the tree hash each
// row's bytes once, into the same leaf.
ChainHash row_hash(const ChainHash& prev, std::string_view canonical, int version);
TreeHash node_hash(const TreeHash& left, const TreeHash& right);
// MTH({}) = SHA-256 of nothing: e3b0c442…b855.
TreeHash empty_tree_root();

// MTH of a list of leaf hashes, as RFC 9162 §2.1.1 defines it, for any count (the empty
// list's is empty_tree_root()); for 2^L leaves, the hash of that perfect subtree. No
// allocation: how a store hashes the levels it does not keep.
TreeHash tree_root(std::span<const TreeHash> leaf_hashes);

// A perfect subtree: the leaves [index·2^level, (index+1)·2^level). level < 64.
struct NodeId {
    unsigned level = 0;
    std::uint64_t index = 0;
    std::uint64_t first_leaf() const { return index << level; }
    std::uint64_t leaf_count() const { return std::uint64_t{1} << level; }
    friend bool operator==(const NodeId&, const NodeId&) = default;
};

struct TreeNode {
    NodeId id;
    TreeHash hash{};
};

// The perfect subtrees that make up a tree of `size` leaves, largest (leftmost) first:
// one per binary digit of size set, at most 64. What a frontier holds and resumes from.
std::vector<NodeId> frontier_nodes(std::uint64_t size);

enum class MerkleErrc {
    bad_arguments, // a leaf or a size the tree does not have, or frontier roots that do
                   // not fit its size
    source_failed, // the NodeSource could not answer (its message)
};

struct MerkleError {
    MerkleErrc code = MerkleErrc::bad_arguments;
    std::string message;
};

template <class T>
using MerkleResult =
    boost::outcome_v2::basic_result<T, MerkleError, boost::outcome_v2::policy::terminate>;

// Where the nodes come from: the store (stored nodes, lower levels from rows), or
// MemoryNodeSource. The library asks only for perfect subtrees that lie inside the tree
// it was asked about, and asks each proof's, root's or frontier's nodes in one call, so
// that a store answers with one query. A source that fails returns source_failed with
// its message; one that needs its own error back (an AuditError, say) keeps it itself.
class NodeSource {
public:
    virtual ~NodeSource() = default;
    // Writes the hash of perfect subtree ids[i] into out[i], for each i
    // (ids.size() == out.size()).
    virtual MerkleResult<void> hashes(std::span<const NodeId> ids, std::span<TreeHash> out) = 0;

protected:
    NodeSource() = default;
    NodeSource(const NodeSource&) = default;
    NodeSource& operator=(const NodeSource&) = default;
};

// A NodeSource over leaf hashes held in memory, for tests and small tools. It keeps the
// complete subtrees of levels stored_from_level and above, as the store would (building
// them costs one hash per leaf), and hashes lower ones from the leaves when asked; with
// the default it keeps none, and every node is hashed from its leaves.
class MemoryNodeSource final : public NodeSource {
public:
    explicit MemoryNodeSource(std::vector<TreeHash> leaf_hashes, unsigned stored_from_level = 64);
    MerkleResult<void> hashes(std::span<const NodeId> ids, std::span<TreeHash> out) override;

    std::uint64_t size() const { return m_leaves.size(); }
    const std::vector<TreeHash>& leaf_hashes() const { return m_leaves; }

    // What the answers so far cost: kept nodes read, leaf hashes hashed.
    struct Reads {
        std::uint64_t stored_nodes = 0;
        std::uint64_t leaves = 0;
    };
    Reads reads() const { return m_reads; }
    void reset_reads() { m_reads = {}; }

private:
    std::vector<TreeHash> m_leaves;
    unsigned m_stored_from_level;
    std::vector<std::vector<TreeHash>> m_stored; // [level - stored_from_level][index]
    Reads m_reads;
};

// The roots of the perfect subtrees that make up a tree of size n (at most 64, one per
// binary digit of n set): what the writer keeps to append a leaf in O(1) amortized and
// give the root of the tree so far in O(log n), without reading the log.
class TreeFrontier {
public:
    // The empty tree.
    TreeFrontier() = default;

    // A tree of `size` leaves, from the hashes of frontier_nodes(size) in that order;
    // bad_arguments if their count is not the number of those nodes.
    static MerkleResult<TreeFrontier> resume(std::uint64_t size, std::span<const TreeHash> roots);
    // The same, asking the source for frontier_nodes(size).
    static MerkleResult<TreeFrontier> from_source(std::uint64_t size, NodeSource& source);

    // Appends the next leaf (index size()). Returns the complete subtrees it completed,
    // lowest first: the leaf itself (level 0), then each parent it completed up to the
    // new largest; 1 + the trailing one bits of the old size. Valid until the next call.
    std::span<const TreeNode> append(const TreeHash& leaf_hash);

    std::uint64_t size() const { return m_size; }
    // MTH of the leaves so far (empty_tree_root() for none).
    TreeHash root() const;
    // The perfect subtrees held, as frontier_nodes(size()) names them, with their hashes.
    std::vector<TreeNode> nodes() const;

private:
    std::uint64_t m_size = 0;
    std::array<TreeHash, 64> m_roots{}; // m_roots[level] is held iff bit `level` of m_size
    std::array<TreeNode, 64> m_completed{};
};

// The perfect subtrees of a run of leaves that starts anywhere (leaf first_leaf): what one
// part of a parallel pass over the log builds, and what joins the parts' runs after.
// Holds the run as the aligned perfect subtrees that cover it, in leaf order: at most
// two per level.
class TreeBuilder {
public:
    explicit TreeBuilder(std::uint64_t first_leaf = 0) : m_end(first_leaf) {}

    // Appends the next leaf (index end()). Returns the perfect subtrees completed by it:
    // the leaf itself (level 0), then each parent it completed, lowest first. Valid until
    // the next call.
    std::span<const TreeNode> append(const TreeHash& leaf_hash);
    // Appends the perfect subtree `node`, which must start at end() (std::invalid_argument
    // otherwise). Returns it, then each parent it completed, as append(leaf) does.
    std::span<const TreeNode> append(const TreeNode& node);

    std::uint64_t end() const { return m_end; }
    // The perfect subtrees that cover the run so far, in leaf order.
    const std::vector<TreeNode>& nodes() const { return m_nodes; }

private:
    std::uint64_t m_end;
    std::vector<TreeNode> m_nodes;
    std::vector<TreeNode> m_completed;
};

// MTH of the first `size` leaves, from the perfect subtrees that make it up.
MerkleResult<TreeHash> root_from_source(std::uint64_t size, NodeSource& source);

// RFC 9162 §2.1.3.1: the inclusion path of leaf `leaf_index` in the tree of `tree_size`
// leaves, from the leaf's sibling up to the root's child. bad_arguments unless
// leaf_index < tree_size.
MerkleResult<std::vector<TreeHash>> inclusion_proof(std::uint64_t leaf_index,
                                                    std::uint64_t tree_size, NodeSource& source);

// RFC 9162 §2.1.4.1: the consistency path from the tree of old_size leaves to that of
// new_size, PROOF(old_size, D[new_size]); empty if the sizes are equal. bad_arguments
// unless 0 < old_size <= new_size (the RFC proves consistency from a non-empty tree).
MerkleResult<std::vector<TreeHash>> consistency_proof(std::uint64_t old_size,
                                                      std::uint64_t new_size, NodeSource& source);

// The outcome of checking a proof: valid, or the step of the RFC's algorithm that failed.
// A valid proof ties the leaf (or the old tree) to the root; the size is tied to the root
// only by whoever vouches for both (a checkpoint signs them together): a path of the same
// shape also checks out against the same root at some other sizes.
struct ProofCheck {
    bool valid = false;
    std::string_view reason; // empty when valid
    explicit operator bool() const { return valid; }
};

// RFC 9162 §2.1.3.2, step for step.
ProofCheck verify_inclusion(std::uint64_t leaf_index, std::uint64_t tree_size,
                            const TreeHash& leaf_hash, std::span<const TreeHash> path,
                            const TreeHash& root);

// RFC 9162 §2.1.4.2, step for step, for 0 < old_size < new_size. For old_size ==
// new_size, the tree is its own extension: valid with an empty path and equal roots
// (PROOF(m, D[m]) is empty, §2.1.4.1). old_size 0 or above new_size is invalid.
ProofCheck verify_consistency(std::uint64_t old_size, std::uint64_t new_size,
                              const TreeHash& old_root, const TreeHash& new_root,
                              std::span<const TreeHash> path);

} // namespace flowgate::audit
