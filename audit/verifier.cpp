// The chain verifier and the whole-log verify; see verifier.hpp and docs/audit-store.md.
// A verify reads every row once: the per-row work compares fixed-size hex buffers and
// hashes with a reused context, without an allocation.
#include "audit/verifier.hpp"

#include "audit/signed_note.hpp"
#include "audit/tree_checkpoint.hpp"
#include "audit/tree_store.hpp"

#include <map>

#include <charconv>
#include <cstring>

namespace flowgate::audit {

namespace outcome = boost::outcome_v2;

namespace {

// The ways a row fails to follow the one before, in the words every pass uses.
constexpr std::string_view not_linked = "does not link to the row before it (prev_hash is not "
                                        "that row's hash: a row was removed, inserted or "
                                        "reordered)";
constexpr std::string_view not_hex =
    "does not link to the row before it (prev_hash is not 64 hex digits)";

std::string missing(std::uint64_t seq) {
    return "missing: no row has seq " + std::to_string(seq) + " (rows were removed)";
}

} // namespace

std::string describe(const ChainFault& fault) {
    return "seq " + std::to_string(fault.seq) + ": " + fault.message;
}

std::string format_checkpoint(const Checkpoint& checkpoint) {
    return "seq " + std::to_string(checkpoint.seq) + " hash " + checkpoint.hash + "\n";
}

std::optional<Checkpoint> parse_checkpoint(std::string_view text) {
    auto word = [&text]() {
        const auto begin = text.find_first_not_of(" \t\r\n");
        if (begin == std::string_view::npos) {
            text = {};
            return std::string_view();
        }
        text.remove_prefix(begin);
        const auto end = std::min(text.find_first_of(" \t\r\n"), text.size());
        std::string_view out = text.substr(0, end);
        text.remove_prefix(end);
        return out;
    };
    Checkpoint checkpoint;
    if (word() != "seq") {
        return std::nullopt;
    }
    const std::string_view seq = word();
    auto [end, error] = std::from_chars(seq.data(), seq.data() + seq.size(), checkpoint.seq);
    if (error != std::errc() || end != seq.data() + seq.size() || checkpoint.seq == 0) {
        return std::nullopt;
    }
    if (word() != "hash") {
        return std::nullopt;
    }
    checkpoint.hash = std::string(word());
    if (!hash_from_hex(checkpoint.hash) || !word().empty()) {
        return std::nullopt;
    }
    return checkpoint;
}

ChainVerifier::ChainVerifier(std::uint64_t first_seq, const Checkpoint* checkpoint, int version)
    : m_first_seq(first_seq), m_version(version), m_expected_seq(first_seq),
      m_checkpoint(checkpoint) {
    to_hex(m_prev, m_prev_hex);
    if (m_checkpoint != nullptr) {
        m_checkpoint_hash = hash_from_hex(m_checkpoint->hash);
    }
    m_canonical.reserve(4096);
}

bool ChainVerifier::fail(std::uint64_t seq, std::string_view message) {
    m_fault = ChainFault{seq, std::string(message)};
    return false;
}

bool ChainVerifier::add(const AuditRowView& row) {
    if (m_fault) {
        return false;
    }
    if (row.seq != m_expected_seq) {
        if (row.seq > m_expected_seq) {
            return fail(m_expected_seq, missing(m_expected_seq));
        }
        return fail(m_expected_seq, "out of sequence: a row numbered " +
                                        std::to_string(static_cast<std::int64_t>(row.seq)) +
                                        " where seq " + std::to_string(m_expected_seq) +
                                        " belongs");
    }
    if (m_rows == 0 && m_first_seq != 1) {
        // The link into these rows is the caller's to check, against the row before.
        const auto given = hash_from_hex(row.prev_hash);
        if (!given) {
            return fail(row.seq, not_hex);
        }
        m_first_prev = std::string(row.prev_hash);
        m_prev = *given;
        std::memcpy(m_prev_hex, row.prev_hash.data(), sizeof m_prev_hex);
    }
    if (row.prev_hash != std::string_view(m_prev_hex, sizeof m_prev_hex)) {
        if (row.seq == 1) {
            return fail(row.seq, "does not start the chain (prev_hash is not 32 zero bytes)");
        }
        if (!hash_from_hex(row.prev_hash)) {
            return fail(row.seq, not_hex);
        }
        return fail(row.seq, not_linked);
    }
    if (!parse_audit_kind(row.kind) || !parse_audit_decision(row.decision)) {
        return fail(row.seq, "unknown kind '" + std::string(row.kind) + "' or decision '" +
                                 std::string(row.decision) + "': not a row flowgate writes");
    }
    canonical_row_bytes(row, m_version, m_canonical);
    ChainHash digest;
    if (chain_links_leaves(m_version)) {
        m_leaf = m_tree_hasher.leaf(m_canonical);
        digest = m_hasher.hash(m_prev, hash_bytes(m_leaf));
    } else {
        digest = m_hasher.hash(m_prev, m_canonical);
    }
    to_hex(digest, m_prev_hex);
    if (row.hash != std::string_view(m_prev_hex, sizeof m_prev_hex)) {
        return fail(row.seq, "altered: its hash does not match its contents");
    }
    if (m_checkpoint != nullptr && row.seq == m_checkpoint->seq) {
        m_checkpoint_seen = true;
        if (!m_checkpoint_hash || digest != *m_checkpoint_hash) {
            return fail(row.seq, "differs from the checkpoint (hash " + m_checkpoint->hash +
                                     "): the log was rebuilt or replaced since");
        }
    }
    m_prev = digest;
    ++m_expected_seq;
    ++m_rows;
    return true;
}

bool ChainVerifier::end_at(std::uint64_t last_seq) {
    if (m_fault) {
        return false;
    }
    if (m_expected_seq <= last_seq) {
        return fail(m_expected_seq, missing(m_expected_seq));
    }
    return true;
}

namespace {

// A node as audit_tree holds it, in the table's (end, level) order.
struct StoredNode {
    std::uint64_t end = 0;
    unsigned level = 0;
    TreeHash hash{};
    bool well_formed = false; // a 32-byte hash of a level and end a node can have
    auto key() const { return std::pair{end, level}; }
};

std::string node_name(std::uint64_t end, unsigned level) {
    return "the tree's node of level " + std::to_string(level) + " ending at size " +
           std::to_string(end);
}

// Compares the nodes one part of the log completes (in the order a TreeBuilder completes
// them: by end, then level) with audit_tree's rows of the same ends, read alongside. A
// stored node that starts before the part spans the seam with the part before: it is
// kept for the seams' check.
class PartTree {
public:
    PartTree(sqlite3* db, std::uint64_t first_leaf, std::optional<std::uint64_t> last_leaf_end)
        : m_builder(first_leaf), m_first_leaf(first_leaf) {
        auto stmt = prepare(db,
                            "SELECT end, level, hash FROM audit_tree WHERE end > ?1 AND end <= ?2 "
                            "ORDER BY end, level",
                            AuditErrc::bad_schema);
        if (!stmt) {
            m_error = stmt.error();
            return;
        }
        m_stmt = std::move(stmt).value();
        sqlite3_bind_int64(m_stmt.get(), 1, static_cast<sqlite3_int64>(first_leaf));
        sqlite3_bind_int64(m_stmt.get(), 2,
                           last_leaf_end ? static_cast<sqlite3_int64>(*last_leaf_end) : INT64_MAX);
        m_db = db;
        next();
    }

