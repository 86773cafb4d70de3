// The tree's nodes as a store keeps them; see tree_store.hpp.
#include "audit/tree_store.hpp"

#include "audit/canonical.hpp"
#include "audit/schema.hpp"

#include <algorithm>
#include <cstring>

namespace flowgate::audit {

namespace outcome = boost::outcome_v2;

namespace {

constexpr std::uint64_t block_leaves = std::uint64_t{1} << tree_stored_from_level;

} // namespace

StoredTree::StoredTree(sqlite3* db, int version) : m_db(db), m_version(version) {}

MerkleResult<void> StoredTree::fail(AuditError error) {
    MerkleError out{MerkleErrc::source_failed, error.message};
    m_error = std::move(error);
    return outcome::failure(std::move(out));
}

MerkleResult<void> StoredTree::hashes(std::span<const NodeId> ids, std::span<TreeHash> out) {
    m_error.reset();
    for (std::size_t i = 0; i < ids.size(); ++i) {
        const bool kept = m_version >= 3 && ids[i].level >= tree_stored_from_level;
        if (auto got = kept ? stored(ids[i], out[i]) : from_rows(ids[i], out[i]); !got) {
            return got;
        }
    }
    return outcome::success();
}

MerkleResult<void> StoredTree::stored(const NodeId& id, TreeHash& out) {
    if (!m_node) {
        auto stmt = prepare(m_db, "SELECT hash FROM audit_tree WHERE end = ?1 AND level = ?2",
                            AuditErrc::bad_schema);
        if (!stmt) {
            return fail(stmt.error());
        }
        m_node = std::move(stmt).value();
    }
    sqlite3_stmt* stmt = m_node.get();
    sqlite3_reset(stmt);
    sqlite3_bind_int64(stmt, 1, static_cast<sqlite3_int64>(node_end(id)));
    sqlite3_bind_int(stmt, 2, static_cast<int>(id.level));
    const int step = sqlite3_step(stmt);
    if (step == SQLITE_ROW && sqlite3_column_bytes(stmt, 0) == static_cast<int>(out.size()) &&
        sqlite3_column_type(stmt, 0) == SQLITE_BLOB) {
        std::memcpy(out.data(), sqlite3_column_blob(stmt, 0), out.size());
        sqlite3_reset(stmt);
        return outcome::success();
    }
    sqlite3_reset(stmt);
    if (step == SQLITE_ROW) {
        return fail(AuditError{AuditErrc::broken_chain,
                               "the tree's stored node of level " + std::to_string(id.level) +
                                   " ending at size " + std::to_string(node_end(id)) +
                                   " is not a 32-byte hash"});
    }
    if (step == SQLITE_DONE) {
        return fail(AuditError{AuditErrc::broken_chain,
                               "the tree's node of level " + std::to_string(id.level) +
                                   " ending at size " + std::to_string(node_end(id)) +
                                   " is missing from audit_tree"});
    }
    return fail(sqlite_error(m_db, AuditErrc::unavailable, "reading the tree"));
}

// A node below the kept levels, or any node of a store that keeps none, from its rows;
// fails unless every one of them is there.
MerkleResult<void> StoredTree::from_rows(const NodeId& id, TreeHash& out) {
    if (id.level < tree_stored_from_level) {
        // Inside one block: hash from the block's leaves, read once.
        const std::uint64_t block = id.first_leaf() / block_leaves;
        if (!m_block || *m_block != block) {
            if (auto loaded = load_block(block); !loaded) {
                return loaded;
            }
        }
        const std::uint64_t offset = id.first_leaf() - block * block_leaves;
        if (offset + id.leaf_count() > m_leaves.size()) {
            return fail(AuditError{AuditErrc::broken_chain,
                                   "the log has no row " +
                                       std::to_string(id.first_leaf() + id.leaf_count())});
        }
        out = tree_root(std::span(m_leaves).subspan(offset, id.leaf_count()));
        return outcome::success();
    }
    // A store without a kept tree: every leaf of the node, block by block.
    m_range.clear();
    for (std::uint64_t block = id.first_leaf() / block_leaves;
         block < (id.first_leaf() + id.leaf_count()) / block_leaves; ++block) {
        if (auto loaded = load_block(block); !loaded) {
            return loaded;
        }
        if (m_leaves.size() != block_leaves) {
            return fail(AuditError{AuditErrc::broken_chain,
                                   "the log has no row " +
                                       std::to_string(block * block_leaves + m_leaves.size() + 1)});
        }
        m_range.insert(m_range.end(), m_leaves.begin(), m_leaves.end());
    }
    out = tree_root(m_range);
    return outcome::success();
}

MerkleResult<void> StoredTree::load_block(std::uint64_t block) {
    if (!m_rows) {
        auto select =
            RowSelect::prepare(m_db, m_version, "WHERE seq >= ?1 AND seq < ?2 ORDER BY seq");
        if (!select) {
            return fail(select.error());
        }
        m_rows.emplace(std::move(select).value());
    }
    m_block.reset();
    m_leaves.clear();
    m_rows->reset();
    sqlite3_stmt* stmt = m_rows->statement();
    const std::uint64_t first_seq = block * block_leaves + 1;
    sqlite3_bind_int64(stmt, 1, static_cast<sqlite3_int64>(first_seq));
    sqlite3_bind_int64(stmt, 2, static_cast<sqlite3_int64>(first_seq + block_leaves));
    for (;;) {
        auto row = m_rows->next();
        if (!row) {
            m_rows->reset();
            return fail(row.error());
        }
        if (!row.value() || row.value()->seq != first_seq + m_leaves.size()) {
            break; // the end, or a gap: the leaves stop before it
        }
        canonical_row_bytes(*row.value(), m_version, m_canonical);
        m_leaves.push_back(m_hasher.leaf(m_canonical));
    }
    m_rows->reset();
    m_block = block;
    return outcome::success();
}

AuditError tree_error(const MerkleError& error, const StoredTree& source) {
    if (error.code == MerkleErrc::source_failed && source.error()) {
        return *source.error();
    }
    return AuditError{AuditErrc::bad_schema, error.message};
}

} // namespace flowgate::audit
