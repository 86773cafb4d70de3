// The proof commands of `flowgate audit` (proof_commands.cpp) that another command's
// options lead to.
#pragma once

#include "audit/proof_document.hpp"
#include "audit/reader.hpp"
#include "cli/audit_tools.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace flowgate::cli {

// `records --subject X --proofs DB`: the person's provision records (the filter's), each
// row with its inclusion proof against the latest stored checkpoint, as one subject
// document (audit/proof_document.hpp) on stdout. The exit status.
int run_subject_proofs(const std::string& db, const RecordFilter& filter);

// What `audit prove SEQ` writes: the row of `seq` with its inclusion proof against the
// store's latest checkpoint, once that checkpoint covers the row and the store holds its
// tree. None when not, said as the command says it (a failed check on stdout, an error
// on stderr) with its exit status in `status`.
std::optional<audit::InclusionDocument> inclusion_document(audit::AuditReader& reader,
                                                           std::uint64_t seq, int& status);

} // namespace flowgate::cli