    // The next row's leaf; false once a fault is found.
    bool add(const TreeHash& leaf) {
        if (m_fault || m_error) {
            return false;
        }
        for (const TreeNode& node : m_builder.append(leaf)) {
            if (node.id.level >= tree_stored_from_level && !expect(node)) {
                return false;
            }
        }
        return true;
    }

    // After the part's last row: every stored node left is one that no row completed.
    void finish() {
        while (!m_fault && !m_error && m_current) {
            skip_unmatched();
        }
    }

    const std::optional<std::string>& fault() const { return m_fault; }
    const std::optional<AuditError>& error() const { return m_error; }
    std::uint64_t matched() const { return m_matched; }
    const std::vector<TreeNode>& nodes() const { return m_builder.nodes(); }
    std::vector<StoredNode>& seam_nodes() { return m_seam; }

private:
    bool expect(const TreeNode& node) {
        const std::pair key{node_end(node.id), node.id.level};
        while (!m_fault && !m_error && m_current && m_current->key() < key) {
            skip_unmatched();
        }
        if (m_fault || m_error) {
            return false;
        }
        if (!m_current || m_current->key() != key) {
            m_fault = node_name(key.first, key.second) + " is missing from audit_tree";
            return false;
        }
        if (m_current->hash != node.hash) {
            m_fault = node_name(key.first, key.second) +
                      " differs from the one its rows give: the tree was altered";
            return false;
        }
        ++m_matched;
        next();
        return true;
    }

