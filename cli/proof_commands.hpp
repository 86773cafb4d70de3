// The proof commands of `flowgate audit` (proof_commands.cpp) that another command's
// options lead to.
#pragma once

#include "cli/audit_tools.hpp"

#include <string>

namespace flowgate::cli {

// `records --subject X --proofs DB`: the person's provision records (the filter's), each
// row with its inclusion proof against the latest stored checkpoint, as one subject
// document (audit/proof_document.hpp) on stdout. The exit status.
int run_subject_proofs(const std::string& db, const RecordFilter& filter);

} // namespace flowgate::cli
