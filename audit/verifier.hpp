// The one chain verifier. The store's tail check at start, the auditor's full verify and
// each part of a parallel verify feed rows to a ChainVerifier, so a fault has one name
// wherever it is found: the first seq at which the log stops being the log that was
// written, and what is wrong there.
#pragma once

#include "audit/canonical.hpp"
#include "audit/error.hpp"
#include "audit/merkle.hpp"
#include "audit/parts.hpp"
#include "audit/reader.hpp"
#include "audit/record.hpp"
#include "audit/schema.hpp"
#include "audit/signing_key.hpp"
#include "audit/tree_checkpoint.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flowgate::audit {

// The first row at which the log stops being the log that was written.
struct ChainFault {
    std::uint64_t seq = 0; // the first bad sequence number
    std::string message;   // "altered: its hash does not match its contents", …
};

// "seq 5: altered: its hash does not match its contents".
std::string describe(const ChainFault& fault);

// The tail of a verified log, kept outside the file: one line "seq <N> hash <hex>".
struct Checkpoint {
    std::uint64_t seq = 0;
    std::string hash; // 64 lowercase hex digits
};
std::string format_checkpoint(const Checkpoint& checkpoint); // with a final newline
std::optional<Checkpoint> parse_checkpoint(std::string_view text);

// Checks rows fed in seq order from `first_seq` on: seqs without a gap, each row's
// stored prev_hash the hash of the row before, its hash recomputed from its fields, its
// kind and decision names a flowgate row can have, and, given a checkpoint, the
// checkpoint's row holding exactly the checkpoint's hash. From seq 1 the chain starts
// at 32 zero bytes; from a later seq the first row's stored prev_hash is taken as the
// link, and whoever holds the row before checks it (first_prev()). Rows are hashed as
// rows of a store of schema `version` (the reader's schema_version()).
class ChainVerifier {
public:
    explicit ChainVerifier(std::uint64_t first_seq = 1, const Checkpoint* checkpoint = nullptr,
                           int version = schema_version);

    // Checks the next row; false once a fault is found (the rows after it are not checked).
    bool add(const AuditRowView& row);
    // The Merkle leaf hash of the row add() last passed, in a store whose chain links
    // leaves (version 3 on: chain_links_leaves()).
    const TreeHash& leaf() const noexcept { return m_leaf; }
    // The rows fed should have reached `last_seq`; false if they stopped short.
    bool end_at(std::uint64_t last_seq);

    const std::optional<ChainFault>& fault() const noexcept { return m_fault; }
    std::uint64_t rows() const noexcept { return m_rows; }
    // first_seq - 1 until a row passed.
    std::uint64_t last_seq() const noexcept { return m_expected_seq - 1; }
    // The last passed row's hash (the link it starts from, before any).
    const ChainHash& last_hash() const noexcept { return m_prev; }
    // The stored prev_hash (hex) of the first row, once it was in sequence; empty before.
    std::string_view first_prev() const noexcept { return m_first_prev; }
    bool checkpoint_seen() const noexcept { return m_checkpoint_seen; }

private:
    bool fail(std::uint64_t seq, std::string_view message);

    std::uint64_t m_first_seq;
    int m_version;
    std::uint64_t m_expected_seq;
    const Checkpoint* m_checkpoint;
    std::optional<ChainHash> m_checkpoint_hash;
    std::optional<ChainFault> m_fault;
    std::uint64_t m_rows = 0;
    ChainHash m_prev = genesis_hash;
    char m_prev_hex[64]{};
    std::string m_first_prev;
    bool m_checkpoint_seen = false;
    ChainHasher m_hasher;
    TreeHasher m_tree_hasher;
    TreeHash m_leaf{};
    std::string m_canonical;
};

struct VerifyOptions {
    std::optional<Checkpoint> checkpoint;
    // Checkpoints of the tree kept outside the store (their notes' signatures checked by
    // whoever read them): the log must hold exactly each one's tree, as it must its
    // stored checkpoints'.
    std::vector<TreeCheckpoint> kept_checkpoints;
    // The log's verifier key: every stored checkpoint must be a note it signed.
    std::optional<VerifierKey> key;
    PassOptions pass;
};

struct VerifyResult {
    std::uint64_t rows = 0;          // rows checked before the fault, or all of them
    Checkpoint tail;                 // the last good row's seq and hash (0 and zeros when empty)
    std::optional<ChainFault> fault; // the first problem; none when the log is intact
    // The tree (a store of schema version 3 whose chain is intact): every node stored in
    // audit_tree recomputed from the rows, none missing and none extra, then every stored
    // checkpoint's origin, size and root held against the tree.
    bool tree_checked = false;
    std::uint64_t tree_nodes = 0;          // stored nodes that matched
    std::uint64_t checkpoints = 0;         // stored checkpoints that matched
    TreeHash tree_root{};                  // the root of the whole log's tree
    std::optional<std::string> tree_fault; // the first problem of the tree or a checkpoint
    std::uint64_t kept_checkpoints = 0;    // kept checkpoints whose trees the log holds
};

// Why the log of the reader's snapshot does not hold the tree of `checkpoint`, or "" when
// it does: another origin, fewer rows than the checkpoint's size (the log was truncated,
// or rebuilt from an older copy), or another root at that size (rows altered, or the log
// rebuilt). The tree is read as the store keeps it, in O(log n) nodes: verify_log() is
// what shows that the stored nodes are the rows'.
AuditResult<std::string> checkpoint_mismatch(AuditReader& reader, const TreeCheckpoint& checkpoint);

// The root of the log's tree of the first N rows, from wherever the log is kept.
using RootAt = std::function<AuditResult<TreeHash>(std::uint64_t size)>;

// checkpoint_mismatch for a log of `origin` and `rows` rows kept anywhere (the file, a
// central copy), its roots from `root_at`.
AuditResult<std::string> checkpoint_mismatch_of(const std::string& origin, std::uint64_t rows,
                                                const TreeCheckpoint& checkpoint,
                                                const RootAt& root_at);

// Why a stored checkpoint is not one of the log (of `origin`, `rows` rows, roots from
// `root_at`), or "" when it is: given a key, its note not signed by it; a note that
// is not a checkpoint, or of another size than it is stored under; then
// checkpoint_mismatch_of. The message names the checkpoint by its size and time.
AuditResult<std::string> stored_checkpoint_fault(const StoredCheckpoint& stored,
                                                 const std::string& origin, std::uint64_t rows,
                                                 const std::optional<VerifierKey>& key,
                                                 const RootAt& root_at);

// Verifies the whole log of the reader's snapshot (seqs from 1, every hash and link, each
// row hashed as its store's schema version has it),
// and, given a checkpoint, that row checkpoint.seq exists with exactly that hash: a
// log truncated or rebuilt since the checkpoint fails. With an intact chain, the tree
// and the stored checkpoints are checked in the same pass (VerifyResult::tree_fault). A long log is
// cut into parts (audit/parts.hpp) verified side by side, and the seams between them checked after;
// the first fault is the one a single pass finds.
AuditResult<VerifyResult> verify_log(AuditReader& reader, const VerifyOptions& options = {});

// verify_log on the file, through a reader of its own.
AuditResult<VerifyResult> verify_file(const std::filesystem::path& path,
                                      const VerifyOptions& options = {});

} // namespace flowgate::audit