    // The current stored node has no node of this part's rows to match.
    void skip_unmatched() {
        const StoredNode& node = *m_current;
        if (node.well_formed && node.end - (std::uint64_t{1} << node.level) < m_first_leaf) {
            m_seam.push_back(node);
        } else if (node.well_formed && node.end <= m_builder.end()) {
            m_fault = node_name(node.end, node.level) + " is not a node of the log's rows";
            return;
        } else {
            m_fault = node_name(node.end, node.level) +
                      " is not a node of a tree of the log's rows (past its last row, or "
                      "malformed)";
            return;
        }
        next();
    }

    void next() {
        const int step = sqlite3_step(m_stmt.get());
        if (step == SQLITE_ROW) {
            sqlite3_stmt* row = m_stmt.get();
            StoredNode node;
            const auto end = sqlite3_column_int64(row, 0);
            const auto level = sqlite3_column_int64(row, 1);
            node.end = static_cast<std::uint64_t>(end);
            node.level = static_cast<unsigned>(std::clamp<sqlite3_int64>(level, 0, 64));
            node.well_formed = sqlite3_column_type(row, 2) == SQLITE_BLOB &&
                               sqlite3_column_bytes(row, 2) == 32 && end > 0 &&
                               level >= tree_stored_from_level && level < 63 &&
                               (node.end & ((std::uint64_t{1} << node.level) - 1)) == 0;
            if (node.well_formed) {
                std::memcpy(node.hash.data(), sqlite3_column_blob(row, 2), node.hash.size());
            }
            m_current = node;
        } else if (step == SQLITE_DONE) {
            m_current.reset();
        } else {
            m_error = sqlite_error(m_db, AuditErrc::unavailable, "reading the tree");
            m_current.reset();
        }
    }

