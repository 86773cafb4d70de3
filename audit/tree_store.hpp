// Where a store keeps its Merkle tree (audit/merkle.hpp has the tree itself): the
// complete perfect subtrees of level tree_stored_from_level and above, in audit_tree,
// keyed by the tree size at which each completed and its level, so that the writer's
// inserts land at the table's right edge as the rows' do; lower levels are hashed from
// the rows' canonical bytes when asked. A store of schema version 1 or 2 keeps no tree:
// every node of it is hashed from its rows (correct, and linear in the node's size).
#pragma once

#include "audit/error.hpp"
#include "audit/merkle.hpp"
#include "audit/row_select.hpp"
#include "audit/sqlite.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace flowgate::audit {

// The lowest level whose complete subtrees the store keeps: about n/8 nodes for n rows,
// and a node below it is hashed from at most 2^4 = 16 rows.
inline constexpr unsigned tree_stored_from_level = 4;

// A perfect subtree's key in audit_tree: the tree size at which it completed.
inline std::uint64_t node_end(const NodeId& id) {
    return (id.index + 1) << id.level;
}

// The tree of one store, read through a connection the caller owns (a reader's snapshot,
// or the writer's own connection inside its transaction). Reads each 16-row block of
// leaves at most once per call.
class StoredTree final : public NodeSource {
public:
    // `version`: the store's schema version (its rows' canonical bytes, and whether it
    // keeps a tree at all).
    StoredTree(sqlite3* db, int version);

    MerkleResult<void> hashes(std::span<const NodeId> ids, std::span<TreeHash> out) override;

    // The AuditError behind the last source_failed (an SQLite failure, or a stored node
    // that is missing), for a caller that reports in the store's terms.
    const std::optional<AuditError>& error() const noexcept { return m_error; }

private:
    MerkleResult<void> fail(AuditError error);
    MerkleResult<void> stored(const NodeId& id, TreeHash& out);
    MerkleResult<void> from_rows(const NodeId& id, TreeHash& out);
    MerkleResult<void> load_block(std::uint64_t block);

    sqlite3* m_db;
    int m_version;
    Stmt m_node;
    std::optional<RowSelect> m_rows;
    std::optional<std::uint64_t> m_block; // the block whose leaf hashes m_leaves holds
    std::vector<TreeHash> m_leaves;
    std::vector<TreeHash> m_range; // leaf hashes of a node hashed from many rows
    std::string m_canonical;
    TreeHasher m_hasher;
    std::optional<AuditError> m_error;
};

// An error of the tree in the store's terms: the source's own error when it failed,
// else bad_schema with the tree's message (a size the tree does not have, say).
AuditError tree_error(const MerkleError& error, const StoredTree& source);

} // namespace flowgate::audit
