// `flowgate audit verify-proof`: the offline check of a proof document (an inclusion
// proof, a consistency proof, a person's records with their proofs) against the log's
// verifier key, for an auditor, a service keeping a receipt or a person who holds the
// document and the key and nothing else. The checks are audit/proof_document.hpp's.
#include "audit/proof_document.hpp"
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

void register_proof_commands(CLI::App& audit, Outcome& outcome) {
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