    TreeBuilder m_builder;
    std::uint64_t m_first_leaf;
    sqlite3* m_db = nullptr;
    Stmt m_stmt;
    std::optional<StoredNode> m_current;
    std::vector<StoredNode> m_seam;
    std::optional<std::string> m_fault;
    std::optional<AuditError> m_error;
    std::uint64_t m_matched = 0;
};

// What one part of the log says about the chain.
struct PartCheck {
    std::optional<ChainFault> fault;
    std::uint64_t rows = 0;
    std::string first_prev; // the first row's stored prev_hash, if it was in sequence
    std::uint64_t first_seq = 0;
    std::uint64_t last_seq = 0;
    ChainHash last_hash{};
    bool checkpoint_seen = false;
    // The tree, for a store that keeps one.
    std::optional<std::string> tree_fault;
    std::uint64_t tree_nodes = 0;
    std::vector<TreeNode> tree_run;     // the part's rows as perfect subtrees
    std::vector<StoredNode> seam_nodes; // stored nodes that start before the part
};

AuditResult<PartCheck> check_part(AuditReader& reader, const Part& part,
                                  const std::optional<Checkpoint>& checkpoint,
                                  RowCounter& counter) {
    ChainVerifier verifier(part.start, checkpoint ? &*checkpoint : nullptr,
                           reader.schema_version());
    std::optional<PartTree> tree;
    if (reader.schema_version() >= 3) {
        tree.emplace(reader.connection(), part.start - 1, part.end);
        if (tree->error()) {
            return *tree->error();
        }
    }
    bool tree_going = tree.has_value();
    auto walked = reader.for_each_row(part.range, [&](const AuditRowView& row) {
        counter.row();
        if (!verifier.add(row)) {
            return false;
        }
        if (tree_going) {
            tree_going = tree->add(verifier.leaf());
        }
        return true;
    });
    if (!walked) {
        return walked.error();
    }
    if (part.end) {
        verifier.end_at(*part.end);
    }
    PartCheck out;
    if (tree) {
        tree->finish();
        if (tree->error()) {
            return *tree->error();
        }
        out.tree_fault = tree->fault();
        out.tree_nodes = tree->matched();
        out.tree_run = tree->nodes();
        out.seam_nodes = std::move(tree->seam_nodes());
    }
    out.fault = verifier.fault();
    out.rows = verifier.rows();
    out.first_prev = std::string(verifier.first_prev());
    out.first_seq = part.start;
    out.last_seq = verifier.last_seq();
    out.last_hash = verifier.last_hash();
    out.checkpoint_seen = verifier.checkpoint_seen();
    return out;
}

// checkpoint_mismatch_of with the whole log's root at hand, other roots from the reader's tree.
AuditResult<std::string> mismatch_in(AuditReader& reader, const std::string& origin,
                                     const TreeCheckpoint& checkpoint, const VerifyResult& log) {
    return checkpoint_mismatch_of(origin, log.rows, checkpoint, [&](std::uint64_t size) {
        return size == log.rows ? AuditResult<TreeHash>(log.tree_root) : reader.tree_root(size);
    });
}

// Joins the parts' runs into the whole log's tree, comparing the stored nodes that span
// their seams, then holds each stored checkpoint against the tree. Fills the result's
// tree fields.
AuditResult<void> check_tree(AuditReader& reader, std::vector<PartCheck>& parts,
                             const std::optional<VerifierKey>& key,
                             const std::vector<TreeCheckpoint>& kept, VerifyResult& result) {
    result.tree_checked = true;
    std::map<std::pair<std::uint64_t, unsigned>, StoredNode> seam;
    for (PartCheck& part : parts) {
        for (const StoredNode& node : part.seam_nodes) {
            seam.emplace(node.key(), node);
        }
    }
    TreeBuilder whole;
    for (PartCheck& part : parts) {
        result.tree_nodes += part.tree_nodes;
        if (part.tree_fault) {
            result.tree_fault = part.tree_fault;
            return outcome::success();
        }
        for (const TreeNode& run_node : part.tree_run) {
            const auto completed = whole.append(run_node);
            for (const TreeNode& node : completed.subspan(1)) {
                if (node.id.level < tree_stored_from_level) {
                    continue;
                }
                const auto there = seam.find(std::pair{node_end(node.id), node.id.level});
                if (there == seam.end()) {
                    result.tree_fault =
                        node_name(node_end(node.id), node.id.level) + " is missing from audit_tree";
                    return outcome::success();
                }
                if (there->second.hash != node.hash) {
                    result.tree_fault = node_name(node_end(node.id), node.id.level) +
                                        " differs from the one its rows give: the tree was altered";
                    return outcome::success();
                }
                ++result.tree_nodes;
                seam.erase(there);
            }
        }
    }
    if (!seam.empty()) {
        const StoredNode& node = seam.begin()->second;
        result.tree_fault = node_name(node.end, node.level) + " is not a node of the log's rows";
        return outcome::success();
    }
    // The whole tree's root from the run's perfect subtrees, largest first.
    const std::vector<TreeNode>& run = whole.nodes();
    result.tree_root = empty_tree_root();
    if (!run.empty()) {
        result.tree_root = run.back().hash;
        for (std::size_t i = run.size() - 1; i-- > 0;) {
            result.tree_root = node_hash(run[i].hash, result.tree_root);
        }
    }
    // The stored nodes are now those of the rows, so the roots they give are the rows'.
    auto origin = reader.origin();
    if (!origin) {
        return origin.error();
    }
    auto checkpoints = reader.checkpoints();
    if (!checkpoints) {
        return checkpoints.error();
    }
    for (const StoredCheckpoint& stored : checkpoints.value()) {
        auto fault = stored_checkpoint_fault(
            stored, origin.value(), result.rows, key, [&](std::uint64_t size) {
                return size == result.rows ? AuditResult<TreeHash>(result.tree_root)
                                           : reader.tree_root(size);
            });
        if (!fault) {
            return fault.error();
        }
        if (!fault.value().empty()) {
            result.tree_fault = std::move(fault).value();
            return outcome::success();
        }
        ++result.checkpoints;
    }
    for (std::size_t i = 0; i < kept.size(); ++i) {
        auto mismatch = mismatch_in(reader, origin.value(), kept[i], result);
        if (!mismatch) {
            return mismatch.error();
        }
        if (!mismatch.value().empty()) {
            result.tree_fault =
                "the checkpoint of size " + std::to_string(kept[i].size) + " kept outside" +
                (kept.size() > 1 ? " (number " + std::to_string(i + 1) + ")" : std::string()) +
                " " + mismatch.value();
            return outcome::success();
        }
        ++result.kept_checkpoints;
    }
    return outcome::success();
}

} // namespace

AuditResult<std::string> checkpoint_mismatch_of(const std::string& origin, std::uint64_t rows,
                                                const TreeCheckpoint& checkpoint,
                                                const RootAt& root_at) {
    if (checkpoint.origin != origin) {
        return "names origin '" + checkpoint.origin + "', not the store's ('" + origin +
               "'): another log, or this one rebuilt";
    }
    if (checkpoint.size > rows) {
        return "is of more rows than the log holds (" + std::to_string(rows) +
               "): the log was truncated, or rebuilt from an older copy";
    }
    auto root = root_at(checkpoint.size);
    if (!root) {
        return root.error();
    }
    if (root.value() != checkpoint.root) {
        return std::string("holds a root that is not the tree's at that size: rows were "
                           "altered, or the log rebuilt");
    }
    return std::string();
}

AuditResult<std::string> stored_checkpoint_fault(const StoredCheckpoint& stored,
                                                 const std::string& origin, std::uint64_t rows,
                                                 const std::optional<VerifierKey>& key,
                                                 const RootAt& root_at) {
    const std::string where = "the checkpoint of size " + std::to_string(stored.tree_size) +
                              " stored at " + std::to_string(stored.time_us);
    if (key) {
        if (auto opened = open_note(stored.note, std::span(&*key, 1)); !opened) {
            return where + " is not signed by the key given: " + opened.error().message;
        }
    }
    auto parsed = parse_tree_checkpoint(note_text_unchecked(stored.note));
    if (!parsed) {
        return where + " is not a checkpoint: " + parsed.error().message;
    }
    if (parsed.value().size != stored.tree_size) {
        return where + " names size " + std::to_string(parsed.value().size) + ", not the store's";
    }
    auto mismatch = checkpoint_mismatch_of(origin, rows, parsed.value(), root_at);
    if (!mismatch) {
        return mismatch.error();
    }
    if (!mismatch.value().empty()) {
        return where + " " + mismatch.value();
    }
    return std::string();
}

AuditResult<std::string> checkpoint_mismatch(AuditReader& reader,
                                             const TreeCheckpoint& checkpoint) {
    auto origin = reader.origin();
    if (!origin) {
        return origin.error();
    }
    auto last = reader.last_seq();
    if (!last) {
        return last.error();
    }
    VerifyResult log;
    log.rows = last.value();
    if (checkpoint.size == log.rows) {
        auto root = reader.tree_root(log.rows);
        if (!root) {
            return root.error();
        }
        log.tree_root = root.value();
    }
    return mismatch_in(reader, origin.value(), checkpoint, log);
}

AuditResult<VerifyResult> verify_log(AuditReader& reader, const VerifyOptions& options) {
    auto last = reader.last_seq();
    if (!last) {
        return last.error();
    }
    auto parts =
        run_parts<PartCheck>(reader, last.value(), options.pass,
                             [&options](AuditReader& own, const Part& part, RowCounter& counter) {
                                 return check_part(own, part, options.checkpoint, counter);
                             });
    if (!parts) {
        return parts.error();
    }
    // Each part took its first row's link as given: the seams are checked here, in seq
    // order, so the first fault reported is the first a single pass would find.
    VerifyResult result;
    ChainHash prev = genesis_hash;
    bool checkpoint_seen = false;
    for (const PartCheck& part : parts.value()) {
        if (!part.first_prev.empty() && part.first_prev != to_hex(prev)) {
            result.fault = ChainFault{part.first_seq, std::string(not_linked)};
            break;
        }
        result.rows += part.rows;
        checkpoint_seen = checkpoint_seen || part.checkpoint_seen;
        if (part.rows > 0) {
            prev = part.last_hash;
            result.tail.seq = part.last_seq;
        }
        if (part.fault) {
            result.fault = part.fault;
            break;
        }
    }
    result.tail.hash = to_hex(prev);
    if (!result.fault && reader.schema_version() >= 3) {
        if (auto checked =
                check_tree(reader, parts.value(), options.key, options.kept_checkpoints, result);
            !checked) {
            return checked.error();
        }
    }
    if (!result.fault && reader.schema_version() < 3 && !options.kept_checkpoints.empty()) {
        result.tree_fault = "the store is of schema version " +
                            std::to_string(reader.schema_version()) +
                            ", which has no checkpoints: a checkpoint of a tree cannot be of it";
    }
    if (!result.fault && options.checkpoint && !checkpoint_seen) {
        result.fault = ChainFault{result.tail.seq + 1, "truncated: the log ends at seq " +
                                                           std::to_string(result.tail.seq) +
                                                           " but the checkpoint holds seq " +
                                                           std::to_string(options.checkpoint->seq)};
    }
    return result;
}

AuditResult<VerifyResult> verify_file(const std::filesystem::path& path,
                                      const VerifyOptions& options) {
    auto reader = AuditReader::open(path);
    if (!reader) {
        return reader.error();
    }
    return verify_log(*reader.value(), options);
}

} // namespace flowgate::audit
