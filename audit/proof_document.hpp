// The auditor's receipts: JSON documents that prove, to whoever holds the log's verifier
// key and nothing else, that a row is in the log (an inclusion proof), that the log at
// one signed checkpoint extends the log at an earlier one (a consistency proof), or that
// each of one person's records is in the log (their inclusion proofs against one
// checkpoint). `flowgate audit prove`, `consistency` and `records --proofs` write them,
// `flowgate audit verify-proof` checks them, and docs/audit-store.md specifies them for
// verifiers in other languages. A document carries everything its check needs: the
// row's columns (so its canonical bytes, and so its leaf, are recomputed from the
// document alone), the RFC 9162 path, and the signed checkpoint the path leads to.
#pragma once

#include "audit/merkle.hpp"
#include "audit/record.hpp"
#include "audit/signing_key.hpp"
#include "audit/tree_checkpoint.hpp"

#include <boost/outcome/basic_result.hpp>
#include <boost/outcome/policy/terminate.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace flowgate::audit {

// One row and the path from its leaf to the root of a tree that holds it.
struct RowProof {
    int schema_version = 0;       // of the store: which columns the canonical bytes cover
    AuditRecord row;              // its prev_hash is not carried (nor hashed)
    std::uint64_t leaf_index = 0; // seq - 1
    TreeHash leaf_hash{};
    std::vector<TreeHash> inclusion_path; // RFC 9162 §2.1.3.1, from the leaf's sibling up
};

// {"proof":"inclusion", "schema_version", "row", "leaf_index", "leaf_hash", "tree_size",
//  "inclusion_path", "checkpoint"}: one row in the tree of a signed checkpoint.
struct InclusionDocument {
    RowProof proof;
    std::uint64_t tree_size = 0;
    std::string checkpoint; // the signed note whose tree the path leads to
};

// {"proof":"consistency", "old_size", "old_root", "new_size", "new_root",
//  "consistency_path", "old_checkpoint", "new_checkpoint"}.
struct ConsistencyDocument {
    std::uint64_t old_size = 0;
    TreeHash old_root{};
    std::uint64_t new_size = 0;
    TreeHash new_root{};
    std::vector<TreeHash> consistency_path; // RFC 9162 §2.1.4.1
    std::string old_checkpoint;
    std::string new_checkpoint;
};

// {"proof":"subject", "subject", "tree_size", "checkpoint", "records": [{"schema_version",
//  "row", "leaf_index", "leaf_hash", "inclusion_path"}, ...]}: the rows about one person,
// each proved against the one checkpoint, so that the person checks them without
// anyone else's rows.
struct SubjectDocument {
    std::string subject;
    std::uint64_t tree_size = 0;
    std::string checkpoint;
    std::vector<RowProof> records;
};

using ProofDocument = std::variant<InclusionDocument, ConsistencyDocument, SubjectDocument>;

enum class ProofErrc {
    not_a_document, // not JSON, or not an object with a "proof" this library knows
    invalid,        // a document that does not prove what it says: the check that failed
};

struct ProofError {
    ProofErrc code = ProofErrc::invalid;
    std::string message;
};

template <class T>
using ProofResult =
    boost::outcome_v2::basic_result<T, ProofError, boost::outcome_v2::policy::terminate>;

// A hash as the documents (and the checkpoints) write it: RFC 4648 base64, padded.
std::string base64_of(const TreeHash& hash);

// The proof of `row` (of a store of schema `version`) with its inclusion path (from
// inclusion_proof() of leaf row.seq - 1): its leaf index and leaf hash computed.
RowProof row_proof(const AuditRowView& row, int version, std::vector<TreeHash> inclusion_path);

// One line of JSON with a final newline; hashes in base64.
std::string format_proof_document(const ProofDocument& document);

// The document a text holds. Members missing, of the wrong type, or with a hash that is
// not 32 bytes of base64 are `invalid`, naming the member; so is a member the form does
// not have.
ProofResult<ProofDocument> parse_proof_document(std::string_view text);

// What a valid document proves.
struct VerifiedProof {
    std::string kind;                // inclusion, consistency, subject
    TreeCheckpoint checkpoint;       // the (new) checkpoint, its signature verified
    std::string signer;              // the verifier key's name
    std::uint64_t old_size = 0;      // consistency: the old checkpoint's size
    std::vector<std::uint64_t> seqs; // inclusion, subject: the rows proved
};

// Checks a document against the log's verifier key, offline, each step a failure of its
// own (`invalid`, saying which):
// - every checkpoint is a signed note with a valid signature by `key`, over a
//   tlog-checkpoint body; a consistency document's two are of one origin;
// - the sizes (and the roots) the document states are the checkpoints';
// - each row's leaf index is its seq - 1, its canonical bytes (canonical_row_bytes for
//   its schema version, 1 to the current one) hash to its leaf hash, and its path leads
//   from that leaf to the checkpoint's root (RFC 9162 §2.1.3.2);
// - a subject document's rows are each about its subject, each once;
// - a consistency path leads from the old root to the new (§2.1.4.2; from an empty tree,
//   only the empty path).
ProofResult<VerifiedProof> verify_proof_document(const ProofDocument& document,
                                                 const VerifierKey& key);

} // namespace flowgate::audit
