// `flowgate audit prove|consistency|verify-proof` and `records --proofs`: proof documents
// (audit/proof_document.hpp) made from a store, and checked offline against the log's
// verifier key by whoever holds a document and the key and nothing else (an auditor, a
// service keeping a receipt, a person shown their records). A document is made only from
// a stored checkpoint whose tree the store holds, so that what it proves is what the
// store says.
#include "cli/proof_commands.hpp"

#include "audit/proof_document.hpp"
#include "audit/signed_note.hpp"
#include "audit/verifier.hpp"
#include "cli/audit_inputs.hpp"
#include "cli/commands.hpp"

#include <iostream>

namespace flowgate::cli {

namespace {

std::string what_it_proves(const audit::ProofDocument& document,
                           const audit::VerifiedProof& verified) {
    const std::string log = "the log " + verified.checkpoint.origin + " at tree size " +
                            std::to_string(verified.checkpoint.size);
    const std::string signer = " (signed by " + verified.signer + ")";
    if (const auto* subject = std::get_if<audit::SubjectDocument>(&document)) {
        return std::to_string(verified.seqs.size()) + " rows about " + subject->subject +
               " are in " + log + signer;
    }
    if (std::holds_alternative<audit::ConsistencyDocument>(document) || verified.seqs.empty()) {
        return log + " extends its tree of size " + std::to_string(verified.old_size) + signer;
    }
    return "seq " + std::to_string(verified.seqs.front()) + " is in " + log + signer;
}

// The latest stored checkpoint, when it covers the first `min_size` rows and the store
// holds its tree; none (reported, the exit status in `status`) otherwise.
std::optional<audit::StoredCheckpoint> covering_checkpoint(audit::AuditReader& reader,
                                                           std::uint64_t min_size, int& status) {
    status = exit_error;
    auto latest = reader.latest_checkpoint();
    if (!latest) {
        report_error(latest.error().message);
        return std::nullopt;
    }
    if (!latest.value()) {
        report_error(reader.path().string() + " holds no checkpoint" +
                     (reader.schema_version() < 3
                          ? " (a store of schema version " +
                                std::to_string(reader.schema_version()) + " has none)"
                          : std::string()));
        return std::nullopt;
    }
    const audit::StoredCheckpoint& stored = *latest.value();
    if (stored.tree_size < min_size) {
        report_error("seq " + std::to_string(min_size) +
                     " is not covered by a checkpoint yet: the latest is of the first " +
                     std::to_string(stored.tree_size) +
                     " rows (flowgated stores one at least once a second while it writes)");
        return std::nullopt;
    }
    auto tree = audit::parse_tree_checkpoint(audit::note_text_unchecked(stored.note));
    if (!tree) {
        std::cout << reader.path().string() << ": FAILED: its latest checkpoint "
                  << tree.error().message << "\n";
        status = exit_deny;
        return std::nullopt;
    }
    auto mismatch = audit::checkpoint_mismatch(reader, tree.value());
    if (!mismatch) {
        report_error(mismatch.error().message);
        return std::nullopt;
    }
    if (!mismatch.value().empty()) {
        std::cout << reader.path().string() << ": FAILED: its latest checkpoint "
                  << mismatch.value() << "\n";
        status = exit_deny;
        return std::nullopt;
    }
    if (stored.note.find("\n\n") == std::string::npos) {
        std::cerr << "flowgate audit: warning: the checkpoint is unsigned (the store has no "
                     "signing key): no verifier key will accept the proof\n";
    }
    return stored;
}

// The row of `seq` with its path in the tree of tree_size rows; none (reported) when the
// store cannot give them.
std::optional<audit::RowProof> row_proof_or_report(audit::AuditReader& reader, std::uint64_t seq,
                                                   std::uint64_t tree_size) {
    const auto signed_seq = static_cast<std::int64_t>(seq);
    auto rows = reader.rows({signed_seq, signed_seq, std::nullopt, std::nullopt});
    if (!rows) {
        report_error(rows.error().message);
        return std::nullopt;
    }
    if (rows.value().size() != 1) {
        report_error("no row has seq " + std::to_string(seq));
        return std::nullopt;
    }
    auto path = reader.inclusion_proof(seq - 1, tree_size);
    if (!path) {
        report_error(path.error().message);
        return std::nullopt;
    }
    return audit::row_proof(audit::view_of(rows.value().front()), reader.schema_version(),
                            std::move(path).value());
}

} // namespace

std::optional<audit::InclusionDocument> inclusion_document(audit::AuditReader& reader,
                                                           std::uint64_t seq, int& status) {
    auto checkpoint = covering_checkpoint(reader, seq, status);
    if (!checkpoint) {
        return std::nullopt;
    }
    auto proof = row_proof_or_report(reader, seq, checkpoint->tree_size);
    if (!proof) {
        status = exit_error;
        return std::nullopt;
    }
    return audit::InclusionDocument{std::move(*proof), checkpoint->tree_size, checkpoint->note};
}

namespace {

int run_prove(std::uint64_t seq, const std::string& db) {
    auto reader = open_or_report(db);
    if (!reader) {
        return exit_error;
    }
    auto last = reader->last_seq();
    if (!last) {
        report_error(last.error().message);
        return exit_error;
    }
    if (seq == 0 || seq > last.value()) {
        report_error("no row has seq " + std::to_string(seq) + " (the log holds seqs 1 to " +
                     std::to_string(last.value()) + ")");
        return exit_error;
    }
    int status = exit_error;
    auto document = inclusion_document(*reader, seq, status);
    if (!document) {
        return status;
    }
    std::cout << audit::format_proof_document(*document);
    return exit_allow;
}

// The one checkpoint note of a file (a signed note, or a journal line of one), and its
// tree; none (reported) otherwise.
std::optional<std::pair<std::string, audit::TreeCheckpoint>>
kept_checkpoint(const std::string& path) {
    auto text = read_input(path, audit::max_note_bytes);
    if (!text) {
        report_error(text.error().message);
        return std::nullopt;
    }
    std::vector<std::string> notes = audit::checkpoint_notes(text.value());
    if (notes.size() != 1) {
        report_error(path + " holds " + std::to_string(notes.size()) + " checkpoints, not one");
        return std::nullopt;
    }
    auto tree = audit::parse_tree_checkpoint(audit::note_text_unchecked(notes.front()));
    if (!tree) {
        report_error(path + ": " + tree.error().message);
        return std::nullopt;
    }
    return std::pair{std::move(notes.front()), std::move(tree).value()};
}

int run_consistency(const std::string& old_path, const std::string& new_path,
                    const std::string& db) {
    auto old_checkpoint = kept_checkpoint(old_path);
    auto new_checkpoint = kept_checkpoint(new_path);
    if (!old_checkpoint || !new_checkpoint) {
        return exit_error;
    }
    const audit::TreeCheckpoint& old_tree = old_checkpoint->second;
    const audit::TreeCheckpoint& new_tree = new_checkpoint->second;
    if (old_tree.size > new_tree.size) {
        report_error(old_path + " is of a larger tree (" + std::to_string(old_tree.size) +
                     ") than " + new_path + " (" + std::to_string(new_tree.size) + ")");
        return exit_error;
    }
    auto reader = open_or_report(db);
    if (!reader) {
        return exit_error;
    }
    for (const auto& [path, tree] : {std::pair{&old_path, &old_tree}, {&new_path, &new_tree}}) {
        auto mismatch = audit::checkpoint_mismatch(*reader, *tree);
        if (!mismatch) {
            report_error(mismatch.error().message);
            return exit_error;
        }
        if (!mismatch.value().empty()) {
            std::cout << *path << ": FAILED: the checkpoint of size " << tree->size << " "
                      << mismatch.value() << "\n";
            return exit_deny;
        }
    }
    std::vector<audit::TreeHash> path;
    if (old_tree.size > 0) {
        auto proof = reader->consistency_proof(old_tree.size, new_tree.size);
        if (!proof) {
            report_error(proof.error().message);
            return exit_error;
        }
        path = std::move(proof).value();
    }
    std::cout << audit::format_proof_document(
        audit::ConsistencyDocument{old_tree.size, old_tree.root, new_tree.size, new_tree.root,
                                   std::move(path), old_checkpoint->first, new_checkpoint->first});
    return exit_allow;
}

int run_verify_proof(const std::string& path, const std::string& key_argument) {
    auto key = read_verifier_key(key_argument);
    if (!key) {
        report_error(key.error().message);
        return exit_error;
    }
    auto text = read_input(path, max_proof_document_bytes);
    if (!text) {
        report_error(text.error().message);
        return exit_error;
    }
    auto document = audit::parse_proof_document(text.value());
    if (!document && document.error().code == audit::ProofErrc::not_a_document) {
        report_error(path + ": " + document.error().message);
        return exit_error;
    }
    auto verified = document ? audit::verify_proof_document(document.value(), key.value())
                             : audit::ProofResult<audit::VerifiedProof>(document.error());
    if (!verified) {
        std::cout << path << ": INVALID: " << verified.error().message << "\n";
        return exit_deny;
    }
    std::cout << path << ": valid: " << what_it_proves(document.value(), verified.value()) << "\n";
    return exit_allow;
}

} // namespace

int run_subject_proofs(const std::string& db, const RecordFilter& filter) {
    auto reader = open_or_report(db);
    if (!reader) {
        return exit_error;
    }
    auto records = provision_records(*reader, filter);
    if (!records) {
        report_error(records.error().message);
        return exit_error;
    }
    int status = exit_error;
    auto checkpoint = covering_checkpoint(*reader, 0, status);
    if (!checkpoint) {
        return status;
    }
    audit::SubjectDocument document{
        filter.subject.value_or(""), checkpoint->tree_size, checkpoint->note, {}};
    std::size_t later = 0;
    for (const ProvisionRecord& record : records.value()) {
        if (record.seq > checkpoint->tree_size) {
            ++later;
            continue;
        }
        auto proof = row_proof_or_report(*reader, record.seq, checkpoint->tree_size);
        if (!proof) {
            return exit_error;
        }
        document.records.push_back(std::move(*proof));
    }
    if (later > 0) {
        std::cerr << "flowgate audit: warning: " << later
                  << " records after the latest checkpoint are not in the document; run "
                     "again after the next one\n";
    }
    std::cout << audit::format_proof_document(document);
    return exit_allow;
}

void register_proof_commands(CLI::App& audit, Outcome& outcome) {
    auto prove_seq = std::make_shared<std::uint64_t>(0);
    auto prove_db = std::make_shared<std::string>();
    CLI::App* prove = audit.add_subcommand(
        "prove", "Print the inclusion proof of one row: the row, its path and the latest "
                 "signed checkpoint it leads to, as one JSON document (check it with "
                 "verify-proof)");
    prove->add_option("SEQ", *prove_seq, "The row's seq")->required();
    prove->add_option("DB", *prove_db, "The audit store file")->required();
    prove->callback([=, &outcome] { outcome.status = run_prove(*prove_seq, *prove_db); });

    auto old_file = std::make_shared<std::string>();
    auto new_file = std::make_shared<std::string>();
    auto consistency_db = std::make_shared<std::string>();
    CLI::App* consistency = audit.add_subcommand(
        "consistency", "Print the consistency proof between two checkpoints of the store, with "
                       "both, as one JSON document (check it with verify-proof)");
    consistency->add_option("OLD", *old_file, "A file holding the older signed checkpoint")
        ->required();
    consistency->add_option("NEW", *new_file, "A file holding the newer signed checkpoint")
        ->required();
    consistency->add_option("DB", *consistency_db, "The audit store file")->required();
    consistency->callback(
        [=, &outcome] { outcome.status = run_consistency(*old_file, *new_file, *consistency_db); });

    auto file = std::make_shared<std::string>();
    auto key = std::make_shared<std::string>();
    CLI::App* verify_proof = audit.add_subcommand(
        "verify-proof", "Check a proof document (from prove, consistency or records --proofs) "
                        "offline against the log's verifier key: exit 0 valid, 1 invalid, 2 "
                        "unreadable");
    verify_proof->add_option("FILE", *file, "The proof document ('-': the standard input)")
        ->required();
    verify_proof->add_option("--key", *key, "The log's verifier key, or a file holding it")
        ->required();
    verify_proof->callback([=, &outcome] { outcome.status = run_verify_proof(*file, *key); });
}

} // namespace flowgate::cli
