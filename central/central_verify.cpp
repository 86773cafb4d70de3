// The central store's verify; see central_verify.hpp.
#include "central/central_verify.hpp"

#include "audit/merkle.hpp"
#include "audit/tree_store.hpp"
#include "central/central_log.hpp"

#include <map>

namespace flowgate::central {

namespace {

std::string node_name(std::uint64_t end, unsigned level) {
    return "the tree's node of level " + std::to_string(level) + " ending at size " +
           std::to_string(end);
}

using NodeKey = std::pair<std::uint64_t, unsigned>; // end, level

CentralResult<std::map<NodeKey, std::string>> central_nodes(Connection& conn,
                                                            const std::string& origin) {
    auto nodes = conn.exec("SELECT end_size, level, hash FROM flowgate_tree WHERE origin = $1",
                           Params().text(origin), true);
    if (!nodes) {
        return nodes.error();
    }
    std::map<NodeKey, std::string> out;
    for (int i = 0; i < PQntuples(nodes.value().get()); ++i) {
        out.emplace(NodeKey{static_cast<std::uint64_t>(binary_integer(nodes.value(), i, 0)),
                            static_cast<unsigned>(binary_integer(nodes.value(), i, 1))},
                    std::string(value(nodes.value(), i, 2)));
    }
    return out;
}

CentralResult<std::vector<audit::StoredCheckpoint>> central_checkpoints(Connection& conn,
                                                                        const std::string& origin) {
    auto rows = conn.exec("SELECT tree_size, time_us, note FROM flowgate_checkpoint WHERE "
                          "origin = $1 ORDER BY tree_size, time_us",
                          Params().text(origin), true);
    if (!rows) {
        return rows.error();
    }
    std::vector<audit::StoredCheckpoint> out;
    for (int i = 0; i < PQntuples(rows.value().get()); ++i) {
        out.push_back(audit::StoredCheckpoint{
            static_cast<std::uint64_t>(binary_integer(rows.value(), i, 0)),
            binary_integer(rows.value(), i, 1), std::string(value(rows.value(), i, 2))});
    }
    return out;
}

} // namespace

CentralResult<CentralVerifyResult> verify_origin(Connection& conn, const std::string& origin,
                                                 const std::optional<audit::VerifierKey>& key) {
    auto nodes = central_nodes(conn, origin);
    if (!nodes) {
        return nodes.error();
    }
    auto checkpoints = central_checkpoints(conn, origin);
    if (!checkpoints) {
        return checkpoints.error();
    }
    std::map<std::uint64_t, audit::TreeHash> roots;
    for (const audit::StoredCheckpoint& stored : checkpoints.value()) {
        roots.emplace(stored.tree_size, audit::TreeHash{});
    }
    CentralVerifyResult out;
    audit::VerifyResult& result = out.log;
    std::optional<audit::ChainVerifier> verifier;
    audit::TreeFrontier frontier;
    std::map<NodeKey, std::string>& stored_nodes = nodes.value();
    auto walked = for_each_central_row(conn, origin, [&](const CentralRow& row) {
        if (!verifier) {
            verifier.emplace(1, nullptr, row.schema_version);
        }
        if (!row.decoded) {
            result.fault = audit::ChainFault{row.seq, "its canonical bytes are not a row's"};
            return false;
        }
        if (row.row.seq != row.seq) {
            result.fault = audit::ChainFault{row.seq, "its canonical bytes are of seq " +
                                                          std::to_string(row.row.seq)};
            return false;
        }
        if (!verifier->add(row.row)) {
            return false;
        }
        if (std::string mismatch = search_column_mismatch(row); !mismatch.empty()) {
            result.fault = audit::ChainFault{row.seq, mismatch};
            return false;
        }
        for (const audit::TreeNode& node : frontier.append(verifier->leaf())) {
            if (node.id.level < audit::tree_stored_from_level) {
                continue;
            }
            const NodeKey node_key{audit::node_end(node.id), node.id.level};
            const auto there = stored_nodes.find(node_key);
            if (there == stored_nodes.end()) {
                result.tree_fault =
                    node_name(node_key.first, node_key.second) + " is missing from flowgate_tree";
            } else if (there->second != audit::hash_bytes(node.hash)) {
                result.tree_fault = node_name(node_key.first, node_key.second) +
                                    " differs from the one its rows give: the tree was altered";
            } else {
                stored_nodes.erase(there);
                ++result.tree_nodes;
            }
        }
        if (const auto root = roots.find(row.seq); root != roots.end()) {
            root->second = frontier.root();
        }
        return !result.tree_fault;
    });
    if (!walked) {
        return walked.error();
    }
    if (verifier) {
        result.rows = verifier->rows();
        result.tail.seq = verifier->last_seq();
        if (!result.fault && verifier->fault()) {
            result.fault = verifier->fault();
        }
        result.tail.hash = audit::to_hex(verifier->last_hash());
    } else {
        result.tail.hash = std::string(audit::genesis_hex);
    }
    if (result.fault || result.tree_fault) {
        return out;
    }
    if (!stored_nodes.empty()) {
        const NodeKey& extra = stored_nodes.begin()->first;
        result.tree_fault =
            node_name(extra.first, extra.second) + " is not a node of the log's rows";
        return out;
    }
    result.tree_checked = true;
    result.tree_root = frontier.root();
    std::uint64_t covered = 0;
    for (const audit::StoredCheckpoint& stored : checkpoints.value()) {
        auto fault = audit::stored_checkpoint_fault(
            stored, origin, result.rows, key,
            [&](std::uint64_t size) -> audit::AuditResult<audit::TreeHash> {
                if (const auto root = roots.find(size);
                    root != roots.end() && size <= result.rows && size > 0) {
                    return root->second;
                }
                return audit::empty_tree_root();
            });
        if (!fault) {
            return CentralError{CentralErrc::refused, fault.error().message};
        }
        if (!fault.value().empty()) {
            result.tree_fault = std::move(fault).value();
            return out;
        }
        ++result.checkpoints;
        covered = std::max(covered, stored.tree_size);
    }
    out.rows_past_checkpoints = result.rows - covered;
    return out;
}

} // namespace flowgate::central
